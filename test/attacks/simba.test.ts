// SimBA: the DCT basis and its order, the closed form of the search on linear models (pixel and DCT
// bases), budget and box, monotonicity in the query budget, exact query accounting, targeted runs,
// gradient masking, leaks and argument errors.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { dctBasisMatrix, dctOrder, simba, simbaFreqDim } from '../../attacks/simba.ts';
import { createRng } from '../../src/data/rng.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, margins, notClass0, perExampleDistances, randomImagesData, randomMlp, rng, roundingCounter } from './helpers.ts';

/** 2-D DCT-II basis image (u, v) of an h x w channel, written out from the definition (independent of the attack's matrices). */
function dctImage(u: number, v: number, h: number, w: number): number[] {
  const a = (k: number, n: number) => Math.sqrt((k === 0 ? 1 : 2) / n);
  const out: number[] = [];
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out.push(a(u, h) * a(v, w) * Math.cos((Math.PI * (2 * i + 1) * u) / (2 * h)) * Math.cos((Math.PI * (2 * j + 1) * v) / (2 * w)));
  return out;
}

/** Images with pixels in [0.3, 0.7], so small steps never reach the box. */
function interiorImages(seed: number, n: number, d: number): Float32Array {
  return Float32Array.from(randomImagesData(seed, n * d), (v) => 0.3 + 0.4 * v);
}

describe('simba DCT basis and order', () => {
  it('the DCT matrix is orthonormal for every size and matches the definition', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), (n) => {
      const m = dctBasisMatrix(n);
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += m[a * n + i] * m[b * n + i];
          expect(dot).toBeCloseTo(a === b ? 1 : 0, 12);
        }
      }
      expect(Array.from({ length: n }, (_, i) => m[i])).toEqual(Array.from({ length: n }, () => expect.closeTo(1 / Math.sqrt(n), 14)));
    }), { numRuns: 12, seed: 1 });
  });

  it('the order is a permutation, the low-frequency block first, then rings of `stride` frequencies', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.constantFrom(1, 3), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1000 }), (h, w, c, freqDim, stride, seed) => {
      const order = dctOrder(h, w, c, freqDim, stride, createRng(seed));
      expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: h * w * c }, (_, j) => j));
      const ring = (j: number) => {
        const r = Math.max(Math.floor(j / (c * w)), Math.floor(j / c) % w);
        return r < freqDim ? 0 : 1 + Math.floor((r - freqDim) / stride);
      };
      const rings = Array.from(order, ring);
      for (let k = 1; k < rings.length; k++) expect(rings[k]).toBeGreaterThanOrEqual(rings[k - 1]);
      const block = Math.min(freqDim, h) * Math.min(freqDim, w) * c;
      expect(rings.filter((r) => r === 0)).toHaveLength(block);
    }), { numRuns: 60, seed: 2 });
  });

  it('the default block side is min(h, w) / 8 rounded, at least 1 (4 on 28 and 32 px, 28 on 224)', () => {
    expect([simbaFreqDim(28, 28), simbaFreqDim(32, 32), simbaFreqDim(224, 224), simbaFreqDim(4, 4), simbaFreqDim(32, 9)]).toEqual([4, 4, 28, 1, 1]);
  });
});

describe('simba on linear models (closed form)', () => {
  // Two classes, labels 0, logits = x·W + b with W[:, 0] = 0: the margin is x·g + b1 - b0 with g = W[:, 1].
  // b makes the margin about -20, out of reach, so every direction is tried: each q_k is kept with the
  // sign of g·q_k (−α first), and the final perturbation is α·Σ sign(g·q_k)·q_k over all directions.
  const [h, w, c, alpha] = [4, 4, 2, 0.004];
  const d = h * w * c;

  it('pixel basis: after every direction, x + α·sign(g) exactly', () => {
    const r = rng(3);
    const g = Array.from({ length: d }, () => (r() < 0.5 ? -1 : 1) * (0.5 + r()));
    const W = g.map((v) => [0, v]);
    const xs = interiorImages(4, 3, d);
    const model = linearModel(W, [20, 0]);
    const x = tf.tensor4d(xs, [3, h, w, c]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const adv = simba(model, x, y, { eps: 10, stepSize: alpha, queries: 2 * d, basis: 'pixel', seed: 7 });
    const got = adv.dataSync();
    for (let i = 0; i < 3; i++) for (let j = 0; j < d; j++) expect(got[i * d + j]).toBeCloseTo(xs[i * d + j] + alpha * Math.sign(g[j]), 6);
    tf.dispose([x, y, adv]);
  });

  it('DCT basis: after every direction, x + α·Σ sign(ĝ_k)·q_k, and the margin rose by α·||ĝ||₁', () => {
    // g built from chosen DCT coefficients (none near 0, so every kept step raises the margin clearly).
    const r = rng(5);
    const coeff = Array.from({ length: d }, () => (r() < 0.5 ? -1 : 1) * (0.5 + r()));
    const g = new Array<number>(d).fill(0);
    const want = new Array<number>(d).fill(0);
    for (let u = 0; u < h; u++) {
      for (let v = 0; v < w; v++) {
        const q = dctImage(u, v, h, w);
        for (let ch = 0; ch < c; ch++) {
          const k = (u * w + v) * c + ch;
          q.forEach((qv, p) => {
            g[p * c + ch] += coeff[k] * qv;
            want[p * c + ch] += alpha * Math.sign(coeff[k]) * qv;
          });
        }
      }
    }
    const W = g.map((v) => [0, v]);
    const xs = interiorImages(6, 2, d);
    const model = linearModel(W, [20, 0]);
    const x = tf.tensor4d(xs, [2, h, w, c]);
    const y = tf.tensor1d([0, 0], 'int32');
    const adv = simba(model, x, y, { eps: 10, stepSize: alpha, queries: 2 * d, seed: 1, freqDim: 2 });
    const got = adv.dataSync();
    for (let i = 0; i < 2; i++) for (let j = 0; j < d; j++) expect(got[i * d + j]).toBeCloseTo(xs[i * d + j] + want[j], 6);
    // Orthonormal steps: the norm is α·√d, and the margin gain α·Σ|ĝ_k|.
    perExampleDistances(got, xs, 2).l2.forEach((v) => expect(v).toBeCloseTo(alpha * Math.sqrt(d), 5));
    const gain = alpha * coeff.reduce((s, v) => s + Math.abs(v), 0);
    const before = margins(xs, W, [20, 0], [0, 0]);
    const after = margins(got, W, [20, 0], [0, 0]);
    after.forEach((m, i) => expect(m - before[i]).toBeCloseTo(gain, 4));
    tf.dispose([x, y, adv]);
  });

  it('stays in the L2 ball and the box, and fools the linear models whose boundary is near enough', () => {
    // One model per image, boundary at L2 distance f·eps; the box is within reach (pixels 0-1 allowed).
    const [n, eps] = [6, 0.5];
    const r = rng(8);
    const g = Array.from({ length: d }, () => 2 * r() - 1);
    const gNorm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    const xs = randomImagesData(9, n * d);
    [0.05, 0.1, 0.2, 1.5, 3, 10].forEach((f, i) => {
      const xi = xs.subarray(i * d, (i + 1) * d);
      const m0 = xi.reduce((s, v, j) => s + v * g[j], 0);
      const W = g.map((v) => [0, v]);
      const model = linearModel(W, [0, -m0 - f * eps * gNorm]);
      const x = tf.tensor4d(xi, [1, h, w, c]);
      const y = tf.tensor1d([0], 'int32');
      for (const basis of ['dct', 'pixel'] as const) {
        const adv = simba(model, x, y, { eps, queries: 400, basis, stepSize: 0.1, seed: i });
        const a = adv.dataSync();
        expect(perExampleDistances(a, xi, 1).l2[0]).toBeLessThanOrEqual(eps + 1e-6);
        expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
        expect(Math.max(...a)).toBeLessThanOrEqual(1);
        // Beyond the ball no point is adversarial; well inside it the search gets there.
        if (f > 1) expect(notClass0(model, adv)).toBe(0);
        if (f <= 0.1) expect(notClass0(model, adv)).toBe(1);
        adv.dispose();
      }
      tf.dispose([x, y]);
    });
  });
});

describe('simba search', () => {
  it('more queries never lower the objective: the longer run passes through the shorter one', () => {
    const [h, w, c, n] = [5, 5, 3, 4];
    const model = randomMlp(11, h * w * c, 4);
    const x = tf.tensor4d(randomImagesData(12, n * h * w * c), [n, h, w, c]);
    const y = tf.argMax(model(x), 1).toInt() as tf.Tensor1D;
    const labels = Array.from(y.dataSync());
    const marginOf = (adv: tf.Tensor4D) => tf.tidy(() => {
      const z = model(adv).arraySync();
      return z.map((row, i) => Math.max(...row.filter((_, k) => k !== labels[i])) - row[labels[i]]);
    });
    for (const basis of ['dct', 'pixel'] as const) {
      let prev = marginOf(x);
      for (const queries of [1, 3, 10, 40, 160]) {
        const adv = simba(model, x, y, { eps: 1, queries, basis, stepSize: 0.15, seed: 4 });
        const m = marginOf(adv);
        m.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(prev[i] - 1e-5));
        prev = m;
        adv.dispose();
      }
      // And the search did move: 160 queries raised every margin.
      marginOf(x).forEach((v, i) => expect(prev[i]).toBeGreaterThan(v));
    }
    tf.dispose([x, y]);
  });

  it('uses exactly the output check, the clean check and min(queries, 2·directions) evaluations per image it cannot move, and leaks nothing', async () => {
    let rows = 0;
    // A model no perturbation changes: no step is ever kept, so each direction costs two queries.
    const flat = (v: tf.Tensor4D) => {
      rows += v.shape[0];
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 5), tf.zeros([v.shape[0], 1])], 1) as tf.Tensor2D);
    };
    const [n, h, w, c] = [3, 3, 3, 1];
    const x = tf.tensor4d(randomImagesData(13, n * h * w * c), [n, h, w, c]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    for (const [queries, want] of [[7, 7], [10, 10], [100, 18]] as const) {
      rows = 0;
      const adv = simba(flat, x, y, { eps: 0.5, queries });
      // One call checks the model's output shape, one scores the clean images, then the search.
      expect(rows).toBe(n * (2 + want));
      expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
      adv.dispose();
    }
    await assertNoTensorLeak(() => simba(flat, x, y, { eps: 0.5, queries: 6, seed: 2 }), { label: 'simba' });
    const model = randomMlp(14, h * w * c, 3);
    await assertNoTensorLeak(() => simba(model, x, y, { eps: 0.5, queries: 6, basis: 'pixel', seed: 3 }), { label: 'simba pixel' });
    tf.dispose([x, y]);
  });

  it('targeted: reaches the target class of a linear model when it is within the ball', () => {
    const [h, w, c] = [4, 4, 1];
    const d = h * w * c;
    const r = rng(15);
    // Class 2 is the target; its boundary is 0.1 away in L2 along W[:,2] - W[:,0].
    const W = Array.from({ length: d }, () => [0, (r() - 0.5) * 0.2, 2 * r() - 1]);
    const xs = interiorImages(16, 1, d);
    const a = W.map((row) => row[2] - row[0]);
    const aNorm = Math.sqrt(a.reduce((s, v) => s + v * v, 0));
    const m0 = xs.reduce((s, v, j) => s + v * a[j], 0);
    const model = linearModel(W, [0, 0.05, -m0 - 0.1 * aNorm]);
    const x = tf.tensor4d(xs, [1, h, w, c]);
    const y = tf.tensor1d([0], 'int32');
    const t = tf.tensor1d([2], 'int32');
    const adv = simba(model, x, y, { eps: 1, queries: 300, stepSize: 0.1, targeted: true, targets: t, basis: 'pixel' });
    expect(tf.tidy(() => tf.argMax(model(adv), 1).dataSync()[0])).toBe(2);
    tf.dispose([x, y, t, adv]);
  });

  it('fools a hard-rounding model that PGD-L2 cannot (zero gradient): five pixel steps of 0.2', () => {
    // 16 pixels at 0.4 round to 0; class 1 wins when 5 of them round to 1. A pixel step −0.2 changes
    // nothing, +0.2 rounds the pixel to 1: two queries per pixel, 5 kept steps, L2 exactly 0.2·√5.
    const model = roundingCounter(4.5);
    const x = tf.fill([4, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([4], 'int32') as tf.Tensor1D;
    const byPgd = pgdL2(model, x, y, { eps: 0.5, steps: 10, seed: 3 });
    const bySimba = simba(model, x, y, { eps: 0.5, queries: 10, basis: 'pixel', stepSize: 0.2, seed: 3 });
    expect(notClass0(model, byPgd)).toBe(0);
    expect(notClass0(model, bySimba)).toBe(4);
    perExampleDistances(bySimba.dataSync(), x.dataSync(), 4).l2.forEach((v) => expect(v).toBeCloseTo(0.2 * Math.sqrt(5), 5));
    tf.dispose([x, y, byPgd, bySimba]);
  });

  it('names the bad argument before any model call', () => {
    let calls = 0;
    const inner = linearModel([[1, 0], [0, 1], [1, 1], [0, 0]], [0, 0]);
    const model = (v: tf.Tensor4D) => { calls++; return inner(v); };
    const x = tf.tensor4d(randomImagesData(2, 4), [1, 2, 2, 1]);
    const y = tf.tensor1d([0], 'int32');
    expect(() => simba(model, x, y, { eps: 0.1, queries: 0 })).toThrow('simba: queries: must be an integer >= 1, got 0');
    expect(() => simba(model, x, y, { eps: 0.1, stepSize: -1 })).toThrow('simba: stepSize: must be a finite number > 0, got -1');
    expect(() => simba(model, x, y, { eps: 0.1, basis: 'haar' as never })).toThrow('simba: basis must be "dct" or "pixel", got haar');
    expect(() => simba(model, x, y, { eps: 0.1, freqDim: 0 })).toThrow('simba: freqDim: must be an integer >= 1, got 0');
    expect(() => simba(model, x, y, { eps: 0.1, stride: 1.5 })).toThrow('simba: stride: must be an integer >= 1, got 1.5');
    expect(() => simba(model, x, y, { eps: 0.1, basis: 'pixel', freqDim: 2 })).toThrow('simba: freqDim and stride belong to basis "dct", not "pixel"');
    expect(() => simba(model, x, y, { eps: 0.1, norm: 'l2' } as never)).toThrow('simba: unknown option "norm"');
    expect(() => simba(model, x, y, { eps: -0.1 })).toThrow('simba: eps: must be a finite number >= 0, got -0.1');
    expect(calls).toBe(0);
    tf.dispose([x, y]);
  });
});

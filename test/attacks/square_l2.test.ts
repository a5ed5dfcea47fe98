// Square Attack in L2: the patterns' closed forms, the proposal's mass bookkeeping (scripted random
// stream), budget and reach on linear models, query accounting, and gradient masking.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { squareL2 } from '../../attacks/square.ts';
import { centredPattern, proposeWindowsL2, squareSideL2, tilesStartL2, twoLobePattern } from '../../attacks/square_l2.ts';
import { createRng, type Rng } from '../../src/data/rng.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, notClass0, perExampleDistances, randomImagesData, randomWeights, rng, roundingCounter } from './helpers.ts';

const sumSq = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v * v, 0);

/** An Rng that returns scripted integers and uniforms, in order (throws when it runs out). */
function scripted(ints: number[], uniforms: number[]): Rng {
  return {
    int: () => { if (!ints.length) throw new Error('script: out of ints'); return ints.shift()!; },
    next: () => { if (!uniforms.length) throw new Error('script: out of uniforms'); return uniforms.shift()!; },
    uniform: () => { throw new Error('not used'); },
    normal: () => { throw new Error('not used'); },
  };
}

describe('square-l2 window size and patterns', () => {
  it('window side: round(sqrt(p h w)), at least 3, odd, capped by the image', () => {
    expect(squareSideL2(0.8, 32, 32)).toBe(29);
    expect(squareSideL2(0.1, 32, 32)).toBe(11); // round(10.12) = 10, made odd
    expect(squareSideL2(0.05, 32, 32)).toBe(7);
    expect(squareSideL2(0.0015625, 32, 32)).toBe(3);
    expect(squareSideL2(1, 4, 4)).toBe(4);
    expect(squareSideL2(0.8, 2, 5)).toBe(2);
    expect(squareSideL2(0.8, 1, 1)).toBe(1);
  });

  it('centred pattern: the closed form on 3 x 3, unit norm, largest at the centre, non-increasing outwards', () => {
    // Centre: 1 + 1/4; the 8 others: 1/4; normalised.
    const z = Math.sqrt(1.25 ** 2 + 8 * 0.25 ** 2);
    const p = centredPattern(3, 3);
    expect(Array.from(p)).toEqual([0.25, 0.25, 0.25, 0.25, 1.25, 0.25, 0.25, 0.25, 0.25].map((v) => v / z));
    expect(Array.from(centredPattern(1, 1))).toEqual([1]);
    expect(centredPattern(0, 5).length).toBe(0);
    fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), (rows, cols) => {
      const q = centredPattern(rows, cols);
      expect(sumSq(q)).toBeCloseTo(1, 12);
      const [ci, cj] = [Math.floor(rows / 2), Math.floor(cols / 2)];
      const ring = (i: number, j: number) => Math.max(Math.abs(i - ci), Math.abs(j - cj));
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          expect(q[i * cols + j]).toBeGreaterThan(0);
          // Same ring, same value; one ring further out, no larger.
          for (let i2 = 0; i2 < rows; i2++) {
            for (let j2 = 0; j2 < cols; j2++) {
              if (ring(i2, j2) === ring(i, j)) expect(q[i2 * cols + j2]).toBe(q[i * cols + j]);
              if (ring(i2, j2) > ring(i, j)) expect(q[i2 * cols + j2]).toBeLessThan(q[i * cols + j]);
            }
          }
        }
      }
    }), { numRuns: 40, seed: 5 });
  });

  it('two-lobe pattern: positive top rows, negative bottom rows, equal energy, unit norm; transpose swaps to left/right', () => {
    expect(Array.from(twoLobePattern(1, false))).toEqual([-1]);
    for (let s = 2; s <= 9; s++) {
      const p = twoLobePattern(s, false);
      const top = Math.floor(s / 2);
      expect(sumSq(p)).toBeCloseTo(1, 12);
      expect(sumSq(p.subarray(0, top * s))).toBeCloseTo(0.5, 12);
      expect(Array.from(p.subarray(0, top * s)).every((v) => v > 0)).toBe(true);
      expect(Array.from(p.subarray(top * s)).every((v) => v < 0)).toBe(true);
      const t = twoLobePattern(s, true);
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) expect(t[j * s + i]).toBe(p[i * s + j]);
    }
  });
});

describe('square-l2 start and proposal', () => {
  it('start: a centred grid of tiles at norm eps, nothing outside the grid', () => {
    const [h, w, c] = [32, 32, 3];
    const x = new Float32Array(h * w * c).fill(0.5);
    const adv = new Float32Array(x.length);
    tilesStartL2(adv, x, h, w, c, 0.5, createRng(3));
    const delta = Array.from(adv, (v, j) => v - x[j]);
    expect(Math.sqrt(sumSq(delta))).toBeCloseTo(0.5, 5);
    // s0 = 6, grid offset 1: rows and columns 1..30 are tiled, 0 and 31 are not.
    for (let row = 0; row < h; row++) {
      for (let col = 0; col < w; col++) {
        const inGrid = row >= 1 && row <= 30 && col >= 1 && col <= 30;
        for (let ch = 0; ch < c; ch++) expect(delta[(row * w + col) * c + ch] !== 0).toBe(inGrid);
      }
    }
  });

  it('proposal: W2 emptied, the rest kept, and per channel W1 gets the freed mass plus an equal share of the unused budget', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 0.99, noNaN: true }), (seed, fill) => {
      const [h, w, c, s, eps] = [6, 7, 2, 3, 0.4];
      const r = rng(seed);
      const x = new Float32Array(h * w * c).fill(0.5);
      // A current perturbation of norm fill * eps (inside the box: |delta| < 0.5).
      const raw = Array.from({ length: x.length }, () => r() - 0.5);
      const k = (fill * eps) / Math.sqrt(sumSq(raw));
      const adv = Float32Array.from(raw, (v, j) => x[j] + v * k);
      const delta = Array.from(adv, (v, j) => v - x[j]);
      // Scripted stream: W1 at (1, 2), W2 at (2, 3) (overlapping), no transpose, signs +1 then -1.
      const out = Float32Array.from(adv);
      proposeWindowsL2(out, x, s, h, w, c, eps, scripted([1, 2, 2, 3], [0.9, 0.9, 0.1]));
      const d2 = Array.from(out, (v, j) => v - x[j]);
      const inW = (top: number, left: number) => (row: number, col: number) => row >= top && row < top + s && col >= left && col < left + s;
      const [in1, in2] = [inW(1, 2), inW(2, 3)];
      const idx = (row: number, col: number, ch: number) => (row * w + col) * c + ch;
      const spare = (eps * eps - sumSq(delta)) / c;
      const pattern = twoLobePattern(s, false);
      for (let ch = 0; ch < c; ch++) {
        let union = 0;
        let oldW1 = 0;
        for (let row = 0; row < h; row++) {
          for (let col = 0; col < w; col++) {
            const v = delta[idx(row, col, ch)];
            if (in1(row, col) || in2(row, col)) union += v * v;
            if (in1(row, col)) oldW1 += v * v;
            if (in1(row, col)) continue;
            // Outside W1: emptied in W2, kept elsewhere (float32 storage of x + delta).
            expect(d2[idx(row, col, ch)]).toBeCloseTo(in2(row, col) ? 0 : v, 6);
          }
        }
        // W1: direction sign * pattern + old / ||old||, norm sqrt(union + spare).
        const sign = ch === 0 ? 1 : -1;
        const dir: number[] = [];
        const got: number[] = [];
        for (let i = 0; i < s; i++) {
          for (let j = 0; j < s; j++) {
            dir.push(sign * pattern[i * s + j] + delta[idx(1 + i, 2 + j, ch)] / Math.sqrt(oldW1));
            got.push(d2[idx(1 + i, 2 + j, ch)]);
          }
        }
        const scale = Math.sqrt(union + spare) / Math.sqrt(sumSq(dir));
        got.forEach((v, q) => expect(v).toBeCloseTo(dir[q] * scale, 5));
      }
      // So the whole perturbation is at norm eps before the caller's box clip.
      expect(Math.sqrt(sumSq(d2))).toBeCloseTo(eps, 5);
    }), { numRuns: 25, seed: 8 });
  });
});

describe('square-l2 on models', () => {
  it('stays in the L2 ball and the box, and fools every linear model whose boundary is within 0.4 eps', () => {
    const [h, w, c, eps] = [4, 4, 3, 0.3];
    const d = h * w * c;
    for (const seed of [1, 2]) {
      const W = randomWeights(seed, d, 2);
      const a = W.map((row) => row[1] - row[0]);
      const aNorm = Math.sqrt(sumSq(a));
      const xs = Float32Array.from(randomImagesData(seed + 1, 6 * d), (v) => 0.3 + 0.4 * v);
      // One model per image: the bias puts its boundary at exact L2 distance f * eps (the box is not
      // reached: pixels stay within 0.3 of 0.5 at this eps).
      [0.1, 0.2, 0.3, 0.4, 1.2, 2].forEach((f, i) => {
        const xi = xs.subarray(i * d, (i + 1) * d);
        const m0 = xi.reduce((s, v, j) => s + v * a[j], 0);
        const model = linearModel(W, [0, -m0 - f * eps * aNorm]);
        const x = tf.tensor4d(xi, [1, h, w, c]);
        const y = tf.tensor1d([0], 'int32');
        const adv = squareL2(model, x, y, { eps, queries: 300, seed });
        const dist = perExampleDistances(adv.dataSync(), xi, 1).l2[0];
        expect(dist).toBeLessThanOrEqual(eps + 1e-6);
        expect(Math.min(...adv.dataSync())).toBeGreaterThanOrEqual(0);
        expect(Math.max(...adv.dataSync())).toBeLessThanOrEqual(1);
        expect(tf.argMax(model(adv), 1).dataSync()[0]).toBe(f <= 0.4 ? 1 : 0);
        tf.dispose([x, y, adv]);
      });
    }
  });

  it('uses exactly the clean check plus `queries` evaluations on a model it cannot fool, and leaks nothing', async () => {
    let calls = 0;
    const unbreakable = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 50), tf.reshape(tf.sum(v, [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const x = tf.tensor4d(randomImagesData(4, 3 * 27), [3, 3, 3, 3]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const adv = squareL2(unbreakable, x, y, { eps: 0.5, queries: 25 });
    expect(calls).toBe(27);
    perExampleDistances(adv.dataSync(), x.dataSync(), 3).l2.forEach((v) => expect(v).toBeLessThanOrEqual(0.5 + 1e-6));
    await assertNoTensorLeak(() => squareL2(unbreakable, x, y, { eps: 0.5, queries: 5, seed: 2 }), { label: 'square-l2' });
    tf.dispose([x, y, adv]);
  });

  it('fools a hard-rounding model that PGD-L2 cannot (zero gradient), with the same budget', () => {
    // 16 pixels at 0.4 round to 0; class 1 wins when 5 of them exceed 0.5 (L2 cost at least 0.1·√5 ≈ 0.22).
    const model = roundingCounter(4.5);
    const x = tf.fill([8, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    const fooled = (adv: tf.Tensor4D) => notClass0(model, adv);
    const byPgd = pgdL2(model, x, y, { eps: 0.4, steps: 10, seed: 3 });
    const bySquare = squareL2(model, x, y, { eps: 0.4, queries: 100, seed: 3 });
    expect(fooled(byPgd)).toBe(0);
    expect(fooled(bySquare)).toBeGreaterThanOrEqual(6);
    tf.dispose([x, y, byPgd, bySquare]);
  });

  it('names the bad argument before any model call', () => {
    let calls = 0;
    const model = (v: tf.Tensor4D) => { calls++; return linearModel(randomWeights(1, 4, 2), [0, 0])(v); };
    const x = tf.tensor4d(randomImagesData(2, 4), [1, 2, 2, 1]);
    const y = tf.tensor1d([0], 'int32');
    expect(() => squareL2(model, x, y, { eps: 0.1, norm: 'l2' } as never)).toThrow('square-l2: do not pass norm (it is always l2)');
    expect(() => squareL2(model, x, y, { eps: 0.1, queries: 1.5 })).toThrow('square-l2: queries: must be an integer >= 1, got 1.5');
    expect(() => squareL2(model, x, y, { eps: 0.1, pInit: 0 })).toThrow('square-l2: pInit must be a number in (0, 1], got 0');
    expect(calls).toBe(0);
    tf.dispose([x, y]);
  });
});

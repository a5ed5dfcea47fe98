// SPSA (L-inf, gradient-free): the estimator's closed forms, the exact optimum on linear models, query accounting, gradient masking.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../attacks/pgd.ts';
import { type SignSource, signStream, spsa, spsaGradient } from '../../attacks/spsa.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, marginUpperBound, margins, notClass0, perExampleDistances, randomImagesData, randomMlp, randomWeights, rng, roundingCounter } from './helpers.ts';

/** Random ±1 directions of one image from a plain seeded stream, as numbers [samples][d]. */
function signs(seed: number, samples: number, d: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: samples }, () => Array.from({ length: d }, () => (r() < 0.5 ? -1 : 1)));
}

/** A SignSource reading image k's directions from `perImage[k]` in order. */
function fromArrays(perImage: number[][][]): SignSource {
  const flat = perImage.map((v) => v.flat());
  const at = perImage.map(() => 0);
  return (k, out) => {
    out.set(flat[k].slice(at[k], at[k] + out.length));
    at[k] += out.length;
  };
}

describe('spsa gradient estimate (closed forms)', () => {
  it('on a two-class linear model it is (1/S) Σ (f(clip(x+δv)) − f(clip(x−δv))) / 2δ · v exactly, box clipping included', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 9 }), fc.double({ min: 0.005, max: 0.2, noNaN: true }), (seed, samples, delta) => {
      const [batch, h, w, c] = [2, 2, 3, 1];
      const d = h * w * c;
      const W = randomWeights(seed, d, 2);
      const xs = randomImagesData(seed + 1, batch * d); // holds exact 0s and 1s: queries get clipped
      const labels = [0, 1];
      const dirs = [signs(seed + 2, samples, d), signs(seed + 3, samples, d)];
      const x = tf.tensor4d(xs, [batch, h, w, c]);
      const y = tf.tensor1d(labels, 'int32');
      // queryBatch 4: one sample pair per image and model call, so the directions are read in pieces.
      const g = spsaGradient(linearModel(W, [0, 0]), x, y, samples, fromArrays(dirs), { loss: 'margin', delta, queryBatch: 4 });
      const got = g.dataSync();
      for (let i = 0; i < batch; i++) {
        const a = W.map((row) => row[1 - labels[i]] - row[labels[i]]); // margin = a·x + const
        for (let j = 0; j < d; j++) {
          let want = 0;
          for (const v of dirs[i]) {
            const moved = (s: number) => v.reduce((acc, vk, k) => acc + a[k] * Math.min(1, Math.max(0, xs[i * d + k] + s * delta * vk)), 0);
            want += ((moved(1) - moved(-1)) / (2 * delta)) * v[j];
          }
          want /= samples;
          expect(Math.abs(got[i * d + j] - want)).toBeLessThanOrEqual(2e-4 * (1 + Math.abs(want)) / delta);
        }
      }
      tf.dispose([x, y, g]);
    }), { numRuns: 20, seed: 5 });
  });

  it('is unbiased: with many directions of the attack\'s own stream it approaches the true gradient within its standard error', () => {
    const d = 16;
    const W = randomWeights(7, d, 2);
    const a = W.map((row) => row[1] - row[0]);
    const samples = 4000;
    const x = tf.fill([1, 4, 4, 1], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const stream = signStream(9);
    const g = spsaGradient(linearModel(W, [0, 0]), x, y, samples, (_k, out) => stream(out), { loss: 'margin', delta: 0.01 });
    const got = g.dataSync();
    const total = a.reduce((s, v) => s + v * v, 0);
    for (let j = 0; j < d; j++) {
      // Coordinate j's estimate is a_j + (1/S) Σ_s Σ_{k≠j} a_k v_sk v_sj: variance Σ_{k≠j} a_k² / S.
      const sd = Math.sqrt((total - a[j] * a[j]) / samples);
      expect(Math.abs(got[j] - a[j])).toBeLessThan(5 * sd);
    }
    tf.dispose([x, y, g]);
  });

  it('reads the same ±1 sequence from a stream in pieces of any size, about half of each sign', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }), (seed, pieces) => {
      const total = pieces.reduce((p, q) => p + q, 0);
      const whole = new Float32Array(total);
      signStream(seed)(whole);
      const read = signStream(seed);
      const parts: number[] = [];
      for (const m of pieces) {
        const out = new Float32Array(m);
        read(out);
        parts.push(...out);
      }
      expect(parts).toEqual(Array.from(whole));
      for (const v of whole) expect(v === 1 || v === -1).toBe(true);
    }), { numRuns: 50, seed: 3 });
    const many = new Float32Array(100000);
    signStream(1)(many);
    const plus = many.reduce((p, v) => p + (v > 0 ? 1 : 0), 0);
    expect(Math.abs(plus - 50000)).toBeLessThan(5 * Math.sqrt(25000)); // binomial, 5 standard deviations
  });

  it('on a one-pixel image any single direction gives the exact derivative', () => {
    const W = [[0.3, -1.7]];
    const x = tf.tensor4d([0.4, 0.7], [2, 1, 1, 1]);
    const y = tf.tensor1d([0, 1], 'int32');
    const g = spsaGradient(linearModel(W, [0, 0]), x, y, 3, fromArrays([[[-1], [-1], [1]], [[1], [1], [-1]]]), { loss: 'margin', delta: 0.05 });
    const got = Array.from(g.dataSync());
    expect(got[0]).toBeCloseTo(-2, 5);
    expect(got[1]).toBeCloseTo(2, 5);
    tf.dispose([x, y, g]);
  });

  it('depends on how many images each model call takes only through the model\'s float32 rounding', () => {
    const model = randomMlp(3, 12, 4);
    const x = tf.tensor4d(randomImagesData(4, 3 * 12), [3, 2, 2, 3]);
    const y = tf.tensor1d([0, 2, 3], 'int32');
    const source = () => {
      const streams = [0, 1, 2].map((i) => signStream(10 + i));
      return (k: number, out: Float32Array) => streams[k](out);
    };
    const small = spsaGradient(model, x, y, 7, source(), { delta: 0.01, queryBatch: 2 });
    const large = spsaGradient(model, x, y, 7, source(), { delta: 0.01, queryBatch: 4096 });
    // Batched products may round differently per batch size (about 1e-6 here), and the chunks' sums add up in another order.
    const l = large.dataSync();
    small.dataSync().forEach((v, j) => expect(Math.abs(v - l[j])).toBeLessThan(1e-4));
    tf.dispose([x, y, small, large]);
  });
});

describe('spsa on linear models', () => {
  it('never exceeds the largest margin the budget allows, stays in the ball and the box', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.01, max: 0.5, noNaN: true }), (seed, eps) => {
        const [batch, h, w, c, classes] = [2, 3, 3, 1, 3];
        const d = h * w * c;
        const W = randomWeights(seed, d, classes);
        const b = [0, 0.1, -0.1];
        const xs = randomImagesData(seed + 1, batch * d);
        const labels = [0, 1];
        const x = tf.tensor4d(xs, [batch, h, w, c]);
        const y = tf.tensor1d(labels, 'int32');
        const adv = spsa(linearModel(W, b), x, y, { eps, steps: 5, samples: 8, seed });
        const a = adv.dataSync();
        const got = margins(a, W, b, labels);
        const bound = marginUpperBound(xs, W, b, labels, eps);
        got.forEach((m, i) => expect(m).toBeLessThanOrEqual(bound[i] + 1e-4));
        perExampleDistances(a, xs, batch).linf.forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
        for (const v of a) expect(v >= 0 && v <= 1).toBe(true);
        tf.dispose([x, y, adv]);
      }),
      { numRuns: 15, seed: 13 },
    );
  });

  it('reaches the exact optimum of a linear model it cannot fool', () => {
    // A bias too large to overcome keeps every image searching; the optimum is the best corner of the
    // box-clipped ball against the best wrong class (marginUpperBound).
    const d = 16;
    const r = rng(5);
    const W = randomWeights(3, d, 3);
    const b = [100, 0, 0];
    const xs = Float32Array.from({ length: 4 * d }, () => 0.2 + 0.6 * r());
    const x = tf.tensor4d(xs, [4, 4, 4, 1]);
    const y = tf.tensor1d([0, 0, 0, 0], 'int32');
    const adv = spsa(linearModel(W, b), x, y, { eps: 0.1, steps: 100, samples: 64, seed: 1 });
    const got = margins(adv.dataSync(), W, b, [0, 0, 0, 0]);
    const best = marginUpperBound(xs, W, b, [0, 0, 0, 0], 0.1);
    const clean = margins(xs, W, b, [0, 0, 0, 0]);
    // At least 99.9% of the possible rise of the margin (measured: all four at the optimum).
    got.forEach((m, i) => expect((m - clean[i]) / (best[i] - clean[i])).toBeGreaterThan(0.999));
    tf.dispose([x, y, adv]);
  });

  it('fools exactly the images whose optimum crosses the boundary by a clear gap, none that cannot be fooled', () => {
    const d = 16;
    const W = randomWeights(21, d, 2);
    const xs = randomImagesData(22, 24 * d);
    const eps = 0.05;
    // Bias class 0 so that the optimal margins spread around zero.
    const raw = marginUpperBound(xs, W, [0, 0], new Array(24).fill(0), eps);
    const sorted = [...raw].sort((p, q) => p - q);
    const b = [sorted[12], 0];
    const best = marginUpperBound(xs, W, b, new Array(24).fill(0), eps);
    const model = linearModel(W, b);
    const x = tf.tensor4d(xs, [24, 4, 4, 1]);
    const y = tf.zeros([24], 'int32') as tf.Tensor1D;
    const adv = spsa(model, x, y, { eps, steps: 60, samples: 32, seed: 2 });
    const fooled = Array.from(tf.argMax(model(adv), 1).dataSync()).map((p) => p !== 0);
    best.forEach((m, i) => {
      if (m < 0) expect(fooled[i]).toBe(false); // impossible: the exact optimum stays correct
      if (m > 0.02) expect(fooled[i]).toBe(true);
    });
    tf.dispose([x, y, adv]);
  });

  it('targeted: reaches a target the budget can reach', () => {
    const r = rng(12);
    const W = Array.from({ length: 12 }, () => [0.2 * r() - 0.1, 0.2 * r() - 0.1, 1 + 0.2 * r() - 0.1]);
    const xs = Float32Array.from({ length: 6 * 12 }, () => 0.3 + 0.4 * r());
    const lead = Math.max(...margins(xs, W, [0, 0, 0], [2, 2, 2, 2, 2, 2]).map((m) => -m));
    const model = linearModel(W, [0, 0, -lead - 1]);
    const x = tf.tensor4d(xs, [6, 2, 2, 3]);
    const y = tf.argMax(model(x), 1).toInt() as tf.Tensor1D;
    expect(Array.from(y.dataSync())).not.toContain(2);
    const t = tf.fill([6], 2, 'int32') as tf.Tensor1D;
    const adv = spsa(model, x, y, { eps: 0.3, steps: 40, samples: 16, seed: 4, targeted: true, targets: t });
    expect(Array.from(tf.argMax(model(adv), 1).dataSync())).toEqual([2, 2, 2, 2, 2, 2]);
    perExampleDistances(adv.dataSync(), xs, 6, 3).linf.forEach((v) => expect(v).toBeLessThanOrEqual(0.3 + 1e-6));
    tf.dispose([x, y, t, adv]);
  });
});

describe('spsa queries, early stop, determinism', () => {
  it('makes exactly the clean check, the start and 1 + 2·samples evaluations per image and step on a model it cannot fool', () => {
    let calls = 0;
    let rows = 0;
    let largest = 0;
    const unbreakable = (v: tf.Tensor4D) => {
      calls++;
      rows += v.shape[0];
      largest = Math.max(largest, v.shape[0]);
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 50), tf.reshape(tf.sum(v, [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const x = tf.tensor4d(randomImagesData(4, 3 * 4), [3, 2, 2, 1]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const adv = spsa(unbreakable, x, y, { eps: 0.1, steps: 7, samples: 5, queryBatch: 1024 });
    // Calls: validation, clean check, start, then per step one estimate call and one iterate check.
    expect(calls).toBe(3 + 7 * 2);
    // Rows: validation (3), then per image 1 + 1 + 7·(2·5 + 1).
    expect(rows).toBe(3 + 3 * (2 + 7 * 11));
    calls = 0;
    rows = 0;
    largest = 0;
    // Chunked calls (2 images per call: one sample pair per image) and EOT (every evaluation twice).
    const chunked = spsa(unbreakable, x, y, { eps: 0.1, steps: 2, samples: 5, queryBatch: 6, eotSamples: 2, randomStart: false });
    expect(calls).toBe(1 + 2 * (1 + 2 * (5 + 1)));
    expect(rows).toBe(3 + 2 * 3 * (1 + 2 * 11));
    expect(largest).toBe(6); // no model call takes more than queryBatch images
    tf.dispose([x, y, adv, chunked]);
  });

  it('stops an image as soon as it is fooled, returns misclassified images untouched and eps 0 as x', () => {
    let calls = 0;
    // Every point more than 0.001 from 0.5 in L1 is class 1: the random start fools every image.
    const easy = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 0.001), tf.reshape(tf.sum(tf.abs(tf.sub(v, 0.5)), [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const mid = tf.fill([3, 2, 2, 1], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const fooled = spsa(easy, mid, y, { eps: 0.1, steps: 25 });
    expect(calls).toBe(3);
    expect(Array.from(tf.argMax(easy(fooled), 1).dataSync())).toEqual([1, 1, 1]);

    const W = randomWeights(8, 9, 2);
    const model = linearModel(W, [0, 0]);
    const xs = randomImagesData(9, 4 * 9);
    const x = tf.tensor4d(xs, [4, 3, 3, 1]);
    const pred = Array.from(tf.argMax(model(x), 1).dataSync());
    const wrong = tf.tensor1d(pred.map((p, i) => (i < 2 ? 1 - p : p)), 'int32');
    const adv = spsa(model, x, wrong, { eps: 0.2, steps: 5, samples: 4, seed: 1 });
    expect(Array.from(adv.dataSync().slice(0, 18))).toEqual(Array.from(xs.slice(0, 18)));
    const none = spsa(model, x, wrong, { eps: 0, steps: 5, samples: 4 });
    expect(Array.from(none.dataSync())).toEqual(Array.from(xs));
    tf.dispose([mid, y, fooled, x, wrong, adv, none]);
  });

  it('same seed, same images; an image\'s path does not depend on the other images of its batch', () => {
    const model = randomMlp(31, 12, 3);
    const xs = randomImagesData(32, 3 * 12);
    const x = tf.tensor4d(xs, [3, 2, 2, 3]);
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const o = { eps: 0.05, steps: 6, samples: 6, seed: 7 };
    const a = spsa(model, x, y, o);
    const again = spsa(model, x, y, o);
    expect(Array.from(again.dataSync())).toEqual(Array.from(a.dataSync()));
    const other = spsa(model, x, y, { ...o, seed: 8 });
    expect(Array.from(other.dataSync())).not.toEqual(Array.from(a.dataSync()));
    // Replace image 2 by one the model already gets wrong (it leaves at once): images 0 and 1 unchanged.
    const x2 = tf.concat([x.slice([0, 0, 0, 0], [2, 2, 2, 3]), tf.fill([1, 2, 2, 3], 0.9)]) as tf.Tensor4D;
    const pred2 = tf.argMax(model(x2.slice([2, 0, 0, 0], [1, 2, 2, 3])), 1).dataSync()[0];
    const y2 = tf.tensor1d([0, 1, (pred2 + 1) % 3], 'int32');
    const b = spsa(model, x2, y2, o);
    expect(Array.from(b.dataSync().slice(0, 24))).toEqual(Array.from(a.dataSync().slice(0, 24)));
    tf.dispose([x, y, a, again, other, x2, y2, b]);
  });

  it('leaks no tensors, with images leaving the run part way', async () => {
    const model = randomMlp(41, 12, 3);
    const x = tf.tensor4d(randomImagesData(42, 4 * 12), [4, 2, 2, 3]);
    const y = tf.tensor1d([0, 1, 2, 0], 'int32');
    const t = tf.tensor1d([1, 2, 0, 2], 'int32');
    await assertNoTensorLeak(() => spsa(model, x, y, { eps: 0.3, steps: 6, samples: 4, seed: 1, queryBatch: 8 }), { label: 'spsa' });
    await assertNoTensorLeak(() => spsa(model, x, y, { eps: 0.3, steps: 4, samples: 3, targeted: true, targets: t }), { label: 'spsa targeted' });
    tf.dispose([x, y, t]);
  });

  it('names the bad argument before any work', () => {
    let calls = 0;
    const model = (v: tf.Tensor4D) => {
      calls++;
      return linearModel(randomWeights(1, 4, 2), [0, 0])(v);
    };
    const x = tf.tensor4d(randomImagesData(2, 4), [1, 2, 2, 1]);
    const y = tf.tensor1d([0], 'int32');
    expect(() => spsa(model, x, y, { eps: 0.1, steps: 0 })).toThrow('spsa: steps: must be an integer >= 1, got 0');
    expect(() => spsa(model, x, y, { eps: 0.1, samples: 2.5 })).toThrow('spsa: samples: must be an integer >= 1, got 2.5');
    expect(() => spsa(model, x, y, { eps: 0.1, delta: 0 })).toThrow('spsa: delta: must be a finite number > 0, got 0');
    expect(() => spsa(model, x, y, { eps: 0.1, lr: -1 })).toThrow('spsa: lr: must be a finite number > 0, got -1');
    expect(() => spsa(model, x, y, { eps: 0.1, queryBatch: 1 })).toThrow('spsa: queryBatch: must be an integer >= 2, got 1');
    expect(() => spsa(model, x, y, { eps: 0.1, randomStart: 'no' as never })).toThrow('spsa: randomStart must be a boolean');
    expect(calls).toBe(0);
    expect(() => spsa(model, x, y, { eps: 0.1, queries: 5 } as never)).toThrow('spsa: unknown option "queries"');
    expect(() => spsa(model, x, y, { eps: -1 })).toThrow('spsa: eps: must be a finite number >= 0, got -1');
    tf.dispose([x, y]);
  });
});

describe('spsa sees through gradient masking', () => {
  it('fools a hard-rounding model that PGD cannot move (zero gradient), with the same budget', () => {
    // Pixels at 0.48 round to 0; within eps 0.05 a pixel can reach 0.53 and round to 1. Class 1 wins
    // when 5 of 16 pixels do. tf.round has a zero gradient, so PGD only has its random start; SPSA's
    // differences at δ = 0.03 cross the rounding threshold and see the slope of the smoothed model.
    const model = roundingCounter(4.5);
    const x = tf.fill([8, 4, 4, 1], 0.48) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    const byPgd = pgd(model, x, y, { eps: 0.05, steps: 10, seed: 3, randomStart: false });
    const bySpsa = spsa(model, x, y, { eps: 0.05, steps: 20, samples: 16, delta: 0.03, seed: 3, randomStart: false });
    expect(notClass0(model, byPgd)).toBe(0);
    expect(notClass0(model, bySpsa)).toBe(8);
    perExampleDistances(bySpsa.dataSync(), x.dataSync(), 8).linf.forEach((v) => expect(v).toBeLessThanOrEqual(0.05 + 1e-6));
    tf.dispose([x, y, byPgd, bySpsa]);
  });
});

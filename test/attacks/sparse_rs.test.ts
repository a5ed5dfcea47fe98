// Sparse-RS (L0 pixels): schedule, the exact optimum on linear models, query accounting, gradient masking.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgdL0 } from '../../attacks/pgd_l0.ts';
import { sparseRs, sparseRsSwaps } from '../../attacks/sparse_rs.ts';
import { l0MarginBound, linearModel, margins, notClass0, perExampleDistances, randomImagesData, randomWeights, rng, roundingCounter } from './helpers.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

describe('sparse-rs schedule', () => {
  it('swaps alphaInit·k pixels halved at the Square Attack steps, at least 1 and at most k', () => {
    expect([1, 10, 11, 51, 201, 501, 1001, 2001, 4001, 6001, 8001].map((it) => sparseRsSwaps(0.3, it, 10000, 100))).toEqual([30, 30, 15, 8, 4, 2, 1, 1, 1, 1, 1]);
    expect(sparseRsSwaps(1, 1, 10, 4)).toBe(1); // step 1 of 10 is step 1000 of 10,000: 1/16 of 4, at least 1
    fc.assert(fc.property(fc.integer({ min: 2, max: 5000 }), fc.integer({ min: 1, max: 500 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (q, k, a) => {
      let prev = Infinity;
      for (let it = 1; it < q; it += Math.max(1, Math.floor(q / 40))) {
        const m = sparseRsSwaps(a, it, q, k);
        expect(m).toBeGreaterThanOrEqual(1);
        expect(m).toBeLessThanOrEqual(Math.max(1, k));
        expect(m).toBeLessThanOrEqual(prev);
        prev = m;
      }
    }), { numRuns: 30, seed: 5 });
  });
});

describe('sparse-rs on linear models (closed forms)', () => {
  it('never exceeds the largest margin k pixels allow, and finds it on a model it cannot fool', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 5 }), fc.constantFrom(1, 3), (seed, k, c) => {
        const [batch, h, w, classes] = [2, 2, 2, 3];
        const d = h * w * c;
        const W = randomWeights(seed, d, classes);
        const b = [0, 0.1, -0.1];
        const xs = randomImagesData(seed + 1, batch * d);
        const x = tf.tensor4d(xs, [batch, h, w, c]);
        const y = tf.tensor1d([0, 1], 'int32');
        const adv = sparseRs(linearModel(W, b), x, y, { eps: k, queries: 20, seed });
        const got = margins(adv.dataSync(), W, b, [0, 1]);
        const bound = l0MarginBound(xs, W, b, [0, 1], k, c);
        got.forEach((m, i) => expect(m).toBeLessThanOrEqual(bound[i] + 1e-4));
        perExampleDistances(adv.dataSync(), xs, batch, c).l0.forEach((v) => expect(v).toBeLessThanOrEqual(k));
        tf.dispose([x, y, adv]);
      }),
      { numRuns: 15, seed: 13 },
    );

    // A bias too large to overcome keeps the search running; on a linear objective a swap that helps
    // exists until the k best pixels sit at their best corners, and the search must end there.
    for (const [c, k, seed] of [[1, 2, 1], [3, 2, 2], [3, 3, 3], [1, 9, 4]]) {
      const d = 9 * c;
      const W = randomWeights(100 + seed, d, 2);
      const b = [100, 0];
      const xs = randomImagesData(200 + seed, 2 * d);
      const x = tf.tensor4d(xs, [2, 3, 3, c]);
      const y = tf.tensor1d([0, 0], 'int32');
      const adv = sparseRs(linearModel(W, b), x, y, { eps: k, queries: 400, seed });
      const got = margins(adv.dataSync(), W, b, [0, 0]);
      const best = l0MarginBound(xs, W, b, [0, 0], k, c);
      got.forEach((m, i) => expect(m).toBeCloseTo(best[i], 4));
      tf.dispose([x, y, adv]);
    }
  });
});

describe('sparse-rs queries, early stop and untouched images', () => {
  it('uses exactly the clean check plus `queries` model evaluations on a model it cannot fool, fewer when all are fooled', () => {
    let calls = 0;
    const unbreakable = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 50), tf.reshape(tf.sum(v, [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const x = tf.tensor4d(randomImagesData(4, 3 * 4), [3, 2, 2, 1]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const adv = sparseRs(unbreakable, x, y, { eps: 2, queries: 25 });
    // 1 validation call (functions are checked by running them once) + 1 clean check + 25 queries.
    expect(calls).toBe(27);
    calls = 0;
    const withEot = sparseRs(unbreakable, x, y, { eps: 2, queries: 10, eotSamples: 3 });
    expect(calls).toBe(1 + 3 * (1 + 10));
    // eps 0: the clean check only, and x back bit for bit.
    calls = 0;
    const none = sparseRs(unbreakable, x, y, { eps: 0, queries: 10 });
    expect(calls).toBe(2);
    expect(Array.from(none.dataSync())).toEqual(Array.from(x.dataSync()));

    // A model fooled by any changed pixel: the search stops after the start.
    calls = 0;
    const easy = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 0.001), tf.reshape(tf.sum(tf.abs(tf.sub(v, 0.5)), [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const mid = tf.fill([3, 2, 2, 1], 0.5) as tf.Tensor4D;
    const fooled = sparseRs(easy, mid, y, { eps: 1, queries: 25 });
    expect(calls).toBe(3);
    expect(Array.from(tf.argMax(easy(fooled), 1).dataSync())).toEqual([1, 1, 1]);
    tf.dispose([x, y, adv, withEot, none, mid, fooled]);
  });

  it('returns images the model already gets wrong unchanged, bit for bit; same seed, same images', () => {
    const W = randomWeights(8, 9, 2);
    const model = linearModel(W, [0, 0]);
    const xs = randomImagesData(9, 4 * 9);
    const x = tf.tensor4d(xs, [4, 3, 3, 1]);
    const pred = Array.from(tf.argMax(model(x), 1).dataSync());
    const labels = pred.map((p, i) => (i < 2 ? 1 - p : p));
    const y = tf.tensor1d(labels, 'int32');
    const adv = sparseRs(model, x, y, { eps: 2, queries: 20, seed: 1 });
    expect(Array.from(adv.dataSync().slice(0, 18))).toEqual(Array.from(xs.slice(0, 18)));
    const again = sparseRs(model, x, y, { eps: 2, queries: 20, seed: 1 });
    expect(Array.from(again.dataSync())).toEqual(Array.from(adv.dataSync()));
    tf.dispose([x, y, adv, again]);
  });

  it('targeted: reaches a target k pixels can reach, predicted as that target', () => {
    // Class 2 gains up to about 3·0.6 per changed pixel (three channels) and starts 1 logit behind.
    const r = rng(12);
    const W = Array.from({ length: 12 }, () => [0.2 * r() - 0.1, 0.2 * r() - 0.1, 1 + 0.2 * r() - 0.1]);
    const xs = Float32Array.from({ length: 6 * 12 }, () => 0.3 + 0.4 * r());
    const lead = Math.max(...margins(xs, W, [0, 0, 0], [2, 2, 2, 2, 2, 2]).map((m) => -m));
    const model = linearModel(W, [0, 0, -lead - 1]);
    const x = tf.tensor4d(xs, [6, 2, 2, 3]);
    const y = tf.argMax(model(x), 1).toInt() as tf.Tensor1D;
    expect(Array.from(y.dataSync())).not.toContain(2);
    const t = tf.fill([6], 2, 'int32') as tf.Tensor1D;
    const adv = sparseRs(model, x, y, { eps: 2, queries: 200, seed: 4, targeted: true, targets: t });
    expect(Array.from(tf.argMax(model(adv), 1).dataSync())).toEqual([2, 2, 2, 2, 2, 2]);
    perExampleDistances(adv.dataSync(), xs, 6, 3).l0.forEach((v) => expect(v).toBeLessThanOrEqual(2));
    tf.dispose([x, y, t, adv]);
  });

  it('names the bad argument before any work', () => {
    let calls = 0;
    const model = (v: tf.Tensor4D) => {
      calls++;
      return linearModel(randomWeights(1, 4, 2), [0, 0])(v);
    };
    const x = tf.tensor4d(randomImagesData(2, 4), [1, 2, 2, 1]);
    const y = tf.tensor1d([0], 'int32');
    expect(() => sparseRs(model, x, y, { eps: 1, queries: 0 })).toThrow('sparse-rs: queries: must be an integer >= 1, got 0');
    expect(() => sparseRs(model, x, y, { eps: 1, alphaInit: 0 })).toThrow('sparse-rs: alphaInit must be a number in (0, 1], got 0');
    expect(() => sparseRs(model, x, y, { eps: 1.5 })).toThrow('sparse-rs: eps must be a whole number of pixels, got 1.5');
    expect(() => sparseRs(model, x, y, { eps: 1, pInit: 0.5 } as never)).toThrow('sparse-rs: unknown option "pInit"');
    expect(() => sparseRs(model, x, y, { eps: -1 })).toThrow('sparse-rs: eps: must be a finite number >= 0, got -1');
    expect(calls).toBe(0);
    tf.dispose([x, y]);
  });

  it('leaks no tensor per call', async () => {
    const model = linearModel(randomWeights(3, 12, 3), [0, 0, 0]);
    const x = tf.tensor4d(randomImagesData(5, 2 * 12), [2, 2, 2, 3]);
    const y = tf.tensor1d([0, 1], 'int32');
    await assertNoTensorLeak(() => sparseRs(model, x, y, { eps: 2, queries: 15, seed: 2 }), { label: 'sparse-rs' });
    tf.dispose([x, y]);
  });
});

describe('sparse-rs sees through gradient masking', () => {
  it('fools a hard-rounding model that PGD-L0 cannot (zero gradient), with the same k pixels', () => {
    // Pixels at 0.4 round to 0; a changed pixel set to 1 rounds to 1. Class 1 wins when 3 of 16 pixels
    // are 1. tf.round has a zero gradient, so PGD-L0 (starting at x) does not move.
    const model = roundingCounter(2.5);
    const x = tf.fill([8, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    const fooledBy = (adv: tf.Tensor4D) => notClass0(model, adv);
    const byPgd = pgdL0(model, x, y, { eps: 3, steps: 10, seed: 3 });
    const byRs = sparseRs(model, x, y, { eps: 3, queries: 100, seed: 3 });
    expect(fooledBy(byRs)).toBe(8);
    expect(fooledBy(byPgd)).toBe(0);
    tf.dispose([x, y, byPgd, byRs]);
  });
});

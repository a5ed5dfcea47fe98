// Square Attack (L-inf): schedule, closed forms on linear models, query accounting, gradient masking.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../attacks/pgd.ts';
import { square, squareFraction, squareSide } from '../../attacks/square.ts';
import { linearModel, marginUpperBound, margins, notClass0, perExampleDistances, randomImagesData, randomWeights, rng, roundingCounter } from './helpers.ts';

describe('square schedule', () => {
  it('halves p at the paper steps of a 10,000-query run, rescaled to shorter runs', () => {
    const at = (it: number) => squareFraction(0.8, it, 10000);
    expect([1, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001, 6000, 6001, 8000, 8001, 9999].map(at)).toEqual([
      0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625, 0.00625, 0.003125, 0.003125, 0.0015625, 0.0015625,
    ]);
    // 100 queries: step 1 is step 100 of 10,000 (two halvings).
    expect(squareFraction(0.8, 1, 100)).toBeCloseTo(0.2, 12);
    // Monotone non-increasing in the step for any run length.
    fc.assert(fc.property(fc.integer({ min: 2, max: 20000 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (q, p) => {
      let prev = Infinity;
      for (let it = 1; it < q; it += Math.max(1, Math.floor(q / 50))) {
        const f = squareFraction(p, it, q);
        expect(f).toBeLessThanOrEqual(prev);
        expect(f).toBeGreaterThanOrEqual(p / 512);
        prev = f;
      }
    }), { numRuns: 30, seed: 3 });
  });

  it('square side: round(sqrt(p h w)), at least 1 pixel and smaller than the image', () => {
    expect(squareSide(0.8, 32, 32)).toBe(29);
    expect(squareSide(0.05, 32, 32)).toBe(7);
    expect(squareSide(0.0015625, 32, 32)).toBe(1);
    expect(squareSide(1, 4, 4)).toBe(3);
    expect(squareSide(1, 1, 6)).toBe(1);
  });
});

describe('square on linear models (closed forms)', () => {
  it('never exceeds the largest margin the budget allows, and reaches it when one corner is optimal', () => {
    // Property: random multi-class linear models, random eps; the attack's final margin is at most the exact maximum.
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
        const adv = square(linearModel(W, b), x, y, { eps, queries: 30, seed });
        const got = margins(adv.dataSync(), W, b, labels);
        const bound = marginUpperBound(xs, W, b, labels, eps);
        got.forEach((m, i) => expect(m).toBeLessThanOrEqual(bound[i] + 1e-4));
        const dist = perExampleDistances(adv.dataSync(), xs, batch);
        dist.linf.forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
        tf.dispose([x, y, adv]);
      }),
      { numRuns: 15, seed: 11 },
    );

    // When w_other - w_label > 0 on every pixel the optimum is x + eps everywhere; a bias too large to
    // overcome keeps the search running, and the random search must find that corner exactly.
    const d = 16;
    const r = rng(5);
    const W = Array.from({ length: d }, () => [0, 0.2 + r()]);
    const b = [100, 0];
    const xs = Float32Array.from({ length: 2 * d }, () => 0.2 + 0.6 * r());
    const eps = 0.1;
    const x = tf.tensor4d(xs, [2, 4, 4, 1]);
    const y = tf.tensor1d([0, 0], 'int32');
    const adv = square(linearModel(W, b), x, y, { eps, queries: 300, seed: 2 });
    const a = adv.dataSync();
    for (let j = 0; j < a.length; j++) expect(a[j]).toBeCloseTo(Math.fround(xs[j] + eps), 6);
    const got = margins(a, W, b, [0, 0]);
    const best = marginUpperBound(xs, W, b, [0, 0], eps);
    got.forEach((m, i) => expect(m).toBeCloseTo(best[i], 4));
    tf.dispose([x, y, adv]);
  });
});

describe('square queries, early stop and untouched images', () => {
  it('uses exactly the clean check plus `queries` model evaluations on a model it cannot fool, fewer when all are fooled', () => {
    let calls = 0;
    const d = 4;
    const unbreakable = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 50), tf.reshape(tf.sum(v, [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const x = tf.tensor4d(randomImagesData(4, 3 * d), [3, 2, 2, 1]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const adv = square(unbreakable, x, y, { eps: 0.1, queries: 25 });
    // 1 validation call (functions are checked by running them once) + 1 clean check + 25 queries.
    expect(calls).toBe(27);
    calls = 0;
    const withEot = square(unbreakable, x, y, { eps: 0.1, queries: 10, eotSamples: 3 });
    expect(calls).toBe(1 + 3 * (1 + 10));

    // A model every stripe start fools: the search stops after the start.
    calls = 0;
    const easy = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 0.001), tf.reshape(tf.sum(tf.abs(tf.sub(v, 0.5)), [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const mid = tf.fill([3, 2, 2, 1], 0.5) as tf.Tensor4D;
    const fooled = square(easy, mid, y, { eps: 0.1, queries: 25 });
    expect(calls).toBe(3);
    expect(Array.from(tf.argMax(easy(fooled), 1).dataSync())).toEqual([1, 1, 1]);
    tf.dispose([x, y, adv, withEot, mid, fooled]);
  });

  it('returns images the model already gets wrong unchanged, bit for bit', () => {
    const W = randomWeights(8, 9, 2);
    const model = linearModel(W, [0, 0]);
    const xs = randomImagesData(9, 4 * 9);
    const x = tf.tensor4d(xs, [4, 3, 3, 1]);
    const pred = Array.from(tf.argMax(model(x), 1).dataSync());
    // Label two images with the class the model does not predict.
    const labels = pred.map((p, i) => (i < 2 ? 1 - p : p));
    const y = tf.tensor1d(labels, 'int32');
    const adv = square(model, x, y, { eps: 0.2, queries: 20, seed: 1 });
    const a = adv.dataSync();
    expect(Array.from(a.slice(0, 18))).toEqual(Array.from(xs.slice(0, 18)));
    tf.dispose([x, y, adv]);
  });

  it('targeted: reaches a target the budget can reach, predicted as that target', () => {
    // Class 2 gains about 1 per pixel over the others (12 pixels, eps 0.3: up to about +3.6) but starts behind.
    const r = rng(12);
    const W = Array.from({ length: 12 }, () => [0.2 * r() - 0.1, 0.2 * r() - 0.1, 1 + 0.2 * r() - 0.1]);
    const xs = Float32Array.from({ length: 6 * 12 }, () => 0.3 + 0.4 * r());
    // Bias class 2 so that the image closest to it is 1 logit short at the clean image.
    const lead = Math.max(...margins(xs, W, [0, 0, 0], [2, 2, 2, 2, 2, 2]).map((m) => -m));
    const model = linearModel(W, [0, 0, -lead - 1]);
    const x = tf.tensor4d(xs, [6, 2, 2, 3]);
    const y = tf.argMax(model(x), 1).toInt() as tf.Tensor1D;
    expect(Array.from(y.dataSync())).not.toContain(2);
    const t = tf.fill([6], 2, 'int32') as tf.Tensor1D;
    const adv = square(model, x, y, { eps: 0.3, queries: 200, seed: 4, targeted: true, targets: t });
    expect(Array.from(tf.argMax(model(adv), 1).dataSync())).toEqual([2, 2, 2, 2, 2, 2]);
    tf.dispose([x, y, t, adv]);
  });

  it('names the bad argument before any work', () => {
    const model = linearModel(randomWeights(1, 4, 2), [0, 0]);
    const x = tf.tensor4d(randomImagesData(2, 4), [1, 2, 2, 1]);
    const y = tf.tensor1d([0], 'int32');
    expect(() => square(model, x, y, { eps: 0.1, queries: 0 })).toThrow('square: queries: must be an integer >= 1, got 0');
    expect(() => square(model, x, y, { eps: 0.1, pInit: 1.5 })).toThrow('square: pInit must be a number in (0, 1], got 1.5');
    expect(() => square(model, x, y, { eps: 0.1, steps: 5 } as never)).toThrow('square: unknown option "steps"');
    expect(() => square(model, x, y, { eps: -1 })).toThrow('square: eps: must be a finite number >= 0, got -1');
    tf.dispose([x, y]);
  });
});

describe('square sees through gradient masking', () => {
  it('fools a hard-rounding model that PGD cannot (zero gradient), with the same budget', () => {
    // Pixels at 0.4 round to 0; within eps 0.15 a pixel can reach 0.55 and round to 1. Class 1 wins
    // when 5 of 16 pixels do. tf.round has a zero gradient, so PGD only has its random start.
    const model = roundingCounter(4.5);
    const x = tf.fill([8, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    const fooledBy = (adv: tf.Tensor4D) => notClass0(model, adv);
    const byPgd = pgd(model, x, y, { eps: 0.15, steps: 10, seed: 3 });
    const bySquare = square(model, x, y, { eps: 0.15, queries: 50, seed: 3 });
    expect(fooledBy(bySquare)).toBe(8);
    expect(fooledBy(byPgd)).toBeLessThan(8);
    tf.dispose([x, y, byPgd, bySquare]);
  });
});

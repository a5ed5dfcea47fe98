// HopSkipJump: on affine models every size lies between the exact distance to misclassification and a
// few percent above it (L2 and L-inf); it uses labels only (scores that say nothing change nothing);
// it breaks a zero-gradient model near its exact minimum; the budgeted form, query accounting, images
// it cannot start on, option errors and leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { hsja, hsjaLinf, hsjaMinimal } from '../../attacks/hsja.ts';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, perExampleDistances, planeDistances, randomImagesData, randomWeights } from './helpers.ts';

/** A 3-class affine model on 8x8x1 images and 8 images in [0.4, 0.6] labelled as it predicts (boundaries inside the box). */
function affine64() {
  const W = randomWeights(7, 64, 3, 1);
  const b = [0, 0.2, -0.2];
  const model = linearModel(W, b);
  const xs = Float32Array.from(randomImagesData(8, 8 * 64), (v) => 0.4 + 0.2 * v);
  const x = tf.tensor4d(xs, [8, 8, 8, 1]);
  const labels = Array.from(tf.tidy(() => tf.argMax(model(x), 1).dataSync()));
  return { W, b, model, xs, x, y: tf.tensor1d(labels, 'int32'), labels };
}

/** 16 pixels at 0.4, class 1 once 5 of them round up (exceed 0.5): tf.round has a zero gradient everywhere. */
const rounding = (v: tf.Tensor4D) => tf.tidy(() => {
  const ones = tf.reshape(tf.sum(tf.round(v), [1, 2, 3]), [-1, 1]);
  return tf.concat([tf.zerosLike(ones), tf.sub(ones, 4.5)], 1) as tf.Tensor2D;
});

const predictions = (model: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D) => Array.from(tf.tidy(() => tf.argMax(model(x), 1).dataSync()));

describe('hsja on affine models', () => {
  for (const norm of ['l2', 'linf'] as const) {
    it(`${norm}: every example is misclassified, at no less than the exact distance and within 5% of it after 25 steps`, () => {
      const { W, b, model, xs, x, y, labels } = affine64();
      const exact = planeDistances(xs, W, b, labels, norm).map((row) => Math.min(...row));
      const r = hsjaMinimal(model, x, y, { eps: 0, norm, steps: 25, seed: 1 });
      // No misclassified point is closer than the exact distance to the nearest boundary (float32 slack).
      r.norms.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
        expect(v).toBeLessThanOrEqual(exact[i] * 1.05);
      });
      const a = r.adversarial.dataSync();
      perExampleDistances(a, xs, 8)[norm].forEach((v, i) => expect(v).toBeCloseTo(r.norms[i], 6));
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
      predictions(model, r.adversarial).forEach((p, i) => expect(p).not.toBe(labels[i]));
      tf.dispose([x, y, r.adversarial]);
    });
  }

  it('more steps never end farther: the size after 25 steps is at most the size after 5', () => {
    const { model, x, y } = affine64();
    const short = hsjaMinimal(model, x, y, { eps: 0, steps: 5, seed: 2 });
    const long = hsjaMinimal(model, x, y, { eps: 0, steps: 25, seed: 2 });
    // The first 5 steps are the same run (same seed), and the best point so far is kept.
    long.norms.forEach((v, i) => expect(v).toBeLessThanOrEqual(short.norms[i]));
    tf.dispose([x, y, short.adversarial, long.adversarial]);
  });

  it('sees labels only: a model whose scores are one-hot labels gives the same examples bit for bit', () => {
    const { model, x, y } = affine64();
    const labelOnly = (v: tf.Tensor4D) => tf.tidy(() => tf.mul(tf.oneHot(tf.argMax(model(v), 1), 3).toFloat(), 7) as tf.Tensor2D);
    const a = hsjaMinimal(model, x, y, { eps: 0, steps: 4, seed: 3 });
    const b = hsjaMinimal(labelOnly, x, y, { eps: 0, steps: 4, seed: 3 });
    expect(Array.from(b.adversarial.dataSync())).toEqual(Array.from(a.adversarial.dataSync()));
    expect(Array.from(b.norms)).toEqual(Array.from(a.norms));
    expect(Array.from(b.queries)).toEqual(Array.from(a.queries));
    tf.dispose([x, y, a.adversarial, b.adversarial]);
  });

  it('budgeted: images farther than eps come back clean bit for bit, those well within eps are fooled, nothing leaves the ball', () => {
    const { W, b, model, xs, x, y, labels } = affine64();
    for (const norm of ['l2', 'linf'] as const) {
      const exact = planeDistances(xs, W, b, labels, norm).map((row) => Math.min(...row));
      const sorted = [...exact].sort((p, q) => p - q);
      const eps = (sorted[3] + sorted[4]) / 2;
      const adv = norm === 'l2' ? hsja(model, x, y, { eps, steps: 25, seed: 1 }) : hsjaLinf(model, x, y, { eps, steps: 25, seed: 1 });
      const a = adv.dataSync();
      const pred = predictions(model, adv);
      exact.forEach((e, i) => {
        // No point within eps is misclassified when the boundary is farther: provably clean.
        if (e > eps) {
          expect(pred[i]).toBe(labels[i]);
          expect(Array.from(a.slice(i * 64, (i + 1) * 64))).toEqual(Array.from(xs.slice(i * 64, (i + 1) * 64)));
        }
        // Found within 5% of the exact distance (the test above), so fooled when that fits in eps.
        if (e * 1.05 < eps) expect(pred[i]).not.toBe(labels[i]);
      });
      perExampleDistances(a, xs, 8)[norm].forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
      adv.dispose();
    }
    tf.dispose([x, y]);
  });
});

describe('hsja without gradients', () => {
  it('breaks a zero-gradient rounding model near its exact least L2 change (5 pixels by 0.1), where PGD-L2 cannot', () => {
    const x = tf.fill([4, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([4], 'int32') as tf.Tensor1D;
    const r = hsjaMinimal(rounding, x, y, { eps: 0, steps: 20, seed: 1 });
    const least = Math.sqrt(5) * 0.1;
    r.norms.forEach((v) => {
      expect(v).toBeGreaterThan(least);
      expect(v).toBeLessThan(1.3 * least);
    });
    const byHsja = hsja(rounding, x, y, { eps: 1.3 * least, steps: 20, seed: 1 });
    const byPgd = pgdL2(rounding, x, y, { eps: 1.3 * least, steps: 20, seed: 1 });
    expect(predictions(rounding, byHsja)).toEqual([1, 1, 1, 1]);
    expect(predictions(rounding, byPgd).filter((p) => p === 1).length).toBeLessThan(4);
    tf.dispose([x, y, r.adversarial, byHsja, byPgd]);
  });

  it('linf: on the rounding model every size exceeds 0.1 (every pixel must pass 0.5) and comes within 1% of it', () => {
    const x = tf.fill([2, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([2], 'int32') as tf.Tensor1D;
    const r = hsjaMinimal(rounding, x, y, { eps: 0, norm: 'linf', steps: 10, seed: 1 });
    r.norms.forEach((v) => {
      expect(v).toBeGreaterThan(0.1 - 1e-7);
      expect(v).toBeLessThan(0.101);
    });
    tf.dispose([x, y, r.adversarial]);
  });
});

describe('hsja queries and edge cases', () => {
  /** The affine model, counting the images it is asked to label. */
  function counted() {
    const s = affine64();
    let rows = 0;
    return { ...s, model: (v: tf.Tensor4D) => ((rows += v.shape[0]), s.model(v)), rows: () => rows };
  }

  it('counts every labelled image: the per-image counts add up to what the model was asked (plus the one validating call)', () => {
    const s = counted();
    const r = hsjaMinimal(s.model, s.x, s.y, { eps: 0, steps: 3, seed: 1 });
    const total = Array.from(r.queries).reduce((p, q) => p + q, 0);
    expect(total + 8).toBe(s.rows());
    // At least the clean check and the three gradient estimates (100, 141, 173 labels) per image.
    r.queries.forEach((q) => expect(q).toBeGreaterThanOrEqual(1 + 100 + 141 + 173));
    tf.dispose([s.x, s.y, r.adversarial]);
  });

  it('queries stops an image once its count is reached (the iteration under way finishes)', () => {
    const s = counted();
    const cap = 600;
    const r = hsjaMinimal(s.model, s.x, s.y, { eps: 0, steps: 40, queries: cap, seed: 1 });
    const theta = 1 / (Math.sqrt(64) * 64);
    // One iteration costs at most its gradient estimate, 31 step tries and a binary search to width θ.
    const oneIteration = Math.floor(100 * Math.sqrt(40)) + 31 + Math.ceil(Math.log2(1 / theta)) + 1;
    r.queries.forEach((q) => {
      expect(q).toBeGreaterThanOrEqual(cap);
      expect(q).toBeLessThan(cap + oneIteration);
    });
    tf.dispose([s.x, s.y, r.adversarial]);
  });

  it('images misclassified already: size 0, one query, returned clean; images no noise can fool: Infinity, clean', () => {
    // Class 0 always wins (for labels 0) and loses (for labels 1): nothing to search either way.
    const constant = (v: tf.Tensor4D) => tf.tidy(() => tf.tile(tf.tensor2d([[1, 0]]), [v.shape[0], 1]) as tf.Tensor2D);
    const x = tf.tensor4d(randomImagesData(4, 4 * 16), [4, 4, 4, 1]);
    const y = tf.tensor1d([0, 1, 0, 1], 'int32');
    const r = hsjaMinimal(constant, x, y, { eps: 0, initTries: 7, seed: 1 });
    expect(Array.from(r.norms)).toEqual([Infinity, 0, Infinity, 0]);
    expect(Array.from(r.queries)).toEqual([8, 1, 8, 1]);
    expect(Array.from(r.adversarial.dataSync())).toEqual(Array.from(x.dataSync()));
    const adv = hsja(constant, x, y, { eps: 1, initTries: 3 });
    expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, y, r.adversarial, adv]);
  });

  it('eps 0 returns the images unchanged; the same seed gives the same bits, another seed other points', () => {
    const { model, x, y } = affine64();
    const zero = hsja(model, x, y, { eps: 0 });
    expect(Array.from(zero.dataSync())).toEqual(Array.from(x.dataSync()));
    const [a, b, c] = [1, 1, 2].map((seed) => hsjaMinimal(model, x, y, { eps: 0, steps: 2, seed }));
    expect(Array.from(b.adversarial.dataSync())).toEqual(Array.from(a.adversarial.dataSync()));
    expect(Array.from(c.adversarial.dataSync())).not.toEqual(Array.from(a.adversarial.dataSync()));
    tf.dispose([x, y, zero, a.adversarial, b.adversarial, c.adversarial]);
  });

  it('names a bad option before any model call, and leaks nothing', async () => {
    const s = counted();
    expect(() => hsja(s.model, s.x, s.y, { eps: 0.1, steps: 0 })).toThrow('hsja: steps: must be an integer >= 1, got 0');
    expect(() => hsja(s.model, s.x, s.y, { eps: 0.1, initEvals: 2.5 })).toThrow('hsja: initEvals: must be an integer >= 1, got 2.5');
    expect(() => hsjaLinf(s.model, s.x, s.y, { eps: 0.1, gamma: -1 })).toThrow('hsja-linf: gamma: must be a finite number > 0, got -1');
    expect(() => hsja(s.model, s.x, s.y, { eps: 0.1, targeted: true } as never)).toThrow('hsja: unknown option "targeted"');
    expect(s.rows()).toBe(0);
    await assertNoTensorLeak(() => hsjaMinimal(s.model, s.x, s.y, { eps: 0, steps: 2, initEvals: 20, seed: 1 }).adversarial, { label: 'hsjaMinimal' });
    await assertNoTensorLeak(() => hsjaLinf(s.model, s.x, s.y, { eps: 0.05, steps: 2, initEvals: 20, seed: 1 }), { label: 'hsja-linf' });
    tf.dispose([s.x, s.y]);
  });
});

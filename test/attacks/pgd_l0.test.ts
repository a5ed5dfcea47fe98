// PGD-L0 (PGD0, Croce & Hein 2019): the exact optimum of a linear model in one step, budget, errors.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgdL0 } from '../../attacks/pgd_l0.ts';
import { l0MarginBound, linearModel, perExampleDistances, rng } from './helpers.ts';

/** Margin z_1 - z_0 of a two-class linear model at flat images (float64). */
function margin(x: ArrayLike<number>, W: number[][], b: number[], i: number): number {
  const d = W.length;
  let m = b[1] - b[0];
  for (let j = 0; j < d; j++) m += x[i * d + j] * (W[j][1] - W[j][0]);
  return m;
}

describe('pgd-l0 on linear models (closed forms)', () => {
  it('one long step from x lands on the L0 optimum: the k pixels of largest gain, each at its best corner', () => {
    // With every pixel at 0.5 each channel has the same room (0.5) both ways, so the projection's gain
    // (||c-x||² - ||c-clip(c)||² = sum_ch (2t|a_ch|·0.5 - 0.25) for a step t·a past the box) ranks pixels
    // exactly as their margin gains 0.5·sum_ch |a_ch|: the projected step is the exact L0 optimum.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 9 }), fc.constantFrom(1, 3), (seed, k, c) => {
        const r = rng(seed);
        const d = 9 * c;
        // |w_1 - w_0| at least 0.5 per channel, so a step of 10 (in mean |gradient| units) leaves the box everywhere.
        const W = Array.from({ length: d }, () => [0, (r() < 0.5 ? -1 : 1) * (0.5 + r())]);
        const b = [100, 0];
        const xs = new Float32Array(2 * d).fill(0.5);
        const x = tf.tensor4d(xs, [2, 3, 3, c]);
        const y = tf.tensor1d([0, 0], 'int32');
        const adv = pgdL0(linearModel(W, b), x, y, { eps: k, steps: 1, stepSize: 10, randomStart: false, loss: 'margin' });
        const a = adv.dataSync();
        const best = l0MarginBound(xs, W, b, [0, 0], k, c);
        for (let i = 0; i < 2; i++) expect(margin(a, W, b, i)).toBeCloseTo(best[i], 4);
        // Changed values sit at the corners.
        for (let j = 0; j < a.length; j++) expect([0, 0.5, 1]).toContain(a[j]);
        expect(perExampleDistances(a, xs, 2, c).l0).toEqual([k, k]);
        tf.dispose([x, y, adv]);
      }),
      { numRuns: 20, seed: 17 },
    );
  });

  it('moves nothing where the gradient is zero, and stays within k pixels from any start', () => {
    const flat = (v: tf.Tensor4D) => tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 1), tf.reshape(tf.mul(tf.sum(v, [1, 2, 3]), 0), [-1, 1])], 1) as tf.Tensor2D);
    const x = tf.fill([2, 4, 4, 3], 0.3) as tf.Tensor4D;
    const y = tf.tensor1d([0, 0], 'int32');
    const still = pgdL0(flat, x, y, { eps: 5, steps: 3, randomStart: false });
    expect(Array.from(still.dataSync())).toEqual(Array.from(x.dataSync()));
    const started = pgdL0(flat, x, y, { eps: 5, steps: 3, seed: 1, randomStart: true });
    expect(perExampleDistances(started.dataSync(), x.dataSync(), 2, 3).l0).toEqual([5, 5]);
    tf.dispose([x, y, still, started]);
  });

  it('names the bad argument before any work', () => {
    let calls = 0;
    const model = (v: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.zeros([v.shape[0], 1]), tf.reshape(tf.sum(v, [1, 2, 3]), [-1, 1])], 1) as tf.Tensor2D);
    };
    const x = tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    expect(() => pgdL0(model, x, y, { eps: 2.5 })).toThrow('pgd-l0: eps must be a whole number of pixels, got 2.5');
    expect(() => pgdL0(model, x, y, { eps: 2, steps: 0 })).toThrow('pgd-l0: steps: must be an integer >= 1, got 0');
    expect(() => pgdL0(model, x, y, { eps: 2, quantile: 0.5 } as never)).toThrow('pgd-l0: unknown option "quantile"');
    expect(calls).toBe(0);
    tf.dispose([x, y]);
  });
});

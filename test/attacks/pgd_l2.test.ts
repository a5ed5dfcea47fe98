// L2 PGD: closed-form steps along the normalised gradient and projection onto the L2 ball.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { linearModel, perExampleDistances, randomWeights } from './helpers.ts';

describe('pgd-l2 on a binary linear model', () => {
  // ∇x CE = p_other·(w_other - w_label): its direction is u = (w_other - w_label)/||.||, whatever p is,
  // so k steps of size a from x land at x + min(k·a, eps)·u while inside the box.
  it('k steps of size a land at x + min(k·a, eps)·u (random cases)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 6 }), fc.double({ min: 0.005, max: 0.05, noNaN: true }), fc.double({ min: 0.01, max: 0.2, noNaN: true }),
        (seed, steps, stepSize, eps) => {
          const d = 12;
          const W = randomWeights(seed, d, 2);
          const model = linearModel(W, [0, 0]);
          const xData = Float32Array.from({ length: d }, (_, j) => 0.35 + 0.025 * j); // far enough from 0 and 1
          const x = tf.tensor4d(xData, [1, 2, 2, 3]);
          const y = tf.tensor1d([0], 'int32');
          const adv = pgdL2(model, x, y, { eps, steps, stepSize, randomStart: false });
          const diff = W.map((r) => r[1] - r[0]);
          const n = Math.hypot(...diff);
          const move = Math.min(steps * stepSize, eps);
          const got = adv.dataSync();
          for (let j = 0; j < d; j++) expect(Math.abs(got[j] - (xData[j] + (move * diff[j]) / n))).toBeLessThan(2e-6);
          tf.dispose([x, y, adv]);
        },
      ),
      { numRuns: 30, seed: 3 },
    );
  });

  it('a single step longer than eps is projected radially onto the sphere of radius eps', () => {
    const W = randomWeights(4, 8, 2);
    const model = linearModel(W, [0, 0]);
    const x = tf.fill([2, 2, 2, 2], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1], 'int32');
    const adv = pgdL2(model, x, y, { eps: 0.1, steps: 1, stepSize: 1, randomStart: false });
    const { l2 } = perExampleDistances(adv.dataSync(), x.dataSync(), 2);
    for (const v of l2) {
      expect(v).toBeLessThanOrEqual(0.1);
      expect(v).toBeGreaterThan(0.1 - 1e-5);
    }
    tf.dispose([x, y, adv]);
  });
});

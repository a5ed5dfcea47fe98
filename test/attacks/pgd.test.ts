// L-inf PGD: closed forms on linear models, targeted success, restarts keep the worst case.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../attacks/pgd.ts';
import { crossEntropyPerExample } from '../../attacks/loss.ts';
import { linearModel, randomImagesData, randomWeights } from './helpers.ts';

describe('pgd (L-inf)', () => {
  it('on a binary linear model, k steps of size a from x move by min(k·a, eps)·sign(w_other - w_label)', () => {
    const d = 8;
    const W = Array.from({ length: d }, (_, j) => [0.3 * Math.sin(j), 0.3 * Math.sin(j) + (j % 2 ? 0.5 : -0.7)]);
    const model = linearModel(W, [0, 0]);
    const xData = Float32Array.from({ length: d }, (_, j) => 0.3 + 0.05 * j);
    const x = tf.tensor4d(xData, [1, 2, 2, 2]);
    const y = tf.tensor1d([0], 'int32');
    for (const [steps, stepSize, eps] of [[2, 0.01, 0.1], [5, 0.03, 0.1]] as const) {
      const adv = pgd(model, x, y, { eps, steps, stepSize, randomStart: false }).dataSync();
      const move = Math.min(steps * stepSize, eps);
      for (let j = 0; j < d; j++) {
        expect(adv[j]).toBeCloseTo(xData[j] + move * Math.sign(W[j][1] - W[j][0]), 6);
      }
    }
    tf.dispose([x, y]);
  });

  it('targeted PGD reaches every target on a block-indicator linear model', () => {
    const d = 16;
    const W = Array.from({ length: d }, (_, j) => [0, 1, 2, 3].map((c) => (Math.floor(j / 4) === c ? 1 : 0)));
    const model = linearModel(W, [0.5, 0, 0, 0]);
    const xData = randomImagesData(3, 4 * d);
    const x = tf.tensor4d(xData, [4, 2, 2, 4]);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    const t = tf.tensor1d([1, 2, 3, 0], 'int32');
    const adv = pgd(model, x, y, { eps: 0.6, steps: 10, targeted: true, targets: t, seed: 1 });
    expect(Array.from(tf.argMax(model(adv), 1).dataSync())).toEqual([1, 2, 3, 0]);
    tf.dispose([x, y, t, adv]);
  });

  it('restarts keep, per example, the run with the highest loss (none fooled)', () => {
    // Tiny eps: nobody is fooled, so each example keeps its highest-CE restart.
    const W = randomWeights(5, 12, 3, 3);
    const model = linearModel(W, [4, 0, 0]);
    const x = tf.tensor4d(randomImagesData(6, 3 * 12), [3, 2, 2, 3]);
    const y = tf.tensor1d([0, 0, 0], 'int32');
    const opts = { eps: 0.01, steps: 1, stepSize: 0.002 };
    const ce = (adv: tf.Tensor4D) => Array.from(crossEntropyPerExample(model(adv), y).dataSync());
    // Restart r uses sub-seed (seed, r), so the (r+1)-restart run sees the r-restart run's starts plus one more.
    const runs = [0, 1, 2].map((r) => ce(pgd(model, x, y, { ...opts, restarts: r + 1, seed: 9 })));
    // Adding restarts can only raise each example's loss (worst case is kept).
    for (let i = 0; i < 3; i++) {
      expect(runs[1][i]).toBeGreaterThanOrEqual(runs[0][i]);
      expect(runs[2][i]).toBeGreaterThanOrEqual(runs[1][i]);
    }
    expect(Array.from(tf.argMax(model(x), 1).dataSync())).toEqual([0, 0, 0]);
    tf.dispose([x, y]);
  });
});

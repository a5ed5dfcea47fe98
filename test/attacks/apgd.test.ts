// APGD: checkpoint schedule of the paper, and strength against PGD on a small trained model.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apgd, apgdCheckpoints } from '../../attacks/apgd.ts';
import { crossEntropyPerExample } from '../../attacks/loss.ts';
import { pgd } from '../../attacks/pgd.ts';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { accuracy, linearModel, perExampleDistances, trainedModel } from './helpers.ts';

describe('apgd checkpoints', () => {
  it('match p_0=0, p_1=0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) for 100 iterations', () => {
    expect(apgdCheckpoints(100)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
  });
  it('are increasing, distinct and within (0, N] for every N', () => {
    for (let n = 1; n <= 300; n++) {
      const w = apgdCheckpoints(n);
      expect(w.length).toBeGreaterThan(0);
      w.forEach((v, i) => {
        expect(v).toBeGreaterThan(i === 0 ? 0 : w[i - 1]);
        expect(v).toBeLessThanOrEqual(n);
      });
    }
  });
});

describe('apgd on a linear model', () => {
  it('reaches the L-inf optimum x + eps·sign(w_1 - w_0) of a binary linear model from x', () => {
    const d = 8;
    const W = Array.from({ length: d }, (_, j) => [0, j % 3 === 0 ? -1 : 1]);
    const model = linearModel(W, [5, 0]); // the logit gap moves by <= 0.4: never fooled, so the best-loss point is returned
    const x = tf.fill([1, 2, 2, 2], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const adv = apgd(model, x, y, { eps: 0.05, steps: 20, randomStart: false }).dataSync();
    for (let j = 0; j < d; j++) expect(adv[j]).toBeCloseTo(0.5 + 0.05 * Math.sign(W[j][1] - W[j][0]), 6);
    tf.dispose([x, y]);
  });
});

describe('apgd step-size adaptation', () => {
  it('converges to an interior loss maximiser that its initial step 2·eps overshoots (halving works), closer than PGD', () => {
    // CE of class 0 with logits [0, -20·||x - c||²] is largest at x = c, inside the ball around x0.
    const c = tf.tensor4d([0.55, 0.45, 0.58, 0.5], [1, 2, 2, 1]);
    const model = (x: tf.Tensor4D) =>
      tf.tidy(() => {
        const d = tf.sum(tf.square(tf.sub(x, c)), [1, 2, 3]);
        return tf.stack([tf.zerosLike(d), tf.mul(d, -20)], 1) as tf.Tensor2D;
      });
    const x = tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const dist = (a: tf.Tensor4D, ord: number | 'euclidean') => tf.norm(tf.sub(a, c), ord).dataSync()[0];
    const aL2 = apgd(model, x, y, { eps: 0.3, norm: 'l2', steps: 50, randomStart: false });
    const pL2 = pgdL2(model, x, y, { eps: 0.3, steps: 50, randomStart: false });
    const aInf = apgd(model, x, y, { eps: 0.3, steps: 50, randomStart: false });
    expect(dist(aL2, 'euclidean')).toBeLessThan(2e-3);
    expect(dist(aL2, 'euclidean')).toBeLessThan(dist(pL2, 'euclidean'));
    expect(dist(aInf, Infinity)).toBeLessThan(5e-3);
    tf.dispose([c, x, y, aL2, pL2, aInf]);
  });
});

describe('apgd vs pgd on a trained model', () => {
  let m: Awaited<ReturnType<typeof trainedModel>>;
  beforeAll(async () => {
    m = await trainedModel();
  });
  afterAll(() => {
    m.model.dispose();
    tf.dispose([m.x, m.y]);
  });

  it('APGD-CE with the same number of iterations is at least as strong as PGD (accuracy, 1-example tolerance)', () => {
    expect(m.cleanAccuracy).toBeGreaterThan(0.95);
    for (const eps of [0.14, 0.16, 0.18]) {
      for (const randomStart of [true, false]) {
        const a = apgd(m.model, m.x, m.y, { eps, steps: 10, randomStart, seed: 1 });
        const p = pgd(m.model, m.x, m.y, { eps, steps: 10, randomStart, seed: 1 });
        expect(accuracy(m.model, a, m.y)).toBeLessThanOrEqual(accuracy(m.model, p, m.y) + 0.01 + 1e-6);
        for (const v of perExampleDistances(a.dataSync(), m.x.dataSync(), 100).linf) expect(v).toBeLessThanOrEqual(eps + 1e-6);
        tf.dispose([a, p]);
      }
    }
  });

  it('on examples it does not fool, APGD returns its best-loss point: loss at least that of the start', () => {
    const eps = 0.05; // too small to fool anyone here
    const a = apgd(m.model, m.x, m.y, { eps, steps: 10, randomStart: false });
    const lossAdv = crossEntropyPerExample(m.model.predict(a) as tf.Tensor2D, m.y).dataSync();
    const lossClean = crossEntropyPerExample(m.model.predict(m.x) as tf.Tensor2D, m.y).dataSync();
    for (let i = 0; i < 100; i++) expect(lossAdv[i]).toBeGreaterThanOrEqual(lossClean[i]);
    expect(accuracy(m.model, a, m.y)).toBe(m.cleanAccuracy);
    a.dispose();
  });
});

// The logit ensemble: its logits are the weighted mean of the members'; an attack on identical members is the
// attack on one; a transfer crafted on it against linear members follows the mean weights (closed form).
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ensembleModel } from '../../attacks/ensemble.ts';
import { fgsm } from '../../attacks/fgsm.ts';
import { pgd } from '../../attacks/pgd.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import type { Classifier } from '../../src/types.ts';
import { linearModel, randomImagesData, randomMlp, randomWeights } from './helpers.ts';

describe('ensembleModel', () => {
  it('returns the weighted mean of the members\' logits (weights normalised), any member count', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), (seed, k, weighted) => {
      const members = Array.from({ length: k }, (_, i) => randomMlp(seed + i, 12, 3));
      const weights = weighted ? members.map((_, i) => 0.5 + i) : undefined;
      const x = tf.tensor4d(randomImagesData(seed + 99, 2 * 12), [2, 2, 2, 3]);
      const got = (ensembleModel(members, weights) as (t: tf.Tensor4D) => tf.Tensor2D)(x);
      const parts = members.map((m) => m(x).arraySync());
      const total = weights ? weights.reduce((a, b) => a + b, 0) : k;
      const want = parts[0].map((row, i) => row.map((_, c) => parts.reduce((acc, p, m) => acc + ((weights ? weights[m] : 1) / total) * p[i][c], 0)));
      const g = got.arraySync();
      for (let i = 0; i < 2; i++) for (let c = 0; c < 3; c++) expect(g[i][c]).toBeCloseTo(want[i][c], 5);
      tf.dispose([x, got]);
    }), { numRuns: 20, seed: 1 });
  });

  it('an attack on an ensemble of identical members is the attack on one, bit for bit', () => {
    const m = randomMlp(3, 27, 4);
    const x = tf.tensor4d(randomImagesData(4, 3 * 27), [3, 3, 3, 3]);
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const [a, b] = [pgd(ensembleModel([m, m, m, m]), x, y, { eps: 0.1, steps: 4, seed: 2 }), pgd(m, x, y, { eps: 0.1, steps: 4, seed: 2 })];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([a, b, x, y]);
  });

  it('FGSM on an ensemble of linear models moves each pixel by eps·sign of the mean weights\' margin gradient', () => {
    const [W1, W2] = [randomWeights(5, 8, 2), randomWeights(6, 8, 2)];
    const x = tf.fill([1, 2, 2, 2], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const adv = fgsm(ensembleModel([linearModel(W1, [0, 0]), linearModel(W2, [0, 0])], [1, 3]), x, y, { eps: 0.1, loss: 'margin' });
    const got = adv.dataSync();
    for (let j = 0; j < 8; j++) {
      const w = (c: number) => 0.25 * W1[j][c] + 0.75 * W2[j][c];
      expect(got[j]).toBeCloseTo(0.5 + 0.1 * Math.sign(w(1) - w(0)), 6);
    }
    tf.dispose([adv, x, y]);
  });

  it('leaks no tensor per call, and refuses bad members, weights and mismatched class counts by name', async () => {
    const members: Classifier[] = [randomMlp(7, 12, 3), randomMlp(8, 12, 3)];
    const x = tf.tensor4d(randomImagesData(9, 12), [1, 2, 2, 3]);
    const fn = ensembleModel(members) as (t: tf.Tensor4D) => tf.Tensor2D;
    await assertNoTensorLeak(() => fn(x), { label: 'ensemble' });
    expect(() => ensembleModel([])).toThrow('ensembleModel: members must be a non-empty list of classifiers');
    expect(() => ensembleModel(members, [1])).toThrow('ensembleModel: weights must have one entry per member (2), got 1');
    expect(() => ensembleModel(members, [1, 0])).toThrow('ensembleModel: weights[1] must be a finite number > 0, got 0');
    const odd = ensembleModel([members[0], randomMlp(10, 12, 4)]) as (t: tf.Tensor4D) => tf.Tensor2D;
    expect(() => odd(x)).toThrow('ensembleModel: member 1 returns logits [1,4] but member 0 returns [1,3]');
    x.dispose();
  });
});

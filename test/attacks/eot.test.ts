// EOT: with k samples of a randomised linear model, the gradient is the average of the k loss gradients.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { eotGradient, withEot } from '../../attacks/eot.ts';
import { pgd } from '../../attacks/pgd.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { randomImagesData, randomWeights, rng } from './helpers.ts';

/** logits = (x + n)·W with fresh noise n per call, recorded so the test can recompute each sample. */
function noisyLinear(W: number[][], seed: number, scale: number) {
  const r = rng(seed);
  const noises: number[][] = [];
  const w = tf.tensor2d(W);
  const model = (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const n = Array.from({ length: x.size }, () => (2 * r() - 1) * scale);
      noises.push(n);
      return tf.matMul(tf.add(tf.reshape(x, [x.shape[0], -1]), tf.tensor2d(n, [x.shape[0], W.length])), w) as tf.Tensor2D;
    });
  return { model, noises, dispose: () => w.dispose() };
}

/** ∇x CE(label) of logits = (x + n)·W, in float64: W(p - e_y). */
function ceGrad(x: ArrayLike<number>, n: number[], W: number[][], labels: number[]): number[] {
  const d = W.length;
  const classes = W[0].length;
  const out: number[] = [];
  labels.forEach((y, i) => {
    const z = Array.from({ length: classes }, (_, c) => W.reduce((s, row, j) => s + (x[i * d + j] + n[i * d + j]) * row[c], 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, v) => a + v, 0);
    for (let j = 0; j < d; j++) out.push(W[j].reduce((acc, wjc, c) => acc + wjc * (e[c] / s - (c === y ? 1 : 0)), 0));
  });
  return out;
}

describe('eotGradient', () => {
  it('equals (1/k) Σ_i ∇x CE(f_i(x)) over the k noise samples the model drew', () => {
    const d = 6;
    const W = randomWeights(1, d, 3, 2);
    const xData = randomImagesData(2, 2 * d);
    const x = tf.tensor4d(xData, [2, 1, 2, 3]);
    const y = tf.tensor1d([0, 2], 'int32');
    for (const k of [1, 3, 8]) {
      const m = noisyLinear(W, 10 + k, 0.8);
      const g = eotGradient(m.model, x, y, { samples: k });
      // The first call is the output-shape check; the last k are the EOT samples.
      expect(m.noises.length).toBe(k + 1);
      const expected = new Array(2 * d).fill(0);
      for (const n of m.noises.slice(1)) ceGrad(xData, n, W, [0, 2]).forEach((v, j) => (expected[j] += v / k));
      const got = g.dataSync();
      for (let j = 0; j < 2 * d; j++) expect(Math.abs(got[j] - expected[j])).toBeLessThan(1e-5);
      g.dispose();
      m.dispose();
    }
    tf.dispose([x, y]);
  });

  it('is the average of loss gradients, not the gradient of the loss of averaged logits', () => {
    const d = 6;
    const W = randomWeights(3, d, 3, 4);
    const xData = randomImagesData(4, d);
    const x = tf.tensor4d(xData, [1, 1, 2, 3]);
    const y = tf.tensor1d([1], 'int32');
    const m = noisyLinear(W, 5, 1);
    const g = Array.from(eotGradient(m.model, x, y, { samples: 4 }).dataSync());
    const ns = m.noises.slice(1);
    const meanNoise = ns[0].map((_, j) => ns.reduce((s, n) => s + n[j], 0) / ns.length);
    const wrong = ceGrad(xData, meanNoise, W, [1]); // mean logits = logits at the mean noise (linear model)
    expect(Math.max(...g.map((v, j) => Math.abs(v - wrong[j])))).toBeGreaterThan(1e-3);
    m.dispose();
    tf.dispose([x, y]);
  });

  it('withEot fixes eotSamples on an attack, and EOT-PGD leaks nothing', async () => {
    const W = randomWeights(6, 4, 2);
    const m = noisyLinear(W, 7, 0.5);
    const x = tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const before = m.noises.length;
    const adv = withEot(pgd, 5)(m.model, x, y, { eps: 0.1, steps: 2 });
    // 1 validation call + 2 steps x 5 samples.
    expect(m.noises.length - before).toBe(1 + 2 * 5);
    adv.dispose();
    await assertNoTensorLeak(() => withEot(pgd, 3)(m.model, x, y, { eps: 0.1, steps: 2 }), { label: 'EOT-PGD' });
    m.dispose();
    tf.dispose([x, y]);
  });
});

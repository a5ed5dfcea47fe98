// Averaging a randomised defence over draws: RepeatDraws stacks the batch draw-major, MeanOfDraws is
// log of the mean softmax (closed forms: k equal draws give log-softmax, softmax of the output is the
// mean probability, fast-check over shapes), its gradient, serialisation, errors, leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { modelFromMemory, modelToMemory } from '../../src/io/model-io.ts';
import { MeanOfDraws, RepeatDraws } from '../../src/layers/draws.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const linf = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('RepeatDraws and MeanOfDraws', () => {
  it('repeat the batch draw-major; the mean of draws is log of the mean softmax, whose softmax is the mean probability', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 2, max: 7 }), fc.integer({ min: 0, max: 1000 }), (k, n, classes, seed) => {
        const x = tf.randomUniform([n, 3, 3, 2], 0, 1, 'float32', seed);
        const rep = new RepeatDraws({ draws: k }).apply(x) as tf.Tensor;
        expect(rep.shape).toEqual([k * n, 3, 3, 2]);
        for (let d = 0; d < k; d++) {
          const part = rep.slice([d * n, 0, 0, 0], [n, -1, -1, -1]);
          expect(linf(part, x)).toBe(0);
          part.dispose();
        }
        const logits = tf.randomNormal([k * n, classes], 0, 3, 'float32', seed + 1);
        const out = new MeanOfDraws({ draws: k }).apply(logits) as tf.Tensor;
        expect(out.shape).toEqual([n, classes]);
        // Mean probability by hand: row i averages rows i, n + i, ..., (k-1)n + i.
        const p = tf.softmax(logits as tf.Tensor2D).arraySync() as number[][];
        const want = Array.from({ length: n }, (_, i) => Array.from({ length: classes }, (_, c) => p.filter((_, r) => r % n === i).reduce((t, row) => t + row[c], 0) / k));
        const got = tf.softmax(out as tf.Tensor2D).arraySync() as number[][];
        const outExpSum = tf.tidy(() => tf.sum(tf.exp(out), 1).dataSync());
        for (let i = 0; i < n; i++) {
          expect(outExpSum[i]).toBeCloseTo(1, 5); // already log-probabilities
          for (let c = 0; c < classes; c++) expect(got[i][c]).toBeCloseTo(want[i][c], 5);
        }
        tf.dispose([x, rep, logits, out]);
      }),
      { numRuns: 30, seed: 3 },
    );
  });

  it('k identical draws give log-softmax of one; the gradient of the mean is the mean of the per-draw gradients of the ensemble', () => {
    const one = tf.randomNormal([4, 5], 0, 2, 'float32', 2) as tf.Tensor2D;
    const same = tf.concat([one, one, one], 0);
    const out = new MeanOfDraws({ draws: 3 }).apply(same) as tf.Tensor;
    const ls = tf.logSoftmax(one);
    expect(linf(out, ls)).toBeLessThan(1e-5);
    // d/dz_d of log mean_d softmax(z_d)[y] = (p_d[y] / sum_e p_e[y]) (onehot_y - p_d): a weighted split.
    const z = tf.randomNormal([6, 3], 0, 1, 'float32', 5) as tf.Tensor2D; // k = 2, n = 3
    const y = [0, 2, 1];
    const layer = new MeanOfDraws({ draws: 2 });
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t) as tf.Tensor, tf.oneHot(y, 3))))(z).arraySync() as number[][];
    const p = tf.softmax(z).arraySync() as number[][];
    for (let i = 0; i < 3; i++) {
      const denom = p[i][y[i]] + p[3 + i][y[i]];
      for (const r of [i, 3 + i]) for (let c = 0; c < 3; c++) expect(g[r][c]).toBeCloseTo((p[r][y[i]] / denom) * ((c === y[i] ? 1 : 0) - p[r][c]), 5);
    }
    tf.dispose([one, same, out, ls, z]);
  });

  it('save and load with their draws, and refuse bad ones by name', async () => {
    const input = tf.input({ shape: [2, 2, 1] });
    const flat = tf.layers.flatten().apply(new RepeatDraws({ draws: 3 }).apply(input)) as tf.SymbolicTensor;
    const logits = tf.layers.dense({ units: 3, kernelInitializer: 'glorotNormal' }).apply(flat) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: new MeanOfDraws({ draws: 3 }).apply(logits) as tf.SymbolicTensor });
    const back = await modelFromMemory(await modelToMemory(m));
    expect(back.layers.filter((l) => l instanceof RepeatDraws || l instanceof MeanOfDraws).map((l) => (l as RepeatDraws).draws)).toEqual([3, 3]);
    const x = tf.randomUniform([4, 2, 2, 1], 0, 1, 'float32', 1);
    const [a, b] = [m.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
    expect(a.shape).toEqual([4, 3]);
    expect(linf(a, b)).toBe(0);
    tf.dispose([x, a, b]);
    m.dispose();
    back.dispose();
    expect(() => new RepeatDraws({ draws: 0 })).toThrow('RepeatDraws: draws must be an integer >= 1, got 0');
    expect(() => new MeanOfDraws({ draws: 2.5 })).toThrow('MeanOfDraws: draws must be an integer >= 1, got 2.5');
    expect(() => new MeanOfDraws({ draws: 2 }).apply(tf.zeros([3, 4]))).toThrow('MeanOfDraws: 3 rows are not 2 draws of one batch');
  });

  it('leak no tensor, forward and backward', async () => {
    const [rep, mean] = [new RepeatDraws({ draws: 4 }), new MeanOfDraws({ draws: 4 })];
    const x = tf.randomUniform([3, 2, 2, 1]);
    await assertNoTensorLeak(() => {
      tf.dispose(tf.grad((t: tf.Tensor) => tf.sum(mean.apply(tf.reshape(rep.apply(t) as tf.Tensor, [12, 4])) as tf.Tensor))(x));
    }, { label: 'draws layers' });
    x.dispose();
  });
});

// The benchmark's timed workloads: leak-free, right shapes, and the timer's bookkeeping.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { makeWorkload, median, timeSteps } from '../../src/bench/steps.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(g) as tf.SymbolicTensor });
}

describe('bench workloads', () => {
  it('train step lowers the loss on its fixed batch and leaks nothing', async () => {
    const model = tinyModel();
    const w = makeWorkload(model, 4, [8, 8, 3], 3);
    const first = w.train();
    const l0 = first.dataSync()[0];
    first.dispose();
    for (let i = 0; i < 30; i++) w.train().dispose();
    const last = w.train();
    expect(last.dataSync()[0]).toBeLessThan(l0);
    last.dispose();
    await assertNoTensorLeak(() => w.train(), { label: 'bench train step' });
    w.dispose();
    model.dispose();
  });

  it('attack step returns d loss / d input with the batch shape, matching a finite difference', async () => {
    const model = tinyModel();
    const w = makeWorkload(model, 2, [8, 8, 3], 3);
    const g = w.attack();
    expect(g.shape).toEqual([2, 8, 8, 3]);
    // The attack objective is the summed per-example cross-entropy (attacks/gradient.ts).
    // Directional derivative along the gradient itself: (L(x + h g) - L(x - h g)) / 2h = |g|^2.
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 0);
    const labels = tf.oneHot(tf.randomUniform([2], 0, 3, 'int32', 1), 3).toFloat();
    const loss = (xi: tf.Tensor) => tf.tidy(() =>
      tf.losses.softmaxCrossEntropy(labels, model.apply(xi, { training: false }) as tf.Tensor, undefined, undefined, tf.Reduction.SUM).dataSync()[0]);
    const h = 1e-2;
    const fd = (loss(x.add(g.mul(h))) - loss(x.sub(g.mul(h)))) / (2 * h);
    const norm2 = g.square().sum().dataSync()[0];
    expect(Math.abs(fd - norm2)).toBeLessThan(0.05 * norm2);
    tf.dispose([g, x, labels]);
    await assertNoTensorLeak(() => w.attack(), { label: 'bench attack step' });
    w.dispose();
    model.dispose();
  });

  it('timeSteps returns one mean per repeat and disposes every output', () => {
    const before = tf.memory().numTensors;
    let calls = 0;
    const s = timeSteps(() => { calls++; return tf.ones([2]); }, { warmup: 2, repeats: 3, steps: 4 });
    expect(s).toHaveLength(3);
    expect(calls).toBe(2 + 3 * 4);
    expect(s.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('median of odd and even lists; empty list is an error', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(/empty/);
  });
});

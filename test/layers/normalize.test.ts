import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Normalize } from '../../src/layers/normalize.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

describe('Normalize layer', () => {
  it('computes (x - mean[c]) / std[c] per channel and has no weights', () => {
    const layer = new Normalize({ mean: [0.1, 0.5, 0.9], std: [0.5, 0.25, 2] });
    tf.tidy(() => {
      const x = tf.tensor4d([0, 0.5, 1, 1, 0, 0.3], [1, 1, 2, 3]);
      const y = layer.apply(x) as tf.Tensor;
      const want = [(0 - 0.1) / 0.5, (0.5 - 0.5) / 0.25, (1 - 0.9) / 2, (1 - 0.1) / 0.5, (0 - 0.5) / 0.25, (0.3 - 0.9) / 2];
      Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    });
    expect(layer.trainableWeights.length + layer.nonTrainableWeights.length).toBe(0);
  });

  it('is its own inverse composed with x*std+mean (gradient = 1/std per channel)', () => {
    const layer = new Normalize({ mean: [0.2, 0.4], std: [0.5, 4] });
    tf.tidy(() => {
      const x = tf.randomUniform([2, 3, 3, 2], 0, 1, 'float32', 1);
      const g = tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(x);
      const perChannel = tf.mean(g, [0, 1, 2]).dataSync();
      expect(perChannel[0]).toBeCloseTo(2, 6);
      expect(perChannel[1]).toBeCloseTo(0.25, 6);
    });
  });

  it('round-trips through its config and is registered for deserialisation', () => {
    const layer = new Normalize({ mean: [0.3], std: [0.7], name: 'normalize' });
    const cfg = layer.getConfig();
    expect(cfg.mean).toEqual([0.3]);
    expect(cfg.std).toEqual([0.7]);
    const back = tf.serialization.SerializationMap.getMap().classNameMap['Normalize'];
    expect(back).toBeDefined();
    const copy = tf.layers.Layer.fromConfig(Normalize as never, cfg) as Normalize;
    expect(copy.mean).toEqual([0.3]);
    expect(copy.std).toEqual([0.7]);
  });

  it('rejects bad mean/std before use, naming the entry', () => {
    expect(() => new Normalize({ mean: [0, 0], std: [1] })).toThrow(/mean has 2 entries but std has 1/);
    expect(() => new Normalize({ mean: [0], std: [-1] })).toThrow(/std\[0\] = -1 must be a finite number > 0/);
    expect(() => new Normalize({ mean: [NaN], std: [1] })).toThrow(/mean\[0\]/);
    const layer = new Normalize({ mean: [0, 0], std: [1, 1] });
    expect(() => layer.apply(tf.input({ shape: [4, 4, 3] }))).toThrow(/2 entries but the input has 3 channel/);
  });

  it('leaks no tensors', async () => {
    const layer = new Normalize({ mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] });
    const x = tf.ones([1, 4, 4, 3]);
    await assertNoTensorLeak(() => layer.apply(x), { label: 'normalize' });
    x.dispose();
  });
});

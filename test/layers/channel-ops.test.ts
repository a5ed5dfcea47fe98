import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChannelShuffle, ChannelSlice } from '../../src/layers/channel-ops.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

describe('ChannelShuffle', () => {
  it('moves channel i*(C/g)+j to j*g+i (the NCHW reference permutation)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), (g, per) => {
        const c = g * per;
        const out = tf.tidy(() => {
          const x = tf.tensor4d(Array.from({ length: c }, (_, k) => k), [1, 1, 1, c]);
          return Array.from((new ChannelShuffle({ groups: g }).apply(x) as tf.Tensor).dataSync());
        });
        for (let i = 0; i < g; i++) for (let j = 0; j < per; j++) expect(out[j * g + i]).toBe(i * per + j);
      }),
      { numRuns: 20 },
    );
  });

  it('shuffling by g then by C/g restores the input', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([2, 3, 3, 12], 0, 1, 'float32', 1);
      const y = new ChannelShuffle({ groups: 4 }).apply(new ChannelShuffle({ groups: 3 }).apply(x) as tf.Tensor) as tf.Tensor;
      expect(tf.max(tf.abs(y.sub(x))).dataSync()[0]).toBe(0);
    });
  });

  it('rejects channel counts not divisible by the groups', () => {
    expect(() => new ChannelShuffle({ groups: 0 })).toThrow(/groups must be an integer >= 1/);
    expect(() => new ChannelShuffle({ groups: 3 }).apply(tf.input({ shape: [2, 2, 8] }))).toThrow(/8 channels not divisible by 3/);
  });
});

describe('ChannelSlice', () => {
  it('keeps channels [start, start+size) and passes gradient only to them', () => {
    tf.tidy(() => {
      const x = tf.tensor4d(Array.from({ length: 6 }, (_, k) => k), [1, 1, 1, 6]);
      const layer = new ChannelSlice({ start: 2, size: 3 });
      expect(Array.from((layer.apply(x) as tf.Tensor).dataSync())).toEqual([2, 3, 4]);
      const g = tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(x);
      expect(Array.from(g.dataSync())).toEqual([0, 0, 1, 1, 1, 0]);
    });
    expect(() => new ChannelSlice({ start: 4, size: 3 }).apply(tf.input({ shape: [1, 1, 6] }))).toThrow(/exceed the input's 6/);
  });

  it('leaks no tensors', async () => {
    const x = tf.ones([1, 2, 2, 6]);
    const s = new ChannelSlice({ start: 1, size: 2 });
    const sh = new ChannelShuffle({ groups: 2 });
    await assertNoTensorLeak(() => [s.apply(x), sh.apply(x)], { label: 'channel ops' });
    x.dispose();
  });
});

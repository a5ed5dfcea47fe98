// PyTorch semantics of the layer factory: symmetric padding of strided convs, ceil-mode max pooling,
// count_include_pad average pooling, grouped convolutions, torch output-size arithmetic.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LayerFactory, torchOutSize, type InitScheme } from '../../models/common.ts';

const ONES: InitScheme = {
  conv: () => ({ kind: 'ones' }),
  convBias: () => ({ kind: 'zeros' }),
  dense: () => ({ kind: 'ones' }),
  denseBias: () => ({ kind: 'zeros' }),
};

function run(build: (f: LayerFactory, x: tf.SymbolicTensor) => tf.SymbolicTensor, x: tf.Tensor4D, init = ONES): number[][] {
  const input = tf.input({ shape: x.shape.slice(1) });
  const model = tf.model({ inputs: input, outputs: build(new LayerFactory(0, init), input) });
  const out = tf.tidy(() => (model.predict(x) as tf.Tensor).squeeze([0, 3]).arraySync() as number[][]);
  model.dispose();
  return out;
}

describe('torchOutSize', () => {
  it('matches the torch formulas', () => {
    expect(torchOutSize(32, 3, 2, 1)).toBe(16);
    expect(torchOutSize(224, 7, 2, 3)).toBe(112);
    expect(torchOutSize(111, 3, 2, 0, true)).toBe(55); // SqueezeNet at 224: 111 -> 55
    expect(torchOutSize(6, 3, 2, 0, true)).toBe(3);
    expect(torchOutSize(6, 3, 2, 0, false)).toBe(2);
    expect(torchOutSize(5, 3, 3, 1, true)).toBe(2); // last window would start in the right padding: dropped
    expect(torchOutSize(2, 3, 1, 0)).toBe(0);
  });
});

describe('LayerFactory', () => {
  // x[i][j] = 4i + j on a 4x4 grid, single channel.
  const grid = () => tf.tensor4d(Array.from({ length: 16 }, (_, k) => k), [1, 4, 4, 1]);

  it('stride-2 3x3 conv pads 1 pixel on every side like torch (TF "same" would pad bottom/right only)', () => {
    const x = grid();
    const y = run((f, i) => f.conv(i, { filters: 1, kernel: 3, stride: 2 }, 'c'), x);
    // Window centred on (0,0): rows/cols {-1,0,1} -> x[0..1][0..1] = 0+1+4+5; centred on (2,2): x[1..3][1..3].
    expect(y[0][0]).toBeCloseTo(10);
    expect(y[1][1]).toBeCloseTo(5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15);
    expect(y.length).toBe(torchOutSize(4, 3, 2, 1));
    x.dispose();
  });

  it('ceil-mode max pool keeps the partial last window', () => {
    const x = tf.tensor4d(Array.from({ length: 36 }, (_, k) => k), [1, 6, 6, 1]);
    const y = run((f, i) => f.maxPool(i, { size: 3, stride: 2, ceil: true }, 'p'), x);
    expect(y.length).toBe(3);
    expect(y[0][0]).toBe(14); // max of rows 0-2, cols 0-2
    expect(y[2][2]).toBe(35); // partial window rows 4-5, cols 4-5
    x.dispose();
  });

  it('average pool counts the zero padding (count_include_pad=True)', () => {
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    const y = run((f, i) => f.avgPool(i, { size: 3, stride: 2, pad: 1 }, 'p'), x);
    expect(y[0][0]).toBeCloseTo(4 / 9); // corner window holds 4 real pixels out of 9
    expect(y[1][1]).toBeCloseTo(1);
    x.dispose();
  });

  it('grouped 1x1 conv equals a block-diagonal dense conv', () => {
    const input = tf.input({ shape: [3, 3, 6] });
    const f = new LayerFactory(4, { ...ONES, conv: () => ({ kind: 'normal', std: 1 }) });
    const model = tf.model({ inputs: input, outputs: f.conv(input, { filters: 9, kernel: 1, pad: 0, groups: 3 }, 'g') });
    const kernels = model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.getWeights()[0]);
    expect(kernels.length).toBe(3);
    expect(kernels.every((k) => k.shape.join() === '1,1,2,3')).toBe(true);
    tf.tidy(() => {
      const x = tf.randomNormal([2, 3, 3, 6], 0, 1, 'float32', 9);
      // Full 6->9 kernel with group g's 2x3 block at rows 2g.., cols 3g.. and zeros elsewhere.
      const full = tf.buffer([1, 1, 6, 9]);
      kernels.forEach((k, g) => {
        const kv = k.arraySync() as number[][][][];
        for (let i = 0; i < 2; i++) for (let o = 0; o < 3; o++) full.set(kv[0][0][i][o], 0, 0, 2 * g + i, 3 * g + o);
      });
      const expected = tf.conv2d(x as tf.Tensor4D, full.toTensor() as tf.Tensor4D, 1, 'valid');
      const got = model.predict(x) as tf.Tensor;
      expect(tf.max(tf.abs(got.sub(expected))).dataSync()[0]).toBeLessThan(1e-5);
    });
    model.dispose();
  });
});

// BPDA: generic straight-through/surrogate gradients, and the JpegLayer's BPDA modes via bpdaModel.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bpda, bpdaModel, jpegLayersOf } from '../../attacks/bpda.ts';
import { crossEntropyPerExample } from '../../attacks/loss.ts';
import { pgd } from '../../attacks/pgd.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, randomImagesData, randomLabels, randomWeights } from './helpers.ts';

const round4 = (v: tf.Tensor4D) => tf.div(tf.round(tf.mul(v, 4)), 4) as tf.Tensor4D;

function gradOf(fn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D): Float32Array {
  const g = tf.grad((v: tf.Tensor) => tf.sum(crossEntropyPerExample(fn(v as tf.Tensor4D), y)))(x);
  const out = g.dataSync() as Float32Array;
  g.dispose();
  return out;
}

describe('bpda (generic)', () => {
  const d = 12;
  const W = randomWeights(1, d, 3, 2);
  const head = linearModel(W, [0, 0.1, -0.1]);
  const x = tf.tensor4d(randomImagesData(2, 2 * d), [2, 2, 2, 3]);
  const y = tf.tensor1d([0, 2], 'int32');

  it('forward equals classifier(preprocess(x)) exactly', () => {
    const f = bpda(round4, 'identity', head);
    const z = round4(x);
    expect(Array.from(f(x).dataSync())).toEqual(Array.from(head(z).dataSync()));
  });

  it('identity surrogate: ∇x equals the classifier gradient at preprocess(x); without BPDA it is zero', () => {
    const z = round4(x);
    const want = gradOf(head, z, y);
    expect(Array.from(gradOf(bpda(round4, 'identity', head), x, y))).toEqual(Array.from(want));
    expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(1e-3);
    // Plain autodiff through rounding: the masked (zero) gradient BPDA exists to get around.
    expect(Array.from(gradOf((v) => head(round4(v)), x, y)).every((v) => v === 0)).toBe(true);
  });

  it('a nonlinear surrogate a(x) gives J_a(x)^T times the classifier gradient at preprocess(x)', () => {
    const want = gradOf(head, round4(x), y);
    const sq = (v: tf.Tensor4D) => tf.square(v) as tf.Tensor4D;
    const got = gradOf(bpda(round4, sq, head), x, y);
    const xs = x.dataSync();
    got.forEach((v, j) => expect(Math.abs(v - 2 * xs[j] * want[j])).toBeLessThan(1e-6));
  });

  it('preprocessing may be any function, even one leaving tfjs (no gradient at all)', () => {
    const viaJs = (v: tf.Tensor4D) => tf.tensor4d(Array.from(v.dataSync(), (p) => Math.round(p * 4) / 4), v.shape);
    expect(Array.from(gradOf(bpda(viaJs, 'identity', head), x, y))).toEqual(Array.from(gradOf(head, round4(x), y)));
  });

  it('PGD through BPDA fools a rounding-defended model that plain PGD cannot move', () => {
    const masked = (v: tf.Tensor4D) => head(round4(v));
    const labels = tf.argMax(masked(x), 1) as tf.Tensor1D; // start fully correct
    const plain = pgd(masked, x, labels, { eps: 0.3, steps: 10, randomStart: false });
    expect(Array.from(plain.dataSync())).toEqual(Array.from(x.dataSync())); // zero gradient: sign(0) = 0
    const withBpda = pgd(bpda(round4, 'identity', head), x, labels, { eps: 0.3, steps: 10, randomStart: false });
    const fooled = tf.notEqual(tf.argMax(masked(withBpda), 1), labels).dataSync();
    expect(Array.from(fooled).filter(Boolean).length).toBeGreaterThan(0);
    tf.dispose([labels, plain, withBpda]);
  });

  it('rejects bad arguments and leaks nothing', async () => {
    expect(() => bpda(undefined as never, 'identity', head)).toThrow(/bpda: preprocess must be a function/);
    expect(() => bpda(round4, 'soft' as never, head)).toThrow(/bpda: approx must be "identity" or a function/);
    const badShape = bpda((v) => tf.slice(v, [0, 0, 0, 0], [1, 1, 1, 1]) as tf.Tensor4D, 'identity', head);
    expect(() => badShape(x)).toThrow(/bpda: preprocess must return a tensor of the input shape/);
    await assertNoTensorLeak(() => gradOf(bpda(round4, (v) => tf.square(v) as tf.Tensor4D, head), x, y), { label: 'bpda grad' });
  });
});

describe('bpdaModel on a model with a JpegLayer', () => {
  function jpegModel(channels: 1 | 3, alpha = 5) {
    const model = tf.sequential({
      layers: [
        new JpegLayer({ inputShape: [8, 8, channels], quality: 50, alpha, name: 'jpeg' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.randomNormal({ seed: 3, stddev: 0.3 }) }),
      ],
    });
    const jpeg = model.layers[0] as JpegLayer;
    const head = (z: tf.Tensor4D) => model.layers[2].apply(model.layers[1].apply(z)) as tf.Tensor2D;
    const inMode = (mode: JpegLayer['mode'], v: tf.Tensor4D) => {
      const saved = jpeg.mode;
      jpeg.mode = mode;
      try {
        return jpeg.apply(v) as tf.Tensor4D;
      } finally {
        jpeg.mode = saved;
      }
    };
    return { model, jpeg, head, inMode };
  }

  for (const channels of [1, 3] as const) {
    it(`C=${channels}: forward is the hard-quantised model; modes are restored after each call`, () => {
      const { model, jpeg } = jpegModel(channels);
      const x = tf.tensor4d(randomImagesData(5, 2 * 64 * channels), [2, 8, 8, channels]);
      expect(jpegLayersOf(model)).toEqual([jpeg]);
      for (const backward of ['identity', 'soft'] as const) {
        const out = bpdaModel(model, { backward })(x).dataSync();
        expect(jpeg.mode).toBe('soft');
        jpeg.mode = 'hard';
        const hard = (model.apply(x) as tf.Tensor).dataSync();
        jpeg.mode = 'soft';
        expect(Array.from(out)).toEqual(Array.from(hard));
      }
      model.dispose();
      x.dispose();
    });

    it(`C=${channels}: identity backward = the classifier gradient at the hard JPEG output (the layer's linear path is the identity)`, () => {
      const { model, head, inMode } = jpegModel(channels);
      const x = tf.tensor4d(randomImagesData(6, 2 * 64 * channels), [2, 8, 8, channels]);
      const y = randomLabels(7, 2, 3);
      const got = gradOf(bpdaModel(model, { backward: 'identity' }), x, y);
      const want = gradOf(head, inMode('hard', x), y);
      const scale = Math.max(...Array.from(want, Math.abs));
      got.forEach((v, j) => expect(Math.abs(v - want[j])).toBeLessThan(1e-4 * scale + 1e-7));
      // And it equals the generic BPDA with the identity surrogate around the hard layer.
      const generic = gradOf(bpda((v) => inMode('hard', v), 'identity', head), x, y);
      generic.forEach((v, j) => expect(Math.abs(v - got[j])).toBeLessThan(1e-4 * scale + 1e-7));
      model.dispose();
      tf.dispose([x, y]);
    });
  }

  // The layer's 'bpda-soft' uses the analytic soft-quantiser derivative; the generic BPDA autodiffs the
  // soft layer. They agree to float32 precision for a smooth quantiser (alpha 0.05); at alpha 5 the
  // derivative is spiky at bin edges and float32 rounding differs by up to ~0.5% of the largest entry.
  for (const [alpha, rel] of [[0.05, 1e-5], [5, 1e-2]] as const) {
    it(`soft backward = generic BPDA with the soft JPEG layer as surrogate (alpha ${alpha})`, () => {
      const { model, head, inMode } = jpegModel(3, alpha);
      const x = tf.tensor4d(randomImagesData(8, 2 * 192), [2, 8, 8, 3]);
      const y = randomLabels(9, 2, 3);
      const got = gradOf(bpdaModel(model, { backward: 'soft' }), x, y);
      const want = gradOf(bpda((v) => inMode('hard', v), (v) => inMode('soft', v), head), x, y);
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale).toBeGreaterThan(0);
      got.forEach((v, j) => expect(Math.abs(v - want[j])).toBeLessThan(rel * scale + 1e-7));
      model.dispose();
      tf.dispose([x, y]);
    });
  }

  it('PGD through bpdaModel stays in budget and leaks nothing; errors for a model without JpegLayer', async () => {
    const { model } = jpegModel(1);
    const x = tf.tensor4d(randomImagesData(10, 2 * 64), [2, 8, 8, 1]);
    const y = randomLabels(11, 2, 3);
    const f = bpdaModel(model, { backward: 'identity' });
    await assertNoTensorLeak(() => pgd(f, x, y, { eps: 8 / 255, steps: 2 }), { label: 'PGD via bpdaModel' });
    const plain = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 1] }), tf.layers.dense({ units: 3 })] });
    expect(() => bpdaModel(plain, { backward: 'identity' })).toThrow(/has no JpegLayer/);
    expect(() => bpdaModel(model, { backward: 'round' as never })).toThrow(/backward must be "identity" or "soft"/);
    tf.dispose([x, y]);
    model.dispose();
    plain.dispose();
  });
});

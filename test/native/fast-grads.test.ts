// Each native fast path gives the stock tfjs path's values and gradients (float tolerance),
// over random shapes, and leaks no tensors.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../models/registry.ts';
import { makeWorkload } from '../../src/bench/steps.ts';
import { nativeBatchNormTrain, nativeFastPathsActive, withNativeFastPaths } from '../../src/native/fast-grads.ts';
import { oneDnnAvailable } from '../../src/native/onednn.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const native = tf.getBackend() === 'tensorflow';
const RUNS = { numRuns: 12 };

/** Max |a-b| / (1 + max|b|) over flattened tensors/arrays. */
function relErr(a: tf.Tensor | tf.Tensor[], b: tf.Tensor | tf.Tensor[]): number {
  const fa = (Array.isArray(a) ? a : [a]).flatMap((t) => Array.from(t.dataSync()));
  const fb = (Array.isArray(b) ? b : [b]).flatMap((t) => Array.from(t.dataSync()));
  expect(fa.length).toBe(fb.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < fa.length; i++) {
    diff = Math.max(diff, Math.abs(fa[i] - fb[i]));
    scale = Math.max(scale, Math.abs(fb[i]));
  }
  return diff / (1 + scale);
}

/** Run `fn` with the fast paths on and off; returns [fast, stock] (caller disposes). */
function both<T>(fn: () => T): [T, T] {
  return [withNativeFastPaths(true, fn), withNativeFastPaths(false, fn)];
}

/**
 * The layer's output, input gradient and weight gradients (for a random output cotangent seeded
 * `dySeed`) agree within 1e-5 with the fast paths on and off; disposes x and the layer.
 */
function expectLayerFastEqualsStock(layer: tf.layers.Layer, x: tf.Tensor, dySeed: number): void {
  const probe = layer.apply(x) as tf.Tensor;
  const dy = tf.randomNormal(probe.shape, 0, 1, 'float32', dySeed);
  const vars = layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
  const run = () => {
    const y = layer.apply(x) as tf.Tensor;
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar, vars);
    value.dispose();
    const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))(x);
    return [y, gx, ...vars.map((v) => grads[v.name])];
  };
  const [fast, stock] = both(run);
  for (let i = 0; i < fast.length; i++) expect(relErr(fast[i], stock[i])).toBeLessThan(1e-5);
  tf.dispose([x, probe, dy, ...fast, ...stock]);
  layer.dispose();
}

const shape4 = fc.record({
  n: fc.integer({ min: 1, max: 4 }), h: fc.integer({ min: 1, max: 6 }), w: fc.integer({ min: 1, max: 6 }),
  c: fc.integer({ min: 1, max: 5 }), seed: fc.nat(1000),
});

describe.skipIf(!native)('native fast paths (tensorflow backend)', () => {
  it('are registered and active on the native backend', () => {
    expect(nativeFastPathsActive()).toBe(true);
    expect(withNativeFastPaths(false, nativeFastPathsActive)).toBe(false);
  });

  it('ReLU gradient (TF ReluGrad) equals dy * step(x), zeros at x = 0', () => {
    fc.assert(fc.property(shape4, ({ n, h, w, c, seed }) => {
      tf.tidy(() => {
        // Round to a coarse grid so exact zeros occur: relu'(0) must be 0 on both paths.
        const x = tf.round(tf.randomNormal([n, h, w, c], 0, 2, 'float32', seed));
        const dy = tf.randomNormal([n, h, w, c], 0, 1, 'float32', seed + 1);
        const g = (xx: tf.Tensor) => tf.sum(tf.mul(tf.relu(xx), dy));
        const [fast, stock] = both(() => tf.grad(g)(x));
        expect(relErr(fast, stock)).toBe(0);
        expect(relErr(fast, tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32')))).toBe(0);
      });
    }), RUNS);
  });

  it('training batch norm: values, batch statistics and gradients equal moments + batchNorm autodiff', () => {
    fc.assert(fc.property(shape4.filter((s) => s.n * s.h * s.w >= 2), ({ n, h, w, c, seed }) => {
      tf.tidy(() => {
        const x = tf.randomNormal([n, h, w, c], 0.5, 2, 'float32', seed) as tf.Tensor4D;
        const gamma = tf.randomUniform([c], 0.5, 2, 'float32', seed + 1) as tf.Tensor1D;
        const beta = tf.randomNormal([c], 0, 1, 'float32', seed + 2) as tf.Tensor1D;
        const dy = tf.randomNormal([n, h, w, c], 0, 1, 'float32', seed + 3);
        const eps = 1e-3;
        const stockBn = (xx: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) => {
          const { mean, variance } = tf.moments(xx, [0, 1, 2]);
          return [tf.batchNorm4d(xx, mean as tf.Tensor1D, variance as tf.Tensor1D, b, g, eps), mean, variance] as const;
        };
        const [y, m, v] = nativeBatchNormTrain(x, gamma, beta, eps);
        const [ys, ms, vs] = stockBn(x, gamma, beta);
        expect(relErr(y, ys)).toBeLessThan(1e-5);
        expect(relErr(m, ms)).toBeLessThan(1e-5);
        expect(relErr(v, vs)).toBeLessThan(1e-5); // biased variance, as tfjs-layers' moving average uses
        // Mathematics: each channel of y has mean beta and variance gamma^2 * v / (v + eps).
        const out = tf.moments(y, [0, 1, 2]);
        expect(relErr(out.mean, beta)).toBeLessThan(1e-4);
        expect(relErr(out.variance, tf.div(tf.mul(tf.square(gamma), v), tf.add(v, eps)))).toBeLessThan(1e-4);
        const loss = (f: typeof stockBn) => (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(f(xx as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D)[0], dy));
        const gf = tf.grads(loss((xx, g, b) => nativeBatchNormTrain(xx, g, b, eps)))([x, gamma, beta]);
        const gs = tf.grads(loss(stockBn))([x, gamma, beta]);
        for (let i = 0; i < 3; i++) expect(relErr(gf[i], gs[i])).toBeLessThan(1e-4);
        // Training-mode BN output is invariant to a per-channel shift of x: the x-gradient sums to 0 per channel.
        expect(relErr(tf.sum(gf[0], [0, 1, 2]), tf.zeros([c]))).toBeLessThan(1e-4);
      });
    }), RUNS);
  });

  it('BatchNormalization layer in training mode: same output, moving statistics and weight gradients', () => {
    fc.assert(fc.property(shape4.filter((s) => s.n * s.h * s.w >= 2), ({ n, h, w, c, seed }) => {
      const layer = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5 });
      const x = tf.randomNormal([n, h, w, c], 1, 3, 'float32', seed);
      const dy = tf.randomNormal([n, h, w, c], 0, 1, 'float32', seed + 1);
      layer.apply(x, { training: false });
      layer.setWeights([tf.randomUniform([c], 0.5, 2, 'float32', seed + 2), tf.randomNormal([c], 0, 1, 'float32', seed + 3),
        tf.randomNormal([c], 0, 1, 'float32', seed + 4), tf.randomUniform([c], 0.5, 2, 'float32', seed + 5)]);
      const initial = layer.getWeights().map((t) => t.clone());
      const run = () => {
        layer.setWeights(initial);
        const vars = layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar, vars);
        const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx, { training: true }) as tf.Tensor, dy)))(x);
        return [value, ...vars.map((v) => grads[v.name]), gx, ...layer.getWeights().map((t) => t.clone())];
      };
      const [fast, stock] = both(run);
      for (let i = 0; i < fast.length; i++) expect(relErr(fast[i], stock[i])).toBeLessThan(1e-4);
      tf.dispose([x, dy, ...initial, ...fast, ...stock]);
      layer.dispose();
    }), { numRuns: 6 });
  });

  it('inference batch norm: gradient w.r.t. x is dy * gamma / sqrt(var + eps), as stock', () => {
    // (tfjs' own batchNorm gradient fails without a scale tensor, so the scale is always given.)
    fc.assert(fc.property(shape4, ({ n, h, w, c, seed }) => {
      tf.tidy(() => {
        const x = tf.randomNormal([n, h, w, c], 0, 2, 'float32', seed) as tf.Tensor4D;
        const mean = tf.randomNormal([c], 0, 1, 'float32', seed + 1) as tf.Tensor1D;
        const variance = tf.randomUniform([c], 0.1, 3, 'float32', seed + 2) as tf.Tensor1D;
        const scale = tf.randomUniform([c], -2, 2, 'float32', seed + 3) as tf.Tensor1D;
        const offset = tf.randomNormal([c], 0, 1, 'float32', seed + 4) as tf.Tensor1D;
        const dy = tf.randomNormal([n, h, w, c], 0, 1, 'float32', seed + 5);
        const f = (xx: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm4d(xx as tf.Tensor4D, mm as tf.Tensor1D, vv as tf.Tensor1D, offset, scale, 1e-3), dy));
        const [fast, stock] = both(() => tf.grads(f)([x, mean, variance]));
        for (let i = 0; i < 3; i++) expect(relErr(fast[i], stock[i])).toBeLessThan(1e-5);
        const closed = tf.mul(dy, tf.div(scale, tf.sqrt(tf.add(variance, 1e-3))));
        expect(relErr(fast[0], closed)).toBeLessThan(1e-5);
      });
    }), RUNS);
  });

  it('Conv2D layer: same output and input/kernel/bias gradients over strides, padding, bias', () => {
    const geom = fc.record({
      n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 3, max: 8 }), w: fc.integer({ min: 3, max: 8 }),
      cin: fc.integer({ min: 1, max: 4 }), filters: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 3 }),
      stride: fc.integer({ min: 1, max: 2 }), padding: fc.constantFrom('same' as const, 'valid' as const),
      useBias: fc.boolean(), activation: fc.constantFrom('linear' as const, 'relu' as const), seed: fc.nat(1000),
    });
    fc.assert(fc.property(geom, (g) => {
      // (tfjs has no gradient for dilated convolutions; dilated layers keep the stock path.)
      // With a bias this runs oneDNN's conv-with-bias kernel (onednn.ts), with ReLU a separate Relu.
      const layer = tf.layers.conv2d({ filters: g.filters, kernelSize: g.k, strides: g.stride, padding: g.padding, activation: g.activation,
        useBias: g.useBias, biasInitializer: 'randomNormal', kernelInitializer: tf.initializers.glorotNormal({ seed: g.seed }) });
      const x = tf.randomNormal([g.n, g.h, g.w, g.cin], 0, 1, 'float32', g.seed);
      expectLayerFastEqualsStock(layer, x, g.seed + 1);
    }), RUNS);
  });

  it('the oneDNN kernels (max pooling with workspace, conv with bias) passed their start-up probe here', () => {
    expect(oneDnnAvailable).toEqual({ maxPool: true, convBias: true });
  });

  it('MaxPooling2D layer: same values and input gradient (ties included) over pool sizes, strides, padding', () => {
    const geom = fc.record({
      n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 3, max: 9 }), w: fc.integer({ min: 3, max: 9 }),
      c: fc.integer({ min: 1, max: 4 }), pool: fc.integer({ min: 1, max: 3 }), stride: fc.integer({ min: 1, max: 3 }),
      padding: fc.constantFrom('same' as const, 'valid' as const), seed: fc.nat(1000),
    });
    fc.assert(fc.property(geom, (g) => {
      const layer = tf.layers.maxPooling2d({ poolSize: g.pool, strides: g.stride, padding: g.padding });
      // ReLU of a coarse grid: many exact ties, so both paths must pick the same element per window.
      const x = tf.relu(tf.round(tf.randomNormal([g.n, g.h, g.w, g.c], 0, 1.5, 'float32', g.seed)));
      const probe = layer.apply(x) as tf.Tensor;
      const dy = tf.randomNormal(probe.shape, 0, 1, 'float32', g.seed + 1);
      const run = () => [layer.apply(x) as tf.Tensor, tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))(x)];
      const [fast, stock] = both(run);
      expect(relErr(fast[0], stock[0])).toBe(0);
      // Overlapping windows add several dy terms into one pixel in another order (rounding only);
      // a tie sent to a different element would be an O(1) error.
      expect(relErr(fast[1], stock[1])).toBeLessThan(1e-6);
      tf.dispose([x, probe, dy, ...fast, ...stock]);
    }), { numRuns: 30 });
  });

  it('Dense layer (rank 2, linear or ReLU): same output and input/kernel/bias gradients', () => {
    const geom = fc.record({
      n: fc.integer({ min: 1, max: 5 }), fin: fc.integer({ min: 1, max: 12 }), units: fc.integer({ min: 1, max: 6 }),
      useBias: fc.boolean(), activation: fc.constantFrom('linear' as const, 'relu' as const), seed: fc.nat(1000),
    });
    fc.assert(fc.property(geom, (g) => {
      const layer = tf.layers.dense({ units: g.units, useBias: g.useBias, activation: g.activation, biasInitializer: 'randomNormal',
        kernelInitializer: tf.initializers.glorotNormal({ seed: g.seed }) });
      const x = tf.randomNormal([g.n, g.fin], 0, 1, 'float32', g.seed);
      expectLayerFastEqualsStock(layer, x, g.seed + 1);
    }), RUNS);
  });

  it('Conv2D with another non-linear activation (tanh) keeps the stock path and gives the same values', () => {
    const layer = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) });
    const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 4);
    const [fast, stock] = both(() => tf.grad((xx: tf.Tensor) => tf.sum(layer.apply(xx) as tf.Tensor))(x));
    expect(relErr(fast, stock)).toBeLessThan(1e-6);
    tf.dispose([x, fast, stock]);
    layer.dispose();
  });

  it('whole small_cnn: training step (loss, updated weights) and attack gradient equal the stock path, leak-free', async () => {
    const model = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 10, seed: 1 });
    const initial = model.getWeights().map((t) => t.clone());
    const run = () => {
      model.setWeights(initial);
      const work = makeWorkload(model, 4, [16, 16, 3], 10, 7);
      const attack = work.attack();
      const loss = work.train();
      const out = [loss, attack, ...model.getWeights().map((t) => t.clone())];
      work.dispose();
      return out;
    };
    const [fast, stock] = both(run);
    expect(relErr(fast[0], stock[0])).toBeLessThan(1e-5);
    expect(relErr(fast[1], stock[1])).toBeLessThan(1e-4);
    for (let i = 2; i < fast.length; i++) expect(relErr(fast[i], stock[i])).toBeLessThan(1e-4);
    tf.dispose([...fast, ...stock]);
    model.setWeights(initial);
    const work = makeWorkload(model, 4, [16, 16, 3], 10, 7);
    await assertNoTensorLeak(() => work.train(), { label: 'fast-path training step' });
    await assertNoTensorLeak(() => work.attack(), { label: 'fast-path attack step' });
    work.dispose();
    tf.dispose(initial);
    model.dispose();
  });

  it('each override, on its own, leaks no tensors (forward and every gradient)', async () => {
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const mean = tf.randomNormal([3], 0, 1, 'float32', 2) as tf.Tensor1D;
    const variance = tf.randomUniform([3], 0.5, 2, 'float32', 3) as tf.Tensor1D;
    const scale = tf.randomUniform([3], 0.5, 2, 'float32', 4) as tf.Tensor1D;
    const offset = tf.randomNormal([3], 0, 1, 'float32', 5) as tf.Tensor1D;
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor) => tf.sum(tf.relu(a)))([x]), { label: 'ReluGrad' });
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.square(nativeBatchNormTrain(a as tf.Tensor4D, s as tf.Tensor1D, o as tf.Tensor1D, 1e-5)[0])))([x, scale, offset]), { label: 'FusedBatchNormV3 train' });
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.square(tf.batchNorm4d(a as tf.Tensor4D, m as tf.Tensor1D, v as tf.Tensor1D, o as tf.Tensor1D, s as tf.Tensor1D, 1e-5))))([x, mean, variance, scale, offset]), { label: 'inference batchNorm gradient' });
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' });
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor) => tf.sum(conv.apply(a) as tf.Tensor))([x]), { label: 'Conv2D layer' });
    conv.dispose();
    const convReluBias = tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', useBias: true });
    const convVars = () => convReluBias.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
    convReluBias.apply(x);
    await assertNoTensorLeak(() => { const r = tf.variableGrads(() => tf.sum(convReluBias.apply(x) as tf.Tensor) as tf.Scalar, convVars()); return [r.value, ...Object.values(r.grads)]; }, { label: 'oneDNN conv with bias + ReLU' });
    convReluBias.dispose();
    const pool = tf.layers.maxPooling2d({ poolSize: 2 });
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor) => tf.sum(pool.apply(a) as tf.Tensor))([x]), { label: 'oneDNN max pooling' });
    const dense = tf.layers.dense({ units: 3, activation: 'relu' });
    const flat = tf.reshape(x, [2, 48]);
    dense.apply(flat);
    const denseVars = dense.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
    await assertNoTensorLeak(() => tf.grads((a: tf.Tensor) => tf.sum(dense.apply(a) as tf.Tensor))([flat]), { label: 'Dense layer, input gradient' });
    await assertNoTensorLeak(() => { const r = tf.variableGrads(() => tf.sum(dense.apply(flat) as tf.Tensor) as tf.Scalar, denseVars); return [r.value, ...Object.values(r.grads)]; }, { label: 'Dense layer, weight gradients' });
    dense.dispose();
    flat.dispose();
    tf.dispose([x, mean, variance, scale, offset]);
  });

  it('nativeBatchNormTrain rejects bad shapes and epsilon before running', () => {
    tf.tidy(() => {
      const x = tf.zeros([2, 3, 3, 4]) as tf.Tensor4D;
      expect(() => nativeBatchNormTrain(x, tf.ones([3]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, 1e-5)).toThrow(/scale and offset must have shape \[4\]/);
      expect(() => nativeBatchNormTrain(tf.zeros([2, 4]) as unknown as tf.Tensor4D, tf.ones([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, 1e-5)).toThrow(/rank-4/);
      expect(() => nativeBatchNormTrain(x, tf.ones([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D, 0)).toThrow(/epsilon/);
    });
  });
});

// Inference BN folding computes the same function as the original model (logits and input
// gradients), folds exactly the conv -> BN (-> ReLU) chains, shares every other layer, and the
// cache refolds when weights change and frees what it made.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../models/registry.ts';
import { foldBatchNorm } from '../../src/inference/fold-batchnorm.ts';
import { inferenceModel, setBatchNormFolding } from '../../src/inference/model.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { bpdaModel } from '../../attacks/bpda.ts';
import { jpegDefended } from '../../src/defences/jpeg.ts';
import { squeezeDefended } from '../../src/defences/squeeze.ts';
import { asLogitsFn } from '../../src/types.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

/** Give every BN layer non-trivial statistics and affine weights (fresh models have mean 0, var 1). */
function randomiseBatchNorms(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ws = layer.getWeights();
    // Order: gamma, beta, moving mean, moving variance.
    const fresh = ws.map((w, i) => (i === 3 ? tf.randomUniform(w.shape, 0.3, 3, 'float32', s++) : tf.randomNormal(w.shape, 0, 0.5, 'float32', s++)));
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / (1e-12 + tf.max(tf.abs(b)).dataSync()[0]));
}

function inputGrad(fn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, labels: tf.Tensor1D): tf.Tensor {
  return tf.grad((xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), fn(xx as tf.Tensor4D)))(x);
}

const CASES: Array<{ name: string; jpeg: boolean; folds: number; relus: number }> = [
  { name: 'small_cnn', jpeg: false, folds: 4, relus: 4 },
  { name: 'small_cnn', jpeg: true, folds: 4, relus: 4 },
  // Post-activation blocks: conv2 + BN feeds the residual add, so only conv1's ReLU fuses.
  { name: 'resnet8', jpeg: false, folds: 9, relus: 4 },
  // Depthwise convs fold too; the linear bottleneck keeps no ReLU.
  { name: 'mobilenetv2', jpeg: false, folds: 53, relus: 36 },
];

describe('foldBatchNorm', () => {
  for (const c of CASES) {
    it(`${c.name}${c.jpeg ? ' (JPEG-DL)' : ''}: folds ${c.folds} BNs and ${c.relus} ReLUs; same logits and input gradient`, () => {
      const model = buildModel(c.name, { inputShape: [32, 32, 3], numClasses: 10, seed: 3, jpeg: c.jpeg ? {} : false });
      randomiseBatchNorms(model, 11);
      const folded = foldBatchNorm(model)!;
      expect(folded.summary).toEqual({ foldedBatchNorms: c.folds, fusedRelus: c.relus });
      expect(folded.model.layers.filter((l) => l.getClassName() === 'BatchNormalization')).toHaveLength(
        model.layers.filter((l) => l.getClassName() === 'BatchNormalization').length - c.folds,
      );
      const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const labels = tf.tensor1d([1, 4, 7], 'int32');
      const original = (t: tf.Tensor4D) => model.apply(t, { training: false }) as tf.Tensor2D;
      const fast = (t: tf.Tensor4D) => folded.model.apply(t, { training: false }) as tf.Tensor2D;
      const [a, b] = [original(x), fast(x)];
      expect(maxRelDiff(b, a)).toBeLessThan(2e-5);
      const [ga, gb] = [inputGrad(original, x, labels), inputGrad(fast, x, labels)];
      expect(maxRelDiff(gb, ga)).toBeLessThan(1e-3);
      tf.dispose([x, labels, a, b, ga, gb]);
      for (const l of folded.ownLayers) l.dispose();
      model.dispose();
    });
  }

  it('the folded weights are W * gamma / sqrt(var + eps) and (b - mean) * s + beta (closed form on one conv)', () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const conv = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: true, kernelInitializer: 'ones', biasInitializer: 'ones' });
    const bn = tf.layers.batchNormalization({ axis: -1, epsilon: 0.5 });
    const model = tf.model({ inputs: input, outputs: bn.apply(conv.apply(input)) as tf.SymbolicTensor });
    bn.setWeights([tf.tensor1d([2, 1, -1]), tf.tensor1d([0.5, 0, 1]), tf.tensor1d([1, 2, 3]), tf.tensor1d([3.5, 0.5, 3.5])]);
    const folded = foldBatchNorm(model)!;
    const [kernel, bias] = folded.ownLayers[0].getWeights();
    // s = gamma / sqrt(var + 0.5) = [1, 1, -0.5]
    expect(Array.from(kernel.dataSync())).toEqual([1, 1, -0.5, 1, 1, -0.5]);
    // (1 - mean) * s + beta = [0.5, -1, 2]
    expect(Array.from(bias.dataSync())).toEqual([0.5, -1, 2]);
    expect(folded.summary).toEqual({ foldedBatchNorms: 1, fusedRelus: 0 });
    for (const l of folded.ownLayers) l.dispose();
    model.dispose();
  });

  it('leaves BNs that do not directly follow a conv (pre-activation), and returns null when nothing folds', () => {
    const input = tf.input({ shape: [6, 6, 3] });
    const pre = tf.layers.batchNormalization({}).apply(input) as tf.SymbolicTensor;
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3 }).apply(tf.layers.reLU().apply(pre)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: conv });
    expect(foldBatchNorm(model)).toBeNull();
    // A conv output also used elsewhere cannot absorb its BN.
    const c2 = tf.layers.conv2d({ filters: 2, kernelSize: 1 }).apply(input) as tf.SymbolicTensor;
    const both = tf.layers.add().apply([tf.layers.batchNormalization({}).apply(c2) as tf.SymbolicTensor, c2]) as tf.SymbolicTensor;
    const shared = tf.model({ inputs: input, outputs: both });
    expect(foldBatchNorm(shared)).toBeNull();
    model.dispose();
    shared.dispose();
  });

  it('does not change how the original model serialises (its own graph is untouched)', async () => {
    const model = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 10, seed: 6 });
    const before = JSON.stringify(model.toJSON(null, false));
    const folded = foldBatchNorm(model)!;
    expect(JSON.stringify(model.toJSON(null, false))).toBe(before);
    for (const l of folded.ownLayers) l.dispose();
    model.dispose();
  });

  it('shares the JpegLayer object, so run-time mode switches (BPDA) reach the folded model', () => {
    const model = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 10, seed: 2, jpeg: {} });
    const folded = foldBatchNorm(model)!;
    const jpeg = model.layers.find((l) => l instanceof JpegLayer);
    expect(jpeg).toBeDefined();
    expect(folded.model.layers).toContain(jpeg);
    for (const l of folded.ownLayers) l.dispose();
    model.dispose();
  });
});

describe('inferenceModel cache', () => {
  it('reuses the folded copy, refolds after any weight changes, and can be switched off', () => {
    const model = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 10, seed: 4 });
    const first = inferenceModel(model);
    expect(first).not.toBe(model);
    expect(inferenceModel(model)).toBe(first);
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    randomiseBatchNorms(model, 21);
    const second = inferenceModel(model);
    expect(second).not.toBe(first);
    const [a, b] = [model.apply(x, { training: false }) as tf.Tensor, second.apply(x, { training: false }) as tf.Tensor];
    expect(maxRelDiff(b, a)).toBeLessThan(2e-5);
    const prev = setBatchNormFolding(false);
    try {
      expect(inferenceModel(model)).toBe(model);
    } finally {
      setBatchNormFolding(prev);
    }
    tf.dispose([x, a, b]);
    model.dispose();
  });

  it('folds the classifier nested in an input-defence wrapper: same logits and gradients, the wrapper\'s dispose frees the folded layers', async () => {
    const before = tf.memory().numTensors;
    const inner = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 10, seed: 5 });
    randomiseBatchNorms(inner, 3);
    const alone = foldBatchNorm(inner)!;
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 3], 'int32');
    for (const wrap of [(m: tf.LayersModel) => jpegDefended(m, { quality: 75 }), (m: tf.LayersModel) => squeezeDefended(m, { kind: 'median', window: 2 })]) {
      const wrapper = wrap(inner);
      const folded = foldBatchNorm(wrapper)!;
      expect(folded.summary).toEqual(alone.summary);
      // Not vacuous: no BatchNormalization is left on the folded path.
      const bnsOf = (m: tf.LayersModel): number => m.layers.reduce((k, l) => k + (l instanceof tf.LayersModel ? bnsOf(l) : l.getClassName() === 'BatchNormalization' ? 1 : 0), 0);
      expect(bnsOf(folded.model)).toBe(bnsOf(wrapper) - alone.summary.foldedBatchNorms);
      const original = (t: tf.Tensor4D) => wrapper.apply(t, { training: false }) as tf.Tensor2D;
      const fast = (t: tf.Tensor4D) => folded.model.apply(t, { training: false }) as tf.Tensor2D;
      const [a, b] = [original(x), fast(x)];
      expect(maxRelDiff(b, a)).toBeLessThan(2e-5);
      // Through BPDA (the wrapper's preprocessing switched to the identity backward) the gradients agree.
      const [ga, gb] = [inputGrad(bpdaModel(wrapper, { backward: 'identity' }), x, labels), inputGrad(bpdaModel(folded.model, { backward: 'identity' }), x, labels)];
      expect(tf.tidy(() => tf.max(tf.abs(ga)).dataSync()[0])).toBeGreaterThan(0);
      expect(maxRelDiff(gb, ga)).toBeLessThan(1e-3);
      tf.dispose([a, b, ga, gb]);
      for (const l of folded.ownLayers) l.dispose();
      // The model as attacks see it is the folded one, freed with the wrapper.
      const fn = asLogitsFn(wrapper);
      await assertNoTensorLeak(() => inputGrad(fn, x, labels), { label: 'folded defence gradient' });
      wrapper.dispose();
    }
    for (const l of alone.ownLayers) l.dispose();
    tf.dispose([x, labels]);
    inner.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('model.dispose() also frees the folded weights; repeated attack-style calls leak nothing', async () => {
    const before = tf.memory().numTensors;
    const model = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 10, seed: 5 });
    const fn = asLogitsFn(model);
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 3], 'int32');
    await assertNoTensorLeak(() => inputGrad(fn, x, labels), { label: 'folded inference gradient' });
    tf.dispose([x, labels]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

// Registry behaviour: listing, option validation (clear errors before any work), seeded determinism,
// normalisation inside the model, and the minimum input sizes (both sufficient and necessary).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LayerFactory } from '../../models/common.ts';
import { _specFor, buildModel, countTrainableParams, getModelInfo, listModels, MODEL_NAMES } from '../../models/registry.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

function weightsOf(m: tf.LayersModel): Float32Array[] {
  return m.getWeights().map((w) => w.dataSync() as Float32Array);
}

describe('listModels', () => {
  it('lists every name once with family, paper set and description', () => {
    const list = listModels();
    expect(list.map((m) => m.name)).toEqual([...MODEL_NAMES]);
    expect(new Set(MODEL_NAMES).size).toBe(MODEL_NAMES.length);
    for (const m of list) {
      expect(m.family.length).toBeGreaterThan(0);
      expect(['cifar100', 'fine-grained', 'imagenet', 'small']).toContain(m.paperSet);
      expect(m.description.length).toBeGreaterThan(10);
      expect(m.minInputSize).toBeGreaterThanOrEqual(1);
    }
    for (const n of ['resnet32', 'resnet56', 'resnet110', 'vgg8', 'vgg13', 'mobilenetv2', 'shufflenetv1', 'shufflenetv2']) {
      expect(getModelInfo(n).paperSet).toBe('cifar100');
    }
    expect(getModelInfo('densenet121').paperSet).toBe('fine-grained');
    expect(getModelInfo('squeezenet1_1').paperSet).toBe('imagenet');
  });
});

describe('buildModel errors (thrown before any layer is built)', () => {
  const ok = { inputShape: [32, 32, 3] as [number, number, number], numClasses: 10 };
  it('unknown model lists the known ones', () => {
    expect(() => buildModel('resnet57', ok)).toThrow(/unknown model 'resnet57'; known models: .*resnet56.*vgg13/);
    expect(() => getModelInfo('nope')).toThrow(/known models/);
  });
  it('numClasses < 2 or not an integer', () => {
    expect(() => buildModel('resnet8', { ...ok, numClasses: 1 })).toThrow(/numClasses must be an integer >= 2, got 1/);
    expect(() => buildModel('resnet8', { ...ok, numClasses: 2.5 })).toThrow(/numClasses/);
  });
  it('bad inputShape', () => {
    expect(() => buildModel('resnet8', { ...ok, inputShape: [32, 32] as unknown as [number, number, number] })).toThrow(/inputShape must be/);
    expect(() => buildModel('resnet8', { ...ok, inputShape: [32, 0, 3] })).toThrow(/inputShape must be/);
  });
  it('mean/std length must match the channels; std > 0', () => {
    expect(() => buildModel('resnet8', { ...ok, normalization: { mean: [0.5], std: [0.2] } })).toThrow(/1 entries but the input has 3 channel/);
    expect(() => buildModel('resnet8', { ...ok, normalization: { mean: [0, 0, 0], std: [1, 0, 1] } })).toThrow(/std\[1\] = 0/);
    expect(() => buildModel('resnet8', { ...ok, normalization: { mean: [0, 0], std: [1, 1, 1] } })).toThrow(/mean has 2 entries but std has 3/);
  });
  it('JPEG variant needs 1 or 3 channels; seed must be a non-negative integer', () => {
    expect(() => buildModel('resnet8', { ...ok, inputShape: [32, 32, 4], jpeg: {} })).toThrow(/1 or 3 input channels/);
    expect(() => buildModel('resnet8', { ...ok, seed: -1 })).toThrow(/seed must be a non-negative integer/);
  });
  it('input too small names the minimum', () => {
    expect(() => buildModel('densenet121', { ...ok, inputShape: [28, 28, 3] })).toThrow(/input 28x28 is too small for densenet121; height and width must be >= 29/);
    expect(() => buildModel('vgg8', { ...ok, inputShape: [7, 32, 3] })).toThrow(/>= 8/);
  });
});

describe('minimum input sizes', () => {
  // For each architecture whose minimum is above 1: at the minimum the model runs and gives [1, classes];
  // one pixel less collapses some feature map to 0 pixels (shown by building the backbone unchecked).
  for (const name of MODEL_NAMES.filter((n) => _specFor(n)!.minInputSize > 1)) {
    it(`${name}: minimum ${_specFor(name)!.minInputSize} is sufficient and necessary`, () => {
      const spec = _specFor(name)!;
      const m = spec.minInputSize;
      const c = name === 'small_cnn' ? 1 : 3;
      const model = buildModel(name, { inputShape: [m, m, c], numClasses: 3 });
      const y = tf.tidy(() => (model.apply(tf.ones([1, m, m, c]), { training: false }) as tf.Tensor).shape);
      expect(y).toEqual([1, 3]);
      model.dispose();

      let collapsed = false;
      try {
        const input = tf.input({ shape: [m - 1, m - 1, c] });
        const out = spec.build(input, 3, new LayerFactory(0, spec.init));
        const unchecked = tf.model({ inputs: input, outputs: out });
        collapsed = unchecked.layers.some((l) => (l.outputShape as number[]).some((d) => d !== null && d <= 0));
        unchecked.dispose();
      } catch {
        collapsed = true; // tfjs itself refused the shape
      }
      expect(collapsed).toBe(true);
    });
  }
});

describe('determinism and normalisation', () => {
  it('same seed => identical weights (also with the JPEG layer); different seed => different weights', () => {
    const opts = { inputShape: [32, 32, 3] as [number, number, number], numClasses: 10 };
    const a = buildModel('resnet8', { ...opts, seed: 5, jpeg: {} });
    const b = buildModel('resnet8', { ...opts, seed: 5, jpeg: {} });
    const c = buildModel('resnet8', { ...opts, seed: 6, jpeg: {} });
    const wa = weightsOf(a);
    const wb = weightsOf(b);
    const wc = weightsOf(c);
    expect(wa.length).toBe(wb.length);
    wa.forEach((w, i) => expect(Array.from(wb[i])).toEqual(Array.from(w)));
    // Every random kernel differs with another seed (BN and JPEG tables are deterministic constants).
    const randomIdx = a.weights.map((w, i) => [w, i] as const).filter(([w]) => /kernel/.test(w.originalName)).map(([, i]) => i);
    expect(randomIdx.length).toBeGreaterThan(5);
    for (const i of randomIdx) expect(Array.from(wc[i])).not.toEqual(Array.from(wa[i]));
    // And different layers of one model do not share a random stream.
    const k1 = a.getLayer('s2_b1_conv1').getWeights()[0].dataSync();
    const k2 = a.getLayer('s2_b1_conv2').getWeights()[0].dataSync();
    expect(Array.from(k1)).not.toEqual(Array.from(k2));
    [a, b, c].forEach((m) => m.dispose());
  });

  it('initialisers follow the reference schemes (sample std within 5%)', () => {
    const r = buildModel('resnet56', { inputShape: [32, 32, 3], numClasses: 100 });
    const conv = r.getLayer('s3_b5_conv2').getWeights()[0]; // 3x3x64x64, kaiming_normal fan_out
    expect(tf.tidy(() => tf.moments(conv).variance.sqrt().dataSync()[0])).toBeCloseTo(Math.sqrt(2 / (9 * 64)), 2);
    const fc = r.getLayer('fc').getWeights()[0]; // torch default Linear: U(+-1/sqrt(64)), std = 1/sqrt(3*64)
    const fcStd = tf.tidy(() => tf.moments(fc).variance.sqrt().dataSync()[0]);
    expect(Math.abs(fcStd / (1 / Math.sqrt(3 * 64)) - 1)).toBeLessThan(0.05);
    expect(tf.tidy(() => fc.abs().max().dataSync()[0])).toBeLessThanOrEqual(1 / 8);
    r.dispose();
  });

  it("the 'normalize' layer computes (x - mean)/std per channel inside the model", () => {
    const mean = [0.5071, 0.4867, 0.4408];
    const std = [0.2675, 0.2565, 0.2761];
    const withNorm = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 10, seed: 3, normalization: { mean, std } });
    const plain = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 10, seed: 3 });
    tf.tidy(() => {
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 11);
      const a = withNorm.predict(x) as tf.Tensor;
      const b = plain.predict(x.sub(tf.tensor1d(mean)).div(tf.tensor1d(std))) as tf.Tensor;
      expect(tf.max(tf.abs(a.sub(b))).dataSync()[0]).toBeLessThan(1e-4);
      // The default normalisation is the identity.
      const n = plain.getLayer('normalize').apply(x) as tf.Tensor;
      expect(tf.max(tf.abs(n.sub(x))).dataSync()[0]).toBe(0);
    });
    withNorm.dispose();
    plain.dispose();
  });
});

describe('training-mode use', () => {
  it('a training-mode forward + gradient step on all trainable weights (JPEG tables included) leaks nothing', async () => {
    const model = buildModel('resnet8', { inputShape: [16, 16, 3], numClasses: 4, jpeg: {} });
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 2);
    const y = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 4);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const jpegVars = model.getLayer('jpeg').trainableWeights.length;
    expect(jpegVars).toBeGreaterThan(0);
    await assertNoTensorLeak(
      () => {
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          vars,
        );
        // Every trainable weight, including the JPEG tables, receives a finite gradient.
        expect(Object.keys(grads).length).toBe(vars.length);
        const finite = tf.tidy(() => tf.stack(Object.values(grads).map((g) => tf.all(tf.isFinite(g)))).all().dataSync()[0]);
        expect(finite).toBe(1);
        tf.dispose([value, ...Object.values(grads)]);
      },
      { reps: 2, label: 'resnet8+jpeg train step' },
    );
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('any channel count', () => {
  it('only the stem conv depends on the channels: resnet8 params = 83,892 - (3 - C) * 16 * 9', () => {
    for (const c of [1, 2, 4]) {
      const m = buildModel('resnet8', { inputShape: [12, 12, c], numClasses: 100 });
      expect(countTrainableParams(m)).toBe(83_892 - (3 - c) * 16 * 9);
      expect(tf.tidy(() => (m.predict(tf.zeros([1, 12, 12, c])) as tf.Tensor).shape)).toEqual([1, 100]);
      m.dispose();
    }
  });
});

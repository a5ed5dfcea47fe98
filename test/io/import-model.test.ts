// importModel: any tfjs layers classifier becomes one on [0,1] NHWC pixels returning logits. Checked
// against the source model itself: the preprocessing moved inside is the one asked for, a final softmax
// is removed exactly (softmax of the new logits is the source's output), and nothing else changes.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fgsm } from '../../attacks/fgsm.ts';
import { assertLogitOutputs, importModel, outputsLookLikeProbabilities, rowsLookLikeProbabilities } from '../../src/io/import-model.ts';
import { loadModel, saveModel } from '../../src/io/model-io.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { asLogitsFn } from '../../src/types.ts';

const root = mkdtempSync(join(tmpdir(), 'import-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const pixels = (n: number, shape: [number, number, number], seed: number) => tf.randomUniform([n, ...shape], 0, 1, 'float32', seed) as tf.Tensor4D;
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** A Keras-style classifier trained on 0-255 BGR pixels normalised per channel, ending in Dense(softmax) then Dropout. */
function bgrSoftmaxModel(): tf.Sequential {
  const m = tf.sequential({ name: 'keras_like' });
  m.add(tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  m.add(tf.layers.batchNormalization({ movingMeanInitializer: tf.initializers.constant({ value: 0.3 }), movingVarianceInitializer: tf.initializers.constant({ value: 2 }) }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 5, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  m.add(tf.layers.dropout({ rate: 0.5 }));
  return m;
}

/** The source model's input for [0,1] RGB pixels x: BGR, 0-255, (x - mean) / std. */
function sourceInput(x: tf.Tensor4D, mean: number[], std: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(tf.mul(tf.reverse(x, -1), 255), tf.tensor1d(mean)), tf.tensor1d(std)) as tf.Tensor4D);
}

describe('importModel', () => {
  const mean = [103.9, 116.8, 123.7];
  const std = [57.4, 57.1, 58.4];

  it('moves scaling, BGR order and normalisation inside and strips the softmax behind a Dropout: softmax(logits) is the source output', async () => {
    const source = bgrSoftmaxModel();
    const { model, summary } = await importModel(source, { inputScale: 255, mean, std, channelOrder: 'bgr' });
    expect(summary.strippedSoftmax).toBe(source.layers[3].name);
    expect(summary.stripError).toBeLessThanOrEqual(1e-5);
    expect(summary).toMatchObject({ classes: 5, inputScale: 255, mean, std, channelOrder: 'bgr', inputShape: [8, 8, 3] });
    const x = pixels(6, [8, 8, 3], 3);
    const want = source.predict(sourceInput(x, mean, std)) as tf.Tensor;
    const logits = model.predict(x) as tf.Tensor;
    expect(maxDiff(tf.softmax(logits), want)).toBeLessThan(1e-6);
    // Logits, not probabilities: log-softmax of the new outputs is the log of the source's.
    expect(maxDiff(tf.logSoftmax(logits), tf.log(want))).toBeLessThan(1e-4);
    expect(outputsLookLikeProbabilities(model)).toBe(false);
    expect(outputsLookLikeProbabilities(source)).toBe(true);
    // The source is left as it was.
    expect(maxDiff(source.predict(sourceInput(x, mean, std)) as tf.Tensor, want)).toBe(0);
    tf.dispose([x, want, logits]);
    model.dispose();
    source.dispose();
  });

  it('strips a final Softmax layer of a functional model with a residual branch, and an Activation(softmax)', async () => {
    for (const last of ['softmax-layer', 'activation'] as const) {
      const input = tf.input({ shape: [6, 6, 1] });
      const a = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
      const b = tf.layers.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(input) as tf.SymbolicTensor;
      const sum = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
      const flat = tf.layers.flatten().apply(sum) as tf.SymbolicTensor;
      const scores = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(flat) as tf.SymbolicTensor;
      const head = last === 'softmax-layer' ? tf.layers.softmax() : tf.layers.activation({ activation: 'softmax' });
      const out = head.apply(scores) as tf.SymbolicTensor;
      const source = tf.model({ inputs: input, outputs: out });
      const { model, summary } = await importModel(source);
      expect(summary.strippedSoftmax).toBe(head.name);
      const x = pixels(5, [6, 6, 1], 7);
      const logits = model.predict(x) as tf.Tensor;
      // The pre-softmax scores of the source, read off its own graph.
      const scoresModel = tf.model({ inputs: input, outputs: scores });
      expect(maxDiff(logits, scoresModel.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
      tf.dispose([x, logits]);
      model.dispose();
      source.dispose();
    }
  });

  it('strips the softmax of a head nested inside the source model', async () => {
    const base = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 6, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) })] });
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }) })] });
    const source = tf.sequential({ layers: [base, head] });
    const { model, summary } = await importModel(source);
    expect(summary.strippedSoftmax).toBe(`${head.name}/${head.layers[0].name}`);
    const x = pixels(4, [4, 4, 3], 10);
    const want = source.predict(x) as tf.Tensor;
    const logits = model.predict(x) as tf.Tensor;
    expect(maxDiff(tf.softmax(logits), want)).toBeLessThan(1e-6);
    expect(outputsLookLikeProbabilities(model)).toBe(false);
    tf.dispose([x, want, logits]);
    model.dispose();
    source.dispose();
  });

  it('leaves a logits model on [0,1] pixels computing exactly the same function', async () => {
    const source = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [5, 5, 1] }), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }) })] });
    const { model, summary } = await importModel(source, { name: 'mine' });
    expect(summary.strippedSoftmax).toBeNull();
    expect(model.name).toBe('mine');
    expect(model.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Sequential']);
    const x = pixels(3, [5, 5, 1], 12);
    expect(maxDiff(model.predict(x) as tf.Tensor, source.predict(x) as tf.Tensor)).toBe(0);
    x.dispose();
    model.dispose();
    source.dispose();
  });

  it('round-trips through saveModel / loadModel, and its BN-folded inference copy computes the same logits', async () => {
    const source = bgrSoftmaxModel();
    const { model } = await importModel(source, { inputScale: 255, mean, std, channelOrder: 'bgr' });
    const dir = join(root, 'imported');
    await saveModel(model, dir, { model: 'imported' });
    const back = await loadModel(dir);
    const x = pixels(4, [8, 8, 3], 13);
    const a = model.predict(x) as tf.Tensor;
    expect(maxDiff(back.predict(x) as tf.Tensor, a)).toBe(0);
    const folded = asLogitsFn(back)(x);
    expect(maxDiff(folded, a)).toBeLessThan(1e-4);
    tf.dispose([x, a, folded]);
    back.dispose();
    model.dispose();
    source.dispose();
  });

  it('lets attacks differentiate through the preprocessing on logits: FGSM on a linear softmax model has its closed form', async () => {
    // Source: p = softmax(W^T ((255 x - m) / s) + b). Loss on the new logits z: dCE/dx = 255 / s * W (p - y),
    // so FGSM moves each pixel by eps * sign(W (p - y)) (s > 0), then clips to [0,1].
    const source = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [3, 3, 1] }), tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.randomNormal({ seed: 14 }) })] });
    const { model } = await importModel(source, { inputScale: 255, mean: [120], std: [60] });
    const x = pixels(8, [3, 3, 1], 15);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32');
    const eps = 8 / 255;
    const adv = fgsm(model, x, y, { eps });
    const expected = tf.tidy(() => {
      const [w] = source.layers[1].getWeights();
      const p = source.predict(tf.div(tf.sub(tf.mul(x, 255), 120), 60)) as tf.Tensor2D;
      const g = tf.matMul(tf.sub(p, tf.oneHot(y, 4)), w, false, true).reshape(x.shape);
      return tf.clipByValue(tf.add(x, tf.mul(eps, tf.sign(g))), 0, 1);
    });
    expect(maxDiff(adv, expected)).toBeLessThan(1e-6);
    // The budget and the pixel box hold.
    expect(maxDiff(adv, x)).toBeLessThanOrEqual(eps + 1e-7);
    expect(tf.min(adv).dataSync()[0]).toBeGreaterThanOrEqual(0);
    expect(tf.max(adv).dataSync()[0]).toBeLessThanOrEqual(1);
    tf.dispose([x, y, adv, expected]);
    model.dispose();
    source.dispose();
  });

  it('refuses a softmax it cannot remove, and trusts outputs: logits', async () => {
    const source = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, activation: 'softmax' }), tf.layers.reshape({ targetShape: [3] })],
    });
    await expect(importModel(source)).rejects.toThrow(/look like probabilities.*no softmax to remove/);
    const { model, summary } = await importModel(source, { outputs: 'logits' });
    expect(summary.strippedSoftmax).toBeNull();
    expect(outputsLookLikeProbabilities(model)).toBe(true);
    model.dispose();
    source.dispose();
  });

  it('refuses to strip a softmax layer that is also used inside the network (removing it would change the predictions)', async () => {
    const input = tf.input({ shape: [2, 2, 1] });
    const shared = tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 16 }) });
    const h = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    const out = shared.apply(shared.apply(h) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const source = tf.model({ inputs: input, outputs: out });
    await expect(importModel(source)).rejects.toThrow(new RegExp(`removing the softmax of ${shared.name} changed the model's predictions`));
    source.dispose();
  });

  it('refuses inputs and outputs the suite cannot attack, and bad preprocessing, naming the problem', async () => {
    const flat = tf.sequential({ layers: [tf.layers.dense({ inputShape: [12], units: 3 })] });
    await expect(importModel(flat)).rejects.toThrow(/input is \[null,12\].*NHWC/);
    const chw = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [3, 8, 8] }), tf.layers.dense({ units: 3 })] });
    await expect(importModel(chw)).rejects.toThrow(/8 channels.*channels-first/);
    const one = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 1 })] });
    await expect(importModel(one)).rejects.toThrow(/output is \[null,1\].*at least 2 classes/);
    const i1 = tf.input({ shape: [4, 4, 3] });
    const i2 = tf.input({ shape: [4, 4, 3] });
    const two = tf.model({ inputs: [i1, i2], outputs: tf.layers.dense({ units: 3 }).apply(tf.layers.flatten().apply(tf.layers.add().apply([i1, i2]) as tf.SymbolicTensor)) as tf.SymbolicTensor });
    await expect(importModel(two)).rejects.toThrow(/2 inputs/);
    const grey = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
    const rgb = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 3 })] });
    await expect(importModel(rgb, { mean: [1, 2] })).rejects.toThrow(/mean has 2 entries but the model's input has 3 channel/);
    await expect(importModel(rgb, { std: [1, 0, 1] })).rejects.toThrow(/std\[1\] = 0 must be > 0/);
    await expect(importModel(rgb, { mean: [Number.NaN] })).rejects.toThrow(/mean\[0\] = NaN is not a finite number/);
    await expect(importModel(rgb, { inputScale: 0 })).rejects.toThrow(/inputScale must be a number > 0/);
    await expect(importModel(grey, { channelOrder: 'bgr' })).rejects.toThrow(/bgr needs a 3-channel input/);
    await expect(importModel(rgb, { outputs: 'probs' as 'auto' })).rejects.toThrow(/outputs must be auto or logits/);
    for (const m of [flat, chw, one, two, grey, rgb]) m.dispose();
  });

  it('leaks no tensor across repeated imports', async () => {
    const source = bgrSoftmaxModel();
    await assertNoTensorLeak(async () => {
      const { model } = await importModel(source, { inputScale: 255, mean, std, channelOrder: 'bgr' });
      model.dispose();
    }, { label: 'importModel' });
    // Nor when an import is refused after the copy was built.
    const bad = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, activation: 'softmax' }), tf.layers.reshape({ targetShape: [3] })] });
    await assertNoTensorLeak(async () => {
      await expect(importModel(bad)).rejects.toThrow(/probabilities/);
    }, { label: 'refused importModel' });
    source.dispose();
    bad.dispose();
  });
});

describe('probability outputs', () => {
  it('rowsLookLikeProbabilities: every softmax row is recognised, and none moved off the simplex', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.float({ min: Math.fround(1e-3), max: 1, noNaN: true }),
        (z, k, delta) => {
          const exps = z.map((v) => Math.exp(v - Math.max(...z)));
          const total = exps.reduce((a, b) => a + b, 0);
          const probs = exps.map((v) => v / total);
          expect(rowsLookLikeProbabilities([...probs, ...probs], 3)).toBe(true);
          // One entry moved up (the row sums to more than 1) or down past zero: not probabilities.
          const up = probs.map((v, i) => (i === k ? v + delta : v));
          expect(rowsLookLikeProbabilities([...probs, ...up], 3)).toBe(false);
          const below = probs.map((v, i) => (i === k ? -delta : v));
          expect(rowsLookLikeProbabilities(below, 3)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
    expect(rowsLookLikeProbabilities([0.5, 0.5, -0.2, 1.2], 2)).toBe(false);
    expect(rowsLookLikeProbabilities([], 2)).toBe(false);
  });

  it('assertLogitOutputs names where the model came from and how to fix it', () => {
    const soft = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
    expect(() => assertLogitOutputs(soft, '--model /x')).toThrow(/^--model \/x: the model's outputs look like probabilities.*jpegdl-robust import --model/);
    const logits = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
    expect(() => assertLogitOutputs(logits, '--model /y')).not.toThrow();
    soft.dispose();
    logits.dispose();
  });
});

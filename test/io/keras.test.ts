// loadKerasModel: Keras 3 .keras files read without Python. The fixtures were written by Keras 3 itself
// (scripts/make_keras_fixtures.py) together with Keras's outputs on fixed images; the tfjs model must
// give the same outputs, and every file it cannot reproduce exactly is refused by name.
import * as tf from '@tensorflow/tfjs';
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.ts';
import { importModel } from '../../src/io/import-model.ts';
import { kerasSnakeCase, loadKerasModel } from '../../src/io/keras.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'keras');
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as {
  keras: string;
  models: Record<string, { inputShape: [number, number, number]; inputScale: number; outputs: number[][] }>;
};
const root = mkdtempSync(join(tmpdir(), 'keras-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The fixture images: ((i * 7919) mod 10007) / 10007 by flat index, as the generator wrote them (pixels 0-1). */
function fixtureImages(shape: [number, number, number]): tf.Tensor4D {
  const n = 4 * shape[0] * shape[1] * shape[2];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = ((i * 7919) % 10007) / 10007;
  return tf.tensor4d(data, [4, ...shape]);
}

/** A copy of a fixture with its config.json edited. */
function edited(name: string, edit: (config: Record<string, any>) => void, out: string): string {
  const parts = unzipSync(new Uint8Array(readFileSync(join(FIXTURES, `${name}.keras`))));
  const config = JSON.parse(strFromU8(parts['config.json']));
  edit(config);
  parts['config.json'] = strToU8(JSON.stringify(config));
  const path = join(root, out);
  writeFileSync(path, zipSync(parts));
  return path;
}

describe('loadKerasModel', () => {
  it.each(['functional', 'sequential', 'nested'])('%s.keras gives the outputs Keras gave (within 1e-5)', async (name) => {
    const e = expected.models[name];
    const model = await loadKerasModel(join(FIXTURES, `${name}.keras`));
    const x = fixtureImages(e.inputShape);
    const y = tf.tidy(() => model.predict(tf.mul(x, e.inputScale)) as tf.Tensor);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(y, tf.tensor2d(e.outputs)))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('imported (pixels 0-255 moved inside, softmax removed) it is a logits model on [0,1] pixels with Keras\'s predictions', async () => {
    const e = expected.models.functional;
    const source = await loadKerasModel(join(FIXTURES, 'functional.keras'));
    const { model, summary } = await importModel(source, { inputScale: 255 });
    expect(summary.strippedSoftmax).toBe('dense');
    const x = fixtureImages(e.inputShape);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.softmax(model.predict(x) as tf.Tensor), tf.tensor2d(e.outputs)))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-5);
    x.dispose();
    model.dispose();
    source.dispose();
  });

  it('the README\'s Keras model (trained by Keras, optimizer state in the file) imports and predicts as Keras did on all 1000 embedded test images', async () => {
    const dir = join(import.meta.dirname, '..', '..', 'reports', 'readme-keras');
    const k = JSON.parse(readFileSync(join(dir, 'keras-predictions.json'), 'utf8')) as {
      preprocessing: { inputScale: number; mean: number; std: number };
      subsetPredictions: number[];
      subsetProbabilities: number[][];
      subsetAccuracy: number;
    };
    const source = await loadKerasModel(join(dir, 'fmnist-cnn.keras'));
    const { model } = await importModel(source, { inputScale: k.preprocessing.inputScale, mean: [k.preprocessing.mean], std: [k.preprocessing.std] });
    const { test } = await loadDataset({ name: 'fashion-mnist-embedded' });
    const [probs, pred] = tf.tidy(() => {
      const p = tf.softmax(model.predict(tf.tensor4d(test.images, [test.labels.length, 28, 28, 1])) as tf.Tensor2D);
      return [tf.max(tf.abs(tf.sub(p, tf.tensor2d(k.subsetProbabilities)))).dataSync()[0], Array.from(tf.argMax(p, 1).dataSync())];
    });
    expect(pred).toEqual(k.subsetPredictions);
    // Keras's probabilities were stored to 6 decimals.
    expect(probs).toBeLessThan(5e-6);
    expect(pred.filter((v, i) => v === test.labels[i]).length / pred.length).toBeCloseTo(k.subsetAccuracy, 10);
    model.dispose();
    source.dispose();
  });

  it('names weight paths by Keras\'s snake-case rule', () => {
    const cases: Record<string, string> = {
      ReLU: 're_lu', Conv2D: 'conv2d', DepthwiseConv2D: 'depthwise_conv2d', GlobalAveragePooling2D: 'global_average_pooling2d',
      BatchNormalization: 'batch_normalization', InputLayer: 'input_layer', Functional: 'functional', PReLU: 'p_re_lu', Conv2DTranspose: 'conv2d_transpose',
    };
    for (const [cls, snake] of Object.entries(cases)) expect(kerasSnakeCase(cls), cls).toBe(snake);
  });

  it('refuses what it cannot read or reproduce, naming the file and the layer', async () => {
    const f = (p: string) => loadKerasModel(p);
    const notZip = join(root, 'legacy.keras');
    writeFileSync(notZip, 'HDF5 pretend');
    await expect(f(notZip)).rejects.toThrow(/legacy\.keras: not a zip archive.*legacy \.h5/);
    await expect(f(join(root, 'missing.keras'))).rejects.toThrow(/missing\.keras: no such file/);
    const noConfig = join(root, 'noconfig.keras');
    writeFileSync(noConfig, zipSync({ 'model.weights.h5': new Uint8Array(8) }));
    await expect(f(noConfig)).rejects.toThrow(/config\.json is missing from the archive/);
    const sub = edited('functional', (c) => { c.class_name = 'MyNet'; }, 'sub.keras');
    await expect(f(sub)).rejects.toThrow(/the model is a MyNet; only Sequential and functional models/);
    const grouped = edited('functional', (c) => { c.config.layers[2].config.groups = 2; }, 'grouped.keras');
    await expect(f(grouped)).rejects.toThrow(/layer conv2d \(Conv2D\): grouped convolution \(groups=2\)/);
    const first = edited('sequential', (c) => { c.config.layers[1].config.data_format = 'channels_first'; }, 'cf.keras');
    await expect(f(first)).rejects.toThrow(/\(Conv2D\): channels_first data format/);
    const half = edited('sequential', (c) => { c.config.layers[3].config.dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'mixed_float16' } }; }, 'half.keras');
    await expect(f(half)).rejects.toThrow(/\(BatchNormalization\): dtype policy mixed_float16/);
    // A config that disagrees with the stored variables (no bias, but the file holds one).
    const noBias = edited('functional', (c) => { c.config.layers[5].config.use_bias = false; }, 'nobias.keras');
    await expect(f(noBias)).rejects.toThrow(/layer conv2d_1: the file holds 2 variables under layers\/conv2d_1\/vars but the layer has 1/);
  });

  it('leaks no tensor across loads', async () => {
    await assertNoTensorLeak(async () => {
      (await loadKerasModel(join(FIXTURES, 'nested.keras'))).dispose();
    }, { label: 'loadKerasModel' });
  });
});

// The README's PyTorch example (scripts/torch_fmnist_example.py): two Fashion-MNIST classifiers trained by
// PyTorch (one with PGD adversarial training), exported to ONNX. Imported with the user's normalisation,
// they must give PyTorch's logits on the 1000 embedded test images, and this suite's PGD must find what
// PyTorch's own PGD found on them (same algorithm, no random start): the attack, not only the forward
// pass, is checked against an independent implementation.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../attacks/pgd.ts';
import { loadDataset } from '../../src/data/index.ts';
import { importModel } from '../../src/io/import-model.ts';
import { loadOnnxModel } from '../../src/io/onnx.ts';

const DIR = join(import.meta.dirname, '..', '..', 'reports', 'readme-torch');
const results = JSON.parse(readFileSync(join(DIR, 'torch-results.json'), 'utf8')) as {
  normalize: { mean: number; std: number };
  models: Record<string, { logits_embedded_1000: number[][]; pgd10_no_random_start_correct: Record<string, number[]> }>;
};

describe('the README PyTorch models, imported from ONNX', () => {
  it.each(Object.keys(results.models))('%s: PyTorch\'s logits on all 1000 embedded test images, and PyTorch\'s PGD outcome on at least 998 of them (all 1000 on native TensorFlow)', async (name) => {
    const r = results.models[name]!;
    const { model } = await importModel(await loadOnnxModel(join(DIR, `${name}.onnx`)), { mean: [results.normalize.mean], std: [results.normalize.std] });
    const { test } = await loadDataset({ name: 'fashion-mnist-embedded' });
    const n = test.labels.length;
    expect(n).toBe(1000);
    const x = tf.tensor4d(test.images, [n, 28, 28, 1]);
    const y = tf.tensor1d(Int32Array.from(test.labels), 'int32');
    const logits = model.predict(x) as tf.Tensor2D;
    // PyTorch's logits were stored to 6 decimals.
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(logits, tf.tensor2d(r.logits_embedded_1000)))).dataSync()[0])).toBeLessThan(1e-5);
    expect(Array.from(tf.argMax(logits, 1).dataSync())).toEqual(r.logits_embedded_1000.map((row) => row.indexOf(Math.max(...row))));
    for (const [label, eps] of [['4/255', 4 / 255], ['8/255', 8 / 255]] as const) {
      const theirs = r.pgd10_no_random_start_correct[label]!;
      const adv = pgd(model, x, y, { eps, steps: 10, randomStart: false });
      const ours = tf.tidy(() => Array.from(tf.cast(tf.equal(tf.argMax(model.predict(adv) as tf.Tensor, 1), y), 'int32').dataSync()));
      const agree = ours.filter((v, i) => v === theirs[i]).length;
      expect(agree, `${name} at ${label}: ${agree}/1000 images with the same outcome`).toBeGreaterThanOrEqual(998);
      const acc = (v: number[]) => v.reduce((s, b) => s + b, 0) / v.length;
      expect(Math.abs(acc(ours) - acc(theirs))).toBeLessThanOrEqual(0.002);
      tf.dispose(adv);
    }
    tf.dispose([x, y, logits]);
    model.dispose();
  });
});

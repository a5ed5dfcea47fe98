// saveModel / loadModel: tfjs format on plain fs, identical outputs after a round trip (custom
// layers and learned JPEG tables included), metadata, atomic replacement, and clear file errors.
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../models/registry.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { loadModel, loadModelMetadata, saveModel } from '../../src/io/model-io.ts';

const root = mkdtempSync(join(tmpdir(), 'model-io-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('saveModel / loadModel', () => {
  it('round-trips a JPEG-DL ShuffleNetV2 (custom layers, learned tables, BN statistics) with identical outputs', async () => {
    const model = buildModel('shufflenetv2', {
      inputShape: [16, 16, 3],
      numClasses: 5,
      seed: 2,
      jpeg: { quality: 75 },
      normalization: { mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] },
    });
    const x = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const jpeg = model.getLayer('jpeg') as JpegLayer;
    // "Learn" tables: anything other than the quality-75 initialisation must survive the round trip.
    const learned = jpeg.getTables().map((t) => ({ luma: t.luma.map((v, i) => v * 0.5 + i * 0.25), chroma: t.chroma!.map((v, i) => v + (i % 7)) }));
    jpeg.setTables(learned);
    // Non-trivial BN moving statistics: one training-mode pass updates them.
    tf.tidy(() => {
      model.apply(x, { training: true });
    });
    const movingMean = model.getLayer('stem_bn').getWeights()[2];
    expect(tf.tidy(() => tf.max(tf.abs(movingMean)).dataSync()[0])).toBeGreaterThan(0);
    const before = model.predict(x) as tf.Tensor;

    const dir = join(root, 'shuffle');
    await saveModel(model, dir, { dataset: 'synthetic', epoch: 3 });
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    expect(loadModelMetadata(dir)).toEqual({ dataset: 'synthetic', epoch: 3 });

    const loaded = await loadModel(dir);
    const after = loaded.predict(x) as tf.Tensor;
    expect(maxAbsDiff(before, after)).toBe(0);
    const lj = loaded.getLayer('jpeg') as JpegLayer;
    expect(lj).toBeInstanceOf(JpegLayer);
    expect(lj.getTables()[0].luma).toEqual(jpeg.getTables()[0].luma);
    expect(lj.getTables()[0].chroma).toEqual(jpeg.getTables()[0].chroma);
    expect(loaded.getLayer('normalize').getConfig().std).toEqual([0.25, 0.2, 0.3]);
    // Every weight, trainable or not, is bit-identical.
    const wa = model.getWeights();
    const wb = loaded.getWeights();
    expect(wb.length).toBe(wa.length);
    wa.forEach((w, i) => expect(maxAbsDiff(w, wb[i])).toBe(0));
    tf.dispose([x, before, after]);
    model.dispose();
    loaded.dispose();
  });

  it('round-trips a grayscale small CNN; saving again replaces the directory atomically', async () => {
    const dir = join(root, 'small');
    const a = buildModel('small_cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1, jpeg: {} });
    const b = buildModel('small_cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 9 });
    await saveModel(a, dir);
    await saveModel(b, dir);
    expect(readdirSync(root).filter((f) => f.startsWith('.small'))).toEqual([]); // no temp/old leftovers
    expect(loadModelMetadata(dir)).toEqual({});
    const loaded = await loadModel(dir);
    expect(loaded.layers.map((l) => l.name)).not.toContain('jpeg');
    tf.tidy(() => {
      const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5);
      expect(maxAbsDiff(b.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor)).toBe(0);
    });
    [a, b, loaded].forEach((m) => m.dispose());
  });

  describe('clear errors naming the file', () => {
    const make = async (name: string) => {
      const dir = join(root, name);
      const m = buildModel('resnet8', { inputShape: [8, 8, 3], numClasses: 2 });
      await saveModel(m, dir);
      m.dispose();
      return dir;
    };
    it('missing directory or model.json', async () => {
      await expect(loadModel(join(root, 'nope'))).rejects.toThrow(/model directory .*nope does not exist/);
      const dir = await make('no-json');
      unlinkSync(join(dir, 'model.json'));
      await expect(loadModel(dir)).rejects.toThrow(/no-json\/model\.json is missing/);
    });
    it('a model file of another framework, with the way to bring it in', async () => {
      for (const [file, hint] of [
        ['net.onnx', /net\.onnx is a file, not a model directory .*; convert it first: jpegdl-robust import --model .*net\.onnx --out <dir>/],
        ['net.keras', /net\.keras is a file, not a model directory .*; convert it first: jpegdl-robust import/],
        ['net.pt', /net\.pt is a file, not a model directory .*; export it to ONNX \(PyTorch\) or save it as \.keras/],
      ] as const) {
        writeFileSync(join(root, file), 'x');
        await expect(loadModel(join(root, file))).rejects.toThrow(hint);
      }
    });
    it('corrupt model.json', async () => {
      const dir = await make('bad-json');
      writeFileSync(join(dir, 'model.json'), '{"modelTopology": ');
      await expect(loadModel(dir)).rejects.toThrow(/bad-json\/model\.json is not valid JSON/);
      writeFileSync(join(dir, 'model.json'), '{"weightsManifest": []}');
      await expect(loadModel(dir)).rejects.toThrow(/model\.json has no modelTopology/);
    });
    it('missing or truncated weights.bin', async () => {
      const dir = await make('bad-weights');
      const size = readFileSync(join(dir, 'weights.bin')).byteLength;
      truncateSync(join(dir, 'weights.bin'), size - 4);
      await expect(loadModel(dir)).rejects.toThrow(new RegExp(`weights\\.bin holds ${size - 4} bytes but model\\.json describes ${size} bytes`));
      unlinkSync(join(dir, 'weights.bin'));
      await expect(loadModel(dir)).rejects.toThrow(/weights file .*bad-weights\/weights\.bin is missing/);
      expect(existsSync(join(dir, 'model.json'))).toBe(true);
    });
    it('bad arguments to saveModel', async () => {
      const m = buildModel('resnet8', { inputShape: [8, 8, 3], numClasses: 2 });
      await expect(saveModel(m, '')).rejects.toThrow(/dir must be a non-empty path/);
      await expect(saveModel(m, join(root, 'x'), [] as unknown as Record<string, unknown>)).rejects.toThrow(/extra must be a plain object/);
      m.dispose();
    });
  });
});

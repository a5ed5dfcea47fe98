// `jpegdl-robust import` end to end: a Keras-style model (0-255 pixels, softmax output) becomes one that
// `attack` and `evaluate` take; the same model un-imported is refused by both, before any work.
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNumberList } from '../../../src/cli/commands/import.ts';
import { loadModel, loadModelMetadata, saveModel } from '../../../src/io/model-io.ts';
import { cli } from '../helpers.ts';

describe('jpegdl-robust import', () => {
  let dir: string;
  let keras: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jpegdl-import-'));
    keras = join(dir, 'keras');
    // Trained on 0-255 pixels normalised by mean 72.9 / std 90.0, softmax at the end, as a Keras export would be.
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 5, strides: 4, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    await saveModel(m, keras);
    m.dispose();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a [0,1]-pixel logits model with what it did in its metadata, which attack then takes', async () => {
    const out = join(dir, 'imported');
    const r = await cli('import', '--model', keras, '--out', out, '--input-scale', '255', '--mean', '72.9', '--std', '90');
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/input: \[0,1\] pixels 28x28x1, then x 255 - \[72\.9\] \/ \[90\] inside the model/);
    expect(r.text).toMatch(/output: 10 logits; removed the final softmax of dense_Dense\d+/);
    const meta = loadModelMetadata(out) as { model: string; imported: Record<string, unknown> };
    expect(meta.model).toMatch(/^imported:/);
    expect(meta.imported).toMatchObject({ inputScale: 255, mean: [72.9], std: [90], channelOrder: 'rgb', outputs: 'auto', classes: 10 });
    // Same predictions as the source fed the way it was trained.
    const [src, imp] = [await loadModel(keras), await loadModel(out)];
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.softmax(imp.predict(x) as tf.Tensor), src.predict(tf.div(tf.sub(tf.mul(x, 255), 72.9), 90)) as tf.Tensor))).dataSync()[0]);
    expect(d).toBeLessThan(1e-6);
    tf.dispose(x);
    src.dispose();
    imp.dispose();

    const a = await cli('attack', '--model', out, '--attack', 'fgsm', '--eps', '0,8/255', '-n', '8', '--batch-size', '8');
    expect(a.code).toBe(0);
    expect(a.text).toMatch(/fgsm \(linf\) on 8 /);
  });

  it('reads a Keras 3 .keras file directly', async () => {
    const out = join(dir, 'from-keras');
    const r = await cli('import', '--model', join(import.meta.dirname, '..', '..', 'fixtures', 'keras', 'functional.keras'), '--out', out, '--input-scale', '255');
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/\(resblock\) -> .*from-keras/);
    expect(r.text).toMatch(/input: \[0,1\] pixels 8x8x3, then x 255 inside the model/);
    expect(r.text).toMatch(/output: 5 logits; removed the final softmax of dense/);
    const bad = await cli('import', '--model', join(dir, 'nope.keras'), '--out', out);
    expect(bad.text).toMatch(/--model: .*nope\.keras does not exist/);
  });

  it('reads a PyTorch model exported to ONNX (softmax output, NCHW) and records where it came from', async () => {
    const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'onnx');
    const out = join(dir, 'from-onnx');
    const r = await cli('import', '--model', join(fixtures, 'squeeze_excite.onnx'), '--out', out, '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25');
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/ONNX: pytorch 2\.[\d.]+, opset 17, 33 nodes \(Add, .*\); NCHW input \[3, 12, 12\] read as NHWC/);
    expect(r.text).toMatch(/input: \[0,1\] pixels 12x12x3, then - \[0\.5, 0\.5, 0\.5\] \/ \[0\.25, 0\.25, 0\.25\] inside the model/);
    expect(r.text).toMatch(/output: 5 logits; removed the final softmax of Softmax/);
    const meta = loadModelMetadata(out) as { imported: Record<string, unknown> };
    expect(meta.imported).toMatchObject({ format: 'onnx', onnx: { opset: 17, nodes: 33 }, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    // PyTorch's probabilities on the fixture images, fed through the normalisation the import put inside.
    const e = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8'))['squeeze_excite.onnx'] as { input_nhwc_shape: number[]; input_nhwc_255: number[]; output: number[][] };
    const m = await loadModel(out);
    const x = tf.tensor4d(Float32Array.from(e.input_nhwc_255, (v) => (v / 255) * 0.25 + 0.5), e.input_nhwc_shape as [number, number, number, number]);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.softmax(m.predict(x) as tf.Tensor), tf.tensor2d(e.output)))).dataSync()[0]);
    expect(d).toBeLessThan(1e-5);
    tf.dispose(x);
    m.dispose();
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'not a model');
    const bad = await cli('import', '--model', junk, '--out', join(dir, 'junk-out'));
    expect(bad.code).toBe(1);
    expect(bad.text).toMatch(/--model .*junk\.onnx: not (a readable ONNX model|an ONNX model)/);
    expect(existsSync(join(dir, 'junk-out'))).toBe(false);
  });

  it('an imported PyTorch model, evaluated, keeps its name and says where it came from in the report and the leaderboard', async () => {
    const out = join(dir, 'torch-imported');
    const onnxFile = join(import.meta.dirname, '..', '..', '..', 'reports', 'readme-torch', 'fmnist-resnet.onnx');
    expect((await cli('import', '--model', onnxFile, '--out', out, '--mean', '0.286', '--std', '0.353')).code).toBe(0);
    // The user's word on how it was trained replaces "not recorded".
    const described = join(dir, 'torch-described');
    expect((await cli('import', '--model', onnxFile, '--out', described, '--mean', '0.286', '--std', '0.353', '--training', 'standard training, 3 epochs (PyTorch)')).code).toBe(0);
    expect(loadModelMetadata(described)).toMatchObject({ training: 'standard training, 3 epochs (PyTorch)' });
    expect((await cli('import', '--model', onnxFile, '--out', join(dir, 'x2'), '--training', ' ')).text).toMatch(/--training: give a description/);
    const ev = join(dir, 'onnx-eval');
    const r = await cli('evaluate', '--baseline', out, '--dataset', 'fashion-mnist-embedded', '-n', '10', '--eps', '0,8/255', '--attack', 'fgsm', '--out', ev, '--no-progress', '--workers', '1');
    expect(r.code, r.text).toBe(0);
    const report = JSON.parse(readFileSync(join(ev, 'report.json'), 'utf8')) as { config: { models: { arch: string; training: string }[] } };
    expect(report.config.models[0]).toMatchObject({ arch: 'imported:fmnist_resnet', training: 'imported from onnx (training not recorded)' });
    const lb = await cli('leaderboard', ev, '--out', join(dir, 'lb'));
    expect(lb.code, lb.text).toBe(0);
    expect(lb.text).toMatch(/baseline \(fmnist_resnet\)/);
    const entries = JSON.parse(readFileSync(join(dir, 'lb', 'leaderboard.json'), 'utf8')) as { entries: { series: string; training: string }[] };
    expect(entries.entries[0]).toMatchObject({ series: 'baseline (fmnist_resnet)', training: 'imported from onnx (training not recorded)' });
  });

  it('attack and evaluate refuse a model with probability outputs, naming it and the fix', async () => {
    const a = await cli('attack', '--model', keras, '--attack', 'fgsm', '-n', '8');
    expect(a.code).toBe(1);
    expect(a.text).toMatch(new RegExp(`--model ${keras}: the model's outputs look like probabilities.*jpegdl-robust import`));
    const o = join(dir, 'eval');
    const e = await cli('evaluate', '--baseline', keras, '-n', '8', '--out', o, '--no-progress');
    expect(e.code).toBe(1);
    expect(e.text).toMatch(new RegExp(`--baseline ${keras}: the model's outputs look like probabilities`));
    expect(existsSync(join(o, 'records.jsonl'))).toBe(false);
    // On the user's word (--outputs logits) the check is off for that model.
    const trusted = join(dir, 'trusted');
    expect((await cli('import', '--model', keras, '--out', trusted, '--outputs', 'logits')).code).toBe(0);
    expect((await cli('attack', '--model', trusted, '--attack', 'fgsm', '--eps', '0', '-n', '8')).code).toBe(0);
  });

  it('rejects bad options, naming the flag, before loading anything', async () => {
    const out = join(dir, 'x');
    const cases: [string[], RegExp][] = [
      [['--input-scale', 'abc'], /--input-scale: must be a number > 0/],
      [['--input-scale', '0'], /--input-scale: must be a number > 0/],
      [['--mean', '1,,2'], /--mean: '' is not a number/],
      [['--std', '0.2,0'], /--std: every std must be > 0, got 0/],
      [['--outputs', 'probs'], /--outputs: must be auto or logits/],
      [['--mean', '1,2'], /mean has 2 entries but the model's input has 1 channel/],
      [['--bgr'], /bgr needs a 3-channel input/],
    ];
    for (const [args, re] of cases) {
      const r = await cli('import', '--model', keras, '--out', out, ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.text, args.join(' ')).toMatch(re);
    }
    expect(existsSync(out)).toBe(false);
    expect((await cli('import', '--model', keras, '--out', keras)).text).toMatch(/--out: must differ from --model/);
    expect((await cli('import', '--model', join(dir, 'nope'), '--out', out)).text).toMatch(/--model: .*nope does not exist/);
    // A converted SavedModel is a graph model: said so, with the converter flag that gives a layers model.
    const graph = join(dir, 'graph');
    mkdirSync(graph);
    writeFileSync(join(graph, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }));
    const g = await cli('import', '--model', graph, '--out', out);
    expect(g.code).toBe(1);
    expect(g.text).toMatch(/is a tfjs graph model.*--input_format keras/);
    expect(parseNumberList('0.485, 0.456,0.406', '--mean')).toEqual([0.485, 0.456, 0.406]);
    expect(() => parseNumberList('1,x', '--std')).toThrow(/--std: 'x' is not a number/);
    expect(readFileSync(join(keras, 'model.json'), 'utf8')).toMatch(/softmax/);
  });
});

import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { corruptDataset, corruptOne, evaluateCorruptions, loadCorruptionRecords, summarizeCorruptions, type CorruptionRecord } from '../../src/corruptions/evaluate.ts';
import { getCorruption } from '../../src/corruptions/functions.ts';
import { corruptionRows } from '../../src/corruptions/report.ts';
import { unpackBits } from '../../src/eval/records.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { RandomJpegLayer } from '../../src/jpeg/random.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { tinyData } from '../train/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-corr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function dense(seed: number, jpeg = false): tf.LayersModel {
  return tf.sequential({
    layers: [
      ...(jpeg ? [new JpegLayer({ inputShape: [8, 8, 1], quality: 50 })] : []),
      tf.layers.flatten(jpeg ? {} : { inputShape: [8, 8, 1] }),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 0.5 }) }),
    ],
  });
}
const data = (() => {
  const d = tinyData(24, 3);
  return { images: d.images, labels: d.labels, height: 8, width: 8, channels: 1 };
})();

/** Per-image correctness computed directly. */
function direct(model: tf.LayersModel, images: Float32Array): number[] {
  return Array.from(tf.tidy(() => tf.equal(tf.argMax(model.predict(tf.tensor4d(images, [24, 8, 8, 1])) as tf.Tensor2D, 1), tf.tensor1d(data.labels, 'int32')).dataSync()));
}

describe('evaluateCorruptions', () => {
  it('one record per model x mode x cell, equal to judging the corrupted images directly, the same images for every model', async () => {
    const base = dense(1);
    const jpeg = dense(2, true);
    const models = [
      { name: 'baseline', variant: 'baseline', modelSeed: 0, model: base },
      { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: 0, model: jpeg, jpegModes: ['soft' as const, 'hard' as const] },
    ];
    const recs = await evaluateCorruptions(models, data, { corruptions: ['gaussian_noise', 'contrast'], severities: [2, 5], batchSize: 10, seed: 4, dataset: 'tiny' });
    // clean + 2 corruptions x 2 severities, for baseline, jpeg-dl soft, jpeg-dl hard.
    expect(recs).toHaveLength(5 * 3);
    const noisy = corruptDataset(data, getCorruption('gaussian_noise'), 5, 4);
    expect(Array.from(corruptDataset(data, getCorruption('gaussian_noise'), 5, 4))).toEqual(Array.from(noisy)); // seeded
    // One image alone gets exactly its noise in the whole set (what the example picture shows).
    expect(Array.from(corruptOne(data, 5, getCorruption('gaussian_noise'), 5, 4))).toEqual(Array.from(noisy.subarray(5 * 64, 6 * 64)));
    const cell = (m: string, mode: string | null, c: string, s: number) => recs.find((r) => r.model === m && r.jpegMode === mode && r.corruption === c && r.severity === s)!;
    expect(Array.from(unpackBits(cell('baseline', null, 'gaussian_noise', 5).correctBits, 24))).toEqual(direct(base, noisy));
    expect(Array.from(unpackBits(cell('baseline', null, 'clean', 0).correctBits, 24))).toEqual(direct(base, data.images));
    (jpeg.layers[0] as JpegLayer).mode = 'hard';
    expect(Array.from(unpackBits(cell('jpeg-dl', 'hard', 'gaussian_noise', 5).correctBits, 24))).toEqual(direct(jpeg, noisy));
    (jpeg.layers[0] as JpegLayer).mode = 'soft';
    expect(Array.from(unpackBits(cell('jpeg-dl', 'soft', 'gaussian_noise', 5).correctBits, 24))).toEqual(direct(jpeg, noisy));
    for (const r of recs) expect(r.accuracy).toBe(r.correct / 24);
    await assertNoTensorLeak(() => evaluateCorruptions(models, data, { corruptions: ['contrast'], severities: [1] }), { label: 'evaluateCorruptions' });
    // Bad input names what is wrong before any work.
    await expect(evaluateCorruptions(models, data, { corruptions: ['saturate'] })).rejects.toThrow(/saturate is defined for colour images only/);
    await expect(evaluateCorruptions(models, data, { severities: [0] })).rejects.toThrow(/severities: each must be an integer 1-5, got 0/);
    await expect(evaluateCorruptions([], data)).rejects.toThrow(/models: nothing to evaluate/);
    base.dispose();
    jpeg.dispose();
  });

  it('resumes from its records (a torn last line reruns only that cell) and refuses records of other images', async () => {
    const model = dense(3);
    const models = [{ name: 'baseline', variant: 'baseline', modelSeed: 0, model }];
    const path = join(tmp, 'records.jsonl');
    const opts = { corruptions: ['impulse_noise', 'pixelate'], severities: [1, 3], seed: 1, dataset: 'tiny', recordsPath: path };
    const first = await evaluateCorruptions(models, data, opts);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    // Kill mid-append: the last record is half written.
    writeFileSync(path, lines.slice(0, 4).join('\n') + '\n' + lines[4].slice(0, 20));
    const again = await evaluateCorruptions(models, data, opts);
    expect(again.map((r) => r.correctBits)).toEqual(first.map((r) => r.correctBits));
    expect(loadCorruptionRecords(path)).toHaveLength(5); // four kept + the rerun cell (the torn line cut)
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(5);
    await expect(evaluateCorruptions(models, data, { ...opts, seed: 2 })).rejects.toThrow(/holds corruption records of other images \(tiny, n = 24, seed 1; this run: tiny, n = 24, seed 2\)/);
    model.dispose();
  });
});

describe('evaluateCorruptions on a randomised model', () => {
  it('draws per cell from the cell\'s own seed: a run resumed after other cells gives the records of a whole run', async () => {
    const make = () => {
      const input = tf.input({ shape: [8, 8, 1] });
      const jpeg = new RandomJpegLayer({ minQuality: 1, maxQuality: 60, per: 'block' });
      const head = dense(5);
      return { model: tf.model({ inputs: input, outputs: head.apply(jpeg.apply(input)) as tf.SymbolicTensor }), head };
    };
    const run = async (path: string, severities: number[]) => {
      const { model, head } = make();
      try {
        return await evaluateCorruptions([{ name: 'rjpeg-q1-60-block', variant: 'random-jpeg', modelSeed: 0, model }], data, { corruptions: ['gaussian_noise', 'contrast'], severities, seed: 3, dataset: 'tiny', recordsPath: path });
      } finally {
        head.dispose();
      }
    };
    const whole = await run(join(tmp, 'rj-whole.jsonl'), [2, 4]);
    await run(join(tmp, 'rj-part.jsonl'), [4]);
    const resumed = await run(join(tmp, 'rj-part.jsonl'), [2, 4]);
    const key = (r: CorruptionRecord) => `${r.corruption}/${r.severity}`;
    const bits = (rs: CorruptionRecord[]) => Object.fromEntries(rs.map((r) => [key(r), r.correctBits]));
    expect(bits(resumed)).toEqual(bits(whole));
    // The draws do move the answers: the same cells under another model name (other cell seeds) differ somewhere.
    const { model, head } = make();
    const other = await evaluateCorruptions([{ name: 'r', variant: 'random-jpeg', modelSeed: 0, model }], data, { corruptions: ['gaussian_noise', 'contrast'], severities: [2, 4], seed: 3, dataset: 'tiny' });
    head.dispose();
    expect(Object.values(bits(other.map((r) => ({ ...r, model: 'rjpeg-q1-60-block' }))))).not.toEqual(Object.values(bits(whole)));
  });
});

describe('summarizeCorruptions', () => {
  const rec = (model: string, variant: string, corruption: string, severity: number, accuracy: number): CorruptionRecord => ({
    schema: 1, kind: 'corruption', model, variant, modelSeed: 0, jpegMode: variant === 'jpeg-dl' ? 'soft' : null, corruption, severity, dataset: 'd', n: 100, seed: 0, correct: accuracy * 100, accuracy, correctBits: '', seconds: 0,
  });
  it('means per corruption and severity, and the corruption error relative to the baseline', () => {
    const recs = [
      rec('baseline', 'baseline', 'clean', 0, 0.9), rec('jpeg-dl', 'jpeg-dl', 'clean', 0, 0.8),
      rec('baseline', 'baseline', 'fog', 1, 0.6), rec('baseline', 'baseline', 'fog', 5, 0.4),
      rec('jpeg-dl', 'jpeg-dl', 'fog', 1, 0.8), rec('jpeg-dl', 'jpeg-dl', 'fog', 5, 0.6),
      rec('baseline', 'baseline', 'contrast', 1, 0.5), rec('baseline', 'baseline', 'contrast', 5, 0.5),
      rec('jpeg-dl', 'jpeg-dl', 'contrast', 1, 0.25), rec('jpeg-dl', 'jpeg-dl', 'contrast', 5, 0.25),
    ];
    const s = summarizeCorruptions(recs);
    expect(s.corruptions).toEqual(['fog', 'contrast']);
    expect(s.severities).toEqual([1, 5]);
    const [b, j] = s.series;
    expect(b.perCorruption).toEqual({ fog: 0.5, contrast: 0.5 });
    expect(j.perCorruption.fog).toBeCloseTo(0.7, 12);
    expect(j.perSeverity['5']).toBeCloseTo(0.425, 12);
    expect(b.relativeError).toBe(1);
    // fog: errors (0.2 + 0.4) / (0.4 + 0.6) = 0.6; contrast: 1.5 / 1.0 = 1.5; mean 1.05.
    expect(j.relativeError).toBeCloseTo(1.05, 12);
    const rows = corruptionRows(recs);
    expect(rows[0]).toEqual(['corruption', 'baseline', 'jpeg-dl [soft]', 'Δ jpeg-dl [soft] (pts)']);
    expect(rows[1]).toEqual(['clean', '90.0', '80.0', '-10.0']);
    expect(rows[2]).toEqual(['fog', '50.0', '70.0', '+20.0']);
    expect(rows.at(-2)).toEqual(['mean over 2 corruptions', '50.0', '47.5', '-2.5']);
    expect(rows.at(-1)).toEqual(['relative corruption error (baseline = 1.00)', '1.00', '1.05', '']);
  });
});

describe('corruption records on disk', () => {
  it('a missing file is empty; a garbled middle line is an error naming the line', () => {
    expect(loadCorruptionRecords(join(tmp, 'none.jsonl'))).toEqual([]);
    const p = join(tmp, 'bad.jsonl');
    writeFileSync(p, 'nope\n{"kind":"corruption"}\n{"kind":"corruption"}\n');
    expect(() => loadCorruptionRecords(p)).toThrow(/bad.jsonl:1: not a JSON record/);
    // A complete (newline-ended) garbled last line is damage, not a torn append.
    writeFileSync(p, '{"kind":"corruption"}\nnope\n');
    expect(() => loadCorruptionRecords(p)).toThrow(/bad.jsonl:2: not a JSON record/);
    writeFileSync(p, '{"kind":"cell"}\n');
    expect(() => loadCorruptionRecords(p)).toThrow(/bad.jsonl:1: not a corruption record/);
    expect(existsSync(p)).toBe(true);
  });
});

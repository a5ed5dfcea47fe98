// The certification job: the same certificate as the library call per image, the same noise for every
// model, per-image resume (a torn last line dropped and repaired), results rendered from the records.
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certifyModels, summarizeCertificates, type CertifyRecord } from '../../src/certify/evaluate.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { runCertifyJob } from '../../src/certify/job.ts';
import { certifyPairedRows } from '../../src/certify/report.ts';
import { certifiedRadius, certifySmoothed } from '../../src/certify/smoothing.ts';
import { clopperPearsonLower } from '../../src/certify/stats.ts';
import { loadDataset, subset } from '../../src/data/index.ts';
import { saveModel } from '../../src/io/model-io.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { mcnemarExact } from '../../src/report/paired.ts';
import { randomJpegDefended } from '../../src/defences/random-jpeg.ts';

let dir: string;
let baseline: tf.LayersModel;
const make = (jpeg: boolean, seed: number) => tf.sequential({
  layers: [
    ...(jpeg ? [new JpegLayer({ inputShape: [28, 28, 1], quality: 50 })] : []),
    tf.layers.flatten(jpeg ? {} : { inputShape: [28, 28, 1] }),
    tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 0.05 }) }),
  ],
});
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-certify-job-'));
  baseline = make(false, 1);
  await saveModel(baseline, join(dir, 'baseline'), { variant: 'baseline', training: 'Gaussian noise augmentation (sigma 0.25)' });
  const jpeg = make(true, 2);
  await saveModel(jpeg, join(dir, 'jpeg'), { variant: 'jpeg-dl' });
  jpeg.dispose();
});
afterAll(() => {
  baseline.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const opts = (out: string) => ({ baseline: [join(dir, 'baseline')], jpegdl: [join(dir, 'jpeg')], n: 6, sigmas: ['0.25', '0.5'], radii: ['0', '0.1', '0.2'], n0: 20, samples: 300, batchSize: 128, seed: 3, out });
const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n');

describe('runCertifyJob', () => {
  it('certifies each image as certifySmoothed does, with the base classifier\'s clean class beside it', async () => {
    const out = join(dir, 'a');
    const res = await runCertifyJob(opts(out));
    // baseline + jpeg-dl soft + hard, 2 sigmas, 6 images.
    expect(res.records).toHaveLength(3 * 2 * 6);
    const { test } = await loadDataset({});
    const data = subset(test, 6, 3);
    const x = tf.tensor4d(data.images, [6, 28, 28, 1]);
    const y = tf.tensor1d(data.labels, 'int32');
    const direct = certifySmoothed(baseline, x, y, { sigma: 0.5, n0: 20, n: 300, batchSize: 128, seed: 3 });
    const base = Array.from(tf.tidy(() => tf.argMax(baseline.predict(x) as tf.Tensor2D, 1).dataSync()));
    const got = res.records.filter((r) => r.model === 'baseline' && r.sigma === 0.5);
    expect(got.map((r) => ({ label: r.label, prediction: r.prediction, count: r.count, pLower: r.pLower, radius: r.radius, correct: r.correct }))).toEqual(direct);
    expect(got.map((r) => r.basePrediction)).toEqual(base);
    expect(got.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    tf.dispose([x, y]);
    // Files, and results that are the records' certified accuracy with an L2 threat model.
    for (const f of ['records.jsonl', 'certify.json', 'certify.md', 'certify.txt', 'certify.html']) expect(existsSync(join(out, f)), f).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'certify.json'), 'utf8'));
    expect(json.results).toHaveLength(3 * 2 * 3);
    const cell = json.results.find((r: { model: string; sigma: number; threat: { eps: number } }) => r.model === 'baseline' && r.sigma === 0.5 && r.threat.eps === 0.1);
    expect(cell.threat).toEqual({ norm: 'l2', eps: 0.1, epsLabel: '0.1' });
    expect(cell.certifiedAccuracy).toBe(got.filter((r) => r.correct && r.radius >= 0.1).length / 6);
    expect(json.notes.join(' ')).toContain('(Gaussian noise augmentation (sigma 0.25))');
    expect(readFileSync(join(out, 'certify.html'), 'utf8')).toContain('<svg');
    expect(res.terminal).toMatch(/║ 0 \(smoothed accuracy\)\s+│/);
  });

  it('resumes per image: done images are read back, a torn last line is dropped and the file repaired', async () => {
    const out = join(dir, 'b');
    const first = await runCertifyJob(opts(out));
    const path = join(out, 'records.jsonl');
    const kept = lines(path).slice(0, 20);
    writeFileSync(path, kept.join('\n') + '\n');
    appendFileSync(path, kept[0].slice(0, 40)); // a kill mid-append
    let calls = 0;
    const second = await runCertifyJob({ ...opts(out), onImage: () => void calls++ });
    expect(calls).toBe(36);
    const strip = (r: CertifyRecord) => ({ ...r, seconds: 0 });
    expect(second.records.map(strip)).toEqual(first.records.map(strip));
    // The first 20 came from disk (their timings unchanged), the rest were certified again.
    expect(second.records.slice(0, 20).map((r) => r.seconds)).toEqual(first.records.slice(0, 20).map((r) => r.seconds));
    expect(lines(path)).toHaveLength(36);
    expect(() => lines(path).map((l) => JSON.parse(l))).not.toThrow();
  });

  it('refuses records of other images and bad arguments before loading anything', async () => {
    const out = join(dir, 'c');
    await runCertifyJob({ ...opts(out), sigmas: ['0.25'], jpegdl: [] });
    await expect(runCertifyJob({ ...opts(out), n: 5 })).rejects.toThrow(/holds certificates of other images .*5 images.*use another --out/);
    await expect(runCertifyJob({ ...opts(out), sigmas: [] })).rejects.toThrow(/--sigma: give at least one/);
    await expect(runCertifyJob({ ...opts(out), sigmas: ['0'] })).rejects.toThrow(/--sigma: 0 must be > 0/);
    await expect(runCertifyJob({ ...opts(out), sigmas: ['x'] })).rejects.toThrow(/--sigma: cannot parse "x"/);
    await expect(runCertifyJob({ ...opts(out), radii: ['0.5', '0.25'] })).rejects.toThrow(/--radii: must increase, got 0.5 then 0.25/);
    await expect(runCertifyJob({ ...opts(out), samples: 0 })).rejects.toThrow(/--samples: must be an integer >= 1/);
    await expect(runCertifyJob({ ...opts(out), alpha: 1 })).rejects.toThrow(/--alpha: must be in \(0, 1\)/);
    await expect(runCertifyJob({ ...opts(out), baseline: [join(dir, 'nope')] })).rejects.toThrow(/--baseline .*nope/);
    await expect(runCertifyJob({ ...opts(out), baseline: [], jpegdl: [] })).rejects.toThrow(/certify: give --run <dir> or at least one --baseline/);
  });
});

describe('certifyModels', () => {
  it('does not leak tensors across images, sigmas and JPEG modes', async () => {
    const { test } = await loadDataset({});
    const data = subset(test, 3, 1);
    const jpeg = make(true, 4);
    const models = [{ name: 'baseline', variant: 'baseline', modelSeed: 0, model: baseline }, { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: 0, model: jpeg }];
    await assertNoTensorLeak(() => certifyModels(models, data, { sigmas: [{ value: 0.25, label: '0.25' }, { value: 0.5, label: '0.5' }], n0: 10, samples: 50, batchSize: 32 }), { label: 'certifyModels' });
    jpeg.dispose();
  });
});

describe('certifySmoothed on a randomised base classifier', () => {
  it('draws the defence\'s randomness from the noise seed tree: the same certificates on every call', async () => {
    const { test } = await loadDataset({});
    const data = subset(test, 3, 2);
    const defended = randomJpegDefended(baseline, { minQuality: 10, maxQuality: 90 });
    const x = tf.tensor4d(data.images, [3, 28, 28, 1]);
    const y = tf.tensor1d(data.labels, 'int32');
    const o = { sigma: 0.25, n0: 10, n: 200, batchSize: 64, seed: 1 };
    const a = certifySmoothed(defended, x, y, o);
    // Draw from the layer's stream in between: a certificate that did not reseed would now differ.
    tf.dispose(defended.predict(x) as tf.Tensor);
    expect(certifySmoothed(defended, x, y, o)).toEqual(a);
    tf.dispose([x, y]);
    defended.dispose();
  });

  // Seed 0 (the default) included: tfjs' randomNormal takes seed 0 for "unseeded", and image 0's first chunk derives seed 0.
  it('the clean predictions of a randomised model are seeded too: a job gives the same records on every call', async () => {
    const { test } = await loadDataset({});
    const data = subset(test, 20, 4);
    const defended = randomJpegDefended(baseline, { minQuality: 1, maxQuality: 20 });
    const models = [{ name: 'rjpeg', variant: 'random-jpeg', modelSeed: 0, model: defended }];
    const p = { sigmas: [{ value: 0.25, label: '0.25' }], n0: 4, samples: 8, batchSize: 8 };
    const strip = (rs: CertifyRecord[]) => rs.map((r) => ({ ...r, seconds: 0 }));
    const a = strip(await certifyModels(models, data, p));
    tf.tidy(() => void defended.predict(tf.tensor4d(data.images, [20, 28, 28, 1])));
    expect(strip(await certifyModels(models, data, p))).toEqual(a);
    defended.dispose();
  });
});

describe('certification summary and paired rows', () => {
  const rec = (model: string, index: number, correct: boolean, radius: number, o: Partial<CertifyRecord> = {}): CertifyRecord => ({
    schema: 1, kind: 'certify', model, variant: model, modelSeed: 0, jpegMode: null, sigma: 0.25, sigmaLabel: '0.25', n0: 100, samples: 1000, alpha: 0.001, batchSize: 500,
    dataset: 'd', images: 4, seed: 0, index, label: 1, prediction: correct ? 1 : radius > 0 ? 2 : -1, count: 900, pLower: 0.9, radius, correct, basePrediction: index % 2, seconds: 0, ...o,
  });
  const records = [
    rec('baseline', 0, true, 0.3), rec('baseline', 1, true, 0.1), rec('baseline', 2, false, 0), rec('baseline', 3, false, 0.4),
    rec('other', 0, true, 0.05), rec('other', 1, true, 0.6), rec('other', 2, true, 0.2), rec('other', 3, false, 0),
  ];
  const radii = [{ value: 0, label: '0' }, { value: 0.25, label: '0.25' }];

  it('certified accuracy, abstentions, ACR, base accuracy and the largest certifiable radius', () => {
    const [b, o] = summarizeCertificates(records, radii);
    expect(b.results.map((r) => r.certifiedAccuracy)).toEqual([0.5, 0.25]);
    expect(o.results.map((r) => r.certifiedAccuracy)).toEqual([0.75, 0.25]);
    expect(b.abstained).toBe(0.25);
    expect(b.acr).toBeCloseTo((0.3 + 0.1) / 4, 12);
    expect(b.baseAccuracy).toBe(0.5);
    expect(b.maxRadius).toBeCloseTo(certifiedRadius(clopperPearsonLower(1000, 1000, 0.001), 0.25)!, 9);
  });

  it('counts images certified for one model only at each radius, with the exact McNemar test', () => {
    const series = summarizeCertificates(records, radii);
    const rows = certifyPairedRows(records, series);
    // r = 0: other only on image 2, baseline only on none; r = 0.25: other only on 1, baseline only on 0.
    expect(rows).toEqual([
      ['other, σ = 0.25', '0', '+25.0', '1', '0', mcnemarExact(1, 0).toFixed(3), 'no difference shown'],
      ['other, σ = 0.25', '0.25', '+0.0', '1', '1', '1.000', 'no difference shown'],
    ]);
  });

  it('with several sigmas each series is compared with the first model at its own sigma', () => {
    const at = (sigma: number) => records.map((r) => ({ ...r, sigma, sigmaLabel: String(sigma) }));
    const both = [...at(0.25), ...at(0.5)];
    const series = summarizeCertificates(both, radii);
    expect(series.map((s) => s.label)).toEqual(['baseline, σ = 0.25', 'other, σ = 0.25', 'baseline, σ = 0.5', 'other, σ = 0.5']);
    const rows = certifyPairedRows(both, series);
    // The sigma-0.5 rows repeat the sigma-0.25 ones (same certificates), against the baseline at 0.5, not at 0.25.
    expect(rows.map((r) => r.slice(0, 5))).toEqual([
      ['other, σ = 0.25', '0', '+25.0', '1', '0'], ['other, σ = 0.25', '0.25', '+0.0', '1', '1'],
      ['other, σ = 0.5', '0', '+25.0', '1', '0'], ['other, σ = 0.5', '0.25', '+0.0', '1', '1'],
    ]);
  });
});

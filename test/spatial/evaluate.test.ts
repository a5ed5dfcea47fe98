// Spatial evaluation: records equal direct predictions, worst cases equal the attack's successes,
// resume, refused settings, leaks, the report and `check` on spatial.json.
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { spatialSearch } from '../../attacks/spatial.ts';
import { unpackBits } from '../../src/eval/records.ts';
import { checkReport, makeBaseline, readReport } from '../../src/report/check.ts';
import { evaluateSpatial, loadSpatialRecords, summarizeSpatial, type SpatialModel } from '../../src/spatial/evaluate.ts';
import { renderSpatialMarkdown, renderSpatialTerminal, spatialAsReport, spatialWarnings, writeSpatialReport } from '../../src/spatial/report.ts';
import { spatialGrid, transformImages } from '../../src/spatial/transform.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { randomImagesData } from '../attacks/helpers.ts';
import { cli } from '../cli/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-spatial-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => { process.exitCode = undefined; });

const [N, S, C, K] = [40, 8, 1, 3];
/** Images with a bright off-centre blob, labelled by the quadrant it sits in (so rotations and shifts matter). */
function dataset(): LabelledImages {
  const images = randomImagesData(21, N * S * S).map((v) => 0.2 * v);
  const labels = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const q = i % K;
    labels[i] = q;
    const [cy, cx] = [[2, 2], [2, 5], [5, 3]][q];
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) images[i * S * S + (cy + dy) * S + cx + dx] = 1;
  }
  return { images, labels, height: S, width: S, channels: C };
}

/** A linear classifier that reads the blob's position (weights = the class templates). */
function model(name: string, seed = 0): SpatialModel {
  const m = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [S, S, C] }), tf.layers.dense({ units: K, kernelInitializer: 'zeros' })] });
  const w = new Float32Array(S * S * K);
  [[2, 2], [2, 5], [5, 3]].forEach(([cy, cx], q) => {
    for (let dy = -1; dy < 3; dy++) for (let dx = -1; dx < 3; dx++) {
      const [y, x] = [cy + dy, cx + dx];
      if (y >= 0 && y < S && x >= 0 && x < S) w[(y * S + x) * K + q] = dy >= 0 && dy < 2 && dx >= 0 && dx < 2 ? 1 : 0.3 + 0.1 * seed;
    }
  });
  m.layers[1].setWeights([tf.tensor2d(w, [S * S, K]), tf.zeros([K])]);
  return { name, variant: name === 'baseline' ? 'baseline' : 'jpeg-dl', modelSeed: 0, model: m };
}

const small = { maxRotation: 20, rotations: 5, maxTranslation: 2, translations: 3, samples: 4, seed: 3, batchSize: 16 };

describe('evaluateSpatial', () => {
  const data = dataset();
  const base = model('baseline');
  const other = model('other', 3);

  it('records each grid cell as the direct prediction on the transformed images, identity first', async () => {
    const recs = await evaluateSpatial([base], data, small);
    const grid = spatialGrid(small);
    expect(recs).toHaveLength(grid.length + small.samples);
    expect(recs[0].transform).toEqual({ angle: 0, dx: 0, dy: 0 });
    const x = tf.tensor4d(data.images, [N, S, S, C]);
    for (const r of recs.filter((q) => q.transform).slice(0, 12)) {
      const want = tf.tidy(() => Array.from(tf.equal(tf.argMax(base.model.predict(transformImages(x, r.transform!)) as tf.Tensor2D, 1), tf.tensor1d(data.labels, 'int32')).dataSync()));
      expect(Array.from(unpackBits(r.correctBits, N))).toEqual(want);
      expect(r.accuracy).toBeCloseTo(want.reduce((a, v) => a + v, 0) / N, 12);
    }
    x.dispose();
  });

  it('gives worst cases equal to the spatial attack\'s (grid and random), ordered grid <= rotations, shifts <= clean', async () => {
    const recs = await evaluateSpatial([base], data, small);
    const s = summarizeSpatial(recs).series[0];
    const x = tf.tensor4d(data.images, [N, S, S, C]);
    const y = tf.tensor1d(data.labels, 'int32');
    const g = spatialSearch(base.model, x, y, { maxRotation: 20, rotations: 5, maxTranslation: 2, translations: 3 });
    const rnd = spatialSearch(base.model, x, y, { search: 'random', samples: small.samples, seed: small.seed, maxRotation: 20, maxTranslation: 2 });
    expect(s.grid).toBeCloseTo(g.success.filter((v) => !v).length / N, 12);
    expect(s.random).toBeCloseTo(rnd.success.filter((v) => !v).length / N, 12);
    expect(s.grid!).toBeLessThanOrEqual(Math.min(s.rotation!, s.translation!));
    expect(Math.max(s.rotation!, s.translation!)).toBeLessThanOrEqual(s.clean!);
    expect(s.clean).toBe(1); // the templates read clean blobs exactly
    expect(s.grid!).toBeLessThan(1);
    expect(s.perAngle.map((a) => a.angle)).toEqual([-20, -10, 0, 10, 20]);
    expect(s.perShift.map((a) => a.dx)).toEqual([-2, 0, 2]);
    tf.dispose([x, y, g.adversarial, rnd.adversarial]);
  });

  it('resumes from its records: nothing is recomputed, a torn line is repaired, other settings are refused', async () => {
    const path = join(tmp, 'resume', 'records.jsonl');
    const first = await evaluateSpatial([base, other], data, { ...small, recordsPath: path });
    const again = await evaluateSpatial([base, other], data, { ...small, recordsPath: path });
    expect(again).toEqual(first);
    // A kill after 10 cells and half a line: the rest is computed again, equal but for timings.
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    writeFileSync(path, lines.slice(0, 10).join('\n') + '\n');
    appendFileSync(path, lines[10].slice(0, 30));
    const resumed = await evaluateSpatial([base, other], data, { ...small, recordsPath: path });
    const strip = (rs: typeof first) => rs.map(({ seconds: _s, ...r }) => r);
    expect(strip(resumed)).toEqual(strip(first));
    expect(resumed.slice(0, 10)).toEqual(first.slice(0, 10));
    expect(loadSpatialRecords(path)).toHaveLength(first.length);
    await expect(evaluateSpatial([base], data, { ...small, maxTranslation: 3, recordsPath: path })).rejects.toThrow(/holds spatial records of other settings .*shifts 3 in ±2 px.*this run: .*shifts 3 in ±3 px.*use another --out/);
    await expect(evaluateSpatial([base], data, { ...small, fill: 'edge', recordsPath: path })).rejects.toThrow(/fill zeros.*fill edge/);
  });

  it('checks its options before any work, naming them', async () => {
    await expect(evaluateSpatial([], data)).rejects.toThrow(/models: nothing to evaluate/);
    await expect(evaluateSpatial([base], data, { samples: -1 })).rejects.toThrow(/samples: must be an integer >= 0/);
    await expect(evaluateSpatial([base], data, { rotations: 0 })).rejects.toThrow(/rotations must be an integer in 1\.\.1001/);
    await expect(evaluateSpatial([base], data, { interpolation: 'cubic' as never })).rejects.toThrow(/interpolation must be one of bilinear, nearest/);
    await expect(evaluateSpatial([base], data, { batchSize: 0 })).rejects.toThrow(/batchSize: must be an integer >= 1/);
  });

  it('warns about a model whose answers do not depend on the transform (one class for everything), and only about it', async () => {
    const constant = model('jpeg-dl');
    constant.model.layers[1].setWeights([tf.zeros([S * S, K]), tf.tensor1d([0, 1, 0])]);
    const recs = await evaluateSpatial([base, constant], data, small);
    const sum = summarizeSpatial(recs);
    expect(sum.series.map((s) => s.invariant)).toEqual([false, true]);
    // Class 1 for everything: right on a third of the images under every transform.
    expect(sum.series[1].grid).toBeCloseTo(sum.series[1].clean!, 12);
    expect(spatialWarnings(recs)).toEqual([expect.stringMatching(/^jpeg-dl: the same images are right under every transform/)]);
    expect(renderSpatialMarkdown(recs, 't')).toContain('- jpeg-dl: the same images are right under every transform');
    expect(renderSpatialTerminal(recs, 't')).toMatch(/note: jpeg-dl: the same images/);
  });

  it('leaks no tensors across cells', async () => {
    await assertNoTensorLeak(() => evaluateSpatial([base, other], data, { maxRotation: 10, rotations: 3, maxTranslation: 1, translations: 3, samples: 2, batchSize: 16 }), { label: 'evaluateSpatial' });
  });

  it('reports from its records: the table, paired rows, JSON results with their threat model, and `check` baselines', async () => {
    const recs = await evaluateSpatial([base, other], data, small);
    const sum = summarizeSpatial(recs);
    const md = renderSpatialMarkdown(recs, 'tiny');
    expect(md).toContain('| grid: worst of 45 (rotation and shift) |');
    expect(md).toContain('| rotations only: worst of 5 in ±20° |');
    expect(md).toContain('| shifts only: worst of 3×3 in ±2 px |');
    expect(md).toContain('| random: worst of 4 per image |');
    expect(md).toContain('## Paired comparisons with the baseline');
    expect(sum.paired.map((p) => p.row)).toEqual(['clean', 'rotation', 'translation', 'grid', 'random']);
    const files = writeSpatialReport(join(tmp, 'report'), recs, { title: 'tiny', dataset: 'tiny', split: 'test', n: N });
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    const gridResult = json.results.find((r: { model: string; threat: { kind: string } }) => r.model === 'other' && r.threat.kind === 'grid');
    expect(gridResult.threat).toEqual({ kind: 'grid', maxRotation: 20, maxTranslation: 2 });
    expect(gridResult.accuracy).toBe(sum.series[1].grid);
    expect(readFileSync(files.html, 'utf8')).toContain('<svg');
    // check: the report against itself passes; a changed model fails on its cells; another grid is another configuration.
    const report = readReport(files.json);
    expect(report.cells.map((c) => c.attack)).toEqual(['clean', 'spatial:rotation', 'spatial:translation', 'spatial:grid', 'spatial:random', 'clean', 'spatial:rotation', 'spatial:translation', 'spatial:grid', 'spatial:random']);
    const baseline = makeBaseline(report, { tolerance: 0 });
    expect(checkReport(report, baseline).ok).toBe(true);
    const worse = recs.map((r) => (r.model === 'other' && r.transform?.angle === 20 ? { ...r, correctBits: Buffer.alloc(Math.ceil(N / 8)).toString('base64'), correct: 0, accuracy: 0 } : r));
    const moved = checkReport(spatialAsReport({ records: worse, dataset: 'tiny' }), baseline);
    expect(moved.ok).toBe(false);
    const b = join(tmp, 'spatial-baseline.json');
    expect((await cli('check', files.json, '--write-baseline', b)).code).toBe(0);
    const otherGrid = writeSpatialReport(join(tmp, 'report2'), await evaluateSpatial([base, other], data, { ...small, maxRotation: 10 }), { title: 'tiny', dataset: 'tiny', split: 'test', n: N });
    const res = await cli('check', otherGrid.json, '--baseline', b);
    expect(res.code, res.text).toBe(2);
    expect(res.text).toMatch(/different configurations/);
  });
});

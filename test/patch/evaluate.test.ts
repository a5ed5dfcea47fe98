// Adversarial-patch evaluation: records equal direct predictions with the saved patches (random position
// and every grid position), the patches equal the attack's own fit, the noise control, resume without
// refitting, refused settings and files, options, leaks, the report (own mapping, worst-of, paired rows,
// warnings, files).
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { applyPatch, fitPatch, gridOffsets } from '../../attacks/patch.ts';
import { patchPgd } from '../../attacks/patch_pgd.ts';
import { keySeed } from '../../src/data/rng.ts';
import { unpackBits } from '../../src/eval/records.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { evalPlacements, evaluatePatches, loadPatchRecords, noisePatch, patchFile, readPatch, resolvePatchEval, type PatchRecord } from '../../src/patch/evaluate.ts';
import { patchWarnings, renderPatchMarkdown, renderPatchTerminal, summarizePatches, writePatchReport } from '../../src/patch/report.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { withJpegMode } from '../../src/train/jpeg-params.ts';
import type { UniversalModel } from '../../src/universal/evaluate.ts';
import { randomImagesData, randomWeights } from '../attacks/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-patch-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [S, K] = [8, 3];
function images(seed: number, n: number): LabelledImages {
  return { images: randomImagesData(seed, n * S * S), labels: Int32Array.from({ length: n }, (_, i) => i % K), height: S, width: S, channels: 1 };
}

/** A linear classifier (optionally behind a JPEG layer). */
function model(name: string, jpeg: boolean, seed: number): UniversalModel {
  const m = tf.sequential({
    layers: [
      ...(jpeg ? [new JpegLayer({ inputShape: [S, S, 1], quality: 50 })] : []),
      tf.layers.flatten(jpeg ? {} : { inputShape: [S, S, 1] }),
      tf.layers.dense({ units: K, kernelInitializer: 'zeros' }),
    ],
  });
  m.layers[m.layers.length - 1].setWeights([tf.tensor2d(randomWeights(seed, S * S, K, 0.5)), tf.tensor1d([0.1, 0, -0.1])]);
  return { name, variant: jpeg ? 'jpeg-dl' : 'baseline', modelSeed: 0, model: m };
}

const fit = images(1, 30);
const test = images(2, 24);
const base = model('baseline', false, 3);
const jpeg = model('jpeg-dl', true, 4);
const opts = { sizes: [4, 2], epochs: 2, batchSize: 8, stepSize: 0.2, seed: 5, evalBatchSize: 10, dataset: 'toy' };

/** Predicted classes of a series on images made by `make` (in the series' JPEG mode). */
async function predicted(r: Pick<PatchRecord, 'model' | 'jpegMode'>, make: () => tf.Tensor4D): Promise<number[]> {
  const target = r.model === 'baseline' ? base : jpeg;
  const run = () => tf.tidy(() => Array.from(tf.argMax(target.model.predict(make()) as tf.Tensor2D, 1).dataSync()));
  return r.jpegMode ? withJpegMode(target.model, r.jpegMode, run) : run();
}

describe('evaluatePatches', () => {
  it('scores every model with every patch at the shared random positions and at every grid position: records equal direct predictions, patches equal the attack\'s own fit', async () => {
    const dir = join(tmp, 'a');
    const { records, patches } = await evaluatePatches([base, jpeg], fit, test, { ...opts, recordsPath: join(dir, 'records.jsonl'), patchesDir: join(dir, 'p') });
    // 3 clean + 2 sizes x 3 sources (baseline, jpeg-dl [soft], noise) x 3 series (baseline, jpeg-dl [soft], [hard]).
    expect(records).toHaveLength(3 + 18);
    expect(patches.map((p) => `${p.source.model}@${p.size}`)).toEqual(['baseline@2', 'jpeg-dl@2', 'baseline@4', 'jpeg-dl@4']);
    const x = tf.tensor4d(test.images, [24, S, S, 1]);
    const fx = tf.tensor4d(fit.images, [30, S, S, 1]);
    const fy = tf.tensor1d(fit.labels, 'int32');
    for (const p of patches) {
      const src = p.source.model === 'baseline' ? base : jpeg;
      const again = await withJpegMode(src.model, 'soft', () => fitPatch(src.model, fx, fy, { size: p.size, epochs: 2, batchSize: 8, stepSize: 0.2, seed: 5 }));
      expect(Array.from(p.values)).toEqual(Array.from(again.patch.dataSync()));
      expect(p.successRate).toBe(again.successRate);
      again.patch.dispose();
      const saved = readPatch(join(dir, 'p', patchFile(p.source, p.size)), { dataset: 'toy', fitN: 30, seed: 5, settings: resolvePatchEval(opts).settings, shape: [1, p.size, p.size, 1] });
      expect(Array.from(saved.values)).toEqual(Array.from(p.values));
    }
    for (const r of records.filter((q) => q.source)) {
      const values = r.source!.variant === 'noise' ? noisePatch(r.size, 1, 5) : patches.find((p) => p.size === r.size && p.source.model === r.source!.model)!.values;
      const patch = tf.tensor4d(values, [1, r.size, r.size, 1]);
      const at = evalPlacements(24, S, S, r.size, 5);
      const pred = await predicted(r, () => applyPatch(x, patch, at));
      const pred0 = await predicted(r, () => x.clone());
      expect(Array.from(unpackBits(r.correctBits, 24))).toEqual(pred.map((v, i) => Number(v === test.labels[i])));
      expect(r.changed).toBe(pred.filter((v, i) => v !== pred0[i]).length);
      expect(r.area).toBe((r.size * r.size) / 64);
      // Worst grid position: right at every corner of the grid (here without skipping images already wrong).
      const offsets = gridOffsets(S, r.size, r.size);
      const all = new Array(24).fill(1);
      for (const row of offsets) {
        for (const col of offsets) {
          const p = await predicted(r, () => applyPatch(x, patch, { rows: new Int32Array(24).fill(row), cols: new Int32Array(24).fill(col) }));
          p.forEach((v, i) => (all[i] &= Number(v === test.labels[i])));
        }
      }
      expect(r.grid!.positions).toBe(offsets.length ** 2);
      expect(Array.from(unpackBits(r.grid!.correctBits, 24))).toEqual(all);
      expect(r.fitSuccess).toBe(r.source!.variant === 'noise' ? null : patches.find((p) => p.size === r.size && p.source.model === r.source!.model)!.successRate);
      patch.dispose();
    }
    tf.dispose([x, fx, fy]);
    expect(records.filter((r) => !r.source).map((r) => [r.model, r.jpegMode, r.size, r.changed, r.grid])).toEqual([['baseline', null, 0, 0, null], ['jpeg-dl', 'soft', 0, 0, null], ['jpeg-dl', 'hard', 0, 0, null]]);
  });

  it('resumes: a cut records file is completed without refitting, and equals the unbroken run', async () => {
    const dir = join(tmp, 'a');
    const path = join(dir, 'records.jsonl');
    const full = readFileSync(path, 'utf8');
    const files = ['baseline', 'jpeg-dl'].map((m) => join(dir, 'p', patchFile({ model: m, variant: m, modelSeed: 0, mode: m === 'baseline' ? null : 'soft' }, 4)));
    const times = files.map((f) => statSync(f).mtimeMs);
    const lines = full.trimEnd().split('\n');
    writeFileSync(path, lines.slice(0, 12).join('\n') + '\n' + lines[12].slice(0, 20));
    const { records } = await evaluatePatches([base, jpeg], fit, test, { ...opts, recordsPath: path, patchesDir: join(dir, 'p') });
    expect(files.map((f) => statSync(f).mtimeMs)).toEqual(times);
    expect(records.map((r) => r.correctBits)).toEqual(loadPatchRecords(path).map((r) => r.correctBits));
    const strip = (t: string) => t.trimEnd().split('\n').map((l) => { const r = JSON.parse(l); delete r.seconds; return JSON.stringify(r); });
    expect(strip(readFileSync(path, 'utf8'))).toEqual(strip(full));
  });

  it('refuses records and patch files of other settings, and a truncated patch, naming the file', async () => {
    const dir = join(tmp, 'a');
    await expect(evaluatePatches([base], fit, test, { ...opts, epochs: 3, recordsPath: join(dir, 'records.jsonl') })).rejects.toThrow(/records\.jsonl holds adversarial-patch records of other settings .*use another --out/);
    await expect(evaluatePatches([base], fit, test, { ...opts, epochs: 3, patchesDir: join(dir, 'p') })).rejects.toThrow(/baseline_0_2px\.json was fitted with other settings/);
    const bad = join(tmp, 'bad');
    await evaluatePatches([base], fit, test, { ...opts, sizes: [2], patchesDir: bad });
    const f = join(bad, patchFile({ model: 'baseline', variant: 'baseline', modelSeed: 0, mode: null }, 2));
    const saved = JSON.parse(readFileSync(f, 'utf8'));
    writeFileSync(f, JSON.stringify({ ...saved, data: saved.data.slice(0, 8) }));
    await expect(evaluatePatches([base], fit, test, { ...opts, sizes: [2], patchesDir: bad })).rejects.toThrow(/baseline_0_2px\.json: \d+ bytes of patch data, expected 16/);
  });

  it('checks its options before any work, naming each', async () => {
    const cases: [object, RegExp][] = [
      [{ sizes: [] }, /sizes: the list of patch sizes is empty/],
      [{ sizes: [0] }, /sizes: a patch side is an integer from 1 to the image's side \(Infinity\), got 0/],
      [{ sizes: [2, 2] }, /sizes: 2,2 lists a size twice/],
      [{ epochs: 0 }, /epochs: must be an integer >= 1, got 0/],
      [{ stepDecay: 2 }, /stepDecay: must be in \(0, 1\], got 2/],
      [{ stepSize: 0 }, /stepSize: must be a number > 0, got 0/],
      [{ gridStride: -1 }, /gridStride: must be an integer >= 0 \(0: no grid\), got -1/],
      [{ target: 1.5 }, /target: must be a class index/],
      [{ seed: -1 }, /seed: must be an integer >= 0, got -1/],
    ];
    for (const [o, msg] of cases) expect(() => resolvePatchEval(o as never), JSON.stringify(o)).toThrow(msg);
    await expect(evaluatePatches([base], fit, test, { ...opts, sizes: [9] })).rejects.toThrow(/sizes: a patch side is an integer from 1 to the image's side \(8\), got 9/);
    await expect(evaluatePatches([base, model('baseline', false, 7)], fit, test, opts)).rejects.toThrow(/models: two models are baseline#0/);
  });

  it('attacks every image with a patch of its own when asked: records equal the attack run directly (hard through BPDA), refused with other settings on resume', async () => {
    const path = join(tmp, 'per-image.jsonl');
    const perImage = { steps: 3, restarts: 2, stepSize: 0.2 };
    const { records } = await evaluatePatches([base, jpeg], fit, test, { ...opts, sizes: [2], noise: false, perImage, recordsPath: path });
    const per = records.filter((r) => r.source?.model === 'per-image');
    expect(per.map((r) => [r.model, r.jpegMode, r.perImage!.craftMode, r.grid, r.fitSuccess])).toEqual([['baseline', null, null, null, null], ['jpeg-dl', 'soft', 'soft', null, null], ['jpeg-dl', 'hard', 'bpda-identity', null, null]]);
    const x = tf.tensor4d(test.images, [24, S, S, 1]);
    for (const r of per) {
      const target = r.model === 'baseline' ? base : jpeg;
      const bits: number[] = [];
      for (const start of [0, 10, 20]) {
        const m = Math.min(10, 24 - start);
        const xb = x.slice([start, 0, 0, 0], [m, -1, -1, -1]);
        const yb = tf.tensor1d(test.labels.subarray(start, start + m), 'int32');
        const run = () => patchPgd(target.model, xb, yb, { size: 2, ...perImage, seed: keySeed(keySeed(5, 'per-image|2'), String(start)) }).adversarial;
        const adv = r.perImage!.craftMode ? await withJpegMode(target.model, r.perImage!.craftMode, run) : run();
        const pred = await predicted(r, () => adv.clone());
        bits.push(...pred.map((v, i) => Number(v === test.labels[start + i])));
        tf.dispose([xb, yb, adv]);
      }
      expect(Array.from(unpackBits(r.correctBits, 24))).toEqual(bits);
    }
    x.dispose();
    // The per-image row is a source of its own: never a series' own patch, part of the worst of all.
    const sum = summarizePatches(records);
    expect(sum.series.map((s) => sum.own(s)?.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [soft]']);
    expect(sum.sources.map((x) => x.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'per image (white-box, 2 places x 3 steps)']);
    const mine = records.filter((r) => r.source && r.model === 'baseline');
    expect(sum.worst(2, 'baseline#0')!.sources).toBe(3);
    const all = mine.flatMap((r) => [unpackBits(r.correctBits, 24), ...(r.grid ? [unpackBits(r.grid.correctBits, 24)] : [])]);
    expect(sum.worst(2, 'baseline#0')!.accuracy).toBe(all[0].filter((_, i) => all.every((b) => b[i])).length / 24);
    expect(renderPatchMarkdown(records, 'T')).toMatch(/\| 2 px per image \(white-box, 2 places x 3 steps\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    await expect(evaluatePatches([base, jpeg], fit, test, { ...opts, sizes: [2], noise: false, perImage: { ...perImage, steps: 4 }, recordsPath: path })).rejects.toThrow(/per-image\.jsonl holds per-image patch records of other settings .*use another --out/);
    expect(() => resolvePatchEval({ perImage: { restarts: 0 } })).toThrow(/perImage.restarts: must be an integer >= 1, got 0/);
  });

  it('leaves no tensor behind', async () => {
    await assertNoTensorLeak(() => evaluatePatches([base, jpeg], fit, test, { ...opts, sizes: [2], epochs: 1, perImage: { steps: 2, restarts: 1 } }).then(() => undefined), { reps: 2, label: 'evaluatePatches' });
  });
});

describe('patch report', () => {
  it('marks each series\' own patch, takes the worst over patches and positions, pairs with the baseline, renders and writes', async () => {
    const { records } = await evaluatePatches([base, jpeg], fit, test, { ...opts, target: 1 });
    const sum = summarizePatches(records);
    expect(sum.series.map((s) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    expect(sum.series.map((s) => sum.own(s)?.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [soft]']);
    expect(sum.sources.map((x) => x.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'uniform noise']);
    expect(sum.sizes).toEqual([{ size: 2, area: 4 / 64 }, { size: 4, area: 16 / 64 }]);
    for (const s of sum.series) {
      for (const size of [2, 4]) {
        const rs = records.filter((q) => q.source && q.size === size && q.model === s.model && q.jpegMode === s.jpegMode);
        const bits = rs.flatMap((q) => [unpackBits(q.correctBits, 24), unpackBits(q.grid!.correctBits, 24)]);
        expect(bits).toHaveLength(6);
        expect(sum.worst(size, s.key)!.accuracy).toBe(bits[0].filter((_, i) => bits.every((b) => b[i])).length / 24);
      }
    }
    expect(sum.paired.map((p) => `${p.series} ${p.size} ${p.kind}`)).toEqual(['jpeg-dl [soft] 2 own', 'jpeg-dl [soft] 4 own', 'jpeg-dl [soft] 2 worst', 'jpeg-dl [soft] 4 worst', 'jpeg-dl [hard] 2 own', 'jpeg-dl [hard] 4 own', 'jpeg-dl [hard] 2 worst', 'jpeg-dl [hard] 4 worst']);
    const own = (m: string, mode: string | null) => records.find((r) => r.source && r.model === m && r.jpegMode === mode && r.size === 4 && r.source.model === m && r.source.mode === (m === 'baseline' ? null : 'soft'))!;
    const [a, b] = [unpackBits(own('jpeg-dl', 'hard').correctBits, 24), unpackBits(own('baseline', null).correctBits, 24)];
    const row = sum.paired.find((p) => p.series === 'jpeg-dl [hard]' && p.size === 4 && p.kind === 'own')!;
    expect([row.onlySeries, row.onlyReference]).toEqual([a.filter((v, i) => v && !b[i]).length, b.filter((v, i) => v && !a[i]).length]);
    const r = records.find((q) => q.source)!;
    expect(r.targetRate).toBeCloseTo(r.targetHits! / test.labels.filter((y) => y !== 1).length, 12);
    const md = renderPatchMarkdown(records, 'T');
    expect(md).toContain('## Accuracy at the worst position of the grid (%)');
    expect(md).toContain('## Sent to the target class 1');
    expect(md).toMatch(/\| 4 px fitted on jpeg-dl \[soft\] \| [\d.]+ \| [\d.]+\* \| [\d.]+\* \|/);
    expect(md).toMatch(/\| 2 px worst of the 3, every position tried \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(renderPatchTerminal(records, 'T')).toMatch(/2 px fitted on baseline\s+│\s+[\d.]+\*/);
    const files = writePatchReport(join(tmp, 'report'), records, { title: 'T', dataset: 'toy' });
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.results[3].threat).toEqual({ patch: true, size: 2, area: 4 / 64, bounds: [0, 1], placement: 'random', grid: 16 });
    expect(json.summary.own).toEqual({ 'baseline#0': 'baseline#0', 'jpeg-dl#0 [soft]': 'jpeg-dl#0 [soft]', 'jpeg-dl#0 [hard]': 'jpeg-dl#0 [soft]' });
    expect(json.summary.worst).toHaveLength(6);
    expect(readFileSync(files.html, 'utf8').match(/<svg/g)).toHaveLength(4);
  });

  it('without a grid: no grid field, table or plot', async () => {
    const { records } = await evaluatePatches([base], fit, test, { ...opts, sizes: [2], gridStride: 0, noise: false });
    expect(records.map((r) => r.grid)).toEqual([null, null]);
    expect(renderPatchMarkdown(records, 'T')).not.toContain('worst position of the grid');
    const files = writePatchReport(join(tmp, 'nogrid'), records, { title: 'T' });
    expect(readFileSync(files.html, 'utf8').match(/<svg/g)).toHaveLength(1);
  });

  it('warns when a model\'s own patch does worse than noise, and about a model that gives one class for everything', () => {
    const rec = (source: string | null, variant: string, acc: number, top = 0.5) => ({
      schema: 1, kind: 'patch', source: source ? { model: source, variant, modelSeed: 0, mode: null } : null, size: source ? 4 : 0, area: source ? 0.25 : 0,
      model: 'a', variant: 'baseline', modelSeed: 0, jpegMode: null, dataset: 'toy', n: 4, fitN: 4, seed: 0, settings: resolvePatchEval({}).settings,
      correct: acc * 4, accuracy: acc, correctBits: '', changed: 0, changeRate: 0, predictedClasses: 3, topClassShare: top, targetHits: null, targetRate: null, grid: null, fitSuccess: null, seconds: 0,
    }) as PatchRecord;
    const records = [rec(null, '', 1), rec('a', 'baseline', 0.75), rec('noise', 'noise', 0.5)];
    expect(patchWarnings(records)).toEqual(['a: its own fitted patch (fitted on a) does worse than a patch of uniform noise (4 px: 75.0% against 50.0% under uniform noise): the fit found less than occlusion, the sign of a gradient that misleads (masked) through that crafting mode; read the worst-of rows.']);
    expect(patchWarnings([records[0], { ...records[1], accuracy: 0.51 }, records[2]])).toEqual([]);
    expect(patchWarnings([rec(null, '', 1, 0.95)])).toEqual(['a: predicts one class for 95.0% of the clean images, so no patch can change much and its accuracy says nothing about robustness.']);
  });
});

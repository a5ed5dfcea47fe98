// Universal-perturbation evaluation: records equal direct predictions with the saved perturbations,
// the perturbations equal the attack's own fit, resume without refitting, refused settings and files,
// the own-perturbation mapping, paired rows, leaks, the report and `check` on universal.json.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { applyUniversal, fitUniversal } from '../../attacks/universal.ts';
import { unpackBits } from '../../src/eval/records.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { checkReport, makeBaseline, readReport } from '../../src/report/check.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { withJpegMode } from '../../src/train/jpeg-params.ts';
import { evaluateUniversal, loadUniversalRecords, perturbationFile, readPerturbation, resolveUniversalEval, type UniversalModel } from '../../src/universal/evaluate.ts';
import { renderUniversalMarkdown, renderUniversalTerminal, summarizeUniversal, universalAsReport, universalWarnings, writeUniversalReport } from '../../src/universal/report.ts';
import { randomImagesData, randomWeights } from '../attacks/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-universal-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [S, K] = [8, 3];
function images(seed: number, n: number): LabelledImages {
  const data = randomImagesData(seed, n * S * S);
  return { images: data, labels: Int32Array.from({ length: n }, (_, i) => i % K), height: S, width: S, channels: 1 };
}

/** A linear classifier (optionally behind a JPEG layer) whose weights make the labels learnable-looking. */
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
const opts = { epsilons: ['8/255', '16/255'], epochs: 2, batchSize: 8, seed: 5, evalBatchSize: 10, dataset: 'toy' };

describe('evaluateUniversal', () => {
  it('scores every model with every source\'s perturbation: records equal direct predictions, perturbations equal the attack\'s own fit', async () => {
    const dir = join(tmp, 'a');
    const { records, perturbations } = await evaluateUniversal([base, jpeg], fit, test, { ...opts, recordsPath: join(dir, 'records.jsonl'), perturbationsDir: join(dir, 'p') });
    // 3 clean + 2 eps x 4 sources (baseline, jpeg-dl [soft], uniform ±eps) x 3 series (baseline, jpeg-dl [soft], [hard]).
    expect(records).toHaveLength(3 + 24);
    expect(perturbations).toHaveLength(4);
    const x = tf.tensor4d(test.images, [24, S, S, 1]);
    const fx = tf.tensor4d(fit.images, [30, S, S, 1]);
    const fy = tf.tensor1d(fit.labels, 'int32');
    // The constant shifts: every pixel ±eps, no fit.
    for (const [model, sign] of [['uniform+', 1], ['uniform-', -1]] as const) {
      for (const r of records.filter((q) => q.source?.model === model)) {
        const target = r.model === 'baseline' ? base : jpeg;
        const run = () => tf.tidy(() => Array.from(tf.argMax(target.model.predict(tf.clipByValue(tf.add(x, sign * r.eps), 0, 1)) as tf.Tensor2D, 1).dataSync()));
        const pred = r.jpegMode ? await withJpegMode(target.model, r.jpegMode, run) : run();
        expect(Array.from(unpackBits(r.correctBits, 24))).toEqual(pred.map((v, i) => Number(v === test.labels[i])));
        expect([r.fitSuccess, r.perturbationNorm!.linf]).toEqual([null, Math.fround(r.eps)]);
      }
    }
    for (const p of perturbations) {
      const src = p.source.model === 'baseline' ? base : jpeg;
      const again = await withJpegMode(src.model, 'soft', () => fitUniversal(src.model, fx, fy, { eps: p.eps, epochs: 2, batchSize: 8, seed: 5, stepSize: 0.25 * p.eps }));
      expect(Array.from(p.values)).toEqual(Array.from(again.perturbation.dataSync()));
      again.perturbation.dispose();
      const saved = readPerturbation(join(dir, 'p', perturbationFile(p.source, p.epsLabel)), { dataset: 'toy', fitN: 30, seed: 5, settings: resolveUniversalEval(opts).settings, shape: [1, S, S, 1] });
      expect(Array.from(saved.values)).toEqual(Array.from(p.values));
      const delta = tf.tensor4d(p.values, [1, S, S, 1]);
      for (const r of records.filter((q) => q.source && q.source.model === p.source.model && q.epsLabel === p.epsLabel)) {
        const target = r.model === 'baseline' ? base : jpeg;
        const run = () => tf.tidy(() => Array.from(tf.argMax(target.model.predict(applyUniversal(x, delta, { norm: 'linf', eps: p.eps })) as tf.Tensor2D, 1).dataSync()));
        const clean = () => tf.tidy(() => Array.from(tf.argMax(target.model.predict(x) as tf.Tensor2D, 1).dataSync()));
        const [pred, pred0] = r.jpegMode ? [await withJpegMode(target.model, r.jpegMode, run), await withJpegMode(target.model, r.jpegMode, clean)] : [run(), clean()];
        expect(Array.from(unpackBits(r.correctBits, 24))).toEqual(pred.map((v, i) => Number(v === test.labels[i])));
        expect(r.changed).toBe(pred.filter((v, i) => v !== pred0[i]).length);
        expect(r.fitSuccess).toBe(p.successRate);
        expect(r.perturbationNorm!.linf).toBeLessThanOrEqual(p.eps + 1e-7);
      }
      delta.dispose();
    }
    tf.dispose([x, fx, fy]);
    const clean = records.filter((r) => !r.source);
    expect(clean.map((r) => [r.model, r.jpegMode, r.epsLabel, r.changed])).toEqual([['baseline', null, '0', 0], ['jpeg-dl', 'soft', '0', 0], ['jpeg-dl', 'hard', '0', 0]]);
  });

  it('resumes: a cut records file is completed without refitting, and equals the unbroken run', async () => {
    const dir = join(tmp, 'a');
    const path = join(dir, 'records.jsonl');
    const full = readFileSync(path, 'utf8');
    const files = ['baseline', 'jpeg-dl'].map((m) => join(dir, 'p', perturbationFile({ model: m, variant: m, modelSeed: 0, mode: m === 'baseline' ? null : 'soft' }, '16/255')));
    const times = files.map((f) => statSync(f).mtimeMs);
    const lines = full.trimEnd().split('\n');
    writeFileSync(path, lines.slice(0, 14).join('\n') + '\n' + lines[14].slice(0, 20));
    const { records } = await evaluateUniversal([base, jpeg], fit, test, { ...opts, recordsPath: path, perturbationsDir: join(dir, 'p') });
    expect(files.map((f) => statSync(f).mtimeMs)).toEqual(times);
    expect(records.map((r) => r.correctBits)).toEqual(loadUniversalRecords(path).map((r) => r.correctBits));
    const strip = (t: string) => t.trimEnd().split('\n').map((l) => { const r = JSON.parse(l); delete r.seconds; return JSON.stringify(r); });
    expect(strip(readFileSync(path, 'utf8'))).toEqual(strip(full));
  });

  it('resumes from records alone (no perturbation directory): every record kept, nothing fitted', async () => {
    const path = join(tmp, 'records-only.jsonl');
    const first = await evaluateUniversal([base], fit, test, { ...opts, recordsPath: path });
    const again = await evaluateUniversal([base], fit, test, { ...opts, recordsPath: path });
    expect(again.records.map((r) => r.correctBits)).toEqual(first.records.map((r) => r.correctBits));
    expect(again.records).toHaveLength(1 + 2 * 3);
    // Only the constant shifts are rebuilt (no fit): the fitted source brings no perturbation back.
    expect(again.perturbations).toEqual([]);
  });

  it('refuses records and perturbation files of other settings, naming the file', async () => {
    const dir = join(tmp, 'a');
    await expect(evaluateUniversal([base], fit, test, { ...opts, epochs: 3, recordsPath: join(dir, 'records.jsonl') })).rejects.toThrow(/records\.jsonl holds universal-perturbation records of other settings .*use another --out/);
    await expect(evaluateUniversal([base], fit, test, { ...opts, epochs: 3, perturbationsDir: join(dir, 'p') })).rejects.toThrow(/baseline_0_8_255\.json was fitted with other settings/);
    const bad = join(tmp, 'bad');
    await evaluateUniversal([base], fit, test, { ...opts, epsilons: ['8/255'], perturbationsDir: bad });
    const f = join(bad, perturbationFile({ model: 'baseline', variant: 'baseline', modelSeed: 0, mode: null }, '8/255'));
    const saved = JSON.parse(readFileSync(f, 'utf8'));
    writeFileSync(f, JSON.stringify({ ...saved, data: saved.data.slice(0, 40) }));
    await expect(evaluateUniversal([base], fit, test, { ...opts, epsilons: ['8/255'], perturbationsDir: bad })).rejects.toThrow(/baseline_0_8_255\.json: \d+ bytes of perturbation data, expected 256/);
  });

  it('checks its options before any work, naming each', () => {
    const cases: [object, RegExp][] = [
      [{ norm: 'l1' }, /norm: a universal perturbation is "linf" or "l2", got l1/],
      [{ method: 'x' }, /method: must be one of sgd, deepfool, got x/],
      [{ epochs: 0 }, /epochs: must be an integer >= 1, got 0/],
      [{ stepDecay: 2 }, /stepDecay: must be in \(0, 1\], got 2/],
      [{ epsilons: ['0', '8/255'] }, /eps: 0 is the clean cell/],
      [{ epsilons: ['8'] }, /did you mean 8\/255/],
      [{ target: 1, method: 'deepfool' }, /target: a targeted universal perturbation needs method sgd/],
      [{ seed: -1 }, /seed: must be an integer >= 0, got -1/],
    ];
    for (const [o, msg] of cases) expect(() => resolveUniversalEval(o as never), JSON.stringify(o)).toThrow(msg);
  });

  it('leaves no tensor behind', async () => {
    await assertNoTensorLeak(() => evaluateUniversal([base, jpeg], fit, test, { ...opts, epsilons: ['8/255'], epochs: 1 }).then(() => undefined), { reps: 2, label: 'evaluateUniversal' });
  });
});

describe('universal report', () => {
  it('marks each series\' own perturbation (a hard series takes the soft fit), pairs with the baseline, renders and checks', async () => {
    const { records } = await evaluateUniversal([base, jpeg], fit, test, { ...opts, target: 1 });
    const sum = summarizeUniversal(records);
    expect(sum.series.map((s) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    expect(sum.series.map((s) => sum.own(s)?.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [soft]']);
    expect(sum.epsilons.map((e) => e.label)).toEqual(['8/255', '16/255']);
    // Paired rows: jpeg-dl [soft] and [hard] at each eps, each under its own and under the worst of both; counts from the bits.
    expect(sum.sources.map((x) => x.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'uniform +eps', 'uniform −eps']);
    expect(sum.paired.map((p) => `${p.series} ${p.epsLabel} ${p.kind}`)).toEqual(['jpeg-dl [soft] 8/255 own', 'jpeg-dl [soft] 16/255 own', 'jpeg-dl [soft] 8/255 worst', 'jpeg-dl [soft] 16/255 worst', 'jpeg-dl [hard] 8/255 own', 'jpeg-dl [hard] 16/255 own', 'jpeg-dl [hard] 8/255 worst', 'jpeg-dl [hard] 16/255 worst']);
    // Worst of the sources: right under both perturbations of the eps, per image.
    for (const s of sum.series) {
      for (const e of ['8/255', '16/255']) {
        const rs = records.filter((q) => q.source && q.epsLabel === e && q.model === s.model && q.jpegMode === s.jpegMode);
        expect(rs).toHaveLength(4);
        const bits = rs.map((q) => unpackBits(q.correctBits, 24));
        expect(sum.worst(e, s.key)!.accuracy).toBe(bits[0].filter((_, i) => bits.every((b) => b[i])).length / 24);
      }
    }
    const own = (m: string, mode: string | null, e: string) => records.find((r) => r.source && r.model === m && r.jpegMode === mode && r.epsLabel === e && r.source.model === m)!;
    const [a, b] = [unpackBits(own('jpeg-dl', 'hard', '16/255').correctBits, 24), unpackBits(own('baseline', null, '16/255').correctBits, 24)];
    const row = sum.paired.find((p) => p.series === 'jpeg-dl [hard]' && p.epsLabel === '16/255' && p.kind === 'own')!;
    expect([row.onlySeries, row.onlyReference]).toEqual([a.filter((v, i) => v && !b[i]).length, b.filter((v, i) => v && !a[i]).length]);
    // Targeted: hits counted over images of other classes.
    const r = records.find((q) => q.source)!;
    expect(r.targetRate).toBeCloseTo(r.targetHits! / test.labels.filter((y) => y !== 1).length, 12);
    const md = renderUniversalMarkdown(records, 'T');
    expect(md).toContain('| 16/255 fitted on jpeg-dl [soft] |');
    expect(md).toContain('## Sent to the target class 1');
    expect(md).toMatch(/\| 16\/255 worst of the 4 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(md).toMatch(/\| 8\/255 uniform −eps \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(md).toMatch(/\| none \(clean\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(renderUniversalTerminal(records, 'T')).toMatch(/8\/255 fitted on baseline\s+│\s+[\d.]+\*/);
    const dir = join(tmp, 'report');
    const files = writeUniversalReport(dir, records, { title: 'T', dataset: 'toy' });
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.results[3].threat).toEqual({ norm: 'linf', eps: 8 / 255, epsLabel: '8/255', universal: true, bounds: [0, 1] });
    expect(json.summary.own).toEqual({ 'baseline#0': 'baseline#0', 'jpeg-dl#0 [soft]': 'jpeg-dl#0 [soft]', 'jpeg-dl#0 [hard]': 'jpeg-dl#0 [soft]' });
    expect(readFileSync(files.html, 'utf8').match(/<svg/g)).toHaveLength(3);
    expect(json.summary.worst).toHaveLength(6);
    const report = readReport(files.json);
    expect(report.cells).toHaveLength(records.length);
    expect(report.cells.find((c) => c.attack === 'universal:baseline' && c.model === 'jpeg-dl' && c.epsLabel === '8/255' && c.jpegMode === 'soft')!.mean)
      .toBe(records.find((q) => q.source?.model === 'baseline' && q.model === 'jpeg-dl' && q.jpegMode === 'soft' && q.epsLabel === '8/255')!.accuracy);
    expect(checkReport(report, makeBaseline(universalAsReport({ records }), { tolerance: 0 })).ok).toBe(true);
  });

  it('warns when a model\'s own fitted perturbation does worse than a constant shift', () => {
    const rec = (source: string | null, variant: string, model: string, acc: number) => ({
      schema: 1, kind: 'universal', source: source ? { model: source, variant, modelSeed: 0, mode: null } : null, eps: source ? 8 / 255 : 0, epsLabel: source ? '8/255' : '0',
      model, variant: 'baseline', modelSeed: 0, jpegMode: null, dataset: 'toy', n: 4, fitN: 4, seed: 0, settings: resolveUniversalEval({}).settings,
      correct: acc * 4, accuracy: acc, correctBits: '', changed: 0, changeRate: 0, predictedClasses: 3, topClassShare: 0.5, targetHits: null, targetRate: null, fitSuccess: null, perturbationNorm: null, seconds: 0,
    }) as unknown as Parameters<typeof universalWarnings>[0][number];
    const records = [rec(null, '', 'a', 1), rec('a', 'baseline', 'a', 0.75), rec('uniform+', 'constant', 'a', 0.5), rec('uniform-', 'constant', 'a', 1)];
    expect(universalWarnings(records)).toEqual(['a: its own fitted perturbation (fitted on a) does worse than a constant shift of every pixel (8/255: 75.0% against 50.0% under uniform +eps): the fit did not find what a flat pattern does, the sign of a gradient that misleads (masked) through that crafting mode; read the worst-of rows.']);
    expect(universalWarnings([records[0], { ...records[1], accuracy: 0.51 }, records[2]])).toEqual([]);
    expect(universalWarnings([{ ...records[0], topClassShare: 0.95 }])).toEqual(['a: predicts one class for 95.0% of the clean images, so no perturbation can change much and its accuracy says nothing about robustness.']);
  });

  it('warns about a model that gives one class for everything', async () => {
    const constant = model('constant', false, 6);
    constant.model.layers[1].setWeights([tf.zeros([S * S, K]), tf.tensor1d([0, 2, 0])]);
    const { records } = await evaluateUniversal([constant, base], fit, test, { ...opts, epsilons: ['8/255'], epochs: 1 });
    const basePred = Array.from(tf.tidy(() => tf.argMax(base.model.predict(tf.tensor4d(test.images, [24, S, S, 1])) as tf.Tensor2D, 1).dataSync()));
    const top = Math.max(...[0, 1, 2].map((k) => basePred.filter((v) => v === k).length)) / 24;
    expect(records.filter((r) => !r.source).map((r) => [r.predictedClasses, r.topClassShare])).toEqual([[1, 1], [new Set(basePred).size, top]]);
    expect(top).toBeLessThan(0.9);
    expect(universalWarnings(records)).toEqual(['constant: predicts one class for every clean image, so no perturbation can change much and its accuracy says nothing about robustness.']);
    expect(renderUniversalTerminal(records, 'T')).toContain('note: constant: predicts one class');
    await expect(evaluateUniversal([base, model('baseline', false, 7)], fit, test, opts)).rejects.toThrow(/models: two models are baseline#0/);
  });
});

// Diagnose evaluation: records equal direct probes and attacks, resume after a kill, refused settings,
// leaks, the summary's statistics and each finding on hand-made records, and a real JPEG layer's modes.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { pgd } from '../../attacks/pgd.ts';
import { keySeed } from '../../src/data/rng.ts';
import { convergenceAttackNames, evaluateDiagnose, loadDiagnoseRecords, resolveDiagnoseOptions, type AttackRecord, type DiagnoseModel, type DiagnoseRecord, type ProbeRecord } from '../../src/diagnose/evaluate.ts';
import { probeBatch } from '../../src/diagnose/probes.ts';
import { renderDiagnoseHtml, renderDiagnoseMarkdown, renderDiagnoseTerminal } from '../../src/diagnose/report.ts';
import { diagnoseFindings, summarizeDiagnose } from '../../src/diagnose/summary.ts';
import { packBits, unpackBits } from '../../src/eval/records.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { randomImagesData } from '../attacks/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-diagnose-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [N, S, K] = [12, 8, 3];
const data: LabelledImages = { images: randomImagesData(31, N * S * S * 3), labels: Int32Array.from({ length: N }, (_, i) => i % K), height: S, width: S, channels: 3 };

function dense(seed: number, jpeg = false): tf.LayersModel {
  return tf.sequential({
    layers: [
      ...(jpeg ? [new JpegLayer({ inputShape: [S, S, 3], quality: 50 })] : []),
      tf.layers.flatten(jpeg ? {} : { inputShape: [S, S, 3] }),
      tf.layers.dense({ units: K, kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 0.3 }) }),
    ],
  });
}
const baseline: DiagnoseModel = { name: 'baseline', variant: 'baseline', modelSeed: 0, model: dense(1) };
const jpegdl: DiagnoseModel = { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: 0, model: dense(2, true) };
const small = { steps: [1, 3], directions: 2, surfaces: 1, surfaceSize: 4, batchSize: 5, eps: 0.1, epsLabel: '0.1', dataset: 'fixture' };

describe('evaluateDiagnose', () => {
  it('writes one probe record and one record per attack run per series, equal to direct computation', async () => {
    const records = await evaluateDiagnose([baseline, jpegdl], data, small);
    const keys = records.map((r) => `${r.model}|${r.jpegMode}|${r.kind}|${r.kind === 'diagnose-attack' ? `${r.steps}|${r.unbounded}` : ''}`);
    expect(keys).toEqual(['baseline', 'jpeg-dl|soft', 'jpeg-dl|hard', 'jpeg-dl|bpda-identity'].flatMap((k) => {
      const id = k.includes('|') ? k : `${k}|null`;
      return [`${id}|diagnose-probe|`, `${id}|diagnose-attack|1|false`, `${id}|diagnose-attack|3|false`, `${id}|diagnose-attack|3|true`];
    }));
    // The baseline's probe, recomputed on the whole set at once (directions do not depend on the batch).
    const probe = records[0] as ProbeRecord;
    const x = tf.tensor4d(data.images, [N, S, S, 3]);
    const y = tf.tensor1d(data.labels, 'int32');
    const direct = probeBatch(baseline.model, x, y, 0, { eps: 0.1, directions: 2 });
    expect(probe.gradMean.map((v) => v.toPrecision(4))).toEqual(Array.from(direct.gradMean, (v) => Number(v.toPrecision(6)).toPrecision(4)));
    expect(probe.fdError.map((v) => v.toFixed(3))).toEqual(Array.from(direct.fdError, (v) => v.toFixed(3)));
    expect(unpackBits(probe.correctBits, N)).toEqual(direct.correct);
    expect(probe.surfaces).toHaveLength(1);
    expect(probe.surfaces[0].values).toHaveLength(16);
    // The 3-step PGD record: the same attack per batch of 5 with the batch's seed.
    const run = records[2] as AttackRecord;
    const bits: number[] = [];
    for (let s = 0; s < N; s += 5) {
      const m = Math.min(5, N - s);
      const [xb, yb] = [x.slice([s, 0, 0, 0], [m, S, S, 3]), y.slice([s], [m])];
      const adv = pgd(baseline.model, xb, yb, { eps: 0.1, steps: 3, seed: keySeed(0, `pgd|3|0.1|${s}`) });
      const eq = tf.tidy(() => tf.equal(tf.argMax(baseline.model.predict(adv) as tf.Tensor2D, 1), yb));
      bits.push(...eq.dataSync());
      tf.dispose([xb, yb, adv, eq]);
    }
    tf.dispose([x, y]);
    expect(run.correctBits).toBe(packBits(bits));
    expect(run.accuracy).toBe(bits.reduce((a, v) => a + v, 0) / N);
    // The unbounded run reaches 0% on a linear model (any image of the box is reachable).
    expect((records[3] as AttackRecord).attackEps).toBe(1);
    // The hard JPEG mode has no gradient; BPDA's identity backward gives one back.
    const byMode = (mode: string) => records.find((r) => r.jpegMode === mode && r.kind === 'diagnose-probe') as ProbeRecord;
    expect(byMode('hard').gradMean.every((g) => g === 0)).toBe(true);
    expect(byMode('bpda-identity').gradMean.every((g) => g > 0)).toBe(true);
    expect(byMode('hard').correctBits).toBe(byMode('bpda-identity').correctBits);
  });

  it('adds a restart run at the largest step count, equal to the attack with restarts, and keys it apart', async () => {
    const records = await evaluateDiagnose([baseline], data, { ...small, restarts: 3, unboundedEps: 0 });
    expect(records.map((r) => (r.kind === 'diagnose-attack' ? `${r.steps}|${r.restarts ?? 1}` : 'probe'))).toEqual(['probe', '1|1', '3|1', '3|3']);
    const run = records[3] as AttackRecord;
    const x = tf.tensor4d(data.images, [N, S, S, 3]);
    const y = tf.tensor1d(data.labels, 'int32');
    const bits: number[] = [];
    for (let s = 0; s < N; s += 5) {
      const m = Math.min(5, N - s);
      const [xb, yb] = [x.slice([s, 0, 0, 0], [m, S, S, 3]), y.slice([s], [m])];
      const adv = pgd(baseline.model, xb, yb, { eps: 0.1, steps: 3, restarts: 3, seed: keySeed(0, `pgd|3|0.1|${s}`) });
      const eq = tf.tidy(() => tf.equal(tf.argMax(baseline.model.predict(adv) as tf.Tensor2D, 1), yb));
      bits.push(...eq.dataSync());
      tf.dispose([xb, yb, adv, eq]);
    }
    tf.dispose([x, y]);
    expect(run.correctBits).toBe(packBits(bits));
    // Restarts keep each image's worst case over runs that include the single run's start: never more images right.
    expect(run.correct).toBeLessThanOrEqual((records[2] as AttackRecord).correct);
    expect(() => resolveDiagnoseOptions({ restarts: 0 })).toThrow(/restarts: must be an integer >= 1/);
    expect(() => resolveDiagnoseOptions({ restarts: 2, steps: [], unboundedEps: 0 })).toThrow(/restarts: the restart run uses the largest step count/);
    expect(() => resolveDiagnoseOptions({ restarts: 2, attack: 'autoattack' })).toThrow(/restarts: autoattack has no restarts option/);
  });

  it('resumes after a kill: done records are kept, a torn line dropped, the rest computed as an unbroken run would', async () => {
    const path = join(tmp, 'resume.jsonl');
    const whole = await evaluateDiagnose([baseline, jpegdl], data, { ...small, recordsPath: path });
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    writeFileSync(path, lines.slice(0, 5).join('\n') + '\n' + lines[5].slice(0, 40));
    let computed = 0;
    const again = await evaluateDiagnose([baseline, jpegdl], data, { ...small, recordsPath: path, onCell: (_d, _t, r) => { if (!lines.slice(0, 5).includes(JSON.stringify(r))) computed++; } });
    expect(computed).toBe(lines.length - 5);
    const strip = (rs: DiagnoseRecord[]) => rs.map(({ seconds: _s, ...r }) => r);
    expect(strip(again)).toEqual(strip(whole));
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(lines.length);
    await expect(evaluateDiagnose([baseline], data, { ...small, directions: 3, recordsPath: path })).rejects.toThrow(/holds diagnose records of other settings .*3 directions.*use another --out/);
    writeFileSync(join(tmp, 'other.jsonl'), '{"kind":"spatial"}\n');
    expect(() => loadDiagnoseRecords(join(tmp, 'other.jsonl'))).toThrow(/other.jsonl:1: not a diagnose record/);
  });

  it('is deterministic and leaks no tensor over a whole diagnosis', async () => {
    const o = { ...small, steps: [2], unboundedEps: 0.5 };
    const strip = (rs: DiagnoseRecord[]) => rs.map(({ seconds: _s, ...r }) => r);
    expect(strip(await evaluateDiagnose([baseline, jpegdl], data, o))).toEqual(strip(await evaluateDiagnose([baseline, jpegdl], data, o)));
    await assertNoTensorLeak(() => evaluateDiagnose([baseline, jpegdl], data, o).then(() => undefined), { reps: 2, label: 'evaluateDiagnose' });
  });

  it('checks its options before any work, naming each', async () => {
    await expect(evaluateDiagnose([], data)).rejects.toThrow(/models: nothing to diagnose/);
    expect(() => resolveDiagnoseOptions({ attack: 'square' })).toThrow(/attack: "square" cannot draw a convergence curve; use an L-inf attack with a steps option \(.*pgd.*apgd/);
    expect(convergenceAttackNames()).toEqual(expect.arrayContaining(['pgd', 'apgd', 'bpda-pgd']));
    expect(convergenceAttackNames()).not.toContain('pgd-l2');
    expect(() => resolveDiagnoseOptions({ steps: [0] })).toThrow(/steps: must be a list of integers >= 1/);
    expect(() => resolveDiagnoseOptions({ steps: 5 as never })).toThrow(/steps: must be a list/);
    expect(() => resolveDiagnoseOptions({ steps: [2, 2] })).toThrow(/repeats a step count/);
    expect(() => resolveDiagnoseOptions({ unboundedEps: 0.01 })).toThrow(/unboundedEps: 0.01 is not above eps/);
    expect(() => resolveDiagnoseOptions({ unboundedEps: 2 })).toThrow(/unboundedEps: must be a number in \[0, 1\]/);
    expect(() => resolveDiagnoseOptions({ steps: [] })).toThrow(/unbounded check runs the attack with the largest step count/);
    expect(resolveDiagnoseOptions({ steps: [], unboundedEps: 0 }).steps).toEqual([]);
    expect(resolveDiagnoseOptions({ steps: [10, 1] }).steps).toEqual([1, 10]);
    expect(() => resolveDiagnoseOptions({ surfaces: -1 })).toThrow(/surfaces: must be an integer >= 0/);
    expect(() => resolveDiagnoseOptions({ surfaceSize: 1 })).toThrow(/surfaceSize/);
    expect(() => resolveDiagnoseOptions({ batchSize: 0 })).toThrow(/batchSize/);
    expect(() => resolveDiagnoseOptions({ eps: 2 })).toThrow(/eps: must be a number in \(0, 1\]/);
  });
});

/** Hand-made records of one series: every statistic and finding has a known answer. */
function series(model: string, jpegMode: ProbeRecord['jpegMode'], p: { gradMean: number[]; fdError: number[]; objective: number[]; along: number[]; randomMax: number[]; correct: number[] }, curve: [number, number[]][], unbounded: number[] | null): DiagnoseRecord[] {
  const n = p.gradMean.length;
  const setting = { dataset: 'hand', n, seed: 0, eps: 0.1, epsLabel: '0.1', loss: 'margin' as const, directions: 4, fdStep: 1 / 255, profile: [0, 1] };
  const ids = { model, variant: model === 'baseline' ? 'baseline' : 'jpeg-dl', modelSeed: 0, jpegMode };
  const probe: ProbeRecord = {
    schema: 1, kind: 'diagnose-probe', ...ids, ...setting, values: 10, objective: p.objective, correctBits: packBits(p.correct), gradMean: p.gradMean,
    alongGradient: [p.objective, p.along], randomMean: [p.objective, p.randomMax], randomMax: [p.objective, p.randomMax], fdError: p.fdError, surfaces: [], seconds: 0,
  };
  const attack = (steps: number, bits: number[], unb: boolean): AttackRecord => ({
    schema: 1, kind: 'diagnose-attack', ...ids, ...setting, attack: 'pgd', steps, attackEps: unb ? 1 : 0.1, unbounded: unb,
    correct: bits.reduce((a, v) => a + v, 0), accuracy: bits.reduce((a, v) => a + v, 0) / n, correctBits: packBits(bits), seconds: 0,
  });
  return [probe, ...curve.map(([k, b]) => attack(k, b, false)), ...(unbounded ? [attack(curve[curve.length - 1][0], unbounded, true)] : [])];
}

describe('summarizeDiagnose and diagnoseFindings', () => {
  const ones = (k: number) => Array(k).fill(1);
  const zeros = (k: number) => Array(k).fill(0);
  // 8 images; the gradient step raises the margin by 10·g (first-order ratio 10 with eps 0.1 and 10 values), beating random except on images 6 and 7.
  const g = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
  const healthy = series('baseline', null,
    { gradMean: g, fdError: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.9, 0.9], objective: Array(8).fill(-1), along: g.map((v) => 10 * v - 1), randomMax: [...Array(6).fill(-0.5), 9, 9], correct: ones(8) },
    [[1, [...ones(7), 0]], [10, [1, ...zeros(7)]]], zeros(8));

  it('computes each statistic from the records', () => {
    const sum = summarizeDiagnose(healthy);
    const s = sum.series[0];
    expect(s.clean).toBe(1);
    expect(s.zeroGradient).toBe(0);
    expect(s.gradMedian).toBeCloseTo(0.45, 12);
    expect(s.fdMedian).toBeCloseTo(0.045, 12);
    expect(s.fdAbove).toBe(0.25);
    expect(s.beatsRandom).toBe(0.75);
    expect(s.firstOrderRatio).toBeCloseTo(10, 9);
    expect(s.profile[0]).toEqual({ t: 0, gradient: -1, randomMean: -1, randomMax: -1 });
    expect(s.profile[1].gradient).toBeCloseTo(3.5, 9);
    expect(s.profile[1].randomMax).toBeCloseTo((6 * -0.5 + 18) / 8, 9);
    expect(s.convergence).toEqual([{ steps: 1, accuracy: 7 / 8, correct: 7 }, { steps: 10, accuracy: 1 / 8, correct: 1 }]);
    // Six images broken between 1 and 10 steps, none restored: exact McNemar p = 2 / 2^6.
    expect(s.lastStep).toEqual({ from: 1, to: 10, broken: 6, restored: 0, p: expect.closeTo(2 / 64, 12) });
    expect(s.lowestVsLast).toBeNull();
    // One step leaves 6 more images right than ten (p = 0.031): ten steps are needed.
    expect(s.stepsNeeded).toBe(10);
    expect(s.unbounded).toEqual({ eps: 1, steps: 10, accuracy: 0, correct: 0 });
    const f = diagnoseFindings(sum);
    expect(f).toHaveLength(2);
    expect(f[0]).toMatch(/^baseline: the gradient-sign step of 0.1 raises the loss more than every one of 4 random sign steps on only 75.0%/);
    expect(f[1]).toMatch(/^baseline: pgd at 0.1 still breaks 6 more images going from 1 to 10 steps \(87.5% → 12.5%, p = 0.031\); it has not converged/);
    expect(f[1]).toMatch(/run more steps, restarts, or APGD\.$/);
    // The advice does not send APGD to APGD.
    const asApgd = healthy.map((r) => (r.kind === 'diagnose-attack' ? { ...r, attack: 'apgd' } : r));
    expect(diagnoseFindings(summarizeDiagnose(asApgd))[1]).toMatch(/^baseline: apgd at 0.1 still breaks 6 more images .* run more steps or restarts\.$/);
  });

  it('does not call noise of the random starts a trend', () => {
    // 3 broken, 1 restored between the last two step counts: p = 0.625, no finding.
    const wobbly = series('baseline', null,
      { gradMean: g, fdError: Array(8).fill(0.01), objective: Array(8).fill(-1), along: Array(8).fill(1), randomMax: Array(8).fill(0), correct: ones(8) },
      [[5, [1, 1, 1, 0, 1, 1, 1, 1]], [10, [0, 0, 0, 1, 1, 1, 1, 1]]], zeros(8));
    const s = summarizeDiagnose(wobbly).series[0];
    expect(s.lastStep).toMatchObject({ broken: 3, restored: 1 });
    expect(s.lastStep!.p).toBeCloseTo(0.625, 12);
    // 5 steps leave 2 images more than 10 (net at the minimum) but p = 0.625: within noise, 5 steps suffice.
    expect(s.stepsNeeded).toBe(5);
    expect(diagnoseFindings(summarizeDiagnose(wobbly))).toEqual([]);
  });

  it('names shattered gradients, unpredictive gradients, an attack that weakens with steps and a failing unbounded attack', () => {
    const flat = series('jpeg-dl', 'hard',
      { gradMean: [0, 0, 0, 0, 0, 0, 0.5, 0.5], fdError: [1, 1, 1, 1, 1, 1, 0.2, 0.2], objective: Array(8).fill(-1), along: [...Array(6).fill(-1), 0, 0], randomMax: [...Array(6).fill(0), -2, -2], correct: ones(8) },
      [[1, ones(8)], [10, ones(8)]], [1, 1, 1, 1, 0, 0, 0, 0]);
    const noisy = series('jpeg-dl', 'soft',
      { gradMean: ones(8), fdError: [0.8, 0.9, 0.7, 0.1, 0.8, 0.9, 0.7, 0.1], objective: Array(8).fill(-1), along: ones(8), randomMax: zeros(8), correct: ones(8) },
      [[1, [0, 0, 0, 0, 0, 0, 0, 1]], [2, [0, 0, 0, 0, 0, 0, 1, 1]], [10, ones(8)]], zeros(8));
    const bpda = series('jpeg-dl', 'bpda-identity',
      { gradMean: ones(8), fdError: [0.8, 0.9, 0.7, 0.1, 0.8, 0.9, 0.7, 0.1], objective: Array(8).fill(-1), along: ones(8), randomMax: zeros(8), correct: ones(8) },
      [[1, zeros(8)], [10, zeros(8)]], zeros(8));
    const all = [...healthy, ...flat, ...noisy, ...bpda];
    const sum = summarizeDiagnose(all);
    expect(sum.series.map((s) => s.label)).toEqual(['baseline', 'jpeg-dl [hard]', 'jpeg-dl [soft]', 'jpeg-dl [bpda-identity]']);
    expect(sum.series[1].zeroGradient).toBe(0.75);
    expect(sum.series[1].firstOrderRatio).toBeCloseTo(1 / (0.1 * 0.5 * 10), 9);
    expect(sum.series[2].lowestVsLast).toEqual({ from: 1, to: 10, broken: 0, restored: 7, p: expect.closeTo(2 / 128, 12) });
    const f = diagnoseFindings(sum).filter((x) => !x.startsWith('baseline'));
    // BPDA's surrogate gradient is not expected to match finite differences: no finding for it.
    expect(f).toEqual([
      expect.stringMatching(/^jpeg-dl \[hard\]: the input gradient is exactly zero on 75.0% of the images \(shattered gradients/),
      expect.stringMatching(/^jpeg-dl \[hard\]: pgd with an unbounded budget \(eps 1, 10 steps\) leaves 4 of 8 images \(50.0%\) correct/),
      expect.stringMatching(/^jpeg-dl \[soft\]: over a step of 1\/255 the loss changes in ways the gradient does not predict \(median finite-difference error 0.75 \(the baseline: 0.04\)/),
      expect.stringMatching(/^jpeg-dl \[soft\]: pgd at 0.1 gets weaker with more steps: 12.5% at 1 step, 100.0% at 10 \(p = 0.016\)/),
    ]);
    expect(f[0]).toMatch(/attack this model through BPDA \(--jpeg-modes bpda-identity\) or with a gradient-free attack/);
    // Without a JPEG layer the advice is the bpda-pgd attack; with bpda-pgd already run, the report's own rows.
    const noJpeg = flat.map((r) => ({ ...r, jpegMode: null }));
    expect(diagnoseFindings(summarizeDiagnose(noJpeg))[0]).toMatch(/through BPDA \(the bpda-pgd attack, e.g. --attack bpda-pgd\)/);
    const viaBpda = noJpeg.map((r) => (r.kind === 'diagnose-attack' ? { ...r, attack: 'bpda-pgd' } : r));
    expect(diagnoseFindings(summarizeDiagnose(viaBpda))[0]).toMatch(/robust accuracy says nothing; the bpda-pgd rows of this report attack it through BPDA instead\.$/);
    // Paired comparison at each step count against the baseline.
    expect(sum.paired.find((p) => p.series === 'jpeg-dl [soft]' && p.steps === 10)).toMatchObject({ onlySeries: 7, onlyReference: 0 });
    const md = renderDiagnoseMarkdown(all, 'T');
    expect(md).toContain('| images with a zero input gradient (%) | 0.0 | 75.0 | 0.0 | 0.0 |');
    expect(md).toContain('| pgd at 0.1, 2 steps (%) | – | – | 25.0 | – |');
    expect(md).toContain('| pgd at 0.1, 10 steps (%) | 12.5 | 100.0 | 100.0 | 0.0 |');
    expect(md).toContain('| pgd unbounded (eps 1, 10 steps) (%) | 0.0 | 50.0 | 0.0 | 0.0 |');
    expect(renderDiagnoseTerminal([...healthy, ...flat], 'T')).toMatch(/finding: jpeg-dl \[hard\]: the input gradient is exactly zero/);
    const html = renderDiagnoseHtml([...healthy, ...flat], 'T');
    expect(html.match(/<svg/g)).toHaveLength(2);
    expect(html).toContain('<li>jpeg-dl [hard]: the input gradient is exactly zero');
  });

  it('names a model that needs more steps than the baseline, with its gap at the baseline\'s step count', () => {
    const quick = series('baseline', null,
      { gradMean: g, fdError: Array(8).fill(0.01), objective: Array(8).fill(-1), along: Array(8).fill(1), randomMax: Array(8).fill(0), correct: ones(8) },
      [[2, [1, ...zeros(7)]], [5, [1, ...zeros(7)]], [20, zeros(8)]], zeros(8));
    const slow = series('jpeg-dl', 'soft',
      { gradMean: g, fdError: Array(8).fill(0.01), objective: Array(8).fill(-1), along: Array(8).fill(1), randomMax: Array(8).fill(0), correct: ones(8) },
      [[2, ones(8)], [5, [...ones(7), 0]], [20, [1, ...zeros(7)]]], zeros(8));
    const sum = summarizeDiagnose([...quick, ...slow]);
    // Baseline: 2 steps leave 1 image more than 20 (within noise). JPEG-DL: 7 more at 2, 6 more at 5 (p 0.016, 0.031): 20 needed.
    expect(sum.series.map((x) => x.stepsNeeded)).toEqual([2, 20]);
    expect(diagnoseFindings(sum)).toEqual([expect.stringMatching(/^jpeg-dl \[soft\]: pgd at 0.1 still breaks 6 more images going from 5 to 20 steps/), expect.stringMatching(/^jpeg-dl \[soft\]: pgd at 0.1 needs 20 steps to come within noise of its lowest accuracy \(12.5% at 20 steps\); the baseline needs 2. With 2 steps it leaves 100.0%, 87.5 points more/)]);
    expect(renderDiagnoseMarkdown([...quick, ...slow], 'T')).toContain("| pgd: fewest steps within noise of the curve's lowest point | 2 | 20 |");
  });

  it('names restarts that break more images than one run', () => {
    const withRestarts = series('baseline', null,
      { gradMean: g, fdError: Array(8).fill(0.01), objective: Array(8).fill(-1), along: Array(8).fill(1), randomMax: Array(8).fill(0), correct: ones(8) },
      [[5, ones(8)], [10, ones(8)]], zeros(8));
    const base = withRestarts.find((r) => r.kind === 'diagnose-attack' && r.steps === 10 && !r.unbounded) as AttackRecord;
    const restartRun = (bits: number[]): AttackRecord => ({ ...base, restarts: 5, correct: bits.reduce((a, b) => a + b, 0), accuracy: bits.reduce((a, b) => a + b, 0) / 8, correctBits: packBits(bits) });
    const helped = summarizeDiagnose([...withRestarts, restartRun([1, 1, ...zeros(6)])]);
    expect(helped.series[0].restarts).toMatchObject({ restarts: 5, steps: 10, correct: 2, change: { from: 10, to: 10, broken: 6, restored: 0 } });
    expect(diagnoseFindings(helped)).toEqual([expect.stringMatching(/^baseline: 5 restarts of pgd at 10 steps break 6 more images than one run \(100.0% → 25.0%, p = 0.031\)/)]);
    // The restart run is not a point of the curve.
    expect(helped.series[0].convergence.map((c) => c.steps)).toEqual([5, 10]);
    expect(renderDiagnoseMarkdown([...withRestarts, restartRun([1, 1, ...zeros(6)])], 'T')).toContain('| pgd at 0.1, 10 steps, 5 restarts (%) | 25.0 |');
    // One image fewer is noise.
    expect(diagnoseFindings(summarizeDiagnose([...withRestarts, restartRun([0, ...ones(7)])]))).toEqual([]);
  });

  it('says so when nothing looks wrong', () => {
    const clean = series('baseline', null,
      { gradMean: [0.1, 0.1], fdError: [0.01, 0.02], objective: [-1, -1], along: [1, 1], randomMax: [0, 0], correct: [1, 1] },
      [[1, [0, 1]], [10, [0, 0]]], [0, 0]);
    expect(diagnoseFindings(summarizeDiagnose(clean))).toEqual([]);
    expect(renderDiagnoseTerminal(clean, 'T')).toContain('no sign of gradient masking in these diagnostics');
    expect(() => summarizeDiagnose([])).toThrow(/no records/);
  });
});

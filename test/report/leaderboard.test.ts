import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packBits } from '../../src/eval/records.ts';
import { WORST_CASE } from '../../src/eval/summary.ts';
import { leaderboardEntries, leaderboardRows, rankEntries, writeLeaderboard } from '../../src/report/leaderboard.ts';
import { buildReport, findCell } from '../../src/report/model.ts';
import { writeReport } from '../../src/report/write.ts';
import { parseAdversarialSpec } from '../../src/train/adversarial.ts';
import { cli } from '../cli/helpers.ts';
import type { CertifyRecord } from '../../src/certify/evaluate.ts';
import { writeCertifyReport } from '../../src/certify/report.ts';
import type { SpatialRecord } from '../../src/spatial/evaluate.ts';
import { writeSpatialReport } from '../../src/spatial/report.ts';
import type { DiagnoseRecord } from '../../src/diagnose/evaluate.ts';
import { writeDiagnoseReport } from '../../src/diagnose/report.ts';
import { resolveUniversalEval, type UniversalRecord } from '../../src/universal/evaluate.ts';
import { writeUniversalReport } from '../../src/universal/report.ts';
import { resolvePatchEval, type PatchRecord } from '../../src/patch/evaluate.ts';
import { writePatchReport } from '../../src/patch/report.ts';
import { fixedInput, fixedRecords } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-board-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Two report directories: the fixed sweep as an evaluate report, and a run report whose models were trained adversarially and whose JPEG-DL model gains 2 images everywhere, with a corruption report beside it. */
function reports(): { plain: string; adv: string } {
  const plain = join(tmp, 'plain');
  const adv = join(tmp, 'adv');
  writeReport(plain, buildReport(fixedInput()));
  const better = fixedRecords().map((r) => {
    if (r.variant !== 'jpeg-dl') return r;
    const k = Math.min(10, r.correct + 2);
    return { ...r, correct: k, accuracy: k / 10, cleanCorrect: Math.min(10, r.cleanCorrect + 2), correctBits: packBits(Array.from({ length: 10 }, (_, i) => (i < k ? 1 : 0))) };
  });
  const input = { ...fixedInput(), records: better, config: { ...fixedInput().config, train: { epochs: 2, adversarial: parseAdversarialSpec('pgd:eps=4/255') } } };
  writeReport(adv, buildReport(input));
  mkdirSync(join(adv, 'corruptions'), { recursive: true });
  writeFileSync(join(adv, 'corruptions', 'corruptions.json'), JSON.stringify({ summary: { series: [{ label: 'baseline', mean: 0.5, relativeError: 1 }, { label: 'jpeg-dl [soft]', mean: 0.6, relativeError: 0.8 }] } }));
  // Certificates of the baseline at two noise levels: ACR 0.1 at sigma 0.25, 0.2 at sigma 0.5.
  const cert = (sigma: number, index: number, radius: number): CertifyRecord => ({
    schema: 1, kind: 'certify', model: 'baseline', variant: 'baseline', modelSeed: 0, jpegMode: null, sigma, sigmaLabel: String(sigma), n0: 100, samples: 1000, alpha: 0.001, batchSize: 500,
    dataset: 'd', images: 2, seed: 0, index, label: 1, prediction: 1, count: 900, pLower: 0.9, radius, correct: true, basePrediction: 1, seconds: 0,
  });
  writeCertifyReport(join(adv, 'certify'), [cert(0.25, 0, 0.2), cert(0.25, 1, 0), cert(0.5, 0, 0.3), cert(0.5, 1, 0.1)], [{ value: 0, label: '0' }], { title: 'c' });
  return { plain, adv };
}

describe('leaderboard', () => {
  it('reads every series with its clean and worst-case accuracy, training, attacks and corruption summary', () => {
    const { plain, adv } = reports();
    const entries = leaderboardEntries([plain, adv]);
    expect(entries.map((e) => `${e.source}/${e.series}`)).toEqual(['plain/baseline', 'plain/jpeg-dl [soft]', 'adv/baseline', 'adv/jpeg-dl [soft]']);
    const report = buildReport(fixedInput());
    const key = report.series.find((s) => s.label === 'baseline')!.key;
    expect(entries[0].robust['4/255']).toBe(findCell(report, key, WORST_CASE, '4/255')!.mean);
    expect(entries[0].clean).toBe(findCell(report, key, 'clean', '0')!.mean);
    expect(entries[0]).toMatchObject({ training: null, weak: true, n: 10, norm: 'linf', dataset: 'fashion-mnist-embedded' });
    expect(entries[0].attacks).toEqual(['fgsm', 'pgd']);
    expect(entries[2].training).toBe('PGD-10 adversarial training, L-inf eps 4/255 (step 0.00392)');
    expect(entries[3].corruption).toEqual({ mean: 0.6, relativeError: 0.8 });
    expect(entries[0].corruption).toBeUndefined();
    expect(entries[2].certified).toEqual({ acr: 0.2, sigma: '0.5' });
    expect(entries[3].certified).toBeUndefined();
    expect(leaderboardRows(entries).header).toContain('certified ACR (L2)');
    expect(leaderboardRows(entries).notes.join(' ')).toMatch(/Certified ACR: the average certified L2 radius/);
    // A certification report is not an attack report either.
    expect(() => leaderboardEntries([join(adv, 'certify', 'certify.json')])).toThrow(/certify.json is a certification report; give the attack report/);
  });

  it('adds the spatial grid worst case from <report>/spatial/, and refuses a spatial.json given as a report', () => {
    const dir = join(tmp, 'with-spatial');
    writeReport(dir, buildReport(fixedInput()));
    const grid = { maxRotation: 10, rotations: 3, maxTranslation: 0, translations: 5 };
    // Two images; the baseline is right on image 0 under every rotation, on image 1 only unrotated.
    const rec = (angle: number, bits: number[]): SpatialRecord => ({
      schema: 1, kind: 'spatial', model: 'baseline', modelSeed: 0, jpegMode: null, transform: { angle, dx: 0, dy: 0 }, draw: null, variant: 'baseline', search: 'grid',
      dataset: 'd', n: 2, seed: 0, grid, fill: 'zeros', interpolation: 'bilinear', correct: bits.reduce((a, b) => a + b, 0), accuracy: bits.reduce((a, b) => a + b, 0) / 2, correctBits: packBits(bits), seconds: 0,
    });
    writeSpatialReport(join(dir, 'spatial'), [rec(0, [1, 1]), rec(-10, [1, 0]), rec(10, [1, 1])], { title: 's' });
    const entries = leaderboardEntries([dir]);
    expect(entries[0].spatial).toEqual({ grid: 0.5, transforms: 3 });
    expect(entries[1].spatial).toBeUndefined();
    const { header, rows, notes } = leaderboardRows(entries);
    expect(header.at(-2)).toBe('rotations and shifts');
    expect(rows.find((r) => r[1] === 'baseline')!.at(-2)).toBe('50.0');
    expect(rows.find((r) => r[1] === 'jpeg-dl [soft]')!.at(-2)).toBe('–');
    expect(notes.join(' ')).toMatch(/every rotation and shift of the spatial grid \(3 transforms/);
    expect(() => leaderboardEntries([join(dir, 'spatial', 'spatial.json')])).toThrow(/spatial.json is a spatial report; give the attack report/);
  });

  it('adds the worst universal perturbation at the ranked eps from <report>/universal/, and refuses a universal.json given as a report', () => {
    const dir = join(tmp, 'with-universal');
    writeReport(dir, buildReport(fixedInput()));
    const settings = resolveUniversalEval({}).settings;
    // Two images; at 4/255 the baseline survives its own perturbation on both, the uniform shift on image 0 only.
    const rec = (source: string | null, variant: string, eps: number, epsLabel: string, bits: number[]): UniversalRecord => ({
      schema: 1, kind: 'universal', source: source ? { model: source, variant, modelSeed: 0, mode: null } : null, eps, epsLabel, model: 'baseline', variant: 'baseline', modelSeed: 0, jpegMode: null,
      dataset: 'd', n: 2, fitN: 2, seed: 0, settings, correct: bits.reduce((a, b) => a + b, 0), accuracy: bits.reduce((a, b) => a + b, 0) / 2, correctBits: packBits(bits),
      changed: 0, changeRate: 0, predictedClasses: 2, topClassShare: 0.5, targetHits: null, targetRate: null, fitSuccess: null, perturbationNorm: null, seconds: 0,
    });
    writeUniversalReport(join(dir, 'universal'), [rec(null, '', 0, '0', [1, 1]), rec('baseline', 'baseline', 4 / 255, '4/255', [1, 1]), rec('uniform+', 'constant', 4 / 255, '4/255', [1, 0])], { title: 'u' });
    const entries = leaderboardEntries([dir]);
    expect(entries[0].universal).toEqual({ '4/255': 0.5 });
    expect(entries[1].universal).toBeUndefined();
    const at4 = leaderboardRows(entries, '4/255');
    expect(at4.header).toContain('universal 4/255');
    const col = at4.header.indexOf('universal 4/255');
    expect(at4.rows.find((r) => r[1] === 'baseline')![col]).toBe('50.0');
    expect(at4.rows.find((r) => r[1] === 'jpeg-dl [soft]')![col]).toBe('–');
    expect(at4.notes.join(' ')).toMatch(/Universal 4\/255: accuracy when the model must be right under every universal perturbation/);
    // Ranked at a budget the universal report lacks: no column rather than a number of another eps.
    const other = leaderboardRows(entries, '1/255');
    expect(other.header.some((h) => h.startsWith('universal'))).toBe(false);
    expect(() => leaderboardEntries([join(dir, 'universal', 'universal.json')])).toThrow(/universal.json is a universal-perturbation report; give the attack report/);
  });

  it('adds the worst adversarial patch of the largest size from <report>/patch/, and refuses a patch.json given as a report', () => {
    const dir = join(tmp, 'with-patch');
    writeReport(dir, buildReport(fixedInput()));
    const settings = resolvePatchEval({}).settings;
    // Two images. 4 px: right everywhere; 8 px: its own patch misses image 1 at the grid, noise misses image 0 at its random position.
    const rec = (source: string | null, variant: string, size: number, bits: number[], grid: number[] | null): PatchRecord => ({
      schema: 1, kind: 'patch', source: source ? { model: source, variant, modelSeed: 0, mode: null } : null, size, area: size * size / 784, model: 'baseline', variant: 'baseline', modelSeed: 0, jpegMode: null,
      dataset: 'd', n: 2, fitN: 2, seed: 0, settings, correct: bits.reduce((a, b) => a + b, 0), accuracy: bits.reduce((a, b) => a + b, 0) / 2, correctBits: packBits(bits),
      changed: 0, changeRate: 0, predictedClasses: 2, topClassShare: 0.5, targetHits: null, targetRate: null,
      grid: grid && { positions: 4, correct: grid.reduce((a, b) => a + b, 0), accuracy: grid.reduce((a, b) => a + b, 0) / 2, correctBits: packBits(grid) }, fitSuccess: null, seconds: 0,
    });
    writePatchReport(join(dir, 'patch'), [rec(null, '', 0, [1, 1], null), rec('baseline', 'baseline', 4, [1, 1], [1, 1]), rec('baseline', 'baseline', 8, [1, 1], [1, 0]), rec('noise', 'noise', 8, [0, 1], [1, 1])], { title: 'p' });
    const entries = leaderboardEntries([dir]);
    expect(entries[0].patch).toEqual({ accuracy: 0, size: 8 });
    expect(entries[1].patch).toBeUndefined();
    const { header, rows, notes } = leaderboardRows(entries);
    const col = header.indexOf('patch 8 px');
    expect(col).toBeGreaterThan(0);
    expect(rows.find((r) => r[1] === 'baseline')![col]).toBe('0.0');
    expect(rows.find((r) => r[1] === 'jpeg-dl [soft]')![col]).toBe('–');
    expect(notes.join(' ')).toMatch(/Patch: accuracy when the model must be right under every adversarial patch of the largest size/);
    expect(() => leaderboardEntries([join(dir, 'patch', 'patch.json')])).toThrow(/patch.json is an adversarial-patch report; give the attack report/);
  });

  it('names what the gradient checks of <report>/diagnose/ found per model, and refuses a diagnose.json given as a report', () => {
    const dir = join(tmp, 'with-diagnose');
    writeReport(dir, buildReport(fixedInput()));
    // Four images; the baseline's gradient agrees with finite differences, JPEG-DL's does not, and its unbounded PGD leaves one image.
    const recs = (model: string, jpegMode: 'soft' | null, fd: number, unbounded: number[]): DiagnoseRecord[] => {
      const setting = { dataset: 'd', n: 4, seed: 0, eps: 0.1, epsLabel: '0.1', loss: 'margin' as const, directions: 2, fdStep: 1 / 255, profile: [0, 1] };
      const ids = { model, variant: model, modelSeed: 0, jpegMode };
      const four = (v: number) => [v, v, v, v];
      return [
        { schema: 1, kind: 'diagnose-probe', ...ids, ...setting, values: 4, objective: four(-1), correctBits: packBits(four(1)), gradMean: four(0.1), alongGradient: [four(-1), four(1)], randomMean: [four(-1), four(0)], randomMax: [four(-1), four(0)], fdError: four(fd), surfaces: [], seconds: 0 },
        { schema: 1, kind: 'diagnose-attack', ...ids, ...setting, attack: 'pgd', steps: 10, attackEps: 1, unbounded: true, correct: unbounded.reduce((a, b) => a + b, 0), accuracy: unbounded.reduce((a, b) => a + b, 0) / 4, correctBits: packBits(unbounded), seconds: 0 },
      ];
    };
    writeDiagnoseReport(join(dir, 'diagnose'), [...recs('baseline', null, 0.05, [0, 0, 0, 0]), ...recs('jpeg-dl', 'soft', 0.9, [1, 0, 0, 0])], { title: 'd' });
    const entries = leaderboardEntries([dir]);
    expect(entries.map((e) => e.diagnose)).toEqual([[], ['gradient misses finite differences', 'unbounded attack fails']]);
    const { header, rows, notes } = leaderboardRows(entries);
    expect(header.at(-2)).toBe('gradient checks');
    expect(rows.find((r) => r[1] === 'baseline')!.at(-2)).toBe('passed');
    expect(rows.find((r) => r[1] === 'jpeg-dl [soft]')!.at(-2)).toBe('gradient misses finite differences; unbounded attack fails');
    expect(notes.join(' ')).toMatch(/Gradient checks: what the gradient-masking diagnostics found/);
    expect(() => leaderboardEntries([join(dir, 'diagnose', 'diagnose.json')])).toThrow(/diagnose.json is a diagnose report; give the attack report/);
  });

  it('ranks by robust accuracy at the chosen eps (default: the largest all have), best first', () => {
    const entries = leaderboardEntries(Object.values(reports()));
    const { eps, ranked } = rankEntries(entries);
    expect(eps).toBe('4/255');
    for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1].robust['4/255']).toBeGreaterThanOrEqual(ranked[i].robust['4/255']);
    expect(`${ranked[0].source}/${ranked[0].series}`).toBe('adv/jpeg-dl [soft]');
    // Two more images right under every attack: two more in the worst case.
    const plainJpeg = entries.find((e) => e.source === 'plain' && e.series === 'jpeg-dl [soft]')!;
    expect(ranked[0].robust['4/255'] - plainJpeg.robust['4/255']).toBeCloseTo(0.2, 12);
    expect(rankEntries(entries, '1/255').eps).toBe('1/255');
    expect(() => rankEntries(entries, '3/255')).toThrow(/--eps: no report has a worst case at "3\/255"; available: 1\/255, 4\/255/);
    const { header, rows, notes } = leaderboardRows(entries);
    expect(header).toEqual(['rank', 'model', 'report', 'training', 'clean', 'robust 1/255', 'robust 4/255 (ranked)', 'corruptions', 'rel. corruption error', 'certified ACR (L2)', 'attacks']);
    expect(rows.find((r) => r[1] === 'baseline' && r[2] === 'adv')!.at(-2)).toBe('0.200 (σ 0.5)');
    expect(rows[0].slice(0, 3)).toEqual(['1', 'jpeg-dl [soft]', 'adv']);
    expect(rows[0].at(-1)).toBe('fgsm, pgd (weak: FGSM/PGD only)');
    expect(notes.join(' ')).toMatch(/attacked with FGSM\/PGD only/);
  });

  it('writes md/html/json/txt and runs from the command line; a bad directory is named', async () => {
    const { plain, adv } = reports();
    const out = join(tmp, 'board');
    const r = await cli('leaderboard', plain, adv, '--out', out, '--eps', '1/255');
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/4 model\(s\) ranked by worst-case robust accuracy at 1\/255/);
    const json = JSON.parse(readFileSync(join(out, 'leaderboard.json'), 'utf8'));
    expect(json.rankedBy).toBe('1/255');
    expect(json.entries).toHaveLength(4);
    expect(readFileSync(join(out, 'leaderboard.md'), 'utf8')).toContain('| rank | model |');
    expect(readFileSync(join(out, 'leaderboard.html'), 'utf8')).toContain('<table class="main">');
    const bad = await cli('leaderboard', join(tmp, 'nope'));
    expect(bad.code).toBe(1);
    expect(bad.text).toMatch(/report: file .*nope\/report.json does not exist/);
    // Reports of different data are listed with a warning.
    const other = join(tmp, 'other');
    writeReport(other, buildReport({ ...fixedInput(), config: { ...fixedInput().config, dataset: 'cifar10' } }));
    expect(leaderboardRows(leaderboardEntries([plain, other])).notes[0]).toMatch(/differ in data or threat model/);
    writeLeaderboard(out, leaderboardEntries([plain]));
    // A corruption report is not an attack report.
    const corr = join(tmp, 'corr.json');
    writeFileSync(corr, JSON.stringify({ schema: 'jpegdl-robust-corruptions/1', records: [{ kind: 'corruption', model: 'baseline', variant: 'baseline', modelSeed: 0, jpegMode: null, corruption: 'clean', severity: 0, dataset: 'd', n: 10, seed: 0, correct: 5, accuracy: 0.5, correctBits: '', seconds: 0, schema: 1 }] }));
    expect(() => leaderboardEntries([corr])).toThrow(/corr.json is a corruption report; give the attack report/);
  });
});

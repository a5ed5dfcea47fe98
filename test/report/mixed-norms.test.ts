// Reports of an evaluation mixing norms: a worst case per norm, tables naming each eps's norm, and no
// cell of one norm read as another's when labels repeat (L-inf 0.5 and L2 0.5 below).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packBits, RECORD_SCHEMA, type CellRecord, type Variant } from '../../src/eval/records.ts';
import { makeBaseline, checkReport, IncompatibleBaselineError } from '../../src/report/check.ts';
import { renderHtml } from '../../src/report/html.ts';
import { leaderboardEntries, leaderboardRows, rankEntries, type LeaderboardEntry } from '../../src/report/leaderboard.ts';
import { writeReport } from '../../src/report/write.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { buildReport, findCell, mainTable, reportNorms, type Report } from '../../src/report/model.ts';
import { renderTerminal } from '../../src/report/terminal.ts';
import { fixedInput } from './fixtures.ts';

const N = 10;
/** Correct images per cell, one string of 0/1 per image. */
const BITS: Record<string, Record<string, string>> = {
  baseline: { clean: '1111111110', pgd: '1111111000', 'pgd-l2': '1100111100', 'apgd-l2': '1110011100' },
  'jpeg-dl': { clean: '1111111111', pgd: '1111111100', 'pgd-l2': '0011111110', 'apgd-l2': '1111000110' },
};
const NORM: Record<string, 'linf' | 'l2' | 'l0'> = { pgd: 'linf', 'pgd-l2': 'l2', 'apgd-l2': 'l2' };

function rec(model: string, attack: string, eps: number, bits: string): CellRecord {
  const b = [...bits].map(Number);
  const correct = b.reduce((a, x) => a + x, 0);
  const clean = [...BITS[model].clean].map(Number).reduce((a, x) => a + x, 0);
  return {
    schema: RECORD_SCHEMA, model, variant: model as Variant, modelSeed: 0, jpegMode: model === 'jpeg-dl' ? 'soft' : null, attack, attackParams: {},
    threat: { norm: attack === 'clean' ? 'linf' : NORM[attack], eps, epsLabel: eps === 0 ? '0' : '0.5', bounds: [0, 1] }, n: N, correct, accuracy: correct / N, cleanCorrect: clean,
    successRate: attack === 'clean' ? null : (clean - correct) / clean, meanNorm: eps / 2, maxNorm: eps, wallTimeMs: 10, seed: 1, backend: 'test', correctBits: packBits(b), finishedAt: '2026-01-01T00:00:00Z',
  };
}

function records(): CellRecord[] {
  return Object.entries(BITS).flatMap(([model, cells]) => [
    rec(model, 'clean', 0, cells.clean),
    ...Object.keys(NORM).flatMap((a) => [rec(model, a, 0, cells.clean), rec(model, a, 0.5, cells[a])]),
  ]);
}

function report(): Report {
  const base = fixedInput();
  return buildReport({ ...base, records: records(), tables: [], config: { ...base.config, n: N, norm: 'mixed', epsilons: ['0', '0.5'], epsilonsByNorm: { linf: ['0', '0.5'], l2: ['0', '0.5'] }, attacks: Object.keys(NORM).map((name) => ({ name, params: {} })), models: [{ name: 'baseline', variant: 'baseline', seed: 0 }, { name: 'jpeg-dl', variant: 'jpeg-dl', seed: 0, jpegModes: ['soft'] }] } });
}

/** Images correct in every bit string (the worst case), counted independently of the report code. */
const allOf = (...s: string[]) => Array.from({ length: N }, (_, i) => s.every((b) => b[i] === '1')).filter(Boolean).length;

describe('a report mixing norms', () => {
  it('takes the worst case per norm, over that norm\'s attacks only', () => {
    const r = report();
    expect(reportNorms(r)).toEqual(['linf', 'l2']);
    for (const [model, key] of [['baseline', 'baseline'], ['jpeg-dl', 'jpeg-dl [soft]']]) {
      const s = r.series.find((x) => x.label === key)!.key;
      const b = BITS[model];
      expect(findCell(r, s, 'worst-case', '0.5', 'linf')!.mean).toBe(allOf(b.clean, b.pgd) / N);
      expect(findCell(r, s, 'worst-case', '0.5', 'l2')!.mean).toBe(allOf(b.clean, b['pgd-l2'], b['apgd-l2']) / N);
      // The two differ here, so a worst case over both norms at the label "0.5" would be neither.
      expect(allOf(b.clean, b.pgd, b['pgd-l2'], b['apgd-l2'])).toBeLessThan(Math.min(allOf(b.clean, b.pgd), allOf(b.clean, b['pgd-l2'], b['apgd-l2'])));
    }
  });

  it('main table: each eps with its norm, the worst case once per norm, differences per row', () => {
    const { header, rows } = mainTable(report());
    expect(header).toEqual(['attack', 'eps', 'baseline', 'jpeg-dl [soft]', 'Δ jpeg-dl [soft] (pts)']);
    expect(rows).toEqual([
      ['clean', '0', '90.0', '100.0', '+10.0'],
      ['pgd', '0.5 L-inf', '70.0', '80.0', '+10.0'],
      ['pgd-l2', '0.5 L2', '60.0', '70.0', '+10.0'],
      ['apgd-l2', '0.5 L2', '60.0', '60.0', '0.0'],
      ['robust (worst case)', '0.5 L-inf', '70.0', '80.0', '+10.0'],
      ['robust (worst case)', '0.5 L2', '50.0', '40.0', '-10.0'],
    ]);
    const term = renderTerminal(report());
    expect(term).toMatch(/L-inf and L2 threat models/);
    expect(term).toMatch(/robust \(worst case\)\s+│ 0\.5 L2\s+│\s+50\.0/);
    expect(renderMarkdown(report())).toContain('| robust (worst case) | 0.5 L2 | 50.0 | 40.0 | -10.0 |');
  });

  it('paired comparison and checks keep the norms apart', () => {
    const r = report();
    const worst = r.paired!.filter((p) => p.attack === 'worst-case');
    // Worst L2: baseline 1100011100, JPEG-DL 0011000110: right for the baseline only 4, for JPEG-DL only 3.
    expect(worst.map((p) => [p.norm, p.referenceOnly, p.modelOnly])).toEqual([['linf', 0, 1], ['l2', 4, 3]]);
    expect(renderMarkdown(r)).toMatch(/\| jpeg-dl \[soft\] \| robust \(worst case\) \| 0\.5 L2 \| -10\.0 \| 4 \| 3 \|/);
    // PGD (L-inf) is its norm's worst case: not "above the worst case" of the L2 attacks; the L2 attacks are 10-30 points above theirs.
    expect(r.checks!.filter((c) => /above the worst case/.test(c))).toEqual([
      'baseline, pgd-l2: 60.0% at 0.5 L2, 10.0 points above the worst case over all attacks (50.0%). Robust accuracy read from pgd-l2 alone would overstate it.',
      'baseline, apgd-l2: 60.0% at 0.5 L2, 10.0 points above the worst case over all attacks (50.0%). Robust accuracy read from apgd-l2 alone would overstate it.',
      'jpeg-dl [soft], pgd-l2: 70.0% at 0.5 L2, 30.0 points above the worst case over all attacks (40.0%). Robust accuracy read from pgd-l2 alone would overstate it.',
      'jpeg-dl [soft], apgd-l2: 60.0% at 0.5 L2, 20.0 points above the worst case over all attacks (40.0%). Robust accuracy read from apgd-l2 alone would overstate it.',
    ]);
  });

  it('HTML: one plot per attack and one worst-case plot per norm, each on its norm\'s axis', () => {
    const html = renderHtml(report());
    const plots = html.split('<svg').slice(1);
    const titles = plots.map((p) => /<title>([^<]*)<\/title>|aria-label="([^"]*)"/.exec(p)).map((m) => m?.[1] ?? m?.[2]);
    expect(titles).toEqual(['Accuracy under pgd', 'Accuracy under pgd-l2', 'Accuracy under apgd-l2', 'Robust accuracy (worst case over L-inf attacks)', 'Robust accuracy (worst case over L2 attacks)']);
    expect(plots.map((p) => /eps \((\w+), 0-1 pixel scale\)/.exec(p)?.[1])).toEqual(['linf', 'l2', 'l2', 'linf', 'l2']);
  });

  it('baselines name the norm of each cell; a single-norm report is not comparable with it', () => {
    const r = report();
    const b = makeBaseline(r);
    expect(b.config.epsilonsByNorm).toEqual({ linf: ['0', '0.5'], l2: ['0', '0.5'] });
    expect(b.cells.filter((c) => c.attack === 'worst-case').map((c) => `${c.model} ${c.eps} ${c.accuracy}`).sort()).toEqual(['baseline 0.5 L-inf 0.7', 'baseline 0.5 L2 0.5', 'jpeg-dl 0.5 L-inf 0.8', 'jpeg-dl 0.5 L2 0.4']);
    expect(checkReport(r, b)).toMatchObject({ ok: true, compared: b.cells.length, failures: [] });
    // One L2 worst case moved by 2 images: found under its own id, the L-inf one untouched.
    const moved = { ...b, cells: b.cells.map((c) => (c.model === 'baseline' && c.attack === 'worst-case' && c.eps === '0.5 L2' ? { ...c, accuracy: 0.6 } : c)) };
    expect(checkReport(r, moved).failures.map((f) => f.cell)).toEqual(['baseline | worst-case | 0.5 L2']);
    const single = buildReport(fixedInput());
    expect(() => checkReport(single, b)).toThrow(IncompatibleBaselineError);
    expect(() => checkReport(single, b)).toThrow(/epsilonsByNorm: baseline \{"linf":\["0","0.5"\],"l2":\["0","0.5"\]\}, report undefined/);
  });

  it('leaderboard: L2 budgets keyed with their norm; a bare label means the L-inf one, or the one norm that has it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-mixed-lb-'));
    writeReport(dir, report());
    const fromReport = leaderboardEntries([dir]);
    expect(fromReport.map((e) => [e.series, e.norm, e.robust])).toEqual([['baseline', 'mixed', { '0.5': 0.7, '0.5 L2': 0.5 }], ['jpeg-dl [soft]', 'mixed', { '0.5': 0.8, '0.5 L2': 0.4 }]]);
    // The L-inf column rests on PGD alone, the L2 one has APGD beside PGD: weak in L-inf only, and said so.
    expect(fromReport.map((e) => [e.weak, e.weakNorms])).toEqual([[true, ['linf']], [true, ['linf']]]);
    expect(leaderboardRows(fromReport).rows[0].at(-1)).toMatch(/ \(weak in L-inf: FGSM\/PGD only\)$/);
    const entry = (series: string, robust: Record<string, number>): LeaderboardEntry => ({ source: 's', series, variant: 'baseline', training: null, dataset: 'd', n: 10, norm: 'mixed', clean: 0.9, robust, attacks: ['pgd', 'pgd-l2'], weak: false, weakNorms: [] });
    const entries = [entry('a', { '0.5': 0.7, '0.5 L2': 0.4, '1 L2': 0.1, '8 L1': 0.2 }), entry('b', { '0.5': 0.6, '0.5 L2': 0.5, '1 L2': 0.2, '8 L1': 0.3 })];
    const { header } = leaderboardRows(entries);
    expect(header.filter((h) => h.startsWith('robust'))).toEqual(['robust 0.5 (ranked)', 'robust 0.5 L2', 'robust 1 L2', 'robust 8 L1']);
    expect(rankEntries(entries, '0.5').ranked.map((e) => e.series)).toEqual(['a', 'b']);
    expect(rankEntries(entries, '0.5 L2').ranked.map((e) => e.series)).toEqual(['b', 'a']);
    expect(rankEntries(entries, '8')).toMatchObject({ eps: '8 L1' });
    const both = [entry('c', { '2 L2': 0.4, '2 L1': 0.7 })];
    expect(() => rankEntries(both, '2')).toThrow('--eps: "2" is a budget in several norms (2 L2, 2 L1); give one of them');
    // With no L-inf budget the default is the largest budget of the first norm (L2), not the L1 one.
    expect(rankEntries(both).eps).toBe('2 L2');
  });

  it('L0 budgets (pixel counts): their own worst case, "5 L0" in tables and the leaderboard, sizes in pixels, their own plot axis', () => {
    const bits = { baseline: { 'pgd-l0': '1111100000', 'sparse-rs': '1101110000' }, 'jpeg-dl': { 'pgd-l0': '1111111100', 'sparse-rs': '1100000000' } };
    const l0rec = (model: 'baseline' | 'jpeg-dl', attack: 'pgd-l0' | 'sparse-rs', eps: number) => {
      const r = rec(model, 'clean', 0, eps === 0 ? BITS[model].clean : bits[model][attack]);
      return { ...r, attack, threat: { norm: 'l0' as const, eps, epsLabel: String(eps), bounds: [0, 1] as [number, number] }, meanNorm: eps, maxNorm: eps, successRate: 0.5 };
    };
    const recs = [...records(), ...(['baseline', 'jpeg-dl'] as const).flatMap((m) => (['pgd-l0', 'sparse-rs'] as const).flatMap((a) => [l0rec(m, a, 0), l0rec(m, a, 5)]))];
    const base = fixedInput();
    const r = buildReport({ ...base, records: recs, tables: [], config: { ...base.config, n: N, norm: 'mixed', epsilons: ['0', '0.5'], epsilonsByNorm: { linf: ['0', '0.5'], l2: ['0', '0.5'], l0: ['0', '5'] }, attacks: [...Object.keys(NORM), 'pgd-l0', 'sparse-rs'].map((name) => ({ name, params: {} })), models: [{ name: 'baseline', variant: 'baseline', seed: 0 }, { name: 'jpeg-dl', variant: 'jpeg-dl', seed: 0, jpegModes: ['soft'] }] } });
    expect(reportNorms(r)).toEqual(['linf', 'l2', 'l0']);
    const s = r.series.find((x) => x.label === 'jpeg-dl [soft]')!.key;
    expect(findCell(r, s, 'worst-case', '5', 'l0')!.mean).toBe(allOf(BITS['jpeg-dl'].clean, bits['jpeg-dl']['pgd-l0'], bits['jpeg-dl']['sparse-rs']) / N);
    const { rows } = mainTable(r);
    expect(rows.filter((row) => row[1] === '5 L0')).toEqual([
      ['pgd-l0', '5 L0', '50.0', '80.0', '+30.0'],
      ['sparse-rs', '5 L0', '50.0', '20.0', '-30.0'],
      ['robust (worst case)', '5 L0', '40.0', '20.0', '-20.0'],
    ]);
    // Sparse-RS (no gradients) 6 images below PGD-L0 on JPEG-DL: the masking check names it.
    expect(r.checks!.some((c) => c.startsWith('jpeg-dl [soft] at 5 L0: Sparse-RS, which uses no gradients, leaves 6 fewer images correct (20.0%) than the best gradient attack (pgd-l0, 80.0%). In L0 a search over pixels'))).toBe(true);
    const html = renderHtml(r);
    expect(html).toContain('eps (l0, changed pixels)');
    expect(html).toMatch(/<td>5 px<\/td>/);
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-l0-lb-'));
    writeReport(dir, r);
    const entries = leaderboardEntries([dir]);
    expect(entries[1].robust).toEqual({ '0.5': 0.8, '0.5 L2': 0.4, '5 L0': 0.2 });
    expect(leaderboardRows(entries).header.filter((h) => h.startsWith('robust'))).toEqual(['robust 0.5 (ranked)', 'robust 0.5 L2', 'robust 5 L0']);
    expect(rankEntries(entries, '5 L0').ranked.map((e) => e.series)).toEqual(['baseline', 'jpeg-dl [soft]']);
    const b = makeBaseline(r);
    expect(b.cells.filter((c) => c.attack === 'worst-case' && c.eps === '5 L0').map((c) => c.accuracy)).toEqual([0.4, 0.2]);
    expect(checkReport(r, b).ok).toBe(true);
  });
});

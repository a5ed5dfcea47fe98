// The query section of a report: checkpoints, per-record statistics in closed form, the accuracy curve
// (never rising, ending at the record's accuracy, reconciled with the bits), the convergence check, the
// Markdown / HTML rendering and the record validation of traces.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packBits, unpackBits, validateRecord, type CellRecord } from '../../src/eval/records.ts';
import { renderHtml } from '../../src/report/html.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { buildReport } from '../../src/report/model.ts';
import { accuracyAfter, fooledTimes, queryChecks, queryCheckpoints, queryPlots, queryTable, queryTableRows } from '../../src/report/queries.ts';
import { fakeRecord } from '../eval/fixtures.ts';
import { checkBalanced, fixedInput } from './fixtures.ts';

/** A Square record over n images with the given per-image first-fooling queries (bits follow from them). */
function traced(fooledAt: number[], budget: number, over: Partial<CellRecord> = {}): CellRecord {
  const bits = fooledAt.map((t) => (t === -1 ? 1 : 0));
  const correct = bits.reduce((a: number, b) => a + b, 0);
  const cleanCorrect = fooledAt.filter((t) => t !== 0).length;
  return fakeRecord({
    attack: 'square', attackParams: { queries: budget }, n: fooledAt.length, correct, accuracy: correct / fooledAt.length, cleanCorrect,
    successRate: cleanCorrect ? (cleanCorrect - correct) / cleanCorrect : null, correctBits: packBits(bits), queries: { budget, fooledAt }, ...over,
  });
}

describe('query checkpoints', () => {
  it('1-2-5 steps below the budget, then the budget', () => {
    expect(queryCheckpoints(1)).toEqual([1]);
    expect(queryCheckpoints(10)).toEqual([1, 2, 5, 10]);
    expect(queryCheckpoints(1568)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1568]);
    expect(queryCheckpoints(5000)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);
    expect(() => queryCheckpoints(0)).toThrow(/budget must be a whole number >= 1, got 0/);
  });
});

describe('query table', () => {
  it('closed form: fooled count, mean and median queries, accuracy at a tenth, half and the whole budget, late finds', () => {
    // 10 images: 1 wrong clean, 3 still right, 6 fooled at queries 1, 3, 10, 40, 60, 100 of 100.
    const r = traced([0, -1, 1, 3, -1, 10, 40, 60, -1, 100], 100);
    const row = queryTable([r])!.rows[0];
    expect(row).toMatchObject({ budget: 100, fooled: 6, cleanCorrect: 9, correct: 3, lateFooled: 2 });
    expect(row.meanQueries).toBeCloseTo((1 + 3 + 10 + 40 + 60 + 100) / 6, 12);
    expect(row.medianQueries).toBe(25);
    // After 10 queries: images fooled at 40, 60, 100 are still right, with the 3 never fooled.
    expect(row.accuracyAtTenth).toBeCloseTo(6 / 10, 12);
    expect(row.accuracyAtHalf).toBeCloseTo(5 / 10, 12);
    expect(row.curve).toEqual([1, 2, 5, 10, 20, 50, 100].map((q) => ({ queries: q, accuracy: [8, 8, 7, 6, 6, 5, 3][[1, 2, 5, 10, 20, 50, 100].indexOf(q)] / 10 })));
    const { header, rows } = queryTableRows(queryTable([r])!);
    expect(header).toEqual(['attack', 'eps', 'model', 'budget', 'fooled', 'mean queries', 'median queries', 'acc. at 10%', 'acc. at 50%', 'acc. at budget', 'fooled in 2nd half']);
    expect(rows[0]).toEqual(['square', '1/255', 'baseline', '100', '6 of 9', '35.7', '25', '60.0', '50.0', '30.0', '2']);
  });

  it('the curve never rises and ends at the record accuracy, for any trace (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }), (budget, us) => {
        const fooledAt = us.map((u) => (u < 0.1 ? 0 : u < 0.4 ? -1 : Math.max(1, Math.ceil(((u - 0.4) / 0.6) * budget))));
        const row = queryTable([traced(fooledAt, budget)])!.rows[0];
        for (let i = 1; i < row.curve.length; i++) expect(row.curve[i].accuracy).toBeLessThanOrEqual(row.curve[i - 1].accuracy);
        expect(row.curve.at(-1)!.accuracy).toBeCloseTo(row.correct / row.n, 12);
        expect(row.curve[0].accuracy).toBeLessThanOrEqual(row.cleanCorrect / row.n + 1e-12);
        expect(row.fooled).toBe(row.cleanCorrect - row.correct);
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  it('an image wrong after the attack that the search never saw fooled (a randomised model) counts at the budget; one right after it stays right', () => {
    // Image 1: trace says never fooled, bits say wrong. Image 2: trace says fooled at 4, bits say right.
    const r = { ...traced([-1, -1, 4], 10), correctBits: packBits([1, 0, 1]), correct: 2, accuracy: 2 / 3 };
    expect(Array.from(fooledTimes(r))).toEqual([Infinity, 10, Infinity]);
    const row = queryTable([r])!.rows[0];
    expect(row.curve.at(-1)!.accuracy).toBeCloseTo(2 / 3, 12);
    expect(row.curve[0].accuracy).toBe(1);
    expect(accuracyAfter(fooledTimes(r), 9)).toBe(1);
    expect(() => fooledTimes(fakeRecord())).toThrow(/has no query trace/);
  });

  it('no table without traces, and none for eps 0', () => {
    expect(queryTable([fakeRecord()])).toBeUndefined();
    expect(queryTable([traced([0, -1], 5, { threat: { norm: 'linf', eps: 0, epsLabel: '0', bounds: [0, 1] } })])).toBeUndefined();
  });
});

describe('query checks and rendering', () => {
  it('warns when a search fooled at least 2 images and 1% after half its budget, summed over seeds', () => {
    const late = (seed: number, at: number) => traced([at, -1, ...Array(98).fill(-1)], 100, { modelSeed: seed });
    expect(queryChecks(queryTable([late(0, 51)])!)).toEqual([]);
    const two = queryChecks(queryTable([late(0, 51), late(1, 100)])!);
    expect(two).toHaveLength(1);
    expect(two[0]).toMatch(/^square on baseline at 1\/255: 2 of 200 images \(over 2 seeds\) were first fooled after half of its 100-query budget; .*more queries would likely lower this accuracy$/);
    // Half the budget exactly is not late.
    expect(queryChecks(queryTable([late(0, 50), late(1, 50)])!)).toEqual([]);
    // 2 images of 400 is below 1%.
    const big = (seed: number) => traced([seed ? 100 : -1, ...Array(199).fill(-1)], 100, { modelSeed: seed });
    expect(queryChecks(queryTable([big(0), big(1), traced([100, ...Array(199).fill(-1)], 100, { modelSeed: 2 })])!)).toEqual([]);
  });

  it('buildReport carries the table and its checks; Markdown and HTML show the table and one plot per search and eps', () => {
    const input = fixedInput();
    expect(buildReport(input).queries).toBeUndefined();
    expect(renderMarkdown(buildReport(input))).not.toContain('## Queries of the score-based searches');
    // Give the PGD cells traces: each wrong-after-attack, right-clean image fell at query 90 of 100.
    input.records = input.records.map((r) => {
      if (r.attack !== 'pgd' || r.threat.eps === 0) return r;
      const clean = unpackBits(input.records.find((c) => c.attack === 'clean' && c.model === r.model && c.modelSeed === r.modelSeed)!.correctBits, r.n);
      const after = unpackBits(r.correctBits, r.n);
      return { ...r, queries: { budget: 100, fooledAt: Array.from({ length: r.n }, (_, i) => (!clean[i] ? 0 : after[i] ? -1 : 90)) } };
    });
    const report = buildReport(input);
    expect(report.queries!.rows).toHaveLength(input.records.filter((r) => r.queries).length);
    for (const row of report.queries!.rows) expect(row.curve.at(-1)!.accuracy).toBeCloseTo(row.correct / row.n, 12);
    expect(report.checks!.some((c) => /first fooled after half of its 100-query budget/.test(c))).toBe(true);
    const md = renderMarkdown(report);
    expect(md).toContain('## Queries of the score-based searches');
    expect(md).toContain('| mean queries |');
    const html = renderHtml(report);
    checkBalanced(html);
    const plots = queryPlots(report.queries!);
    expect(plots.length).toBe(new Set(report.queries!.rows.map((r) => r.epsLabel)).size);
    for (const p of plots) {
      const svg = html.split('<svg').find((s) => s.includes(p.title))!;
      // one line per series (seeds averaged), one point per checkpoint
      const lines = [...svg.matchAll(/<polyline[^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').length);
      expect(lines).toEqual([7, 7]);
    }
  });

  it('validateRecord names a malformed trace', () => {
    const ok = traced([0, -1, 3, -1], 5);
    expect(validateRecord(ok, 'r.jsonl:1').queries!.budget).toBe(5);
    const bad = (q: unknown) => () => validateRecord({ ...ok, queries: q }, 'r.jsonl:2');
    expect(bad({ budget: 5, fooledAt: [0, -1, 3] })).toThrow(/r\.jsonl:2: "queries" must hold a whole budget >= 1 and fooledAt, 4 whole numbers from -1 to the budget/);
    expect(bad({ budget: 5, fooledAt: [0, -1, 6, -1] })).toThrow(/"queries"/);
    expect(bad({ budget: 0, fooledAt: [0, -1, 0, -1] })).toThrow(/"queries"/);
    expect(bad({ budget: 5, fooledAt: [0, -2, 1, 1] })).toThrow(/"queries"/);
    expect(bad(null)).toThrow(/"queries"/);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packBits } from '../../src/eval/records.ts';
import { renderHtml } from '../../src/report/html.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { buildReport } from '../../src/report/model.ts';
import { allCorrect, mcnemarExact, pairedBits, pairedComparisons, pairedTableRows } from '../../src/report/paired.ts';
import { fixedInput, fixedRecords } from './fixtures.ts';

describe('mcnemarExact', () => {
  it('matches hand-computed binomial tails and is symmetric', () => {
    // b = 0, c = 5: 2 / 2^5.
    expect(mcnemarExact(0, 5)).toBeCloseTo(2 / 32, 12);
    // b = 2, c = 8: 2 (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 2 * 56 / 1024.
    expect(mcnemarExact(2, 8)).toBeCloseTo(112 / 1024, 12);
    expect(mcnemarExact(3, 3)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
    expect(() => mcnemarExact(-1, 2)).toThrow(/counts must be integers >= 0/);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), (b, c) => {
        const p = mcnemarExact(b, c);
        expect(p).toBe(mcnemarExact(c, b));
        expect(p).toBeGreaterThan(0);
        expect(p).toBeLessThanOrEqual(1);
        // More imbalance, smaller p.
        if (b < c) expect(mcnemarExact(b, c + 1)).toBeLessThanOrEqual(p);
      }),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe('pairedComparisons', () => {
  it('counts the discordant images per attack, eps and the worst case, pooled over seeds', () => {
    const records = fixedRecords();
    const report = buildReport(fixedInput());
    const rows = pairedComparisons(records, report.reference);
    expect(new Set(rows.map((r) => r.series))).toEqual(new Set(['jpeg-dl [soft]']));
    expect(rows.map((r) => `${r.attack} ${r.epsLabel}`)).toEqual(['clean 0', 'fgsm 1/255', 'fgsm 4/255', 'pgd 1/255', 'pgd 4/255', 'worst-case 1/255', 'worst-case 4/255']);
    expect(pairedTableRows(rows, 'baseline').rows.at(-1)![1]).toBe('robust (worst case)');
    // Clean: the baseline gets the first 8 - seed images, JPEG-DL the first 9 - seed (fixtures): JPEG-DL alone gets image 8 - seed right, per seed.
    const clean = rows.find((r) => r.attack === 'clean')!;
    expect(clean).toMatchObject({ pairs: 20, referenceOnly: 0, modelOnly: 2 });
    expect(clean.diff).toBeCloseTo(0.1, 12);
    expect(clean.p).toBeCloseTo(mcnemarExact(0, 2), 12);
    // Every row's diff equals the difference of the report's accuracies (means over seeds, equal n).
    for (const r of rows) {
      const acc = (series: string) => report.cells.find((c) => c.attack === r.attack && c.epsLabel === r.epsLabel && `${c.model}${c.jpegMode ? ` [${c.jpegMode}]` : ''}` === series)!.mean;
      expect(r.diff).toBeCloseTo(acc('jpeg-dl [soft]') - acc('baseline'), 12);
    }
    expect(pairedComparisons(records, null)).toEqual([]);
  });

  it('a model better on 12 of 12 discordant images is significantly better; table and report sections', () => {
    const records = fixedRecords().filter((r) => r.modelSeed === 0 && (r.attack === 'clean'));
    const n = 40;
    const bits = (k: (i: number) => number) => packBits(Array.from({ length: n }, (_, i) => k(i)));
    const big = records.map((r) => ({ ...r, n, correct: 0, accuracy: 0, correctBits: r.variant === 'baseline' ? bits((i) => (i < 20 ? 1 : 0)) : bits((i) => (i < 32 ? 1 : 0)) }));
    const [row] = pairedComparisons(big, buildReport({ ...fixedInput(), records: big }).reference);
    expect(row).toMatchObject({ referenceOnly: 0, modelOnly: 12, pairs: 40 });
    expect(row.p).toBeCloseTo(2 / 4096, 12);
    const t = pairedTableRows([row], 'baseline');
    expect(t.rows[0]).toEqual(['jpeg-dl [soft]', 'clean', '0', '+30.0', '0', '12', '<0.001', 'better']);
    const report = buildReport(fixedInput());
    expect(renderMarkdown(report)).toContain('## Paired comparison with baseline');
    expect(renderHtml(report)).toContain('<table class="paired">');
  });
});

describe('pairedBits and allCorrect', () => {
  it('count the discordant images of two bit sets, and AND any number of them', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 }).chain((n) => fc.array(fc.array(fc.integer({ min: 0, max: 1 }), { minLength: n, maxLength: n }), { minLength: 1, maxLength: 4 }).map((sets) => ({ n, sets }))), ({ n, sets }) => {
      const [a, b] = [sets[0], sets[sets.length - 1]];
      const r = pairedBits(a, b);
      expect([r.onlySeries, r.onlyReference]).toEqual([a.filter((v, i) => v && !b[i]).length, b.filter((v, i) => v && !a[i]).length]);
      expect(r.p).toBe(mcnemarExact(r.onlySeries, r.onlyReference));
      expect(Array.from(allCorrect(sets, n))).toEqual(Array.from({ length: n }, (_, i) => Number(sets.every((s) => s[i] === 1))));
    }));
    expect(Array.from(allCorrect([], 3))).toEqual([1, 1, 1]);
  });
});

// Accuracy per class: clean and worst case per eps from the records' bits, averaged over seeds.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CLEAN_ATTACK, packBits, unpackBits, type CellRecord } from '../../src/eval/records.ts';
import { seriesKey } from '../../src/eval/summary.ts';
import { buildReport } from '../../src/report/model.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderHtml } from '../../src/report/html.ts';
import { checkClassInfo, perClassChecks, perClassNoise, perClassRows, perClassTable } from '../../src/report/per-class.ts';
import { fixedInput, fixedRecords } from './fixtures.ts';

// Ten images: class 0 = images 0, 1, 9; class 1 = 2, 3, 4; class 2 = 5-8; class 3 has none.
const LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2, 0];
const NAMES = ['zero', 'one', 'two', 'three'];
const classes = { names: NAMES, labels: LABELS };
const EPS = [{ label: '0', value: 0, norm: 'linf' }, { label: '1/255', value: 1 / 255, norm: 'linf' }, { label: '4/255', value: 4 / 255, norm: 'linf' }];
const SERIES = [
  { model: 'baseline', variant: 'baseline' as const, jpegMode: null, key: seriesKey({ model: 'baseline', variant: 'baseline', jpegMode: null }) },
  { model: 'jpeg-dl', variant: 'jpeg-dl' as const, jpegMode: 'soft', key: seriesKey({ model: 'jpeg-dl', variant: 'jpeg-dl', jpegMode: 'soft' }) },
];

/** Brute force: per class, the mean over seeds of the share of its images correct in every given record of that seed. */
function expected(records: CellRecord[], pick: (r: CellRecord) => boolean, cls: number): number {
  const seeds = [...new Set(records.filter(pick).map((r) => r.modelSeed))];
  const idx = LABELS.map((y, i) => (y === cls ? i : -1)).filter((i) => i >= 0);
  const shares = seeds.map((s) => {
    const rs = records.filter((r) => pick(r) && r.modelSeed === s);
    return idx.filter((i) => rs.every((r) => unpackBits(r.correctBits, r.n)[i] === 1)).length / idx.length;
  });
  return shares.reduce((a, b) => a + b, 0) / shares.length;
}

describe('perClassTable', () => {
  it('clean and worst case per class equal a brute-force count over the records, mean over seeds', () => {
    const records = fixedRecords();
    const t = perClassTable(records, classes, SERIES, EPS);
    expect(t.epsilons.map((e) => e.label)).toEqual(['1/255', '4/255']);
    expect(t.rows.map((r) => [r.label, r.name, r.n])).toEqual([[0, 'zero', 3], [1, 'one', 3], [2, 'two', 4]]); // class 3: no image, no row
    // By hand: baseline clean is images 0-7 (seed 0) and 0-6 (seed 1); class 0 = {0, 1, 9}: 2/3 both seeds.
    expect(t.rows[0].values[0].clean).toBeCloseTo(2 / 3, 12);
    // class 2 = {5..8}: seed 0 has 5,6,7 (3/4), seed 1 has 5,6 (2/4): mean 5/8.
    expect(t.rows[2].values[0].clean).toBeCloseTo(5 / 8, 12);
    for (const [si, s] of SERIES.entries()) {
      for (const row of t.rows) {
        const clean = expected(records, (r) => seriesKey(r) === s.key && r.attack === CLEAN_ATTACK, row.label);
        expect(row.values[si].clean).toBeCloseTo(clean, 12);
        t.epsilons.forEach((e, j) => {
          const worst = expected(records, (r) => seriesKey(r) === s.key && (r.attack === CLEAN_ATTACK || r.threat.epsLabel === e.label), row.label);
          expect(row.values[si].worst[j], `${s.model} class ${row.label} at ${e.label}`).toBeCloseTo(worst, 12);
        });
      }
    }
  });

  it('weighted by class size, the per-class numbers give back the report\'s overall accuracy (any labelling)', () => {
    const report = buildReport({ ...fixedInput(), classes });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 10, maxLength: 10 }), (labels) => {
        const t = perClassTable(report.records, { names: NAMES, labels }, report.series, report.epsilons);
        for (const [si, s] of report.series.entries()) {
          const overall = (get: (v: (typeof t.rows)[number]['values'][number]) => number | null) => t.rows.reduce((a, r) => a + r.n * get(r.values[si])!, 0) / 10;
          const clean = report.cells.find((c) => seriesKey(c) === s.key && c.attack === CLEAN_ATTACK)!;
          expect(overall((v) => v.clean)).toBeCloseTo(clean.mean, 12);
          t.epsilons.forEach((e, j) => {
            const worst = report.cells.find((c) => seriesKey(c) === s.key && c.attack === 'worst-case' && c.epsLabel === e.label)!;
            expect(overall((v) => v.worst[j])).toBeCloseTo(worst.mean, 12);
          });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('refuses labels that do not describe the records\' images, naming what is wrong', () => {
    const records = fixedRecords();
    expect(() => perClassTable(records, { names: NAMES, labels: LABELS.slice(1) }, SERIES, EPS)).toThrow(/9 labels for records of 10 images/);
    expect(() => perClassTable(records, { names: NAMES, labels: [...LABELS.slice(1), 4] }, SERIES, EPS)).toThrow(/label 4 of image 9 is not a class index in \[0, 4\)/);
    expect(() => perClassTable(records, { names: NAMES, labels: [...LABELS.slice(1), 0.5] }, SERIES, EPS)).toThrow(/label 0\.5 of image 9/);
    expect(() => checkClassInfo({ names: [], labels: [] }, 0, 'classes')).toThrow(/classes: names must be a non-empty list/);
    expect(() => buildReport({ ...fixedInput(), classes: { names: NAMES, labels: [0, 1] } })).toThrow(/buildReport: classes: 2 labels for records of 10 images/);
  });
});

describe('per-class rendering', () => {
  it('rows name class and size, one clean and one worst-case column per series and eps; unmeasured columns dropped', () => {
    const t = perClassTable(fixedRecords(), classes, SERIES, EPS);
    const { header, rows } = perClassRows(t);
    expect(header).toEqual(['class', 'images', 'baseline clean', 'baseline 1/255', 'baseline 4/255', 'jpeg-dl [soft] clean', 'jpeg-dl [soft] 1/255', 'jpeg-dl [soft] 4/255']);
    expect(rows[0].slice(0, 3)).toEqual(['0 zero', '3', '66.7']);
    // A series measured clean only (as the hard path with no attack of its own) keeps only its clean column.
    const cleanOnly = fixedRecords().filter((r) => r.variant === 'baseline' && r.attack === CLEAN_ATTACK).map((r) => ({ ...r, model: 'jpeg-dl', variant: 'jpeg-dl' as const, jpegMode: 'hard' }));
    const series = [...SERIES, { model: 'jpeg-dl', variant: 'jpeg-dl' as const, jpegMode: 'hard', key: seriesKey({ model: 'jpeg-dl', variant: 'jpeg-dl', jpegMode: 'hard' }) }];
    const h2 = perClassRows(perClassTable([...fixedRecords(), ...cleanOnly], classes, series, EPS)).header;
    expect(h2.slice(-2)).toEqual(['jpeg-dl [soft] 4/255', 'jpeg-dl [hard] clean']);
    expect(perClassNoise(t)).toMatch(/^With as few as 3 images in a class, .* about ±\d+ points/);
  });

  it('the report carries classes and the table; Markdown and HTML show it; a report without classes has none', () => {
    const report = buildReport({ ...fixedInput(), classes });
    expect(report.classes).toEqual(classes);
    expect(report.perClass?.rows).toHaveLength(3);
    const md = renderMarkdown(report);
    expect(md).toContain('## Accuracy per class (%)');
    expect(md).toContain('| 0 zero | 3 | 66.7 |');
    expect(md).toContain('mean over 2 seeds');
    expect(renderHtml(report)).toContain('<h2>Accuracy per class (%)</h2>');
    expect(JSON.parse(JSON.stringify(report)).perClass.rows[2].values[0].clean).toBeCloseTo(5 / 8, 12);
    const plain = buildReport(fixedInput());
    expect(plain.perClass).toBeUndefined();
    expect(renderMarkdown(plain)).not.toContain('Accuracy per class');
    expect(renderHtml(plain)).not.toContain('Accuracy per class');
  });
});

describe('perClassChecks', () => {
  const oneClass = (bits: number[]): CellRecord[] => fixedRecords().map((r) => (r.variant === 'jpeg-dl' && r.attack === CLEAN_ATTACK ? { ...r, correct: bits.reduce((a, b) => a + b, 0), correctBits: packBits(bits) } : r));

  it('flags a series right on one class only (or none), naming the class; not a model right on several', () => {
    // jpeg-dl right only on class 2's images (5-8) in both seeds.
    const report = buildReport({ ...fixedInput(), records: oneClass([0, 0, 0, 0, 0, 1, 1, 1, 1, 0]), classes });
    const checks = perClassChecks(report.perClass!);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatch(/^jpeg-dl \[soft\]: clean, it is right only on class 2 two \(100\.0% of its 4 images; every other class 0%\)/);
    expect(report.checks).toContain(checks[0]);
    const none = perClassChecks(buildReport({ ...fixedInput(), records: oneClass(new Array(10).fill(0)), classes }).perClass!);
    expect(none[0]).toMatch(/jpeg-dl \[soft\]: clean, it is right on no class at all/);
    expect(perClassChecks(buildReport({ ...fixedInput(), classes }).perClass!)).toEqual([]);
    // Fewer than three classes: a two-class model right on one class is not flagged.
    expect(perClassChecks(buildReport({ ...fixedInput(), records: oneClass([0, 0, 0, 0, 0, 1, 1, 1, 1, 0]), classes: { names: ['a', 'b'], labels: [0, 0, 0, 0, 0, 1, 1, 1, 1, 0] } }).perClass!)).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport } from '../../src/report/model.ts';
import { checkReport, formatCheck, IncompatibleBaselineError, makeBaseline, readBaseline, readReport } from '../../src/report/check.ts';
import { packBits } from '../../src/eval/records.ts';
import { fixedInput } from './fixtures.ts';

const report = () => buildReport(fixedInput());

describe('regression check', () => {
  it('passes against its own baseline', () => {
    const r = report();
    const res = checkReport(r, makeBaseline(r));
    expect(res.ok).toBe(true);
    // every cell except the eps = 0 attack/worst-case rows, which repeat the clean row
    expect(res.compared).toBe(r.cells.filter((c) => c.attack === 'clean' || c.eps > 0).length);
    expect(res.compared).toBe(2 * (1 + 3 * 2));
    expect(formatCheck(res)).toMatch(/^OK: \d+ cells within tolerance$/);
  });

  it('fails with a readable diff when a cell moves beyond its tolerance, and notes moves within it', () => {
    const base = makeBaseline(report(), { tolerance: 0.06 });
    const input = fixedInput();
    // jpeg-dl seed 0 fgsm 4/255: 7 correct -> 5 correct: the mean moves by -10 points (beyond 6)
    // jpeg-dl seed 0 pgd 1/255: 8 -> 7: mean moves by -5 points (within 6)
    input.records = input.records.map((x) => {
      const change = x.model === 'jpeg-dl' && x.modelSeed === 0 && x.threat.epsLabel === '4/255' && x.attack === 'fgsm' ? 5 : x.model === 'jpeg-dl' && x.modelSeed === 0 && x.threat.epsLabel === '1/255' && x.attack === 'pgd' ? 7 : null;
      return change === null ? x : { ...x, correct: change, accuracy: change / 10, correctBits: packBits(Array.from({ length: 10 }, (_, i) => i < change)) };
    });
    const res = checkReport(buildReport(input), base);
    expect(res.ok).toBe(false);
    const text = formatCheck(res);
    expect(text).toMatch(/^FAIL: \d+ of \d+ cells moved beyond tolerance/);
    expect(text).toContain('✗ jpeg-dl [soft] | fgsm | 4/255: baseline 65.00% -> 55.00% -10.00 pts = 1 image of 10 (tolerance ±6.00 pts)');
    expect(text).toContain('~ jpeg-dl [soft] | pgd | 1/255: baseline 75.00% -> 70.00% -5.00 pts = 0.5 images of 10 (within ±6.00 pts)');
    // the worst case at 4/255 did not move: pgd (5 correct) was already worse than the new fgsm
    expect(res.failures.some((d) => d.cell.includes('worst-case'))).toBe(false);
    expect(res.failures).toHaveLength(1);
  });

  it('uses per-cell tolerances', () => {
    const r = report();
    const base = makeBaseline(r, { tolerance: 0 });
    base.cells[0].accuracy += 0.05;
    base.cells[0].tolerance = 0.1;
    base.cells[1].accuracy += 0.05;
    const res = checkReport(r, base);
    expect(res.failures).toHaveLength(1);
    expect(res.failures[0].baseline).toBe(base.cells[1].accuracy);
    expect(res.failures[0].diff).toBeCloseTo(-0.05, 12);
    expect(res.moved).toHaveLength(1);
  });

  it('reports a cell missing from the report as a failure', () => {
    const r = report();
    const base = makeBaseline(r);
    r.cells = r.cells.filter((c) => !(c.attack === 'pgd' && c.epsLabel === '4/255' && c.model === 'baseline'));
    const res = checkReport(r, base);
    expect(res.ok).toBe(false);
    expect(formatCheck(res)).toContain('✗ baseline | pgd | 4/255: baseline 0.00% -> missing');
  });

  it('refuses incompatible configurations with the differing fields named', () => {
    const base = makeBaseline(report());
    const other = fixedInput();
    other.config = { ...other.config, n: 20, epsilons: ['0', '1/255'] };
    expect(() => checkReport(buildReport(other), base)).toThrow(IncompatibleBaselineError);
    expect(() => checkReport(buildReport(other), base)).toThrow(/n: baseline 10, report 20[\s\S]*epsilons/);
    const renamed = fixedInput();
    renamed.records = renamed.records.map((x) => ({ ...x, model: x.model === 'jpeg-dl' ? 'jpeg-dl-v2' : x.model }));
    expect(() => checkReport(buildReport(renamed), base)).toThrow(/series: baseline \["baseline","jpeg-dl \[soft\]"\]/);
  });

  it('reads baselines and reports from files with clear errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-check-'));
    const r = report();
    expect(() => readBaseline(join(dir, 'none.json'))).toThrow(/does not exist.*--write-baseline/);
    writeFileSync(join(dir, 'bad.json'), '{oops');
    expect(() => readBaseline(join(dir, 'bad.json'))).toThrow(/not valid JSON/);
    writeFileSync(join(dir, 'other.json'), '{"schema":"x"}');
    expect(() => readBaseline(join(dir, 'other.json'))).toThrow(/schema "x"/);
    expect(() => readReport(join(dir, 'other.json'))).toThrow(/schema "x"/);
    writeFileSync(join(dir, 'report.json'), JSON.stringify(r));
    const asBase = readBaseline(join(dir, 'report.json'), 0.01);
    expect(asBase.cells.every((c) => c.tolerance === 0.01)).toBe(true);
    expect(checkReport(readReport(join(dir, 'report.json')), asBase).ok).toBe(true);
    expect(() => makeBaseline(r, { tolerance: 2 })).toThrow(/tolerance/);
  });
});

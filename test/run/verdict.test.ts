import { describe, expect, it } from 'vitest';
import { seriesKey } from '../../src/eval/summary.ts';
import { pairedComparisons } from '../../src/report/paired.ts';
import { computeVerdict } from '../../src/run/verdict.ts';
import { fixedRecords } from '../report/fixtures.ts';

describe('computeVerdict', () => {
  it('states the paired (McNemar) test of each soft-mode attack at the largest eps, with the counts behind it', () => {
    const records = fixedRecords();
    const v = computeVerdict(records);
    const rows = pairedComparisons(records, seriesKey(records.find((r) => r.variant === 'baseline')!)).filter((r) => r.epsLabel === '4/255' && (r.attack === 'fgsm' || r.attack === 'pgd'));
    expect(rows).toHaveLength(2);
    const fmt = (r: (typeof rows)[number]) => `${r.attack} ${r.diff >= 0 ? '+' : ''}${(100 * r.diff).toFixed(1)} pts (${r.modelOnly} vs ${r.referenceOnly} images, ${r.p < 0.001 ? 'p < 0.001' : `p = ${r.p.toFixed(3)}`})`;
    expect(v.headline).toContain(`Paired on the same images at 4/255 (exact McNemar): ${fmt(rows[0])}, ${fmt(rows[1])}.`);
    // The mean differences of the comparison lines are unchanged by it.
    expect(v.comparisons.map((c) => c.attack)).toEqual(['fgsm', 'pgd']);
    // Without a baseline there is nothing to pair.
    expect(computeVerdict(records.filter((r) => r.variant !== 'baseline')).headline).not.toContain('Paired');
  });
});

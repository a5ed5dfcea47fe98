import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmtInterval, wilsonInterval } from '../../src/report/format.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { buildReport } from '../../src/report/model.ts';
import { fixedInput } from './fixtures.ts';

describe('Wilson interval', () => {
  it('matches the closed form on known values and brackets the estimate', () => {
    // 53 of 100: centre (0.53 + 1.92/100) / 1.0384 = 0.5289, half-width 1.96 sqrt(0.2491/100 + 0.96/10^4) / 1.0384 = 0.0960.
    const [lo, hi] = wilsonInterval(53, 100);
    expect(lo).toBeCloseTo(0.4329, 4);
    expect(hi).toBeCloseTo(0.6249, 4);
    expect(wilsonInterval(0, 10)[0]).toBe(0);
    expect(wilsonInterval(10, 10)[1]).toBe(1);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, f) => {
        const k = Math.round(f * n);
        const [a, b] = wilsonInterval(k, n);
        expect(a).toBeLessThanOrEqual(k / n + 1e-12);
        expect(b).toBeGreaterThanOrEqual(k / n - 1e-12);
        // Four times the images, about half the width.
        const [c, d] = wilsonInterval(4 * k, 4 * n);
        expect(d - c).toBeLessThan(b - a + 1e-12);
      }),
      { numRuns: 200, seed: 9 },
    );
  });

  it('pools the seeds of a cell and appears in the per-cell details', () => {
    // Two seeds of 10 images at 80% and 70%: 15 of 20.
    expect(fmtInterval({ values: [0.8, 0.7], n: 10 })).toBe(`${(100 * wilsonInterval(15, 20)[0]).toFixed(1)}-${(100 * wilsonInterval(15, 20)[1]).toFixed(1)}`);
    expect(renderMarkdown(buildReport(fixedInput()))).toContain('| 95% CI (images) |');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logGamma, Sampler } from '../../src/corruptions/random.ts';

/** Sample mean and variance of `n` draws. */
function moments(draw: () => number, n: number): { mean: number; variance: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const v = draw();
    s += v;
    s2 += v * v;
  }
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean };
}

describe('Sampler', () => {
  it('is a pure function of its seed', () => {
    const a = new Sampler(3);
    const b = new Sampler(3);
    const c = new Sampler(4);
    const draw = (s: Sampler) => [s.uniform(), s.normal(), s.poisson(7), s.poisson(300), s.int(-1, 1)];
    expect(draw(a)).toEqual(draw(b));
    expect(draw(new Sampler(3))).not.toEqual(draw(c));
  });

  it('normal, Poisson (both algorithms) and integers have the right moments and ranges', () => {
    const s = new Sampler(11);
    const n = 40_000;
    const z = moments(() => s.normal(2, 0.5), n);
    expect(z.mean).toBeCloseTo(2, 1);
    expect(Math.sqrt(z.variance)).toBeCloseTo(0.5, 1);
    // Poisson: mean = variance = lambda, below the switch (multiplication) and above it (PTRS).
    for (const lambda of [0.3, 4, 9.9, 10, 47, 500]) {
      const m = moments(() => s.poisson(lambda), n);
      expect(Math.abs(m.mean - lambda) / Math.sqrt(lambda / n)).toBeLessThan(5);
      expect(m.variance / lambda).toBeGreaterThan(0.95);
      expect(m.variance / lambda).toBeLessThan(1.05);
    }
    expect(s.poisson(0)).toBe(0);
    expect(() => s.poisson(-1)).toThrow(/poisson: lambda must be a finite number >= 0, got -1/);
    const ints = new Set(Array.from({ length: 1000 }, () => s.int(-1, 1)));
    expect([...ints].sort()).toEqual([-1, 0]); // numpy randint(-1, 1): high excluded
  });

  it('Poisson probabilities at small counts match exp(-l) l^k / k! (PTRS included)', () => {
    const s = new Sampler(5);
    const lambda = 12;
    const n = 60_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const k = s.poisson(lambda);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const k of [6, 10, 12, 15, 20]) {
      const p = Math.exp(-lambda + k * Math.log(lambda) - logGamma(k + 1));
      const se = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs((counts.get(k) ?? 0) / n - p) / se).toBeLessThan(5);
    }
  });

  it('logGamma matches log((x-1)!) on integers and the reflection formula', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 150 }), (k) => {
        let f = 0;
        for (let i = 2; i < k; i++) f += Math.log(i);
        expect(logGamma(k)).toBeCloseTo(f, 8);
      }),
      { numRuns: 60, seed: 2 },
    );
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
  });
});

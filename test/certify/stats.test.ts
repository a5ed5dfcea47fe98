// The certificate's statistics against closed forms, exact enumeration and SciPy's values.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binomialTestHalf, binomialUpperTail, clopperPearsonLower, normalCdf, normalQuantile, regularisedBeta } from '../../src/certify/stats.ts';

/** P(X >= k), X ~ Bin(n, p), by summing the probability mass in float64 (small n only). */
function tailBySum(k: number, n: number, p: number): number {
  let s = 0;
  let logC = 0; // log C(n, j), built up from j = 0
  for (let j = 0; j <= n; j++) {
    if (j > 0) logC += Math.log(n - j + 1) - Math.log(j);
    if (j >= k) s += Math.exp(logC + (j ? j * Math.log(p) : 0) + (n - j ? (n - j) * Math.log1p(-p) : 0));
  }
  return s;
}

describe('regularised incomplete beta and binomial tails', () => {
  it('closed forms: I_x(1, b) = 1 - (1 - x)^b and I_x(a, 1) = x^a', () => {
    fc.assert(fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.double({ min: 0.1, max: 200, noNaN: true }), (x, s) => {
      expect(regularisedBeta(x, 1, s)).toBeCloseTo(1 - (1 - x) ** s, 10);
      expect(regularisedBeta(x, s, 1)).toBeCloseTo(x ** s, 10);
    }));
  });

  it('binomial upper tail equals the summed probability mass (n <= 80)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 80 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), fc.nat(), (n, p, kk) => {
      const k = kk % (n + 1);
      expect(Math.abs(binomialUpperTail(k, n, p) - tailBySum(k, n, p))).toBeLessThan(1e-10);
    }));
  });

  it('SciPy reference values (scipy.stats.beta.cdf, binom.sf)', () => {
    expect(regularisedBeta(0.3, 2.5, 4)).toBeCloseTo(0.3521975859067672, 11);
    expect(binomialUpperTail(3, 10, 0.2)).toBeCloseTo(0.32220047360000015, 11);
  });

  it('names the bad argument', () => {
    expect(() => regularisedBeta(1.5, 1, 1)).toThrow(/x must be in \[0, 1\]/);
    expect(() => regularisedBeta(0.5, 0, 1)).toThrow(/a and b must be > 0/);
    expect(() => binomialUpperTail(11, 10, 0.5)).toThrow(/k must be an integer in \[0, n=10\]/);
    expect(() => binomialUpperTail(1, 0, 0.5)).toThrow(/n must be an integer >= 1/);
  });
});

describe('Clopper-Pearson lower bound', () => {
  it('k = n gives alpha^(1/n) and k = 0 gives 0', () => {
    for (const [n, alpha] of [[1, 0.05], [100, 0.001], [10000, 0.001]]) {
      expect(clopperPearsonLower(n, n, alpha)).toBeCloseTo(alpha ** (1 / n), 12);
      expect(clopperPearsonLower(0, n, alpha)).toBe(0);
    }
  });

  it('is the p at which P(X >= k) = alpha, below k/n, and grows with k and alpha', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 400 }), fc.nat(), fc.double({ min: 1e-4, max: 0.4, noNaN: true }), (n, kk, alpha) => {
      const k = 1 + (kk % (n - 1));
      const p = clopperPearsonLower(k, n, alpha);
      expect(p).toBeLessThan(k / n);
      expect(binomialUpperTail(k, n, p)).toBeCloseTo(alpha, 9);
      expect(clopperPearsonLower(k + 1, n, alpha)).toBeGreaterThan(p);
      expect(clopperPearsonLower(k, n, Math.min(0.9, 2 * alpha))).toBeGreaterThan(p);
    }), { numRuns: 60 });
  });

  it('SciPy reference values (scipy.stats.beta.ppf(alpha, k, n - k + 1))', () => {
    expect(clopperPearsonLower(9990, 10000, 0.001)).toBeCloseTo(0.9975883080325683, 12);
    expect(clopperPearsonLower(50, 100, 0.05)).toBeCloseTo(0.41362171463091174, 11);
    expect(clopperPearsonLower(99990, 100000, 0.001)).toBeCloseTo(0.9997586773435911, 12);
  });
});

describe('two-sided binomial test at 1/2', () => {
  it('equals the mass of outcomes no more likely than k, by enumeration', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 60 }), fc.nat(), (n, kk) => {
      const k = kk % (n + 1);
      const logC = (j: number) => { let l = 0; for (let i = 1; i <= j; i++) l += Math.log(n - j + i) - Math.log(i); return l; };
      const pmf = (j: number) => Math.exp(logC(j) - n * Math.LN2);
      let p = 0;
      for (let j = 0; j <= n; j++) if (pmf(j) <= pmf(k) * (1 + 1e-9)) p += pmf(j);
      expect(binomialTestHalf(k, n)).toBeCloseTo(Math.min(1, p), 10);
    }));
  });

  it('SciPy reference values (scipy.stats.binomtest(k, n, 0.5).pvalue)', () => {
    expect(binomialTestHalf(60, 100)).toBeCloseTo(0.05688793364098089, 11);
    expect(binomialTestHalf(7, 10)).toBeCloseTo(0.34375, 11);
    expect(binomialTestHalf(5, 10)).toBe(1);
  });
});

describe('normal quantile', () => {
  it('inverts the CDF and is odd', () => {
    fc.assert(fc.property(fc.double({ min: 1e-9, max: 1 - 1e-9, noNaN: true }), (p) => {
      const x = normalQuantile(p);
      expect(normalCdf(x)).toBeCloseTo(p, 12);
      expect(normalQuantile(1 - p)).toBeCloseTo(-x, 6);
    }));
  });

  it('SciPy reference values (scipy.stats.norm.ppf)', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 12);
    expect(normalQuantile(0.999)).toBeCloseTo(3.090232306167813, 12);
    expect(normalQuantile(1e-5)).toBeCloseTo(-4.264890793922825, 10);
    expect(normalQuantile(0.5)).toBe(0);
    expect(() => normalQuantile(1)).toThrow(/p must be in \(0, 1\)/);
  });
});

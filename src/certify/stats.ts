/**
 * The statistics randomised smoothing certifies with (Cohen, Rosenfeld & Kolter 2019): exact
 * binomial tails through the regularised incomplete beta function, the one-sided Clopper-Pearson
 * lower bound, the two-sided binomial test at 1/2 and the standard normal quantile. mathjs gives
 * lgamma and erf; the continued fraction and the root finding are here.
 */
import { erf, lgamma } from 'mathjs';

const TINY = 1e-300;

/** Lentz's evaluation of the incomplete beta continued fraction (converges for x < (a+1)/(a+b+2)). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  // The number of terms needed grows like sqrt(max(a, b)); 20000 covers counts far beyond 10^7.
  for (let m = 1; m <= 20000; m++) {
    const m2 = 2 * m;
    // Even step: m (b - m) x / ((a + 2m - 1)(a + 2m)).
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + num / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    // Odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + num / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) return h;
  }
  throw new Error(`regularisedBeta: continued fraction did not converge for a=${a}, b=${b}, x=${x}`);
}

/** The regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]. */
export function regularisedBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`regularisedBeta: a and b must be > 0, got a=${a}, b=${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`regularisedBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  // The continued fraction converges fast on one side of the mean; the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) covers the other.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(b, a, 1 - x)) / b;
}

function checkCounts(k: number, n: number, fn: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${fn}: n must be an integer >= 1, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`${fn}: k must be an integer in [0, n=${n}], got ${k}`);
}

/** P(X >= k) for X ~ Binomial(n, p): I_p(k, n - k + 1). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  checkCounts(k, n, 'binomialUpperTail');
  if (!(p >= 0 && p <= 1)) throw new Error(`binomialUpperTail: p must be in [0, 1], got ${p}`);
  if (k === 0) return 1;
  return regularisedBeta(p, k, n - k + 1);
}

/**
 * One-sided (1 - alpha) Clopper-Pearson lower confidence bound on a binomial proportion from k
 * successes in n trials: the p at which P(X >= k) = alpha (0 when k = 0; alpha^(1/n) when k = n).
 */
export function clopperPearsonLower(k: number, n: number, alpha: number): number {
  checkCounts(k, n, 'clopperPearsonLower');
  if (!(alpha > 0 && alpha < 1)) throw new Error(`clopperPearsonLower: alpha must be in (0, 1), got ${alpha}`);
  if (k === 0) return 0;
  // P(X >= k) grows with p: bisect to double precision.
  let lo = 0;
  let hi = k / n;
  for (let i = 0; i < 200 && hi - lo > 1e-17; i++) {
    const mid = (lo + hi) / 2;
    if (binomialUpperTail(k, n, mid) < alpha) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Two-sided exact binomial test of k successes in n trials against p = 1/2 (the p-value). */
export function binomialTestHalf(k: number, n: number): number {
  checkCounts(k, n, 'binomialTestHalf');
  const hi = Math.max(k, n - k);
  // The distribution is symmetric: the outcomes at least as unlikely as k are both tails from hi outwards.
  if (2 * hi === n) return 1;
  return Math.min(1, 2 * binomialUpperTail(hi, n, 0.5));
}

/** The standard normal CDF. */
export function normalCdf(x: number): number {
  return x >= 0 ? 0.5 * (1 + erf(x / Math.SQRT2)) : 0.5 * (1 - erf(-x / Math.SQRT2));
}

/** The standard normal quantile Φ⁻¹(p) for p in (0, 1), by bisection on the CDF. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  if (p < 0.5) return -normalQuantile(1 - p);
  if (p === 0.5) return 0;
  let lo = 0;
  let hi = 40;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Seeded samplers for the corruptions: uniform, normal and Poisson, all from one mulberry32 stream. */
import { mulberry32 } from '../data/rng.ts';

/** A seeded stream of uniform, normal and Poisson variates (deterministic per seed). */
export class Sampler {
  private readonly u: () => number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.u = mulberry32(seed >>> 0);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u();
  }

  /** Integer uniform in [lo, hi) (numpy randint semantics). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.u() * (hi - lo));
  }

  /** Normal(mean, sd) by the Box-Muller transform (the second variate kept for the next call). */
  normal(mean = 0, sd = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + sd * z;
    }
    let u1 = this.u();
    while (u1 <= 0) u1 = this.u();
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * this.u();
    this.spare = r * Math.sin(t);
    return mean + sd * r * Math.cos(t);
  }

  /** Poisson(lambda): multiplication method below 10, Hörmann's PTRS transformed rejection above (as numpy). */
  poisson(lambda: number): number {
    if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new Error(`poisson: lambda must be a finite number >= 0, got ${lambda}`);
    if (lambda === 0) return 0;
    if (lambda < 10) {
      const limit = Math.exp(-lambda);
      let k = 0;
      let p = this.u();
      while (p > limit) {
        k++;
        p *= this.u();
      }
      return k;
    }
    const slam = Math.sqrt(lambda);
    const loglam = Math.log(lambda);
    const b = 0.931 + 2.53 * slam;
    const a = -0.059 + 0.02483 * b;
    const invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const U = this.u() - 0.5;
      const V = this.u();
      const us = 0.5 - Math.abs(U);
      const k = Math.floor(((2 * a) / us + b) * U + lambda + 0.43);
      if (us >= 0.07 && V <= vr) return k;
      if (k < 0 || (us < 0.013 && V > us)) continue;
      if (Math.log(V) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -lambda + k * loglam - logGamma(k + 1)) return k;
    }
  }
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15). */
export function logGamma(x: number): number {
  const g = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let s = g[0];
  for (let i = 1; i < 9; i++) s += g[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

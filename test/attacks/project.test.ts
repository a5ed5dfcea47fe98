// The single budget-enforcing projection and the random start.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { l0NormPerExample, l0Support, l1Threshold, normPerExample, project, randomStart, subSeed } from '../../attacks/project.ts';
import { perExampleDistances, randomImagesData, rng } from './helpers.ts';

const shapeArb = fc.record({ n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 5 }), c: fc.constantFrom(1, 3), seed: fc.nat() });

describe('project', () => {
  it('L-inf: equals clip(clip(c, x-eps, x+eps), 0, 1) elementwise and is idempotent', () => {
    fc.assert(
      fc.property(shapeArb, fc.double({ min: 0, max: 1, noNaN: true }), ({ n, h, c, seed }, eps) => {
        const size = n * h * h * c;
        const xs = randomImagesData(seed, size);
        const r = rng(seed + 1);
        const cs = Float32Array.from({ length: size }, () => 3 * r() - 1);
        const x = tf.tensor4d(xs, [n, h, h, c]);
        const cand = tf.tensor4d(cs, [n, h, h, c]);
        const p = project(cand, x, { norm: 'linf', eps });
        const got = p.dataSync();
        const e = Math.fround(eps);
        for (let i = 0; i < size; i++) {
          const lo = Math.max(Math.fround(xs[i] - e), 0);
          const hi = Math.min(Math.fround(xs[i] + e), 1);
          expect(got[i]).toBe(Math.min(Math.max(cs[i], lo), hi));
        }
        const again = project(p, x, { norm: 'linf', eps });
        expect(Array.from(again.dataSync())).toEqual(Array.from(got));
        tf.dispose([x, cand, p, again]);
      }),
      { numRuns: 30, seed: 1 },
    );
  });

  it('L2: inside the ball and box unchanged; outside scaled radially onto the sphere (then box-clipped)', () => {
    fc.assert(
      fc.property(shapeArb, fc.double({ min: 0.01, max: 2, noNaN: true }), ({ n, h, c, seed }, eps) => {
        const size = n * h * h * c;
        const per = size / n;
        const x = tf.fill([n, h, h, c], 0.5) as tf.Tensor4D;
        const r = rng(seed);
        const ds = Float32Array.from({ length: size }, () => (2 * r() - 1) * 0.5);
        const cand = tf.add(x, tf.tensor4d(ds, [n, h, h, c])) as tf.Tensor4D;
        const p = project(cand, x, { norm: 'l2', eps });
        const got = p.dataSync();
        const cv = cand.dataSync();
        for (let i = 0; i < n; i++) {
          const norm = Math.hypot(...ds.slice(i * per, (i + 1) * per));
          for (let j = i * per; j < (i + 1) * per; j++) {
            // |delta| <= 0.5 keeps every candidate pixel in [0,1], so no box clipping here.
            const want = norm <= eps * (1 - 1e-6) - Math.sqrt(per) * 2 ** -24 ? cv[j] : 0.5 + (ds[j] * eps) / norm;
            expect(Math.abs(got[j] - want)).toBeLessThan(1e-5);
          }
        }
        const { l2 } = perExampleDistances(got, x.dataSync(), n);
        for (const v of l2) expect(v).toBeLessThanOrEqual(eps);
        tf.dispose([x, cand, p]);
      }),
      { numRuns: 30, seed: 2 },
    );
  });

  it('box clipping after the L2 projection never leaves the ball', () => {
    const x = tf.tensor4d([0, 1, 0.5, 0.9], [1, 2, 2, 1]);
    const cand = tf.tensor4d([-2, 3, 0.5, 2], [1, 2, 2, 1]);
    const p = project(cand, x, { norm: 'l2', eps: 0.5 });
    const got = Array.from(p.dataSync());
    for (const v of got) expect(v >= 0 && v <= 1).toBe(true);
    expect(perExampleDistances(got, x.dataSync(), 1).l2[0]).toBeLessThanOrEqual(0.5);
    tf.dispose([x, cand, p]);
  });
});

/** sum_i min(max(a_i - lambda, 0), u_i) in float64. */
function l1Mass(a: ArrayLike<number>, u: ArrayLike<number>, lambda: number): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.min(Math.max(a[i] - lambda, 0), u[i]);
  return s;
}

describe('L1 projection', () => {
  const vecArb = fc.integer({ min: 1, max: 40 }).chain((n) => fc.record({
    a: fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: n, maxLength: n }),
    u: fc.array(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: n, maxLength: n }),
    radius: fc.double({ min: 0, max: 10, noNaN: true }),
  }));

  it('l1Threshold: the least lambda >= 0 whose clipped mass fits the radius (checked against the definition)', () => {
    fc.assert(
      fc.property(vecArb, ({ a, u, radius }) => {
        const lambda = l1Threshold(a, u, radius);
        expect(lambda).toBeGreaterThanOrEqual(0);
        const mass = l1Mass(a, u, lambda);
        const total = l1Mass(a, u, 0);
        if (total <= radius) {
          expect(lambda).toBe(0);
        } else {
          // On the sphere exactly, and any smaller lambda would overflow it.
          expect(Math.abs(mass - radius)).toBeLessThan(1e-9 * Math.max(1, radius));
          if (lambda > 1e-9) expect(l1Mass(a, u, lambda - 1e-7)).toBeGreaterThan(radius);
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('L1: feasible (box and ball), the nearest feasible point (variational inequality), idempotent, inside points unchanged bit-for-bit', () => {
    fc.assert(
      fc.property(shapeArb, fc.double({ min: 0, max: 4, noNaN: true }), ({ n, h, c, seed }, eps) => {
        const size = n * h * h * c;
        const per = size / n;
        const xs = randomImagesData(seed, size);
        const r = rng(seed + 1);
        const cs = Float32Array.from({ length: size }, () => 3 * r() - 1);
        const x = tf.tensor4d(xs, [n, h, h, c]);
        const cand = tf.tensor4d(cs, [n, h, h, c]);
        const p = project(cand, x, { norm: 'l1', eps });
        const got = p.dataSync();
        for (const v of got) expect(v >= 0 && v <= 1).toBe(true);
        const { l1 } = perExampleDistances(got, xs, n);
        for (const v of l1) expect(v).toBeLessThanOrEqual(eps);
        // For every feasible z: (c - p)·(z - p) <= 0 (p is the Euclidean projection onto a convex set).
        // Feasible z: a random box point pulled towards x until it fits the ball (0 is in both sets).
        for (let t = 0; t < 5; t++) {
          for (let b = 0; b < n; b++) {
            const z = new Float64Array(per);
            let mass = 0;
            for (let j = 0; j < per; j++) {
              z[j] = r() - xs[b * per + j];
              mass += Math.abs(z[j]);
            }
            const scale = mass > eps * 0.999 ? (eps * 0.999) / mass : 1;
            let dot = 0;
            let tol = 0;
            for (let j = 0; j < per; j++) {
              const k = b * per + j;
              const zj = xs[k] + z[j] * scale;
              dot += (cs[k] - got[k]) * (zj - got[k]);
              tol += Math.abs(cs[k] - got[k]);
            }
            expect(dot).toBeLessThanOrEqual(1e-5 * (1 + tol));
          }
        }
        // Idempotent up to float32 rounding (a point on the sphere may round a hair outside it).
        const again = project(p, x, { norm: 'l1', eps });
        const av = again.dataSync();
        for (let k = 0; k < size; k++) expect(Math.abs(av[k] - got[k])).toBeLessThan(1e-6);
        // Inside both sets: returned bit-for-bit.
        const half = tf.add(x, tf.mul(tf.sub(p, x), 0.5)) as tf.Tensor4D;
        const same = project(half, x, { norm: 'l1', eps });
        expect(Array.from(same.dataSync())).toEqual(Array.from(half.dataSync()));
        tf.dispose([x, cand, p, again, half, same]);
      }),
      { numRuns: 40, seed: 3 },
    );
  });

  it('L1 with the box inactive is soft-thresholding: delta_i = sign(c_i)·max(|c_i| - lambda, 0) on the sphere', () => {
    const x = tf.fill([1, 4, 4, 3], 0.5) as tf.Tensor4D;
    const r = rng(5);
    const ds = Float32Array.from({ length: 48 }, () => (2 * r() - 1) * 0.4);
    const cand = tf.add(x, tf.tensor4d(ds, [1, 4, 4, 3])) as tf.Tensor4D;
    const eps = 2;
    const p = project(cand, x, { norm: 'l1', eps });
    const got = p.dataSync();
    const mags = Array.from(ds, Math.abs).sort((u, v) => v - u);
    // Closed form: the k largest magnitudes move, lambda = (sum of them - eps) / k for the k that is consistent.
    let lambda = 0;
    for (let k = 1, s = 0; k <= mags.length; k++) {
      s += mags[k - 1];
      const l = (s - eps) / k;
      if (l >= 0 && (k === mags.length || mags[k] <= l) && mags[k - 1] > l) lambda = l;
    }
    expect(lambda).toBeGreaterThan(0);
    for (let j = 0; j < 48; j++) expect(got[j] - 0.5).toBeCloseTo(Math.sign(ds[j]) * Math.max(Math.abs(ds[j]) - lambda, 0), 5);
    expect(perExampleDistances(got, x.dataSync(), 1).l1[0]).toBeCloseTo(eps, 3);
    tf.dispose([x, cand, p]);
  });

  it('L1 eps 0 returns x, and a candidate outside only the box is clipped to it', () => {
    const x = tf.tensor4d([0, 1, 0.5, 0.25], [1, 2, 2, 1]);
    const cand = tf.tensor4d([-0.5, 1.5, 0.75, 0.25], [1, 2, 2, 1]);
    const zero = project(cand, x, { norm: 'l1', eps: 0 });
    expect(Array.from(zero.dataSync())).toEqual([0, 1, 0.5, 0.25]);
    const box = project(cand, x, { norm: 'l1', eps: 10 });
    expect(Array.from(box.dataSync())).toEqual([0, 1, 0.75, 0.25]);
    tf.dispose([x, cand, zero, box]);
  });
});

/** Every subset of [0, p) with at most k members. */
function subsetsUpTo(p: number, k: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << p; mask++) {
    const set = Array.from({ length: p }, (_, i) => i).filter((i) => mask & (1 << i));
    if (set.length <= k) out.push(set);
  }
  return out;
}

describe('L0 projection (pixels)', () => {
  it('is the nearest point with at most k changed pixels in the box (checked against every support), idempotent, inside points unchanged', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom(1, 3), fc.integer({ min: 0, max: 7 }), fc.nat(), (n, h, w, c, k, seed) => {
        const p = h * w;
        const r = rng(seed);
        const xs = randomImagesData(seed + 1, n * p * c);
        // Candidates: some pixels untouched, some moved inside the box, some pushed outside it.
        const cs = Float32Array.from(xs, (v) => { const u = r(); return u < 0.3 ? v : u < 0.7 ? r() : 3 * r() - 1; });
        const x = tf.tensor4d(xs, [n, h, w, c]);
        const cand = tf.tensor4d(cs, [n, h, w, c]);
        const out = project(cand, x, { norm: 'l0', eps: k });
        const o = out.dataSync();
        const dist = perExampleDistances(o, xs, n, c);
        for (let b = 0; b < n; b++) {
          expect(dist.l0[b]).toBeLessThanOrEqual(k);
          let got = 0;
          for (let j = b * p * c; j < (b + 1) * p * c; j++) {
            expect(o[j] >= 0 && o[j] <= 1).toBe(true);
            got += (o[j] - cs[j]) ** 2;
          }
          // The best point over every support of at most k pixels: clipped candidate on it, x elsewhere.
          let best = Infinity;
          for (const set of subsetsUpTo(p, k)) {
            let s = 0;
            for (let q = 0; q < p; q++) {
              for (let ch = 0; ch < c; ch++) {
                const j = (b * p + q) * c + ch;
                const v = set.includes(q) ? Math.min(1, Math.max(0, cs[j])) : xs[j];
                s += (v - cs[j]) ** 2;
              }
            }
            best = Math.min(best, s);
          }
          expect(got).toBeLessThanOrEqual(best + 1e-5);
        }
        const again = project(out, x, { norm: 'l0', eps: k });
        expect(Array.from(again.dataSync())).toEqual(Array.from(o));
        tf.dispose([x, cand, out, again]);
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('keeps the pixels of largest gain ||c-x||² - ||c-clip(c)||², not of largest clipped move', () => {
    // Pixel 0 moves to 2 (clipped to 1: a move of 0.5, gain 2.25 - 1 = 1.25); pixel 1 moves 0.5 -> 0.1
    // (a move of 0.4 inside the box, gain 0.16). k = 1 keeps pixel 0; pixel 2 (untouched) stays.
    const x = tf.tensor4d([0.5, 0.5, 0.3], [1, 1, 3, 1]);
    const cand = tf.tensor4d([2, 0.1, 0.3], [1, 1, 3, 1]);
    const out = project(cand, x, { norm: 'l0', eps: 1 });
    expect(Array.from(out.dataSync())).toEqual([1, 0.5, Math.fround(0.3)]);
    // A larger clipped move that gains less: pixel 0 0.5 -> 1.05 (clip 1: move 0.5, gain 0.3025 - 0.0025 = 0.3)
    // against pixel 1 0.5 -> 0.0 (move 0.5, gain 0.25); then 0.5 -> 1.02 (gain 0.2704 - 0.0004 = 0.27) vs 0.25.
    expect(Array.from(l0Support([0.3, 0.25], 1))).toEqual([1, 0]);
    expect(Array.from(l0Support([0.25, 0.3, 0.3], 2))).toEqual([0, 1, 1]);
    // Ties go to the lower index; k beyond the pixel count keeps all, k = 0 none.
    expect(Array.from(l0Support([0.5, 0.5, 0.5], 2))).toEqual([1, 1, 0]);
    expect(Array.from(l0Support([0.1, 0.2], 5))).toEqual([1, 1]);
    expect(Array.from(l0Support([0.1, 0.2], 0))).toEqual([0, 0]);
    tf.dispose([x, cand, out]);
  });

  it('counts changed pixels (any channel), not values; eps 0 returns x; a fractional eps keeps floor(eps) pixels', () => {
    const x = tf.tensor4d([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 0.2, 0.2, 0.2], [1, 2, 2, 3]);
    const c = tf.tensor4d([0, 0, 1, 0.5, 0.5, 0.5, 0, 0, 0, 0.9, 0.9, 0.9], [1, 2, 2, 3]);
    const norm = l0NormPerExample(tf.sub(c, x) as tf.Tensor4D);
    expect(Array.from(norm.dataSync())).toEqual([3]);
    expect(Array.from(normPerExample(tf.sub(c, x) as tf.Tensor4D, 'l0').dataSync())).toEqual([3]);
    const zero = project(c, x, { norm: 'l0', eps: 0 });
    expect(Array.from(zero.dataSync())).toEqual(Array.from(x.dataSync()));
    // Gains: pixel 0 one channel by 1 (1), pixel 2 three channels by 1 (3), pixel 3 three by 0.7 (1.47).
    const two = project(c, x, { norm: 'l0', eps: 2.9 });
    expect(Array.from(two.dataSync())).toEqual(Array.from(Float32Array.from([0, 0, 0, 0.5, 0.5, 0.5, 0, 0, 0, 0.9, 0.9, 0.9])));
    tf.dispose([x, c, norm, zero, two]);
  });
});

describe('randomStart', () => {
  it('lies in the ball and the box, is seeded, and covers the L-inf ball', () => {
    const x = tf.fill([2, 8, 8, 3], 0.5) as tf.Tensor4D;
    for (const norm of ['linf', 'l2', 'l1'] as const) {
      const eps = norm === 'linf' ? 0.1 : norm === 'l2' ? 1 : 4;
      const a = randomStart(x, { norm, eps }, 17);
      const b = randomStart(x, { norm, eps }, 17);
      const c = randomStart(x, { norm, eps }, 18);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
      const d = perExampleDistances(a.dataSync(), x.dataSync(), 2);
      for (const v of d[norm]) {
        expect(v).toBeLessThanOrEqual(eps + 1e-6);
        expect(v).toBeGreaterThan(eps * 0.8); // uniform in a high-dimensional ball: near the boundary
      }
      tf.dispose([a, b, c]);
    }
    x.dispose();
  });

  it('L0: floor(eps) random pixels set to random colours, seeded', () => {
    const x = tf.fill([3, 6, 6, 3], 0.5) as tf.Tensor4D;
    for (const k of [0, 1, 5, 36, 50]) {
      const a = randomStart(x, { norm: 'l0', eps: k }, 3);
      const b = randomStart(x, { norm: 'l0', eps: k }, 3);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      // Uniform colours differ from 0.5 in every channel almost surely: exactly min(k, 36) pixels change.
      expect(perExampleDistances(a.dataSync(), x.dataSync(), 3, 3).l0).toEqual([Math.min(k, 36), Math.min(k, 36), Math.min(k, 36)]);
      tf.dispose([a, b]);
    }
    const [a, c] = [randomStart(x, { norm: 'l0', eps: 5 }, 3), randomStart(x, { norm: 'l0', eps: 5 }, 4)];
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    tf.dispose([a, c, x]);
  });

  it('seed 0 is deterministic for every norm (tfjs randomNormal alone would treat 0 as unseeded)', () => {
    const x = tf.fill([1, 4, 4, 3], 0.5) as tf.Tensor4D;
    for (const norm of ['linf', 'l2', 'l1', 'l0'] as const) {
      const [a, b] = [randomStart(x, { norm, eps: 0.5 }, 0), randomStart(x, { norm, eps: 0.5 }, 0)];
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b]);
    }
    x.dispose();
  });

  it('sub-seeds differ across restarts and base seeds', () => {
    const seen = new Set<number>();
    for (let s = 0; s < 20; s++) for (let k = 0; k < 5; k++) seen.add(subSeed(s, k));
    expect(seen.size).toBe(100);
  });
});

// The single budget-enforcing projection and the random start.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { project, randomStart, subSeed } from '../../attacks/project.ts';
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

describe('randomStart', () => {
  it('lies in the ball and the box, is seeded, and covers the L-inf ball', () => {
    const x = tf.fill([2, 8, 8, 3], 0.5) as tf.Tensor4D;
    for (const norm of ['linf', 'l2'] as const) {
      const eps = norm === 'linf' ? 0.1 : 1;
      const a = randomStart(x, { norm, eps }, 17);
      const b = randomStart(x, { norm, eps }, 17);
      const c = randomStart(x, { norm, eps }, 18);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
      const d = perExampleDistances(a.dataSync(), x.dataSync(), 2);
      for (const v of norm === 'linf' ? d.linf : d.l2) {
        expect(v).toBeLessThanOrEqual(eps + 1e-6);
        expect(v).toBeGreaterThan(eps * 0.8); // uniform in a high-dimensional ball: near the boundary
      }
      tf.dispose([a, b, c]);
    }
    x.dispose();
  });

  it('seed 0 is deterministic for both norms (tfjs randomNormal alone would treat 0 as unseeded)', () => {
    const x = tf.fill([1, 4, 4, 3], 0.5) as tf.Tensor4D;
    for (const norm of ['linf', 'l2'] as const) {
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

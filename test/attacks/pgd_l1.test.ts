// PGD-L1 (SLIDE) and the sparse L1 direction: the direction's definition, the budget, the linear optimum as a bound, leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { l1Direction } from '../../attacks/gradient.ts';
import { pgdL1 } from '../../attacks/pgd_l1.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearL1Task, perExampleDistances, randomImagesData, rng } from './helpers.ts';

describe('l1Direction', () => {
  it('is sign(grad) on the top ceil(fraction·n) pixels by |grad| (ties included), unit L1 norm; skipBlocked leaves out pixels at the box edge', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 3 }), fc.double({ min: 0.01, max: 1, noNaN: true }), fc.boolean(), (seed, batch, fraction, skip) => {
        const n = 2 * 3 * 2;
        const r = rng(seed);
        // Gradients on a coarse grid, so ties occur.
        const gs = Float32Array.from({ length: batch * n }, () => Math.round((2 * r() - 1) * 4) / 4);
        const xs = randomImagesData(seed + 1, batch * n);
        const g = tf.tensor4d(gs, [batch, 2, 3, 2]);
        const x = tf.tensor4d(xs, [batch, 2, 3, 2]);
        const d = l1Direction(g, x, fraction, skip);
        const got = d.dataSync();
        for (let b = 0; b < batch; b++) {
          const idx = Array.from({ length: n }, (_, j) => b * n + j);
          const blocked = (k: number) => skip && ((xs[k] >= 1 && gs[k] > 0) || (xs[k] <= 0 && gs[k] < 0));
          const mags = idx.map((k) => (blocked(k) ? 0 : Math.abs(gs[k])));
          const sorted = [...mags].sort((p, q) => q - p);
          const threshold = sorted[Math.min(Math.max(Math.ceil(fraction * n) - 1, 0), n - 1)];
          const chosen = idx.filter((k, j) => mags[j] > 0 && mags[j] >= threshold);
          let l1 = 0;
          idx.forEach((k, j) => {
            l1 += Math.abs(got[k]);
            if (chosen.includes(k)) expect(got[k]).toBeCloseTo(Math.sign(gs[k]) / chosen.length, 6);
            else expect(Math.abs(got[k])).toBe(0);
            void j;
          });
          expect(l1).toBeCloseTo(chosen.length > 0 ? 1 : 0, 5);
        }
        tf.dispose([g, x, d]);
      }),
      { numRuns: 60, seed: 4 },
    );
  });

  it('works on one-pixel images (the threshold pick needs no one-hot of depth 1)', () => {
    const g = tf.tensor4d([0.5, -2, 0], [3, 1, 1, 1]);
    const x = tf.tensor4d([0.5, 0.5, 0.5], [3, 1, 1, 1]);
    const d = l1Direction(g, x, 0.3);
    expect(Array.from(d.dataSync()).map(Math.abs)).toEqual([1, 1, 0]);
    expect(Math.sign(d.dataSync()[1])).toBe(-1);
    tf.dispose([g, x, d]);
  });
});

describe('pgd-l1 (SLIDE)', () => {
  it('binary linear model: within the L1 ball and box, never past the exact optimum, fools most images the optimum can', () => {
    const eps = 1.5;
    const t = linearL1Task(3, 60, 2, eps);
    const adv = pgdL1(t.model, t.x, t.y, { eps, steps: 50, quantile: 0.9 });
    const got = adv.dataSync();
    for (const v of perExampleDistances(got, t.xs, 60).l1) expect(v).toBeLessThanOrEqual(eps);
    for (const v of got) expect(v >= 0 && v <= 1).toBe(true);
    const z = tf.tidy(() => t.model(adv).arraySync() as number[][]);
    let reachable = 0;
    let fooled = 0;
    t.labels.forEach((y, i) => {
      const least = t.leastMargins[i][1 - y];
      const margin = z[i][y] - z[i][1 - y];
      expect(margin).toBeGreaterThanOrEqual(least - 1e-4);
      if (least < -0.1) {
        reachable++;
        if (margin < 0) fooled++;
      }
    });
    expect(reachable).toBeGreaterThan(5);
    expect(fooled / reachable).toBeGreaterThanOrEqual(0.9);
    tf.dispose([t.x, t.y, adv]);
  });

  it('quantile is checked, is pgd-l1 only, and the attack leaks nothing per call', async () => {
    const t = linearL1Task(4, 4, 3, 1);
    expect(() => pgdL1(t.model, t.x, t.y, { eps: 1, quantile: 1 })).toThrow(/pgd-l1: quantile must be a number in \[0, 1\)/);
    const { pgd } = await import('../../attacks/pgd.ts');
    expect(() => pgd(t.model, t.x, t.y, { eps: 0.1, quantile: 0.9 })).toThrow(/pgd: unknown option "quantile"/);
    await assertNoTensorLeak(() => pgdL1(t.model, t.x, t.y, { eps: 1, steps: 4, restarts: 2 }), { label: 'pgd-l1' });
    tf.dispose([t.x, t.y]);
  });
});

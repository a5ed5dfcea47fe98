// L1-APGD: the exact L1 optimum of linear models (fractional knapsack), the budget, the eps schedule, seeds and leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { apgdL1, scheduleSteps } from '../../attacks/apgd_l1.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearL1Task, perExampleDistances } from './helpers.ts';

describe('apgd-l1 on linear models', () => {
  it('binary: fools exactly the images whose exact least margin is negative, and gets within 5% of the optimum on the rest', () => {
    const eps = 1.5;
    const t = linearL1Task(3, 60, 2, eps);
    const adv = apgdL1(t.model, t.x, t.y, { eps, steps: 100 });
    const got = adv.dataSync();
    const { l1 } = perExampleDistances(got, t.xs, 60);
    for (const v of l1) expect(v).toBeLessThanOrEqual(eps);
    for (const v of got) expect(v >= 0 && v <= 1).toBe(true);
    const z = tf.tidy(() => t.model(adv).arraySync() as number[][]);
    let fooled = 0;
    let robust = 0;
    t.labels.forEach((y, i) => {
      const o = 1 - y;
      const least = t.leastMargins[i][o];
      const margin = z[i][y] - z[i][o];
      // No point in the budget beats the exact optimum.
      expect(margin).toBeGreaterThanOrEqual(least - 1e-4);
      if (least < -0.02) {
        expect(margin).toBeLessThan(0);
        fooled++;
      } else if (least > 0) {
        expect(margin).toBeGreaterThan(0);
        const drop = t.logits[i][y] - t.logits[i][o] - least;
        expect(t.logits[i][y] - t.logits[i][o] - margin).toBeGreaterThanOrEqual(0.95 * drop);
        robust++;
      }
    });
    // Both kinds occur, so the test tells the attack apart from "fool everything" and "fool nothing".
    expect(fooled).toBeGreaterThan(5);
    expect(robust).toBeGreaterThan(5);
    tf.dispose([t.x, t.y, adv]);
  });
});

describe('apgd-l1 options', () => {
  it('the eps schedule splits the steps 30/30/40 and its output stays within eps (not 3·eps)', () => {
    expect(scheduleSteps(100)).toEqual([30, 30, 40]);
    expect(scheduleSteps(3)).toEqual([1, 1, 1]);
    expect(scheduleSteps(10)).toEqual([3, 3, 4]);
    const eps = 1;
    const t = linearL1Task(5, 20, 3, eps);
    const adv = apgdL1(t.model, t.x, t.y, { eps, steps: 30, epsSchedule: true, restarts: 2 });
    for (const v of perExampleDistances(adv.dataSync(), t.xs, 20).l1) expect(v).toBeLessThanOrEqual(eps);
    tf.dispose([t.x, t.y, adv]);
  });

  it('same seed, same images; another seed starts elsewhere; errors name the option', () => {
    const t = linearL1Task(6, 6, 3, 1);
    const run = (seed: number) => apgdL1(t.model, t.x, t.y, { eps: 1, steps: 5, seed });
    const [a, b, c] = [run(1), run(1), run(2)];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    expect(() => apgdL1(t.model, t.x, t.y, { eps: 1, steps: 2, epsSchedule: true })).toThrow(/apgd-l1: epsSchedule .* steps >= 3/);
    expect(() => apgdL1(t.model, t.x, t.y, { eps: -1 })).toThrow(/apgd-l1: eps/);
    expect(() => apgdL1(t.model, t.x, t.y, { eps: 1, norm: 'l2' } as never)).toThrow(/apgd-l1: unknown option "norm"/);
    tf.dispose([t.x, t.y, a, b, c]);
  });

  it('leaks no tensors per call, with and without the schedule and restarts', async () => {
    const t = linearL1Task(7, 4, 3, 1);
    await assertNoTensorLeak(() => apgdL1(t.model, t.x, t.y, { eps: 1, steps: 6 }), { label: 'apgd-l1' });
    await assertNoTensorLeak(() => apgdL1(t.model, t.x, t.y, { eps: 1, steps: 6, epsSchedule: true, restarts: 2 }), { label: 'apgd-l1 schedule' });
    tf.dispose([t.x, t.y]);
  });
});

// EAD: the shrinkage operator's closed form, exact distances on affine models (β = 0 is C&W's L2
// optimum; every L1 size is at least the dual-norm bound), sparsity growing with β, the decision rules,
// the budgeted form, targets, confidence, the binary search, option errors and leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ead, eadMinimal, shrinkToBox, type EadOptions } from '../../attacks/ead.ts';
import { accuracyFromMinimalNorms } from '../../attacks/epsilons.ts';
import { getAttack } from '../../attacks/index.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { affineSetting, perExampleDistances, planeDistances } from './helpers.ts';

/** Logits of an affine model at image i (float64). */
function logitsAt(xs: ArrayLike<number>, W: number[][], b: number[], i: number): number[] {
  return b.map((bc, c) => W.reduce((s, row, j) => s + xs[i * 16 + j] * row[c], bc));
}

/**
 * Least L1 change that lets class `to` reach class `from` under an affine model, ignoring the box:
 * (z_from - z_to) / ||w_from - w_to||_∞ (the L1 ball's dual norm; all of it on the pixel of largest weight).
 */
function l1Plane(xs: ArrayLike<number>, W: number[][], b: number[], i: number, from: number, to: number): number {
  const z = logitsAt(xs, W, b, i);
  return (z[from] - z[to]) / Math.max(...W.map((row) => Math.abs(row[from] - row[to])));
}

/** The shared affine setting (6 images in [0.4, 0.6] of 4x4x1, 3 classes) with each image's exact L1 and L2 distances. */
function setting(seed: number) {
  const s = affineSetting(seed);
  const exactL1 = s.labels.map((y, i) => Math.min(...[0, 1, 2].filter((k) => k !== y).map((k) => l1Plane(s.xs, s.W, s.b, i, y, k))));
  const exactL2 = planeDistances(s.xs, s.W, s.b, s.labels, 'l2').map((row) => Math.min(...row));
  return { ...s, exactL1, exactL2 };
}

const run = (s: ReturnType<typeof setting>, o: Partial<EadOptions>) => {
  const r = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 100, searchSteps: 5, initialConst: 1, ...o });
  const dist = perExampleDistances(r.adversarial.dataSync(), s.xs, 6);
  const pred = Array.from(tf.tidy(() => tf.argMax(s.model(r.adversarial), 1).dataSync()));
  r.adversarial.dispose();
  return { norms: Array.from(r.norms), ...dist, pred };
};
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

describe('shrinkToBox, EAD\'s projected shrinkage S_β', () => {
  it('is x0 within β of it, else moves back exactly β towards x0 and stays in the box (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: -0.5, max: 1.5, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1, maxLength: 24 }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        (pairs, beta) => {
          const z = Float32Array.from(pairs.map((p) => p[0]));
          const x0 = Float32Array.from(pairs.map((p) => p[1]));
          const out = tf.tidy(() => shrinkToBox(tf.tensor4d(z, [1, 1, z.length, 1]), tf.tensor4d(x0, [1, 1, z.length, 1]), beta).dataSync());
          pairs.forEach((_, i) => {
            const [zi, xi, ri] = [z[i], x0[i], out[i]];
            expect(ri).toBeGreaterThanOrEqual(0);
            expect(ri).toBeLessThanOrEqual(1);
            // float32 arithmetic: z - β rounds once.
            if (zi - xi > beta) expect(ri).toBeCloseTo(Math.min(zi - beta, 1), 6);
            else if (zi - xi < -beta) expect(ri).toBeCloseTo(Math.max(zi + beta, 0), 6);
            else expect(ri).toBe(xi);
            // Never past x0: the sign of the change is z's (or none).
            expect((ri - xi) * (zi - xi)).toBeGreaterThanOrEqual(0);
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('ead on affine models (exact distances)', () => {
  it('β = 0 is C&W in the box: the least L2 example to within 1%, never below it, and every L1 size at least the dual-norm bound', () => {
    for (const seed of [3, 6]) {
      const s = setting(seed);
      // Pixels in [0.4, 0.6] and L2 distances below 0.3: the box never binds the L2 optimum.
      expect(Math.max(...s.exactL2)).toBeLessThan(0.3);
      const r = run(s, { beta: 0 });
      r.l2.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(s.exactL2[i] * (1 - 1e-4));
        expect(v).toBeLessThanOrEqual(s.exactL2[i] * 1.01);
        expect(r.norms[i]).toBeCloseTo(r.l1[i], 5);
        expect(r.norms[i]).toBeGreaterThanOrEqual(s.exactL1[i] * (1 - 1e-4));
        expect(r.pred[i]).not.toBe(s.labels[i]);
      });
      tf.dispose([s.x, s.y]);
    }
  });

  it('a larger β gives sparser examples of smaller L1 size, never below the exact L1 distance', () => {
    for (const seed of [3, 6]) {
      const s = setting(seed);
      const runs = [run(s, { beta: 0 }), run(s, { beta: 0.01 }), run(s, { beta: 0.05, decisionRule: 'l1' })];
      for (const r of runs) {
        r.pred.forEach((p, i) => expect(p).not.toBe(s.labels[i]));
        r.norms.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(s.exactL1[i] * (1 - 1e-4)));
      }
      // β = 0 changes every pixel (the L2 optimum is dense); the L1 term zeroes more and more of them.
      expect(runs[0].l0.every((v) => v === 16)).toBe(true);
      expect(sum(runs[1].l0)).toBeLessThan(sum(runs[0].l0));
      expect(sum(runs[2].l0)).toBeLessThan(sum(runs[1].l0));
      expect(sum(runs[1].norms)).toBeLessThan(sum(runs[0].norms));
      expect(sum(runs[2].norms)).toBeLessThan(sum(runs[1].norms));
      tf.dispose([s.x, s.y]);
    }
  });

  it('with a strong L1 term it reaches the sparse optimum: the exact L1 distance to within 1%, one or two pixels changed', () => {
    const s = setting(3);
    const r = run(s, { beta: 0.05, decisionRule: 'l1' });
    r.norms.forEach((v, i) => expect(v).toBeLessThanOrEqual(s.exactL1[i] * 1.01));
    r.l0.forEach((v) => expect(v).toBeLessThanOrEqual(2));
    tf.dispose([s.x, s.y]);
  });

  it('decision rules see the same iterates: the L1 rule\'s sizes are never above the elastic-net rule\'s', () => {
    const s = setting(6);
    const [en, l1] = [run(s, { beta: 0.01 }), run(s, { beta: 0.01, decisionRule: 'l1' })];
    en.norms.forEach((v, i) => expect(l1.norms[i]).toBeLessThanOrEqual(v));
    expect(sum(l1.norms)).toBeLessThan(sum(en.norms));
    // And the elastic-net rule's examples have the smaller elastic-net distance.
    const enDist = (r: typeof en, i: number) => r.l2[i] ** 2 + 0.01 * r.l1[i];
    en.norms.forEach((_, i) => expect(enDist(en, i)).toBeLessThanOrEqual(enDist(l1, i) * (1 + 1e-5)));
    tf.dispose([s.x, s.y]);
  });
});

describe('ead: budget, confidence, binary search, targets', () => {
  it('budgeted: within the L1 ball and the box; fooled wherever the least size found is within eps, else clean bit for bit', () => {
    const s = setting(3);
    const opts = { steps: 100, searchSteps: 5, initialConst: 1, beta: 0.01 };
    const found = eadMinimal(s.model, s.x, s.y, { eps: 0, ...opts });
    found.adversarial.dispose();
    const sorted = Array.from(found.norms).sort((a, b) => a - b);
    const eps = (sorted[2] + sorted[3]) / 2;
    const adv = ead(s.model, s.x, s.y, { eps, ...opts });
    const a = adv.dataSync();
    const pred = Array.from(tf.tidy(() => tf.argMax(s.model(adv), 1).dataSync()));
    const dist = perExampleDistances(a, s.xs, 6).l1;
    found.norms.forEach((v, i) => {
      expect(dist[i]).toBeLessThanOrEqual(eps * (1 + 1e-5));
      if (v <= eps) expect(pred[i]).not.toBe(s.labels[i]);
      if (pred[i] === s.labels[i]) expect(Array.from(a.slice(i * 16, (i + 1) * 16))).toEqual(Array.from(s.xs.slice(i * 16, (i + 1) * 16)));
    });
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(1);
    // The registry's minimal-norm curve bounds the budgeted accuracy from above at that eps.
    const curve = accuracyFromMinimalNorms(found.norms, [{ value: eps, label: String(eps) }], 'l1');
    expect(pred.filter((p, i) => p === s.labels[i]).length / 6).toBeLessThanOrEqual(curve[0].accuracy);
    expect(curve[0].accuracy).toBe(0.5);
    // eps 0: the images themselves.
    const none = ead(s.model, s.x, s.y, { eps: 0, ...opts });
    expect(Array.from(none.dataSync())).toEqual(Array.from(s.xs));
    tf.dispose([s.x, s.y, adv, none]);
  });

  it('confidence κ: the examples clear the margin κ', () => {
    const s = setting(6);
    const kappa = 0.5;
    const r = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 100, searchSteps: 5, initialConst: 1, confidence: kappa });
    const z = s.model(r.adversarial).arraySync() as number[][];
    z.forEach((zi, i) => {
      expect(Math.max(...zi.filter((_, k) => k !== s.labels[i])) - zi[s.labels[i]]).toBeGreaterThanOrEqual(kappa - 1e-4);
      // Past the κ-plane of the nearest class: at least its dual-norm distance.
      const bound = Math.min(...[0, 1, 2].filter((k) => k !== s.labels[i]).map((k) => l1Plane(s.xs, s.W, s.b, i, s.labels[i], k) + kappa / Math.max(...s.W.map((row) => Math.abs(row[s.labels[i]] - row[k])))));
      expect(r.norms[i]).toBeGreaterThanOrEqual(bound * (1 - 1e-4));
    });
    tf.dispose([s.x, s.y, r.adversarial]);
  });

  it('the binary search raises a constant too small to succeed (x10 per failure) and only then finds examples', () => {
    const s = setting(3);
    const once = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 50, searchSteps: 1, initialConst: 1e-5 });
    expect(once.norms.every((v) => v === Infinity)).toBe(true);
    expect(Array.from(once.adversarial.dataSync())).toEqual(Array.from(s.xs));
    const searched = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 50, searchSteps: 7, initialConst: 1e-5 });
    expect(searched.norms.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    tf.dispose([s.x, s.y, once.adversarial, searched.adversarial]);
  });

  it('targeted: lands in the target class, no closer than the target needs; images already there cost 0', () => {
    const s = setting(7);
    const targets = s.labels.map((v) => (v + 1) % 3);
    const t = tf.tensor1d(targets, 'int32');
    const r = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 100, searchSteps: 5, initialConst: 1, targeted: true, targets: t });
    expect(Array.from(tf.tidy(() => tf.argMax(s.model(r.adversarial), 1).dataSync()))).toEqual(targets);
    targets.forEach((tc, i) => {
      // The target must beat every other class: at least the largest of its pairwise L1 distances.
      const lower = Math.max(...[0, 1, 2].filter((k) => k !== tc).map((k) => l1Plane(s.xs, s.W, s.b, i, k, tc)));
      expect(r.norms[i]).toBeGreaterThanOrEqual(lower * (1 - 1e-4));
    });
    const same = eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 5, targeted: true, targets: s.y });
    expect(Array.from(same.norms)).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([s.x, s.y, t, r.adversarial, same.adversarial]);
  });

  it('abort early stops a converged run (fewer model calls); the run is deterministic', () => {
    const s = setting(6);
    let calls = 0;
    const model = (v: tf.Tensor4D) => (calls++, s.model(v));
    const go = (abortEarly: boolean) => {
      calls = 0;
      const r = eadMinimal(model, s.x, s.y, { eps: 0, steps: 200, searchSteps: 2, initialConst: 1, abortEarly });
      const pixels = Array.from(r.adversarial.dataSync());
      r.adversarial.dispose();
      return { norms: Array.from(r.norms), calls, pixels };
    };
    const [on, off, again] = [go(true), go(false), go(true)];
    expect(on.calls).toBeLessThan(off.calls);
    on.norms.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(s.exactL1[i] * (1 - 1e-4)));
    expect(again.pixels).toEqual(on.pixels);
    tf.dispose([s.x, s.y]);
  });

  it('is the registry\'s `ead` (L1, minimal-norm); names the bad option before any model call, and leaks nothing', async () => {
    const info = getAttack('ead');
    expect(info.norm).toBe('l1');
    expect(info.minimal).toBeDefined();
    let calls = 0;
    const s = setting(3);
    const model = (v: tf.Tensor4D) => (calls++, s.model(v));
    expect(() => ead(model, s.x, s.y, { eps: 0.1, steps: 0 })).toThrow('ead: steps: must be an integer >= 1, got 0');
    expect(() => ead(model, s.x, s.y, { eps: 0.1, beta: -1 })).toThrow('ead: beta: must be a finite number >= 0, got -1');
    expect(() => ead(model, s.x, s.y, { eps: 0.1, decisionRule: 'EN' as never })).toThrow('ead: decisionRule must be "en" or "l1", got EN');
    expect(() => ead(model, s.x, s.y, { eps: 0.1, seed: 1 } as never)).toThrow(/ead: unknown option "seed"/);
    expect(() => eadMinimal(model, s.x, s.y, { eps: 0, lr: 0 })).toThrow('ead: lr: must be a finite number > 0, got 0');
    expect(calls).toBe(0);
    await assertNoTensorLeak(() => ead(s.model, s.x, s.y, { eps: 0.5, steps: 3, searchSteps: 2 }), { label: 'ead' });
    await assertNoTensorLeak(() => eadMinimal(s.model, s.x, s.y, { eps: 0, steps: 3, searchSteps: 2, targeted: true, targets: s.y }).adversarial, { label: 'eadMinimal' });
    await assertNoTensorLeak(() => info.minimal!(s.model, s.x, s.y, { eps: 0.5, steps: 3, searchSteps: 2 }).adversarial, { label: 'ead minimal (registry)' });
    tf.dispose([s.x, s.y]);
  });
});

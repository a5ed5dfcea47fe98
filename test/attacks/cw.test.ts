// Carlini-Wagner L2: least-norm examples on affine models against the exact distance, the budgeted form,
// confidence, the binary search, option errors and leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { cw, cwMinimal } from '../../attacks/cw.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { affineSetting, perExampleDistances, planeDistances } from './helpers.ts';

/** Exact L2 distance from each image to misclassification under an affine model (no box): the nearest of the planes f_y = f_k. */
function exactL2(xs: ArrayLike<number>, W: number[][], b: number[], labels: number[]): number[] {
  return planeDistances(xs, W, b, labels, 'l2').map((row) => Math.min(...row));
}

/** The shared affine setting with each image's exact distance. */
function setting(seed: number) {
  const s = affineSetting(seed);
  return { ...s, exact: exactL2(s.xs, s.W, s.b, s.labels) };
}

describe('cw-l2 on affine models (exact distances)', () => {
  it('finds every least-norm example, never below the exact distance and within 1% above it', () => {
    for (const seed of [3, 6]) {
      const { model, x, y, exact } = setting(seed);
      // Pixels in [0.4, 0.6] and distances below 0.3: the box never binds, so the exact distance is the optimum.
      expect(Math.max(...exact)).toBeLessThan(0.3);
      const r = cwMinimal(model, x, y, { eps: 0, steps: 100, searchSteps: 6, initialConst: 1 });
      r.norms.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
        expect(v).toBeLessThanOrEqual(exact[i] * 1.01);
      });
      const back = perExampleDistances(r.adversarial.dataSync(), x.dataSync(), 6).l2;
      back.forEach((v, i) => expect(v).toBeCloseTo(r.norms[i], 5));
      const pred = Array.from(tf.argMax(model(r.adversarial), 1).dataSync());
      pred.forEach((p, i) => expect(p).not.toBe(y.dataSync()[i]));
      tf.dispose([x, y, r.adversarial]);
    }
  });
});

describe('cw-l2: budget, confidence, binary search, targets', () => {
  it('budgeted: fools every image whose exact distance is below eps, returns the others clean bit for bit', () => {
    const { model, xs, x, y, labels, exact } = setting(3);
    const eps = [...exact].sort((a, b) => a - b)[1] * 1.005;
    const adv = cw(model, x, y, { eps, steps: 100, searchSteps: 6, initialConst: 1 });
    const a = adv.dataSync();
    const pred = Array.from(tf.argMax(model(adv), 1).dataSync());
    const dist = perExampleDistances(a, xs, 6).l2;
    exact.forEach((e, i) => {
      expect(dist[i]).toBeLessThanOrEqual(eps + 1e-6);
      if (e <= eps / 1.01) expect(pred[i]).not.toBe(labels[i]);
      if (e > eps) expect(Array.from(a.slice(i * 16, (i + 1) * 16))).toEqual(Array.from(xs.slice(i * 16, (i + 1) * 16)));
    });
    expect(pred.filter((p, i) => p !== labels[i]).length).toBe(2);
    tf.dispose([x, y, adv]);
  });

  it('confidence κ: the examples clear the margin κ, at the exact distance of the κ-boundary', () => {
    const { W, b, model, xs, x, y, labels } = setting(6);
    const kappa = 0.5;
    // Affine: distance to {max_k z_k - z_y >= κ} is min over k of (z_y - z_k + κ) / ||w_y - w_k||.
    const exact = labels.map((_, i) => {
      const z = b.map((bc, c) => W.reduce((s, row, j) => s + xs[i * 16 + j] * row[c], bc));
      return Math.min(...[0, 1, 2].filter((k) => k !== labels[i]).map((k) => (z[labels[i]] - z[k] + kappa) / Math.sqrt(W.reduce((s, row) => s + (row[labels[i]] - row[k]) ** 2, 0))));
    });
    const r = cwMinimal(model, x, y, { eps: 0, steps: 100, searchSteps: 6, initialConst: 1, confidence: kappa });
    const z = model(r.adversarial).arraySync() as number[][];
    z.forEach((zi, i) => {
      const margin = Math.max(...zi.filter((_, k) => k !== labels[i])) - zi[labels[i]];
      expect(margin).toBeGreaterThanOrEqual(kappa - 1e-4);
      expect(r.norms[i]).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
      expect(r.norms[i]).toBeLessThanOrEqual(exact[i] * 1.01);
    });
    tf.dispose([x, y, r.adversarial]);
  });

  it('the binary search raises a constant too small to succeed (x10 per failure) and only then finds examples', () => {
    const { model, x, y } = setting(3);
    const once = cwMinimal(model, x, y, { eps: 0, steps: 50, searchSteps: 1, initialConst: 1e-4 });
    expect(Array.from(once.norms).every((v) => v === Infinity)).toBe(true);
    expect(Array.from(once.adversarial.dataSync())).toEqual(Array.from(x.dataSync()));
    const searched = cwMinimal(model, x, y, { eps: 0, steps: 50, searchSteps: 6, initialConst: 1e-4 });
    expect(Array.from(searched.norms).every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    tf.dispose([x, y, once.adversarial, searched.adversarial]);
  });

  it('targeted: lands in the target class, no closer than the target needs; images already there cost 0', () => {
    const { W, b, model, xs, x, y, labels } = setting(7);
    const targets = labels.map((v) => (v + 1) % 3);
    const t = tf.tensor1d(targets, 'int32');
    const r = cwMinimal(model, x, y, { eps: 0, steps: 100, searchSteps: 6, initialConst: 1, targeted: true, targets: t });
    const pred = Array.from(tf.argMax(model(r.adversarial), 1).dataSync());
    expect(pred).toEqual(targets);
    targets.forEach((tc, i) => {
      const z = b.map((bc, c) => W.reduce((s, row, j) => s + xs[i * 16 + j] * row[c], bc));
      // The target must beat every other class: at least the largest of the pairwise distances.
      const lower = Math.max(...[0, 1, 2].filter((k) => k !== tc).map((k) => (z[k] - z[tc]) / Math.sqrt(W.reduce((s, row) => s + (row[tc] - row[k]) ** 2, 0))));
      expect(r.norms[i]).toBeGreaterThanOrEqual(lower * (1 - 1e-4));
    });
    // Targets equal to the prediction: already there, norm 0, the image itself.
    const same = cwMinimal(model, x, y, { eps: 0, steps: 5, targeted: true, targets: y });
    expect(Array.from(same.norms)).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([x, y, t, r.adversarial, same.adversarial]);
  });

  it('abort early: stops a converged run (fewer model calls), with the same least norms to 1%', () => {
    const { model: inner, x, y, W, b, xs, labels } = setting(6);
    const exact = exactL2(xs, W, b, labels);
    let calls = 0;
    const model = (v: tf.Tensor4D) => (calls++, inner(v));
    const run = (abortEarly: boolean) => {
      calls = 0;
      const r = cwMinimal(model, x, y, { eps: 0, steps: 300, searchSteps: 4, initialConst: 1, abortEarly });
      r.adversarial.dispose();
      return { norms: r.norms, calls };
    };
    const [on, off] = [run(true), run(false)];
    expect(on.calls).toBeLessThan(off.calls);
    on.norms.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
      expect(v).toBeLessThanOrEqual(exact[i] * 1.01);
    });
    tf.dispose([x, y]);
  });

  it('names the bad option before any model call, and leaks nothing', async () => {
    let calls = 0;
    const { model: inner, x, y } = setting(3);
    const model = (v: tf.Tensor4D) => (calls++, inner(v));
    expect(() => cw(model, x, y, { eps: 0.1, steps: 0 })).toThrow('cw-l2: steps: must be an integer >= 1, got 0');
    expect(() => cw(model, x, y, { eps: 0.1, searchSteps: 1.5 })).toThrow('cw-l2: searchSteps: must be an integer >= 1, got 1.5');
    expect(() => cw(model, x, y, { eps: 0.1, initialConst: 0 })).toThrow('cw-l2: initialConst: must be a finite number > 0, got 0');
    expect(() => cw(model, x, y, { eps: 0.1, lr: -1 })).toThrow('cw-l2: lr: must be a finite number > 0, got -1');
    expect(() => cw(model, x, y, { eps: 0.1, confidence: -1 })).toThrow('cw-l2: confidence: must be a finite number >= 0, got -1');
    expect(() => cw(model, x, y, { eps: 0.1, seed: 1 } as never)).toThrow(/cw-l2: unknown option "seed"/);
    expect(calls).toBe(0);
    await assertNoTensorLeak(() => cw(inner, x, y, { eps: 0.2, steps: 3, searchSteps: 2 }), { label: 'cw-l2' });
    await assertNoTensorLeak(() => cwMinimal(inner, x, y, { eps: 0, steps: 3, searchSteps: 2 }).adversarial, { label: 'cwMinimal' });
    tf.dispose([x, y]);
  });
});

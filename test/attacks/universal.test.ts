// Universal perturbations: the projection of a shared perturbation, the sgd fit against a float64 host
// implementation on a linear model (clamp, decay, targeted, L2), DeepFool's iterative algorithm in
// closed form on an affine classifier, budgets, success rates, determinism, leaks and named errors.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { projectPerturbation } from '../../attacks/project.ts';
import { applyUniversal, fitUniversal, universal, universalSuccess } from '../../attacks/universal.ts';
import { createRng, permutation } from '../../src/data/rng.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, randomWeights, rng } from './helpers.ts';

const [S, D, K, N] = [4, 16, 3, 24];

/** Images in [0.25, 0.75] (so x + delta never meets the box for eps <= 0.2) and their labels. */
function task(seed: number, n = N, classes = K) {
  const r = rng(seed);
  const xs = Float32Array.from({ length: n * D }, () => 0.25 + 0.5 * r());
  const ys = Int32Array.from({ length: n }, () => Math.floor(r() * classes));
  return { xs, ys, x: tf.tensor4d(xs, [n, S, S, 1]), y: tf.tensor1d(ys, 'int32') };
}

interface HostOptions { eps: number; norm: 'linf' | 'l2'; epochs: number; batchSize: number; stepSize: number; stepDecay: number; beta: number; target: number | null; seed: number }

/** The sgd fit in float64 on logits = (x + delta)·W + b: mean clamped CE (or minus the target's CE), sign or unit-L2 steps, projection. */
function hostSgd(xs: Float32Array, ys: Int32Array, W: number[][], b: number[], o: HostOptions): Float64Array {
  const n = ys.length;
  const classes = b.length;
  const delta = new Float64Array(D);
  const order = createRng(o.seed);
  for (let e = 0; e < o.epochs; e++) {
    const alpha = o.stepSize * o.stepDecay ** e;
    const perm = permutation(n, order);
    for (let s = 0; s < n; s += o.batchSize) {
      const idx = Array.from(perm.subarray(s, Math.min(n, s + o.batchSize)));
      const g = new Float64Array(D);
      for (const i of idx) {
        const z = b.map((bk, k) => bk + Array.from({ length: D }, (_, p) => (xs[i * D + p] + delta[p]) * W[p][k]).reduce((a, v) => a + v, 0));
        const top = Math.max(...z);
        const ez = z.map((v) => Math.exp(v - top));
        const sum = ez.reduce((a, v) => a + v, 0);
        const p = ez.map((v) => v / sum);
        const cls = o.target ?? ys[i];
        const ce = -Math.log(p[cls]);
        // d CE / d input = W (p - onehot); the clamp stops images past beta, the target's CE is descended.
        const sign = o.target !== null ? -1 : ce < o.beta ? 1 : 0;
        for (let q = 0; q < D; q++) for (let k = 0; k < classes; k++) g[q] += (sign * W[q][k] * (p[k] - (k === cls ? 1 : 0))) / idx.length;
      }
      if (o.norm === 'linf') {
        for (let q = 0; q < D; q++) delta[q] = Math.min(o.eps, Math.max(-o.eps, delta[q] + alpha * Math.sign(g[q])));
      } else {
        const gn = Math.hypot(...g);
        for (let q = 0; q < D; q++) delta[q] += (alpha * g[q]) / gn;
        const dn = Math.hypot(...delta);
        if (dn > o.eps) for (let q = 0; q < D; q++) delta[q] *= o.eps / dn;
      }
    }
  }
  return delta;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('projectPerturbation', () => {
  it('clips to ±eps in L-inf and scales radially in L2, leaving a perturbation inside the ball bit for bit', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }).map((k) => k / 1000), { minLength: 8, maxLength: 8 }), fc.double({ min: 0.01, max: 2, noNaN: true }), (v, eps) => {
      const d = tf.tensor4d(v, [1, 2, 2, 2]);
      const li = projectPerturbation(d, { norm: 'linf', eps });
      const l2 = projectPerturbation(d, { norm: 'l2', eps });
      const [a, b] = [li.dataSync(), l2.dataSync()];
      expect(maxDiff(a, v.map((x) => Math.min(eps, Math.max(-eps, x))))).toBeLessThan(1e-7);
      const n = Math.hypot(...v);
      expect(Math.hypot(...b)).toBeLessThanOrEqual(eps + 1e-9);
      if (n <= eps * (1 - 1e-6) - 1e-6) expect(Array.from(b)).toEqual(Array.from(d.dataSync()));
      else expect(maxDiff(b, v.map((x) => (x * eps) / n))).toBeLessThan(1e-5 * Math.max(1, eps));
      tf.dispose([d, li, l2]);
    }), { numRuns: 60 });
  });

  it('refuses L1 and L0 by name', () => {
    const d = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    expect(() => projectPerturbation(d, { norm: 'l1', eps: 1 })).toThrow(/projectPerturbation: norm must be "linf" or "l2", got l1/);
    d.dispose();
  });
});

describe('fitUniversal (sgd)', () => {
  const W = randomWeights(3, D, K, 1.5);
  const b = [0.2, -0.1, 0];
  const model = linearModel(W, b);
  const { xs, ys, x, y } = task(5);
  const base = { eps: 0.1, norm: 'linf' as const, epochs: 3, batchSize: 5, stepSize: 0.03, stepDecay: 0.7, beta: 1.2, target: null, seed: 4 };

  it('follows the host implementation step for step (L-inf, clamped cross-entropy, decaying step, seeded order)', () => {
    const want = hostSgd(xs, ys, W, b, base);
    const { perturbation, history } = fitUniversal(model, x, y, { ...base, target: undefined });
    expect(maxDiff(perturbation.dataSync(), want)).toBeLessThan(1e-5);
    expect(history).toHaveLength(3);
    // The clamp matters here: without it the host lands elsewhere, so this test sees a dropped clamp.
    expect(maxDiff(hostSgd(xs, ys, W, b, { ...base, beta: 1e9 }), want)).toBeGreaterThan(0.01);
    perturbation.dispose();
  });

  it('follows it in L2 and targeted too', () => {
    const l2 = { ...base, norm: 'l2' as const, eps: 0.3, stepSize: 0.1 };
    const a = fitUniversal(model, x, y, { ...l2, target: undefined });
    expect(maxDiff(a.perturbation.dataSync(), hostSgd(xs, ys, W, b, l2))).toBeLessThan(1e-5);
    const tg = { ...base, target: 2 };
    const t = fitUniversal(model, x, y, tg);
    expect(maxDiff(t.perturbation.dataSync(), hostSgd(xs, ys, W, b, tg))).toBeLessThan(1e-5);
    tf.dispose([a.perturbation, t.perturbation]);
  });

  it('ends at eps·sign(w_other - w_label) on a two-class linear model when every image has one label', () => {
    const W2 = randomWeights(8, D, 2, 1);
    const { x: x2 } = task(9, 10, 2);
    const y0 = tf.zeros([10], 'int32') as tf.Tensor1D;
    const { perturbation } = fitUniversal(linearModel(W2, [0, 0]), x2, y0, { eps: 0.05, stepSize: 0.05, epochs: 1, beta: 1e6 });
    expect(Array.from(perturbation.dataSync())).toEqual(Array.from(Float32Array.from(W2, (w) => 0.05 * Math.sign(w[1] - w[0]))));
    const l2 = fitUniversal(linearModel(W2, [0, 0]), x2, y0, { eps: 0.2, norm: 'l2', stepSize: 0.5, epochs: 1, beta: 1e6 });
    const dir = W2.map((w) => w[1] - w[0]);
    const n = Math.hypot(...dir);
    expect(maxDiff(l2.perturbation.dataSync(), dir.map((v) => (0.2 * v) / n))).toBeLessThan(1e-6);
    tf.dispose([perturbation, l2.perturbation, x2, y0]);
  });

  it('stays in the ball, reports the success rate it reaches, and gives images inside the budget and the box', () => {
    const { perturbation, successRate, history } = fitUniversal(model, x, y, { eps: 0.08, epochs: 2, seed: 1 });
    expect(tf.max(tf.abs(perturbation)).dataSync()[0]).toBeLessThanOrEqual(0.08 + 1e-7);
    const success = universalSuccess(model, x, y, perturbation, { norm: 'linf', eps: 0.08 });
    expect(successRate).toBe(success.reduce((a, v) => a + v, 0) / N);
    expect(history[1]).toBe(successRate);
    const adv = universal(model, x, y, { eps: 0.08, epochs: 2, seed: 1 });
    const delta = tf.sub(adv, x);
    // Every image carries the same perturbation (no image meets the box here).
    expect(maxDiff(delta.slice([3], [1]).dataSync(), perturbation.dataSync())).toBeLessThan(1e-6);
    expect(tf.max(tf.abs(delta)).dataSync()[0]).toBeLessThanOrEqual(0.08 + 1e-7);
    const boxed = applyUniversal(tf.onesLike(x) as tf.Tensor4D, tf.fill([1, S, S, 1], 0.5) as tf.Tensor4D, { norm: 'linf', eps: 0.08 });
    expect(tf.max(boxed).dataSync()[0]).toBe(1);
    expect(tf.min(boxed).dataSync()[0]).toBeCloseTo(1, 7);
    tf.dispose([perturbation, adv, delta, boxed]);
  });

  it('gives the same perturbation for the same seed and another for another seed', () => {
    const a = fitUniversal(model, x, y, { eps: 0.1, epochs: 1, batchSize: 4, seed: 2 });
    const b2 = fitUniversal(model, x, y, { eps: 0.1, epochs: 1, batchSize: 4, seed: 2 });
    const c = fitUniversal(model, x, y, { eps: 0.1, epochs: 1, batchSize: 4, seed: 3 });
    expect(Array.from(b2.perturbation.dataSync())).toEqual(Array.from(a.perturbation.dataSync()));
    expect(Array.from(c.perturbation.dataSync())).not.toEqual(Array.from(a.perturbation.dataSync()));
    tf.dispose([a.perturbation, b2.perturbation, c.perturbation]);
  });

  it('counts targeted success over images of other classes only', () => {
    const t = fitUniversal(model, x, y, { eps: 0.2, epochs: 2, target: 1 });
    const hit = universalSuccess(model, x, y, t.perturbation, { norm: 'linf', eps: 0.2 }, { target: 1 });
    const others = Array.from(ys).map((v, i) => [v, i]).filter(([v]) => v !== 1);
    expect(t.successRate).toBeCloseTo(others.filter(([, i]) => hit[i]).length / others.length, 12);
    t.perturbation.dispose();
  });
});

describe('fitUniversal (deepfool)', () => {
  it('takes the exact DeepFool step onto an affine boundary (times 1 + overshoot), projected onto the ball', () => {
    const W2 = randomWeights(12, D, 2, 1);
    const b2 = [0.5, 0];
    const m = linearModel(W2, b2);
    const { xs, x } = task(13, 1, 2);
    const y0 = tf.tensor1d([0], 'int32');
    const w = W2.map((r) => r[1] - r[0]);
    const gap = b2[1] - b2[0] + w.reduce((a, v, q) => a + v * xs[q], 0);
    if (gap >= 0) throw new Error('fixture: the image must start on class 0');
    const wn = Math.hypot(...w);
    const step = w.map((v) => ((1.02 * (-gap + 1e-4)) / wn) * (v / wn));
    const big = fitUniversal(m, x, y0, { eps: 10, norm: 'l2', method: 'deepfool' });
    expect(maxDiff(big.perturbation.dataSync(), step)).toBeLessThan(1e-5);
    expect(big.history).toEqual([1]);
    const small = fitUniversal(m, x, y0, { eps: 0.05, norm: 'l2', method: 'deepfool', epochs: 3 });
    expect(maxDiff(small.perturbation.dataSync(), w.map((v) => (0.05 * v) / wn))).toBeLessThan(1e-6);
    // Never fooled within the ball: every pass runs, each at success 0.
    expect(small.history).toEqual([0, 0, 0]);
    tf.dispose([big.perturbation, small.perturbation, x, y0]);
  });

  it('stops once the fit images are fooled at foolingRate, stays in the L-inf ball along sign(w)', () => {
    const W2 = randomWeights(14, D, 2, 1);
    const m = linearModel(W2, [0, 0]);
    const { x } = task(15, 12, 2);
    const y = tf.tensor1d(tf.tidy(() => Array.from(tf.argMax(m(x), 1).dataSync())), 'int32');
    const r = fitUniversal(m, x, y, { eps: 0.3, method: 'deepfool', foolingRate: 0.5, epochs: 5 });
    expect(r.history.length).toBeGreaterThanOrEqual(1);
    expect(r.history.slice(0, -1).every((v) => v < 0.5)).toBe(true);
    expect(r.successRate).toBe(r.history[r.history.length - 1]);
    const v = r.perturbation.dataSync();
    expect(Math.max(...Array.from(v, Math.abs))).toBeLessThanOrEqual(0.3 + 1e-7);
    tf.dispose([r.perturbation, x, y]);
  });
});

describe('universal attacks: leaks and bad input', () => {
  const model = linearModel(randomWeights(21, D, K), [0, 0, 0]);
  const { x, y } = task(22);

  it('leaves no tensor behind (sgd in L-inf and L2, targeted, deepfool, success, apply)', async () => {
    await assertNoTensorLeak(() => fitUniversal(model, x, y, { eps: 0.1, epochs: 2 }).perturbation, { label: 'sgd' });
    await assertNoTensorLeak(() => fitUniversal(model, x, y, { eps: 0.5, norm: 'l2', epochs: 1, target: 0 }).perturbation, { label: 'sgd l2 targeted' });
    const [x4, y4] = [x.slice(0, 4), y.slice(0, 4)];
    await assertNoTensorLeak(() => fitUniversal(model, x4, y4, { eps: 0.1, method: 'deepfool', epochs: 1 }).perturbation, { label: 'deepfool' });
    tf.dispose([x4, y4]);
    const d = tf.fill([1, S, S, 1], 0.05) as tf.Tensor4D;
    await assertNoTensorLeak(() => { universalSuccess(model, x, y, d, { norm: 'linf', eps: 0.1 }, { batchSize: 7 }); }, { label: 'success' });
    await assertNoTensorLeak(() => universal(model, x, y, { eps: 0.1, epochs: 1 }), { label: 'universal' });
    d.dispose();
  });

  it('refuses bad options by name, before the model is called', () => {
    const cases: [object, RegExp][] = [
      [{ eps: 0.1, norm: 'l1' }, /universal: norm must be "linf" or "l2", got l1/],
      [{ eps: 0.1, method: 'boundary' }, /universal: method must be one of sgd, deepfool, got boundary/],
      [{ eps: 0.1, epochs: 0 }, /universal: epochs/],
      [{ eps: 0.1, stepDecay: 1.5 }, /universal: stepDecay must be in \(0, 1\], got 1.5/],
      [{ eps: 0.1, foolingRate: 0 }, /universal: foolingRate must be in \(0, 1\], got 0/],
      [{ eps: 0.1, target: 1, method: 'deepfool' }, /universal: target needs method "sgd"/],
      [{ eps: 0.1, target: 1.5 }, /universal: target/],
      [{ eps: 0.1, restarts: 2 }, /restarts/],
      [{ eps: -1 }, /universal: eps/],
    ];
    let calls = 0;
    const counting = (t: tf.Tensor4D) => { calls++; return model(t); };
    for (const [o, msg] of cases) expect(() => fitUniversal(counting, x, y, o as never), JSON.stringify(o)).toThrow(msg);
    expect(calls).toBe(0);
    expect(() => fitUniversal(model, x, y, { eps: 0.1, target: 3 })).toThrow(/universal: target 3 is not a class of the model \(3 classes\)/);
    expect(() => fitUniversal(model, x, tf.tensor1d([0, 1], 'int32'), { eps: 0.1 })).toThrow(/universal: labels/);
  });
});

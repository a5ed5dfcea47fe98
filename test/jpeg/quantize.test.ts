import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import {
  bpdaIdentityQuantize,
  bpdaSoftQuantize,
  hardQuantize,
  quantize,
  resolveQuantizer,
  softQuantize,
  softQuantizeGrads,
  windowStart,
} from '../../src/jpeg/quantize.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

// Independent float64 soft quantiser: L levels around round(z/q), window start clamped to
// [-(2^(b-1)-1), 2^(b-1)-L], weights softmax(-alpha (iq - z)^2), output sum p i q.
function softRef(z: number, q: number, alpha: number, L = 5, b = 8) {
  const lo = -(2 ** (b - 1) - 1);
  const hi = 2 ** (b - 1) - L;
  const k0 = Math.min(hi, Math.max(lo, Math.round(z / q) - Math.floor(L / 2)));
  const idx = Array.from({ length: L }, (_, j) => k0 + j);
  const logits = idx.map((i) => -alpha * (i * q - z) ** 2);
  const m = Math.max(...logits);
  const w = logits.map((l) => Math.exp(l - m));
  const s = w.reduce((a, c) => a + c, 0);
  const p = w.map((v) => v / s);
  const mean = p.reduce((a, pi, j) => a + pi * idx[j] * q, 0);
  const variance = p.reduce((a, pi, j) => a + pi * (idx[j] * q - mean) ** 2, 0);
  return { value: mean, variance, k0 };
}

// Deterministic pseudo-random numbers (no test depends on Math.random).
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32);
}

// Values away from rounding ties (|frac(z/q)| not within 0.02 of 0.5), where round() conventions differ.
function sample(n: number, seed: number, zRange: number, qLo: number, qHi: number) {
  const r = lcg(seed);
  const z: number[] = [];
  const q: number[] = [];
  while (z.length < n) {
    const qq = qLo + (qHi - qLo) * r();
    const zz = (2 * r() - 1) * zRange;
    const f = Math.abs(zz / qq - Math.trunc(zz / qq));
    if (Math.abs(f - 0.5) < 0.02) continue;
    z.push(zz);
    q.push(qq);
  }
  return { z, q };
}

describe('soft deterministic quantiser', () => {
  it('matches the float64 reference formula (window, softmax, mean) to 1e-5 relative', () => {
    const { z, q } = sample(400, 1, 300, 0.3, 40);
    for (const alpha of [0.05, 1, 5]) {
      const out = softQuantize(tf.tensor1d(z), tf.tensor1d(q), { alpha }).dataSync();
      z.forEach((zz, k) => expect(Math.abs(out[k] - softRef(zz, q[k], alpha).value)).toBeLessThan(1e-5 * Math.max(1, Math.abs(zz))));
    }
  });

  it('tends to the hard quantiser round(z/q) q as the hardness alpha q^2 grows', () => {
    // |z/q| < 100 keeps the window away from the +-127 clamp, where soft saturates and hard does not.
    const { z, q } = sample(300, 2, 50, 0.5, 20);
    const hard = hardQuantize(tf.tensor1d(z), tf.tensor1d(q)).dataSync();
    let prev = Infinity;
    let worst = Infinity;
    for (const hbar of [1, 3, 30, 300, 3000]) {
      // Per-coefficient alpha = hbar / q^2 through hardness matching.
      const soft = softQuantize(tf.tensor1d(z), tf.tensor1d(q), { hardness: hbar }).dataSync();
      const errs = z.map((_, k) => Math.abs(soft[k] - hard[k]) / q[k]);
      const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
      expect(mean).toBeLessThan(prev);
      prev = mean;
      worst = Math.max(...errs);
    }
    prev = worst;
    // Away from bin edges (|frac - 0.5| >= 0.02) the neighbour weight is below exp(-0.04 hbar) = e^-120.
    expect(prev).toBeLessThan(1e-5);
  });

  it('saturates at the window clamp: indices stay within +-127, so |output| <= 127 q', () => {
    const q = 0.4;
    const z = tf.tensor1d([1000 * q, 130.2 * q, 126.1 * q, -1000 * q, -125.3 * q, 5.2 * q]);
    const qs = tf.scalar(q);
    expect(Array.from(windowStart(z, qs).dataSync())).toEqual([123, 123, 123, -127, -127, 3]);
    const soft = softQuantize(z, qs, { alpha: 5 }).dataSync();
    expect(soft[0]).toBeCloseTo(127 * q, 4); // capped at about 50.8 although z = 400
    expect(soft[3]).toBeCloseTo(-127 * q, 4);
    expect(Math.max(...Array.from(soft).map(Math.abs))).toBeLessThanOrEqual(127 * q + 1e-4);
    // Wide soft windows cannot escape either: even with tiny alpha the mean lies inside [123q, 127q].
    const flat = softQuantize(z, qs, { alpha: 1e-6 }).dataSync();
    expect(flat[0]).toBeGreaterThanOrEqual(123 * q - 1e-4);
    expect(flat[0]).toBeLessThanOrEqual(127 * q + 1e-4);
    // The hard quantiser is a real codec's: no saturation.
    expect(hardQuantize(z, qs).dataSync()[0]).toBeCloseTo(1000 * q, 3);
    // With b = 4 and L = 3 the window start lies in [-7, 5].
    expect(Array.from(windowStart(tf.tensor1d([100, -100]), tf.scalar(1), 3, 4).dataSync())).toEqual([5, -7]);
  });

  it('has dQ/dz = 2 alpha Var_p(i q) (autodiff vs closed form in float64)', () => {
    const { z, q } = sample(300, 3, 100, 0.5, 10);
    for (const alpha of [0.1, 1, 5]) {
      const zt = tf.tensor1d(z);
      const g = tf.grad((x: tf.Tensor) => tf.sum(softQuantize(x, tf.tensor1d(q), { alpha })))(zt).dataSync();
      z.forEach((zz, k) => {
        const want = 2 * alpha * softRef(zz, q[k], alpha).variance;
        expect(Math.abs(g[k] - want)).toBeLessThan(2e-3 * Math.max(1, want));
      });
      // Closed form used by bpda-soft agrees too.
      const an = softQuantizeGrads(zt, tf.tensor1d(q), { alpha }).dz.dataSync();
      z.forEach((_, k) => expect(Math.abs(an[k] - g[k])).toBeLessThan(2e-3 * Math.max(1, Math.abs(g[k]))));
    }
  });

  it('sends gradients to z and q that match central finite differences of the float64 reference', () => {
    const { z, q } = sample(120, 4, 30, 0.5, 6);
    const alpha = 0.7;
    const [gz, gq] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(softQuantize(a, b, { alpha })))([tf.tensor1d(z), tf.tensor1d(q)]);
    const gzv = gz.dataSync();
    const gqv = gq.dataSync();
    const h = 1e-6;
    let nonzeroQ = 0;
    z.forEach((zz, k) => {
      const fdz = (softRef(zz + h, q[k], alpha).value - softRef(zz - h, q[k], alpha).value) / (2 * h);
      const fdq = (softRef(zz, q[k] + h, alpha).value - softRef(zz, q[k] - h, alpha).value) / (2 * h);
      expect(Math.abs(gzv[k] - fdz)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fdz)));
      expect(Math.abs(gqv[k] - fdq)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fdq)));
      if (Math.abs(fdq) > 1e-3) nonzeroQ++;
    });
    expect(nonzeroQ).toBeGreaterThan(60); // the check is not vacuous
  });

  it('hardness matching uses alpha = hbar/q^2 with no gradient through alpha', () => {
    const { z } = sample(50, 5, 20, 1, 2);
    const qv = 1.7;
    const hbar = 0.8;
    const zt = tf.tensor1d(z);
    const qt = tf.fill([z.length], qv);
    const a = softQuantize(zt, qt, { hardness: hbar }).dataSync();
    const b = softQuantize(zt, qt, { alpha: hbar / qv ** 2 }).dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
    const gq = (opts: object) => tf.grad((qq: tf.Tensor) => tf.sum(softQuantize(zt, qq, opts)))(qt).dataSync();
    const ga = gq({ hardness: hbar });
    const gb = gq({ alpha: hbar / qv ** 2 });
    ga.forEach((v, k) => expect(v).toBeCloseTo(gb[k], 5));
  });
});

describe('hard and BPDA modes', () => {
  const { z, q } = sample(96, 6, 60, 0.5, 8);
  // z as [2,4,12] with q broadcast from [4,12] (like coefficients and per-channel tables).
  const zt = tf.tensor3d(z, [2, 4, 12]);
  const qt = tf.tensor2d(q.slice(0, 48), [4, 12]);
  const w = tf.tensor3d(z.map((_, k) => Math.sin(k) + 0.1), [2, 4, 12]); // upstream gradient dy

  it('hard forward: round(z/q) q; BPDA modes have exactly the same forward', () => {
    const hard = hardQuantize(zt, qt).dataSync();
    z.forEach((zz, k) => {
      const qq = q[k % 48];
      expect(hard[k]).toBeCloseTo(Math.round(zz / qq) * qq, 4);
    });
    for (const mode of ['bpda-identity', 'bpda-soft'] as const) {
      expect(Array.from(quantize(zt, qt, { mode }).dataSync())).toEqual(Array.from(hard));
    }
  });

  it('bpda-identity: gradient wrt z is the identity; wrt q is the straight-through round(z/q) - z/q', () => {
    const [gz, gq] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(w, bpdaIdentityQuantize(a, b))))([zt, qt]);
    expect(gz.shape).toEqual(zt.shape);
    expect(gq.shape).toEqual(qt.shape);
    const wv = w.dataSync();
    gz.dataSync().forEach((v, k) => expect(v).toBeCloseTo(wv[k], 6));
    const want = new Array(48).fill(0);
    z.forEach((zz, k) => (want[k % 48] += wv[k] * (Math.round(zz / q[k % 48]) - zz / q[k % 48])));
    gq.dataSync().forEach((v, k) => expect(v).toBeCloseTo(want[k], 4));
  });

  it('bpda-soft: gradients wrt z and q equal the soft quantiser\'s; so does soft with softGradient "analytic"', () => {
    for (const opts of [{ alpha: 0.5 }, { alpha: 5 }, { hardness: 1.5 }]) {
      const f = (fn: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(w, fn(a, b))))([zt, qt]).map((g) => g.dataSync());
      const [sz, sq] = f((a, b) => softQuantize(a, b, opts));
      const [bz, bq] = f((a, b) => bpdaSoftQuantize(a, b, opts));
      const [az, aq] = f((a, b) => softQuantize(a, b, { ...opts, softGradient: 'analytic' }));
      sz.forEach((v, k) => expect(Math.abs(bz[k] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v))));
      sq.forEach((v, k) => expect(Math.abs(bq[k] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v))));
      sz.forEach((v, k) => expect(Math.abs(az[k] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v))));
      sq.forEach((v, k) => expect(Math.abs(aq[k] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v))));
      // Same forward value either way.
      expect(Array.from(softQuantize(zt, qt, { ...opts, softGradient: 'analytic' }).dataSync())).toEqual(Array.from(softQuantize(zt, qt, opts).dataSync()));
    }
  });

  it('hard mode passes no gradient to z (round is flat) and round(z/q) to q', () => {
    const [gz, gq] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(hardQuantize(a, b)))([zt, qt]);
    expect(gz.dataSync().every((v) => v === 0)).toBe(true);
    const want = new Array(48).fill(0);
    z.forEach((zz, k) => (want[k % 48] += Math.round(zz / q[k % 48])));
    gq.dataSync().forEach((v, k) => expect(v).toBeCloseTo(want[k], 4));
  });

  it('no mode leaks tensors, forward or forward+backward', async () => {
    for (const mode of ['soft', 'hard', 'bpda-identity', 'bpda-soft'] as const) {
      for (const softGradient of ['autodiff', 'analytic'] as const) {
        const opts = { mode, softGradient, hardness: mode === 'bpda-soft' ? 2 : undefined };
        await assertNoTensorLeak(() => quantize(zt, qt, opts), { label: `${mode} forward` });
        await assertNoTensorLeak(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(quantize(a, b, opts)))([zt, qt]), {
          label: `${mode} ${softGradient} forward+backward`,
        });
      }
    }
  });
});

describe('quantiser options', () => {
  it('rejects bad options with clear errors', () => {
    expect(() => resolveQuantizer({ alpha: 0 })).toThrow(/alpha must be a finite number > 0, got 0/);
    expect(() => resolveQuantizer({ alpha: -1 })).toThrow(/alpha/);
    expect(() => resolveQuantizer({ alpha: NaN })).toThrow(/alpha/);
    expect(() => resolveQuantizer({ hardness: 0 })).toThrow(/hardness must be a finite number > 0/);
    expect(() => resolveQuantizer({ levels: 0 })).toThrow(/levels must be an integer >= 1/);
    expect(() => resolveQuantizer({ bits: 1 })).toThrow(/bits must be an integer in 2..24/);
    expect(() => resolveQuantizer({ bits: 2, levels: 9 })).toThrow(/does not fit/);
    expect(() => resolveQuantizer({ mode: 'round' as never })).toThrow(/mode must be one of soft, hard, bpda-identity, bpda-soft/);
    expect(() => softQuantize(tf.zeros([2]), tf.ones([2]), { alpha: 0 })).toThrow(/softQuantize: alpha/);
    expect(() => resolveQuantizer({ softGradient: 'numeric' as never })).toThrow(/softGradient must be "autodiff" or "analytic", got "numeric"/);
  });
});

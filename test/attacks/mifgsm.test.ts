// MI/NI/SI-NI/VMI/VNI/DI/TI-FGSM: each update rule against a float64 host implementation on models with a closed-form
// gradient, the diversity draws and the Gaussian smoothing against their definitions, I-FGSM as the special case.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diFgsm } from '../../attacks/difgsm.ts';
import { miFgsm } from '../../attacks/mifgsm.ts';
import { diversityDraws, diversityRange, gaussianKernel, type MiFgsmOptions, neighbourOffsets, smoothGradient } from '../../attacks/mifgsm_core.ts';
import { niFgsm } from '../../attacks/nifgsm.ts';
import { pgd } from '../../attacks/pgd.ts';
import { siNiFgsm } from '../../attacks/sinifgsm.ts';
import { tiFgsm } from '../../attacks/tifgsm.ts';
import { vmiFgsm } from '../../attacks/vmifgsm.ts';
import { vniFgsm } from '../../attacks/vnifgsm.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { perExampleDistances, randomImagesData, randomMlp, rng } from './helpers.ts';

/** logits [0, f(x)] with f(x) = Σ a_j x_j + ½ Σ b_j x_j² per image: with label 0 the margin is f, its gradient a + b⊙x. */
function quadraticModel(a: number[], b: number[]): (x: tf.Tensor4D) => tf.Tensor2D {
  const ta = tf.keep(tf.tensor1d(a));
  const tb = tf.keep(tf.tensor1d(b));
  return (x) => tf.tidy(() => {
    const flat = tf.reshape(x, [x.shape[0], -1]);
    const f = tf.sum(tf.add(tf.mul(flat, ta), tf.mul(tf.mul(tf.square(flat), tb), 0.5)), 1, true);
    return tf.concat([tf.zerosLike(f), f], 1) as tf.Tensor2D;
  });
}

/** Host nearest-neighbour map of one axis: output pixel p reads source pixel map[p] (or -1: the fill), for side r at `start` on a `canvas`. */
function axisSource(s: number, r: number, start: number, canvas: number): number[] {
  return Array.from({ length: s }, (_, p) => {
    const u = Math.floor((p * canvas) / s); // canvas -> s
    return u >= start && u < start + r ? Math.floor(((u - start) * s) / r) : -1; // s -> r, placed at start
  });
}

/** Host Gaussian smoothing of one channel-interleaved image [s*s*c] with a k x k kernel, zero padding. */
function convolve(v: Float64Array, h: number, w: number, c: number, kernel: Float64Array): Float64Array {
  const k = Math.round(Math.sqrt(kernel.length));
  const half = (k - 1) / 2;
  const out = new Float64Array(v.length);
  for (let p = 0; p < h; p++) for (let q = 0; q < w; q++) for (let ch = 0; ch < c; ch++) {
    let acc = 0;
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
      const [pp, qq] = [p + i - half, q + j - half];
      if (pp >= 0 && pp < h && qq >= 0 && qq < w) acc += kernel[i * k + j] * v[(pp * w + qq) * c + ch];
    }
    out[(p * w + q) * c + ch] = acc;
  }
  return out;
}

interface HostOptions { eps: number; steps: number; stepSize: number; decay: number; nesterov: boolean; kernel?: Float64Array; p?: number; rate?: number; seed?: number; eot?: number; scales?: number; variance?: number; beta?: number }

/**
 * The family's update in float64 on the quadratic model (margin objective, labels 0): the gradient at the
 * (look-ahead) point, averaged over the scaled copies x/2^i and over EOT calls, each call through its own
 * diversity draws; plus the previous step's variance term; smoothed, normalised by its mean |value|,
 * accumulated with decay, then a sign step, the eps ball and the box; then the variance term for the
 * next step from the neighbourhood offsets.
 */
function hostFamily(x0: Float32Array, n: number, s: number, c: number, a: number[], b: number[], options: HostOptions): Float64Array {
  const o = { kernel: new Float64Array([1]), p: 0, rate: 0.9, seed: 0, eot: 1, ...options };
  const d = s * s * c;
  const scales = o.scales ?? 1;
  const samples = o.variance ?? 0;
  const adv = Float64Array.from(x0);
  const g = new Float64Array(n * d);
  let variance = new Float64Array(n * d);
  let call = 0;
  // d/dx of f(T(x / 2^m)) for every image: T is the call's diversity transform (nearest: a pixel map).
  const gradientAt = (at: Float64Array): Float64Array => {
    const grads = new Float64Array(n * d);
    for (let m = 0; m < scales; m++) {
      const k = 2 ** m;
      for (let e = 0; e < o.eot; e++) {
        const dr = o.p > 0 ? diversityDraws(n, s, o.p, o.rate, o.seed, call++) : undefined;
        for (let i = 0; i < n; i++) {
          const rows = dr?.transformed[i] ? axisSource(s, dr.draws.sizes[i], dr.draws.tops[i], dr.canvas) : undefined;
          const cols = dr?.transformed[i] ? axisSource(s, dr.draws.sizes[i], dr.draws.lefts[i], dr.canvas) : undefined;
          // Output pixel (p, q, ch) of the model's input reads source (rows[p], cols[q], ch); the gradient flows back the same way.
          for (let p = 0; p < s; p++) for (let q = 0; q < s; q++) for (let ch = 0; ch < c; ch++) {
            const out = (p * s + q) * c + ch;
            const src = rows ? (rows[p] < 0 || cols![q] < 0 ? -1 : (rows[p] * s + cols![q]) * c + ch) : out;
            if (src >= 0) grads[i * d + src] += (a[out] + (b[out] * at[i * d + src]) / k) / k / o.eot / scales;
          }
        }
      }
    }
    return grads;
  };
  for (let t = 0; t < o.steps; t++) {
    const at = Float64Array.from(adv, (v, j) => (o.nesterov ? v + o.stepSize * o.decay * g[j] : v));
    const own = gradientAt(at);
    const before = Float64Array.from(adv);
    for (let i = 0; i < n; i++) {
      const sm = convolve(Float64Array.from(own.subarray(i * d, (i + 1) * d), (v, j) => v + variance[i * d + j]), s, s, c, o.kernel);
      const mean = Math.max(sm.reduce((acc, v) => acc + Math.abs(v), 0) / d, 1e-30);
      for (let j = 0; j < d; j++) {
        const k = i * d + j;
        g[k] = o.decay * g[k] + sm[j] / mean;
        const moved = adv[k] + o.stepSize * Math.sign(g[k]);
        adv[k] = Math.min(1, Math.max(0, Math.min(x0[k] + o.eps, Math.max(x0[k] - o.eps, moved))));
      }
    }
    if (samples > 0) {
      const offsets = neighbourOffsets(n, d, samples, (o.beta ?? 1.5) * o.eps, o.seed, t);
      const around = new Float64Array(n * d);
      for (let k = 0; k < samples; k++) {
        const grad = gradientAt(Float64Array.from(before, (v, j) => v + offsets[k * n * d + j]));
        for (let j = 0; j < n * d; j++) around[j] += grad[j] / samples;
      }
      variance = Float64Array.from(around, (v, j) => v - own[j]);
    }
  }
  return adv;
}

function quadraticCase(seed: number, n: number, s: number, c: number) {
  const d = s * s * c;
  const r = rng(seed);
  // Gradient signs flip inside the ball (a + b·x crosses zero), so momentum and look-ahead change the path.
  const a = Array.from({ length: d }, () => 0.6 * r() - 0.3);
  const b = Array.from({ length: d }, () => 4 * r() - 2);
  const xs = randomImagesData(seed + 1, n * d);
  return { a, b, xs, model: quadraticModel(a, b), x: tf.tensor4d(xs, [n, s, s, c]), y: tf.zeros([n], 'int32') as tf.Tensor1D };
}

/** Attack a random quadratic case of n images of s x s x c and compare with the host reference (1e-5 per value). */
function matchesHost(seed: number, [n, s, c]: [number, number, number], attack: (model: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D) => tf.Tensor4D, host: HostOptions): void {
  const { a, b, xs, model, x, y } = quadraticCase(seed, n, s, c);
  const adv = attack(model, x, y);
  const want = hostFamily(xs, n, s, c, a, b, host);
  const got = adv.dataSync();
  for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - want[j])).toBeLessThanOrEqual(1e-5);
  tf.dispose([x, y, adv]);
}

describe('MI-FGSM and NI-FGSM update rules (float64 host reference, quadratic model)', () => {
  it('follow g ← μ·g + ∇/mean|∇|, x ← Π(x + α·sign(g)) exactly, with the gradient at x or at the look-ahead x + α·μ·g', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(0.5, 1, 2), fc.integer({ min: 2, max: 8 }), fc.boolean(), (seed, decay, steps, nesterov) => {
      const o = { eps: 0.2, steps, stepSize: 0.06, decay };
      matchesHost(seed, [2, 3, 2], (m, x, y) => (nesterov ? niFgsm : miFgsm)(m, x, y, { ...o, loss: 'margin' }), { ...o, nesterov });
    }), { numRuns: 25, seed: 3 });
  });

  it('momentum changes the path: with decay 0 the same model gives other images (the test above would see a dropped momentum)', () => {
    const { model, x, y } = quadraticCase(11, 2, 3, 2);
    const opts = { eps: 0.2, steps: 8, stepSize: 0.06, loss: 'margin' as const };
    const [m1, m0] = [miFgsm(model, x, y, { ...opts, decay: 1 }), miFgsm(model, x, y, { ...opts, decay: 0 })];
    expect(Array.from(m1.dataSync())).not.toEqual(Array.from(m0.dataSync()));
    tf.dispose([m1, m0, x, y]);
  });

  it('with decay 0 is I-FGSM: bit for bit PGD without random start at the same step size', () => {
    const model = randomMlp(5, 27, 4);
    const x = tf.tensor4d(randomImagesData(6, 4 * 27), [4, 3, 3, 3]);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    for (const eps of [0.01, 0.1, 0.5]) {
      const mi = miFgsm(model, x, y, { eps, steps: 7, decay: 0 });
      const ref = pgd(model, x, y, { eps, steps: 7, stepSize: eps / 7, randomStart: false });
      expect(Array.from(mi.dataSync())).toEqual(Array.from(ref.dataSync()));
      tf.dispose([mi, ref]);
    }
    tf.dispose([x, y]);
  });

  it('on a linear model every step has the same sign, so MI and NI end at Π(x + eps·sign(w)), the FGSM optimum of the margin', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.01, max: 0.5, noNaN: true }), (seed, eps) => {
      const d = 12;
      const r = rng(seed);
      const a = Array.from({ length: d }, () => 2 * r() - 1);
      const xs = randomImagesData(seed + 1, d);
      const x = tf.tensor4d(xs, [1, 2, 2, 3]);
      const y = tf.zeros([1], 'int32') as tf.Tensor1D;
      const model = quadraticModel(a, a.map(() => 0));
      for (const attack of [miFgsm, niFgsm]) {
        const adv = attack(model, x, y, { eps, loss: 'margin' });
        const got = adv.dataSync();
        for (let j = 0; j < d; j++) expect(Math.abs(got[j] - Math.min(1, Math.max(0, xs[j] + eps * Math.sign(a[j]))))).toBeLessThanOrEqual(2e-6);
        adv.dispose();
      }
      tf.dispose([x, y]);
    }), { numRuns: 15, seed: 8 });
  });
});

describe('SI-NI-FGSM and VMI/VNI-FGSM (float64 host reference, quadratic model)', () => {
  it('SI averages the gradient over x/2^i (chain rule included): the host reference for 1 to 4 scales, with and without look-ahead', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 4 }), fc.boolean(), (seed, scales, nesterov) => {
      const o = { eps: 0.2, steps: 5, stepSize: 0.06, decay: 1, nesterov, scales };
      matchesHost(seed, [2, 3, 2], (m, x, y) => siNiFgsm(m, x, y, { ...o, loss: 'margin' }), o);
    }), { numRuns: 15, seed: 12 });
  });

  it('VMI/VNI add the previous step\'s mean neighbourhood gradient minus its own: the host reference for any sample count and radius', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(0.5, 1.5, 3), fc.boolean(), (seed, samples, beta, nesterov) => {
      const o = { eps: 0.2, steps: 5, stepSize: 0.06, decay: 1, nesterov, seed };
      matchesHost(seed, [2, 3, 2], (m, x, y) => (nesterov ? vniFgsm : vmiFgsm)(m, x, y, { ...o, varianceSamples: samples, varianceBeta: beta, loss: 'margin' }), { ...o, variance: samples, beta });
    }), { numRuns: 15, seed: 13 });
  });

  it('the variance term changes the path on a curved model and vanishes on a linear one (VMI = MI there, bit for bit up to rounding)', () => {
    const { model, x, y } = quadraticCase(14, 2, 4, 1);
    const opts = { eps: 0.2, steps: 6, stepSize: 0.05, loss: 'margin' as const };
    // (On a quadratic the term is b·mean(offset): few, wide samples make it large enough to flip signs.)
    const [v, m] = [vmiFgsm(model, x, y, { ...opts, varianceSamples: 2, varianceBeta: 3 }), miFgsm(model, x, y, opts)];
    expect(Array.from(v.dataSync())).not.toEqual(Array.from(m.dataSync()));
    const r = rng(15);
    const w = Array.from({ length: 16 }, () => 2 * r() - 1);
    const lin = quadraticModel(w, Array(16).fill(0));
    const [vl, ml] = [vmiFgsm(lin, x, y, opts), miFgsm(lin, x, y, opts)];
    const [p, q] = [vl.dataSync(), ml.dataSync()];
    for (let j = 0; j < p.length; j++) expect(Math.abs(p[j] - q[j])).toBeLessThanOrEqual(1e-6);
    tf.dispose([v, m, vl, ml, x, y]);
  });

  it('neighbour offsets: uniform in ±radius, per image from its own stream (batch-size independent), new per step and seed', () => {
    const big = neighbourOffsets(6, 50, 4, 0.3, 9, 2);
    const small = neighbourOffsets(2, 50, 4, 0.3, 9, 2);
    for (const v of big) expect(Math.abs(v)).toBeLessThanOrEqual(0.3);
    // Layout [samples][n][d]: sample k of image i starts at (k·n + i)·d.
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) {
      expect(Array.from(small.subarray((k * 2 + i) * 50, (k * 2 + i + 1) * 50))).toEqual(Array.from(big.subarray((k * 6 + i) * 50, (k * 6 + i + 1) * 50)));
    }
    const mean = big.reduce((acc, v) => acc + v, 0) / big.length;
    const sd = 0.3 / Math.sqrt(3); // of U(-r, r)
    expect(Math.abs(mean)).toBeLessThanOrEqual((5 * sd) / Math.sqrt(big.length));
    expect(Array.from(neighbourOffsets(2, 50, 4, 0.3, 9, 3))).not.toEqual(Array.from(small));
    expect(Array.from(neighbourOffsets(2, 50, 4, 0.3, 10, 2))).not.toEqual(Array.from(small));
  });
});

describe('TI-FGSM smoothing', () => {
  it('the kernel is a normalised, symmetric Gaussian spanning ±kernelSigma standard deviations', () => {
    expect(Array.from(gaussianKernel(1, 3))).toEqual([1]);
    for (const [k, sig] of [[3, 3], [5, 1], [15, 3], [7, 2.5]] as const) {
      const g = gaussianKernel(k, sig);
      const c = (k - 1) / 2;
      expect(g.reduce((acc, v) => acc + v, 0)).toBeCloseTo(1, 12);
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        expect(g[i * k + j]).toBeCloseTo(g[j * k + i], 15);
        expect(g[i * k + j]).toBeCloseTo(g[(k - 1 - i) * k + (k - 1 - j)], 15);
      }
      // Separable pdf: the corner of the centre row is exp(-σ²/2) of the centre, the corner exp(-σ²).
      expect(g[c * k] / g[c * k + c]).toBeCloseTo(Math.exp((-sig * sig) / 2), 12);
      expect(g[0] / g[c * k + c]).toBeCloseTo(Math.exp(-sig * sig), 12);
    }
  });

  it('smoothGradient is the per-channel convolution with zero padding (host reference, any shape and channel count)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(1, 2, 3), fc.constantFrom(1, 3, 5, 7), (seed, h, w, c, k) => {
      const r = rng(seed);
      const v = Float32Array.from({ length: 2 * h * w * c }, () => 2 * r() - 1);
      const kernel = gaussianKernel(k, 1 + r() * 3);
      const t = tf.tensor4d(v, [2, h, w, c]);
      const out = smoothGradient(t, kernel);
      const got = out.dataSync();
      for (let i = 0; i < 2; i++) {
        const want = convolve(Float64Array.from(v.subarray(i * h * w * c, (i + 1) * h * w * c)), h, w, c, kernel);
        for (let j = 0; j < want.length; j++) expect(Math.abs(got[i * h * w * c + j] - want[j])).toBeLessThanOrEqual(1e-6);
      }
      tf.dispose([t, out]);
    }), { numRuns: 30, seed: 4 });
  });

  it('on a linear model TI (no diversity, decay 0) ends at Π(x + eps·sign(K * w)): the smoothed, not the raw, gradient sign', () => {
    const [s, c] = [6, 1];
    const d = s * s * c;
    const r = rng(17);
    const a = Array.from({ length: d }, () => 2 * r() - 1);
    const xs = randomImagesData(18, d);
    const x = tf.tensor4d(xs, [1, s, s, c]);
    const y = tf.zeros([1], 'int32') as tf.Tensor1D;
    const kernel = gaussianKernel(5, 3);
    const smooth = convolve(Float64Array.from(a), s, s, c, kernel);
    const adv = tiFgsm(quadraticModel(a, a.map(() => 0)), x, y, { eps: 0.1, kernelSize: 5, diversityProb: 0, loss: 'margin' });
    const got = adv.dataSync();
    let differs = 0;
    for (let j = 0; j < d; j++) {
      expect(Math.abs(got[j] - Math.min(1, Math.max(0, xs[j] + 0.1 * Math.sign(smooth[j]))))).toBeLessThanOrEqual(2e-6);
      if (Math.sign(smooth[j]) !== Math.sign(a[j])) differs++;
    }
    expect(differs).toBeGreaterThan(0); // the smoothing changed some signs: the check above sees it
    tf.dispose([x, y, adv]);
  });

  it('follows the host reference on the quadratic model with smoothing, momentum and the look-ahead together', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(3, 5), fc.boolean(), (seed, k, nesterov) => {
      const o = { eps: 0.15, steps: 5, stepSize: 0.05, decay: 1, nesterov };
      matchesHost(seed, [2, 5, 2], (m, x, y) => tiFgsm(m, x, y, { ...o, kernelSize: k, kernelSigma: 2, diversityProb: 0, loss: 'margin' }), { ...o, kernel: gaussianKernel(k, 2) });
    }), { numRuns: 12, seed: 6 });
  });
});

describe('DI-FGSM input diversity', () => {
  it('draws per image from (seed, image, call): coin, side in range, offsets on the canvas; independent of the batch size', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 2, max: 40 }), fc.constantFrom(0.5, 0.75, 0.9, 1.25, 1.5, 2), fc.double({ min: 0, max: 1, noNaN: true }), (seed, s, rate, p) => {
      const { lo, hi, canvas } = diversityRange(s, rate);
      fc.pre(hi >= lo);
      const big = diversityDraws(9, s, p, rate, seed, 3);
      const small = diversityDraws(4, s, p, rate, seed, 3);
      for (let i = 0; i < 9; i++) {
        const r = big.draws.sizes[i];
        if (big.transformed[i]) {
          expect(r >= lo && r <= hi && r < canvas).toBe(true);
          expect(big.draws.tops[i] >= 0 && big.draws.tops[i] < canvas - r).toBe(true);
          expect(big.draws.lefts[i] >= 0 && big.draws.lefts[i] < canvas - r).toBe(true);
        }
        if (i < 4) {
          expect(small.transformed[i]).toBe(big.transformed[i]);
          expect([small.draws.sizes[i], small.draws.tops[i], small.draws.lefts[i]]).toEqual([big.draws.sizes[i], big.draws.tops[i], big.draws.lefts[i]]);
        }
      }
      expect(canvas).toBe(rate < 1 ? s : Math.floor(rate * s));
    }), { numRuns: 60, seed: 9 });
  });

  it('transforms each image with probability diversityProb (binomial, 5 standard errors), and every side of the range turns up', () => {
    for (const p of [0.1, 0.5, 0.9]) {
      let hits = 0;
      const sides = new Set<number>();
      const calls = 400;
      for (let call = 0; call < calls; call++) {
        const dr = diversityDraws(10, 32, p, 0.9, 7, call);
        for (let i = 0; i < 10; i++) if (dr.transformed[i]) {
          hits++;
          sides.add(dr.draws.sizes[i]);
        }
      }
      const total = calls * 10;
      expect(Math.abs(hits / total - p)).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / total));
      expect([...sides].sort((u, v) => u - v)).toEqual([28, 29, 30, 31]); // ⌊0.9·32⌋ = 28 up to 31
    }
    expect(Array.from(diversityDraws(10, 32, 0, 0.9, 7, 0).transformed)).toEqual(Array(10).fill(0));
    expect(Array.from(diversityDraws(10, 32, 1, 0.9, 7, 0).transformed)).toEqual(Array(10).fill(1));
    // Another call or seed draws other transforms.
    const [u, v, w] = [diversityDraws(10, 32, 1, 0.9, 7, 0), diversityDraws(10, 32, 1, 0.9, 7, 1), diversityDraws(10, 32, 1, 0.9, 8, 0)];
    expect(Array.from(u.draws.tops)).not.toEqual(Array.from(v.draws.tops));
    expect(Array.from(u.draws.tops)).not.toEqual(Array.from(w.draws.tops));
  });

  it('takes each gradient through its own draws: the host reference with shrink or grow, momentum and EOT (fresh draws per model call)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(0.6, 0.8, 1.4, 2), fc.constantFrom(0, 1), fc.constantFrom(1, 2), (seed, rate, decay, eot) => {
      const o = { eps: 0.2, steps: 4, stepSize: 0.06, decay, seed };
      matchesHost(seed, [3, 5, 2], (m, x, y) => diFgsm(m, x, y, { ...o, diversityProb: 0.7, resizeRate: rate, eotSamples: eot, loss: 'margin' }), { ...o, nesterov: false, p: 0.7, rate, eot });
    }), { numRuns: 20, seed: 10 });
  });

  it('diversityProb 0 is MI-FGSM bit for bit, and diversity changes the result (the reference above would see it skipped)', () => {
    const { model, x, y } = quadraticCase(21, 3, 6, 1);
    const opts = { eps: 0.2, steps: 5, decay: 1, loss: 'margin' as const };
    const [d0, m, d1] = [diFgsm(model, x, y, { ...opts, diversityProb: 0 }), miFgsm(model, x, y, opts), diFgsm(model, x, y, { ...opts, diversityProb: 1 })];
    expect(Array.from(d0.dataSync())).toEqual(Array.from(m.dataSync()));
    expect(Array.from(d1.dataSync())).not.toEqual(Array.from(m.dataSync()));
    tf.dispose([d0, m, d1, x, y]);
  });
});

describe('the family: budget, seeds, leaks, errors', () => {
  const attacks: Array<[string, (m: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, o: MiFgsmOptions) => tf.Tensor4D]> = [
    ['mi-fgsm', miFgsm], ['ni-fgsm', niFgsm], ['si-ni-fgsm', siNiFgsm], ['vmi-fgsm', vmiFgsm], ['vni-fgsm', vniFgsm], ['di-fgsm', diFgsm], ['ti-fgsm', tiFgsm],
  ];

  it('the default steps add up to eps: an unfoolable linear margin moves every free pixel by exactly eps', () => {
    const d = 48;
    const a = Array.from({ length: d }, (_, j) => (j % 2 ? 1 : -1));
    const x = tf.fill([2, 4, 4, 3], 0.5) as tf.Tensor4D;
    const y = tf.zeros([2], 'int32') as tf.Tensor1D;
    const model = quadraticModel(a, a.map(() => 0));
    for (const [name, attack] of attacks) {
      if (name === 'ti-fgsm' || name === 'di-fgsm') continue; // their gradients are transformed on purpose
      const adv = attack(model, x, y, { eps: 8 / 255, loss: 'margin' });
      const dist = perExampleDistances(adv.dataSync(), x.dataSync(), 2, 3);
      for (const v of dist.linf) expect(v).toBeCloseTo(8 / 255, 6);
      for (const v of dist.l1) expect(v).toBeCloseTo((d * 8) / 255, 4);
      adv.dispose();
    }
    tf.dispose([x, y]);
  });

  it('same seed same images; diversity and random starts follow the seed; targeted runs reach the target on a linear model', () => {
    const model = randomMlp(31, 48, 4);
    const x = tf.tensor4d(randomImagesData(32, 2 * 48), [2, 4, 4, 3]);
    const y = tf.tensor1d([0, 1], 'int32');
    for (const [, attack] of attacks) {
      const run = (seed: number) => attack(model, x, y, { eps: 0.1, steps: 3, seed, randomStart: true });
      const [u, v, w] = [run(1), run(1), run(2)];
      expect(Array.from(u.dataSync())).toEqual(Array.from(v.dataSync()));
      expect(Array.from(u.dataSync())).not.toEqual(Array.from(w.dataSync()));
      tf.dispose([u, v, w]);
    }
    const lin = quadraticModel(Array.from({ length: 48 }, (_, j) => Math.sin(j + 1)), Array(48).fill(0));
    const targets = tf.tensor1d([1, 1], 'int32');
    const zeros = tf.zeros([2], 'int32') as tf.Tensor1D;
    for (const [name, attack] of attacks) {
      const adv = attack(lin, x, zeros, { eps: 1, steps: 5, targeted: true, targets, loss: 'margin', diversityProb: 0, kernelSize: 1 });
      const pred = tf.tidy(() => tf.argMax(lin(adv), 1).dataSync());
      expect(Array.from(pred), name).toEqual([1, 1]);
      adv.dispose();
    }
    tf.dispose([x, y, targets, zeros]);
  });

  it('leaves no tensor behind per call, with diversity, smoothing, look-ahead and EOT on', async () => {
    const model = randomMlp(41, 48, 3);
    const x = tf.tensor4d(randomImagesData(42, 2 * 48), [2, 4, 4, 3]);
    const y = tf.tensor1d([0, 2], 'int32');
    for (const [name, attack] of attacks) {
      await assertNoTensorLeak(() => attack(model, x, y, { eps: 0.1, steps: 3, diversityProb: 0.5, kernelSize: 3, nesterov: true, eotSamples: 2, randomStart: true }), { label: name });
    }
    tf.dispose([x, y]);
  });

  it('names a bad option, non-square images under diversity, and a resize rate that leaves no side, before any step', () => {
    const model = randomMlp(51, 12, 3);
    const x = tf.tensor4d(randomImagesData(52, 12), [1, 2, 2, 3]);
    const wide = tf.tensor4d(randomImagesData(53, 12), [1, 1, 4, 3]);
    const y = tf.tensor1d([0], 'int32');
    for (const [name, attack] of attacks) {
      const run = (o: Record<string, unknown>, images = x) => attack(model, images, y, { eps: 0.1, ...o } as MiFgsmOptions);
      expect(() => run({ decay: -1 })).toThrow(`${name}: decay: must be a finite number >= 0, got -1`);
      expect(() => run({ diversityProb: 1.5 })).toThrow(`${name}: diversityProb must be a probability in [0, 1], got 1.5`);
      expect(() => run({ resizeRate: 1 })).toThrow(`${name}: resizeRate must be a finite number > 0 other than 1 (below 1 shrinks, above 1 grows), got 1`);
      expect(() => run({ kernelSize: 4 })).toThrow(`${name}: kernelSize must be an odd integer >= 1 (pixels; 1 = no smoothing), got 4`);
      expect(() => run({ kernelSigma: 0 })).toThrow(`${name}: kernelSigma: must be a finite number > 0, got 0`);
      expect(() => run({ nesterov: 'yes' })).toThrow(`${name}: nesterov must be a boolean`);
      expect(() => run({ scales: 0 })).toThrow(`${name}: scales: must be an integer >= 1, got 0`);
      expect(() => run({ varianceSamples: 1.5 })).toThrow(`${name}: varianceSamples: must be an integer >= 0, got 1.5`);
      expect(() => run({ varianceBeta: -1 })).toThrow(`${name}: varianceBeta: must be a finite number > 0, got -1`);
      expect(() => run({ restarts: 2 })).toThrow(new RegExp(`${name}: unknown option "restarts"`));
      expect(() => run({ diversityProb: 0.5 }, wide)).toThrow(`${name}: input diversity needs square images, got 1x4`);
      expect(() => run({ diversityProb: 0.5, resizeRate: 1.2 })).toThrow(`${name}: resizeRate 1.2 leaves no side to draw for 2-pixel images (⌊rate·2⌋ = 2); use a rate further from 1`);
      // Without diversity neither shape nor rate matters.
      const ok = run({ diversityProb: 0, resizeRate: 1.2 }, wide);
      ok.dispose();
    }
    tf.dispose([x, wide, y]);
  });
});

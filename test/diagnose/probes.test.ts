// Gradient probes against closed forms: on a two-class linear model the margin is linear, so its
// gradient, profiles and finite differences are known exactly; a rounding model has no gradient at all.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lossSurface, probeBatch, resolveProbeOptions, signDirection } from '../../src/diagnose/probes.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, randomMlp, randomWeights, rng, roundingCounter } from '../attacks/helpers.ts';

const [H, W, C] = [4, 4, 2];
const D = H * W * C;

/** Images inside [0.2, 0.8], so steps up to 0.2 never meet the box. */
function midImages(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * D }, () => 0.2 + 0.6 * r());
}

describe('probeBatch on a two-class linear model (margin = (w1 - w0)·x + b1 - b0 for label 0)', () => {
  it('gives the gradient, both profiles and finite differences in closed form', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 4 }), fc.double({ min: 0.01, max: 0.2, noNaN: true }), (seed, n, eps) => {
      const Wt = randomWeights(seed, D, 2);
      const b = [0.1, -0.2];
      const model = linearModel(Wt, b);
      const xs = midImages(seed + 1, n);
      const labels = Array.from({ length: n }, (_, i) => (seed + i) % 2);
      const x = tf.tensor4d(xs, [n, H, W, C]);
      const y = tf.tensor1d(labels, 'int32');
      const profile = [0, 0.5, 1];
      const res = probeBatch(model, x, y, 7, { eps, profile, directions: 3, seed });
      tf.dispose([x, y]);
      for (let i = 0; i < n; i++) {
        const yi = labels[i];
        const g = Wt.map((row) => row[1 - yi] - row[yi]);
        const m0 = g.reduce((a, gd, d) => a + gd * xs[i * D + d], 0) + b[1 - yi] - b[yi];
        const l1 = g.reduce((a, gd) => a + Math.abs(gd), 0);
        expect(res.objective[i]).toBeCloseTo(m0, 4);
        expect(res.correct[i]).toBe(m0 < 0 ? 1 : 0);
        expect(res.gradMean[i]).toBeCloseTo(l1 / D, 5);
        profile.forEach((t, k) => {
          expect(res.alongGradient[k][i]).toBeCloseTo(m0 + t * eps * l1, 3);
          // Direction j of image 7 + i, exactly as the probe draws it.
          const moves = [0, 1, 2].map((j) => signDirection(seed, 7 + i, j, D).reduce((a, r, d) => a + r * g[d], 0));
          expect(res.randomMax[k][i]).toBeCloseTo(m0 + t * eps * Math.max(...moves), 3);
          expect(res.randomMean[k][i]).toBeCloseTo(m0 + (t * eps * moves.reduce((a, v) => a + v, 0)) / 3, 3);
          // The gradient's sign is the best L-inf direction of a linear function.
          expect(res.alongGradient[k][i]).toBeGreaterThanOrEqual(res.randomMax[k][i] - 1e-4);
        });
        expect(res.fdError[i]).toBeLessThan(1e-3);
      }
    }), { numRuns: 15 });
  });

  it('clips the profile to the box: at a corner the gradient step cannot leave [0, 1]', () => {
    const Wt = randomWeights(3, D, 2);
    const model = linearModel(Wt, [0, 0]);
    const g = Wt.map((row) => row[1] - row[0]);
    // Every value already at the end the gradient pushes toward.
    const xs = Float32Array.from(g, (gd) => (gd > 0 ? 1 : 0));
    const x = tf.tensor4d(xs, [1, H, W, C]);
    const y = tf.tensor1d([0], 'int32');
    const res = probeBatch(model, x, y, 0, { eps: 0.1, profile: [0, 1], directions: 2 });
    tf.dispose([x, y]);
    expect(res.alongGradient[1][0]).toBeCloseTo(res.alongGradient[0][0], 4);
    // Random directions can only go back into the box, lowering the margin.
    expect(res.randomMax[1][0]).toBeLessThan(res.objective[0]);
  });
});

describe('probeBatch on a model without a gradient', () => {
  it('sees a zero gradient, a flat gradient profile and finite differences the gradient misses', () => {
    // Values at 0.499 or 0.501: one grey level up or down crosses the rounding threshold of many of them.
    const n = 3;
    const r = rng(5);
    const xs = Float32Array.from({ length: n * D }, () => (r() < 0.5 ? 0.499 : 0.501));
    const model = roundingCounter(D / 2);
    const x = tf.tensor4d(xs, [n, H, W, C]);
    const y = tf.tensor1d([0, 1, 0], 'int32');
    const res = probeBatch(model, x, y, 0, { eps: 8 / 255, directions: 4 });
    tf.dispose([x, y]);
    for (let i = 0; i < n; i++) {
      expect(res.gradMean[i]).toBe(0);
      for (const v of res.alongGradient) expect(v[i]).toBe(res.objective[i]);
      expect(res.fdError[i]).toBe(1);
      // Random steps of 8/255 cross thresholds and move the count; the gradient step cannot.
      expect(res.randomMax[res.randomMax.length - 1][i]).toBeGreaterThan(res.objective[i]);
    }
  });
});

describe('probeBatch on a nonlinear model', () => {
  it('finite differences agree with the gradient at a small step', () => {
    const model = randomMlp(11, D, 3);
    const x = tf.tensor4d(midImages(12, 4), [4, H, W, C]);
    const y = tf.tensor1d([0, 1, 2, 0], 'int32');
    const res = probeBatch(model, x, y, 0, { eps: 0.03, directions: 4, fdStep: 1e-3, loss: 'ce' });
    tf.dispose([x, y]);
    for (const e of res.fdError) expect(e).toBeLessThan(0.05);
  });

  it('draws the same directions whatever the batch, leaks nothing, and is deterministic', async () => {
    const model = randomMlp(13, D, 3);
    const xs = midImages(14, 4);
    const labels = [0, 1, 2, 1];
    const probe = (from: number) => {
      const [x, y] = [tf.tensor4d(xs.subarray(from * D), [4 - from, H, W, C]), tf.tensor1d(labels.slice(from), 'int32')];
      const res = probeBatch(model, x, y, from, { eps: 0.05, seed: 3 });
      tf.dispose([x, y]);
      return res;
    };
    const [whole, tail] = [probe(0), probe(2)];
    const fixed = (a: ArrayLike<number>) => Array.from(a, (v) => v.toFixed(4));
    for (let k = 0; k < whole.randomMax.length; k++) expect(fixed(tail.randomMax[k])).toEqual(fixed(whole.randomMax[k].subarray(2)));
    expect(fixed(tail.fdError)).toEqual(fixed(whole.fdError.subarray(2)));
    expect(probe(0)).toEqual(whole);
    const x = tf.tensor4d(xs, [4, H, W, C]);
    const y = tf.tensor1d(labels, 'int32');
    await assertNoTensorLeak(() => { probeBatch(model, x, y, 0, { eps: 0.05, directions: 2 }); }, { label: 'probeBatch' });
    const first = x.slice([0, 0, 0, 0], [1, H, W, C]);
    await assertNoTensorLeak(() => { lossSurface(model, first, 0, 0, { eps: 0.05, size: 5, batchSize: 7 }); }, { label: 'lossSurface' });
    tf.dispose([x, y, first]);
  });
});

describe('lossSurface', () => {
  it('on a linear model is the plane m0 + eps(a·||g||1 + b·g·r), row b = -1 first', () => {
    const Wt = randomWeights(21, D, 2);
    const model = linearModel(Wt, [0.3, 0]);
    const xs = midImages(22, 1);
    const g = Wt.map((row) => row[1] - row[0]);
    const m0 = g.reduce((a, gd, d) => a + gd * xs[d], 0) - 0.3;
    const l1 = g.reduce((a, gd) => a + Math.abs(gd), 0);
    const gr = signDirection(4, 9, 0, D).reduce((a, r, d) => a + r * g[d], 0);
    const x = tf.tensor4d(xs, [1, H, W, C]);
    const v = lossSurface(model, x, 0, 9, { eps: 0.1, seed: 4, size: 5, batchSize: 3 });
    x.dispose();
    const coords = [-1, -0.5, 0, 0.5, 1];
    coords.forEach((b, row) => coords.forEach((a, col) => expect(v[row * 5 + col]).toBeCloseTo(m0 + 0.1 * (a * l1 + b * gr), 3)));
  });
});

describe('option checks', () => {
  it('names the option and what is wrong', () => {
    expect(() => resolveProbeOptions({ eps: 0 })).toThrow(/eps: must be a number in \(0, 1\]/);
    expect(() => resolveProbeOptions({ eps: 8 })).toThrow(/eps/);
    expect(() => resolveProbeOptions({ eps: 0.1, profile: [] })).toThrow(/profile/);
    expect(() => resolveProbeOptions({ eps: 0.1, profile: [1.5] })).toThrow(/profile/);
    expect(() => resolveProbeOptions({ eps: 0.1, directions: 0 })).toThrow(/directions: must be an integer >= 1/);
    expect(() => resolveProbeOptions({ eps: 0.1, fdStep: 0 })).toThrow(/fdStep/);
    expect(() => resolveProbeOptions({ eps: 0.1, loss: 'mse' as never })).toThrow(/loss/);
    expect(() => resolveProbeOptions({ eps: 0.1, seed: -1 })).toThrow(/seed/);
    const x = tf.zeros([2, H, W, C]) as tf.Tensor4D;
    expect(() => lossSurface(linearModel(randomWeights(1, D, 2), [0, 0]), x, 0, 0, { eps: 0.1 })).toThrow(/one image/);
    expect(() => lossSurface(linearModel(randomWeights(1, D, 2), [0, 0]), x, 0, 0, { eps: 0.1, size: 1 })).toThrow(/size/);
    x.dispose();
  });
});

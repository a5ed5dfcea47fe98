import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { jpegForward } from '../../src/jpeg/forward.ts';
import { standardTables } from '../../src/jpeg/tables.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { refJpeg, type RefTables } from './reference.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32);
}

function randomImages(shape: [number, number, number, number], seed: number): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => r());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Learned-looking tables: small steps (soft region) mixed with large ones (near-hard region).
function mixedTables(seed: number): RefTables {
  const r = lcg(seed);
  return { luma: Array.from({ length: 64 }, () => 0.3 + 12 * r()), chroma: Array.from({ length: 64 }, () => 1 + 30 * r()) };
}

describe('jpegForward equals an independent float64 reference', () => {
  // Odd sizes exercise the zero padding and the crop.
  const cases: { name: string; shape: [number, number, number, number]; tables: RefTables[]; alpha?: number; hardness?: number }[] = [
    { name: 'RGB, quality-75 tables, alpha 1', shape: [2, 13, 10, 3], tables: [standardTables(75)], alpha: 1 },
    { name: 'RGB, mixed tables, alpha 0.2', shape: [1, 16, 11, 3], tables: [mixedTables(1)], alpha: 0.2 },
    { name: 'grey, mixed tables, hardness 0.7', shape: [2, 9, 16, 1], tables: [mixedTables(2)], hardness: 0.7 },
    { name: 'RGB, two rounds', shape: [1, 8, 16, 3], tables: [mixedTables(3), standardTables(90)], alpha: 0.5 },
  ];
  for (const c of cases) {
    it(`${c.name}: soft and hard to 1e-5`, () => {
      const img = randomImages(c.shape, 10 + c.shape[1]);
      const x = tf.tensor4d(img, c.shape);
      for (const mode of ['soft', 'hard'] as const) {
        const got = tf.tidy(() => jpegForward(x, c.tables, { mode, alpha: c.alpha, hardness: c.hardness }).dataSync());
        const want = refJpeg(img, c.shape, c.tables, { mode, alpha: c.alpha, hardness: c.hardness });
        expect(maxAbsDiff(got, want), mode).toBeLessThan(1e-5);
      }
      x.dispose();
    });
  }

  it('at the default alpha = 5 and quality-50 steps, agrees to 1e-6 on 90% of pixels and 2e-4 everywhere', () => {
    // With alpha = 5 and steps of 10-100 (alpha q^2 = 500-50000) the soft quantiser is a near step
    // function whose slope 2 alpha Var reaches alpha q^2 / 2 at bin edges, so the float32 rounding
    // of a coefficient that sits on an edge (about 1e-4 DCT units) moves the whole block by up to
    // ~1e-4 on the 0-1 scale. The float32 PyTorch reference has the same sensitivity. Measured: median
    // 4e-8, 99th percentile and max 5e-5.
    const shape: [number, number, number, number] = [2, 16, 16, 3];
    const img = randomImages(shape, 99);
    const tables = [standardTables(50)];
    const got = tf.tidy(() => jpegForward(tf.tensor4d(img, shape), tables).dataSync());
    const want = refJpeg(img, shape, tables, { mode: 'soft', alpha: 5 });
    let close = 0;
    for (let i = 0; i < got.length; i++) if (Math.abs(got[i] - want[i]) < 1e-6) close++;
    expect(close / got.length).toBeGreaterThan(0.9);
    expect(maxAbsDiff(got, want)).toBeLessThan(2e-4);
  });

  it('clamp option clips to [0,1]; without it the output may leave [0,1] (as the reference)', () => {
    const shape: [number, number, number, number] = [1, 8, 8, 3];
    // Black-and-white noise: coarse quantisation rings past 0 and 1.
    const img = randomImages(shape, 5).map((v) => (v > 0.5 ? 1 : 0));
    const tables = [standardTables(10)];
    const raw = tf.tidy(() => jpegForward(tf.tensor4d(img, shape), tables, { mode: 'hard' }).dataSync());
    const clamped = tf.tidy(() => jpegForward(tf.tensor4d(img, shape), tables, { mode: 'hard', clamp: true }).dataSync());
    expect(Math.min(...raw) < 0 || Math.max(...raw) > 1).toBe(true);
    expect(Math.min(...clamped)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...clamped)).toBeLessThanOrEqual(1);
    expect(maxAbsDiff(clamped, refJpeg(img, shape, tables, { mode: 'hard', clamp: true }))).toBeLessThan(1e-5);
  });

  it('steps are clamped to [1e-5, 255] before use', () => {
    const shape: [number, number, number, number] = [1, 8, 8, 1];
    const img = randomImages(shape, 6);
    const wild = { luma: Array.from({ length: 64 }, (_, k) => (k % 2 ? -3 : 900)) };
    const got = tf.tidy(() => jpegForward(tf.tensor4d(img, shape), [wild], { mode: 'hard' }).dataSync());
    const want = refJpeg(img, shape, [{ luma: wild.luma.map((v) => Math.min(255, Math.max(1e-5, v))) }], { mode: 'hard' });
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
  });
});

describe('gradients of the whole layer', () => {
  // Loss = sum(weights * output); gradients by tf autodiff (float32) versus central finite
  // differences of the float64 reference. Moderate alpha keeps the function smooth at the FD scale.
  const shape: [number, number, number, number] = [1, 8, 16, 3];
  const img = randomImages(shape, 31);
  const wts = randomImages(shape, 32).map((v) => v - 0.5);
  const tables = [mixedTables(7)];
  const opts = { mode: 'soft' as const, alpha: 0.3 };
  const refLoss = (im: ArrayLike<number>, t: RefTables[]) => refJpeg(im, shape, t, opts).reduce((s, v, i) => s + v * wts[i], 0);

  it('reach the input pixels and match finite differences', () => {
    const x = tf.tensor4d(img, shape);
    const w = tf.tensor4d(wts, shape);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(w, jpegForward(xx as tf.Tensor4D, tables, opts))))(x).dataSync();
    const h = 1e-6;
    for (const i of [0, 5, 77, 130, 200, 383]) {
      const p = Float64Array.from(img);
      const m = Float64Array.from(img);
      p[i] += h;
      m[i] -= h;
      const fd = (refLoss(p, tables) - refLoss(m, tables)) / (2 * h);
      expect(Math.abs(g[i] - fd), `pixel ${i}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
    }
    tf.dispose([x, w]);
  });

  it('reach both tables and match finite differences', () => {
    const x = tf.tensor4d(img, shape);
    const w = tf.tensor4d(wts, shape);
    const lt = tf.tensor1d(tables[0].luma);
    const ct = tf.tensor1d(tables[0].chroma!);
    const [gl, gc] = tf
      .grads((l: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(w, jpegForward(x, [{ luma: l, chroma: c }], opts))))([lt, ct])
      .map((g) => g.dataSync());
    const h = 1e-6;
    let nonzero = 0;
    for (const [which, k] of [['luma', 0], ['luma', 9], ['luma', 40], ['chroma', 0], ['chroma', 3], ['chroma', 63]] as const) {
      const bump = (d: number) => [{ ...tables[0], [which]: tables[0][which]!.map((v, j) => (j === k ? v + d : v)) }];
      const fd = (refLoss(img, bump(h)) - refLoss(img, bump(-h))) / (2 * h);
      const got = (which === 'luma' ? gl : gc)[k];
      expect(Math.abs(got - fd), `${which}[${k}]`).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
      if (Math.abs(fd) > 1e-4) nonzero++;
    }
    expect(nonzero).toBeGreaterThanOrEqual(4);
    tf.dispose([x, w, lt, ct]);
  });
});

describe('jpegForward arguments and memory', () => {
  it('rejects wrong channel counts, missing or wrong-length tables, bad options', () => {
    const t = [standardTables(50)];
    expect(() => jpegForward(tf.zeros([1, 8, 8, 4]) as tf.Tensor4D, t)).toThrow(/1 \(grayscale\) or 3 \(RGB\) channels, got 4/);
    expect(() => jpegForward(tf.zeros([8, 8, 3]) as unknown as tf.Tensor4D, t)).toThrow(/4-D NHWC tensor, got rank 3/);
    expect(() => jpegForward(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, [])).toThrow(/non-empty array/);
    expect(() => jpegForward(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, [{ luma: t[0].luma }])).toThrow(/tables\[0\]\.chroma is required/);
    expect(() => jpegForward(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, [{ luma: [1, 2] }])).toThrow(/tables\[0\]\.luma: expected 64 values/);
    expect(() => jpegForward(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, t, { alpha: -1 })).toThrow(/alpha must be a finite number > 0/);
  });

  it('leaks no tensors in forward or forward+backward, in every mode', async () => {
    const x = tf.randomUniform([2, 12, 12, 3]) as tf.Tensor4D;
    const l = tf.variable(tf.tensor1d(standardTables(50).luma));
    const c = tf.variable(tf.tensor1d(standardTables(50).chroma));
    for (const mode of ['soft', 'hard', 'bpda-identity', 'bpda-soft'] as const) {
      await assertNoTensorLeak(() => jpegForward(x, [{ luma: l, chroma: c }], { mode }), { label: `${mode} forward` });
      await assertNoTensorLeak(
        () => tf.variableGrads(() => tf.sum(jpegForward(x, [{ luma: l, chroma: c }], { mode })) as tf.Scalar),
        { label: `${mode} forward+backward` },
      );
    }
    tf.dispose([x, l, c]);
  });
});

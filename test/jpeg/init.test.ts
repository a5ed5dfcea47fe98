import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { absAverageTables, sensitivityTables } from '../../src/jpeg/init.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32);
}
const COS = Array.from({ length: 64 }, (_, k) => Math.cos(((2 * (k >> 3) + 1) * (k & 7) * Math.PI) / 16));
const cu = (u: number) => (u === 0 ? Math.SQRT1_2 : 1) / 2;

// Float64 orthonormal DCT of every 8x8 block of one plane [h][w] (h, w multiples of 8).
function planeDct(plane: number[], h: number, w: number): number[][] {
  const out: number[][] = [];
  for (let bi = 0; bi < h; bi += 8) {
    for (let bj = 0; bj < w; bj += 8) {
      const c = new Array(64).fill(0);
      for (let u = 0; u < 8; u++) for (let v = 0; v < 8; v++) {
        let s = 0;
        for (let x = 0; x < 8; x++) for (let y = 0; y < 8; y++) s += plane[(bi + x) * w + bj + y] * COS[8 * x + u] * COS[8 * y + v];
        c[8 * u + v] = cu(u) * cu(v) * s;
      }
      out.push(c);
    }
  }
  return out;
}

// Planes (Y or Y/Cb/Cr, level-shifted, reference formulas) of image b from flat NHWC data.
function planes(data: Float32Array, b: number, h: number, w: number, c: number): number[][] {
  const out = Array.from({ length: c }, () => new Array(h * w).fill(0));
  for (let p = 0; p < h * w; p++) {
    const base = (b * h * w + p) * c;
    if (c === 1) {
      out[0][p] = data[base] * 255 - 128;
      continue;
    }
    const [R, G, B] = [0, 1, 2].map((k) => data[base + k] * 255 - 128);
    const Y = 0.299 * R + 0.587 * G + 0.114 * B;
    out[0][p] = Y;
    out[1][p] = (B - Y) / 1.772 + 0.5;
    out[2][p] = (R - Y) / 1.402 + 0.5;
  }
  return out;
}

describe('sensitivity initialisation', () => {
  // A linear classifier logits = flatten(x) W: its input gradient of the CE is W (softmax - onehot),
  // and the gradient wrt the DCT coefficients of each block is D (dL/dx) D^T / 255 (x = (D^T C D + 128)/255).
  const [n, h, w, k] = [5, 8, 16, 3];
  const r = lcg(11);
  const Wt = Array.from({ length: h * w * 1 * k }, () => r() - 0.5);
  const data = Float32Array.from({ length: n * h * w }, () => r());
  const labels = Int32Array.from({ length: n }, (_, i) => i % k);
  const linear = (x: tf.Tensor4D) => tf.matMul(x.reshape([x.shape[0], -1]), tf.tensor2d(Wt, [h * w, k])) as tf.Tensor2D;

  function expectedGrey(): number[] {
    const s = new Array(64).fill(0);
    for (let b = 0; b < n; b++) {
      const xs = Array.from(data.subarray(b * h * w, (b + 1) * h * w));
      const logits = Array.from({ length: k }, (_, j) => xs.reduce((a, v, p) => a + v * Wt[p * k + j], 0));
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((a, v) => a + v, 0);
      const d = e.map((v, j) => v / z - (j === labels[b] ? 1 : 0));
      const gx = xs.map((_, p) => d.reduce((a, dj, j) => a + dj * Wt[p * k + j], 0) / 255);
      for (const blk of planeDct(gx, h, w)) blk.forEach((g, i) => (s[i] += g * g));
    }
    return s.map((v) => v / n);
  }

  it('grey: s = mean over images of the summed squared CE gradient per coefficient; luma = 1/s scaled to max qMax', () => {
    const images = tf.tensor4d(data, [n, h, w, 1]);
    const res = sensitivityTables(linear, { images, labels: tf.tensor1d(labels, 'int32') }, { qMax: 10, batchSize: 2 });
    const want = expectedGrey();
    res.sensitivity.y.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-3 * want[i] + 1e-12));
    expect(res.images).toBe(n);
    expect(Math.max(...res.luma)).toBeCloseTo(10, 6);
    const prod = res.luma.map((q, i) => q * res.sensitivity.y[i]);
    prod.forEach((p) => expect(p).toBeCloseTo(prod[0], 8));
    expect(res.chroma).toBeUndefined();
    // Same numbers from a dataset-like source and another batch size.
    const ds = sensitivityTables(linear, { images: data, labels, height: h, width: w, channels: 1 }, { batchSize: 5 });
    ds.sensitivity.y.forEach((v, i) => expect(Math.abs(v - res.sensitivity.y[i])).toBeLessThan(1e-5 * res.sensitivity.y[i]));
    // maxImages takes the first images only.
    const few = sensitivityTables(linear, { images: data.subarray(0, 3 * h * w), labels: labels.subarray(0, 3), height: h, width: w, channels: 1 });
    const capped = sensitivityTables(linear, { images, labels }, { maxImages: 3 });
    expect(capped.images).toBe(3);
    capped.sensitivity.y.forEach((v, i) => expect(Math.abs(v - few.sensitivity.y[i])).toBeLessThan(1e-5 * few.sensitivity.y[i]));
    images.dispose();
  });

  it('RGB through a LayersModel: chroma = 2/(s_Cb+s_Cr) with the same scale as luma; no tensor leaks', async () => {
    const model = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [8, 8, 3] }), tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed: 3 }) })],
    });
    const rr = lcg(12);
    const src = { images: Float32Array.from({ length: 6 * 8 * 8 * 3 }, () => rr()), labels: Int32Array.from([0, 1, 2, 3, 0, 1]), height: 8, width: 8, channels: 3 };
    const res = sensitivityTables(model, src, { qMax: 20, batchSize: 4 });
    expect(Math.max(...res.luma)).toBeCloseTo(20, 5);
    const { y, cb, cr } = res.sensitivity;
    res.luma.forEach((q, i) => expect(q * y[i] * res.scale).toBeCloseTo(1, 6));
    res.chroma!.forEach((q, i) => expect((q * res.scale * (cb![i] + cr![i])) / 2).toBeCloseTo(1, 6));
    await assertNoTensorLeak(() => {
      sensitivityTables(model, src, { batchSize: 4 });
    }, { label: 'sensitivityTables' });
  });

  it('rejects bad arguments and classifiers that ignore their input', () => {
    const images = tf.tensor4d(data, [n, h, w, 1]);
    expect(() => sensitivityTables(linear, { images })).toThrow(/labels are required/);
    expect(() => sensitivityTables(linear, { images, labels }, { qMax: 0 })).toThrow(/qMax must be a finite number > 0, got 0/);
    expect(() => sensitivityTables(linear, { images, labels }, { batchSize: 0 })).toThrow(/batchSize must be a positive integer, got 0/);
    expect(() => sensitivityTables(linear, { images, labels: [0, 1] })).toThrow(/2 labels for 5 images/);
    expect(() => sensitivityTables(linear, { images: tf.zeros([2, 8, 8, 2]) as tf.Tensor4D, labels: [0, 1] })).toThrow(/1 or 3 channels, got 2/);
    // Logits that depend only on the mean pixel: every AC sensitivity is 0, which cannot be inverted.
    const dcOnly = (x: tf.Tensor4D) => tf.stack([tf.mean(x, [1, 2, 3]), tf.neg(tf.mean(x, [1, 2, 3]))], 1) as tf.Tensor2D;
    expect(() => sensitivityTables(dcOnly, { images, labels: [0, 1, 0, 1, 0] })).toThrow(/sensitivity y\[\d+\] is 0; cannot invert/);
    images.dispose();
  });
});

describe('absolute-average initialisation', () => {
  it('Q = 2 E|C| / sqrt(2^(b-1)) per coefficient, chroma pooling Cb and Cr (float64 check)', async () => {
    const [n, h, w] = [3, 8, 16];
    const r = lcg(21);
    const data = Float32Array.from({ length: n * h * w * 3 }, () => r());
    const res = absAverageTables({ images: tf.tensor4d(data, [n, h, w, 3]) }, { batchSize: 2 });
    const sum = [new Array(64).fill(0), new Array(64).fill(0)];
    let blocks = 0;
    for (let b = 0; b < n; b++) {
      const [Y, Cb, Cr] = planes(data, b, h, w, 3);
      for (const blk of planeDct(Y, h, w)) {
        blk.forEach((v, i) => (sum[0][i] += Math.abs(v)));
        blocks++;
      }
      for (const p of [Cb, Cr]) for (const blk of planeDct(p, h, w)) blk.forEach((v, i) => (sum[1][i] += Math.abs(v)));
    }
    const step = 2 / Math.sqrt(128);
    res.luma.forEach((q, i) => expect(q).toBeCloseTo((sum[0][i] / blocks) * step, 3));
    res.chroma!.forEach((q, i) => expect(q).toBeCloseTo((sum[1][i] / (2 * blocks)) * step, 3));
    // b = 11 only changes the divisor.
    const res11 = absAverageTables({ images: tf.tensor4d(data, [n, h, w, 3]) }, { bits: 11 });
    res11.luma.forEach((q, i) => expect(q).toBeCloseTo((res.luma[i] * Math.sqrt(128)) / Math.sqrt(1024), 4));
    await assertNoTensorLeak(() => {
      absAverageTables({ images: data, height: h, width: w, channels: 3 }, { batchSize: 2 });
    }, { label: 'absAverageTables' });
    expect(() => absAverageTables({ images: data, height: h, width: w, channels: 3 }, { bits: 1 })).toThrow(/bits must be an integer in 2..24/);
    expect(() => absAverageTables({ images: data.subarray(1), height: h, width: w, channels: 3 })).toThrow(/not a multiple of 384/);
  });
});

// Feature-squeezing layers: exact against plain-JS references (numpy's rint, scipy's median_filter
// conventions), their gradients in both modes, serialisation, errors and leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { modelFromMemory, modelToMemory } from '../../src/io/model-io.ts';
import { BitDepthReduction, MedianSmoothing, medianFilter, SOFT_STAIRCASE_STEEPNESS } from '../../src/layers/squeeze.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

/** numpy's rint on float32: round half to even. */
function rint(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Symmetric ("reflect" in scipy) index into [0, n). */
function reflect(i: number, n: number): number {
  let j = i;
  while (j < 0 || j >= n) j = j < 0 ? -j - 1 : 2 * n - j - 1;
  return j;
}

/**
 * Plain-JS k x k median filter (scipy.ndimage.median_filter(size=k, mode='reflect') per channel): the
 * value and, for each output, the source pixel index the median came from (the first window position
 * holding that rank, in window order, for distinct values it is unique).
 */
function medianRef(x: Float32Array, [n, h, w, c]: number[], k: number): { value: Float32Array; source: Int32Array } {
  const value = new Float32Array(x.length);
  const source = new Int32Array(x.length);
  const before = Math.floor(k / 2);
  const rank = Math.floor((k * k) / 2);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let ch = 0; ch < c; ch++) {
          const win: { v: number; at: number }[] = [];
          for (let dy = 0; dy < k; dy++)
            for (let dx = 0; dx < k; dx++) {
              const at = ((b * h + reflect(i + dy - before, h)) * w + reflect(j + dx - before, w)) * c + ch;
              win.push({ v: x[at], at });
            }
          const sorted = [...win].sort((p, q) => p.v - q.v);
          const o = ((b * h + i) * w + j) * c + ch;
          value[o] = sorted[rank].v;
          source[o] = sorted[rank].at;
        }
  return { value, source };
}

/** Distinct pixel values in (0,1): a seeded permutation of evenly spaced levels. */
function distinctPixels(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (i + 0.5) / count;
  let s = seed >>> 0 || 1;
  for (let i = count - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const inputGrad = (f: (x: tf.Tensor4D) => tf.Tensor, x: tf.Tensor4D, w: tf.Tensor): Float32Array =>
  tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor4D), w)))(x).dataSync() as Float32Array);

describe('BitDepthReduction', () => {
  it('is rint(x (2^b - 1)) / (2^b - 1) on float32 pixels, bit for bit, for every bit depth (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 60 }), (bits, px) => {
        const layer = new BitDepthReduction({ bits });
        const x = tf.tensor4d(px, [1, 1, px.length, 1]);
        const got = tf.tidy(() => (layer.apply(x) as tf.Tensor).dataSync());
        const L = 2 ** bits - 1;
        const want = px.map((v) => Math.fround(rint(Math.fround(Math.fround(v) * L)) / L));
        x.dispose();
        expect(Array.from(got)).toEqual(want);
        // At most 2^bits levels, each within half a level of its input.
        expect(new Set(got).size).toBeLessThanOrEqual(L + 1);
        got.forEach((g, i) => expect(Math.abs(g - px[i])).toBeLessThanOrEqual(0.5 / L + 1e-6));
      }),
      { numRuns: 60 },
    );
  });

  it('rounds halves to even as numpy does (ART), and squeezing twice changes nothing', () => {
    // 1 bit: 0.5 is the half between the two levels 0 and 1 and goes to 0; 3 bits: 0.5*7 = 3.5 -> 4.
    const layer1 = new BitDepthReduction({ bits: 1 });
    const layer3 = new BitDepthReduction({ bits: 3 });
    const x = tf.tensor4d([0.5, 0.49, 0.51, 0, 1], [1, 1, 5, 1]);
    expect(Array.from(tf.tidy(() => (layer1.apply(x) as tf.Tensor).dataSync()))).toEqual([0, 0, 1, 0, 1]);
    expect(Array.from(tf.tidy(() => (layer3.apply(x) as tf.Tensor).dataSync()))).toEqual([4 / 7, 3 / 7, 4 / 7, 0, 1].map(Math.fround));
    const r = tf.randomUniform([2, 5, 5, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const once = tf.tidy(() => (layer3.apply(r) as tf.Tensor).dataSync());
    const twice = tf.tidy(() => (layer3.apply(layer3.apply(r) as tf.Tensor) as tf.Tensor).dataSync());
    expect(Array.from(twice)).toEqual(Array.from(once));
    tf.dispose([x, r]);
  });

  it('hard mode has a zero input gradient; bpda-identity keeps the forward and passes dy through unchanged', () => {
    const layer = new BitDepthReduction({ bits: 4 });
    const x = tf.randomUniform([2, 4, 4, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 2);
    const f = (v: tf.Tensor4D) => layer.apply(v) as tf.Tensor;
    const hardValue = tf.tidy(() => f(x).dataSync());
    expect(Array.from(inputGrad(f, x, w)).every((g) => g === 0)).toBe(true);
    layer.mode = 'bpda-identity';
    expect(Array.from(tf.tidy(() => f(x).dataSync()))).toEqual(Array.from(hardValue));
    expect(Array.from(inputGrad(f, x, w))).toEqual(Array.from(w.dataSync()));
    tf.dispose([x, w]);
  });
});

describe('BitDepthReduction bpda-soft', () => {
  it("keeps the forward and takes the sigmoid staircase's slope T s (1 - s) backward, largest at the rounding thresholds", () => {
    const layer = new BitDepthReduction({ bits: 2, mode: 'bpda-soft' });
    const hard = new BitDepthReduction({ bits: 2 });
    // Levels 0, 1/3, 2/3, 1: thresholds at 1/6, 1/2, 5/6.
    const px = [0, 1 / 6, 0.25, 1 / 3, 0.5, 0.9];
    const x = tf.tensor4d(px, [1, 1, 6, 1]);
    const w = tf.tensor4d([1, 2, -1, 3, 0.5, 1], [1, 1, 6, 1]);
    expect(Array.from(tf.tidy(() => (layer.apply(x) as tf.Tensor).dataSync()))).toEqual(Array.from(tf.tidy(() => (hard.apply(x) as tf.Tensor).dataSync())));
    const g = inputGrad((v) => layer.apply(v) as tf.Tensor, x, w);
    const T = SOFT_STAIRCASE_STEEPNESS;
    const want = px.map((p, i) => {
      const u = Math.fround(p) * 3;
      const s = 1 / (1 + Math.exp(-T * (u - Math.floor(u) - 0.5)));
      return w.dataSync()[i] * T * s * (1 - s);
    });
    g.forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
    // At a threshold the slope is T/4; on a level about 0.07.
    expect(g[1] / 2).toBeCloseTo(T / 4, 3);
    expect(Math.abs(g[0])).toBeLessThan(0.07);
    tf.dispose([x, w]);
  });
});

describe('MedianSmoothing', () => {
  it("matches scipy.ndimage.median_filter(size=k, mode='reflect') on a worked example (upper median for even k)", () => {
    // Expected values computed once with scipy 1.x on this array (float32).
    const a = [0.1, 0.9, 0.3, 0.5, 0.7, 0.2, 0.8, 0.0, 0.4, 0.6, 1.0, 0.05];
    const x = tf.tensor4d(a, [1, 3, 4, 1]);
    const k2 = [0.1, 0.9, 0.9, 0.5, 0.7, 0.7, 0.8, 0.5, 0.7, 0.6, 0.8, 0.8];
    const k3 = [0.2, 0.3, 0.5, 0.5, 0.4, 0.6, 0.5, 0.3, 0.4, 0.6, 0.6, 0.05];
    expect(Array.from(tf.tidy(() => medianFilter(x, 2).dataSync()))).toEqual(k2.map(Math.fround));
    expect(Array.from(tf.tidy(() => medianFilter(x, 3).dataSync()))).toEqual(k3.map(Math.fround));
    x.dispose();
  });

  it('equals the plain-JS reference filter for every window, shape and channel count (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 3, max: 7 }),
        fc.integer({ min: 3, max: 7 }),
        fc.constantFrom(1, 3),
        fc.integer({ min: 1, max: 1 << 30 }),
        (k, n, h, w, c, seed) => {
          const shape = [n, h, w, c];
          const px = tf.randomUniform(shape, 0, 1, 'float32', seed);
          const data = px.dataSync() as Float32Array;
          const layer = new MedianSmoothing({ window: k });
          const got = tf.tidy(() => (layer.apply(px) as tf.Tensor).dataSync());
          px.dispose();
          expect(Array.from(got)).toEqual(Array.from(medianRef(data, shape, k).value));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("hard mode's gradient sends each output's dy to the one pixel its median came from; bpda-identity passes dy through (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 3, max: 6 }), fc.integer({ min: 3, max: 6 }), fc.constantFrom(1, 3), fc.integer({ min: 1, max: 1 << 30 }), (k, h, w, c, seed) => {
        const shape = [2, h, w, c];
        const data = distinctPixels(2 * h * w * c, seed);
        const x = tf.tensor4d(data, shape as [number, number, number, number]);
        const wt = tf.randomNormal(shape, 0, 1, 'float32', seed);
        const wData = wt.dataSync();
        const layer = new MedianSmoothing({ window: k });
        const f = (v: tf.Tensor4D) => layer.apply(v) as tf.Tensor;
        const { source } = medianRef(data, shape, k);
        const want = new Float32Array(data.length);
        // Same summation order as nothing in particular: compare with a tolerance for float32 sums.
        source.forEach((s, o) => (want[s] += wData[o]));
        const got = inputGrad(f, x, wt);
        got.forEach((g, i) => expect(Math.abs(g - want[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]))));
        layer.mode = 'bpda-identity';
        expect(Array.from(inputGrad(f, x, wt))).toEqual(Array.from(wData));
        tf.dispose([x, wt]);
      }),
      { numRuns: 25 },
    );
  });

  it('leaves a constant image unchanged and removes an isolated outlier (3x3)', () => {
    const flat = tf.fill([1, 5, 5, 3], 0.25) as tf.Tensor4D;
    expect(Array.from(tf.tidy(() => medianFilter(flat, 3).dataSync())).every((v) => v === 0.25)).toBe(true);
    const spike = tf.tidy(() => tf.add(flat, tf.scatterND([[0, 2, 2, 1]], [0.75], [1, 5, 5, 3]))) as tf.Tensor4D;
    expect(Array.from(tf.tidy(() => medianFilter(spike, 3).dataSync())).every((v) => v === 0.25)).toBe(true);
    tf.dispose([flat, spike]);
  });
});

describe('squeezing layers: serialisation, errors, leaks', () => {
  it('round-trip through model JSON with their settings and mode', async () => {
    const input = tf.input({ shape: [6, 6, 3] });
    const out = new MedianSmoothing({ window: 2, mode: 'bpda-identity' }).apply(new BitDepthReduction({ bits: 3 }).apply(input)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const copy = await modelFromMemory(await modelToMemory(model));
    expect(copy.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'BitDepthReduction', 'MedianSmoothing']);
    expect((copy.layers[1] as BitDepthReduction).bits).toBe(3);
    expect((copy.layers[2] as MedianSmoothing).window).toBe(2);
    expect((copy.layers[2] as MedianSmoothing).mode).toBe('bpda-identity');
    const x = tf.randomUniform([2, 6, 6, 3], 0, 1, 'float32', 5);
    const a = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
    const b = tf.tidy(() => (copy.predict(x) as tf.Tensor).dataSync());
    expect(Array.from(b)).toEqual(Array.from(a));
    tf.dispose(x);
    model.dispose();
    copy.dispose();
  });

  it('refuse bad settings naming the argument', () => {
    expect(() => new BitDepthReduction({ bits: 0 })).toThrow('BitDepthReduction: bits must be an integer in 1..8, got 0');
    expect(() => new BitDepthReduction({ bits: 2.5 })).toThrow(/bits must be an integer in 1\.\.8, got 2\.5/);
    expect(() => new BitDepthReduction({ bits: 9 })).toThrow(/got 9/);
    expect(() => new MedianSmoothing({ window: 1 })).toThrow('MedianSmoothing: window must be an integer in 2..5, got 1');
    expect(() => new MedianSmoothing({ window: 6 })).toThrow(/got 6/);
    expect(() => new BitDepthReduction({ bits: 4, mode: 'soft' as never })).toThrow('BitDepthReduction: mode must be one of hard, bpda-identity, bpda-soft, got "soft"');
    const m = new MedianSmoothing({ window: 3 });
    expect(() => (m.mode = 'soft' as never)).toThrow(/MedianSmoothing: mode must be one of/);
    expect(() => new MedianSmoothing({ window: 5 }).apply(tf.input({ shape: [2, 8, 1] }))).toThrow('MedianSmoothing: height 2 is too small for a 5x5 window');
    expect(() => new BitDepthReduction({ bits: 4 }).apply(tf.input({ shape: [8, 1] }))).toThrow(/input must be \[batch, height, width, channels\]/);
  });

  it('leak nothing over repeated forward and gradient steps in both modes', async () => {
    const bits = new BitDepthReduction({ bits: 5 });
    const med = new MedianSmoothing({ window: 3 });
    const x = tf.randomUniform([2, 6, 6, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
    const w = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 7);
    for (const mode of ['hard', 'bpda-identity', 'bpda-soft'] as const) {
      bits.mode = mode;
      med.mode = mode;
      await assertNoTensorLeak(() => {
        inputGrad((v) => med.apply(bits.apply(v)) as tf.Tensor, x, w);
        return tf.tidy(() => med.apply(bits.apply(x) as tf.Tensor) as tf.Tensor);
      }, { label: `squeeze ${mode}` });
    }
    tf.dispose([x, w]);
  });
});

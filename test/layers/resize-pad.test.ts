// Random resizing and padding: the per-axis weights are TensorFlow's own resize kernels (legacy nearest,
// half-pixel bilinear); the layer equals resize -> pad at the drawn offset -> resize back, built from
// tf.image ops per image; closed forms (identity, 2x2 average, every other pixel); its gradient is the
// transposed operator; draws are seeded, in range and reproducible; serialisation, errors, leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { modelFromMemory, modelToMemory } from '../../src/io/model-io.ts';
import { RandomResizePad, resizePad, resizeWeights, type ResizeInterpolation } from '../../src/layers/resize-pad.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const linf = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const images = (n: number, s: number, c = 3, seed = 1) => tf.randomUniform([n, s, s, c], 0, 1, 'float32', seed) as tf.Tensor4D;

/** TensorFlow's own resize of [N,H,W,C] to size x size: legacy nearest (TF1's, the reference's) or half-pixel bilinear. */
const tfResize = (x: tf.Tensor4D, size: number, how: ResizeInterpolation) =>
  how === 'nearest' ? tf.image.resizeNearestNeighbor(x, [size, size], false, false) : tf.image.resizeBilinear(x, [size, size], false, true);

/** The transform of image i of `x` by tf.image ops: resize to r, pad with `fill` at (top, left) to the canvas, resize to s. */
function reference(x: tf.Tensor4D, i: number, r: number, top: number, left: number, canvas: number, how: ResizeInterpolation, fill: number): tf.Tensor4D {
  return tf.tidy(() => {
    const s = x.shape[1];
    const one = x.slice([i, 0, 0, 0], [1, -1, -1, -1]);
    const small = tfResize(one, r, how);
    const padded = tf.pad(small, [[0, 0], [top, canvas - r - top], [left, canvas - r - left], [0, 0]], fill);
    return canvas === s ? padded : tfResize(padded, s, how);
  });
}

/** Apply one axis's weights to both axes of a single-channel image (row-major, from x from). */
function applyWeights(img: Float32Array, from: number, to: number, how: ResizeInterpolation): Float32Array {
  const w = resizeWeights(from, to, how);
  const out = new Float32Array(to * to);
  for (let i = 0; i < to; i++) for (let j = 0; j < to; j++) for (const [a, wa] of w[i]) for (const [b, wb] of w[j]) out[i * to + j] += wa * wb * img[a * from + b];
  return out;
}

describe('resizeWeights', () => {
  it('are TensorFlow\'s resize kernels (legacy nearest, half-pixel bilinear), rows summing to 1, down and up', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 24 }), fc.constantFrom<ResizeInterpolation>('nearest', 'bilinear'), fc.integer({ min: 0, max: 1000 }), (from, to, how, seed) => {
        const w = resizeWeights(from, to, how);
        expect(w).toHaveLength(to);
        for (const row of w) {
          expect(row.reduce((t, [, v]) => t + v, 0)).toBeCloseTo(1, 12);
          for (const [a, v] of row) {
            expect(a >= 0 && a < from).toBe(true);
            expect(v).toBeGreaterThan(0);
          }
        }
        const x = images(1, from, 1, seed);
        const want = tfResize(x, to, how);
        const got = applyWeights(x.dataSync() as Float32Array, from, to, how);
        const err = Math.max(...Array.from(want.dataSync(), (v, k) => Math.abs(v - got[k])));
        tf.dispose([x, want]);
        expect(err).toBeLessThan(1e-5);
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});

describe('RandomResizePad', () => {
  const layerOf = (args: ConstructorParameters<typeof RandomResizePad>[0], s: number, c = 3) => {
    const l = new RandomResizePad(args);
    l.build([null, s, s, c]);
    return l;
  };

  it('is resize to the drawn side, padding at the drawn offset, resize back, per image (tf.image reference), for any sizes, resampling and fill', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 16 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom<ResizeInterpolation>('nearest', 'bilinear'),
        fc.constantFrom(0, 0.5, 1),
        fc.constantFrom(1, 3),
        fc.integer({ min: 0, max: 1 << 20 }),
        (s, lo, span, how, fill, c, seed) => {
          const layer = layerOf({ minSize: lo, maxSize: lo + span, interpolation: how, fill, seed }, s, c);
          const x = images(3, s, c, seed);
          const out = layer.apply(x) as tf.Tensor4D;
          const d = layer.lastDraws();
          for (let i = 0; i < 3; i++) {
            expect(d.sizes[i] >= lo && d.sizes[i] <= lo + span).toBe(true);
            expect(d.tops[i] >= 0 && d.tops[i] + d.sizes[i] <= lo + span).toBe(true);
            expect(d.lefts[i] >= 0 && d.lefts[i] + d.sizes[i] <= lo + span).toBe(true);
            const want = reference(x, i, d.sizes[i], d.tops[i], d.lefts[i], lo + span, how, fill);
            const got = out.slice([i, 0, 0, 0], [1, -1, -1, -1]);
            expect(linf(got, want)).toBeLessThan(1e-5);
            tf.dispose([want, got]);
          }
          tf.dispose([x, out]);
        },
      ),
      { numRuns: 40, seed: 11 },
    );
  });

  it('closed forms: one size equal to the input is the identity; halving is every other pixel (nearest) or the 2x2 mean (bilinear), the rest is fill', () => {
    const x = images(4, 8);
    const same = layerOf({ minSize: 8, maxSize: 8, seed: 3 }, 8);
    const y = same.apply(x) as tf.Tensor;
    expect(linf(y, x)).toBe(0);
    for (const how of ['nearest', 'bilinear'] as const) {
      const layer = layerOf({ minSize: 4, maxSize: 8, interpolation: how, fill: 0.25, seed: 5 }, 8);
      const many = images(24, 8, 3, 9);
      const out = layer.apply(many) as tf.Tensor4D;
      const d = layer.lastDraws();
      const halved = Array.from(d.sizes).flatMap((r, i) => (r === 4 ? [i] : []));
      expect(halved.length).toBeGreaterThan(0);
      for (const i of halved) {
        const img = many.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        const small = how === 'bilinear' ? tf.avgPool(img, 2, 2, 'valid') : tf.stridedSlice(img, [0, 0, 0, 0], [1, 8, 8, 3], [1, 2, 2, 1]);
        const got = out.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        const region = got.slice([0, d.tops[i], d.lefts[i], 0], [1, 4, 4, 3]);
        expect(linf(region, small)).toBeLessThan(1e-6);
        // Outside the placed image: the fill, exactly.
        const mask = tf.pad(tf.ones([1, 4, 4, 3]), [[0, 0], [d.tops[i], 4 - d.tops[i]], [d.lefts[i], 4 - d.lefts[i]], [0, 0]]);
        const outside = tf.tidy(() => tf.max(tf.abs(tf.mul(tf.sub(got, 0.25), tf.sub(1, mask)))).dataSync()[0]);
        expect(outside).toBe(0);
        tf.dispose([img, small, got, region, mask]);
      }
      tf.dispose([many, out]);
    }
    tf.dispose([x, y]);
  });

  it('its input gradient is the transposed operator: <T x, v> = <x, T* v> on the same draws; nearest sends each output pixel to one input pixel', () => {
    for (const how of ['nearest', 'bilinear'] as const) {
      const layer = layerOf({ minSize: 5, maxSize: 11, interpolation: how, seed: 2 }, 8);
      const x = images(5, 8, 3, 4);
      const v = tf.randomNormal([5, 8, 8, 3], 0, 1, 'float32', 6);
      layer.reseed(40);
      const tx = layer.apply(x) as tf.Tensor;
      layer.reseed(40);
      const tStarV = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(layer.apply(z) as tf.Tensor, v)))(x);
      const lhs = tf.tidy(() => tf.sum(tf.mul(tx, v)).dataSync()[0]);
      const rhs = tf.tidy(() => tf.sum(tf.mul(x, tStarV)).dataSync()[0]);
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-3 * Math.max(1, Math.abs(lhs)));
      if (how === 'nearest') {
        layer.reseed(40);
        const counts = tf.grad((z: tf.Tensor) => tf.sum(layer.apply(z) as tf.Tensor))(x);
        const c = Array.from(counts.dataSync());
        expect(c.every((k) => Number.isInteger(k) && k >= 0)).toBe(true);
        // The counts add up to the output pixels that show the image (fill 0: an all-ones image shows as 1 there, 0 elsewhere).
        layer.reseed(40);
        const shown = tf.tidy(() => tf.sum(layer.apply(tf.ones(x.shape)) as tf.Tensor).dataSync()[0]);
        expect(c.reduce((t, k) => t + k, 0)).toBeCloseTo(shown, 3);
        counts.dispose();
      }
      tf.dispose([x, v, tx, tStarV]);
    }
  });

  it('draws from its seed: the same seed gives the same transforms, the next call new ones, reseed restarts; every side and offset occurs', () => {
    const x = images(64, 8);
    const a = layerOf({ minSize: 4, maxSize: 10, seed: 8 }, 8);
    const b = layerOf({ minSize: 4, maxSize: 10, seed: 8 }, 8);
    const [ya, yb] = [a.apply(x) as tf.Tensor, b.apply(x) as tf.Tensor];
    expect(linf(ya, yb)).toBe(0);
    const first = a.lastDraws();
    const again = a.apply(x) as tf.Tensor;
    expect(linf(again, ya)).toBeGreaterThan(0);
    a.reseed(8);
    const restarted = a.apply(x) as tf.Tensor;
    expect(linf(restarted, ya)).toBe(0);
    expect(a.lastDraws()).toEqual(first);
    expect(new Set(first.sizes)).toEqual(new Set([4, 5, 6, 7, 8, 9, 10]));
    expect(Math.max(...first.tops)).toBeGreaterThan(3);
    tf.dispose([x, ya, yb, again, restarted]);
  });

  it('saves and loads with its settings, and refuses bad arguments and inputs by name', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const layer = new RandomResizePad({ minSize: 6, maxSize: 9, interpolation: 'bilinear', fill: 0.5, seed: 3 });
    const m = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
    const back = await modelFromMemory(await modelToMemory(m));
    const l2 = back.layers.find((l) => l instanceof RandomResizePad) as RandomResizePad;
    expect([l2.minSize, l2.maxSize, l2.interpolation, l2.fill]).toEqual([6, 9, 'bilinear', 0.5]);
    const x = images(3, 8);
    const [y1, y2] = [m.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
    expect(linf(y1, y2)).toBe(0); // same seed, same first draws
    tf.dispose([x, y1, y2]);
    m.dispose();
    back.dispose();
    expect(() => new RandomResizePad({ minSize: 0, maxSize: 4 })).toThrow('RandomResizePad: minSize must be an integer >= 1 (pixels), got 0');
    expect(() => new RandomResizePad({ minSize: 6, maxSize: 5 })).toThrow('RandomResizePad: maxSize must be an integer >= minSize (6), got 5');
    expect(() => new RandomResizePad({ minSize: 4, maxSize: 5.5 })).toThrow(/maxSize must be an integer/);
    expect(() => new RandomResizePad({ minSize: 4, maxSize: 5, interpolation: 'cubic' as ResizeInterpolation })).toThrow('RandomResizePad: interpolation must be one of nearest, bilinear, got "cubic"');
    expect(() => new RandomResizePad({ minSize: 4, maxSize: 5, fill: 2 })).toThrow('RandomResizePad: fill must be a pixel value in [0, 1], got 2');
    expect(() => new RandomResizePad({ minSize: 4, maxSize: 5, seed: 0.5 })).toThrow('RandomResizePad: seed must be an integer, got 0.5');
    expect(() => layerOf({ minSize: 4, maxSize: 5 }, 8).reseed(NaN)).toThrow('RandomResizePad.reseed: seed must be an integer, got NaN');
    const wide = tf.input({ shape: [8, 10, 3] });
    expect(() => new RandomResizePad({ minSize: 4, maxSize: 5 }).apply(wide)).toThrow('RandomResizePad: input images must be square with a fixed side, got 8x10');
  });

  it('is resizePad of its own draws (the function DI-FGSM uses); resizePad refuses draws that do not fit the canvas, naming the image', () => {
    const x = images(3, 8, 2, 5);
    const layer = new RandomResizePad({ minSize: 8, maxSize: 11, seed: 4, fill: 0.5, interpolation: 'bilinear' });
    const out = layer.apply(x) as tf.Tensor4D;
    const again = resizePad(x, layer.lastDraws(), 11, 'bilinear', 0.5);
    expect(linf(out, again)).toBe(0);
    const bad = { sizes: Int32Array.from([8, 9, 8]), tops: Int32Array.from([0, 3, 0]), lefts: Int32Array.from([0, 0, 0]) };
    expect(() => resizePad(x, bad, 11, 'nearest', 0)).toThrow('resizePad: image 1: side 9 at (3, 0) does not fit the 11-pixel canvas');
    tf.dispose([x, out, again]);
  });

  it('leaks no tensor over repeated calls, forward and backward', async () => {
    const layer = layerOf({ minSize: 5, maxSize: 9, interpolation: 'bilinear', fill: 0.5 }, 8);
    const x = images(4, 8);
    await assertNoTensorLeak(() => {
      tf.dispose(layer.apply(x) as tf.Tensor);
      tf.dispose(tf.grad((z: tf.Tensor) => tf.sum(layer.apply(z) as tf.Tensor))(x));
    }, { label: 'RandomResizePad' });
    x.dispose();
  });
});

// Randomised JPEG layer: each image (or 8x8 block) is exactly JPEG at its drawn quality; draws are
// uniform over the range, fresh on every call and replayed by reseed; the BPDA backward is the
// identity (the rest of the pipeline is an orthogonal transform and its inverse); serialisation,
// errors and leaks.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jpegForward } from '../../src/jpeg/forward.ts';
import { findJpegModeLayers } from '../../src/jpeg/modes.ts';
import { RandomJpegLayer } from '../../src/jpeg/random.ts';
import { standardTables } from '../../src/jpeg/tables.ts';
import { modelFromMemory, modelToMemory } from '../../src/io/model-io.ts';
import { isRandomised, randomLayersOf, reseedRandomLayers } from '../../src/layers/random.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const jpegAt = (x: tf.Tensor4D, q: number, mode: 'hard' | 'soft' = 'hard') => jpegForward(x, [standardTables(q)], { mode });
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('RandomJpegLayer', () => {
  it('compresses each image at its own drawn quality, exactly as JPEG at that quality (RGB and grayscale, sizes not a multiple of 8)', () => {
    for (const [shape, seed] of [[[5, 12, 20, 3], 1], [[4, 9, 8, 1], 2]] as const) {
      const x = tf.randomUniform([...shape], 0, 1, 'float32', seed) as tf.Tensor4D;
      const layer = new RandomJpegLayer({ minQuality: 10, maxQuality: 90, seed });
      const out = layer.apply(x) as tf.Tensor4D;
      const qs = Array.from(layer.lastQualities());
      expect(qs).toHaveLength(shape[0]);
      for (const q of qs) expect(q >= 10 && q <= 90).toBe(true);
      expect(new Set(qs).size).toBeGreaterThan(1);
      qs.forEach((q, i) => {
        const xi = x.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        const want = jpegAt(xi, q);
        const got = out.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        expect(maxDiff(got, want)).toBeLessThan(1e-5);
        tf.dispose([xi, want, got]);
      });
      tf.dispose([x, out]);
    }
  });

  it('per block: every 8x8 block is JPEG at its own quality, in blockify order (image, block row, block column)', () => {
    const [n, h, w] = [2, 16, 24];
    const x = tf.randomUniform([n, h, w, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const layer = new RandomJpegLayer({ minQuality: 20, maxQuality: 80, per: 'block', seed: 5 });
    const out = layer.apply(x) as tf.Tensor4D;
    const qs = layer.lastQualities();
    expect(qs).toHaveLength(n * (h / 8) * (w / 8));
    // JPEG works block by block after a pointwise colour transform, so a block of the whole image at
    // quality q is the same block of the whole image compressed at q.
    const full = new Map<number, tf.Tensor4D>();
    for (const q of new Set(qs)) full.set(q, jpegAt(x, q));
    let b = 0;
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < h / 8; r++) {
        for (let c = 0; c < w / 8; c++, b++) {
          const at = [i, r * 8, c * 8, 0];
          const got = out.slice(at, [1, 8, 8, 3]);
          const want = full.get(qs[b])!.slice(at, [1, 8, 8, 3]);
          expect(maxDiff(got, want)).toBeLessThan(1e-5);
          tf.dispose([got, want]);
        }
      }
    }
    expect(new Set(qs).size).toBeGreaterThan(3);
    tf.dispose([x, out, ...full.values()]);
  });

  it('draws fresh qualities on every call, replays them after reseed, and draws every quality of the range about equally often', () => {
    const x = tf.zeros([1, 8, 8, 1]) as tf.Tensor4D;
    const layer = new RandomJpegLayer({ minQuality: 40, maxQuality: 49, per: 'block', seed: 7 });
    const big = tf.zeros([1000, 8, 8, 1]) as tf.Tensor4D;
    tf.dispose(layer.apply(big) as tf.Tensor);
    const first = layer.lastQualities();
    tf.dispose(layer.apply(big) as tf.Tensor);
    const second = layer.lastQualities();
    expect(Array.from(second)).not.toEqual(Array.from(first));
    layer.reseed(7);
    tf.dispose(layer.apply(big) as tf.Tensor);
    expect(Array.from(layer.lastQualities())).toEqual(Array.from(first));
    // A fresh layer with the same seed draws the same stream.
    const twin = new RandomJpegLayer({ minQuality: 40, maxQuality: 49, per: 'block', seed: 7 });
    tf.dispose(twin.apply(big) as tf.Tensor);
    expect(Array.from(twin.lastQualities())).toEqual(Array.from(first));
    // Uniform over the 10 qualities: chi-square over 2000 draws, 9 degrees of freedom (p = 0.001 at 27.9).
    const counts = new Array(10).fill(0);
    for (const q of [...first, ...second]) counts[q - 40]++;
    const expected = 200;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(chi2).toBeLessThan(27.9);
    tf.dispose([x, big]);
  });

  it('with one quality it is the fixed JPEG of that quality, in every mode', () => {
    const x = tf.randomUniform([3, 8, 16, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    for (const mode of ['hard', 'soft'] as const) {
      const layer = new RandomJpegLayer({ minQuality: 75, maxQuality: 75, mode });
      const out = layer.apply(x) as tf.Tensor4D;
      const want = jpegAt(x, 75, mode);
      expect(maxDiff(out, want)).toBeLessThan(1e-5);
      tf.dispose([out, want]);
    }
    x.dispose();
  });

  it('hard mode has a zero input gradient (rounding); bpda-identity passes the output gradient straight back to the input', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.constantFrom<'image' | 'block'>('image', 'block'), (seed, per) => {
        const x = tf.randomUniform([2, 8, 16, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
        const w = tf.randomNormal([2, 8, 16, 3], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
        const layer = new RandomJpegLayer({ minQuality: 30, maxQuality: 90, per, seed });
        const gradOf = () => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(layer.apply(v) as tf.Tensor, w)))(x);
        const hard = gradOf();
        expect(tf.tidy(() => tf.max(tf.abs(hard)).dataSync()[0])).toBe(0);
        layer.mode = 'bpda-identity';
        const straight = gradOf();
        // DCT and colour conversion are inverted exactly on the way back, so the backward pass is the identity.
        expect(maxDiff(straight, w)).toBeLessThan(1e-4);
        tf.dispose([x, w, hard, straight]);
      }),
      { numRuns: 6 },
    );
  });

  it('serialises its range, unit, mode and seed; a reloaded model draws the same qualities from the same seed', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const layer = new RandomJpegLayer({ minQuality: 30, maxQuality: 60, per: 'block', mode: 'bpda-soft', seed: 11, name: 'rj' });
    const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
    expect(layer.getConfig()).toMatchObject({ minQuality: 30, maxQuality: 60, per: 'block', mode: 'bpda-soft', seed: 11 });
    const copy = await modelFromMemory(await modelToMemory(model));
    const again = findJpegModeLayers(copy)[0] as unknown as RandomJpegLayer;
    expect(again).toBeInstanceOf(RandomJpegLayer);
    expect(again.mode).toBe('bpda-soft');
    const x = tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 12) as tf.Tensor4D;
    reseedRandomLayers(model, 99);
    reseedRandomLayers(copy, 99);
    const a = model.predict(x) as tf.Tensor;
    const b = copy.predict(x) as tf.Tensor;
    expect(Array.from(again.lastQualities())).toEqual(Array.from(layer.lastQualities()));
    expect(maxDiff(a, b)).toBe(0);
    expect(isRandomised(model)).toBe(true);
    expect(randomLayersOf(model)).toEqual([layer]);
    expect(isRandomised(tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] }))).toBe(false);
    expect(isRandomised((v: tf.Tensor4D) => v)).toBe(false);
    tf.dispose([x, a, b]);
    model.dispose();
    copy.dispose();
  });

  it('two randomised layers of one model never draw the same stream after a reseed', () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const l1 = new RandomJpegLayer({ minQuality: 1, maxQuality: 100 });
    const l2 = new RandomJpegLayer({ minQuality: 1, maxQuality: 100 });
    const model = tf.model({ inputs: input, outputs: l2.apply(l1.apply(input)) as tf.SymbolicTensor });
    reseedRandomLayers(model, 3);
    const x = tf.zeros([64, 8, 8, 1]);
    tf.dispose(model.predict(x));
    expect(Array.from(l1.lastQualities())).not.toEqual(Array.from(l2.lastQualities()));
    x.dispose();
  });

  it('rejects bad options, naming them', () => {
    expect(() => new RandomJpegLayer({ minQuality: 0, maxQuality: 50 })).toThrow(/minQuality/);
    expect(() => new RandomJpegLayer({ minQuality: 50, maxQuality: 101 })).toThrow(/maxQuality/);
    expect(() => new RandomJpegLayer({ minQuality: 60, maxQuality: 50 })).toThrow(/maxQuality \(50\) must be at least minQuality \(60\)/);
    expect(() => new RandomJpegLayer({ minQuality: 50, maxQuality: 60, per: 'pixel' as 'image' })).toThrow(/per must be one of image, block/);
    expect(() => new RandomJpegLayer({ minQuality: 50, maxQuality: 60, mode: 'round' as 'hard' })).toThrow(/mode must be one of/);
    expect(() => new RandomJpegLayer({ minQuality: 50, maxQuality: 60, seed: 0.5 })).toThrow(/seed must be an integer/);
    expect(() => new RandomJpegLayer({ minQuality: 50, maxQuality: 60 }).reseed(Number.NaN)).toThrow(/reseed: seed must be an integer/);
    const l = new RandomJpegLayer({ minQuality: 50, maxQuality: 60 });
    expect(() => l.apply(tf.input({ shape: [8, 8, 2] }))).toThrow(/1 \(grayscale\) or 3 \(RGB\) channels, got 2/);
  });

  it('leaks no tensor per call, in every mode and under a gradient', async () => {
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 13) as tf.Tensor4D;
    for (const mode of ['hard', 'soft', 'bpda-identity', 'bpda-soft'] as const) {
      const layer = new RandomJpegLayer({ minQuality: 20, maxQuality: 90, per: 'block', mode });
      await assertNoTensorLeak(() => layer.apply(x), { label: `RandomJpegLayer ${mode}` });
      await assertNoTensorLeak(() => tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(x), { label: `RandomJpegLayer ${mode} gradient` });
    }
    x.dispose();
  });
});

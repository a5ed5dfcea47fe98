import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { batches, epochOrder, numBatches, shiftFlip } from '../../src/data/batches.ts';
import { createRng } from '../../src/data/rng.ts';
import type { ImageDataset } from '../../src/data/types.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

function randomDs(n: number, h: number, w: number, c: number, seed: number, numClasses = n): ImageDataset {
  const rng = createRng(seed);
  const images = Float32Array.from({ length: n * h * w * c }, () => 0.01 + 0.99 * rng.next()); // never 0: zero fill is recognisable
  return { name: 't', images, labels: Int32Array.from({ length: n }, (_, i) => i % numClasses), height: h, width: w, channels: c, numClasses, classNames: Array.from({ length: numClasses }, (_, i) => `${i}`), source: 's' };
}

// Reference crop: pad with p zeros on every side, then cut the h x w window at (p+dy, p+dx).
function padCrop(src: Float32Array, h: number, w: number, c: number, p: number, dy: number, dx: number): Float32Array {
  const H = h + 2 * p;
  const W = w + 2 * p;
  const padded = new Float32Array(H * W * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) padded[((y + p) * W + x + p) * c + k] = src[(y * w + x) * c + k];
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = padded[((y + p + dy) * W + x + p + dx) * c + k];
  return out;
}

function mirror(src: Float32Array, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = src[(y * w + (w - 1 - x)) * c + k];
  return out;
}

async function collect(ds: ImageDataset, opts: Parameters<typeof batches>[1]): Promise<{ x: Float32Array; y: Int32Array; sizes: number[] }> {
  const xs: number[] = [];
  const ys: number[] = [];
  const sizes: number[] = [];
  for (const b of batches(ds, opts)) {
    xs.push(...(await b.x.data()));
    ys.push(...(await b.y.data()));
    sizes.push(b.x.shape[0]);
    expect(b.y.dtype).toBe('int32');
    tf.dispose([b.x, b.y]);
  }
  return { x: Float32Array.from(xs), y: Int32Array.from(ys), sizes };
}

describe('augmentation', () => {
  it('crop = the image shifted with zero fill (equals pad-then-crop), for every shift (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -4, max: 4 }), fc.integer({ min: -4, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (dy, dx, c, seed) => {
        const ds = randomDs(1, 9, 7, c, seed);
        const out = new Float32Array(ds.images.length);
        shiftFlip(ds.images, out, 9, 7, c, dy, dx, false);
        expect(out).toEqual(padCrop(ds.images, 9, 7, c, 4, dy, dx));
        // Exactly the exposed border is zero: (|dy|*w + |dx|*h - |dy*dx|) pixels.
        const zeros = Array.from({ length: 63 }, (_, p) => out[p * c] === 0).filter(Boolean).length;
        expect(zeros).toBe(Math.abs(dy) * 7 + Math.abs(dx) * 9 - Math.abs(dy * dx));
      }),
      { numRuns: 100 },
    );
  });

  it('flip = left-right mirror, and flipping twice is the identity', () => {
    const ds = randomDs(1, 5, 6, 3, 9);
    const once = new Float32Array(ds.images.length);
    shiftFlip(ds.images, once, 5, 6, 3, 0, 0, true);
    expect(once).toEqual(mirror(ds.images, 5, 6, 3));
    const twice = new Float32Array(ds.images.length);
    shiftFlip(once, twice, 5, 6, 3, 0, 0, true);
    expect(twice).toEqual(ds.images);
    // Shift then flip: mirror of the shifted image.
    const sf = new Float32Array(ds.images.length);
    shiftFlip(ds.images, sf, 5, 6, 3, 1, -2, true);
    expect(sf).toEqual(mirror(padCrop(ds.images, 5, 6, 3, 4, 1, -2), 5, 6, 3));
  });
});

describe('batches', () => {
  it('without shuffle or augmentation: the dataset in order, last batch short, dropLast drops it', async () => {
    const ds = randomDs(10, 4, 4, 1, 1);
    const r = await collect(ds, { batchSize: 4 });
    expect(r.sizes).toEqual([4, 4, 2]);
    expect(r.x).toEqual(ds.images);
    expect(r.y).toEqual(ds.labels);
    expect((await collect(ds, { batchSize: 4, dropLast: true })).sizes).toEqual([4, 4]);
    expect(numBatches(10, 4)).toBe(3);
    expect(numBatches(10, 4, true)).toBe(2);
  });

  it('shuffle visits every image once per epoch; same (seed, epoch) same order; new epoch new order', async () => {
    const ds = randomDs(50, 2, 2, 1, 2);
    const e0 = await collect(ds, { batchSize: 8, shuffle: true, seed: 3, epoch: 0 });
    expect([...e0.y].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e0.y).not.toEqual(ds.labels);
    // Image and label stay paired.
    e0.y.forEach((i, k) => expect(e0.x.subarray(4 * k, 4 * k + 4)).toEqual(ds.images.subarray(4 * i, 4 * i + 4)));
    expect((await collect(ds, { batchSize: 8, shuffle: true, seed: 3, epoch: 0 })).y).toEqual(e0.y);
    expect((await collect(ds, { batchSize: 8, shuffle: true, seed: 3, epoch: 1 })).y).not.toEqual(e0.y);
    expect((await collect(ds, { batchSize: 8, shuffle: true, seed: 4, epoch: 0 })).y).not.toEqual(e0.y);
    expect(Array.from(epochOrder(50, { shuffle: true, seed: 3, epoch: 0 }))).toEqual(Array.from(e0.y));
  });

  it('augmented images are each a pad-4 crop (optionally mirrored) of their source; reproducible; both flips occur', async () => {
    const ds = randomDs(24, 32, 32, 3, 5);
    const opts = { batchSize: 16, shuffle: true, seed: 8, epoch: 2, augment: { pad: 4, flip: true } };
    const r = await collect(ds, opts);
    expect((await collect(ds, opts)).x).toEqual(r.x);
    const per = 32 * 32 * 3;
    let flips = 0;
    let shifted = 0;
    r.y.forEach((i, k) => {
      const got = r.x.subarray(k * per, (k + 1) * per);
      const src = ds.images.subarray(i * per, (i + 1) * per);
      const gotMirror = mirror(got, 32, 32, 3);
      let match: [number, number, boolean] | null = null;
      for (let dy = -4; dy <= 4 && !match; dy++) {
        for (let dx = -4; dx <= 4 && !match; dx++) {
          const crop = padCrop(src, 32, 32, 3, 4, dy, dx);
          if (crop.every((v, j) => v === got[j])) match = [dy, dx, false];
          else if (crop.every((v, j) => v === gotMirror[j])) match = [dy, dx, true];
        }
      }
      expect(match).not.toBeNull();
      if (match![2]) flips++;
      if (match![0] !== 0 || match![1] !== 0) shifted++;
    });
    // Binomial(24, 1/2): P(outside 4..20) < 1e-3.
    expect(flips).toBeGreaterThanOrEqual(4);
    expect(flips).toBeLessThanOrEqual(20);
    expect(shifted).toBeGreaterThanOrEqual(20); // P(no shift) = 1/81 per image
  });

  it('creates no tensors beyond the two per batch it hands out (leak check over full epochs)', async () => {
    const ds = randomDs(37, 8, 8, 3, 6);
    let epoch = 0;
    await assertNoTensorLeak(
      () => {
        for (const b of batches(ds, { batchSize: 10, shuffle: true, seed: 1, epoch: epoch++, augment: { pad: 2, flip: true } })) tf.dispose([b.x, b.y]);
      },
      { reps: 3, label: 'batches epoch' },
    );
    // Each yielded batch holds exactly 2 live tensors.
    const before = tf.memory().numTensors;
    const it = batches(ds, { batchSize: 10 });
    const b = it.next().value!;
    expect(tf.memory().numTensors - before).toBe(2);
    tf.dispose([b.x, b.y]);
    it.return(undefined);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options before yielding anything', () => {
    const ds = randomDs(4, 8, 8, 1, 7);
    const before = tf.memory().numTensors;
    expect(() => batches(ds, { batchSize: 0 }).next()).toThrow(/batchSize: must be a positive integer, got 0/);
    expect(() => batches(ds, { batchSize: 2, augment: { pad: 8 } }).next()).toThrow(/augment\.pad: must be an integer in \[0, 7\], got 8/);
    expect(() => batches(ds, { batchSize: 2, epoch: -1 }).next()).toThrow(/epoch: must be an integer >= 0/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

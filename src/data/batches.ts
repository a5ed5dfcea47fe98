/**
 * Mini-batches for training and evaluation: seeded per-epoch shuffle and augmentation
 * (random crop with zero padding, horizontal flip), done on the CPU arrays so that the only
 * tensors created are the two a batch hands to its caller.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, deriveSeed, permutation } from './rng.ts';
import type { ImageDataset } from './types.ts';

/** Augmentation: `pad` > 0 enables random crops of the zero-padded image (CIFAR: 4); `flip` mirrors half the images. */
export interface AugmentOptions {
  pad?: number;
  flip?: boolean;
}

/** Options for `batches`. */
export interface BatchOptions {
  batchSize: number;
  /** Shuffle the order each epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Base seed for shuffling and augmentation (default 0). */
  seed?: number;
  /** Epoch number: each (seed, epoch) gives its own order and augmentations (default 0). */
  epoch?: number;
  /** Augmentation; false/undefined = none. */
  augment?: AugmentOptions | false;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** One batch: images [B,H,W,C] float32 in [0,1] and int32 labels [B]; the caller disposes both. */
export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
}

/**
 * Copy one HWC image into `dst`, shifted by (dy, dx) pixels with zeros where the shift exposes
 * nothing, and mirrored left-right when `flip`. This is exactly "pad by p, crop at (p+dy, p+dx)":
 * dst[y][x] = src[y+dy][x+dx] (0 outside), then flip.
 */
export function shiftFlip(
  src: Float32Array,
  dst: Float32Array,
  h: number,
  w: number,
  c: number,
  dy: number,
  dx: number,
  flip: boolean,
): void {
  for (let y = 0; y < h; y++) {
    const sy = y + dy;
    for (let x = 0; x < w; x++) {
      const sxUnflipped = x + dx;
      const o = (y * w + (flip ? w - 1 - x : x)) * c;
      if (sy < 0 || sy >= h || sxUnflipped < 0 || sxUnflipped >= w) {
        for (let k = 0; k < c; k++) dst[o + k] = 0;
      } else {
        const s = (sy * w + sxUnflipped) * c;
        for (let k = 0; k < c; k++) dst[o + k] = src[s + k];
      }
    }
  }
}

/** Number of batches `batches(ds, opts)` yields. */
export function numBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The image order of one epoch: identity, or a seeded permutation of (seed, epoch). */
export function epochOrder(n: number, opts: Pick<BatchOptions, 'shuffle' | 'seed' | 'epoch'>): Int32Array {
  if (!opts.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  return permutation(n, createRng(deriveSeed(opts.seed ?? 0, 0x73687566, opts.epoch ?? 0)));
}

/**
 * Yield the batches of one epoch. Options are checked before the first batch. Each batch holds
 * two new tensors and nothing else stays allocated; dispose them when done.
 */
export function* batches(ds: ImageDataset, opts: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: must be a positive integer, got ${batchSize}`);
  const epoch = opts.epoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`epoch: must be an integer >= 0, got ${epoch}`);
  const aug = opts.augment || {};
  const pad = aug.pad ?? 0;
  const flip = aug.flip ?? false;
  const { height: h, width: w, channels: c } = ds;
  if (!Number.isInteger(pad) || pad < 0 || pad >= Math.min(h, w)) {
    throw new Error(`augment.pad: must be an integer in [0, ${Math.min(h, w) - 1}], got ${pad}`);
  }
  const n = ds.labels.length;
  if (ds.images.length !== n * h * w * c) throw new Error(`${ds.name}: images and labels sizes disagree`);
  const order = epochOrder(n, opts);
  const augRng = createRng(deriveSeed(opts.seed ?? 0, 0x61756720, epoch));
  const per = h * w * c;
  const count = numBatches(n, batchSize, opts.dropLast);
  for (let b = 0; b < count; b++) {
    const start = b * batchSize;
    const end = Math.min(n, start + batchSize);
    const x = new Float32Array((end - start) * per);
    const y = new Int32Array(end - start);
    for (let k = 0; k < end - start; k++) {
      const i = order[start + k];
      y[k] = ds.labels[i];
      const src = ds.images.subarray(i * per, (i + 1) * per);
      const dst = x.subarray(k * per, (k + 1) * per);
      // Draw augmentation numbers for every image, in order, so they depend only on (seed, epoch, position).
      const dy = pad > 0 ? augRng.int(2 * pad + 1) - pad : 0;
      const dx = pad > 0 ? augRng.int(2 * pad + 1) - pad : 0;
      const f = flip ? augRng.next() < 0.5 : false;
      if (dy === 0 && dx === 0 && !f) dst.set(src);
      else shiftFlip(src, dst, h, w, c, dy, dx, f);
    }
    yield { x: tf.tensor4d(x, [end - start, h, w, c]), y: tf.tensor1d(y, 'int32') };
  }
}

/** Whole-dataset pixel transforms: bilinear resize and channel conversion. */
import * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from './types.ts';

/** Parse an image size option (one number = square) into [height, width], checking it. */
export function parseImageSize(size: number | [number, number], what = 'imageSize'): [number, number] {
  const hw: [number, number] = typeof size === 'number' ? [size, size] : size;
  if (hw.length !== 2 || !hw.every((v) => Number.isInteger(v) && v >= 1 && v <= 4096)) {
    throw new Error(`${what}: must be an integer 1..4096 or a pair of them, got ${JSON.stringify(size)}`);
  }
  return hw;
}

/**
 * Bilinear resize (half-pixel centres, as TF2 and PIL do) of one HWC float image to [h, w],
 * clipped to [0,1]; runs inside tf.tidy so no tensor outlives the call.
 */
export function resizeImage(pixels: Float32Array, srcH: number, srcW: number, channels: number, h: number, w: number): Float32Array {
  if (srcH === h && srcW === w) return pixels.slice();
  return tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, srcH, srcW, channels]);
    return tf.image.resizeBilinear(x, [h, w], false, true).clipByValue(0, 1).dataSync() as Float32Array;
  });
}

/** A copy of `ds` with every image bilinearly resized to [h, w] (done in chunks, leak-free). */
export function resizeDataset(ds: ImageDataset, h: number, w: number): ImageDataset {
  if (ds.height === h && ds.width === w) return ds;
  const n = ds.labels.length;
  const c = ds.channels;
  const inPer = ds.height * ds.width * c;
  const outPer = h * w * c;
  const out = new Float32Array(n * outPer);
  const chunk = Math.max(1, Math.floor(4_000_000 / Math.max(inPer, outPer)));
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const part = tf.tidy(() => {
      const x = tf.tensor4d(ds.images.subarray(s * inPer, e * inPer), [e - s, ds.height, ds.width, c]);
      return tf.image.resizeBilinear(x, [h, w], false, true).clipByValue(0, 1).dataSync() as Float32Array;
    });
    out.set(part, s * outPer);
  }
  return { ...ds, images: out, height: h, width: w, source: `${ds.source} (resized to ${h}x${w} bilinear)` };
}

/** ITU-R BT.601 luma weights, used for colour-to-grey. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** A copy of `ds` with `channels` channels: 1 -> 3 replicates grey, 3 -> 1 takes BT.601 luma. */
export function convertChannels(ds: ImageDataset, channels: 1 | 3): ImageDataset {
  if (ds.channels === channels) return ds;
  const n = ds.labels.length;
  const hw = ds.height * ds.width;
  let out: Float32Array;
  if (ds.channels === 1 && channels === 3) {
    out = new Float32Array(n * hw * 3);
    for (let i = 0; i < n * hw; i++) {
      const v = ds.images[i];
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else if (ds.channels === 3 && channels === 1) {
    out = new Float32Array(n * hw);
    for (let i = 0; i < n * hw; i++) {
      const v = LUMA[0] * ds.images[3 * i] + LUMA[1] * ds.images[3 * i + 1] + LUMA[2] * ds.images[3 * i + 2];
      out[i] = Math.min(1, Math.max(0, v));
    }
  } else {
    throw new Error(`channels: cannot convert ${ds.name} from ${ds.channels} to ${channels} channels`);
  }
  return { ...ds, images: out, channels, source: `${ds.source} (${channels === 1 ? 'grey' : 'grey as RGB'})` };
}

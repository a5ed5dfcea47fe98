/**
 * Colour conversion on the level-shifted 0-255 scale, as in the JPEG-DL reference: RGB' = RGB - 128,
 * Y = 0.299R' + 0.587G' + 0.114B', Cb = (B'-Y)/1.772 + 0.5, Cr = (R'-Y)/1.402 + 0.5. The +0.5
 * (a leftover of a 0-1 formula in the reference) is kept so quantisation bins match it exactly.
 */
import * as tf from '@tensorflow/tfjs';

/** Offset the reference adds to Cb and Cr (0-255 scale units). */
export const CHROMA_OFFSET = 0.5;

/** Rows: output channel (Y, Cb, Cr); columns: input (R, G, B). */
export const RGB_TO_YCBCR: readonly (readonly number[])[] = [
  [0.299, 0.587, 0.114],
  [-0.299 / 1.772, -0.587 / 1.772, 0.886 / 1.772],
  [0.701 / 1.402, -0.587 / 1.402, -0.114 / 1.402],
];

/** Rows: output (R, G, B); columns: input (Y, Cb-0.5, Cr-0.5). The reference's rounded constants. */
export const YCBCR_TO_RGB: readonly (readonly number[])[] = [
  [1, 0, 1.402],
  [1, -0.344136, -0.714136],
  [1, 1.772, 0],
];

const cache = new Map<string, { fwd: tf.Tensor2D; inv: tf.Tensor2D; off: tf.Tensor1D }>();

// Kept tensors, created once per backend: the layer runs every training and attack step.
function constants() {
  const key = tf.getBackend();
  let c = cache.get(key);
  if (!c || c.fwd.isDisposed) {
    const transpose = (m: readonly (readonly number[])[]) => m[0].map((_, j) => m.map((r) => r[j]));
    c = {
      // Pixels are row vectors [P,3], so multiply by the transposed matrices.
      fwd: tf.keep(tf.tensor2d(transpose(RGB_TO_YCBCR), [3, 3], 'float32')),
      inv: tf.keep(tf.tensor2d(transpose(YCBCR_TO_RGB), [3, 3], 'float32')),
      off: tf.keep(tf.tensor1d([0, CHROMA_OFFSET, CHROMA_OFFSET], 'float32')),
    };
    cache.set(key, c);
  }
  return c;
}

function applyMatrix(x: tf.Tensor4D, m: tf.Tensor2D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (c !== 3) throw new Error(`colour conversion: expected 3 channels, got ${c}`);
  return tf.matMul(x.reshape([n * h * w, 3]), m).reshape([n, h, w, 3]);
}

/** Level-shifted RGB' (0-255 scale minus 128), NHWC -> YCbCr with the reference's +0.5 chroma offset. */
export function rgbToYcbcr(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(applyMatrix(x, constants().fwd), constants().off));
}

/** Inverse of rgbToYcbcr (reference constants), giving level-shifted RGB' on the 0-255 scale. */
export function ycbcrToRgb(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => applyMatrix(tf.sub(x, constants().off), constants().inv));
}

/**
 * The JPEG-DL computation as a plain function: [0,1] NHWC images -> JPEG-DL reconstruction in [0,1]
 * (not clamped unless asked). Inside: x*255 - 128, RGB->YCbCr (+0.5 chroma offset, no
 * subsampling; grayscale = luma only), zero-pad to multiples of 8, 8x8 DCT, quantiser (one or
 * more rounds, each with its own tables), inverse DCT, YCbCr->RGB, +128, crop, /255.
 */
import * as tf from '@tensorflow/tfjs';
import { blockify, deblockify, type Tensor6D } from './blocks.ts';
import { rgbToYcbcr, ycbcrToRgb } from './colour.ts';
import { dct2, idct2 } from './dct.ts';
import { Q_MAX, Q_MIN, quantize, resolveQuantizer, type QuantizerOptions } from './quantize.ts';
import { checkTable } from './tables.ts';

/** One round's steps, as plain arrays (64, raster [u][v]) or [8,8]/[64] tensors (e.g. the layer's variables). */
export interface RoundTables {
  luma: number[] | tf.Tensor;
  /** Required for 3-channel input; ignored for 1 channel. Shared by Cb and Cr. */
  chroma?: number[] | tf.Tensor;
}

/** Options of jpegForward: the quantiser's, plus an optional clamp of the output to [0,1]. */
export interface JpegForwardOptions extends QuantizerOptions {
  /** Clamp the output to [0,1] (default false, as the reference). */
  clamp?: boolean;
}

function tableTensor(t: number[] | tf.Tensor, name: string): tf.Tensor {
  if (t instanceof tf.Tensor) {
    if (t.size !== 64) throw new Error(`${name}: expected 64 values (an 8x8 table), got shape [${t.shape.join(',')}]`);
    return t.reshape([8, 8]);
  }
  checkTable(t, name);
  return tf.tensor2d(t, [8, 8], 'float32');
}

/** Check the arguments of jpegForward and return the channel count (1 or 3). */
export function checkJpegInput(images: tf.Tensor, tables: RoundTables[], where = 'jpegForward'): number {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new Error(`${where}: images must be a 4-D NHWC tensor, got ${images instanceof tf.Tensor ? `rank ${images.rank}` : typeof images}`);
  }
  const c = images.shape[3];
  if (c !== 1 && c !== 3) throw new Error(`${where}: images must have 1 (grayscale) or 3 (RGB) channels, got ${c}`);
  if (!Array.isArray(tables) || tables.length < 1) throw new Error(`${where}: tables must be a non-empty array (one entry per round)`);
  tables.forEach((t, r) => {
    if (t == null || t.luma == null) throw new Error(`${where}: tables[${r}].luma is missing`);
    if (c === 3 && t.chroma == null) throw new Error(`${where}: tables[${r}].chroma is required for 3-channel input`);
  });
  return c;
}

/**
 * JPEG-DL forward pass on [0,1] NHWC images (C = 1 or 3), one quantiser round per entry of
 * `tables`. Steps are clamped to [1e-5, 255]. Output: same shape, [0,1] scale (may overshoot unless clamp).
 */
export function jpegForward(images: tf.Tensor4D, tables: RoundTables[], options: JpegForwardOptions = {}): tf.Tensor4D {
  const c = checkJpegInput(images, tables);
  return tf.tidy(() => {
    const steps = tables.map((t, r) => {
      const luma = tableTensor(t.luma, `tables[${r}].luma`);
      // Channel axis of the coefficients is [Y, Cb, Cr]; Cb and Cr share the chroma table.
      const chroma = c === 3 ? tableTensor(t.chroma!, `tables[${r}].chroma`) : undefined;
      return chroma ? tf.stack([luma, chroma, chroma]) : tf.expandDims(luma, 0);
    });
    return jpegForwardWithSteps(images, steps, options);
  });
}

/**
 * The same pass with each round's steps given as a tensor broadcastable to the coefficients
 * [N*Hb*Wb, C, 8, 8] (blocks in blockify order, channels [Y, Cb, Cr]), so every 8x8 block may have
 * its own tables (randomised JPEG). Steps are clamped to [1e-5, 255]; images [0,1] NHWC, C = 1 or 3.
 */
export function jpegForwardWithSteps(images: tf.Tensor4D, steps: tf.Tensor[], options: JpegForwardOptions = {}): tf.Tensor4D {
  if (!(images instanceof tf.Tensor) || images.rank !== 4 || (images.shape[3] !== 1 && images.shape[3] !== 3)) {
    throw new Error(`jpegForwardWithSteps: images must be a 4-D NHWC tensor with 1 or 3 channels, got ${images instanceof tf.Tensor ? `[${images.shape}]` : typeof images}`);
  }
  if (!Array.isArray(steps) || steps.length < 1) throw new Error('jpegForwardWithSteps: steps must be a non-empty array (one tensor per round)');
  const quant = resolveQuantizer(options, 'jpegForward');
  const clamp = options.clamp ?? false;
  const [, h, w, c] = images.shape;
  return tf.tidy(() => {
    const shifted = tf.sub(tf.mul(images, 255), 128) as tf.Tensor4D;
    const ycc = c === 3 ? rgbToYcbcr(shifted) : shifted;
    const blocks = dct2(blockify(ycc));
    // Quantise on [blocks, C, 8, 8] so the L-fold window tensors stay rank 5 (backends such as
    // WebGL and some gradients (Tile) stop at rank 6).
    let coeffs: tf.Tensor = tf.reshape(blocks, [-1, c, 8, 8]);
    steps.forEach((s, r) => {
      const last = s.shape.slice(-3).join();
      if (s.rank > 4 || last !== `${c},8,8` || (s.rank === 4 && s.shape[0] !== 1 && s.shape[0] !== coeffs.shape[0])) {
        throw new Error(`jpegForwardWithSteps: steps[${r}] must broadcast to [${coeffs.shape}], got [${s.shape}]`);
      }
      coeffs = quantize(coeffs, tf.clipByValue(s, Q_MIN, Q_MAX), quant);
    });
    const back = deblockify(idct2(tf.reshape(coeffs, blocks.shape)) as Tensor6D, h, w);
    const rgb = c === 3 ? ycbcrToRgb(back) : back;
    const out = tf.div(tf.add(rgb, 128), 255) as tf.Tensor4D;
    return clamp ? tf.clipByValue(out, 0, 1) : out;
  });
}

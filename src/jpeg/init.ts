/**
 * Initial quantisation tables: standard (IJG quality), sensitivity-based (JPEG-DL's CIFAR and
 * fine-grained recipe) and absolute-average (its ImageNet, LSQ-style recipe). All tables are
 * raster [u][v], on the 0-255 DCT scale of the layer.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../types.ts';
import { blockify, deblockify } from './blocks.ts';
import { rgbToYcbcr, ycbcrToRgb } from './colour.ts';
import { dct2, idct2 } from './dct.ts';
import { standardTables, type JpegTables } from './tables.ts';

export { standardTables };

/** Images to sample: tensors, or a dataset-like object with flat NHWC float32 pixels in [0,1]. */
export type ImageSource =
  | { images: tf.Tensor4D; labels?: tf.Tensor1D | Int32Array | number[] }
  | { images: Float32Array; labels?: Int32Array | ArrayLike<number>; height: number; width: number; channels: number };

interface BatchSpec {
  count: number;
  shape: [number, number, number];
  slice(start: number, n: number): { x: tf.Tensor4D; y?: tf.Tensor1D };
}

// A uniform view over both kinds of source; each slice is a fresh tensor the caller disposes.
function batchSpec(source: ImageSource, where: string, needLabels: boolean, maxImages?: number): BatchSpec {
  if (source == null || typeof source !== 'object' || source.images == null) throw new Error(`${where}: source must have images`);
  let count: number;
  let shape: [number, number, number];
  let getX: (s: number, n: number) => tf.Tensor4D;
  if (source.images instanceof tf.Tensor) {
    const imgs = source.images;
    if (imgs.rank !== 4) throw new Error(`${where}: images must be a 4-D NHWC tensor, got rank ${imgs.rank}`);
    count = imgs.shape[0];
    shape = [imgs.shape[1], imgs.shape[2], imgs.shape[3]];
    getX = (s, n) => tf.slice(imgs, [s, 0, 0, 0], [n, -1, -1, -1]);
  } else {
    const ds = source as Extract<ImageSource, { height: number }>;
    if (!(ds.images instanceof Float32Array)) throw new Error(`${where}: images must be a Tensor4D or a Float32Array`);
    for (const k of ['height', 'width', 'channels'] as const) {
      if (!Number.isInteger(ds[k]) || ds[k] < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${ds[k]}`);
    }
    const per = ds.height * ds.width * ds.channels;
    if (ds.images.length % per !== 0) throw new Error(`${where}: images length ${ds.images.length} is not a multiple of ${per} (H*W*C)`);
    count = ds.images.length / per;
    shape = [ds.height, ds.width, ds.channels];
    getX = (s, n) => tf.tensor4d(ds.images.subarray(s * per, (s + n) * per), [n, ds.height, ds.width, ds.channels]);
  }
  if (shape[2] !== 1 && shape[2] !== 3) throw new Error(`${where}: images must have 1 or 3 channels, got ${shape[2]}`);
  if (count < 1) throw new Error(`${where}: no images`);
  let labels: Int32Array | undefined;
  if (source.labels != null) {
    labels = source.labels instanceof tf.Tensor ? Int32Array.from(source.labels.dataSync()) : Int32Array.from(source.labels);
    if (labels.length !== count) throw new Error(`${where}: ${labels.length} labels for ${count} images`);
  } else if (needLabels) {
    throw new Error(`${where}: labels are required (the sensitivity is a gradient of the cross-entropy)`);
  }
  if (maxImages !== undefined) {
    if (!Number.isInteger(maxImages) || maxImages < 1) throw new Error(`${where}: maxImages must be a positive integer, got ${maxImages}`);
    count = Math.min(count, maxImages);
  }
  return {
    count,
    shape,
    slice: (s, n) => ({ x: getX(s, n), ...(labels ? { y: tf.tensor1d(labels.subarray(s, s + n), 'int32') } : {}) }),
  };
}

function checkBatchSize(b: number, where: string): void {
  if (!Number.isInteger(b) || b < 1) throw new Error(`${where}: batchSize must be a positive integer, got ${b}`);
}

// Level-shifted YCbCr DCT coefficients [n,Hb,Wb,C,8,8] of [0,1] images, as in the layer.
function coefficientsOf(x: tf.Tensor4D): tf.Tensor {
  const shifted = tf.sub(tf.mul(x, 255), 128) as tf.Tensor4D;
  return dct2(blockify(x.shape[3] === 3 ? rgbToYcbcr(shifted) : shifted));
}

/** Result of sensitivityTables. Sensitivities are per coefficient, raster [u][v]. */
export interface SensitivityResult extends JpegTables {
  sensitivity: { y: number[]; cb?: number[]; cr?: number[] };
  /** Images used. */
  images: number;
  /** Common divisor applied to 1/s_Y and 2/(s_Cb+s_Cr) so that max(luma) = qMax. */
  scale: number;
}

/**
 * Sensitivity initialisation: s[k] = (1/N) sum over blocks of (dCE/dC[k])^2 for a trained
 * classifier (logits, no JPEG layer) over N images; luma = 1/s_Y, chroma = 2/(s_Cb+s_Cr), both
 * divided by one factor so max(luma) = qMax (default 10). CE is summed (not averaged) over each
 * batch so every image counts once whatever the batch size.
 */
export function sensitivityTables(
  classifier: Classifier,
  source: ImageSource,
  { qMax = 10, batchSize = 32, maxImages }: { qMax?: number; batchSize?: number; maxImages?: number } = {},
): SensitivityResult {
  const where = 'sensitivityTables';
  if (typeof qMax !== 'number' || !Number.isFinite(qMax) || qMax <= 0) throw new Error(`${where}: qMax must be a finite number > 0, got ${qMax}`);
  checkBatchSize(batchSize, where);
  const spec = batchSpec(source, where, true, maxImages);
  const [h, w, c] = spec.shape;
  const logitsOf = asLogitsFn(classifier);
  const acc = new Float64Array(c * 64);
  for (let s = 0; s < spec.count; s += batchSize) {
    const n = Math.min(batchSize, spec.count - s);
    const { x, y } = spec.slice(s, n);
    const sq = tf.tidy(() => {
      const coeffs = coefficientsOf(x);
      const lossOf = (cf: tf.Tensor) => {
        const back = deblockify(idct2(cf) as tf.Tensor<tf.Rank.R6>, h, w);
        const img = tf.div(tf.add(c === 3 ? ycbcrToRgb(back) : back, 128), 255) as tf.Tensor4D;
        const logits = logitsOf(img);
        const onehot = tf.oneHot(y!, logits.shape[1]);
        return tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)))) as tf.Scalar;
      };
      const g = tf.grad(lossOf)(coeffs);
      return tf.sum(tf.square(g), [0, 1, 2]); // [C,8,8]
    });
    const vals = sq.dataSync();
    for (let k = 0; k < vals.length; k++) acc[k] += vals[k];
    tf.dispose(y ? [x, y, sq] : [x, sq]);
  }
  const sens = Array.from(acc, (v) => v / spec.count);
  const chan = (k: number) => sens.slice(k * 64, (k + 1) * 64);
  const sy = chan(0);
  const check = (arr: number[], name: string) =>
    arr.forEach((v, k) => {
      if (!(v > 0) || !Number.isFinite(v)) {
        throw new Error(`${where}: sensitivity ${name}[${k}] is ${v}; cannot invert it (does the classifier depend on its input?)`);
      }
    });
  check(sy, 'y');
  const invY = sy.map((v) => 1 / v);
  const scale = Math.max(...invY) / qMax;
  if (c === 1) return { luma: invY.map((v) => v / scale), sensitivity: { y: sy }, images: spec.count, scale };
  const cb = chan(1);
  const cr = chan(2);
  const invC = cb.map((v, k) => 2 / (v + cr[k]));
  check(cb.map((v, k) => v + cr[k]), 'cb+cr');
  return {
    luma: invY.map((v) => v / scale),
    chroma: invC.map((v) => v / scale),
    sensitivity: { y: sy, cb, cr },
    images: spec.count,
    scale,
  };
}

/** Result of absAverageTables: the tables and the mean |C| per coefficient (raster [u][v]). */
export interface AbsAverageResult extends JpegTables {
  absMean: { y: number[]; chroma?: number[] };
  images: number;
}

/**
 * Absolute-average (LSQ-style) initialisation: Q = 2 E|C| / sqrt(2^(b-1)) per coefficient, E over
 * all blocks of the sample; chroma pools Cb and Cr (they share a table). Default b = 8.
 */
export function absAverageTables(
  source: ImageSource,
  { bits = 8, batchSize = 64, maxImages }: { bits?: number; batchSize?: number; maxImages?: number } = {},
): AbsAverageResult {
  const where = 'absAverageTables';
  if (!Number.isInteger(bits) || bits < 2 || bits > 24) throw new Error(`${where}: bits must be an integer in 2..24, got ${bits}`);
  checkBatchSize(batchSize, where);
  const spec = batchSpec(source, where, false, maxImages);
  const c = spec.shape[2];
  const acc = new Float64Array(c * 64);
  let blocks = 0;
  for (let s = 0; s < spec.count; s += batchSize) {
    const n = Math.min(batchSize, spec.count - s);
    const { x, y } = spec.slice(s, n);
    const sums = tf.tidy(() => {
      const coeffs = coefficientsOf(x);
      const shp = coeffs.shape as number[];
      blocks += shp[0] * shp[1] * shp[2];
      return tf.sum(tf.abs(coeffs), [0, 1, 2]);
    });
    const vals = sums.dataSync();
    for (let k = 0; k < vals.length; k++) acc[k] += vals[k];
    tf.dispose(y ? [x, y, sums] : [x, sums]);
  }
  const step = 2 / Math.sqrt(2 ** (bits - 1));
  const y = Array.from(acc.subarray(0, 64), (v) => v / blocks);
  if (c === 1) return { luma: y.map((v) => v * step), absMean: { y }, images: spec.count };
  const chroma = Array.from({ length: 64 }, (_, k) => (acc[64 + k] + acc[128 + k]) / (2 * blocks));
  return { luma: y.map((v) => v * step), chroma: chroma.map((v) => v * step), absMean: { y, chroma }, images: spec.count };
}

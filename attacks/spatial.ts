/**
 * Spatial attack (Engstrom, Tran, Tsipras, Schmidt, Madry, ICML 2019; ART's SpatialTransformation,
 * Foolbox's SpatialAttack): the adversary may rotate and shift the image, not add noise. 'grid' tries
 * every transform of a grid (Engstrom et al.'s CIFAR grid: 31 rotations in ±30°, 5 x 5 shifts in ±3 px,
 * 775 transforms) and keeps, per image, the first misclassifying one (else the one of highest loss);
 * 'random' is their worst-of-k: k uniform draws per image.
 *
 * Why it is here: a JPEG layer quantises fixed 8x8 blocks, so its behaviour depends on where the
 * content falls on the block grid; a model can look robust to pixel noise and still turn on a shift
 * of a few pixels. No gradient is used, so masked gradients cannot hide anything from it.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import {
  randomTransform, resolveGrid, resolveResample, spatialGrid, transformImages,
  type ResampleOptions, type SpatialGridOptions, type SpatialTransform,
} from '../src/spatial/transform.ts';
import { attackObjective, attackSuccess, type LossName } from './loss.ts';
import { checkImages, checkInteger, checkKnownOptions, checkLabels, checkModelOutput } from './validate.ts';

/** Options of the spatial attack (the grid's extent also bounds the random draws). */
export interface SpatialOptions extends SpatialGridOptions, ResampleOptions {
  /** 'grid' (default): every grid transform; 'random': `samples` uniform draws per image (worst-of-k). */
  search?: 'grid' | 'random';
  /** Draws per image for 'random' (default 10, Engstrom et al.'s worst-of-10). */
  samples?: number;
  /** Objective that ranks transforms when none misclassifies: 'ce' (default) or 'margin'. */
  loss?: LossName;
  /** Seed of the random draws (default 0). */
  seed?: number;
  /** Index of images[0] in the evaluated set: image i's draws come from (seed, indexOffset + i). Default 0. */
  indexOffset?: number;
}

export const SPATIAL_OPTIONS = ['search', 'samples', 'loss', 'seed', 'indexOffset', 'maxRotation', 'rotations', 'maxTranslation', 'translations', 'fill', 'interpolation'] as const;

/** Result of spatialSearch: the chosen images, their transforms and whether each fooled the model. */
export interface SpatialResult {
  /** Transformed images [n,h,w,c] in [0,1] (the caller disposes). */
  adversarial: tf.Tensor4D;
  /** Per image the transform kept. */
  transforms: SpatialTransform[];
  /** Per image: the model misclassifies the kept transform. */
  success: boolean[];
  /** Model calls on the whole batch. */
  queries: number;
}

/** Check the options before any model call; returns them with defaults. */
export function resolveSpatialOptions(options: SpatialOptions = {}): Required<Omit<SpatialOptions, 'fill' | 'interpolation'>> & Required<ResampleOptions> {
  const attack = 'spatial';
  if (options === null || typeof options !== 'object') throw new Error(`${attack}: options must be an object`);
  checkKnownOptions(options, SPATIAL_OPTIONS, attack);
  const search = options.search ?? 'grid';
  if (search !== 'grid' && search !== 'random') throw new Error(`${attack}: search must be "grid" or "random", got ${String(search)}`);
  const samples = options.samples ?? 10;
  checkInteger(samples, `${attack}: samples`, 1);
  const loss = options.loss ?? 'ce';
  if (loss !== 'ce' && loss !== 'margin') throw new Error(`${attack}: loss must be "ce" or "margin", got ${String(loss)}`);
  const seed = options.seed ?? 0;
  checkInteger(seed, `${attack}: seed`, 0);
  const indexOffset = options.indexOffset ?? 0;
  checkInteger(indexOffset, `${attack}: indexOffset`, 0);
  return { search, samples, loss, seed, indexOffset, ...resolveGrid(options, attack), ...resolveResample(options, attack) };
}

/**
 * Search rotations and shifts for each image (pixels 0-1); per image the first misclassifying transform
 * is kept, else the transform of highest loss. Stops early once every image is fooled.
 */
export function spatialSearch(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SpatialOptions = {}): SpatialResult {
  const o = resolveSpatialOptions(options);
  const n = checkImages(images, 'spatial: images');
  const classes = checkModelOutput(model, images, 'spatial: model');
  checkLabels(labels, n, classes, 'spatial: labels');
  const fn = asLogitsFn(model);
  const resample = { fill: o.fill, interpolation: o.interpolation };
  const steps: (SpatialTransform | SpatialTransform[])[] = o.search === 'grid'
    ? spatialGrid(o)
    : Array.from({ length: o.samples }, (_, d) => Array.from({ length: n }, (_, i) => randomTransform(o.seed, o.indexOffset + i, d, o)));
  let best: tf.Tensor4D | null = null;
  const bestLoss = new Float64Array(n).fill(-Infinity);
  const success = new Array<boolean>(n).fill(false);
  const transforms: SpatialTransform[] = new Array(n);
  let queries = 0;
  for (const step of steps) {
    const xt = transformImages(images, step, resample);
    const [obj, succ] = tf.tidy(() => {
      const logits = fn(xt);
      return [attackObjective(logits, labels, { loss: o.loss }), attackSuccess(logits, labels)];
    });
    queries++;
    const [lv, sv] = [obj.dataSync(), succ.dataSync()];
    tf.dispose([obj, succ]);
    const take = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const s = sv[i] === 1;
      // A success beats any failure and then stays (so batching and early stops never change the pick); among failures the higher loss wins.
      if (!success[i] && (s || lv[i] > bestLoss[i])) {
        take[i] = 1;
        success[i] = s;
        bestLoss[i] = lv[i];
        transforms[i] = Array.isArray(step) ? step[i] : step;
      }
    }
    if (best === null) {
      best = xt;
    } else {
      const prev: tf.Tensor4D = best;
      best = tf.tidy(() => tf.where(tf.reshape(tf.tensor1d(take, 'bool'), [n, 1, 1, 1]), xt, prev) as tf.Tensor4D);
      tf.dispose([prev, xt]);
    }
    // Once every image is fooled nothing can change.
    if (success.every(Boolean)) break;
  }
  return { adversarial: best!, transforms, success, queries };
}

/** Spatial attack: per image a rotated and shifted copy [n,h,w,c] in [0,1] that the model misclassifies when the grid (or the draws) hold one. Caller disposes. */
export function spatial(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SpatialOptions = {}): tf.Tensor4D {
  return spatialSearch(model, images, labels, options).adversarial;
}

/**
 * Adversarial patches (Brown, Mané, Roy, Abadi & Gilmer 2017, "Adversarial Patch"; IBM ART's
 * AdversarialPatch): ONE square of free pixel values, pasted over every image at a random place,
 * fitted on a set of images and meant to fool the model on images it has never seen, wherever it lands.
 * Unlike an Lp perturbation it is not small: inside the square the attacker sets every pixel to any
 * value in [0,1]; what limits it is its size (side in pixels) and that it must work at any position.
 *
 * Fitting is expectation over transformation on the patch's position (Athalye et al. 2018; Brown et
 * al.'s location transform): signed-gradient ascent on the patch over minibatches of the fit images,
 * each image getting the patch at a fresh uniform position, the cross-entropy of each image clamped at
 * `beta` so images already fooled stop pulling (untargeted), or minus the target's cross-entropy
 * (targeted: Brown et al.'s "toaster"). The step shrinks by `stepDecay` after every pass and the patch
 * stays in the box [0,1]. Every random draw (start, order, positions) comes from one seeded mulberry32
 * stream (src/data/rng.ts), so a fit is reproducible and can be replayed on the host.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, permutation, type Rng } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { crossEntropyPerExample } from './loss.ts';
import { successRateOver } from './targets.ts';
import { checkImages, checkInteger, checkKnownOptions, checkLabels, checkModelOutput, checkPositive } from './validate.ts';

/** Options of an adversarial patch. */
export interface PatchOptions {
  /** Side of the square patch in pixels, 1 to the image's smaller side. */
  size: number;
  /** Targeted: the class every patched image should be sent to (default: untargeted). */
  target?: number;
  /** Passes over the fit images (default 10). */
  epochs?: number;
  /** Images per gradient step (default 32); also images per forward pass when scoring (at least 100). */
  batchSize?: number;
  /** Sign step of the first pass on the 0-1 pixel scale (default 0.05). */
  stepSize?: number;
  /** Factor applied to the step after every pass, in (0, 1] (default 0.8). */
  stepDecay?: number;
  /** Untargeted: cross-entropy clamp per image in nats (default 10): fooled images stop pulling. */
  beta?: number;
  /** Seed of the start, the visiting order and every position (default 0). */
  seed?: number;
}

export const PATCH_OPTIONS = ['size', 'target', 'epochs', 'batchSize', 'stepSize', 'stepDecay', 'beta', 'seed'] as const;

/** Where a patch goes on each image: the top-left corner (row, column) in pixels. */
export interface Placements {
  rows: Int32Array;
  cols: Int32Array;
}

/** A fitted patch. */
export interface PatchResult {
  /** The patch [1,size,size,c], values in [0,1]. Caller disposes. */
  patch: tf.Tensor4D;
  /** Fraction of the fit images it succeeds on at seeded random positions (untargeted: misclassified; targeted: sent to the target, among images of other classes). */
  successRate: number;
  /** The success rate after each pass. */
  history: number[];
}

interface Spec {
  size: number;
  target: number | null;
  epochs: number;
  batchSize: number;
  stepSize: number;
  stepDecay: number;
  beta: number;
  seed: number;
}

/** Check the options and the arguments (in that order, before any model call); returns the spec. */
function prepare(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PatchOptions): Spec {
  if (options === null || typeof options !== 'object') throw new Error(`${name}: options must be an object with at least size`);
  const o = options;
  checkKnownOptions(o, PATCH_OPTIONS, name);
  checkInteger(o.size, `${name}: size`, 1);
  if (o.epochs !== undefined) checkInteger(o.epochs, `${name}: epochs`, 1);
  if (o.batchSize !== undefined) checkInteger(o.batchSize, `${name}: batchSize`, 1);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${name}: stepSize`);
  if (o.stepDecay !== undefined && !(typeof o.stepDecay === 'number' && o.stepDecay > 0 && o.stepDecay <= 1)) throw new Error(`${name}: stepDecay must be in (0, 1], got ${String(o.stepDecay)}`);
  if (o.beta !== undefined) checkPositive(o.beta, `${name}: beta`);
  if (o.target !== undefined) checkInteger(o.target, `${name}: target`, 0);
  if (o.seed !== undefined) checkInteger(o.seed, `${name}: seed`, 0);
  const batch = checkImages(images, `${name}: images`);
  const [, h, w] = images.shape;
  if (o.size > Math.min(h, w)) throw new Error(`${name}: size ${o.size} does not fit in ${h}x${w} images`);
  const classes = checkModelOutput(model, images, `${name}: model`);
  checkLabels(labels, batch, classes, `${name}: labels`);
  if (o.target !== undefined && o.target >= classes) throw new Error(`${name}: target ${o.target} is not a class of the model (${classes} classes)`);
  return {
    size: o.size, target: o.target ?? null, epochs: o.epochs ?? 10, batchSize: o.batchSize ?? 32, stepSize: o.stepSize ?? 0.05,
    stepDecay: o.stepDecay ?? 0.8, beta: o.beta ?? 10, seed: o.seed ?? 0,
  };
}

/** `n` positions drawn from `rng`, row then column per image, uniform over the places a `size` patch fits in `height` x `width`. */
export function drawPlacements(n: number, height: number, width: number, size: number, rng: Rng): Placements {
  if (!(Number.isInteger(size) && size >= 1 && size <= Math.min(height, width))) throw new Error(`placements: size ${size} does not fit in ${height}x${width} images`);
  const rows = new Int32Array(n);
  const cols = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    rows[i] = rng.int(height - size + 1);
    cols[i] = rng.int(width - size + 1);
  }
  return { rows, cols };
}

/** Seeded uniform positions for `n` images (the evaluation's random placement). */
export function randomPlacements(n: number, height: number, width: number, size: number, seed: number): Placements {
  return drawPlacements(n, height, width, size, createRng(seed));
}

/** Corner offsets along one side: 0, stride, 2·stride, ... and the last place (side - size), so the edges are always covered. */
export function gridOffsets(side: number, size: number, stride: number): number[] {
  if (!(Number.isInteger(stride) && stride >= 1)) throw new Error(`grid: stride must be an integer >= 1, got ${String(stride)}`);
  if (!(Number.isInteger(size) && size >= 1 && size <= side)) throw new Error(`grid: size ${size} does not fit in a side of ${side}`);
  const out: number[] = [];
  for (let p = 0; p <= side - size; p += stride) out.push(p);
  if (out[out.length - 1] !== side - size) out.push(side - size);
  return out;
}

/**
 * Gather indices pasting a [1,s,s,c] patch (or, `perImage`, one [s,s,c] patch per image) onto n images
 * [n,h,w,c] at `at`: 0 outside the patch, 1 + the patch's flat index inside (index 0 of the gathered table
 * is a zero), and the matching 0/1 mask.
 */
function pasteIndex(n: number, h: number, w: number, c: number, s: number, at: Placements, perImage: boolean): { index: Int32Array; keep: Float32Array } {
  const index = new Int32Array(n * h * w * c);
  const keep = new Float32Array(n * h * w * c).fill(1);
  for (let i = 0; i < n; i++) {
    const [r0, c0] = [at.rows[i], at.cols[i]];
    if (!(r0 >= 0 && c0 >= 0 && r0 + s <= h && c0 + s <= w)) throw new Error(`placements: image ${i} puts the ${s}x${s} patch at (${r0}, ${c0}), outside the ${h}x${w} image`);
    for (let r = 0; r < s; r++) {
      for (let q = 0; q < s; q++) {
        const base = ((i * h + r0 + r) * w + c0 + q) * c;
        for (let k = 0; k < c; k++) {
          index[base + k] = 1 + (perImage ? i * s * s * c : 0) + (r * s + q) * c + k;
          keep[base + k] = 0;
        }
      }
    }
  }
  return { index, keep };
}

/**
 * `images` [n,h,w,c] (pixels 0-1) with `patch` pasted at each image's position: one patch [1,s,s,c] for
 * all, or one per image [n,s,s,c] (exact values, differentiable in the patch). Caller disposes.
 */
export function applyPatch(images: tf.Tensor4D, patch: tf.Tensor4D, at: Placements): tf.Tensor4D {
  const [n, h, w, c] = images.shape;
  const [count, s, s2, pc] = patch.shape;
  if ((count !== 1 && count !== n) || s !== s2 || pc !== c) throw new Error(`patch: shape [${patch.shape}] is not [1,s,s,${c}] or [${n},s,s,${c}]`);
  if (at.rows.length !== n || at.cols.length !== n) throw new Error(`placements: ${at.rows.length} rows and ${at.cols.length} columns for ${n} images`);
  const { index, keep } = pasteIndex(n, h, w, c, s, at, count === n);
  return tf.tidy(() => {
    const table = tf.concat([tf.zeros([1]), tf.reshape(patch, [-1])]);
    const canvas = tf.reshape(tf.gather(table, tf.tensor1d(index, 'int32')), [n, h, w, c]);
    // Outside the patch the image times 1 plus 0; inside the image times 0 plus the patch value: both exact.
    return tf.add(tf.mul(images, tf.tensor4d(keep, [n, h, w, c])), canvas) as tf.Tensor4D;
  });
}

/** Per image: does the patch at its position succeed (untargeted: label missed; targeted: target hit), in batches. */
export function patchSuccess(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, patch: tf.Tensor4D, at: Placements, { batchSize = 100, target = null }: { batchSize?: number; target?: number | null } = {}): Uint8Array {
  const fn = asLogitsFn(model);
  const n = images.shape[0];
  const y = labels.dataSync();
  const out = new Uint8Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const part = { rows: at.rows.subarray(s, s + m), cols: at.cols.subarray(s, s + m) };
    const pred = tf.tidy(() => tf.argMax(fn(applyPatch(images.slice([s, 0, 0, 0], [m, -1, -1, -1]), patch, part)), 1).dataSync());
    for (let k = 0; k < m; k++) out[s + k] = target === null ? Number(pred[k] !== y[s + k]) : Number(pred[k] === target);
  }
  return out;
}

/** Fit one patch [1,size,size,c] (values 0-1) on images [n,h,w,c] in [0,1] with their labels; see the file's comment for the algorithm. */
export function fitPatch(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PatchOptions): PatchResult {
  const spec = prepare('patch', model, images, labels, options);
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const s = spec.size;
  const y = labels.dataSync();
  const rng = createRng(spec.seed);
  // Start: uniform noise from the same stream (Brown et al. start from a random patch).
  let patch = tf.tensor4d(Float32Array.from({ length: s * s * c }, () => rng.next()), [1, s, s, c]);
  // Success is scored at one fixed set of positions drawn after the start, so passes are comparable.
  const scoreAt = drawPlacements(n, h, w, s, rng);
  const history: number[] = [];
  const objective = (x: tf.Tensor4D, yb: tf.Tensor1D, at: Placements) => (p: tf.Tensor): tf.Scalar => {
    const logits = fn(applyPatch(x, p as tf.Tensor4D, at));
    if (spec.target !== null) return tf.neg(tf.mean(crossEntropyPerExample(logits, tf.fill([x.shape[0]], spec.target, 'int32') as tf.Tensor1D))) as tf.Scalar;
    return tf.mean(tf.minimum(crossEntropyPerExample(logits, yb), spec.beta)) as tf.Scalar;
  };
  try {
    for (let e = 0; e < spec.epochs; e++) {
      const alpha = spec.stepSize * spec.stepDecay ** e;
      const order = permutation(n, rng);
      for (let b = 0; b < n; b += spec.batchSize) {
        const idx = order.subarray(b, Math.min(n, b + spec.batchSize));
        const at = drawPlacements(idx.length, h, w, s, rng);
        const next = tf.tidy(() => {
          const ix = tf.tensor1d(idx, 'int32');
          const g = tf.grad(objective(tf.gather(images, ix) as tf.Tensor4D, tf.gather(labels, ix) as tf.Tensor1D, at))(patch);
          return tf.clipByValue(tf.add(patch, tf.mul(tf.sign(g), alpha)), 0, 1) as tf.Tensor4D;
        });
        patch.dispose();
        patch = next;
      }
      history.push(successRateOver(patchSuccess(model, images, labels, patch, scoreAt, { batchSize: Math.max(spec.batchSize, 100), target: spec.target }), y, spec.target));
    }
    return { patch, successRate: history[history.length - 1], history };
  } catch (err) {
    patch.dispose();
    throw err;
  }
}

/** Adversarial images [n,h,w,c] in [0,1]: one patch fitted on these very images, pasted on each at a seeded random position. Caller disposes. */
export function adversarialPatch(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PatchOptions): tf.Tensor4D {
  const { patch } = fitPatch(model, images, labels, options);
  try {
    const [n, h, w] = images.shape;
    return applyPatch(images, patch, randomPlacements(n, h, w, options.size, (options.seed ?? 0) + 1));
  } finally {
    patch.dispose();
  }
}

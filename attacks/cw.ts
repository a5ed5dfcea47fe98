/**
 * Carlini & Wagner's L2 attack (IEEE S&P 2017): the minimal-norm attack most JPEG-defence papers report.
 * Per image it minimises ||x' - x||₂² + c · max(z_y - max_{j≠y} z_j, -κ) over x' = (tanh(w) + 1)/2
 * (the change of variables keeps x' in the pixel box without clipping) with Adam, and binary-searches
 * the constant c per image: c shrinks after a success and grows (x10 until a first success) after a
 * failure. Over all constants it keeps the smallest adversarial example whose margin reaches κ.
 *
 * `cwMinimal` returns those least-norm examples and their sizes (one run answers every eps, as for
 * FAB); `cw` (the registry's `cw-l2`) is the budgeted form every sweep runs: per image the projection
 * onto the L2 ball of radius eps of the point found, if that is still adversarial, else the clean image.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { budgeted, gain, hinge, searchConstants, succeeded } from './cw_core.ts';
import { checkInteger, checkNonNegative, checkPositive, validateAttack } from './validate.ts';

/** Options of the C&W L2 attack. */
export interface CwOptions {
  /** L2 budget on the 0-1 pixel scale (the budgeted `cw`; `cwMinimal` ignores it). */
  eps: number;
  /** Adam steps per constant, at most (default 1000; see abortEarly). */
  steps?: number;
  /** Binary-search steps over the constant c (default 9, as the paper and Foolbox). */
  searchSteps?: number;
  /** First constant c (default 0.01). */
  initialConst?: number;
  /** Adam step size in tanh space (default 0.01, as the paper). */
  lr?: number;
  /** Margin κ an example must reach to count (default 0). */
  confidence?: number;
  /** Stop a constant's Adam run when the batch objective fell by less than 0.01% over the last tenth of `steps` (default true, as the paper and Foolbox). */
  abortEarly?: boolean;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
}

export const CW_OPTIONS = ['eps', 'steps', 'searchSteps', 'initialConst', 'lr', 'confidence', 'abortEarly', 'targeted', 'targets'] as const;

/** Result of `cwMinimal`: per image the least-norm adversarial example found and its L2 norm. */
export interface CwMinimalResult {
  /** Adversarial examples [batch,h,w,c] in [0,1]; the clean image where none was found. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** L2 distances to the clean images (0-1 pixel scale); Infinity where none was found, 0 for images misclassified already. */
  norms: Float64Array;
}

/** Adam's moment decays and denominator guard (the paper's optimiser, default settings). */
const [BETA1, BETA2, ADAM_EPS] = [0.9, 0.999, 1e-8];
/** Keeps atanh finite at pixels exactly 0 or 1. */
const TANH_SHRINK = 1 - 1e-6;

interface Spec { steps: number; searchSteps: number; c0: number; lr: number; kappa: number; abortEarly: boolean }

function checkCwOptions(o: CwOptions, name: string): Spec {
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.searchSteps !== undefined) checkInteger(o.searchSteps, `${name}: searchSteps`, 1);
  if (o.initialConst !== undefined) checkPositive(o.initialConst, `${name}: initialConst`);
  if (o.lr !== undefined) checkPositive(o.lr, `${name}: lr`);
  if (o.confidence !== undefined) checkNonNegative(o.confidence, `${name}: confidence`);
  if (o.abortEarly !== undefined && typeof o.abortEarly !== 'boolean') throw new Error(`${name}: abortEarly must be true or false, got ${String(o.abortEarly)}`);
  return { steps: o.steps ?? 1000, searchSteps: o.searchSteps ?? 9, c0: o.initialConst ?? 0.01, lr: o.lr ?? 0.01, kappa: o.confidence ?? 0, abortEarly: o.abortEarly ?? true };
}

/** Check every option (own ones first, before the model is ever called), then images, labels and model. */
function prepare(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: CwOptions): Spec {
  const o = options ?? ({} as CwOptions);
  const spec = checkCwOptions(o, name);
  validateAttack(name, model, images, labels, { ...o }, CW_OPTIONS);
  return spec;
}

function search(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, o: CwOptions): CwMinimalResult {
  const fn = asLogitsFn(model);
  const targets = o.targeted ? o.targets : undefined;
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const x = images.dataSync() as Float32Array;
  const best = Float32Array.from(x);
  const bestNorm = new Float64Array(n).fill(Infinity);
  const clean = tf.tidy(() => gain(fn(images), labels, targets).dataSync());
  for (let i = 0; i < n; i++) if (succeeded(clean[i], spec.kappa)) bestNorm[i] = 0;

  const w0 = tf.tidy(() => tf.atanh(tf.mul(tf.sub(tf.mul(images, 2), 1), TANH_SHRINK)) as tf.Tensor4D);
  try {
    searchConstants(images, labels, targets, spec.searchSteps, spec.c0, (i) => bestNorm[i] === 0, ({ todo, at, x0, y, t, cs, found }) => {
      // The image of an iterate, its L2 distance and its gain: what the best-so-far bookkeeping reads.
      const imageOf = (wv: tf.Tensor) => tf.div(tf.add(tf.tanh(wv), 1), 2) as tf.Tensor4D;
      const squaredDistance = (xa: tf.Tensor4D) => tf.sum(tf.square(tf.sub(xa, x0)), [1, 2, 3]) as tf.Tensor1D;
      // Keep the smallest adversarial example among the iterate's images (pixels 0-1).
      const note = (xa: tf.Tensor, dist: tf.Tensor, g: tf.Tensor) => {
        const [ds, gains] = [dist.dataSync(), g.dataSync()];
        let rows: Float32Array | null = null;
        todo.forEach((i, j) => {
          if (!succeeded(gains[j], spec.kappa)) return;
          found[i] = 1;
          if (!(ds[j] < bestNorm[i])) return;
          rows ??= xa.dataSync() as Float32Array;
          bestNorm[i] = ds[j];
          best.set(rows.subarray(j * d, (j + 1) * d), i * d);
        });
      };
      // Objective summed over images: each image's gradient is its own. Its forward pass also gives
      // the iterate's image, distance and gain, kept out of the gradient's scope so each step runs the
      // model once (tf.keep: freed by hand below).
      let seen: { xa: tf.Tensor; sq: tf.Tensor; g: tf.Tensor } | null = null;
      const objective = (wv: tf.Tensor) => {
        const xa = imageOf(wv);
        const sq = squaredDistance(xa);
        const g = gain(fn(xa), y, t);
        seen = { xa: tf.keep(xa), sq: tf.keep(sq), g: tf.keep(g) };
        return tf.sum(tf.add(sq, tf.mul(cs, hinge(g, spec.kappa)))) as tf.Scalar;
      };
      const valueAndGrad = tf.valueAndGrad(objective);
      // Abort early (the paper's rule): every tenth of the run, stop unless the objective fell by 0.01%.
      const every = Math.max(1, Math.ceil(spec.steps / 10));
      let atCheck = Infinity;
      let wv = tf.gather(w0, at) as tf.Tensor4D;
      let m: tf.Tensor = tf.zerosLike(wv);
      let v: tf.Tensor = tf.zerosLike(wv);
      for (let k = 1; k <= spec.steps; k++) {
        // Each step's tensors are freed as soon as the next iterate exists (memory stays flat).
        const next = tf.tidy(() => {
          const { value, grad: g } = valueAndGrad(wv);
          const m2 = tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1));
          const v2 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(g), 1 - BETA2));
          const stepSize = (spec.lr * Math.sqrt(1 - BETA2 ** k)) / (1 - BETA1 ** k);
          const w2 = tf.sub(wv, tf.div(tf.mul(m2, stepSize), tf.add(tf.sqrt(v2), ADAM_EPS)));
          return { w2, m2, v2, value };
        });
        // The objective just evaluated the previous iterate (the clean start at k = 1 is not a candidate).
        const prev = seen!;
        seen = null;
        if (k > 1) tf.tidy(() => note(prev.xa, tf.sqrt(prev.sq), prev.g));
        tf.dispose([prev.xa, prev.sq, prev.g, wv, m, v]);
        [wv, m, v] = [next.w2 as tf.Tensor4D, next.m2, next.v2];
        const objectiveNow = next.value.dataSync()[0];
        next.value.dispose();
        if (spec.abortEarly && k % every === 0) {
          if (!(objectiveNow <= 0.9999 * atCheck)) break;
          atCheck = objectiveNow;
        }
      }
      // The last iterate has not been looked at yet.
      tf.tidy(() => {
        const xa = imageOf(wv);
        note(xa, tf.sqrt(squaredDistance(xa)), gain(fn(xa), y, t));
      });
      tf.dispose([wv, m, v]);
    });
  } finally {
    w0.dispose();
  }
  return { adversarial: tf.tensor4d(best, [n, h, w, c]), norms: bestNorm };
}

/** C&W L2 without a budget: per image the least-norm example found (pixels 0-1) and its L2 size. */
export function cwMinimal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: CwOptions): CwMinimalResult {
  return search(prepare('cw-l2', model, images, labels, options), model, images, labels, options);
}

/**
 * C&W L2 adversarial images [batch,h,w,c] in [0,1] with ||x_adv - x||₂ <= eps: per image the
 * projection onto the ball of the least-norm example found, if still adversarial, else the clean image.
 * Caller disposes.
 */
export function cw(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: CwOptions): tf.Tensor4D {
  const spec = prepare('cw-l2', model, images, labels, options);
  if (options.eps === 0) return tf.clone(images);
  const found = search(spec, model, images, labels, options);
  try {
    return budgeted(asLogitsFn(model), found.adversarial, images, labels, { norm: 'l2', eps: options.eps }, options.targeted ? options.targets : undefined);
  } finally {
    found.adversarial.dispose();
  }
}

/**
 * DeepFool (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016): the classic minimal-norm attack. At each
 * step it linearises the classifier at the current point, picks the class whose linearised boundary
 * is closest, and steps exactly onto that boundary (L2: along the gap's gradient; L-inf: along its
 * sign); the iterate is the clean image plus (1 + overshoot) times the summed steps, clipped to the
 * box, and an image stops once it is misclassified. On an affine classifier the first step already
 * lands at (1 + overshoot) times the exact distance to misclassification.
 *
 * `deepfoolMinimal` returns those examples and their sizes; `deepfool` (registry `deepfool`, L2, and
 * `deepfool-linf`) is the budgeted form: per image the projection onto the eps ball of the point found,
 * if still misclassified, else the clean image.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { dualNorm, linearise } from './linearise.ts';
import { projectOrClean } from './project.ts';
import { argMax } from './targets.ts';
import { checkInteger, checkNonNegative, validateAttack } from './validate.ts';

/** Options of DeepFool. */
export interface DeepFoolOptions {
  /** Budget on the 0-1 pixel scale in `norm` (the budgeted `deepfool`; `deepfoolMinimal` ignores it). */
  eps: number;
  /** 'l2' (default, the paper's) or 'linf'. */
  norm?: Norm;
  /** Linearisation steps per image at most (default 50). */
  steps?: number;
  /** Factor past the boundary, (1 + overshoot) times the summed steps (default 0.02, as the paper). */
  overshoot?: number;
  /** Classes considered: the most likely ones at the clean image (default 10, as the paper). */
  candidates?: number;
}

export const DEEPFOOL_OPTIONS = ['eps', 'norm', 'steps', 'overshoot', 'candidates'] as const;

/** Result of `deepfoolMinimal`: per image the adversarial example found and its size. */
export interface DeepFoolMinimalResult {
  /** Adversarial examples [batch,h,w,c] in [0,1]; the clean image where none was found. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** Their distances to the clean images in `norm` (0-1 pixel scale); Infinity where none was found, 0 for images misclassified already. */
  norms: Float64Array;
}

/** Keeps a step strictly past the linearised boundary (the paper's 1e-4). */
const PAST = 1e-4;

interface Spec { norm: Norm; steps: number; overshoot: number; candidates: number }

function prepare(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: DeepFoolOptions): Spec {
  const o = options ?? ({} as DeepFoolOptions);
  // Own options first: every option error comes before the model is ever called.
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`${name}: norm must be "linf" or "l2", got ${String(o.norm)}`);
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.overshoot !== undefined) checkNonNegative(o.overshoot, `${name}: overshoot`);
  if (o.candidates !== undefined) checkInteger(o.candidates, `${name}: candidates`, 2);
  validateAttack(name, model, images, labels, { ...o }, DEEPFOOL_OPTIONS);
  return { norm: o.norm ?? 'l2', steps: o.steps ?? 50, overshoot: o.overshoot ?? 0.02, candidates: o.candidates ?? 10 };
}

function search(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D): DeepFoolMinimalResult {
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const y = labels.dataSync();
  const clean = tf.tidy(() => fn(images).arraySync() as number[][]);
  const classes = clean[0].length;
  const best = Float32Array.from(images.dataSync());
  const norms = Float64Array.from(clean, (z, i) => (argMax(z) !== y[i] ? 0 : Infinity));
  // The classes a step may aim for: per image its most likely ones; the batch runs their union.
  const k = Math.min(spec.candidates, classes);
  const candidates = [...new Set(clean.flatMap((z) => z.map((v, cls) => [v, cls]).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, cls]) => cls)))].sort((a, b) => a - b);
  let active = Array.from({ length: n }, (_, i) => i).filter((i) => norms[i] !== 0);
  const total = new Float32Array(n * d);
  // `steps` steps, each checked at the next pass; the last pass only checks (no step follows it).
  for (let it = 0; it <= spec.steps && active.length > 0; it++) {
    const idx = active;
    const stepping = it < spec.steps;
    const summed = new Float32Array(idx.length * d);
    idx.forEach((i, j) => summed.set(total.subarray(i * d, (i + 1) * d), j * d));
    const out = tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      const x0 = tf.gather(images, at) as tf.Tensor4D;
      const xi = tf.clipByValue(tf.add(x0, tf.mul(tf.tensor4d(summed, x0.shape), 1 + spec.overshoot)), 0, 1) as tf.Tensor4D;
      const pred = tf.argMax(fn(xi), 1);
      const distance = spec.norm === 'l2' ? tf.norm(tf.reshape(tf.sub(xi, x0), [idx.length, -1]), 'euclidean', 1) : tf.max(tf.abs(tf.sub(xi, x0)), [1, 2, 3]);
      let step: Float32Array = new Float32Array(0);
      if (stepping) {
        const { gap, grad } = linearise(fn, xi, tf.gather(labels, at) as tf.Tensor1D, null, candidates, spec.norm);
        // Exactly onto the linearised boundary: |gap| / ||grad||_dual along the norm's steepest direction.
        const size = tf.div(tf.add(tf.abs(gap), PAST), tf.add(dualNorm(grad, spec.norm), 1e-12)).reshape([-1, 1]);
        const dir = spec.norm === 'l2' ? tf.div(grad, tf.add(tf.norm(grad, 'euclidean', 1, true), 1e-12)) : tf.sign(grad);
        step = tf.mul(size, dir).dataSync() as Float32Array;
      }
      return { pred: pred.dataSync(), step, xi: xi.dataSync() as Float32Array, distance: distance.dataSync() };
    });
    const still: number[] = [];
    idx.forEach((i, j) => {
      if (out.pred[j] !== y[i]) {
        // Misclassified at this iterate: done, with the iterate as its example.
        best.set(out.xi.subarray(j * d, (j + 1) * d), i * d);
        norms[i] = out.distance[j];
        return;
      }
      if (!stepping) return;
      for (let q = 0; q < d; q++) total[i * d + q] += out.step[j * d + q];
      still.push(i);
    });
    active = still;
  }
  return { adversarial: tf.tensor4d(best, [n, h, w, c]), norms };
}

/** DeepFool without a budget: per image the example found (pixels 0-1) and its size in `norm` (L2 by default). */
export function deepfoolMinimal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: DeepFoolOptions): DeepFoolMinimalResult {
  return search(prepare('deepfool', model, images, labels, options), model, images, labels);
}

function budgeted(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: DeepFoolOptions): tf.Tensor4D {
  const spec = prepare(name, model, images, labels, options);
  if (options.eps === 0) return tf.clone(images);
  const found = search(spec, model, images, labels);
  try {
    return projectOrClean(asLogitsFn(model), found.adversarial, images, labels, { norm: spec.norm, eps: options.eps });
  } finally {
    found.adversarial.dispose();
  }
}

/** DeepFool adversarial images [batch,h,w,c] in [0,1] within the `norm` ball (L2 by default) of radius eps; the rest clean. Caller disposes. */
export function deepfool(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: DeepFoolOptions): tf.Tensor4D {
  return budgeted('deepfool', model, images, labels, options);
}

/** DeepFool in L-inf (the registry's `deepfool-linf`). Caller disposes. */
export function deepfoolLinf(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<DeepFoolOptions, 'norm'>): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('deepfool-linf: do not pass norm (it is always linf)');
  return budgeted('deepfool-linf', model, images, labels, { ...options, norm: 'linf' });
}

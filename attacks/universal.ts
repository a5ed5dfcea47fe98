/**
 * Universal adversarial perturbations: ONE perturbation, added to every image, fitted on a set of
 * images and meant to fool the model on images it has never seen.
 *
 * - `sgd` (default): stochastic projected sign-gradient ascent on the perturbation over minibatches of
 *   the fit images (Shafahi, Najibi, Xu, Dickerson, Davis & Goldstein, AAAI 2020, "Universal
 *   Adversarial Training"), the cross-entropy of each image clamped at `beta` so images already fooled
 *   stop pulling; the step shrinks by `stepDecay` after every pass.
 * - `deepfool`: the original iterative algorithm (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, CVPR 2017,
 *   IBM ART's UniversalPerturbation): image by image, every image the current perturbation leaves
 *   unfooled gets the minimal DeepFool step from where the perturbation puts it, the sum projected back
 *   onto the ball; passes stop once the fit images are fooled at `foolingRate` or after `epochs`.
 *
 * Both work on the labels given (true labels: success = misclassified; pass the model's own predictions
 * for the papers' "fooling rate", success = prediction changed). `target` asks for a targeted universal
 * perturbation (every image to one class; Hirano & Takemoto 2020, ART's TargetedUniversalPerturbation),
 * sgd only. The perturbation's budget is enforced by `projectPerturbation` and every image made with it
 * goes through `project` (attacks/project.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, permutation } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { deepfoolMinimal } from './deepfool.ts';
import { l2Direction } from './gradient.ts';
import { crossEntropyPerExample } from './loss.ts';
import { successRateOver } from './targets.ts';
import { project, projectPerturbation, type Budget } from './project.ts';
import { checkInteger, checkNonNegative, checkPositive, validateAttack, type CommonChecked } from './validate.ts';

/** How the universal perturbation is fitted. */
export type UniversalMethod = 'sgd' | 'deepfool';

export const UNIVERSAL_METHODS: readonly UniversalMethod[] = ['sgd', 'deepfool'];

/** Options of a universal perturbation. */
export interface UniversalOptions {
  /** Radius of the perturbation on the 0-1 pixel scale in `norm`. */
  eps: number;
  /** 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** 'sgd' (default, Shafahi et al. 2020) or 'deepfool' (Moosavi-Dezfooli et al. 2017). */
  method?: UniversalMethod;
  /** Passes over the fit images (default 10; deepfool stops earlier once `foolingRate` is reached). */
  epochs?: number;
  /** sgd: images per gradient step (default 32); both: images per forward pass when scoring. */
  batchSize?: number;
  /** sgd: step length of the first pass, on the 0-1 scale in `norm` (default eps/4). */
  stepSize?: number;
  /** sgd: factor applied to the step after every pass, in (0, 1] (default 0.8). */
  stepDecay?: number;
  /** sgd, untargeted: cross-entropy clamp per image in nats (default 10): fooled images stop pulling. */
  beta?: number;
  /** Targeted (sgd): the class every image should be sent to. */
  target?: number;
  /** deepfool: stop once this fraction of the fit images is fooled, in (0, 1] (default 0.8, ART's 1 - delta). */
  foolingRate?: number;
  /** deepfool: its overshoot (default 0.02) and linearisation steps per image (default 50). */
  overshoot?: number;
  deepfoolSteps?: number;
  /** Seed of the order the images are visited in (default 0). */
  seed?: number;
}

export const UNIVERSAL_OPTIONS = ['eps', 'norm', 'method', 'epochs', 'batchSize', 'stepSize', 'stepDecay', 'beta', 'target', 'foolingRate', 'overshoot', 'deepfoolSteps', 'seed'] as const;

/** A fitted universal perturbation. */
export interface UniversalResult {
  /** The perturbation [1,h,w,c] on the 0-1 scale, inside the `norm` ball of radius eps. Caller disposes. */
  perturbation: tf.Tensor4D;
  /** Fraction of the fit images it succeeds on (untargeted: misclassified; targeted: sent to the target, among images of other classes). */
  successRate: number;
  /** The success rate after each pass (its length is the number of passes run). */
  history: number[];
}

interface Spec {
  budget: Budget;
  method: UniversalMethod;
  epochs: number;
  batchSize: number;
  stepSize: number;
  stepDecay: number;
  beta: number;
  target: number | null;
  foolingRate: number;
  overshoot: number;
  deepfoolSteps: number;
  seed: number;
}

function prepare(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: UniversalOptions): Spec {
  const o = options ?? ({} as UniversalOptions);
  // Own options first: every option error comes before the model is ever called.
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`${name}: norm must be "linf" or "l2", got ${String(o.norm)}`);
  if (o.method !== undefined && !UNIVERSAL_METHODS.includes(o.method)) throw new Error(`${name}: method must be one of ${UNIVERSAL_METHODS.join(', ')}, got ${String(o.method)}`);
  if (o.epochs !== undefined) checkInteger(o.epochs, `${name}: epochs`, 1);
  if (o.batchSize !== undefined) checkInteger(o.batchSize, `${name}: batchSize`, 1);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${name}: stepSize`);
  if (o.stepDecay !== undefined && !(typeof o.stepDecay === 'number' && o.stepDecay > 0 && o.stepDecay <= 1)) throw new Error(`${name}: stepDecay must be in (0, 1], got ${String(o.stepDecay)}`);
  if (o.beta !== undefined) checkPositive(o.beta, `${name}: beta`);
  if (o.foolingRate !== undefined && !(typeof o.foolingRate === 'number' && o.foolingRate > 0 && o.foolingRate <= 1)) throw new Error(`${name}: foolingRate must be in (0, 1], got ${String(o.foolingRate)}`);
  if (o.overshoot !== undefined) checkNonNegative(o.overshoot, `${name}: overshoot`);
  if (o.deepfoolSteps !== undefined) checkInteger(o.deepfoolSteps, `${name}: deepfoolSteps`, 1);
  if (o.target !== undefined) checkInteger(o.target, `${name}: target`, 0);
  const method = o.method ?? 'sgd';
  if (o.target !== undefined && method !== 'sgd') throw new Error(`${name}: target needs method "sgd" (DeepFool's step is untargeted)`);
  const classes = validateAttack(name, model, images, labels, o as unknown as CommonChecked & Record<string, unknown>, UNIVERSAL_OPTIONS);
  if (o.target !== undefined && o.target >= classes) throw new Error(`${name}: target ${o.target} is not a class of the model (${classes} classes)`);
  return {
    budget: { norm: o.norm ?? 'linf', eps: o.eps }, method, epochs: o.epochs ?? 10, batchSize: o.batchSize ?? 32,
    stepSize: o.stepSize ?? o.eps / 4, stepDecay: o.stepDecay ?? 0.8, beta: o.beta ?? 10, target: o.target ?? null,
    foolingRate: o.foolingRate ?? 0.8, overshoot: o.overshoot ?? 0.02, deepfoolSteps: o.deepfoolSteps ?? 50, seed: o.seed ?? 0,
  };
}

/** Images `idx` of `images` with the perturbation added, each through `project` (pixels 0-1). */
function perturbed(images: tf.Tensor4D, idx: Int32Array | number[], delta: tf.Tensor4D, budget: Budget): tf.Tensor4D {
  return tf.tidy(() => {
    const x = tf.gather(images, tf.tensor1d(Int32Array.from(idx), 'int32')) as tf.Tensor4D;
    return project(tf.add(x, delta) as tf.Tensor4D, x, budget);
  });
}

/** Per image: does the perturbation succeed (untargeted: label missed; targeted: target hit), in batches. */
export function universalSuccess(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, perturbation: tf.Tensor4D, budget: Budget, { batchSize = 100, target = null }: { batchSize?: number; target?: number | null } = {}): Uint8Array {
  const fn = asLogitsFn(model);
  const n = images.shape[0];
  const y = labels.dataSync();
  const out = new Uint8Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - s) }, (_, k) => s + k);
    const pred = tf.tidy(() => tf.argMax(fn(perturbed(images, idx, perturbation, budget)), 1).dataSync());
    idx.forEach((i, k) => (out[i] = target === null ? Number(pred[k] !== y[i]) : Number(pred[k] === target)));
  }
  return out;
}

/** sgd: one pass per epoch over a seeded permutation, sign (L-inf) or unit-L2 steps on the shared delta. */
function fitSgd(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D): UniversalResult {
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const y = labels.dataSync();
  const rng = createRng(spec.seed);
  let delta = tf.zeros([1, h, w, c]) as tf.Tensor4D;
  const history: number[] = [];
  // Objective on a minibatch, as a function of the shared delta: mean clamped CE (untargeted) or minus the target's CE.
  const objective = (x: tf.Tensor4D, yb: tf.Tensor1D) => (d: tf.Tensor): tf.Scalar => {
    const logits = fn(tf.clipByValue(tf.add(x, d), 0, 1) as tf.Tensor4D);
    if (spec.target !== null) return tf.neg(tf.mean(crossEntropyPerExample(logits, tf.fill([x.shape[0]], spec.target, 'int32') as tf.Tensor1D))) as tf.Scalar;
    return tf.mean(tf.minimum(crossEntropyPerExample(logits, yb), spec.beta)) as tf.Scalar;
  };
  try {
    for (let e = 0; e < spec.epochs; e++) {
      const alpha = spec.stepSize * spec.stepDecay ** e;
      const order = permutation(n, rng);
      for (let s = 0; s < n; s += spec.batchSize) {
        const idx = order.subarray(s, Math.min(n, s + spec.batchSize));
        const next = tf.tidy(() => {
          const at = tf.tensor1d(idx, 'int32');
          const g = tf.grad(objective(tf.gather(images, at) as tf.Tensor4D, tf.gather(labels, at) as tf.Tensor1D))(delta) as tf.Tensor4D;
          const dir = spec.budget.norm === 'linf' ? tf.sign(g) : l2Direction(g);
          return projectPerturbation(tf.add(delta, tf.mul(dir, alpha)) as tf.Tensor4D, spec.budget);
        });
        delta.dispose();
        delta = next;
      }
      history.push(successRateOver(universalSuccess(model, images, labels, delta, spec.budget, { batchSize: Math.max(spec.batchSize, 100), target: spec.target }), y, spec.target));
    }
    return { perturbation: delta, successRate: history[history.length - 1], history };
  } catch (err) {
    delta.dispose();
    throw err;
  }
}

/** deepfool: image by image in a seeded order, the minimal DeepFool step from x + v added to v and projected. */
function fitDeepfool(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D): UniversalResult {
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const y = labels.dataSync();
  const rng = createRng(spec.seed);
  let v = tf.zeros([1, h, w, c]) as tf.Tensor4D;
  const history: number[] = [];
  const scoreBatch = Math.max(spec.batchSize, 100);
  try {
    let success = successRateOver(universalSuccess(model, images, labels, v, spec.budget, { batchSize: scoreBatch }), y, null);
    for (let e = 0; e < spec.epochs && success < spec.foolingRate; e++) {
      for (const i of permutation(n, rng)) {
        const xv = perturbed(images, [i], v, spec.budget);
        const label = tf.tensor1d([y[i]], 'int32');
        try {
          if (tf.tidy(() => tf.argMax(fn(xv), 1).dataSync()[0]) !== y[i]) continue;
          const found = deepfoolMinimal(model, xv, label, { eps: 0, norm: spec.budget.norm, steps: spec.deepfoolSteps, overshoot: spec.overshoot });
          // No example within the steps: v stays as it is (as ART's loop).
          if (Number.isFinite(found.norms[0])) {
            const next = tf.tidy(() => projectPerturbation(tf.add(v, tf.sub(found.adversarial, xv)) as tf.Tensor4D, spec.budget));
            v.dispose();
            v = next;
          }
          found.adversarial.dispose();
        } finally {
          xv.dispose();
          label.dispose();
        }
      }
      success = successRateOver(universalSuccess(model, images, labels, v, spec.budget, { batchSize: scoreBatch }), y, null);
      history.push(success);
    }
    return { perturbation: v, successRate: success, history };
  } catch (err) {
    v.dispose();
    throw err;
  }
}

/** Fit one universal perturbation [1,h,w,c] (0-1 scale, in the `norm` ball of radius eps) on images [n,h,w,c] in [0,1]. */
export function fitUniversal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: UniversalOptions): UniversalResult {
  const spec = prepare('universal', model, images, labels, options);
  return spec.method === 'sgd' ? fitSgd(spec, model, images, labels) : fitDeepfool(spec, model, images, labels);
}

/** `images` [n,h,w,c] in [0,1] plus a universal perturbation, each projected onto its `norm` ball of radius eps and the box. Caller disposes. */
export function applyUniversal(images: tf.Tensor4D, perturbation: tf.Tensor4D, budget: Budget): tf.Tensor4D {
  return tf.tidy(() => project(tf.add(images, projectPerturbation(perturbation, budget)) as tf.Tensor4D, images, budget));
}

/** Adversarial images [n,h,w,c] in [0,1]: one universal perturbation fitted on these very images, added to each. Caller disposes. */
export function universal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: UniversalOptions): tf.Tensor4D {
  const { perturbation } = fitUniversal(model, images, labels, options);
  try {
    return applyUniversal(images, perturbation, { norm: options.norm ?? 'linf', eps: options.eps });
  } finally {
    perturbation.dispose();
  }
}

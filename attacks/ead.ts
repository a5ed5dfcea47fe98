/**
 * EAD, the elastic-net attack (Chen, Sharma, Zhang, Yi, Hsieh, AAAI 2018, "EAD: Elastic-Net Attacks to
 * Deep Neural Networks via Adversarial Examples"): the L1-oriented member of the C&W family that ART and
 * Foolbox carry. Per image it minimises c · max(z_y - max_{j≠y} z_j, -κ) + ||δ||₂² + β·||δ||₁ over
 * x' = x + δ in the pixel box by FISTA: a gradient step on the smooth part at the extrapolated point y_k
 * (step size lr·sqrt(1 - k/steps), the paper's polynomial decay), then the projected shrinkage S_β onto
 * the box, then y_{k+1} = x_{k+1} + k/(k+3)·(x_{k+1} - x_k). The constant c is binary-searched per image
 * as in C&W. Among every iterate that fooled the model it keeps the one of least elastic-net distance
 * ||δ||₂² + β||δ||₁ (decision rule 'en', the paper's default) or of least L1 norm ('l1').
 *
 * Like the paper's code, Foolbox and ART, the shrinkage threshold is β itself, not lr·β: with the
 * decaying step the L1 term's weight grows over the run, which is what makes the examples sparse; β is
 * on the 0-1 pixel scale.
 *
 * `eadMinimal` returns the examples kept and their L1 norms (one run answers every eps); `ead` (the
 * registry's `ead`) is the budgeted form in the L1 ball: per image the projection of the kept example onto
 * the ball of radius eps, if still adversarial, else the clean image.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { budgeted, gain, hinge, searchConstants, succeeded } from './cw_core.ts';
import { checkInteger, checkNonNegative, checkPositive, validateAttack } from './validate.ts';

/** Which found example EAD keeps: least elastic-net distance ('en') or least L1 norm ('l1'). */
export type EadDecisionRule = 'en' | 'l1';

/** Options of EAD. */
export interface EadOptions {
  /** L1 budget on the 0-1 pixel scale (the budgeted `ead`; `eadMinimal` ignores it). */
  eps: number;
  /** FISTA iterations per constant, at most (default 1000; see abortEarly). */
  steps?: number;
  /** Binary-search steps over the constant c (default 9, as the paper). */
  searchSteps?: number;
  /** First constant c (default 0.001, as the paper). */
  initialConst?: number;
  /** First step size, decayed as lr·sqrt(1 - k/steps) (default 0.01, as the paper). */
  lr?: number;
  /** Weight β of the L1 term and the shrinkage threshold, 0-1 pixel scale (default 0.001, as the paper); 0 makes EAD a box-projected C&W. */
  beta?: number;
  /** 'en' (default, the paper's) or 'l1': which successful iterate is kept. */
  decisionRule?: EadDecisionRule;
  /** Margin κ an example must reach to count (default 0). */
  confidence?: number;
  /** Stop a constant's run when the objective fell by less than 0.01% over the last tenth of `steps` (default true, as the paper). */
  abortEarly?: boolean;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
}

export const EAD_OPTIONS = ['eps', 'steps', 'searchSteps', 'initialConst', 'lr', 'beta', 'decisionRule', 'confidence', 'abortEarly', 'targeted', 'targets'] as const;

/** Defaults of EAD's optional options (the paper's settings, 1000 iterations as our C&W). */
export const EAD_DEFAULTS = { steps: 1000, searchSteps: 9, initialConst: 0.001, lr: 0.01, beta: 0.001, decisionRule: 'en', confidence: 0, abortEarly: true, targeted: false };

/** Result of `eadMinimal`: per image the example kept and its L1 norm. */
export interface EadMinimalResult {
  /** Adversarial examples [batch,h,w,c] in [0,1]; the clean image where none was found. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** L1 distances to the clean images (0-1 pixel scale); Infinity where none was found, 0 for images misclassified already. */
  norms: Float64Array;
}

interface Spec { steps: number; searchSteps: number; c0: number; lr: number; beta: number; rule: EadDecisionRule; kappa: number; abortEarly: boolean }

function checkEadOptions(o: EadOptions, name: string): Spec {
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.searchSteps !== undefined) checkInteger(o.searchSteps, `${name}: searchSteps`, 1);
  if (o.initialConst !== undefined) checkPositive(o.initialConst, `${name}: initialConst`);
  if (o.lr !== undefined) checkPositive(o.lr, `${name}: lr`);
  if (o.beta !== undefined) checkNonNegative(o.beta, `${name}: beta`);
  if (o.decisionRule !== undefined && o.decisionRule !== 'en' && o.decisionRule !== 'l1') throw new Error(`${name}: decisionRule must be "en" or "l1", got ${String(o.decisionRule)}`);
  if (o.confidence !== undefined) checkNonNegative(o.confidence, `${name}: confidence`);
  if (o.abortEarly !== undefined && typeof o.abortEarly !== 'boolean') throw new Error(`${name}: abortEarly must be true or false, got ${String(o.abortEarly)}`);
  const d = EAD_DEFAULTS;
  return {
    steps: o.steps ?? d.steps, searchSteps: o.searchSteps ?? d.searchSteps, c0: o.initialConst ?? d.initialConst, lr: o.lr ?? d.lr,
    beta: o.beta ?? d.beta, rule: o.decisionRule ?? 'en', kappa: o.confidence ?? d.confidence, abortEarly: o.abortEarly ?? d.abortEarly,
  };
}

/**
 * The projected shrinkage-thresholding operator S_β of EAD (pixels 0-1): where z moved more than β from
 * x0 it moves back by β and is clipped to the box, elsewhere it is x0 exactly. Returns a new tensor.
 */
export function shrinkToBox(z: tf.Tensor4D, x0: tf.Tensor4D, beta: number): tf.Tensor4D {
  return tf.tidy(() => {
    const d = tf.sub(z, x0);
    const up = tf.minimum(tf.sub(z, beta), 1);
    const down = tf.maximum(tf.add(z, beta), 0);
    return tf.where(tf.greater(d, beta), up, tf.where(tf.less(d, -beta), down, x0)) as tf.Tensor4D;
  });
}

function prepare(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: EadOptions): Spec {
  const o = options ?? ({} as EadOptions);
  const spec = checkEadOptions(o, 'ead');
  validateAttack('ead', model, images, labels, { ...o }, EAD_OPTIONS);
  return spec;
}

function search(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, o: EadOptions): EadMinimalResult {
  const fn = asLogitsFn(model);
  const targets = o.targeted ? o.targets : undefined;
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const best = Float32Array.from(images.dataSync() as Float32Array);
  // What the decision rule ranks by, and the L1 norm returned.
  const bestScore = new Float64Array(n).fill(Infinity);
  const bestL1 = new Float64Array(n).fill(Infinity);
  const clean = tf.tidy(() => gain(fn(images), labels, targets).dataSync());
  for (let i = 0; i < n; i++) if (succeeded(clean[i], spec.kappa)) [bestScore[i], bestL1[i]] = [0, 0];

  searchConstants(images, labels, targets, spec.searchSteps, spec.c0, (i) => bestL1[i] === 0, ({ todo, x0, y, t, cs, found }) => {
    // The smooth part c·hinge + ||δ||₂², summed over images (each image's gradient is its own).
    const smooth = (v: tf.Tensor) => {
      const sq = tf.sum(tf.square(tf.sub(v, x0)), [1, 2, 3]);
      return tf.sum(tf.add(sq, tf.mul(cs, hinge(gain(fn(v as tf.Tensor4D), y, t), spec.kappa)))) as tf.Scalar;
    };
    const gradOf = tf.grad(smooth);
    const every = Math.max(1, Math.ceil(spec.steps / 10));
    let atCheck = Infinity;
    let xk: tf.Tensor4D = tf.clone(x0);
    let yk: tf.Tensor4D = tf.clone(x0);
    for (let k = 0; k < spec.steps; k++) {
      // Abort early (the paper's rule): every tenth of the run, stop unless the objective fell by 0.01%;
      // the objective is only needed (and read) on those steps.
      const check = spec.abortEarly && (k + 1) % every === 0;
      // Each step's tensors are freed as soon as the next iterate exists (memory stays flat).
      const next = tf.tidy(() => {
        const stepSize = spec.lr * Math.sqrt(1 - k / spec.steps);
        const x1 = shrinkToBox(tf.sub(yk, tf.mul(gradOf(yk), stepSize)) as tf.Tensor4D, x0, spec.beta);
        // FISTA's extrapolation, clipped so the model only ever sees images.
        const y1 = tf.clipByValue(tf.add(x1, tf.mul(tf.sub(x1, xk), (k + 1) / (k + 4))), 0, 1) as tf.Tensor4D;
        const delta = tf.sub(x1, x0);
        const l1 = tf.sum(tf.abs(delta), [1, 2, 3]);
        const l2sq = tf.sum(tf.square(delta), [1, 2, 3]);
        const g = gain(fn(x1), y, t);
        const objective = check ? tf.sum(tf.add(tf.add(l2sq, tf.mul(l1, spec.beta)), tf.mul(cs, hinge(g, spec.kappa)))) : undefined;
        return { x1, y1, l1, l2sq, g, objective };
      });
      tf.dispose([xk, yk]);
      [xk, yk] = [next.x1, next.y1];
      const [l1s, l2s, gains] = [next.l1.dataSync(), next.l2sq.dataSync(), next.g.dataSync()];
      let rows: Float32Array | null = null;
      todo.forEach((i, j) => {
        if (!succeeded(gains[j], spec.kappa)) return;
        found[i] = 1;
        const score = spec.rule === 'en' ? l2s[j] + spec.beta * l1s[j] : l1s[j];
        if (!(score < bestScore[i])) return;
        rows ??= xk.dataSync() as Float32Array;
        [bestScore[i], bestL1[i]] = [score, l1s[j]];
        best.set(rows.subarray(j * d, (j + 1) * d), i * d);
      });
      const objectiveNow = next.objective ? next.objective.dataSync()[0] : NaN;
      tf.dispose([next.l1, next.l2sq, next.g, ...(next.objective ? [next.objective] : [])]);
      if (check) {
        if (!(objectiveNow <= 0.9999 * atCheck)) break;
        atCheck = objectiveNow;
      }
    }
    tf.dispose([xk, yk]);
  });
  // The norms reported are those of the stored float32 pixels, so they agree with what a caller measures.
  return { adversarial: tf.tensor4d(best, [n, h, w, c]), norms: l1Of(best, images.dataSync() as Float32Array, bestL1, d) };
}

/** L1 norms of the rows of `a` - `x` where a row was found (finite), in float64. */
function l1Of(a: Float32Array, x: Float32Array, found: Float64Array, d: number): Float64Array {
  return found.map((v, i) => {
    if (!Number.isFinite(v) || v === 0) return v;
    let s = 0;
    for (let j = i * d; j < (i + 1) * d; j++) s += Math.abs(a[j] - x[j]);
    return s;
  });
}

/** EAD without a budget: per image the example kept (pixels 0-1) and its L1 size. */
export function eadMinimal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: EadOptions): EadMinimalResult {
  return search(prepare(model, images, labels, options), model, images, labels, options);
}

/**
 * EAD adversarial images [batch,h,w,c] in [0,1] with ||x_adv - x||₁ <= eps: per image the projection
 * onto the L1 ball (inside the box) of the example kept, if still adversarial, else the clean image.
 * Caller disposes.
 */
export function ead(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: EadOptions): tf.Tensor4D {
  const spec = prepare(model, images, labels, options);
  if (options.eps === 0) return tf.clone(images);
  const found = search(spec, model, images, labels, options);
  try {
    return budgeted(asLogitsFn(model), found.adversarial, images, labels, { norm: 'l1', eps: options.eps }, options.targeted ? options.targets : undefined);
  } finally {
    found.adversarial.dispose();
  }
}

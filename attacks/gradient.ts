/**
 * Shared gradient of the attack objective, with Expectation over Transformation built in: with
 * `eotSamples = k` the model is called k times (a randomised model draws fresh randomness each call)
 * and the GRADIENT OF THE LOSS is averaged, (1/k) Σ_i ∇x L(f_i(x)), never the gradient of averaged logits.
 */
import * as tf from '@tensorflow/tfjs';
import { gatherRows } from '../src/native/gather.ts';
import { attackObjective, attackSuccess, type LossName } from './loss.ts';

/** What the objective is: loss, optional targets (targeted attack), EOT sample count (default 1). */
export interface ObjectiveSpec {
  loss?: LossName;
  targets?: tf.Tensor1D;
  eotSamples?: number;
}

/** Gradient [batch,h,w,c], per-example objective [batch] and success (bool [batch]), EOT-averaged. */
export interface ObjectiveGradient {
  grad: tf.Tensor4D;
  objective: tf.Tensor1D;
  success: tf.Tensor1D;
}

/** Gradient of the summed per-example objective at x (each example's gradient is its own, as the sum separates). */
export function objectiveGradient(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  spec: ObjectiveSpec = {},
): ObjectiveGradient {
  const k = spec.eotSamples ?? 1;
  return tf.tidy(() => {
    let gradSum: tf.Tensor | undefined;
    let objSum: tf.Tensor | undefined;
    let logitSum: tf.Tensor | undefined;
    // tf.keep lets values computed inside the gradient closure out of its scope, but also out of
    // this tidy; they are disposed by hand below.
    const kept: tf.Tensor[] = [];
    for (let i = 0; i < k; i++) {
      let obj: tf.Tensor1D | undefined;
      let logits: tf.Tensor2D | undefined;
      const { grad } = tf.valueAndGrad((input: tf.Tensor) => {
        const z = logitsFn(input as tf.Tensor4D);
        const o = attackObjective(z, labels, { loss: spec.loss, targets: spec.targets });
        obj = tf.keep(o);
        logits = tf.keep(z);
        kept.push(obj, logits);
        return tf.sum(o) as tf.Scalar;
      })(x);
      gradSum = gradSum ? tf.add(gradSum, grad) : grad;
      objSum = objSum ? tf.add(objSum, obj!) : obj!;
      logitSum = logitSum ? tf.add(logitSum, logits!) : logits!;
    }
    const meanLogits = tf.div(logitSum!, k) as tf.Tensor2D;
    const result = {
      grad: tf.div(gradSum!, k) as tf.Tensor4D,
      objective: tf.div(objSum!, k) as tf.Tensor1D,
      success: attackSuccess(meanLogits, labels, spec.targets),
    };
    tf.dispose(kept);
    return result;
  });
}

/** Objective and success at x without a gradient (EOT-averaged the same way). */
export function evaluateObjective(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  spec: ObjectiveSpec = {},
): { objective: tf.Tensor1D; success: tf.Tensor1D } {
  const k = spec.eotSamples ?? 1;
  return tf.tidy(() => {
    let objSum: tf.Tensor | undefined;
    let logitSum: tf.Tensor | undefined;
    for (let i = 0; i < k; i++) {
      const z = logitsFn(x);
      const o = attackObjective(z, labels, { loss: spec.loss, targets: spec.targets });
      objSum = objSum ? tf.add(objSum, o) : o;
      logitSum = logitSum ? tf.add(logitSum, z) : z;
    }
    return {
      objective: tf.div(objSum!, k) as tf.Tensor1D,
      success: attackSuccess(tf.div(logitSum!, k) as tf.Tensor2D, labels, spec.targets),
    };
  });
}

/** Per-example L-inf steepest-ascent direction: sign(grad). */
export function linfDirection(grad: tf.Tensor4D): tf.Tensor4D {
  return tf.sign(grad);
}

/** Per-example L2 steepest-ascent direction: grad / ||grad||_2 (zero where the gradient is zero). */
export function l2Direction(grad: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(grad), [1, 2, 3], true));
    return tf.div(grad, tf.maximum(norm, 1e-30)) as tf.Tensor4D;
  });
}

/**
 * Per-example sparse L1 steepest-ascent direction: sign(grad) on the `fraction` of pixels with the
 * largest |grad| (at least one; ties at the threshold all move), scaled to unit L1 norm. `fraction` is
 * one number or one per example (in (0, 1]). Zero where the gradient is zero. With `skipBlocked`, pixels
 * already at the box edge in the gradient's direction (x = 1 with grad > 0, x = 0 with grad < 0) are left
 * out before the ranking, so a step over a few pixels is not spent on pixels that cannot move (SLIDE's
 * top 1%); L1-APGD keeps them, as the reference does: its exact projection clips them back and keeps
 * them at the edge, where leaving them out lets the projection's shrinkage pull them off it.
 */
export function l1Direction(grad: tf.Tensor4D, x: tf.Tensor4D, fraction: number | tf.Tensor1D, skipBlocked = false): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, h, w, c] = grad.shape;
    const n = h * w * c;
    const blocked = () => tf.logicalOr(tf.logicalAnd(tf.greaterEqual(x, 1), tf.greater(grad, 0)), tf.logicalAnd(tf.lessEqual(x, 0), tf.less(grad, 0)));
    const mag = tf.reshape(skipBlocked ? tf.where(blocked(), tf.zerosLike(grad), tf.abs(grad)) : tf.abs(grad), [batch, n]);
    const sorted = tf.topk(mag, n).values;
    const f = typeof fraction === 'number' ? tf.fill([batch], fraction) : fraction;
    // Rank of the threshold in the descending order: ceil(fraction·n) pixels, at least one.
    const rank = tf.cast(tf.clipByValue(tf.sub(tf.ceil(tf.mul(f, n)), 1), 0, n - 1), 'int32');
    const threshold = gatherRows(tf.reshape(sorted, [-1]), tf.add(rank, tf.range(0, batch * n, n, 'int32')) as tf.Tensor1D).reshape([batch, 1]);
    const chosen = tf.logicalAnd(tf.greaterEqual(mag, threshold), tf.greater(mag, 0));
    const s = tf.mul(tf.sign(tf.reshape(grad, [batch, n])), tf.cast(chosen, 'float32'));
    const count = tf.maximum(tf.sum(tf.abs(s), 1, true), 1);
    return tf.reshape(tf.div(s, count), grad.shape) as tf.Tensor4D;
  });
}

/**
 * Per-example direction of an L0 PGD step (Croce & Hein 2019): grad divided by its mean |grad|, so a
 * step of size s moves a pixel of average gradient by s and the pixels of large gradient by more (the
 * L0 projection then keeps the pixels that moved most). Zero where the gradient is zero.
 */
export function l0Direction(grad: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.div(grad, tf.maximum(tf.mean(tf.abs(grad), [1, 2, 3], true), 1e-30)) as tf.Tensor4D);
}

/** An attack candidate per example: adversarial images, the attack objective, and success (1/0). */
export interface Candidate {
  adv: tf.Tensor4D;
  objective: tf.Tensor1D;
  success: tf.Tensor1D;
}

/** Fold a restart's candidate into the running worst case (undefined at first), disposing what it replaces. */
export function foldWorstCase(best: Candidate | undefined, cand: Candidate): Candidate {
  if (!best) return cand;
  const merged = keepWorstCase(best, cand);
  tf.dispose([best.adv, best.objective, best.success, cand.adv, cand.objective, cand.success]);
  return merged;
}

/**
 * Per-example worst case of two candidates (for restarts): a successful candidate beats an unsuccessful
 * one; otherwise the higher objective wins; ties keep `a`. Returns new tensors; inputs untouched.
 */
export function keepWorstCase(
  a: { adv: tf.Tensor4D; objective: tf.Tensor1D; success: tf.Tensor1D },
  b: { adv: tf.Tensor4D; objective: tf.Tensor1D; success: tf.Tensor1D },
): { adv: tf.Tensor4D; objective: tf.Tensor1D; success: tf.Tensor1D } {
  return tf.tidy(() => {
    const bSucc = tf.cast(b.success, 'bool');
    const aSucc = tf.cast(a.success, 'bool');
    const takeB = tf.logicalOr(
      tf.logicalAnd(bSucc, tf.logicalNot(aSucc)),
      tf.logicalAnd(tf.equal(bSucc, aSucc), tf.greater(b.objective, a.objective)),
    );
    const mask4 = tf.broadcastTo(takeB.reshape([-1, 1, 1, 1]), a.adv.shape);
    return {
      adv: tf.where(mask4, b.adv, a.adv) as tf.Tensor4D,
      objective: tf.where(takeB, b.objective, a.objective) as tf.Tensor1D,
      success: tf.logicalOr(aSucc, bSucc) as tf.Tensor1D,
    };
  });
}

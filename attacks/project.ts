/**
 * The ONE place the perturbation budget is enforced: every attack's iterates and output go through
 * `project`. It maps a candidate image onto {x' : ||x' - x|| <= eps} ∩ [0,1]^n.
 */
import * as tf from '@tensorflow/tfjs';
import type { Norm } from '../src/types.ts';

/** Budget of one projection: norm and radius on the 0-1 pixel scale. */
export interface Budget {
  norm: Norm;
  eps: number;
}

/** Unit roundoff of float32; rounding of x + delta adds at most this much per pixel (pixels <= 1). */
const FLOAT32_UNIT = 2 ** -24;

/** Per-example L2 norm of a NHWC tensor, shape [batch]. */
export function l2NormPerExample(t: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(t), [1, 2, 3])) as tf.Tensor1D);
}

/** Per-example L-inf norm of a NHWC tensor, shape [batch]. */
export function linfNormPerExample(t: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.max(tf.abs(t), [1, 2, 3]) as tf.Tensor1D);
}

/**
 * Project `candidate` onto the `budget` ball around `x` and clip to [0,1]; returns a new tensor.
 * L-inf: an elementwise clip to [max(x-eps,0), min(x+eps,1)], so a candidate already inside is returned
 * bit-for-bit. L2: radial scaling of delta = candidate - x when ||delta|| > eps, then the box clip
 * (which only moves pixels towards x, so it cannot leave the ball). The L2 radius is shrunk by
 * sqrt(n)·2^-24 so float32 rounding of x + delta cannot push the result past eps.
 */
export function project(candidate: tf.Tensor4D, x: tf.Tensor4D, budget: Budget): tf.Tensor4D {
  return tf.tidy(() => {
    if (budget.norm === 'linf') {
      const lo = tf.maximum(tf.sub(x, budget.eps), 0);
      const hi = tf.minimum(tf.add(x, budget.eps), 1);
      return tf.minimum(tf.maximum(candidate, lo), hi) as tf.Tensor4D;
    }
    const n = x.shape[1]! * x.shape[2]! * x.shape[3]!;
    const radius = Math.max(0, budget.eps * (1 - 1e-6) - Math.sqrt(n) * FLOAT32_UNIT);
    const delta = tf.sub(candidate, x);
    const norm = l2NormPerExample(delta as tf.Tensor4D).reshape([-1, 1, 1, 1]);
    const outside = tf.greater(norm, radius);
    const scale = tf.where(outside, tf.div(radius, tf.maximum(norm, 1e-30)), tf.onesLike(norm));
    const scaled = tf.where(tf.broadcastTo(outside, x.shape), tf.add(x, tf.mul(delta, scale)), candidate);
    return tf.clipByValue(scaled, 0, 1) as tf.Tensor4D;
  });
}

/**
 * Budgeted form of a minimal-norm attack: each found point projected onto the `budget` ball around x,
 * kept where the model still misclassifies it (judged on the point as returned, since the projection
 * may undo it), else the clean image. Returns a new tensor; the inputs are not disposed.
 */
export function projectOrClean(fn: (x: tf.Tensor4D) => tf.Tensor2D, found: tf.Tensor4D, x: tf.Tensor4D, labels: tf.Tensor1D, budget: Budget): tf.Tensor4D {
  return tf.tidy(() => {
    const inBall = project(found, x, budget);
    const ok = tf.reshape(tf.notEqual(tf.argMax(fn(inBall), 1), tf.cast(labels, 'int32')), [-1, 1, 1, 1]);
    return tf.where(tf.broadcastTo(ok, x.shape), inBall, x) as tf.Tensor4D;
  });
}

/** A uniform random point of the budget ball around x (then clipped to [0,1]); seeded, deterministic. */
export function randomStart(x: tf.Tensor4D, budget: Budget, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    if (budget.norm === 'linf') {
      const noise = tf.randomUniform(x.shape, -budget.eps, budget.eps, 'float32', seed);
      return project(tf.add(x, noise) as tf.Tensor4D, x, budget);
    }
    // Uniform in the L2 ball: Gaussian direction, radius eps * U^(1/n).
    const n = x.shape[1]! * x.shape[2]! * x.shape[3]!;
    // tfjs' randomNormal treats seed 0 as "unseeded" (randomUniform does not): never pass it 0.
    const dir = tf.randomNormal(x.shape, 0, 1, 'float32', seed === 0 ? 0x9e3779b9 : seed);
    const unit = tf.div(dir, tf.maximum(l2NormPerExample(dir as tf.Tensor4D).reshape([-1, 1, 1, 1]), 1e-30));
    const u = tf.randomUniform([x.shape[0], 1, 1, 1], 0, 1, 'float32', seed + 7919);
    const r = tf.mul(tf.pow(u, 1 / n), budget.eps);
    return project(tf.add(x, tf.mul(unit, r)) as tf.Tensor4D, x, budget);
  });
}

/** Deterministic sub-seed for restart `k` (and any other integer stream index) of a base seed. */
export function subSeed(seed: number, k: number): number {
  // Large odd multiplier keeps streams of neighbouring base seeds apart.
  return (Math.imul(seed | 0, 2654435761) + Math.imul(k + 1, 40503)) >>> 0;
}

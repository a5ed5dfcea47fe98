/**
 * Linearising a classifier's decision boundary, as the boundary attacks (FAB, DeepFool) do: per example
 * the logit gap to a class and its input gradient, and the class whose linearised boundary is closest.
 */
import * as tf from '@tensorflow/tfjs';
import type { Norm } from '../src/types.ts';

/** Per-row norm of [n, d] in `norm`. */
export function rowNorm(t: tf.Tensor2D, norm: Norm): tf.Tensor1D {
  return tf.tidy(() => (norm === 'linf' ? tf.max(tf.abs(t), 1) : norm === 'l2' ? tf.sqrt(tf.sum(tf.square(t), 1)) : tf.sum(tf.abs(t), 1)) as tf.Tensor1D);
}

/** Per-row dual norm (the one that turns a logit gap into a distance to its linearised boundary). */
export function dualNorm(t: tf.Tensor2D, norm: Norm): tf.Tensor1D {
  return tf.tidy(() => (norm === 'linf' ? tf.sum(tf.abs(t), 1) : norm === 'l2' ? tf.sqrt(tf.sum(tf.square(t), 1)) : tf.max(tf.abs(t), 1)) as tf.Tensor1D);
}

/**
 * The linearised boundary FAB and DeepFool step to, at x [n,h,w,c]: per example the logit gap f_s - f_y and its
 * input gradient [n,d], where s is the target (FAB-T) or, untargeted, the class whose linearised
 * boundary is closest in `norm` among `candidates` (one gradient per candidate class).
 */
export function linearise(fn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, target: tf.Tensor1D | null, candidates: number[], norm: Norm): { gap: tf.Tensor1D; grad: tf.Tensor2D } {
  const n = x.shape[0];
  const flat = (g: tf.Tensor) => tf.reshape(g, [n, -1]) as tf.Tensor2D;
  const gapTo = (z: tf.Tensor2D, s: tf.Tensor1D) => tf.sub(pick(z, s), pick(z, y)) as tf.Tensor1D;
  return tf.tidy(() => {
    if (target) {
      // tf.keep lets the gap out of the gradient's scope but also out of this tidy: copy it, free it by hand.
      let kept: tf.Tensor1D | undefined;
      const grad = tf.grad((input: tf.Tensor) => {
        const g = gapTo(fn(input as tf.Tensor4D), target);
        kept = tf.keep(g);
        return tf.sum(g) as tf.Scalar;
      })(x);
      const gap = kept!.clone();
      kept!.dispose();
      return { gap, grad: flat(grad) };
    }
    const z = fn(x);
    let best: { dist: tf.Tensor1D; gap: tf.Tensor1D; grad: tf.Tensor2D } | undefined;
    for (const s of candidates) {
      const cls = tf.fill([n], s, 'int32') as tf.Tensor1D;
      const gap = gapTo(z, cls);
      const grad = flat(tf.grad((input: tf.Tensor) => tf.sum(gapTo(fn(input as tf.Tensor4D), cls)) as tf.Scalar)(x));
      // Distance to the linearised boundary; the true class itself is never a candidate.
      const dist = tf.where(tf.equal(y, s), tf.fill([n], Infinity), tf.div(tf.abs(gap), tf.add(dualNorm(grad, norm), 1e-12))) as tf.Tensor1D;
      if (!best) {
        best = { dist, gap, grad };
        continue;
      }
      const closer = tf.less(dist, best.dist);
      best = {
        dist: tf.where(closer, dist, best.dist) as tf.Tensor1D,
        gap: tf.where(closer, gap, best.gap) as tf.Tensor1D,
        grad: tf.where(tf.broadcastTo(closer.reshape([-1, 1]), grad.shape), grad, best.grad) as tf.Tensor2D,
      };
    }
    return { gap: best!.gap, grad: best!.grad };
  });
}

/** z[i, s_i] per row. */
export function pick(z: tf.Tensor2D, s: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(z, tf.oneHot(tf.cast(s, 'int32'), z.shape[1])), 1) as tf.Tensor1D);
}

/**
 * The ONE place the perturbation budget is enforced: every attack's iterates and output go through
 * `project`. It maps a candidate image onto {x' : ||x' - x|| <= eps} ∩ [0,1]^n.
 */
import * as tf from '@tensorflow/tfjs';
import { normalSeed } from '../src/data/rng.ts';
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

/** Per-example L1 norm of a NHWC tensor, shape [batch]. */
export function l1NormPerExample(t: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.abs(t), [1, 2, 3]) as tf.Tensor1D);
}

/** Per-example L0 norm of a NHWC tensor: the number of pixels (h, w) with any non-zero channel, shape [batch]. */
export function l0NormPerExample(t: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.cast(tf.any(tf.notEqual(t, 0), 3), 'float32'), [1, 2]) as tf.Tensor1D);
}

/** Per-example norm of a NHWC tensor in `norm`, shape [batch]. */
export function normPerExample(t: tf.Tensor4D, norm: Norm): tf.Tensor1D {
  return norm === 'linf' ? linfNormPerExample(t) : norm === 'l2' ? l2NormPerExample(t) : norm === 'l0' ? l0NormPerExample(t) : l1NormPerExample(t);
}

/**
 * Pixels kept by the L0-and-box projection of one example: the `k` pixels whose change lowers the
 * squared distance to the candidate most, i.e. with the largest gain ||c_p - x_p||² - ||c_p - clip(c_p)||²
 * (a kept pixel takes the clipped candidate, a dropped one returns to x), ties to the lower index.
 * `gain` holds one value per pixel; returns a 0/1 mask of them.
 */
export function l0Support(gain: ArrayLike<number>, k: number): Uint8Array {
  const p = gain.length;
  const keep = new Uint8Array(p);
  if (k >= p) return keep.fill(1);
  if (k <= 0) return keep;
  const order = Array.from({ length: p }, (_, i) => i).sort((a, b) => gain[b] - gain[a] || a - b);
  for (let i = 0; i < k; i++) keep[order[i]] = 1;
  return keep;
}

/**
 * Threshold lambda >= 0 of the L1-and-box projection of one example: the least lambda with
 * sum_i min(max(a_i - lambda, 0), u_i) <= radius, for magnitudes a_i >= 0 and room u_i >= 0 towards
 * the box edge. The sum is piecewise linear and falls as lambda grows, with kinks at a_i (a pixel starts
 * to move) and a_i - u_i (it stops at the box); walking the kinks from the top finds the segment where
 * it crosses the radius, exactly, in O(n log n). Float64 throughout.
 */
export function l1Threshold(a: ArrayLike<number>, u: ArrayLike<number>, radius: number): number {
  const n = a.length;
  const starts = new Float64Array(n);
  const stops = new Float64Array(n);
  let total = 0;
  let top = 0;
  for (let i = 0; i < n; i++) {
    starts[i] = a[i];
    stops[i] = a[i] - u[i];
    total += Math.min(a[i], u[i]);
    if (a[i] > top) top = a[i];
  }
  if (total <= radius) return 0;
  starts.sort();
  stops.sort();
  // Descending walk: at `prev` the sum is `f` (<= radius), and it grows by `moving` per unit lambda below it.
  let i = n - 1;
  let j = n - 1;
  let prev = top;
  let f = 0;
  let moving = 0;
  for (;;) {
    const vs = i >= 0 ? starts[i] : -Infinity;
    const vt = j >= 0 ? stops[j] : -Infinity;
    const v = Math.max(vs, vt, 0);
    const fv = f + moving * (prev - v);
    // The first kink where the sum passes the radius: it crosses inside (v, prev], where moving > 0.
    if (fv > radius) return prev - (radius - f) / moving;
    if (v === 0 && vs <= 0 && vt <= 0) return 0; // not reached: the sum at 0 exceeds the radius
    f = fv;
    prev = v;
    if (vs >= vt) {
      moving++;
      i--;
    } else {
      moving--;
      j--;
    }
  }
}

/**
 * Project `candidate` onto the `budget` ball around `x` and clip to [0,1]; returns a new tensor.
 * L-inf: an elementwise clip to [max(x-eps,0), min(x+eps,1)], so a candidate already inside is returned
 * bit-for-bit. L2: radial scaling of delta = candidate - x when ||delta|| > eps, then the box clip
 * (which only moves pixels towards x, so it cannot leave the ball). The L2 radius is shrunk by
 * sqrt(n)·2^-24 so float32 rounding of x + delta cannot push the result past eps.
 * L1: the exact Euclidean projection onto the intersection of the ball and the box (radial scaling
 * then clipping would not be the nearest point): delta_i = sign(c_i)·min(max(|c_i| - lambda, 0), u_i),
 * u_i the room to the box edge on c_i's side, lambda from `l1Threshold`; a candidate already inside
 * both is returned bit-for-bit. The radius is shrunk by 4n·2^-24 for float32 rounding (three roundings per pixel).
 * L0 (eps a number of pixels): the exact Euclidean projection onto "at most floor(eps) pixels differ from
 * x" and the box: clip to [0,1], keep the pixels of largest gain (`l0Support`) and reset the rest to x
 * exactly; a candidate already inside both is returned bit-for-bit.
 */
export function project(candidate: tf.Tensor4D, x: tf.Tensor4D, budget: Budget): tf.Tensor4D {
  return tf.tidy(() => {
    if (budget.norm === 'linf') {
      const lo = tf.maximum(tf.sub(x, budget.eps), 0);
      const hi = tf.minimum(tf.add(x, budget.eps), 1);
      return tf.minimum(tf.maximum(candidate, lo), hi) as tf.Tensor4D;
    }
    if (budget.norm === 'l1') return projectL1(candidate, x, budget.eps);
    if (budget.norm === 'l0') return projectL0(candidate, x, budget.eps);
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
 * Projection of a perturbation on its own (a universal perturbation, one delta shared by every image)
 * onto the `norm` ball of radius eps, with no box: the box is per image, applied by `project` when
 * the perturbation is added. L-inf: clip to ±eps; L2: radial scaling with the radius shrunk as in
 * `project`. delta [1,h,w,c] (or any batch, each row projected alone); other norms are refused.
 */
export function projectPerturbation(delta: tf.Tensor4D, budget: Budget): tf.Tensor4D {
  if (budget.norm === 'linf') return tf.clipByValue(delta, -budget.eps, budget.eps) as tf.Tensor4D;
  if (budget.norm !== 'l2') throw new Error(`projectPerturbation: norm must be "linf" or "l2", got ${String(budget.norm)}`);
  return tf.tidy(() => {
    const n = delta.shape[1]! * delta.shape[2]! * delta.shape[3]!;
    const radius = Math.max(0, budget.eps * (1 - 1e-6) - Math.sqrt(n) * FLOAT32_UNIT);
    const norm = l2NormPerExample(delta).reshape([-1, 1, 1, 1]);
    return tf.mul(delta, tf.minimum(1, tf.div(radius, tf.maximum(norm, 1e-30)))) as tf.Tensor4D;
  });
}

/** L0 branch of `project` (inside its tidy): the box clip, then at most floor(eps) changed pixels (`l0Support`). */
function projectL0(candidate: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  const [batch, h, w] = x.shape;
  const p = h * w;
  const k = Math.floor(eps);
  const clipped = tf.clipByValue(candidate, 0, 1);
  // Rows already within k changed pixels and the box are returned as given.
  const changed = l0NormPerExample(tf.sub(clipped, x) as tf.Tensor4D).dataSync();
  const inBox = tf.all(tf.equal(clipped, candidate), [1, 2, 3]).dataSync();
  const gain = tf.sum(tf.sub(tf.square(tf.sub(candidate, x)), tf.square(tf.sub(candidate, clipped))), 3).dataSync();
  const mask = new Uint8Array(batch * p);
  for (let b = 0; b < batch; b++) {
    if (changed[b] <= k && inBox[b]) mask.fill(1, b * p, (b + 1) * p);
    else mask.set(l0Support(gain.subarray(b * p, (b + 1) * p), k), b * p);
  }
  const keep = tf.broadcastTo(tf.tensor4d(mask, [batch, h, w, 1], 'bool'), x.shape);
  return tf.where(keep, clipped, x) as tf.Tensor4D;
}

/** L1 branch of `project` (inside its tidy). */
function projectL1(candidate: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  const [batch, h, w, c] = x.shape;
  const n = h * w * c;
  const radius = Math.max(0, eps * (1 - 1e-6) - 4 * n * FLOAT32_UNIT);
  const delta = tf.sub(candidate, x);
  const a = tf.abs(delta);
  // Room towards the box edge on the side delta points to (0 <= x <= 1, so room >= 0).
  const room = tf.where(tf.greaterEqual(delta, 0), tf.sub(1, x), x);
  const av = a.dataSync();
  const uv = room.dataSync();
  const lambdas = new Float32Array(batch);
  const inside = new Uint8Array(batch);
  for (let b = 0; b < batch; b++) {
    const ab = av.subarray(b * n, (b + 1) * n);
    const ub = uv.subarray(b * n, (b + 1) * n);
    let sum = 0;
    let inBox = true;
    for (let i = 0; i < n; i++) {
      sum += ab[i];
      if (ab[i] > ub[i]) inBox = false;
    }
    inside[b] = inBox && sum <= radius ? 1 : 0;
    // Rows already inside are returned as given: no threshold needed.
    lambdas[b] = inside[b] ? 0 : l1Threshold(ab, ub, radius);
  }
  const lambda = tf.tensor4d(lambdas, [batch, 1, 1, 1]);
  const moved = tf.minimum(tf.relu(tf.sub(a, lambda)), room);
  const projected = tf.clipByValue(tf.add(x, tf.mul(tf.sign(delta), moved)), 0, 1);
  const keep = tf.broadcastTo(tf.tensor4d(inside, [batch, 1, 1, 1], 'bool'), x.shape);
  return tf.where(keep, candidate, projected) as tf.Tensor4D;
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
    if (budget.norm === 'l0') {
      // floor(eps) pixels drawn uniformly without replacement (random keys, the smallest k), each set
      // to a uniform colour in [0,1]^c: a uniform point of the pixel-sparse part of the ball.
      const [batch, h, w] = x.shape;
      const k = Math.min(Math.floor(budget.eps), h * w);
      const keys = tf.randomUniform([batch, h * w], 0, 1, 'float32', seed + 104729);
      const kth = k === 0 ? tf.fill([batch, 1], -1) : tf.reshape(tf.neg(tf.topk(tf.neg(keys), k).values.slice([0, k - 1], [batch, 1])), [batch, 1]);
      const chosen = tf.reshape(tf.lessEqual(keys, kth), [batch, h, w, 1]);
      const colour = tf.randomUniform(x.shape, 0, 1, 'float32', seed);
      return project(tf.where(tf.broadcastTo(chosen, x.shape), colour, x) as tf.Tensor4D, x, budget);
    }
    const n = x.shape[1]! * x.shape[2]! * x.shape[3]!;
    if (budget.norm === 'l1') {
      // Uniform in the L1 ball: Laplace coordinates normalised to the L1 sphere, radius eps * U^(1/n).
      const e = tf.neg(tf.log(tf.randomUniform(x.shape, 1e-12, 1, 'float32', seed)));
      const sign = tf.sign(tf.sub(tf.randomUniform(x.shape, 0, 1, 'float32', seed + 104729), 0.5));
      const dir = tf.mul(e, sign);
      const unit = tf.div(dir, tf.maximum(l1NormPerExample(dir as tf.Tensor4D).reshape([-1, 1, 1, 1]), 1e-30));
      const u = tf.randomUniform([x.shape[0], 1, 1, 1], 0, 1, 'float32', seed + 7919);
      return project(tf.add(x, tf.mul(unit, tf.mul(tf.pow(u, 1 / n), budget.eps))) as tf.Tensor4D, x, budget);
    }
    // Uniform in the L2 ball: Gaussian direction, radius eps * U^(1/n).
    const dir = tf.randomNormal(x.shape, 0, 1, 'float32', normalSeed(seed));
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

/**
 * Minimal-norm step onto a hyperplane inside the pixel box, the geometric core of FAB (Croce & Hein
 * 2020): for each row, the delta of least L-inf or L2 norm with w·delta = c and 0 <= p + delta <= 1.
 * Batched on the backend (one sort per row), since FAB takes two such projections per image and step.
 *
 * Both problems reduce to one monotone piecewise-linear equation after flipping signs so that c >= 0:
 * moving pixel i by s_i = sign(w_i) gains |w_i| per unit and has room u_i (to 1 or to 0).
 * - L-inf: delta_i = s_i·min(t, u_i) with the least t such that sum_i |w_i|·min(t, u_i) = c.
 * - L2 (KKT): delta_i = s_i·min(lambda·|w_i|, u_i) with sum_i |w_i|·min(lambda·|w_i|, u_i) = c.
 * - L1 (a fractional knapsack): the pixels with the largest |w_i| move all the way to their bound until
 *   the next one would pass c; the pixels at that |w| (ties) share the rest equally in proportion to their
 *   room (every split of it costs the same L1), the others stay.
 * Sorting the breakpoints (u_i, resp. u_i / |w_i|) turns each into a cumulative sum and one linear
 * solve. When even the whole box cannot reach c, every pixel moves to its bound (the closest the box
 * gets to the hyperplane).
 */
import * as tf from '@tensorflow/tfjs';
import { gatherRows } from '../src/native/gather.ts';
import type { Norm } from '../src/types.ts';

/**
 * Per row, the least-`norm` delta [n,d] with w·delta = c and p + delta in [0,1]^d (p: points [n,d] in
 * [0,1], w: normals [n,d], c: offsets [n]); rows that cannot reach the hyperplane inside the box get
 * the box corner that comes closest. Caller disposes.
 */
export function hyperplaneStep(p: tf.Tensor2D, w: tf.Tensor2D, c: tf.Tensor1D, norm: Norm): tf.Tensor2D {
  if (p.rank !== 2 || w.rank !== 2 || p.shape[0] !== w.shape[0] || p.shape[1] !== w.shape[1]) {
    throw new Error(`hyperplaneStep: p [${p.shape}] and w [${w.shape}] must both be [rows, d]`);
  }
  if (c.rank !== 1 || c.shape[0] !== p.shape[0]) throw new Error(`hyperplaneStep: c [${c.shape}] must be [rows=${p.shape[0]}]`);
  const d = p.shape[1];
  return tf.tidy(() => {
    // Arithmetic masks instead of tf.where: tfjs' where copies same-shape operands (a full Identity
    // kernel each), which cost as much as the sort here.
    const rows = p.shape[0];
    // Flip each row so that its target c is >= 0; s is then the direction that raises w·delta.
    const flip = tf.sub(1, tf.mul(tf.cast(tf.less(c, 0), 'float32'), 2)).reshape([-1, 1]);
    const target = tf.abs(c).reshape([-1, 1]);
    const wf = tf.mul(w, flip);
    const s = tf.sign(wf);
    const a = tf.abs(wf);
    // Room to move along s: up to 1 where w > 0, down to 0 otherwise: p + [w > 0]·(1 - 2p).
    const room = tf.add(p, tf.mul(tf.cast(tf.greater(wf, 0), 'float32'), tf.sub(1, tf.mul(p, 2))));
    if (norm === 'l1') return tf.mul(tf.mul(s, l1Move(a as tf.Tensor2D, room as tf.Tensor2D, target)), tf.cast(tf.greater(target, 0), 'float32')) as tf.Tensor2D;
    // Where each pixel saturates (L-inf: at t = u; L2: at lambda = u/|w|) and the slope it adds while
    // free. A pixel with w = 0 has slope 0 and s = 0: wherever its breakpoint sorts, it adds nothing.
    const brk = norm === 'linf' ? room : tf.div(room, tf.maximum(a, 1e-30));
    const slope = norm === 'linf' ? a : tf.square(a);
    // Ascending breakpoints (topk of the negation), with each pixel's slope in that order; a pixel's
    // gain once saturated is slope x breakpoint in both norms (|w|·u).
    const { values, indices } = tf.topk(tf.neg(brk), d, true);
    const sortedBrk = tf.neg(values);
    const rowStart = tf.range(0, rows * d, d, 'int32');
    const byRow = (t: tf.Tensor, flatIdx: tf.Tensor1D, cols: number) => gatherRows(tf.reshape(t, [-1]), flatIdx).reshape([rows, cols]);
    const sortedSlope = byRow(slope, tf.add(indices, rowStart.reshape([-1, 1])).reshape([-1]) as tf.Tensor1D, d);
    // At the k-th breakpoint: gained = the gain of the pixels before k (saturated), free = the slope of k and after.
    const gained = tf.cumsum(tf.mul(sortedSlope, sortedBrk), 1, true, false);
    const free = tf.cumsum(sortedSlope, 1, false, true);
    const reach = tf.add(gained, tf.mul(sortedBrk, free));
    // The first breakpoint that reaches c bounds the segment holding the solution; none: out of reach.
    const k = tf.sum(tf.cast(tf.less(reach, target), 'int32'), 1);
    const feasible = tf.cast(tf.less(k, d), 'float32').reshape([-1, 1]);
    const kk = tf.add(tf.minimum(k, tf.scalar(d - 1, 'int32')), rowStart) as tf.Tensor1D;
    const level = tf.div(tf.sub(target, byRow(gained, kk, 1)), tf.maximum(byRow(free, kk, 1), 1e-30));
    const move = norm === 'linf' ? tf.minimum(level, room) : tf.minimum(tf.mul(level, a), room);
    // Out of reach: every pixel to its bound (the box corner closest to the hyperplane).
    const step = tf.add(room, tf.mul(feasible, tf.sub(move, room)));
    // Rows with c = 0 are on the hyperplane already.
    return tf.mul(tf.mul(s, step), tf.cast(tf.greater(target, 0), 'float32')) as tf.Tensor2D;
  });
}

/** L1 branch of `hyperplaneStep`: per row the move along s (>= 0, <= room) of least sum reaching gain `target` [rows,1], pixels by gain |w| first. */
function l1Move(a: tf.Tensor2D, room: tf.Tensor2D, target: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [rows, d] = a.shape;
    const gain = tf.mul(a, room);
    const { values: sortedA, indices } = tf.topk(a, d, true);
    const rowStart = tf.range(0, rows * d, d, 'int32');
    const sortedGain = gatherRows(tf.reshape(gain, [-1]), tf.add(indices, rowStart.reshape([-1, 1])).reshape([-1]) as tf.Tensor1D).reshape([rows, d]);
    // The first pixel (by falling |w|) whose full move reaches the target sets the threshold |w| = tau.
    const upTo = tf.cumsum(sortedGain, 1);
    const k = tf.minimum(tf.sum(tf.cast(tf.less(upTo, target), 'int32'), 1), tf.scalar(d - 1, 'int32'));
    const feasible = tf.cast(tf.greaterEqual(tf.max(upTo, 1, true), target), 'float32');
    const tau = gatherRows(tf.reshape(sortedA, [-1]), tf.add(k, rowStart) as tf.Tensor1D).reshape([rows, 1]);
    const above = tf.cast(tf.greater(a, tau), 'float32');
    const tied = tf.mul(tf.cast(tf.equal(a, tau), 'float32'), tf.cast(tf.greater(a, 0), 'float32'));
    const rest = tf.sub(target, tf.sum(tf.mul(above, gain), 1, true));
    const share = tf.clipByValue(tf.div(rest, tf.maximum(tf.sum(tf.mul(tied, gain), 1, true), 1e-30)), 0, 1);
    const move = tf.add(tf.mul(above, room), tf.mul(tf.mul(tied, share), room));
    // Out of reach: every pixel to its bound, as in the other norms.
    return tf.add(tf.mul(feasible, move), tf.mul(tf.sub(1, feasible), room)) as tf.Tensor2D;
  });
}

/**
 * The JPEG-DL quantiser and its variants, all on the 0-255 DCT-coefficient scale.
 *
 * soft (the reference's soft deterministic quantiser Q_d): for a coefficient z and step q, take
 * the L integers i = k0..k0+L-1 around round(z/q) (window start k0 clamped so every index stays
 * within +-(2^(b-1)-1)), weights p = softmax_i(-alpha (i q - z)^2), output sum_i p_i i q.
 * The indices carry no gradient; z and q get gradients through the weights and through i q.
 * hard: round(z/q) q (standard JPEG; no index clamp, as a real codec).
 * bpda-identity: hard forward; backward is the straight-through estimator of round():
 * d/dz = 1, d/dq = round(z/q) - z/q.
 * bpda-soft: hard forward; backward is the exact gradient of the soft quantiser at (z, q).
 * 'soft' can also be differentiated in closed form (softGradient: 'analytic'); same numbers, less memory.
 */
import * as tf from '@tensorflow/tfjs';
import { customGrad } from '../layers/internals.ts';

/** Quantiser variant. */
export type QuantMode = 'soft' | 'hard' | 'bpda-identity' | 'bpda-soft';

/** Every mode, for validation and CLI choices. */
export const QUANT_MODES: readonly QuantMode[] = ['soft', 'hard', 'bpda-identity', 'bpda-soft'];

/** Smallest and largest allowed step, applied before every forward pass (as the reference). */
export const Q_MIN = 1e-5;
export const Q_MAX = 255;
/** Floor on hardness-matched alpha (the reference's). */
export const ALPHA_MIN = 1e-5;

export interface QuantizerOptions {
  /** Variant; default 'soft'. */
  mode?: QuantMode;
  /** Fixed temperature alpha > 0 (default 5); ignored when `hardness` is set. */
  alpha?: number;
  /** Hardness matching: alpha = hardness / q^2 per coefficient (floored at 1e-5), no gradient through alpha. */
  hardness?: number;
  /** Window size L (default 5). */
  levels?: number;
  /** Index bit width b (default 8): indices stay within +-(2^(b-1)-1). */
  bits?: number;
  /**
   * How 'soft' mode differentiates: 'autodiff' (default; tfjs autodiff through the window, as the
   * reference) or 'analytic' (same gradient in closed form; keeps no L-fold tensors for backprop,
   * faster and leaner).
   */
  softGradient?: SoftGradient;
}

/** How the soft quantiser is differentiated. */
export type SoftGradient = 'autodiff' | 'analytic';

/** Resolved quantiser options. */
export interface ResolvedQuantizer {
  mode: QuantMode;
  alpha: number;
  hardness: number | undefined;
  levels: number;
  bits: number;
  softGradient: SoftGradient;
}

/** Validate and fill defaults; throws an Error naming the bad option. */
export function resolveQuantizer(opts: QuantizerOptions = {}, where = 'quantizer'): ResolvedQuantizer {
  const mode = opts.mode ?? 'soft';
  if (!QUANT_MODES.includes(mode)) throw new Error(`${where}: mode must be one of ${QUANT_MODES.join(', ')}, got "${mode}"`);
  const alpha = opts.alpha ?? 5;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw new Error(`${where}: alpha must be a finite number > 0, got ${alpha}`);
  }
  const hardness = opts.hardness ?? undefined;
  if (hardness !== undefined && (typeof hardness !== 'number' || !Number.isFinite(hardness) || hardness <= 0)) {
    throw new Error(`${where}: hardness must be a finite number > 0, got ${hardness}`);
  }
  const levels = opts.levels ?? 5;
  if (!Number.isInteger(levels) || levels < 1) throw new Error(`${where}: levels must be an integer >= 1, got ${levels}`);
  const bits = opts.bits ?? 8;
  if (!Number.isInteger(bits) || bits < 2 || bits > 24) throw new Error(`${where}: bits must be an integer in 2..24, got ${bits}`);
  if (2 ** (bits - 1) - levels < -(2 ** (bits - 1) - 1)) {
    throw new Error(`${where}: a window of ${levels} levels does not fit in ${bits}-bit indices`);
  }
  const softGradient = opts.softGradient ?? 'autodiff';
  if (softGradient !== 'autodiff' && softGradient !== 'analytic') {
    throw new Error(`${where}: softGradient must be "autodiff" or "analytic", got "${softGradient}"`);
  }
  return { mode, alpha, hardness, levels, bits, softGradient };
}

/** Index range [lo, hi] allowed for the window start k0. */
export function windowStartRange(levels: number, bits: number): [number, number] {
  return [-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - levels];
}

/**
 * Window start k0 = clamp(round(z/q) - floor(L/2), lo, hi), with NO gradient to z or q
 * (built under tf.customGrad so nothing can flow through round or the clamp).
 */
export function windowStart(z: tf.Tensor, q: tf.Tensor, levels = 5, bits = 8): tf.Tensor {
  const [lo, hi] = windowStartRange(levels, bits);
  const f = customGrad((zz: tf.Tensor, qq: tf.Tensor) => {
    const zShape = zz.shape;
    const qShape = qq.shape;
    const value = tf.tidy(() => tf.clipByValue(tf.sub(tf.round(tf.div(zz, qq)), Math.floor(levels / 2)), lo, hi));
    return { value, gradFunc: () => [tf.zeros(zShape), tf.zeros(qShape)] };
  });
  return (f as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(z, q);
}

// Alpha as a number, or per-coefficient hardness/q^2 computed from values only (no gradient).
function alphaOf(q: tf.Tensor, r: ResolvedQuantizer): number | tf.Tensor {
  if (r.hardness === undefined) return r.alpha;
  return tf.tidy(() => {
    const qv = tf.clone(q);
    const f = customGrad((x: tf.Tensor) => ({
      value: tf.maximum(tf.div(r.hardness as number, tf.square(x)), ALPHA_MIN),
      gradFunc: () => tf.zeros(x.shape),
    }));
    return (f as (a: tf.Tensor) => tf.Tensor)(qv);
  });
}

function expandLast(a: number | tf.Tensor): number | tf.Tensor {
  return typeof a === 'number' ? a : tf.expandDims(a, -1);
}

/**
 * Soft deterministic quantiser Q_d. z: coefficients; q: steps broadcastable to z. Written as
 * e_i = i q - z = (k0 q - z) + j q (j = 0..L-1) and Q_d = z + sum_i p_i e_i, which equals
 * sum_i p_i i q because the weights sum to 1; this keeps three L-fold tensors for backprop instead of five.
 */
export function softQuantize(z: tf.Tensor, q: tf.Tensor, opts: QuantizerOptions = {}): tf.Tensor {
  const r = resolveQuantizer(opts, 'softQuantize');
  if (r.softGradient === 'analytic') return withSoftGradient(z, q, r, (zz, qq) => softValue(zz, qq, r));
  return softValue(z, q, r);
}

// The soft quantiser's value, differentiable by autodiff.
function softValue(z: tf.Tensor, q: tf.Tensor, r: ResolvedQuantizer): tf.Tensor {
  return tf.tidy(() => {
    const k0 = windowStart(z, q, r.levels, r.bits);
    const alpha = expandLast(alphaOf(q, r));
    const j = tf.range(0, r.levels, 1, 'float32');
    const d = tf.sub(tf.mul(k0, q), z);
    const e = tf.add(tf.expandDims(d, -1), tf.mul(tf.expandDims(q, -1), j));
    const p = tf.softmax(tf.mul(tf.square(e), typeof alpha === 'number' ? -alpha : tf.neg(alpha)));
    return tf.add(z, tf.sum(tf.mul(p, e), -1));
  });
}

/** Sum a full-shape gradient over the axes along which a tensor of `shape` was broadcast. */
function reduceToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let a = 0; a < g.rank; a++) if (a < lead || shape[a - lead] === 1) axes.push(a);
  return axes.length === 0 ? g : tf.reshape(tf.sum(g, axes), shape);
}

/** Hard quantiser round(z/q) q (autodiff: zero gradient to z, round(z/q) to q). */
export function hardQuantize(z: tf.Tensor, q: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.round(tf.div(z, q)), q));
}

/** Hard forward; straight-through backward: dz = dy, dq = dy (round(z/q) - z/q). */
export function bpdaIdentityQuantize(z: tf.Tensor, q: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const f = customGrad((zz: tf.Tensor, qq: tf.Tensor, save: tf.GradSaveFunc) => {
      save([zz, qq]);
      return {
        value: hardQuantize(zz, qq),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [zs, qs] = saved;
          return tf.tidy(() => {
            const ratio = tf.div(zs, qs);
            return [dy.clone(), reduceToShape(tf.mul(dy, tf.sub(tf.round(ratio), ratio)), qs.shape)];
          });
        },
      };
    });
    return (f as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(z, q);
  });
}

/**
 * Analytic gradient of the soft quantiser at (z, q), elementwise (z and q of the same shape):
 * dQ/dz = 2 alpha q^2 Var_p(i); dQ/dq = E_p[i] - 2 alpha q Cov_p(i, e i), e = i q - z, alpha held
 * constant. Moments are taken of the window offset j = i - k0 (0..L-1), not of i, because
 * E[i^2] - E[i]^2 cancels catastrophically in float32 when |i| is near 127:
 * Var(i) = Var(j), Cov(i, e i) = (2 k0 q - z) Var(j) + q Cov(j, j^2).
 */
export function softQuantizeGrads(z: tf.Tensor, q: tf.Tensor, opts: QuantizerOptions = {}): { dz: tf.Tensor; dq: tf.Tensor } {
  const r = resolveQuantizer(opts, 'softQuantizeGrads');
  return tf.tidy(() => {
    const k0 = windowStart(z, q, r.levels, r.bits);
    const alpha = alphaOf(q, r);
    const j = tf.range(0, r.levels, 1, 'float32');
    const q1 = tf.expandDims(q, -1);
    const e = tf.add(tf.expandDims(tf.sub(tf.mul(k0, q), z), -1), tf.mul(q1, j));
    const a1 = expandLast(alpha);
    const p = tf.softmax(tf.mul(tf.square(e), typeof a1 === 'number' ? -a1 : tf.neg(a1)));
    const ej = tf.sum(tf.mul(p, j), -1);
    const c = tf.sub(j, tf.expandDims(ej, -1)); // centred offsets
    const varJ = tf.sum(tf.mul(p, tf.square(c)), -1);
    const covJJ2 = tf.sum(tf.mul(p, tf.mul(c, tf.square(j))), -1);
    const covIEI = tf.add(tf.mul(tf.sub(tf.mul(tf.mul(k0, q), 2), z), varJ), tf.mul(q, covJJ2));
    const twoAlpha = typeof alpha === 'number' ? 2 * alpha : tf.mul(alpha, 2);
    return {
      dz: tf.mul(tf.mul(twoAlpha, tf.square(q)), varJ),
      dq: tf.sub(tf.add(k0, ej), tf.mul(tf.mul(twoAlpha, q), covIEI)),
    };
  });
}

/**
 * `forward(z, q)` as the value, the soft quantiser's closed-form gradient as the backward pass
 * (q may be broadcast against z; its gradient is summed back to q's shape).
 */
function withSoftGradient(z: tf.Tensor, q: tf.Tensor, r: ResolvedQuantizer, forward: (z: tf.Tensor, q: tf.Tensor) => tf.Tensor): tf.Tensor {
  const f = customGrad((zz: tf.Tensor, qq: tf.Tensor, save: tf.GradSaveFunc) => {
    save([zz, qq]);
    return {
      value: forward(zz, qq),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [zs, qs] = saved;
          const g = softQuantizeGrads(zs, tf.mul(qs, tf.onesLike(zs)), r);
          return [tf.mul(dy, g.dz), reduceToShape(tf.mul(dy, g.dq), qs.shape)];
        }),
    };
  });
  return (f as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(z, q);
}

/** Hard forward; backward is the soft quantiser's gradient (BPDA with the soft surrogate). */
export function bpdaSoftQuantize(z: tf.Tensor, q: tf.Tensor, opts: QuantizerOptions = {}): tf.Tensor {
  const r = resolveQuantizer(opts, 'bpdaSoftQuantize');
  return withSoftGradient(z, q, r, hardQuantize);
}

/** Quantise coefficients z with steps q (broadcastable to z) in the given mode. */
export function quantize(z: tf.Tensor, q: tf.Tensor, opts: QuantizerOptions = {}): tf.Tensor {
  const r = resolveQuantizer(opts, 'quantize');
  switch (r.mode) {
    case 'soft':
      return softQuantize(z, q, r);
    case 'hard':
      return hardQuantize(z, q);
    case 'bpda-identity':
      return bpdaIdentityQuantize(z, q);
    case 'bpda-soft':
      return bpdaSoftQuantize(z, q, r);
  }
}

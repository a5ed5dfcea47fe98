/**
 * Gradient probes of one model on one batch, after the checks Carlini et al. (2019, "On Evaluating
 * Adversarial Robustness") and Athalye, Carlini & Wagner (2018, "Obfuscated Gradients Give a False
 * Sense of Security") ask of a defence: is the input gradient zero (shattered), does it predict how the
 * loss changes over one grey level (finite differences), does its sign raise the loss more than random
 * directions do, and what the loss looks like around the image (Engstrom et al.'s loss surfaces).
 * The objective is an attack objective on logits (attacks/loss.ts); the margin by default, because
 * cross-entropy saturates in float32 on confidently classified images, leaving finite differences noise.
 */
import * as tf from '@tensorflow/tfjs';
import { objectiveGradient } from '../../attacks/gradient.ts';
import { attackObjective, type LossName } from '../../attacks/loss.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import { asLogitsFn, type Classifier } from '../types.ts';

/** Options of the probes: the L-inf budget the profile walks out to, and how the random directions and finite differences are drawn. */
export interface ProbeOptions {
  /** L-inf budget on the 0-1 pixel scale: the profiles step to t·eps (required). */
  eps: number;
  /** Fractions t of eps the loss profiles are taken at (default 0, 0.1, ..., 1). */
  profile?: number[];
  /** Random sign directions per image (default 8): the profile's comparison and the finite differences. */
  directions?: number;
  /** Finite-difference step on the 0-1 scale (default 1/255: the smallest change an 8-bit image can make). */
  fdStep?: number;
  /** Objective (default 'margin': max other logit - true logit, > 0 means misclassified). */
  loss?: LossName;
  /** Seed of the random directions (default 0): direction j of image i depends on (seed, i, j) only, not on the batch. */
  seed?: number;
}

/** Per image of the batch (arrays indexed by image; profiles by t, then image). */
export interface ProbeResult {
  /** Objective at the clean image. */
  objective: Float32Array;
  /** 1 when the model is right on the clean image. */
  correct: Uint8Array;
  /** Mean |∂objective/∂pixel| over the image's values (0: no gradient at all). */
  gradMean: Float32Array;
  /** Objective at clip(x + t·eps·sign(gradient)), per t of the profile (the FGSM direction). */
  alongGradient: Float32Array[];
  /** Mean over the random sign directions of the objective at clip(x + t·eps·r), per t. */
  randomMean: Float32Array[];
  /** Largest over the random sign directions, per t. */
  randomMax: Float32Array[];
  /**
   * How far the gradient's directional derivatives g·r_j are from central finite differences
   * (f(x + h·r_j) - f(x - h·r_j)) / 2h over the random directions: ||fd - g·r|| / (||fd|| + ||g·r||),
   * 0 when they agree, 1 when one of them is zero and the other is not (0 when both are zero).
   */
  fdError: Float32Array;
}

/** Resolved probe options (defaults applied, every value checked; errors name the option). */
export function resolveProbeOptions(o: ProbeOptions): Required<ProbeOptions> {
  if (o === null || typeof o !== 'object') throw new Error('probes: options must be an object with at least eps');
  if (typeof o.eps !== 'number' || !(o.eps > 0 && o.eps <= 1)) throw new Error(`eps: must be a number in (0, 1] on the 0-1 pixel scale, got ${String(o.eps)}`);
  const profile = o.profile ?? Array.from({ length: 11 }, (_, i) => i / 10);
  if (!Array.isArray(profile) || profile.length === 0 || profile.some((t) => typeof t !== 'number' || !(t >= 0 && t <= 1))) throw new Error(`profile: must be a non-empty list of fractions of eps in [0, 1], got ${JSON.stringify(o.profile)}`);
  const directions = o.directions ?? 8;
  if (!(Number.isInteger(directions) && directions >= 1)) throw new Error(`directions: must be an integer >= 1, got ${String(o.directions)}`);
  const fdStep = o.fdStep ?? 1 / 255;
  if (typeof fdStep !== 'number' || !(fdStep > 0 && fdStep <= 1)) throw new Error(`fdStep: must be a number in (0, 1], got ${String(o.fdStep)}`);
  const loss = o.loss ?? 'margin';
  if (loss !== 'ce' && loss !== 'margin' && loss !== 'dlr') throw new Error(`loss: must be "ce", "margin" or "dlr", got ${String(o.loss)}`);
  const seed = o.seed ?? 0;
  if (!(Number.isInteger(seed) && seed >= 0)) throw new Error(`seed: must be an integer >= 0, got ${String(o.seed)}`);
  return { eps: o.eps, profile, directions, fdStep, loss, seed };
}

/** Random sign direction j of image `index` (values ±1, length `size`), from (seed, index, j) alone. */
export function signDirection(seed: number, index: number, j: number, size: number): Float32Array {
  const rng = createRng(deriveSeed(seed, index, j));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.next() < 0.5 ? -1 : 1;
  return out;
}

/** Direction j for every image of a batch starting at dataset index `start`, as one tensor. */
function directionBatch(seed: number, start: number, j: number, shape: [number, number, number, number]): tf.Tensor4D {
  const [m, h, w, c] = shape;
  const size = h * w * c;
  const buf = new Float32Array(m * size);
  for (let i = 0; i < m; i++) buf.set(signDirection(seed, start + i, j, size), i * size);
  return tf.tensor4d(buf, shape);
}

/**
 * Probe `model` on a batch (pixels 0-1, NHWC; `start` = dataset index of its first image, which fixes
 * the random directions). No tensor outlives the call.
 */
export function probeBatch(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, start: number, options: ProbeOptions): ProbeResult {
  const o = resolveProbeOptions(options);
  const fn = asLogitsFn(model);
  const m = images.shape[0];
  const objectiveAt = (x: tf.Tensor4D): Float32Array => {
    const v = tf.tidy(() => attackObjective(fn(x), labels, { loss: o.loss }));
    const out = v.dataSync() as Float32Array;
    v.dispose();
    return out;
  };
  const { grad, objective, success } = objectiveGradient(fn, images, labels, { loss: o.loss });
  try {
    const gradMean = tf.tidy(() => tf.mean(tf.abs(grad), [1, 2, 3]));
    const result: ProbeResult = {
      objective: objective.dataSync().slice() as Float32Array,
      correct: Uint8Array.from(success.dataSync(), (s) => (s ? 0 : 1)),
      gradMean: gradMean.dataSync().slice() as Float32Array,
      alongGradient: [], randomMean: [], randomMax: [],
      fdError: new Float32Array(m),
    };
    gradMean.dispose();
    const along = (d: tf.Tensor4D, t: number) => tf.tidy(() => tf.clipByValue(tf.add(images, tf.mul(d, t * o.eps)), 0, 1) as tf.Tensor4D);
    const sign = tf.sign(grad) as tf.Tensor4D;
    for (const t of o.profile) {
      const x = along(sign, t);
      result.alongGradient.push(objectiveAt(x));
      x.dispose();
    }
    sign.dispose();
    const sums = o.profile.map(() => new Float32Array(m));
    const maxes = o.profile.map(() => new Float32Array(m).fill(-Infinity));
    // Per image: squared norms of fd - g·r, fd and g·r over the directions.
    const [diff2, fd2, an2] = [new Float64Array(m), new Float64Array(m), new Float64Array(m)];
    for (let j = 0; j < o.directions; j++) {
      const r = directionBatch(o.seed, start, j, images.shape);
      o.profile.forEach((t, k) => {
        const x = along(r, t);
        const v = objectiveAt(x);
        x.dispose();
        for (let i = 0; i < m; i++) {
          sums[k][i] += v[i];
          if (v[i] > maxes[k][i]) maxes[k][i] = v[i];
        }
      });
      // Finite differences on the model as a function of any float input: no clipping, so both sides move by h.
      const [plus, minus] = [tf.tidy(() => tf.add(images, tf.mul(r, o.fdStep)) as tf.Tensor4D), tf.tidy(() => tf.sub(images, tf.mul(r, o.fdStep)) as tf.Tensor4D)];
      const [fp, fm] = [objectiveAt(plus), objectiveAt(minus)];
      tf.dispose([plus, minus]);
      const dot = tf.tidy(() => tf.sum(tf.mul(grad, r), [1, 2, 3]));
      const a = dot.dataSync();
      dot.dispose();
      r.dispose();
      for (let i = 0; i < m; i++) {
        // Differences in float64: the two sides are float32 values of the same size.
        const fd = (fp[i] - fm[i]) / (2 * o.fdStep);
        diff2[i] += (fd - a[i]) ** 2;
        fd2[i] += fd * fd;
        an2[i] += a[i] * a[i];
      }
    }
    for (let k = 0; k < o.profile.length; k++) {
      result.randomMean.push(sums[k].map((s) => s / o.directions));
      result.randomMax.push(maxes[k]);
    }
    for (let i = 0; i < m; i++) {
      const den = Math.sqrt(fd2[i]) + Math.sqrt(an2[i]);
      result.fdError[i] = den === 0 ? 0 : Math.sqrt(diff2[i]) / den;
    }
    return result;
  } finally {
    tf.dispose([grad, objective, success]);
  }
}

/**
 * The objective on a size x size grid around one image (pixels 0-1, [1,h,w,c]): cell (row b, column a)
 * is clip(x + eps·(a·sign(g) + b·r)) for a, b evenly spaced in [-1, 1], g the gradient at x and r
 * random sign direction 0 of image `index`; row-major, first row b = -1. Evaluated in chunks of `batchSize`.
 */
export function lossSurface(model: Classifier, image: tf.Tensor4D, label: number, index: number, options: ProbeOptions & { size?: number; batchSize?: number }): Float32Array {
  const o = resolveProbeOptions(options);
  const size = options.size ?? 21;
  if (!(Number.isInteger(size) && size >= 2)) throw new Error(`size: must be an integer >= 2, got ${String(options.size)}`);
  const batchSize = options.batchSize ?? 100;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize: must be an integer >= 1, got ${String(options.batchSize)}`);
  if (image.shape[0] !== 1) throw new Error(`image: one image [1,h,w,c] expected, got batch ${image.shape[0]}`);
  const fn = asLogitsFn(model);
  const y = tf.tensor1d([label], 'int32');
  const { grad, objective, success } = objectiveGradient(fn, image, y, { loss: o.loss });
  const r = directionBatch(o.seed, index, 0, image.shape);
  const dir = tf.sign(grad);
  tf.dispose([grad, objective, success, y]);
  const coords = Array.from({ length: size }, (_, i) => -1 + (2 * i) / (size - 1));
  const cells = coords.flatMap((b) => coords.map((a) => [a, b] as const));
  const out = new Float32Array(cells.length);
  try {
    for (let s = 0; s < cells.length; s += batchSize) {
      const chunk = cells.slice(s, s + batchSize);
      const v = tf.tidy(() => {
        const a = tf.tensor4d(chunk.map(([ca]) => ca * o.eps), [chunk.length, 1, 1, 1]);
        const b = tf.tensor4d(chunk.map(([, cb]) => cb * o.eps), [chunk.length, 1, 1, 1]);
        const x = tf.clipByValue(tf.add(image, tf.add(tf.mul(a, dir), tf.mul(b, r))), 0, 1) as tf.Tensor4D;
        return attackObjective(fn(x), tf.fill([chunk.length], label, 'int32') as tf.Tensor1D, { loss: o.loss });
      });
      out.set(v.dataSync() as Float32Array, s);
      v.dispose();
    }
  } finally {
    tf.dispose([r, dir]);
  }
  return out;
}

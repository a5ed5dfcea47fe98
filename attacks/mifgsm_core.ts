/**
 * The iterative-FGSM family built for transfer attacks, shared by MI-, NI-, SI-NI-, VMI-, VNI-, DI- and
 * TI-FGSM: sign steps on an accumulated, L1-normalised gradient (momentum, Dong et al. 2018), optionally
 * taken at a Nesterov look-ahead point (Lin et al. 2020), averaged over scaled copies x/2^i (scale
 * invariance, the same paper), through random resize-and-pad of the input (input diversity, Xie et al.
 * 2019), smoothed by a Gaussian kernel (translation invariance, Dong et al. 2019), and corrected by the
 * previous step's gradient variance over a neighbourhood (variance tuning, Wang & He 2021). With decay 0,
 * no diversity, one scale, no variance samples and kernel 1 it is I-FGSM (BIM, Kurakin et al. 2017) exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../src/data/rng.ts';
import { resizePad, type ResizePadDraws } from '../src/layers/resize-pad.ts';
import { objectiveGradient, type ObjectiveSpec } from './gradient.ts';
import type { LossName } from './loss.ts';
import { project, randomStart, subSeed } from './project.ts';
import { checkInteger, checkNonNegative, checkPositive } from './validate.ts';

/** Options of the MI-FGSM family (each attack documents its own defaults). */
export interface MiFgsmOptions {
  /** L-inf budget on the 0-1 pixel scale (required). */
  eps: number;
  /** Iterations (default 10). */
  steps?: number;
  /** L-inf step length (default eps/steps, as the papers: the steps add up to eps exactly). */
  stepSize?: number;
  /** Momentum decay μ: g ← μ·g + ∇/mean|∇| (MI, NI, SI-NI, VMI, VNI default 1; DI, TI 0). */
  decay?: number;
  /** Take the gradient at the look-ahead point x + stepSize·μ·g (NI-FGSM; default false, true in ni, si-ni and vni-fgsm). */
  nesterov?: boolean;
  /** Scale invariance: average the gradient over the copies x/2^i, i < scales (SI-NI-FGSM default 5, others 1). */
  scales?: number;
  /** Variance tuning: gradients sampled around each iterate for the next step's correction (VMI/VNI default 20, others 0 = off). */
  varianceSamples?: number;
  /** Variance tuning: the samples are uniform within ± varianceBeta·eps of the iterate, per pixel (default 1.5). */
  varianceBeta?: number;
  /** Probability that an image goes through a random resize-and-pad in each gradient call (DI, TI default 0.5; the others 0). */
  diversityProb?: number;
  /** Resize range of the diversity: < 1 shrinks to a side in [⌊rate·s⌋, s) and pads to s; > 1 grows to [s, ⌊rate·s⌋), pads to ⌊rate·s⌋ and resizes back to s (default 0.9). */
  resizeRate?: number;
  /** Side of the Gaussian kernel that smooths the gradient, odd pixels, 1 = none (TI default 15, others 1). */
  kernelSize?: number;
  /** The kernel spans ± this many standard deviations across its side (default 3). */
  kernelSigma?: number;
  /** Start from a uniform random point of the ball (default false, as the papers). */
  randomStart?: boolean;
  /** Seed of the diversity draws, the variance samples and the random start (default 0). */
  seed?: number;
  /** Minimise the loss of `targets` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Loss to ascend: 'ce' (default), 'margin' or 'dlr' (attacks/loss.ts). */
  loss?: LossName;
  /** EOT: average the loss gradient over this many model calls, each with fresh diversity draws (default 1). */
  eotSamples?: number;
}

export const MIFGSM_OPTIONS = ['eps', 'steps', 'stepSize', 'decay', 'nesterov', 'scales', 'varianceSamples', 'varianceBeta', 'diversityProb', 'resizeRate', 'kernelSize', 'kernelSigma', 'randomStart', 'seed', 'targeted', 'targets', 'loss', 'eotSamples'] as const;

/** Defaults of one member of the family (the rest are shared). */
export interface FamilyDefaults {
  decay: number;
  nesterov: boolean;
  diversityProb: number;
  kernelSize: number;
  scales?: number;
  varianceSamples?: number;
}

/** Check the family's own options (the common ones are checked by validateAttack). */
export function checkMiFgsmOptions(name: string, o: MiFgsmOptions): void {
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${name}: stepSize`);
  if (o.decay !== undefined) checkNonNegative(o.decay, `${name}: decay`);
  if (o.diversityProb !== undefined && (typeof o.diversityProb !== 'number' || !(o.diversityProb >= 0 && o.diversityProb <= 1))) {
    throw new Error(`${name}: diversityProb must be a probability in [0, 1], got ${String(o.diversityProb)}`);
  }
  if (o.resizeRate !== undefined && (typeof o.resizeRate !== 'number' || !Number.isFinite(o.resizeRate) || !(o.resizeRate > 0) || o.resizeRate === 1)) {
    throw new Error(`${name}: resizeRate must be a finite number > 0 other than 1 (below 1 shrinks, above 1 grows), got ${String(o.resizeRate)}`);
  }
  if (o.kernelSize !== undefined && (!Number.isInteger(o.kernelSize) || o.kernelSize < 1 || o.kernelSize % 2 === 0)) {
    throw new Error(`${name}: kernelSize must be an odd integer >= 1 (pixels; 1 = no smoothing), got ${String(o.kernelSize)}`);
  }
  if (o.kernelSigma !== undefined) checkPositive(o.kernelSigma, `${name}: kernelSigma`);
  if (o.scales !== undefined) checkInteger(o.scales, `${name}: scales`, 1);
  if (o.varianceSamples !== undefined) checkInteger(o.varianceSamples, `${name}: varianceSamples`, 0);
  if (o.varianceBeta !== undefined) checkPositive(o.varianceBeta, `${name}: varianceBeta`);
  for (const flag of ['nesterov', 'randomStart'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw new Error(`${name}: ${flag} must be a boolean`);
  }
}

/** Normalised Gaussian kernel of odd side k spanning ±sigmas standard deviations (row-major k·k weights summing to 1). */
export function gaussianKernel(k: number, sigmas: number): Float64Array {
  // Sample points evenly across [-sigmas, sigmas] (in standard deviations), as the TI reference does.
  const pdf = Array.from({ length: k }, (_, i) => {
    const t = k === 1 ? 0 : -sigmas + (2 * sigmas * i) / (k - 1);
    return Math.exp(-0.5 * t * t);
  });
  const out = new Float64Array(k * k);
  let total = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) total += out[i * k + j] = pdf[i] * pdf[j];
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

/** Per-channel convolution of grad [N,H,W,C] with a k·k kernel, zero padding ('same'): TI's smoothing. */
export function smoothGradient(grad: tf.Tensor4D, kernel: Float64Array): tf.Tensor4D {
  const k = Math.round(Math.sqrt(kernel.length));
  if (k === 1) return tf.clone(grad);
  const c = grad.shape[3];
  return tf.tidy(() => {
    const w = tf.tile(tf.tensor4d(Float32Array.from(kernel), [k, k, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    return tf.depthwiseConv2d(grad, w, 1, 'same');
  });
}

/** The sides a diversity draw can take for image side s: draw range [lo, hi] and canvas side. */
export function diversityRange(s: number, resizeRate: number): { lo: number; hi: number; canvas: number } {
  const scaled = Math.floor(resizeRate * s);
  // The reference draws the side from [min, max) of (s, ⌊rate·s⌋) and pads to the larger.
  return resizeRate < 1 ? { lo: Math.max(1, scaled), hi: s - 1, canvas: s } : { lo: s, hi: scaled - 1, canvas: scaled };
}

/**
 * Diversity draws of one gradient call for images 0..n-1 (call number `call` of the attack): per image a
 * seeded stream keyed by (seed, image, call) decides whether it is transformed (probability p), then its
 * side and offsets. `transformed` marks the images the coin picked; the others keep their pixels (the
 * caller selects them; their draws fill the canvas and are not used).
 */
export function diversityDraws(n: number, s: number, p: number, resizeRate: number, seed: number, call: number): { draws: ResizePadDraws; canvas: number; transformed: Uint8Array } {
  const { lo, hi, canvas } = diversityRange(s, resizeRate);
  const draws: ResizePadDraws = { sizes: new Int32Array(n), tops: new Int32Array(n), lefts: new Int32Array(n) };
  const transformed = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const rand = mulberry32(subSeed(subSeed(seed, i), call));
    // Draw order: coin, side, top, left; a draw is made for every image so the coin alone decides.
    const coin = rand();
    const r = lo + Math.floor(rand() * (hi - lo + 1));
    const top = Math.floor(rand() * (canvas - r));
    const left = Math.floor(rand() * (canvas - r));
    transformed[i] = coin < p ? 1 : 0;
    [draws.sizes[i], draws.tops[i], draws.lefts[i]] = coin < p ? [r, top, left] : [canvas, 0, 0];
  }
  return { draws, canvas, transformed };
}

/**
 * Variance tuning's neighbourhood offsets for step t, one sample at a time: each call returns the next
 * sample's offsets for images 0..n-1 ([n][d], uniform in [-radius, radius]), read from a seeded stream per
 * image keyed by (seed, image, step), so an image's offsets do not depend on its batch-mates and memory
 * holds one sample, not all of them.
 */
export function neighbourOffsetStream(n: number, d: number, radius: number, seed: number, step: number): () => Float32Array {
  // Streams apart from the diversity draws' (which are keyed by (seed, image, call)).
  const streams = Array.from({ length: n }, (_, i) => mulberry32(subSeed(subSeed(subSeed(seed, 1 << 20), i), step)));
  return () => {
    const out = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const rand = streams[i];
      for (let j = 0; j < d; j++) out[i * d + j] = (2 * rand() - 1) * radius;
    }
    return out;
  };
}

/** All `samples` draws of neighbourOffsetStream at once, layout [samples][n][d]. */
export function neighbourOffsets(n: number, d: number, samples: number, radius: number, seed: number, step: number): Float32Array {
  const next = neighbourOffsetStream(n, d, radius, seed, step);
  const out = new Float32Array(samples * n * d);
  for (let k = 0; k < samples; k++) out.set(next(), k * n * d);
  return out;
}

/** Run the family after validation: adversarial images in [0,1], ||x_adv - x||_inf <= eps. */
export function runMiFgsm(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  o: MiFgsmOptions,
  family: FamilyDefaults,
  name: string,
): tf.Tensor4D {
  const steps = o.steps ?? 10;
  const stepSize = o.stepSize ?? o.eps / steps;
  const decay = o.decay ?? family.decay;
  const nesterov = o.nesterov ?? family.nesterov;
  const scales = o.scales ?? family.scales ?? 1;
  const varianceSamples = o.varianceSamples ?? family.varianceSamples ?? 0;
  const radius = (o.varianceBeta ?? 1.5) * o.eps;
  const p = o.diversityProb ?? family.diversityProb;
  const resizeRate = o.resizeRate ?? 0.9;
  const kernel = gaussianKernel(o.kernelSize ?? family.kernelSize, o.kernelSigma ?? 3);
  const seed = o.seed ?? 0;
  const [n, h, w] = images.shape;
  if (p > 0) {
    if (h !== w) throw new Error(`${name}: input diversity needs square images, got ${h}x${w}`);
    const { lo, hi } = diversityRange(h, resizeRate);
    if (hi < lo) throw new Error(`${name}: resizeRate ${resizeRate} leaves no side to draw for ${h}-pixel images (⌊rate·${h}⌋ = ${Math.floor(resizeRate * h)}); use a rate further from 1`);
  }
  const budget = { norm: 'linf' as const, eps: o.eps };
  const spec: ObjectiveSpec = { loss: o.loss, targets: o.targeted ? o.targets : undefined, eotSamples: o.eotSamples };
  let call = 0;
  const cache = new Map<string, [number, number][][]>();
  const diverse = (x: tf.Tensor4D): tf.Tensor2D => {
    if (p === 0) return logitsFn(x);
    const { draws, canvas, transformed } = diversityDraws(n, h, p, resizeRate, seed, call++);
    if (!transformed.some((v) => v === 1)) return logitsFn(x);
    // Images the coin skipped pass untouched (resizing a grown canvas up and back is not the identity).
    const pick = tf.reshape(tf.tensor1d(transformed, 'bool'), [n, 1, 1, 1]);
    return logitsFn(tf.where(tf.broadcastTo(pick, x.shape), resizePad(x, draws, canvas, 'nearest', 0, cache), x) as tf.Tensor4D);
  };

  // The gradient the step follows: averaged over the scaled copies x/2^i (each through its own diversity draws).
  const gradientAt = (x: tf.Tensor4D): tf.Tensor4D => tf.tidy(() => {
    let sum: tf.Tensor4D | undefined;
    for (let i = 0; i < scales; i++) {
      const fn = i === 0 ? diverse : (v: tf.Tensor4D) => diverse(tf.div(v, 2 ** i) as tf.Tensor4D);
      const { grad } = objectiveGradient(fn, x, labels, spec);
      sum = sum ? (tf.add(sum, grad) as tf.Tensor4D) : grad;
    }
    return (scales === 1 ? sum! : tf.div(sum!, scales)) as tf.Tensor4D;
  });
  const d = images.size / n;

  let adv = o.randomStart ? randomStart(images, budget, seed) : project(images, images, budget);
  let momentum = tf.zerosLike(images);
  // Variance tuning: the previous step's mean neighbourhood gradient minus its own gradient (0 at the start; none when off).
  let variance: tf.Tensor4D | null = varianceSamples > 0 ? tf.zerosLike(images) : null;
  for (let t = 0; t < steps; t++) {
    const [next, g, v] = tf.tidy((): tf.Tensor4D[] => {
      const at = nesterov ? tf.add(adv, tf.mul(momentum, stepSize * decay)) as tf.Tensor4D : adv;
      const own = gradientAt(at);
      const smooth = smoothGradient(variance ? tf.add(own, variance) as tf.Tensor4D : own, kernel);
      // Normalise each image's gradient by its mean |value| (the L1 norm up to a constant): momentum then
      // weighs past steps by μ^k whatever the gradient's scale.
      const scale = tf.maximum(tf.mean(tf.abs(smooth), [1, 2, 3], true), 1e-30);
      const acc = tf.add(tf.mul(momentum, decay), tf.div(smooth, scale)) as tf.Tensor4D;
      let nextVariance: tf.Tensor4D | null = null;
      if (variance) {
        // Sampled around the iterate itself (not the look-ahead point), without clipping, as the reference.
        const nextOffsets = neighbourOffsetStream(n, d, radius, seed, t);
        let around: tf.Tensor4D | undefined;
        for (let k = 0; k < varianceSamples; k++) {
          // Freed as it goes: a step holds one sample's point and gradient, not all of them.
          const point = tf.tidy(() => tf.add(adv, tf.tensor4d(nextOffsets(), images.shape)) as tf.Tensor4D);
          const gk = gradientAt(point);
          point.dispose();
          const sum: tf.Tensor4D = around ? tf.add(around, gk) : gk;
          if (around) tf.dispose([around, gk]);
          around = sum;
        }
        nextVariance = tf.sub(tf.div(around!, varianceSamples), own) as tf.Tensor4D;
      }
      return [project(tf.add(adv, tf.mul(tf.sign(acc), stepSize)) as tf.Tensor4D, images, budget), acc, ...(nextVariance ? [nextVariance] : [])];
    });
    tf.dispose([adv, momentum, ...(variance ? [variance] : [])]);
    adv = next;
    momentum = g;
    variance = v ?? null;
  }
  variance?.dispose();
  momentum.dispose();
  return adv;
}

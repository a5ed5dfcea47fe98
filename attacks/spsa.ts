/**
 * SPSA attack (Uesato, O'Donoghue, van den Oord, Kohli, ICML 2018, "Adversarial Risk and the Dangers of
 * Evaluating Against Weak Attacks"): projected ascent on a gradient ESTIMATED from model outputs only.
 * Each step draws `samples` Rademacher directions v (every value ±1), reads the objective at x + δv and
 * x − δv, and averages (f(x + δv) − f(x − δv)) / (2δ) · v; since E[v vᵀ] = I this is an unbiased
 * estimate of the gradient of the δ-smoothed objective, even where the true gradient is zero or wrong.
 * The estimate drives Adam (learning rate `lr`, as in the paper's experiments and the reference code),
 * and every iterate goes through the budget's projection.
 *
 * Why it is here: it is the attack its authors built to show that defences with masked gradients
 * (non-differentiable or stochastic input transformations among them) had overstated robustness. Unlike
 * Square's random search it follows an (estimated) gradient, so it still climbs smooth objectives whose
 * true gradient a JPEG layer has shattered.
 *
 * Per image: it stops as soon as an iterate fools the model (the query-saving early stop of the
 * reference code, per image) and returns that iterate; otherwise the iterate of highest objective.
 * Directions and the random start are drawn per image from (seed, image index, step), so an image's
 * path never depends on which other images share its batch or when they stop.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { evaluateObjective, type ObjectiveSpec } from './gradient.ts';
import type { LossName } from './loss.ts';
import { project, subSeed } from './project.ts';
import { startSearch, type QueryReport } from './search.ts';
import { checkInteger, checkPositive, validateAttack } from './validate.ts';

/** Options of the SPSA attack (L-inf). */
export interface SpsaOptions {
  /** L-inf budget on the 0-1 pixel scale (required). */
  eps: number;
  /** Adam steps (default 100). */
  steps?: number;
  /** Rademacher direction pairs per step, 2 model evaluations each (default 128, as the reference code). */
  samples?: number;
  /** Finite-difference radius on the 0-1 pixel scale (default 0.01, the paper's). */
  delta?: number;
  /** Adam learning rate on the 0-1 pixel scale (default 0.01, the paper's). */
  lr?: number;
  /** Start from a uniform random point of the ball (default true, as the reference code); false starts at x. */
  randomStart?: boolean;
  /** Seed of the start and the directions (default 0): same seed, same backend => same images. */
  seed?: number;
  /** Objective: 'margin' (default, the paper's logit margin), 'ce' or 'dlr'. */
  loss?: LossName;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** EOT: average each objective value over this many calls of a randomised model (default 1). */
  eotSamples?: number;
  /** Images per model call while estimating (default 1024; memory grows with it); the directions do not depend on it, the result only through float32 rounding. */
  queryBatch?: number;
}

export const SPSA_OPTIONS = ['eps', 'steps', 'samples', 'delta', 'lr', 'randomStart', 'seed', 'loss', 'targeted', 'targets', 'eotSamples', 'queryBatch'] as const;

/** Adam's moment decay rates and denominator guard (Kingma & Ba defaults, as the reference code's optimiser). */
const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/** Fills `out` with the next ±1 direction values of image `k` (its directions one after another, each h·w·c values). */
export type SignSource = (k: number, out: Float32Array) => void;

/** A seeded stream of ±1 values (32 per mulberry32 draw); reading it in pieces of any size gives the same sequence. */
export function signStream(seed: number): (out: Float32Array) => void {
  const rand = mulberry32(seed);
  let word = 0;
  let left = 0;
  return (out) => {
    for (let j = 0; j < out.length; j++) {
      if (left === 0) {
        word = Math.floor(rand() * 4294967296) >>> 0;
        left = 32;
      }
      out[j] = word & 1 ? 1 : -1;
      word >>>= 1;
      left--;
    }
  };
}

/**
 * SPSA gradient estimate [batch,h,w,c] of the objective at `x` (pixels 0-1): per image the mean over
 * `samples` directions v (entries ±1, read from `signs`) of (f(clip(x + δv)) − f(clip(x − δv))) / (2δ) · v.
 * Queries are clipped to [0,1] (the model is only asked about valid images). At most `queryBatch` images
 * go to the model at once, and only those chunks' directions are held, so memory stays bounded for large
 * images. Caller disposes.
 */
export function spsaGradient(
  fn: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  samples: number,
  signs: SignSource,
  spec: ObjectiveSpec & { delta: number; queryBatch?: number },
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const d = h * w * c;
  const perCall = Math.max(1, Math.floor((spec.queryBatch ?? 1024) / 2 / b));
  return tf.tidy(() => {
    const rows = (sc: number) => tf.range(0, b, 1, 'int32').reshape([b, 1]).tile([1, sc]).reshape([b * sc]) as tf.Tensor1D;
    let sum: tf.Tensor | undefined;
    for (let s0 = 0; s0 < samples; s0 += perCall) {
      const sc = Math.min(perCall, samples - s0);
      const host = new Float32Array(b * sc * d);
      for (let k = 0; k < b; k++) signs(k, host.subarray(k * sc * d, (k + 1) * sc * d));
      const part = tf.tidy(() => {
        const v = tf.tensor5d(host, [b, sc, h, w, c]);
        const base = tf.expandDims(x, 1);
        const plus = tf.reshape(tf.clipByValue(tf.add(base, tf.mul(v, spec.delta)), 0, 1), [b * sc, h, w, c]) as tf.Tensor4D;
        const minus = tf.reshape(tf.clipByValue(tf.sub(base, tf.mul(v, spec.delta)), 0, 1), [b * sc, h, w, c]) as tf.Tensor4D;
        const half = rows(sc);
        const both = tf.concat([half, half]) as tf.Tensor1D;
        const { objective } = evaluateObjective(fn, tf.concat([plus, minus]) as tf.Tensor4D, tf.gather(labels, both) as tf.Tensor1D, {
          loss: spec.loss, eotSamples: spec.eotSamples, targets: spec.targets ? (tf.gather(spec.targets, both) as tf.Tensor1D) : undefined,
        });
        const [fPlus, fMinus] = tf.split(objective, 2);
        return tf.sum(tf.mul(tf.reshape(tf.sub(fPlus, fMinus), [b, sc, 1, 1, 1]), v), 1);
      });
      sum = sum ? tf.add(sum, part) : part;
    }
    return tf.div(sum!, 2 * spec.delta * samples) as tf.Tensor4D;
  });
}

/** SPSA adversarial images [batch,h,w,c] in [0,1] with ||x_adv - x||_inf <= eps, from model outputs only (defaults: 100 steps, 128 pairs, δ 0.01, Adam lr 0.01). Caller disposes. */
export function spsa(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SpsaOptions, report?: QueryReport): tf.Tensor4D {
  // Own options first: every option error comes before the model is ever called.
  const steps = options?.steps ?? 100;
  checkInteger(steps, 'spsa: steps', 1);
  const samples = options?.samples ?? 128;
  checkInteger(samples, 'spsa: samples', 1);
  const delta = options?.delta ?? 0.01;
  checkPositive(delta, 'spsa: delta');
  const lr = options?.lr ?? 0.01;
  checkPositive(lr, 'spsa: lr');
  const queryBatch = options?.queryBatch ?? 1024;
  checkInteger(queryBatch, 'spsa: queryBatch', 2);
  const randomStart = options?.randomStart ?? true;
  if (typeof randomStart !== 'boolean') throw new Error('spsa: randomStart must be a boolean');
  validateAttack('spsa', model, images, labels, { ...options }, SPSA_OPTIONS);
  const eps = options.eps;
  const seed = options.seed ?? 0;
  const spec: ObjectiveSpec = { loss: options.loss ?? 'margin', eotSamples: options.eotSamples, targets: options.targeted ? options.targets : undefined };
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const budget = { norm: 'linf' as const, eps };
  const search = startSearch(fn, images, labels, spec, budget);
  // The search counts one query per check of an iterate; a step between two checks also costs the
  // 2·samples evaluations of its gradient estimate, so check j is model evaluation number toQueries(j).
  const perStep = 2 * samples + 1;
  const toQueries = (j: number) => (j < 1 ? j : randomStart ? 1 + (j - 1) * perStep : j * perStep);
  const traced = () => {
    const tr = search.trace(toQueries(randomStart ? steps + 1 : steps));
    report?.({ queries: { budget: tr.budget, fooledAt: Int32Array.from(tr.fooledAt, toQueries) } });
  };

  let active = search.unfooled(Array.from({ length: n }, (_, i) => i));
  if (eps === 0 || active.length === 0) {
    traced();
    return search.result();
  }
  const gatherActive = (t: tf.Tensor, idx: number[]) => tf.tidy(() => tf.gather(t, tf.tensor1d(idx, 'int32')));

  // State of the active images: iterate, Adam moments, clean images, labels (and targets).
  let x0 = gatherActive(images, active) as tf.Tensor4D;
  let y = gatherActive(labels, active) as tf.Tensor1D;
  let targets = spec.targets ? (gatherActive(spec.targets, active) as tf.Tensor1D) : undefined;
  let adv = tf.tidy(() => {
    if (!randomStart) return tf.clone(x0);
    const noise = active.map((i) => tf.randomUniform([1, h, w, c], -eps, eps, 'float32', subSeed(subSeed(seed, i), 0)));
    return project(tf.add(x0, tf.concat(noise)) as tf.Tensor4D, x0, budget);
  });
  let m = tf.zerosLike(adv);
  let v2 = tf.zerosLike(adv);
  // The start counts as a candidate: it may already fool the model.
  const offerAll = (at: tf.Tensor4D) => {
    const r = search.evaluate(active, at.dataSync() as Float32Array);
    active.forEach((i, k) => search.offer(i, k, r, false));
  };
  if (randomStart) offerAll(adv);

  for (let t = 0; t < steps; t++) {
    const still = search.unfooled(active);
    if (still.length === 0) break;
    if (still.length < active.length) {
      // Drop the fooled images from every piece of state (positions within the active list).
      const keep = still.map((i) => active.indexOf(i));
      const next = [adv, m, v2, x0, y, ...(targets ? [targets] : [])].map((s) => gatherActive(s, keep));
      tf.dispose([adv, m, v2, x0, y, ...(targets ? [targets] : [])]);
      [adv, m, v2, x0, y] = next as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
      targets = targets ? (next[5] as tf.Tensor1D) : undefined;
      active = still;
    }
    const stepped = tf.tidy(() => {
      const streams = active.map((i) => signStream(subSeed(subSeed(seed, i), t + 1)));
      const g = spsaGradient(fn, adv, y, samples, (k, out) => streams[k](out), { ...spec, targets, delta, queryBatch });
      // Adam ascent with bias correction; the moments carry over the projection, as in the reference code.
      const mNext = tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1));
      const vNext = tf.add(tf.mul(v2, BETA2), tf.mul(tf.square(g), 1 - BETA2));
      const mHat = tf.div(mNext, 1 - BETA1 ** (t + 1));
      const vHat = tf.div(vNext, 1 - BETA2 ** (t + 1));
      const step = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), ADAM_EPSILON)), lr);
      return { adv: project(tf.add(adv, step) as tf.Tensor4D, x0, budget), m: mNext, v: vNext };
    });
    tf.dispose([adv, m, v2]);
    adv = stepped.adv as tf.Tensor4D;
    m = stepped.m as tf.Tensor4D;
    v2 = stepped.v as tf.Tensor4D;
    offerAll(adv);
  }
  tf.dispose([adv, m, v2, x0, y, ...(targets ? [targets] : [])]);
  traced();
  return search.result();
}

/**
 * Randomised smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): the smoothed classifier
 * g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ²I), is certifiably robust in L2. CERTIFY picks the
 * class from n0 noisy copies, bounds its probability below by Clopper-Pearson from n fresh ones and
 * certifies radius σ·Φ⁻¹(p_A) when the bound exceeds 1/2 (else abstains); the certificate fails with
 * probability at most alpha. PREDICT returns g(x) or abstains by a binomial test. The noise of image i
 * depends only on (seed, i, phase, chunk), so batching, resuming and image order leave results unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { checkImages, checkInteger, checkKnownOptions, checkLabels, checkModelOutput } from '../../attacks/validate.ts';
import { deriveSeed, normalSeed } from '../data/rng.ts';
import { isRandomised, reseedRandomLayers } from '../layers/random.ts';
import { asLogitsFn, type Classifier } from '../types.ts';
import { binomialTestHalf, clopperPearsonLower, normalQuantile } from './stats.ts';

/** Options of randomised smoothing (Cohen et al.'s names and defaults, except n). */
export interface SmoothingOptions {
  /** Standard deviation of the Gaussian noise on the 0-1 pixel scale (required, > 0). */
  sigma: number;
  /** Noisy copies that select the class (default 100). */
  n0?: number;
  /** Noisy copies that bound its probability (default 10,000; Cohen et al. used 100,000). */
  n?: number;
  /** Probability that a certificate (or a prediction) is wrong (default 0.001). */
  alpha?: number;
  /** Noisy copies per forward pass (default 500). */
  batchSize?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** Index of images[0] in the evaluated set: image i's noise comes from (seed, indexOffset + i). Default 0. */
  indexOffset?: number;
}

export const SMOOTHING_OPTIONS = ['sigma', 'n0', 'n', 'alpha', 'batchSize', 'seed', 'indexOffset'] as const;

/** Defaults of the optional smoothing options. */
export const SMOOTHING_DEFAULTS = { n0: 100, n: 10_000, alpha: 0.001, batchSize: 500, seed: 0, indexOffset: 0 } as const;

/** One image's certificate. */
export interface Certificate {
  label: number;
  /** The smoothed classifier's class, or -1 when it abstains. */
  prediction: number;
  /** Of the n estimation copies, how many the base classifier put in `prediction`'s class (the selected class when abstaining). */
  count: number;
  /** Clopper-Pearson lower bound on that class's probability under noise. */
  pLower: number;
  /** Certified L2 radius on the 0-1 pixel scale (0 when abstaining). */
  radius: number;
  /** prediction === label (an abstention is never correct). */
  correct: boolean;
}

type Resolved = Required<SmoothingOptions>;

function resolve(what: string, options: SmoothingOptions): Resolved {
  if (options === null || typeof options !== 'object') throw new Error(`${what}: options must be an object with at least sigma`);
  checkKnownOptions(options, SMOOTHING_OPTIONS, what);
  const o = { ...SMOOTHING_DEFAULTS, ...options } as Resolved;
  if (!(typeof o.sigma === 'number' && Number.isFinite(o.sigma) && o.sigma > 0)) throw new Error(`${what}: sigma must be a finite number > 0 (0-1 pixel scale), got ${String(o.sigma)}`);
  checkInteger(o.n0, `${what}: n0`, 1);
  checkInteger(o.n, `${what}: n`, 1);
  checkInteger(o.batchSize, `${what}: batchSize`, 1);
  checkInteger(o.seed, `${what}: seed`, 0);
  checkInteger(o.indexOffset, `${what}: indexOffset`, 0);
  if (!(typeof o.alpha === 'number' && o.alpha > 0 && o.alpha < 1)) throw new Error(`${what}: alpha must be in (0, 1), got ${String(o.alpha)}`);
  return o;
}

// Phases of the noise stream: class selection, estimation (CERTIFY) and PREDICT's single sample set.
const SELECT = 0;
const ESTIMATE = 1;
const PREDICT = 2;

/**
 * How often the base classifier gives each class on `num` noisy copies of image `index` of `images`
 * (noise N(0, σ²), pixels not clipped); counts per class.
 */
function noisyClassCounts(model: Classifier, images: tf.Tensor4D, index: number, num: number, classes: number, o: Resolved, phase: number): Int32Array {
  const fn = asLogitsFn(model);
  const [, h, w, c] = images.shape;
  const randomised = typeof model !== 'function' && isRandomised(model);
  const counts = new Int32Array(classes);
  for (let done = 0, chunk = 0; done < num; chunk++) {
    const b = Math.min(o.batchSize, num - done);
    const seed = deriveSeed(o.seed, o.indexOffset + index, phase, chunk);
    // A randomised base classifier (random JPEG, TV minimisation) draws from the same seed tree.
    if (randomised) reseedRandomLayers(model, seed);
    const pred = tf.tidy(() => {
      const x = tf.slice(images, [index, 0, 0, 0], [1, h, w, c]);
      const noisy = tf.add(x, tf.randomNormal([b, h, w, c], 0, o.sigma, 'float32', normalSeed(seed)));
      return tf.argMax(fn(noisy as tf.Tensor4D), 1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < p.length; i++) counts[p[i]]++;
    done += b;
  }
  return counts;
}

function argmaxCount(counts: Int32Array): number {
  let best = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k] > counts[best]) best = k;
  return best;
}

/** The certified L2 radius σ·Φ⁻¹(pLower) (0-1 pixel scale), or null when pLower <= 1/2 (abstain). */
export function certifiedRadius(pLower: number, sigma: number): number | null {
  return pLower > 0.5 ? sigma * normalQuantile(pLower) : null;
}

/**
 * Cohen et al.'s CERTIFY for every image [batch,h,w,c] in [0,1]: the smoothed classifier's class and
 * certified L2 radius (0-1 pixel scale), each wrong with probability at most alpha.
 */
export function certifySmoothed(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SmoothingOptions): Certificate[] {
  const o = resolve('certify', options);
  const batch = checkImages(images, 'certify: images');
  const classes = checkModelOutput(model, images, 'certify: model');
  checkLabels(labels, batch, classes, 'certify: labels');
  const y = labels.dataSync();
  const out: Certificate[] = [];
  for (let i = 0; i < batch; i++) {
    const selected = argmaxCount(noisyClassCounts(model, images, i, o.n0, classes, o, SELECT));
    const count = noisyClassCounts(model, images, i, o.n, classes, o, ESTIMATE)[selected];
    const pLower = clopperPearsonLower(count, o.n, o.alpha);
    const radius = certifiedRadius(pLower, o.sigma);
    const prediction = radius === null ? -1 : selected;
    out.push({ label: y[i], prediction, count, pLower, radius: radius ?? 0, correct: prediction === y[i] });
  }
  return out;
}

/**
 * Cohen et al.'s PREDICT for every image [batch,h,w,c] in [0,1]: the smoothed classifier's class from
 * n noisy copies, or -1 (abstain) when the top two counts do not differ at level alpha.
 */
export function predictSmoothed(model: Classifier, images: tf.Tensor4D, options: SmoothingOptions): number[] {
  const o = resolve('predictSmoothed', options);
  const batch = checkImages(images, 'predictSmoothed: images');
  const classes = checkModelOutput(model, images, 'predictSmoothed: model');
  const out: number[] = [];
  for (let i = 0; i < batch; i++) {
    const counts = noisyClassCounts(model, images, i, o.n, classes, o, PREDICT);
    const top = argmaxCount(counts);
    let second = top === 0 ? 1 : 0;
    for (let k = 0; k < classes; k++) if (k !== top && counts[k] > counts[second]) second = k;
    const nA = counts[top];
    const nB = counts[second];
    out.push(nA + nB > 0 && binomialTestHalf(nA, nA + nB) <= o.alpha ? top : -1);
  }
  return out;
}

/** Certified accuracy at each L2 radius (0-1 pixel scale): the fraction certified correct with radius >= r. */
export function certifiedAccuracy(certs: readonly Certificate[], radii: readonly number[]): number[] {
  if (!certs.length) throw new Error('certifiedAccuracy: no certificates');
  return radii.map((r) => certs.filter((c) => c.correct && c.radius >= r).length / certs.length);
}

/** Average certified radius (Zhai et al. 2020): mean over all images of the radius, 0 where wrong or abstaining. */
export function averageCertifiedRadius(certs: readonly Certificate[]): number {
  if (!certs.length) throw new Error('averageCertifiedRadius: no certificates');
  return certs.reduce((s, c) => s + (c.correct ? c.radius : 0), 0) / certs.length;
}

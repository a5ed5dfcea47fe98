/**
 * HopSkipJump (Chen, Jordan, Wainwright, IEEE S&P 2020, "HopSkipJumpAttack: a query-efficient
 * decision-based attack"): a minimal-norm attack that sees only the model's top-1 label, never its
 * scores or gradients. It starts from any misclassified point (uniform noise blended towards the image),
 * and then repeats: a binary search along the line to the image puts the point on the decision boundary;
 * the sign of "still misclassified" at random points around it estimates the boundary's normal
 * (Monte-Carlo, with the mean as baseline); a geometric step along that estimate moves away from the
 * boundary; the next binary search comes back to it, closer to the image.
 *
 * Because it uses labels only, it is the check a non-differentiable defence (real JPEG rounding, the
 * `hard` mode) cannot mask: scores that carry no information and zero gradients change nothing.
 *
 * `hsjaMinimal` returns the examples and their sizes; `hsja` (registry `hsja`, L2, and `hsja-linf`) is
 * the budgeted form: per image the projection onto the eps ball of the point found, if still
 * misclassified, else the clean image. Untargeted only (a targeted run needs a starting image of the
 * target class).
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { createRng } from '../src/data/rng.ts';
import { projectOrClean } from './project.ts';
import { checkInteger, checkPositive, validateAttack } from './validate.ts';

/** Options of HopSkipJump; defaults are the reference implementation's. */
export interface HsjaOptions {
  /** Budget on the 0-1 pixel scale in `norm` (the budgeted `hsja`; `hsjaMinimal` ignores it). */
  eps: number;
  /** 'l2' (default) or 'linf' (sign steps, projection by clipping). */
  norm?: Norm;
  /** Iterations (gradient estimate + step + binary search) per image (default 40). */
  steps?: number;
  /** Label queries of the first gradient estimate; iteration t takes initEvals·√t (default 100). */
  initEvals?: number;
  /** Cap on the queries of one gradient estimate (default 10,000). */
  maxEvals?: number;
  /** Binary-search precision: θ = gamma / d^(3/2) (L2) or gamma / d² (L-inf), d pixels (default 1). */
  gamma?: number;
  /** Uniform-noise images tried for the misclassified starting point (default 100); none found: the image is reported robust. */
  initTries?: number;
  /** Stop an image once it has used this many queries (the iteration under way finishes; default: no cap, `steps` bounds it). */
  queries?: number;
  /** Seed of the starting noise and the gradient-estimate directions (default 0). */
  seed?: number;
}

export const HSJA_OPTIONS = ['eps', 'norm', 'steps', 'initEvals', 'maxEvals', 'gamma', 'initTries', 'queries', 'seed'] as const;

/** Result of `hsjaMinimal`: per image the adversarial example found, its size and the label queries spent. */
export interface HsjaMinimalResult {
  /** Adversarial examples [batch,h,w,c] in [0,1]; the clean image where none was found. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** Their distances to the clean images in `norm` (0-1 pixel scale); Infinity where none was found, 0 for images misclassified already. */
  norms: Float64Array;
  /** Model queries per image, the clean check included (each a label of one image). */
  queries: Float64Array;
}

/** Rows per model call (gradient samples and searches are split into calls of at most this many images). */
const CHUNK = 512;
/** Halvings of the geometric step before the step is dropped for this iteration. */
const MAX_HALVINGS = 30;
/** The starting point's blend search stops at this width, as the reference. */
const INIT_PRECISION = 0.001;

interface Spec { norm: Norm; steps: number; initEvals: number; maxEvals: number; gamma: number; initTries: number; queries: number; seed: number }

function prepare(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: HsjaOptions): Spec {
  const o = options ?? ({} as HsjaOptions);
  // Own options first: every option error comes before the model is ever called.
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`${name}: norm must be "linf" or "l2", got ${String(o.norm)}`);
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.initEvals !== undefined) checkInteger(o.initEvals, `${name}: initEvals`, 1);
  if (o.maxEvals !== undefined) checkInteger(o.maxEvals, `${name}: maxEvals`, 1);
  if (o.gamma !== undefined) checkPositive(o.gamma, `${name}: gamma`);
  if (o.initTries !== undefined) checkInteger(o.initTries, `${name}: initTries`, 1);
  if (o.queries !== undefined) checkInteger(o.queries, `${name}: queries`, 1);
  validateAttack(name, model, images, labels, { ...o }, HSJA_OPTIONS);
  return {
    norm: o.norm ?? 'l2', steps: o.steps ?? 40, initEvals: o.initEvals ?? 100, maxEvals: o.maxEvals ?? 10000,
    gamma: o.gamma ?? 1, initTries: o.initTries ?? 100, queries: o.queries ?? Infinity, seed: o.seed ?? 0,
  };
}

/** A 31-bit seed from the attack seed and integer coordinates (image, iteration, ...), for tf's seeded random ops and createRng. */
function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 1;
}

/** Distance in `norm` between image j of `a` and image i of `b` (float64 over float32 pixels). */
function distance(a: Float32Array, j: number, b: Float32Array, i: number, d: number, norm: Norm): number {
  let s = 0;
  for (let q = 0; q < d; q++) {
    const v = Math.abs(a[j * d + q] - b[i * d + q]);
    if (norm === 'l2') s += v * v;
    else if (v > s) s = v;
  }
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** The point at parameter a between the image x and the misclassified point p: L2 the blend (1-a)x + a·p, L-inf p clipped to [x-a, x+a]. */
function between(out: Float32Array, o: number, x: Float32Array, xi: number, p: Float32Array, pi: number, a: number, d: number, norm: Norm): void {
  for (let q = 0; q < d; q++) {
    const xv = x[xi * d + q];
    const pv = p[pi * d + q];
    out[o * d + q] = norm === 'l2' ? (1 - a) * xv + a * pv : Math.min(Math.max(pv, xv - a), xv + a);
  }
}

function search(spec: Spec, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D): HsjaMinimalResult {
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const x = images.dataSync() as Float32Array;
  const y = Int32Array.from(labels.dataSync());
  const queries = new Float64Array(n);
  const theta = spec.norm === 'l2' ? spec.gamma / (Math.sqrt(d) * d) : spec.gamma / (d * d);

  /** Labels of `m` rows (images of the batch `owners[j]`): 1 where misclassified. Counts one query per row. */
  const adversarial = (rows: Float32Array, owners: ArrayLike<number>): Uint8Array => {
    const m = owners.length;
    const out = new Uint8Array(m);
    for (let s = 0; s < m; s += CHUNK) {
      const e = Math.min(m, s + CHUNK);
      const pred = tf.tidy(() => tf.argMax(fn(tf.tensor4d(rows.subarray(s * d, e * d), [e - s, h, w, c])), 1).dataSync());
      for (let j = s; j < e; j++) {
        out[j] = pred[j - s] !== y[owners[j]] ? 1 : 0;
        queries[owners[j]] += 1;
      }
    }
    return out;
  };

  const clean = adversarial(x, Array.from({ length: n }, (_, i) => i));
  const norms = Float64Array.from(clean, (a) => (a ? 0 : Infinity));
  const best = Float32Array.from(x);
  const point = new Float32Array(n * d); // the current boundary point of each image
  const distPost = new Float64Array(n); // distance of the point the last binary search started from

  /**
   * Binary search between each image and its misclassified candidate (rows of `cand`, one per image in
   * `idx`) down to width θ (L2: on the blend parameter; L-inf: on the radius, width min(θ·r, θ)); the
   * misclassified end is written to `point` (as the reference).
   */
  const toBoundary = (idx: number[], cand: Float32Array): void => {
    const high = new Float64Array(idx.length);
    const low = new Float64Array(idx.length);
    const width = new Float64Array(idx.length);
    idx.forEach((i, j) => {
      distPost[i] = distance(cand, j, x, i, d, spec.norm);
      high[j] = spec.norm === 'l2' ? 1 : distPost[i];
      width[j] = spec.norm === 'l2' ? theta : Math.min(distPost[i] * theta, theta);
    });
    for (;;) {
      const open = idx.map((_, j) => j).filter((j) => high[j] - low[j] > width[j]);
      if (open.length === 0) break;
      const rows = new Float32Array(open.length * d);
      const mid = open.map((j) => (high[j] + low[j]) / 2);
      open.forEach((j, r) => between(rows, r, x, idx[j], cand, j, mid[r], d, spec.norm));
      const adv = adversarial(rows, open.map((j) => idx[j]));
      open.forEach((j, r) => {
        if (adv[r]) high[j] = mid[r];
        else low[j] = mid[r];
      });
    }
    idx.forEach((i, j) => between(point, i, x, i, cand, j, high[j], d, spec.norm));
  };

  // Start: per image uniform noise until one is misclassified, then the blend towards the image
  // searched down to width 0.001 (the reference's initialisation, for both norms).
  let pending = Array.from({ length: n }, (_, i) => i).filter((i) => !clean[i]);
  const noise = new Float32Array(n * d);
  const noiseRng = Array.from({ length: n }, (_, i) => createRng(mixSeed(spec.seed, i, 0x696e6974)));
  for (let t = 0; t < spec.initTries && pending.length > 0; t++) {
    const rows = new Float32Array(pending.length * d);
    pending.forEach((i, j) => {
      for (let q = 0; q < d; q++) rows[j * d + q] = noiseRng[i].next();
    });
    const adv = adversarial(rows, pending);
    pending = pending.filter((i, j) => {
      if (adv[j]) noise.set(rows.subarray(j * d, (j + 1) * d), i * d);
      return !adv[j];
    });
  }
  const unreachable = new Set(pending);
  let active = Array.from({ length: n }, (_, i) => i).filter((i) => !clean[i] && !unreachable.has(i));
  {
    const high = new Float64Array(n).fill(1);
    const low = new Float64Array(n);
    for (;;) {
      const open = active.filter((i) => high[i] - low[i] > INIT_PRECISION);
      if (open.length === 0) break;
      const rows = new Float32Array(open.length * d);
      open.forEach((i, r) => between(rows, r, x, i, noise, i, (high[i] + low[i]) / 2, d, 'l2'));
      const adv = adversarial(rows, open);
      open.forEach((i, r) => {
        if (adv[r]) high[i] = (high[i] + low[i]) / 2;
        else low[i] = (high[i] + low[i]) / 2;
      });
    }
    const start = new Float32Array(active.length * d);
    active.forEach((i, j) => between(start, j, x, i, noise, i, high[i], d, 'l2'));
    toBoundary(active, start);
  }
  const keepBest = (i: number): void => {
    const r = distance(point, i, x, i, d, spec.norm);
    if (r < norms[i]) {
      norms[i] = r;
      best.set(point.subarray(i * d, (i + 1) * d), i * d);
    }
  };
  active.forEach(keepBest);

  for (let t = 1; t <= spec.steps; t++) {
    active = active.filter((i) => queries[i] < spec.queries);
    if (active.length === 0) break;
    const evals = Math.min(Math.floor(spec.initEvals * Math.sqrt(t)), spec.maxEvals);
    const updates = new Float32Array(active.length * d);
    active.forEach((i, j) => {
      // Probe radius: 0.1 of the pixel range first, then proportional to the last distance (reference).
      const delta = t === 1 ? 0.1 : (spec.norm === 'l2' ? Math.sqrt(d) : d) * theta * distPost[i];
      const grad = estimateNormal(fn, point.subarray(i * d, (i + 1) * d), [h, w, c], y[i], evals, delta, spec.norm, mixSeed(spec.seed, i, t));
      queries[i] += evals;
      for (let q = 0; q < d; q++) updates[j * d + q] = spec.norm === 'l2' ? grad[q] : Math.sign(grad[q]);
    });
    // Geometric step: from dist/√t, halved until the point stays misclassified.
    const size = active.map((i) => distance(point, i, x, i, d, spec.norm) / Math.sqrt(t));
    const cand = new Float32Array(active.length * d);
    active.forEach((i, j) => cand.set(point.subarray(i * d, (i + 1) * d), j * d));
    let trying = active.map((_, j) => j);
    for (let k = 0; k <= MAX_HALVINGS && trying.length > 0; k++) {
      const rows = new Float32Array(trying.length * d);
      trying.forEach((j, r) => {
        const i = active[j];
        for (let q = 0; q < d; q++) rows[r * d + q] = Math.min(1, Math.max(0, point[i * d + q] + size[j] * updates[j * d + q]));
      });
      const adv = adversarial(rows, trying.map((j) => active[j]));
      trying = trying.filter((j, r) => {
        if (adv[r]) cand.set(rows.subarray(r * d, (r + 1) * d), j * d);
        else size[j] /= 2;
        return !adv[r];
      });
    }
    // An image whose step never stayed misclassified keeps its point (cand holds it).
    toBoundary(active, cand);
    active.forEach(keepBest);
  }
  return { adversarial: tf.tensor4d(best, [n, h, w, c]), norms, queries };
}

/**
 * Monte-Carlo estimate of the boundary's unit normal at `at` (pointing to the misclassified side):
 * the mean of φ(at + δu)·u over `evals` random unit directions u (clipped to the box), φ = ±1 for
 * misclassified or not, with the mean of φ subtracted as baseline; all φ alike: ± the mean direction.
 */
function estimateNormal(
  fn: (x: tf.Tensor4D) => tf.Tensor2D, at: Float32Array, shape: [number, number, number], label: number,
  evals: number, delta: number, norm: Norm, seed: number,
): Float64Array {
  const d = at.length;
  const sumFu = new Float64Array(d);
  const sumU = new Float64Array(d);
  let positive = 0;
  for (let s = 0; s < evals; s += CHUNK) {
    const m = Math.min(CHUNK, evals - s);
    const part = tf.tidy(() => {
      const base = tf.tensor4d(at, [1, ...shape]);
      // Gaussian directions in L2, uniform in the cube in L-inf (reference), normalised to unit L2.
      const raw = norm === 'l2' ? tf.randomNormal([m, ...shape], 0, 1, 'float32', seed + s + 1) : tf.randomUniform([m, ...shape], -1, 1, 'float32', seed + s + 1);
      const unit = tf.div(raw, tf.sqrt(tf.sum(tf.square(raw), [1, 2, 3], true)));
      const probe = tf.clipByValue(tf.add(base, tf.mul(unit, delta)), 0, 1);
      const u = tf.div(tf.sub(probe, base), delta); // the direction actually taken after the clip
      const phi = tf.sub(tf.mul(tf.cast(tf.notEqual(tf.argMax(fn(probe as tf.Tensor4D), 1), label), 'float32'), 2), 1);
      return {
        fu: tf.sum(tf.mul(tf.reshape(phi, [m, 1, 1, 1]), u), 0).dataSync(),
        u: tf.sum(u, 0).dataSync(),
        pos: tf.sum(tf.cast(tf.greater(phi, 0), 'int32')).dataSync()[0],
      };
    });
    for (let q = 0; q < d; q++) {
      sumFu[q] += part.fu[q];
      sumU[q] += part.u[q];
    }
    positive += part.pos;
  }
  const meanPhi = (2 * positive - evals) / evals;
  const g = new Float64Array(d);
  for (let q = 0; q < d; q++) {
    g[q] = positive === evals ? sumU[q] : positive === 0 ? -sumU[q] : sumFu[q] - meanPhi * sumU[q];
  }
  let len = 0;
  for (let q = 0; q < d; q++) len += g[q] * g[q];
  len = Math.sqrt(len);
  if (len > 0) for (let q = 0; q < d; q++) g[q] /= len;
  return g;
}

/** HopSkipJump without a budget: per image the example found (pixels 0-1), its size in `norm` (L2 by default) and the queries spent. */
export function hsjaMinimal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: HsjaOptions): HsjaMinimalResult {
  return search(prepare('hsja', model, images, labels, options), model, images, labels);
}

function budgeted(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: HsjaOptions): tf.Tensor4D {
  const spec = prepare(name, model, images, labels, options);
  if (options.eps === 0) return tf.clone(images);
  const found = search(spec, model, images, labels);
  try {
    return projectOrClean(asLogitsFn(model), found.adversarial, images, labels, { norm: spec.norm, eps: options.eps });
  } finally {
    found.adversarial.dispose();
  }
}

/** HopSkipJump adversarial images [batch,h,w,c] in [0,1] within the `norm` ball (L2 by default) of radius eps; the rest clean. Caller disposes. */
export function hsja(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: HsjaOptions): tf.Tensor4D {
  return budgeted('hsja', model, images, labels, options);
}

/** HopSkipJump in L-inf (the registry's `hsja-linf`). Caller disposes. */
export function hsjaLinf(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<HsjaOptions, 'norm'>): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('hsja-linf: do not pass norm (it is always linf)');
  return budgeted('hsja-linf', model, images, labels, { ...options, norm: 'linf' });
}

/**
 * FAB, the Fast Adaptive Boundary attack (Croce & Hein, ICML 2020, "Minimally distorted adversarial
 * examples with a fast adaptive boundary attack"), L-inf, L2 and L1; FAB-T is its targeted version in
 * AutoAttack. FAB looks for the adversarial example of least norm: at each step it linearises the
 * decision boundary between the true class and one other class (the closest one, or the target
 * class for FAB-T), projects both the current point and the clean image onto that hyperplane inside
 * the pixel box (attacks/hyperplane.ts), moves to a convex combination of the two projections
 * (biased towards the clean image by at most alphaMax, overshooting by eta), and after every success
 * steps back towards the clean image by beta. It needs no step size and no loss.
 *
 * As an attack with a budget (the registry's `fab`, and AutoAttack's FAB-T stage), an image counts as
 * fooled when a point FAB found, projected onto the eps ball, is misclassified; fooled images come back
 * as that point, the others clean (as AutoAttack returns them). `fabMinimal` returns the least-norm
 * adversarial examples themselves, without a budget.
 */
import * as tf from '@tensorflow/tfjs';
import { normalSeed } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { hyperplaneStep } from './hyperplane.ts';
import { linearise, rowNorm } from './linearise.ts';
import { project, subSeed } from './project.ts';
import { argMax, wrongClassesByLikelihood } from './targets.ts';
import { checkInteger, checkNonNegative, checkPositive, validateAttack } from './validate.ts';

/** Options of FAB. */
export interface FabOptions {
  /** Budget on the 0-1 pixel scale in `norm` (required): success needs a point inside it; restarts start at half of it. */
  eps: number;
  /** Norm to minimise: 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** Iterations per run (default 100, as AutoAttack). */
  steps?: number;
  /** Runs per target; the first starts at the clean image, later ones at a random point eps/2 away (default 1, as AutoAttack's FAB-T). */
  restarts?: number;
  /** 0 (default): untargeted FAB, the closest boundary over all classes (one gradient per class and step). k > 0: FAB-T, one run per each of the k most likely wrong classes (one gradient per step), on the images still robust; capped at classes - 1. */
  targetClasses?: number;
  /** Largest weight of the clean image's projection in each step (default 0.1, the paper's). */
  alphaMax?: number;
  /** Overshoot of each projection step (default 1.05, the paper's). */
  eta?: number;
  /** Backward step towards the clean image after a success (default 0.9, the paper's). */
  beta?: number;
  /** Seed of the random restarts (default 0). */
  seed?: number;
}

export const FAB_OPTIONS = ['eps', 'norm', 'steps', 'restarts', 'targetClasses', 'alphaMax', 'eta', 'beta', 'seed'] as const;

/** The schedule of one FAB run. */
interface RunSpec {
  norm: Norm;
  steps: number;
  alphaMax: number;
  eta: number;
  beta: number;
}

/** Check FAB's own options (before the model is ever called); returns them with defaults applied. */
function checkFabOptions(o: Partial<FabOptions>, attack: string): RunSpec & { restarts: number; targetClasses: number; seed: number } {
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2' && o.norm !== 'l1') throw new Error(`${attack}: norm must be "linf", "l2" or "l1", got ${String(o.norm)}`);
  if (o.steps !== undefined) checkInteger(o.steps, `${attack}: steps`, 1);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${attack}: restarts`, 1);
  if (o.targetClasses !== undefined) checkInteger(o.targetClasses, `${attack}: targetClasses`, 0);
  if (o.alphaMax !== undefined) {
    checkNonNegative(o.alphaMax, `${attack}: alphaMax`);
    if (o.alphaMax > 1) throw new Error(`${attack}: alphaMax must lie in [0, 1], got ${o.alphaMax}`);
  }
  if (o.eta !== undefined) checkPositive(o.eta, `${attack}: eta`);
  if (o.beta !== undefined) {
    checkNonNegative(o.beta, `${attack}: beta`);
    if (o.beta > 1) throw new Error(`${attack}: beta must lie in [0, 1], got ${o.beta}`);
  }
  return {
    norm: o.norm ?? 'linf', steps: o.steps ?? 100, alphaMax: o.alphaMax ?? 0.1, eta: o.eta ?? 1.05, beta: o.beta ?? 0.9,
    restarts: o.restarts ?? 1, targetClasses: o.targetClasses ?? 0, seed: o.seed ?? 0,
  };
}

/**
 * One FAB run from `start` on clean images x0 with labels y: per image the least-norm misclassified
 * point seen and its norm (Infinity and x0 where none was found). Caller disposes.
 */
function fabRun(fn: (x: tf.Tensor4D) => tf.Tensor2D, x0: tf.Tensor4D, y: tf.Tensor1D, target: tf.Tensor1D | null, candidates: number[], start: tf.Tensor4D, spec: RunSpec): { best: tf.Tensor4D; bestNorm: tf.Tensor1D } {
  const shape = x0.shape;
  const n = shape[0];
  const origin = tf.reshape(x0, [n, -1]) as tf.Tensor2D;
  let x1 = tf.reshape(start, [n, -1]) as tf.Tensor2D;
  let best = origin.clone();
  let bestNorm = tf.fill([n], Infinity) as tf.Tensor1D;
  for (let it = 0; it < spec.steps; it++) {
    const next = tf.tidy(() => {
      const { gap, grad: w } = linearise(fn, tf.reshape(x1, shape) as tf.Tensor4D, y, target, candidates, spec.norm);
      // The boundary f_s - f_y ≈ gap + w·(z - x1) = 0, as w·delta = c from x1 and from the clean image.
      const toX1 = hyperplaneStep(x1, w, tf.neg(gap) as tf.Tensor1D, spec.norm);
      const toOrigin = hyperplaneStep(origin, w, tf.sub(tf.sum(tf.mul(w, tf.sub(x1, origin)), 1), gap) as tf.Tensor1D, spec.norm);
      const a1 = tf.maximum(rowNorm(toX1, spec.norm), 1e-8);
      const a2 = tf.maximum(rowNorm(toOrigin, spec.norm), 1e-8);
      const alpha = tf.minimum(tf.div(a1, tf.add(a1, a2)), spec.alphaMax).reshape([-1, 1]);
      const moved = tf.clipByValue(
        tf.add(tf.mul(tf.add(x1, tf.mul(toX1, spec.eta)), tf.sub(1, alpha)), tf.mul(tf.add(origin, tf.mul(toOrigin, spec.eta)), alpha)),
        0, 1,
      ) as tf.Tensor2D;
      const adversarial = tf.notEqual(tf.argMax(fn(tf.reshape(moved, shape) as tf.Tensor4D), 1), tf.cast(y, 'int32'));
      const dist = rowNorm(tf.sub(moved, origin) as tf.Tensor2D, spec.norm);
      const better = tf.logicalAnd(adversarial, tf.less(dist, bestNorm));
      const rows = (m: tf.Tensor) => tf.broadcastTo(m.reshape([-1, 1]), moved.shape);
      return {
        best: tf.where(rows(better), moved, best) as tf.Tensor2D,
        bestNorm: tf.where(better, dist, bestNorm) as tf.Tensor1D,
        // After a success, back towards the clean image: the next step starts inside the boundary's shadow.
        x1: tf.where(rows(adversarial), tf.add(origin, tf.mul(tf.sub(moved, origin), spec.beta)), moved) as tf.Tensor2D,
      };
    });
    tf.dispose([x1, best, bestNorm]);
    ({ x1, best, bestNorm } = next);
  }
  const out = { best: tf.reshape(best, shape) as tf.Tensor4D, bestNorm };
  tf.dispose([x1, best, origin]);
  return out;
}

/** A random start for restart `k`: x0 plus a random direction scaled to `radius` in `norm`, clipped to [0,1]. */
function restartPoint(x0: tf.Tensor4D, norm: Norm, radius: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const n = x0.shape[0];
    const t = norm === 'linf' ? tf.randomUniform(x0.shape, -1, 1, 'float32', seed) : tf.randomNormal(x0.shape, 0, 1, 'float32', normalSeed(seed));
    const size = rowNorm(tf.reshape(t, [n, -1]) as tf.Tensor2D, norm).reshape([-1, 1, 1, 1]);
    return tf.clipByValue(tf.add(x0, tf.mul(tf.div(t, tf.maximum(size, 1e-30)), radius)), 0, 1) as tf.Tensor4D;
  });
}

/** Result of `fabMinimal`: per image the least-norm adversarial example found and its norm. */
export interface FabMinimalResult {
  /** The adversarial examples [batch,h,w,c] in [0,1]; the clean image where none was found. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** Their distances to the clean images in `norm` (0-1 pixel scale); Infinity where none was found, 0 for images already misclassified. */
  norms: Float64Array;
}

/** What fab and fabMinimal share: checked options, the logits function, labels and clean logits. */
interface Setup {
  spec: ReturnType<typeof checkFabOptions>;
  eps: number;
  fn: (x: tf.Tensor4D) => tf.Tensor2D;
  y: ArrayLike<number>;
  clean: number[][];
  classes: number;
}

function setUp(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: FabOptions): Setup {
  const o = options ?? ({} as FabOptions);
  // Own options first: every option error comes before the model is ever called.
  const spec = checkFabOptions(o, name);
  const classes = validateAttack(name, model, images, labels, { ...o }, FAB_OPTIONS);
  const fn = asLogitsFn(model);
  return { spec, eps: o.eps, fn, y: labels.dataSync(), clean: tf.tidy(() => fn(images).arraySync() as number[][]), classes };
}

/**
 * FAB's runs: per target (the k most likely wrong classes, or one untargeted pass) `restarts` runs,
 * each on the images `pick` returns at that moment (in index order); `take` gets each run's clean
 * images x0 and best points with their norms, inside the run's tidy scope.
 */
function runAll(s: Setup, images: tf.Tensor4D, labels: tf.Tensor1D, pick: () => number[], take: (todo: number[], x0: tf.Tensor4D, best: tf.Tensor4D, bestNorm: tf.Tensor1D) => void): void {
  const { spec } = s;
  const byLikelihood = wrongClassesByLikelihood(s.clean, s.y);
  const targets = Math.min(spec.targetClasses, s.classes - 1);
  for (const k of targets > 0 ? Array.from({ length: targets }, (_, t) => t) : [null]) {
    for (let r = 0; r < spec.restarts; r++) {
      const todo = pick();
      if (todo.length === 0) return;
      tf.tidy(() => {
        const at = tf.tensor1d(todo, 'int32');
        const x0 = tf.gather(images, at) as tf.Tensor4D;
        const yy = tf.gather(labels, at) as tf.Tensor1D;
        const target = k === null ? null : tf.tensor1d(todo.map((i) => byLikelihood[i][k]), 'int32');
        const start = r === 0 ? x0 : restartPoint(x0, spec.norm, s.eps / 2, subSeed(spec.seed, r + (k ?? 0) * spec.restarts));
        // Untargeted: every class but one all these images carry (that one is never a boundary to step to).
        const held = todo.map((i) => s.y[i]);
        const candidates = k !== null ? [] : Array.from({ length: s.classes }, (_, c) => c).filter((c) => !held.every((v) => v === c));
        const { best, bestNorm } = fabRun(s.fn, x0, yy, target, candidates, start, spec);
        take(todo, x0, best, bestNorm);
      });
    }
  }
}

/**
 * FAB without a budget: least-norm adversarial examples (pixels 0-1) and their sizes, from `restarts`
 * runs (eps only sets the random restarts' radius) towards the closest boundary or, with
 * `targetClasses` k, each of the k most likely wrong classes. Images misclassified already get norm 0.
 */
export function fabMinimal(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: FabOptions): FabMinimalResult {
  const s = setUp('fab', model, images, labels, options);
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const adv = Float32Array.from(images.dataSync());
  const norms = Float64Array.from(s.clean, (z, i) => (argMax(z) !== s.y[i] ? 0 : Infinity));
  // Every run attacks every image classified correctly: a later target or restart may find a smaller norm.
  const todo = Array.from({ length: n }, (_, i) => i).filter((i) => norms[i] !== 0);
  runAll(s, images, labels, () => todo, (idx, _x0, best, bestNorm) => {
    const rows = best.dataSync();
    const found = bestNorm.dataSync();
    idx.forEach((i, j) => {
      if (!(found[j] < norms[i])) return;
      norms[i] = found[j];
      adv.set(rows.subarray(j * d, (j + 1) * d), i * d);
    });
  });
  return { adversarial: tf.tensor4d(adv, [n, h, w, c]), norms };
}

/**
 * FAB adversarial images [batch,h,w,c] in [0,1] within the `norm` ball of radius eps: per image the
 * projection onto the ball of a misclassified point FAB found, or the clean image. Untargeted by
 * default; `targetClasses: 9` is AutoAttack's FAB-T. Caller disposes.
 */
export function fab(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: FabOptions): tf.Tensor4D {
  return runFab('fab', model, images, labels, options);
}

/** FAB minimising the L2 norm (the registry's `fab-l2`): `fab` with norm 'l2'. Caller disposes. */
export function fabL2(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<FabOptions, 'norm'>): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('fab-l2: do not pass norm (it is always l2)');
  return runFab('fab-l2', model, images, labels, { ...options, norm: 'l2' });
}

/** FAB minimising the L1 norm (the registry's `fab-l1`): `fab` with norm 'l1'; its hyperplane steps are fractional knapsacks. Caller disposes. */
export function fabL1(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<FabOptions, 'norm'>): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('fab-l1: do not pass norm (it is always l1)');
  return runFab('fab-l1', model, images, labels, { ...options, norm: 'l1' });
}

function runFab(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: FabOptions): tf.Tensor4D {
  const s = setUp(name, model, images, labels, options);
  const budget = { norm: s.spec.norm, eps: s.eps };
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const adv = Float32Array.from(images.dataSync());
  // Images misclassified already stay clean; each run attacks the images not fooled within eps yet.
  const fooled = s.clean.map((z, i) => argMax(z) !== s.y[i]);
  if (s.eps > 0) {
    runAll(s, images, labels, () => fooled.flatMap((f, i) => (f ? [] : [i])), (todo, x0, best) => {
      // Success is judged on the point as it would be returned: projected onto the ball.
      const inBall = project(best, x0, budget);
      const rows = inBall.dataSync();
      const pred = tf.argMax(s.fn(inBall), 1).dataSync();
      todo.forEach((i, j) => {
        if (pred[j] === s.y[i]) return;
        fooled[i] = true;
        adv.set(rows.subarray(j * d, (j + 1) * d), i * d);
      });
    });
  }
  return tf.tidy(() => project(tf.tensor4d(adv, [n, h, w, c]), images, budget));
}


/**
 * APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks"), the step-size-free attack of AutoAttack. Default loss CE (APGD-CE).
 * Step size starts at 2·eps and is halved, per example, at checkpoints where the loss stopped
 * improving; steps use momentum 0.75; each example returns its best point.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { foldWorstCase, type Candidate, l2Direction, linfDirection, objectiveGradient, type ObjectiveSpec } from './gradient.ts';
import type { LossName } from './loss.ts';
import { project, randomStart, subSeed } from './project.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of APGD. */
export interface ApgdOptions {
  /** Budget on the 0-1 pixel scale in `norm` (required). */
  eps: number;
  /** Norm of the budget: 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** Iterations (gradient evaluations after the one at the start), default 100 as in AutoAttack. */
  steps?: number;
  /** Independent runs from random starts, each example keeps its worst case (default 1). */
  restarts?: number;
  /** Start from a random point of the ball (default true, as AutoAttack); false starts at x. */
  randomStart?: boolean;
  /** Seed of the random starts (default 0). */
  seed?: number;
  /** Loss: 'ce' (APGD-CE, default), 'margin' or 'dlr' (APGD-DLR; targeted: APGD-T's loss). */
  loss?: LossName;
  /** Move towards `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** EOT: average the loss gradient over this many calls of a randomised model (default 1). */
  eotSamples?: number;
}

export const APGD_OPTIONS = ['eps', 'norm', 'steps', 'restarts', 'randomStart', 'seed', 'loss', 'targeted', 'targets', 'eotSamples'] as const;

/** Momentum weight alpha of the paper. */
const MOMENTUM = 0.75;
/** Fraction rho of the paper's Condition 1. */
const RHO = 0.75;

/**
 * Checkpoints w_j = ceil(p_j·N) of the paper: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
 * as increasing distinct iteration indices in (0, N].
 */
export function apgdCheckpoints(steps: number): number[] {
  const ps = [0, 0.22];
  while (ps[ps.length - 1] < 1) {
    const [a, b] = [ps[ps.length - 2], ps[ps.length - 1]];
    ps.push(b + Math.max(b - a - 0.03, 0.06));
  }
  // The 1e-9 absorbs float error in the p_j sums (0.22 + 0.19 is 0.41000000000000003).
  const ws = ps.map((p) => Math.ceil(p * steps - 1e-9)).filter((w) => w > 0 && w <= steps);
  return [...new Set(ws)];
}

interface State {
  x: tf.Tensor4D;
  xPrev: tf.Tensor4D;
  grad: tf.Tensor4D;
  loss: tf.Tensor1D;
  xBest: tf.Tensor4D;
  gradBest: tf.Tensor4D;
  lossBest: tf.Tensor1D;
  xAdv: tf.Tensor4D;
  fooled: tf.Tensor1D;
  eta: tf.Tensor1D;
  increases: tf.Tensor1D;
  etaAtCheck: tf.Tensor1D;
  lossBestAtCheck: tf.Tensor1D;
  reducedAtCheck: tf.Tensor1D;
}

/** A per-example value [batch] broadcast to the shape of `like` [batch,h,w,c] (for per-example tf.where). */
export function bcast(v: tf.Tensor1D, like: tf.Tensor4D): tf.Tensor4D {
  return tf.broadcastTo(v.reshape([-1, 1, 1, 1]), like.shape) as tf.Tensor4D;
}

/** One APGD run from `start`; returns the adversarial images (fooled ? first fooling point : best-loss point) and their objective/success. */
function apgdRun(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  start: tf.Tensor4D,
  norm: Norm,
  eps: number,
  steps: number,
  spec: ObjectiveSpec,
): { adv: tf.Tensor4D; objective: tf.Tensor1D; success: tf.Tensor1D } {
  const budget = { norm, eps };
  const direction = norm === 'linf' ? linfDirection : l2Direction;
  const batch = images.shape[0];
  const checkpoints = new Set(apgdCheckpoints(steps));
  let lastCheckpoint = 0;

  let st: State = tf.tidy(() => {
    const g = objectiveGradient(logitsFn, start, labels, spec);
    const eta = tf.fill([batch], 2 * eps) as tf.Tensor1D;
    return {
      x: tf.clone(start), xPrev: tf.clone(start), grad: g.grad, loss: g.objective,
      xBest: tf.clone(start), gradBest: tf.clone(g.grad), lossBest: tf.clone(g.objective),
      xAdv: tf.clone(start), fooled: tf.cast(g.success, 'bool') as tf.Tensor1D,
      eta, increases: tf.zeros([batch]) as tf.Tensor1D, etaAtCheck: tf.clone(eta),
      lossBestAtCheck: tf.clone(g.objective), reducedAtCheck: tf.zeros([batch], 'bool') as tf.Tensor1D,
    };
  });

  for (let k = 0; k < steps; k++) {
    const next = tf.tidy(() => {
      // z = P(x_k + eta·dir(grad)); x_{k+1} = P(x_k + a(z - x_k) + (1-a)(x_k - x_{k-1})), a = 1 on the first step.
      const a = k === 0 ? 1 : MOMENTUM;
      const z = project(tf.add(st.x, tf.mul(direction(st.grad), bcast(st.eta, st.x))) as tf.Tensor4D, images, budget);
      const moved = tf.add(st.x, tf.add(tf.mul(tf.sub(z, st.x), a), tf.mul(tf.sub(st.x, st.xPrev), 1 - a)));
      const x = project(moved as tf.Tensor4D, images, budget);
      const g = objectiveGradient(logitsFn, x, labels, spec);
      const success = tf.cast(g.success, 'bool');
      const newlyFooled = tf.logicalAnd(success, tf.logicalNot(st.fooled));
      const xAdv = tf.where(bcast(newlyFooled as tf.Tensor1D, x), x, st.xAdv) as tf.Tensor4D;
      const improved = tf.greater(g.objective, st.lossBest);
      const xBest = tf.where(bcast(improved as tf.Tensor1D, x), x, st.xBest) as tf.Tensor4D;
      const gradBest = tf.where(bcast(improved as tf.Tensor1D, x), g.grad, st.gradBest) as tf.Tensor4D;
      const lossBest = tf.where(improved, g.objective, st.lossBest) as tf.Tensor1D;
      const increases = tf.add(st.increases, tf.cast(tf.greater(g.objective, st.loss), 'float32')) as tf.Tensor1D;
      let s: State = {
        x, xPrev: tf.clone(st.x), grad: g.grad, loss: g.objective, xBest, gradBest, lossBest, xAdv,
        fooled: tf.logicalOr(st.fooled, success) as tf.Tensor1D, eta: tf.clone(st.eta), increases,
        etaAtCheck: tf.clone(st.etaAtCheck), lossBestAtCheck: tf.clone(st.lossBestAtCheck), reducedAtCheck: tf.clone(st.reducedAtCheck),
      };
      const iter = k + 1;
      if (checkpoints.has(iter)) {
        const span = iter - lastCheckpoint;
        // Condition 1: too few loss increases since the last checkpoint.
        const cond1 = tf.less(s.increases, RHO * span);
        // Condition 2: step size unchanged and best loss unchanged since the last checkpoint.
        const cond2 = tf.logicalAnd(tf.logicalNot(s.reducedAtCheck), tf.lessEqual(s.lossBest, s.lossBestAtCheck));
        const halve = tf.logicalOr(cond1, cond2);
        const h4 = bcast(halve as tf.Tensor1D, x);
        const eta = tf.where(halve, tf.div(s.eta, 2), s.eta) as tf.Tensor1D;
        // Halving restarts from the best point (and its gradient), as in the paper.
        s = {
          ...s,
          eta,
          x: tf.where(h4, s.xBest, s.x) as tf.Tensor4D,
          grad: tf.where(h4, s.gradBest, s.grad) as tf.Tensor4D,
          // The next step's "did the loss increase" compares against the point we restart from.
          loss: tf.where(halve, s.lossBest, s.loss) as tf.Tensor1D,
          increases: tf.zeros([batch]) as tf.Tensor1D,
          etaAtCheck: tf.clone(eta),
          lossBestAtCheck: tf.clone(s.lossBest),
          reducedAtCheck: halve as tf.Tensor1D,
        };
      }
      return s as unknown as tf.TensorContainer;
    }) as unknown as State;
    if (checkpoints.has(k + 1)) lastCheckpoint = k + 1;
    tf.dispose(Object.values(st));
    st = next;
  }

  const out = tf.tidy(() => {
    const adv = tf.where(bcast(st.fooled, st.x), st.xAdv, st.xBest) as tf.Tensor4D;
    // Objective of the returned point: the fooled ones are ranked first anyway (success beats loss).
    return { adv, objective: tf.clone(st.lossBest), success: tf.clone(st.fooled) };
  });
  tf.dispose(Object.values(st));
  return out;
}

/** APGD adversarial images in [0,1] within the `norm` ball of radius eps (defaults: linf, 100 steps, CE, random start, 1 restart, seed 0). */
export function apgd(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: ApgdOptions): tf.Tensor4D {
  return runApgd('apgd', model, images, labels, options);
}

function runApgd(name: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: ApgdOptions): tf.Tensor4D {
  const o = options ?? ({} as ApgdOptions);
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${name}: restarts`, 1);
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`${name}: norm must be "linf" or "l2", got ${String(o.norm)}`);
  if (o.randomStart !== undefined && typeof o.randomStart !== 'boolean') throw new Error(`${name}: randomStart must be a boolean`);
  validateAttack(name, model, images, labels, { ...o }, APGD_OPTIONS);
  const fn = asLogitsFn(model);
  const norm = o.norm ?? 'linf';
  const steps = o.steps ?? 100;
  const budget = { norm, eps: o.eps };
  const spec: ObjectiveSpec = { loss: o.loss, targets: o.targeted ? o.targets : undefined, eotSamples: o.eotSamples };
  let best: Candidate | undefined;
  for (let r = 0; r < (o.restarts ?? 1); r++) {
    const start = (o.randomStart ?? true) ? randomStart(images, budget, subSeed(o.seed ?? 0, r)) : project(images, images, budget);
    const cand = apgdRun(fn, images, labels, start, norm, o.eps, steps, spec);
    start.dispose();
    best = foldWorstCase(best, cand);
  }
  tf.dispose([best!.objective, best!.success]);
  return best!.adv;
}

/** APGD with an L2 budget: `apgd` with norm 'l2'. */
export function apgdL2(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<ApgdOptions, 'norm'>): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('apgd-l2: do not pass norm (it is always l2)');
  return runApgd('apgd-l2', model, images, labels, { ...options, norm: 'l2' });
}

/**
 * L1-APGD (Croce & Hein 2021, "Mind the box: l1-APGD for sparse adversarial attacks on image
 * classifiers"), the L1 attack of AutoAttack. An L1 step along the plain gradient moves one pixel; this
 * one moves the top fraction k of pixels by |gradient| by eta/k·sign each (`l1Direction`), then projects
 * exactly onto the L1 ball and the box (the projection is what makes it box-aware). Step size and
 * sparsity adapt per example at checkpoints every 4% of the steps: if the best point got sparser (its
 * pixel count fell below 95% of the last checkpoint's) the step size resets to eps and the run restarts
 * from the best point, else the step size shrinks by 1.5 (not below eps/10); k becomes the best point's
 * pixel count / 1.5. Step size starts at eps, k at 20% (or, from a given start, at its pixel count / 1.5).
 * `epsSchedule` runs AutoAttack's L1 schedule: 30% of the steps in the 3·eps ball, 30% in 2·eps, 40% in
 * eps, each phase starting where the last ended, projected; only the last phase's points are returned.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { foldWorstCase, type Candidate, l1Direction, objectiveGradient, type ObjectiveSpec } from './gradient.ts';
import { bcast, type ApgdOptions } from './apgd.ts';
import { project, randomStart, subSeed } from './project.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of L1-APGD: those of APGD (eps in L1, on the 0-1 pixel scale summed over pixels), without `norm`, plus the eps schedule. */
export interface ApgdL1Options extends Omit<ApgdOptions, 'norm'> {
  /** AutoAttack's L1 schedule: 30% of the steps at 3·eps, 30% at 2·eps, 40% at eps (default false; needs steps >= 3). */
  epsSchedule?: boolean;
}

export const APGD_L1_OPTIONS = ['eps', 'steps', 'restarts', 'randomStart', 'seed', 'loss', 'targeted', 'targets', 'eotSamples', 'epsSchedule'] as const;

/** Initial fraction of pixels a step moves, from a start at x or a random start. */
const INITIAL_FRACTION = 0.2;
/** A checkpoint resets the step size when the best point's pixel count fell below this share of the last one. */
const SPARSER = 0.95;
/** Step-size divisor at a checkpoint without a sparser best point, and the cap on the total shrink. */
const SHRINK = 1.5;
const MIN_STEP = 0.1;

interface State {
  x: tf.Tensor4D;
  grad: tf.Tensor4D;
  xBest: tf.Tensor4D;
  gradBest: tf.Tensor4D;
  lossBest: tf.Tensor1D;
  xAdv: tf.Tensor4D;
  fooled: tf.Tensor1D;
  eta: tf.Tensor1D;
  fraction: tf.Tensor1D;
  pixelsAtCheck: tf.Tensor1D;
}

/** Per-example count of pixels (pixel-channels) where a and b differ, shape [batch]. */
function changedPixels(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.cast(tf.notEqual(a, b), 'float32'), [1, 2, 3]) as tf.Tensor1D);
}

/** Steps of the three phases of the eps schedule (30%, 30%, the rest). */
export function scheduleSteps(steps: number): [number, number, number] {
  const a = Math.ceil(0.3 * steps);
  return [a, a, steps - 2 * a];
}

/** One L1-APGD run in the eps ball from `start`; `given` says the start is a carried-over point (sparsity from it) rather than a fresh one. */
function apgdL1Run(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  start: tf.Tensor4D,
  eps: number,
  steps: number,
  spec: ObjectiveSpec,
  given: boolean,
): Candidate & { best: tf.Tensor4D } {
  const budget = { norm: 'l1' as const, eps };
  const batch = images.shape[0];
  const n = images.shape[1] * images.shape[2] * images.shape[3];
  const checkEvery = Math.max(Math.floor(0.04 * steps), 1);

  let st: State = tf.tidy(() => {
    const g = objectiveGradient(logitsFn, start, labels, spec);
    const pixels = changedPixels(start, images);
    return {
      x: tf.clone(start), grad: g.grad, xBest: tf.clone(start), gradBest: tf.clone(g.grad), lossBest: g.objective,
      xAdv: tf.clone(start), fooled: tf.cast(g.success, 'bool') as tf.Tensor1D, eta: tf.fill([batch], eps) as tf.Tensor1D,
      fraction: given ? (tf.div(pixels, n * SHRINK) as tf.Tensor1D) : (tf.fill([batch], INITIAL_FRACTION) as tf.Tensor1D),
      pixelsAtCheck: given ? pixels : (tf.fill([batch], n) as tf.Tensor1D),
    };
  });

  for (let k = 0; k < steps; k++) {
    const next = tf.tidy(() => {
      const x = project(tf.add(st.x, tf.mul(l1Direction(st.grad, st.x, st.fraction), bcast(st.eta, st.x))) as tf.Tensor4D, images, budget);
      const g = objectiveGradient(logitsFn, x, labels, spec);
      const success = tf.cast(g.success, 'bool');
      const newlyFooled = tf.logicalAnd(success, tf.logicalNot(st.fooled));
      const improved = tf.greater(g.objective, st.lossBest);
      let s: State = {
        x, grad: g.grad,
        xBest: tf.where(bcast(improved as tf.Tensor1D, x), x, st.xBest) as tf.Tensor4D,
        gradBest: tf.where(bcast(improved as tf.Tensor1D, x), g.grad, st.gradBest) as tf.Tensor4D,
        lossBest: tf.where(improved, g.objective, st.lossBest) as tf.Tensor1D,
        xAdv: tf.where(bcast(newlyFooled as tf.Tensor1D, x), x, st.xAdv) as tf.Tensor4D,
        fooled: tf.logicalOr(st.fooled, success) as tf.Tensor1D,
        eta: tf.clone(st.eta), fraction: tf.clone(st.fraction), pixelsAtCheck: tf.clone(st.pixelsAtCheck),
      };
      if ((k + 1) % checkEvery === 0) {
        const pixels = changedPixels(s.xBest, images);
        const sparser = tf.less(tf.div(pixels, tf.maximum(s.pixelsAtCheck, 1)), SPARSER);
        const h4 = bcast(sparser as tf.Tensor1D, x);
        s = {
          ...s,
          eta: tf.where(sparser, tf.fill([batch], eps), tf.clipByValue(tf.div(s.eta, SHRINK), eps * MIN_STEP, eps)) as tf.Tensor1D,
          fraction: tf.div(pixels, n * SHRINK) as tf.Tensor1D,
          pixelsAtCheck: pixels,
          // A sparser best point: continue from it (and its gradient).
          x: tf.where(h4, s.xBest, s.x) as tf.Tensor4D,
          grad: tf.where(h4, s.gradBest, s.grad) as tf.Tensor4D,
        };
      }
      return s as unknown as tf.TensorContainer;
    }) as unknown as State;
    tf.dispose(Object.values(st));
    st = next;
  }

  const out = tf.tidy(() => ({
    adv: tf.where(bcast(st.fooled, st.x), st.xAdv, st.xBest) as tf.Tensor4D,
    objective: tf.clone(st.lossBest),
    success: tf.cast(st.fooled, 'float32') as tf.Tensor1D,
    best: tf.clone(st.xBest),
  }));
  tf.dispose(Object.values(st));
  return out;
}

/** L1-APGD adversarial images in [0,1] with ||x_adv - x||_1 <= eps (defaults: 100 steps, CE, random start, 1 restart, seed 0, no eps schedule). */
export function apgdL1(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: ApgdL1Options): tf.Tensor4D {
  const name = 'apgd-l1';
  const o = options ?? ({} as ApgdL1Options);
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${name}: restarts`, 1);
  if (o.randomStart !== undefined && typeof o.randomStart !== 'boolean') throw new Error(`${name}: randomStart must be a boolean`);
  if (o.epsSchedule !== undefined && typeof o.epsSchedule !== 'boolean') throw new Error(`${name}: epsSchedule must be a boolean`);
  if (o.epsSchedule && o.steps !== undefined && o.steps < 3) throw new Error(`${name}: epsSchedule runs three phases and needs steps >= 3, got ${o.steps}`);
  validateAttack(name, model, images, labels, { ...o }, APGD_L1_OPTIONS);
  const fn = asLogitsFn(model);
  const steps = o.steps ?? 100;
  const spec: ObjectiveSpec = { loss: o.loss, targets: o.targeted ? o.targets : undefined, eotSamples: o.eotSamples };
  const phases: Array<[number, number]> = o.epsSchedule
    ? scheduleSteps(steps).map((s, i) => [o.eps * (3 - i), s] as [number, number])
    : [[o.eps, steps]];
  let best: Candidate | undefined;
  for (let r = 0; r < (o.restarts ?? 1); r++) {
    const first = { norm: 'l1' as const, eps: phases[0][0] };
    let start = (o.randomStart ?? true) ? randomStart(images, first, subSeed(o.seed ?? 0, r)) : project(images, images, first);
    let cand: (Candidate & { best: tf.Tensor4D }) | undefined;
    for (const [i, [eps, phaseSteps]] of phases.entries()) {
      if (cand) {
        // The next phase starts at the last one's best point, projected into its smaller ball.
        start = project(cand.best, images, { norm: 'l1', eps });
        tf.dispose([cand.adv, cand.objective, cand.success, cand.best]);
      }
      // With the schedule every phase starts from a carried-over point, as AutoAttack runs it.
      cand = apgdL1Run(fn, images, labels, start, eps, phaseSteps, spec, o.epsSchedule === true && (i > 0 || (o.randomStart ?? true)));
      start.dispose();
    }
    cand!.best.dispose();
    best = foldWorstCase(best, { adv: cand!.adv, objective: cand!.objective, success: cand!.success });
  }
  tf.dispose([best!.objective, best!.success]);
  return best!.adv;
}

/** Projected gradient ascent shared by the L-inf and L2 PGD attacks (Madry et al. 2018). */
import * as tf from '@tensorflow/tfjs';
import type { Norm } from '../src/types.ts';
import { evaluateObjective, foldWorstCase, type Candidate, l0Direction, l1Direction, l2Direction, linfDirection, objectiveGradient, type ObjectiveSpec } from './gradient.ts';
import type { LossName } from './loss.ts';
import { project, randomStart, subSeed } from './project.ts';
import { checkInteger, checkPositive } from './validate.ts';

/** Options of PGD (every norm). */
export interface PgdOptions {
  /** Budget on the 0-1 pixel scale, in the attack's norm (required). */
  eps: number;
  /** Gradient steps per restart (default 10). */
  steps?: number;
  /** Step length in the attack's norm (default 2.5·eps/steps, Madry et al.; L0: the move of a pixel of mean |gradient|, default 0.15). */
  stepSize?: number;
  /** Start from a uniform random point of the ball (default true; L0: false); false starts at x. */
  randomStart?: boolean;
  /** Independent runs; each example keeps its worst case (default 1). */
  restarts?: number;
  /** Seed of the random starts (default 0): same seed, same backend => same images. */
  seed?: number;
  /** Minimise the cross-entropy of `targets` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Loss to ascend: 'ce' (default), 'margin' or 'dlr' (attacks/loss.ts). */
  loss?: LossName;
  /** EOT: average the loss gradient over this many calls of a randomised model (default 1). */
  eotSamples?: number;
  /** L1 only (pgd-l1): each step moves the pixels with |grad| at or above this quantile (default 0.99: the top 1%). */
  quantile?: number;
}

export const PGD_OPTIONS = ['eps', 'steps', 'stepSize', 'randomStart', 'restarts', 'seed', 'targeted', 'targets', 'loss', 'eotSamples'] as const;

/** Check the PGD-specific options (the common ones are checked by validateAttack). */
export function checkPgdOptions(name: string, o: PgdOptions): void {
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${name}: stepSize`);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${name}: restarts`, 1);
  if (o.randomStart !== undefined && typeof o.randomStart !== 'boolean') throw new Error(`${name}: randomStart must be a boolean`);
  if (o.quantile !== undefined && (typeof o.quantile !== 'number' || !(o.quantile >= 0 && o.quantile < 1))) throw new Error(`${name}: quantile must be a number in [0, 1), got ${String(o.quantile)}`);
}

/** Run PGD in `norm` after validation; returns the per-example worst case over restarts. */
export function runPgd(
  norm: Norm,
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  o: PgdOptions,
): tf.Tensor4D {
  const steps = o.steps ?? 10;
  const stepSize = o.stepSize ?? (norm === 'l0' ? 0.15 : (2.5 * o.eps) / steps);
  const restarts = o.restarts ?? 1;
  // L0 starts at x by default: a random start puts k pixels at random colours far from x, and the
  // projection then keeps those pixels (their move dwarfs a step's), freezing a random support.
  const useRandom = o.randomStart ?? norm !== 'l0';
  const seed = o.seed ?? 0;
  const budget = { norm, eps: o.eps };
  const spec: ObjectiveSpec = { loss: o.loss, targets: o.targeted ? o.targets : undefined, eotSamples: o.eotSamples };
  const fraction = 1 - (o.quantile ?? 0.99);
  const direction = (grad: tf.Tensor4D, x: tf.Tensor4D) => (norm === 'linf' ? linfDirection(grad) : norm === 'l2' ? l2Direction(grad) : norm === 'l0' ? l0Direction(grad) : l1Direction(grad, x, fraction, true));

  let best: Candidate | undefined;
  for (let r = 0; r < restarts; r++) {
    let adv = useRandom ? randomStart(images, budget, subSeed(seed, r)) : project(images, images, budget);
    for (let s = 0; s < steps; s++) {
      const next = tf.tidy(() => {
        const { grad } = objectiveGradient(logitsFn, adv, labels, spec);
        return project(tf.add(adv, tf.mul(direction(grad, adv), stepSize)) as tf.Tensor4D, images, budget);
      });
      adv.dispose();
      adv = next;
    }
    if (restarts === 1) return adv;
    const cand = { adv, ...evaluateObjective(logitsFn, adv, labels, spec) };
    best = foldWorstCase(best, cand);
  }
  tf.dispose([best!.objective, best!.success]);
  return best!.adv;
}

/**
 * PGD with an L1 budget: Sparse L1 Descent (SLIDE, Tramèr & Boneh 2019, "Adversarial training and
 * robustness for multiple perturbations"). A plain L1 steepest-ascent step would move one pixel per
 * step; SLIDE moves the pixels whose |gradient| is at or above a quantile (default the top 1%) by equal
 * amounts along the gradient's sign, then projects onto the L1 ball and the box (`project`, exactly).
 * Pixels at the box edge in the gradient's direction are left out of the ranking (they cannot move).
 */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkPgdOptions, PGD_OPTIONS, runPgd, type PgdOptions } from './pgd_core.ts';
import { validateAttack } from './validate.ts';

export const PGD_L1_OPTIONS = [...PGD_OPTIONS, 'quantile'] as const;

/** L1 PGD (SLIDE) adversarial images in [0,1] with ||x_adv - x||_1 <= eps (defaults as `pgd`, quantile 0.99; random start uniform in the L1 ball). */
export function pgdL1(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PgdOptions): tf.Tensor4D {
  checkPgdOptions('pgd-l1', options);
  validateAttack('pgd-l1', model, images, labels, { ...options }, PGD_L1_OPTIONS);
  return runPgd('l1', asLogitsFn(model), images, labels, options);
}

/** PGD with an L2 budget (Madry et al. 2018): steps along the L2-normalised gradient, projection onto the L2 ball. */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkPgdOptions, PGD_OPTIONS, runPgd, type PgdOptions } from './pgd_core.ts';
import { validateAttack } from './validate.ts';

/** L2 PGD adversarial images in [0,1] with ||x_adv - x||_2 <= eps (same defaults as `pgd`; random start uniform in the L2 ball). */
export function pgdL2(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PgdOptions): tf.Tensor4D {
  checkPgdOptions('pgd-l2', options);
  validateAttack('pgd-l2', model, images, labels, { ...options }, PGD_OPTIONS);
  return runPgd('l2', asLogitsFn(model), images, labels, options);
}

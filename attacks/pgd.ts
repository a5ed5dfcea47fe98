/** PGD with an L-inf budget (Madry, Makelov, Schmidt, Tsipras, Vladu 2018): sign-gradient steps, projection, restarts. */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkPgdOptions, PGD_OPTIONS, runPgd, type PgdOptions } from './pgd_core.ts';
import { validateAttack } from './validate.ts';

export type { PgdOptions } from './pgd_core.ts';

/** L-inf PGD adversarial images in [0,1] with ||x_adv - x||_inf <= eps (defaults: 10 steps, step 2.5·eps/steps, random start, 1 restart, seed 0). */
export function pgd(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PgdOptions): tf.Tensor4D {
  checkPgdOptions('pgd', options);
  validateAttack('pgd', model, images, labels, { ...options }, PGD_OPTIONS);
  return runPgd('linf', asLogitsFn(model), images, labels, options);
}

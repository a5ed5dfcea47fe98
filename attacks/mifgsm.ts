/** MI-FGSM (Dong, Liao, Pang, Su, Zhu, Hu, Li 2018): iterative FGSM on an accumulated, L1-normalised gradient; momentum steadies the direction, so its examples transfer better. */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

export type { MiFgsmOptions } from './mifgsm_core.ts';

/** MI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, decay 1, no random start). */
export function miFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('mi-fgsm', options);
  validateAttack('mi-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 1, nesterov: false, diversityProb: 0, kernelSize: 1 }, 'mi-fgsm');
}

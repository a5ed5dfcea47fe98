/** NI-FGSM (Lin, Song, He, Wang, Hopcroft 2020): MI-FGSM with the gradient taken at the Nesterov look-ahead point x + stepSize·decay·g. */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** NI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, decay 1, look-ahead on). */
export function niFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('ni-fgsm', options);
  validateAttack('ni-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 1, nesterov: true, diversityProb: 0, kernelSize: 1 }, 'ni-fgsm');
}

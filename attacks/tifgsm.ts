/**
 * TI-FGSM (Dong, Pang, Su, Zhu 2019): the gradient is smoothed by a Gaussian kernel before each step,
 * standing for the gradients of translated copies of the image, so the example does not hang on the
 * exact placement a single model is sensitive to; as the torchattacks port, it takes DI's input
 * diversity too (diversityProb 0.5).
 */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** TI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, kernel 15 px over ±3σ, diversityProb 0.5, decay 0). */
export function tiFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('ti-fgsm', options);
  validateAttack('ti-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 0, nesterov: false, diversityProb: 0.5, kernelSize: 15 }, 'ti-fgsm');
}

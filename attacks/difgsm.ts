/**
 * DI-FGSM (Xie, Zhang, Zhou, Bai, Wang, Ren, Yuille 2019): iterative FGSM whose gradient is taken through a
 * random resize-and-pad of the input (probability diversityProb per image and call), so the example fits
 * many views of the image, not one model's exact pixels; with decay 1 it is M-DI²-FGSM.
 */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** DI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, diversityProb 0.5, resizeRate 0.9, decay 0). */
export function diFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('di-fgsm', options);
  validateAttack('di-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 0, nesterov: false, diversityProb: 0.5, kernelSize: 1 }, 'di-fgsm');
}

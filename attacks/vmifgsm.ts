/** VMI-FGSM (Wang & He 2021): MI-FGSM whose gradient is corrected by the variance of the previous step's gradient, the mean gradient of varianceSamples points uniform within ±1.5·eps of the iterate minus the iterate's own. */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** VMI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, decay 1, 20 variance samples within ±1.5·eps; 21 gradients per step). */
export function vmiFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('vmi-fgsm', options);
  validateAttack('vmi-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 1, nesterov: false, diversityProb: 0, kernelSize: 1, varianceSamples: 20 }, 'vmi-fgsm');
}

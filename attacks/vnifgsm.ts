/** VNI-FGSM (Wang & He 2021): VMI-FGSM with the gradient at the Nesterov look-ahead point (NI-FGSM's). */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** VNI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: as vmi-fgsm with the look-ahead on). */
export function vniFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('vni-fgsm', options);
  validateAttack('vni-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 1, nesterov: true, diversityProb: 0, kernelSize: 1, varianceSamples: 20 }, 'vni-fgsm');
}

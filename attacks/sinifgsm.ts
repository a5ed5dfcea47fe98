/** SI-NI-FGSM (Lin, Song, He, Wang, Hopcroft 2020): NI-FGSM whose gradient is the mean over the scaled copies x/2^i, i < scales (the scaled copies act as extra models: the paper's model augmentation). */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkMiFgsmOptions, MIFGSM_OPTIONS, runMiFgsm, type MiFgsmOptions } from './mifgsm_core.ts';
import { validateAttack } from './validate.ts';

/** SI-NI-FGSM adversarial images in [0,1], ||x_adv - x||_inf <= eps (defaults: 10 steps of eps/10, decay 1, look-ahead, 5 scales; 5 gradients per step). */
export function siNiFgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: MiFgsmOptions): tf.Tensor4D {
  checkMiFgsmOptions('si-ni-fgsm', options);
  validateAttack('si-ni-fgsm', model, images, labels, { ...options }, MIFGSM_OPTIONS);
  return runMiFgsm(asLogitsFn(model), images, labels, options, { decay: 1, nesterov: true, diversityProb: 0, kernelSize: 1, scales: 5 }, 'si-ni-fgsm');
}

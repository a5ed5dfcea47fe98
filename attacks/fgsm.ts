/** FGSM (Goodfellow, Shlens, Szegedy 2015): one L-inf step x + eps·sign(∇x objective), projected. */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { objectiveGradient } from './gradient.ts';
import type { LossName } from './loss.ts';
import { project } from './project.ts';
import { validateAttack } from './validate.ts';

/** Options of FGSM. */
export interface FgsmOptions {
  /** L-inf budget on the 0-1 pixel scale (required). */
  eps: number;
  /** Minimise the cross-entropy of `targets` instead of maximising that of `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Loss to ascend: 'ce' (default), 'margin' or 'dlr' (attacks/loss.ts). */
  loss?: LossName;
  /** EOT: average the loss gradient over this many calls of a randomised model (default 1). */
  eotSamples?: number;
}

export const FGSM_OPTIONS = ['eps', 'targeted', 'targets', 'loss', 'eotSamples'] as const;

/** FGSM adversarial images [batch,h,w,c] in [0,1], ||x_adv - x||_inf <= eps. Caller disposes. */
export function fgsm(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: FgsmOptions): tf.Tensor4D {
  validateAttack('fgsm', model, images, labels, { ...options }, FGSM_OPTIONS);
  const fn = asLogitsFn(model);
  return tf.tidy(() => {
    const { grad } = objectiveGradient(fn, images, labels, {
      loss: options.loss,
      targets: options.targeted ? options.targets : undefined,
      eotSamples: options.eotSamples,
    });
    return project(tf.add(images, tf.mul(tf.sign(grad), options.eps)) as tf.Tensor4D, images, { norm: 'linf', eps: options.eps });
  });
}

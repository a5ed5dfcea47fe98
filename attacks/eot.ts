/**
 * Expectation over Transformation (Athalye, Engstrom, Ilyas, Kwok 2018) for randomised models.
 * Design: EOT lives in the shared gradient helper (`eotSamples` option of every attack), because only
 * the attack knows its loss: the correct EOT gradient is the average of the LOSS gradients over k
 * model samples, which no wrapper that returns averaged logits can produce. This file exposes that
 * gradient directly and a wrapper that fixes `eotSamples` on any attack.
 */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { objectiveGradient } from './gradient.ts';
import type { LossName } from './loss.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of the EOT gradient. */
export interface EotGradientOptions {
  /** Number of model samples k (required, >= 1). */
  samples: number;
  /** Loss: 'ce' (default), 'margin' or 'dlr'. */
  loss?: LossName;
  /** Gradient of minus the CE of `targets` (default false). */
  targeted?: boolean;
  targets?: tf.Tensor1D;
}

/** (1/k) Σ_i ∇x objective(f_i(x)) over k calls of a randomised model, shape of `images`. Caller disposes. */
export function eotGradient(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: EotGradientOptions): tf.Tensor4D {
  checkInteger(options?.samples, 'eot: samples', 1);
  validateAttack('eot', model, images, labels, { eps: 0, loss: options.loss, targeted: options.targeted, targets: options.targets }, ['eps', 'loss', 'targeted', 'targets']);
  const r = objectiveGradient(asLogitsFn(model), images, labels, {
    loss: options.loss,
    targets: options.targeted ? options.targets : undefined,
    eotSamples: options.samples,
  });
  r.objective.dispose();
  r.success.dispose();
  return r.grad;
}

/** Any attack taking `eotSamples`, with it fixed to `samples` (e.g. withEot(pgd, 10)). */
export function withEot<O extends { eotSamples?: number }>(
  attack: (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: O) => tf.Tensor4D,
  samples: number,
): (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: O) => tf.Tensor4D {
  checkInteger(samples, 'withEot: samples', 1);
  return (model, images, labels, options) => attack(model, images, labels, { ...options, eotSamples: samples });
}

/**
 * BPDA-PGD: PGD through the JPEG layer in BPDA mode (hard rounding forward, a surrogate backward:
 * identity or the soft quantiser), the adaptive attack a non-differentiable JPEG defence needs
 * (Athalye, Carlini, Wagner 2018). Feature-squeezing layers (bit depth, median filter) run exactly forward
 * with the identity backward, or with `backward: 'soft'` bit depth's sigmoid staircase and the median's own
 * gradient. A model with neither gets plain PGD.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../src/types.ts';
import { bpdaModel, hasBpdaLayers } from './bpda.ts';
import { pgd } from './pgd.ts';

/** Options: PGD's (eps on the 0-1 scale, steps, stepSize, ...) plus `backward` (default 'identity'). */
export type BpdaPgdOptions = { eps: number; backward?: 'identity' | 'soft' } & Record<string, unknown>;

/** Adversarial images in [0,1] from PGD on the BPDA-wrapped model; plain PGD without a JPEG or squeezing layer. */
export function bpdaPgd(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: BpdaPgdOptions): tf.Tensor4D {
  const { backward = 'identity', ...rest } = options;
  if (typeof model === 'function') throw new Error('bpda-pgd: needs a tf.LayersModel');
  // Without a JPEG or squeezing layer there is nothing to approximate: BPDA-PGD is plain PGD (the baseline's column).
  if (!hasBpdaLayers(model)) return pgd(model, images, labels, rest as never);
  return pgd(bpdaModel(model, { backward }), images, labels, rest as never);
}

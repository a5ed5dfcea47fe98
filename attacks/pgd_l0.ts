/**
 * PGD with an L0 budget (Croce & Hein 2019, "Sparse and Imperceivable Adversarial Attacks", PGD0): the
 * budget eps is a number of pixels k. Each step moves every pixel along the gradient divided by its mean
 * magnitude (`l0Direction`), then projects exactly onto "at most k pixels differ from x" and the box
 * (`project`): the pixels whose move lowers the distance to the step's point most are kept, the rest
 * return to x. It starts at x by default: the random start (k random pixels at random colours) moves
 * those pixels so far that the projection keeps them over the gradient's choice (measured on the README's
 * Fashion-MNIST baseline, 200 images, k = 10: 35% left correct with it against 24% without; step sizes
 * 0.05-1 tried, 0.15 best). White-box counterpart of
 * Sparse-RS (`sparse-rs`), which usually finds more (the paper's finding); the report's checks say when.
 */
import type * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { checkPgdOptions, PGD_OPTIONS, runPgd, type PgdOptions } from './pgd_core.ts';
import { validateAttack } from './validate.ts';

/** L0 PGD adversarial images in [0,1] differing from x in at most floor(eps) pixels (defaults as `pgd` except stepSize 0.15, the move of a pixel of mean |gradient|, and no random start). */
export function pgdL0(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PgdOptions): tf.Tensor4D {
  checkPgdOptions('pgd-l0', options);
  if (options && typeof options.eps === 'number' && options.eps >= 0 && Number.isFinite(options.eps) && !Number.isInteger(options.eps)) throw new Error(`pgd-l0: eps must be a whole number of pixels, got ${options.eps}`);
  validateAttack('pgd-l0', model, images, labels, { ...options }, PGD_OPTIONS);
  return runPgd('l0', asLogitsFn(model), images, labels, options);
}

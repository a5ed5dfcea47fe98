/** Types shared by models, attacks and reports. Pixels are float32 in [0,1], NHWC. */
import * as tf from '@tensorflow/tfjs';
import { inferenceModel } from './inference/model.ts';

/** Anything that maps a batch of [0,1] NHWC images to logits [batch, classes], differentiably. */
export type Classifier = tf.LayersModel | ((images: tf.Tensor4D) => tf.Tensor2D);

/**
 * The classifier as a plain differentiable function (inference mode: BatchNorm uses moving
 * statistics). A LayersModel runs as its BN-folded inference copy (same function up to float32
 * rounding, fewer kernels; see src/inference/model.ts), refolded whenever its weights change.
 */
export function asLogitsFn(model: Classifier): (images: tf.Tensor4D) => tf.Tensor2D {
  if (typeof model === 'function') return model;
  // Fold now, outside any gradient tape the returned function may later run under.
  inferenceModel(model);
  return (images) => inferenceModel(model).apply(images, { training: false }) as tf.Tensor2D;
}

/**
 * Norm of a perturbation budget. 'l0' counts changed pixels (a pixel is changed when any of its channels
 * is; its budget is a whole number of pixels, not a 0-1 size), as Sparse-RS and Croce & Hein 2019 count.
 */
export type Norm = 'linf' | 'l2' | 'l1' | 'l0';
/** Every norm, in the order reports list them. */
export const NORMS: readonly Norm[] = ['linf', 'l2', 'l1', 'l0'];

/** Threat model carried by every attack result, so no report can mix scales (as Foolbox 3). */
export interface ThreatModel {
  norm: Norm;
  /** Budget on the 0-1 pixel scale (L0: a number of pixels). */
  eps: number;
  /** The budget as given, e.g. "8/255". */
  epsLabel: string;
  /** Pixel bounds; always [0, 1] in this suite. */
  bounds: [number, number];
}

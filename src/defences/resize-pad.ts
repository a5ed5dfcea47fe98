/**
 * Random resizing and padding as an input defence (Xie et al., ICLR 2018): a trained, undefended
 * classifier behind a random resize and a random placement on a padded canvas, drawn anew for every image
 * on every call (src/layers/resize-pad.ts). The transform is differentiable, so plain gradient attacks
 * reach the model through it; what it hides is which draw the attack will meet, which Expectation over
 * Transformation (Athalye, Engstrom, Ilyas, Kwok 2018; `eotSamples=k`) answers.
 */
import type * as tf from '@tensorflow/tfjs';
import { RandomResizePad, type ResizeInterpolation } from '../layers/resize-pad.ts';
import { behindLayer } from './wrap.ts';

/** Options of `resizePadDefended`. */
export interface ResizePadDefenceOptions {
  /** Smallest side drawn, pixels (>= 1). */
  minSize: number;
  /** Largest side drawn and the canvas side, pixels (>= minSize). */
  maxSize: number;
  /** Resampling (default 'nearest', as the reference). */
  interpolation?: ResizeInterpolation;
  /** Canvas value, pixels 0-1 (default 0). */
  fill?: number;
  /** Seed of the draws (default 0); sweeps reseed per batch. */
  seed?: number;
  /** Predict by the mean softmax over this many draws per image (default 1: one draw; the reference averages 30). */
  draws?: number;
}

/** `model` (pixels 0-1 in, logits out) behind random resizing and padding: a new tf.LayersModel sharing the model's weights. */
export function resizePadDefended(model: tf.LayersModel, { minSize, maxSize, interpolation = 'nearest', fill = 0, seed = 0, draws = 1 }: ResizePadDefenceOptions): tf.LayersModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('resize-pad defence: the model must have one input and one output');
  const shape = model.inputs[0].shape.slice(1) as (number | null)[];
  if (shape.length !== 3 || shape[0] == null || shape[0] !== shape[1]) throw new Error(`resize-pad defence: the model must take square [s, s, c] images, it takes [${shape}]`);
  // The layer checks sizes, interpolation, fill and seed (and names them) before anything is built.
  const layer = new RandomResizePad({ minSize, maxSize, interpolation, fill, seed, name: 'random_resize_pad' });
  // The layer has no weights; disposing the wrapper must not free the caller's model.
  return behindLayer(model, layer, `${model.name}_rrp${minSize}_${maxSize}${interpolation === 'bilinear' ? '_bilinear' : ''}${draws > 1 ? `_avg${draws}` : ''}`, undefined, draws);
}

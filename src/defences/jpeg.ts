/**
 * The classic JPEG-compression input defence (Dziugaite et al. 2016; Das et al. 2017; Guo et al. 2018):
 * compress every input with real JPEG at a fixed IJG quality before an undefended classifier. It is
 * JPEG-DL without the training: the same differentiable JPEG layer with the standard tables of that
 * quality, frozen, in front of a trained baseline. Athalye, Carlini, Wagner (2018) broke it with BPDA
 * (the rounding's zero gradient only hides the classifier's); the suite's hard mode, `bpda-pgd`,
 * Square and HopSkipJump are the attacks that show it, and comparing it with a JPEG-DL model trained
 * with its tables asks what the training adds.
 */
import type * as tf from '@tensorflow/tfjs';
import { JpegLayer } from '../jpeg/layer.ts';
import { behindLayer } from './wrap.ts';

/** Options of `jpegDefended`. */
export interface JpegDefenceOptions {
  /** IJG quality 1-100 of the fixed tables. */
  quality: number;
  /** Quantiser mode at the start (default 'hard': real rounding; switchable through the layer, as JPEG-DL's). */
  mode?: 'soft' | 'hard';
}

/** `model` (pixels 0-1 in, logits out) behind a frozen JPEG layer at `quality`: a new tf.LayersModel sharing the model's weights. */
export function jpegDefended(model: tf.LayersModel, { quality, mode = 'hard' }: JpegDefenceOptions): tf.LayersModel {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new Error(`jpeg defence: quality must be an integer in 1..100, got ${String(quality)}`);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('jpeg defence: the model must have one input and one output');
  if (model.layers.some((l) => l.getClassName() === 'JpegLayer')) throw new Error('jpeg defence: the model already has a JpegLayer (it is a JPEG-DL model, not an undefended one)');
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.length !== 3 || (shape[2] !== 3 && shape[2] !== 1)) throw new Error(`jpeg defence: the model must take [h, w, 1 or 3] images, it takes [${shape}]`);
  const jpeg = new JpegLayer({ quality, mode, name: 'jpeg', trainable: false });
  // Disposing the wrapper frees its JPEG layer only: the model inside belongs to the caller.
  return behindLayer(model, jpeg, `${model.name}_jpeg${quality}`, () => jpeg.dispose());
}

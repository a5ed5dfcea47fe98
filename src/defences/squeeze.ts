/**
 * Feature squeezing as an input defence (Xu, Evans, Qi 2018; ART's FeatureSqueezing and
 * SpatialSmoothing preprocessors): a trained, undefended classifier behind colour bit-depth
 * reduction or a median filter (src/layers/squeeze.ts). Athalye, Carlini, Wagner (2018) list such
 * input transformations among the defences that only mask gradients; BPDA-PGD, Square and
 * HopSkipJump are the attacks that test them, beside the JPEG defence (src/defences/jpeg.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import { BitDepthReduction, MedianSmoothing, type SqueezeMode } from '../layers/squeeze.ts';
import { behindLayer } from './wrap.ts';

/** Which squeezer: `bits` per colour channel (1..8) or a `median` filter window side (2..5). */
export type Squeezer = { kind: 'bits'; bits: number } | { kind: 'median'; window: number };

/** `model` (pixels 0-1 in, logits out) behind `squeezer`: a new tf.LayersModel sharing the model's weights. */
export function squeezeDefended(model: tf.LayersModel, squeezer: Squeezer, mode: SqueezeMode = 'hard'): tf.LayersModel {
  if (squeezer == null || (squeezer.kind !== 'bits' && squeezer.kind !== 'median')) throw new Error(`squeeze defence: squeezer must be {kind: 'bits', bits} or {kind: 'median', window}, got ${JSON.stringify(squeezer)}`);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('squeeze defence: the model must have one input and one output');
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.length !== 3) throw new Error(`squeeze defence: the model must take [h, w, c] images, it takes [${shape}]`);
  // The layers check bits and window (and name them) before anything is built.
  const layer = squeezer.kind === 'bits' ? new BitDepthReduction({ bits: squeezer.bits, mode, name: 'squeeze' }) : new MedianSmoothing({ window: squeezer.window, mode, name: 'squeeze' });
  const tag = squeezer.kind === 'bits' ? `bits${squeezer.bits}` : `median${squeezer.window}`;
  // The squeezer has no weights; disposing the wrapper must not free the caller's model.
  return behindLayer(model, layer, `${model.name}_${tag}`);
}

/**
 * Randomised JPEG as an input defence: a trained, undefended classifier behind JPEG compression at
 * a quality drawn at random for every image (or every 8x8 block, as SHIELD's stochastic local
 * quantisation, Das et al. KDD 2018) on every call. Randomness is what Athalye, Engstrom, Ilyas and
 * Kwok's Expectation over Transformation answers: attack it with `eotSamples` (PGD, APGD) or
 * AutoAttack's 'rand' version, through BPDA for the rounding (`bpda-pgd:eotSamples=k`).
 */
import type * as tf from '@tensorflow/tfjs';
import { findJpegModeLayers } from '../jpeg/modes.ts';
import type { QuantMode } from '../jpeg/quantize.ts';
import { RandomJpegLayer, type RandomJpegUnit } from '../jpeg/random.ts';
import { behindLayer } from './wrap.ts';

/** Options of `randomJpegDefended`. */
export interface RandomJpegDefenceOptions {
  /** Lowest IJG quality drawn (1..100). */
  minQuality: number;
  /** Highest IJG quality drawn (minQuality..100). */
  maxQuality: number;
  /** One quality per image (default) or per 8x8 block. */
  per?: RandomJpegUnit;
  /** Quantiser mode at the start (default 'hard': real rounding). */
  mode?: QuantMode;
  /** Seed of the quality draws (default 0); sweeps reseed per batch. */
  seed?: number;
  /** Predict by the mean softmax over this many draws per image (default 1: one draw). */
  draws?: number;
}

/** `model` (pixels 0-1 in, logits out) behind JPEG at a random quality: a new tf.LayersModel sharing the model's weights. */
export function randomJpegDefended(model: tf.LayersModel, { minQuality, maxQuality, per = 'image', mode = 'hard', seed = 0, draws = 1 }: RandomJpegDefenceOptions): tf.LayersModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('random jpeg defence: the model must have one input and one output');
  if (findJpegModeLayers(model).length > 0) throw new Error('random jpeg defence: the model already has a JPEG layer (a JPEG-DL or JPEG-defended model, not an undefended one)');
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.length !== 3 || (shape[2] !== 3 && shape[2] !== 1)) throw new Error(`random jpeg defence: the model must take [h, w, 1 or 3] images, it takes [${shape}]`);
  // The layer checks the qualities, unit, mode and seed (and names them) before anything is built.
  const jpeg = new RandomJpegLayer({ minQuality, maxQuality, per, mode, seed, name: 'random_jpeg' });
  // The random JPEG layer has no weights; disposing the wrapper must not free the caller's model.
  return behindLayer(model, jpeg, `${model.name}_rjpeg${minQuality}_${maxQuality}${per === 'block' ? '_block' : ''}${draws > 1 ? `_avg${draws}` : ''}`, undefined, draws);
}

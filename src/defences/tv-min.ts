/**
 * Total variation minimisation as an input defence (Guo, Rana, Cisse, van der Maaten, ICLR 2018): a
 * trained, undefended classifier behind random pixel dropout and a total-variation reconstruction,
 * with a new mask for every image on every call (src/layers/tv-min.ts). Athalye, Carlini, Wagner (2018)
 * broke it with BPDA (identity backward) and Expectation over Transformation over the masks; both are
 * here: `--bpda identity` (or bpda-pgd) for the first, `eotSamples=k` for the second, and the layer's
 * unrolled solver also gives a true gradient to plain PGD.
 */
import type * as tf from '@tensorflow/tfjs';
import type { SqueezeMode } from '../layers/squeeze.ts';
import { TotalVariationMin, TVM_DEFAULTS } from '../layers/tv-min.ts';
import { behindLayer } from './wrap.ts';

/** Options of `tvMinDefended`. */
export interface TvMinDefenceOptions {
  /** Share of values dropped per call, in [0, 1) (default 0.5, the reference's). */
  dropRate?: number;
  /** Total-variation weight on pixels 0-1 (default 0.03, the reference's). */
  weight?: number;
  /** Solver iterations (default 100). */
  iterations?: number;
  /** Seed of the masks (default 0); sweeps reseed per batch. */
  seed?: number;
  /** Predict by the mean softmax over this many masks per image (default 1). */
  draws?: number;
  /** Gradient mode of the layer (default 'hard': through the unrolled solver). */
  mode?: SqueezeMode;
}

/** `model` (pixels 0-1 in, logits out) behind pixel dropout and TV minimisation: a new tf.LayersModel sharing the model's weights. */
export function tvMinDefended(model: tf.LayersModel, { dropRate = TVM_DEFAULTS.dropRate, weight = TVM_DEFAULTS.weight, iterations = TVM_DEFAULTS.iterations, seed = 0, draws = 1, mode = 'hard' }: TvMinDefenceOptions = {}): tf.LayersModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('tv-min defence: the model must have one input and one output');
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.length !== 3) throw new Error(`tv-min defence: the model must take [h, w, c] images, it takes [${shape}]`);
  // The layer checks its options (and names them) before anything is built.
  const layer = new TotalVariationMin({ dropRate, weight, iterations, seed, mode, name: 'tv_min' });
  return behindLayer(model, layer, `${model.name}_tvm${dropRate}_${weight}${draws > 1 ? `_avg${draws}` : ''}`, undefined, draws);
}

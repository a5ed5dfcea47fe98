/**
 * BPDA, Backward Pass Differentiable Approximation (Athalye, Carlini, Wagner 2018): run the true,
 * non-differentiable preprocessing forward, and back-propagate through a differentiable surrogate.
 * `bpdaModel` does this for models containing JpegLayers (hard quantiser forward, identity or
 * soft-quantiser backward), feature-squeezing layers (bit depth, median filter: identity or smooth backward)
 * or total variation minimisation (identity backward, or the gradient of its unrolled solver);
 * `bpda` does it for any preprocessing function.
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { findJpegLayers } from '../src/jpeg/layer.ts';
import { findJpegModeLayers } from '../src/jpeg/modes.ts';
import { findLayers } from '../src/layers/internals.ts';
import { SQUEEZE_LAYER_CLASSES, type SqueezeMode } from '../src/layers/squeeze.ts';

/** A differentiable surrogate of a preprocessing step; 'identity' is the straight-through estimator. */
export type Surrogate = 'identity' | ((x: tf.Tensor4D) => tf.Tensor4D);

/**
 * x -> preprocess(x) forward, with the vector-Jacobian product of `approx` backward. The surrogate's
 * own ops are recorded by ordinary autodiff; `preprocess` runs untaped, so it may use ops without a
 * gradient. The output equals preprocess(x) bit-for-bit.
 */
export function straightThrough(preprocess: (x: tf.Tensor4D) => tf.Tensor4D, approx: Surrogate): (x: tf.Tensor4D) => tf.Tensor4D {
  // Two inputs: x (gets no gradient here) and a = approx(x) (gets dy, which autodiff pushes through approx).
  const join = tf.customGrad(((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, , save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x]);
    const value = preprocess(x as tf.Tensor4D);
    if (!(value instanceof tf.Tensor) || value.rank !== 4 || value.shape.some((d, i) => d !== x.shape[i])) {
      throw new Error(`bpda: preprocess must return a tensor of the input shape [${x.shape}], got ${value instanceof tf.Tensor ? `[${value.shape}]` : typeof value}`);
    }
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.zerosLike(saved[0]), dy] };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x) => {
    const a = approx === 'identity' ? x : approx(x);
    return join(x, a) as tf.Tensor4D;
  };
}

/** Classifier computing classifier(preprocess(x)) forward, with gradients through `approx` (BPDA). */
export function bpda(preprocess: (x: tf.Tensor4D) => tf.Tensor4D, approx: Surrogate, classifier: Classifier): (x: tf.Tensor4D) => tf.Tensor2D {
  if (typeof preprocess !== 'function') throw new Error('bpda: preprocess must be a function from images to images');
  if (approx !== 'identity' && typeof approx !== 'function') throw new Error('bpda: approx must be "identity" or a function from images to images');
  const st = straightThrough(preprocess, approx);
  const fn = asLogitsFn(classifier);
  return (x) => fn(st(x));
}

/** Every JpegLayer of `model`, recursing into nested models (the layer module's own finder). */
export const jpegLayersOf = findJpegLayers;

/** Every feature-squeezing layer (BitDepthReduction, MedianSmoothing) of `model`, recursing into nested models. */
export function squeezeLayersOf(model: tf.LayersModel): (tf.layers.Layer & { mode: SqueezeMode })[] {
  return findLayers(model, (l): l is tf.layers.Layer & { mode: SqueezeMode } => SQUEEZE_LAYER_CLASSES.includes(l.getClassName()));
}

/** Whether BPDA has anything to approximate in `model`: a JPEG layer (JPEG-DL's or randomised JPEG) or a feature-squeezing layer. */
export function hasBpdaLayers(model: tf.LayersModel): boolean {
  return findJpegModeLayers(model).length > 0 || squeezeLayersOf(model).length > 0;
}

/** Options of bpdaModel. */
export interface BpdaModelOptions {
  /**
   * Backward pass through the JPEG quantiser: 'identity' (straight-through) or 'soft' (soft quantiser Q_d);
   * through feature squeezers: 'identity', or 'soft' (bit depth's sigmoid staircase, the median's own gradient).
   */
  backward: 'identity' | 'soft';
}

/**
 * Classifier running `model` with every JPEG layer (JpegLayer, RandomJpegLayer) in mode 'bpda-identity' or 'bpda-soft' (hard rounding
 * forward, surrogate gradient backward) and every squeezing layer in the same mode for the duration of
 * each call, restoring the previous modes after. The surrogate gradient is fixed when the forward runs,
 * so restoring before the backward pass is safe. Throws if the model has neither (BPDA would silently
 * be a plain attack otherwise).
 */
export function bpdaModel(model: tf.LayersModel, options: BpdaModelOptions): (x: tf.Tensor4D) => tf.Tensor2D {
  if (!(model instanceof tf.LayersModel)) throw new Error('bpdaModel: model must be a tf.LayersModel containing JpegLayers');
  const backward = options?.backward;
  if (backward !== 'identity' && backward !== 'soft') throw new Error(`bpdaModel: backward must be "identity" or "soft", got ${String(backward)}`);
  const layers = findJpegModeLayers(model);
  const squeezers = squeezeLayersOf(model);
  if (layers.length === 0 && squeezers.length === 0) throw new Error(`bpdaModel: model "${model.name}" has no JpegLayer or feature-squeezing layer; BPDA needs one to approximate`);
  const mode = backward === 'identity' ? 'bpda-identity' : 'bpda-soft';
  return (x) => {
    const saved = layers.map((l) => l.mode);
    const savedSqueeze = squeezers.map((l) => l.mode);
    try {
      for (const l of layers) l.mode = mode;
      for (const l of squeezers) l.mode = mode;
      return model.apply(x, { training: false }) as tf.Tensor2D;
    } finally {
      layers.forEach((l, i) => (l.mode = saved[i]));
      squeezers.forEach((l, i) => (l.mode = savedSqueeze[i]));
    }
  };
}

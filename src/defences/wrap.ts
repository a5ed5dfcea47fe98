/** How every input defence is put in front of a classifier: one wrapper model sharing its weights. */
import * as tf from '@tensorflow/tfjs';
import { MeanOfDraws, RepeatDraws } from '../layers/draws.ts';

/** What tf.LayersModel.dispose returns. */
type DisposeResult = ReturnType<tf.LayersModel['dispose']>;

/** What disposing a wrapper whose preprocessing layer has no weights frees. */
const NOTHING_FREED: DisposeResult = { refCountAfterDispose: 0, numDisposedVariables: 0 };

/**
 * A wrapper's dispose: `free` once, and give back the reference the wrapper took on `model` when it
 * applied it (tfjs counts them), so that the caller's own model.dispose() still frees its weights.
 */
export function releaseOnce(model: tf.LayersModel, free: () => DisposeResult): () => DisposeResult {
  let done: DisposeResult | null = null;
  return () => {
    if (done) return done;
    (model as unknown as { _refCount: number })._refCount -= 1;
    done = free();
    return done;
  };
}

/**
 * `model` (pixels 0-1 in, logits out; one input, checked by the caller) behind `layer`: a new
 * tf.LayersModel named `name` sharing the model's weights. With `draws` k > 1 (a randomised layer) every
 * image goes through the layer and the model k times and the output is log of the mean softmax (the
 * ensemble a randomised defence is deployed as; src/layers/draws.ts). Its dispose runs `free` (the
 * layer's own weights, if any) once and never frees the caller's model.
 */
export function behindLayer(model: tf.LayersModel, layer: tf.layers.Layer, name: string, free: () => DisposeResult = () => NOTHING_FREED, draws = 1): tf.LayersModel {
  if (!Number.isInteger(draws) || draws < 1) throw new Error(`${name}: draws must be an integer >= 1, got ${String(draws)}`);
  const input = tf.input({ shape: model.inputs[0].shape.slice(1) as number[], name: 'image' });
  const copies = draws > 1 ? (new RepeatDraws({ draws, name: 'repeat_draws' }).apply(input) as tf.SymbolicTensor) : input;
  const perDraw = model.apply(layer.apply(copies)) as tf.SymbolicTensor;
  const logits = draws > 1 ? (new MeanOfDraws({ draws, name: 'mean_of_draws' }).apply(perDraw) as tf.SymbolicTensor) : perDraw;
  const defended = tf.model({ inputs: input, outputs: logits, name });
  defended.dispose = releaseOnce(model, free);
  return defended;
}

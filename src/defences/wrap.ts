/** How every input defence is put in front of a classifier: one wrapper model sharing its weights. */
import * as tf from '@tensorflow/tfjs';

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
 * tf.LayersModel named `name` sharing the model's weights. Its dispose runs `free` (the layer's own
 * weights, if any) once and never frees the caller's model.
 */
export function behindLayer(model: tf.LayersModel, layer: tf.layers.Layer, name: string, free: () => DisposeResult = () => NOTHING_FREED): tf.LayersModel {
  const input = tf.input({ shape: model.inputs[0].shape.slice(1) as number[], name: 'image' });
  const logits = model.apply(layer.apply(input)) as tf.SymbolicTensor;
  const defended = tf.model({ inputs: input, outputs: logits, name });
  defended.dispose = releaseOnce(model, free);
  return defended;
}

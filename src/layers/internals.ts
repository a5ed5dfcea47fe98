/**
 * Fields of tfjs-layers classes that tfjs does not type publicly, read by the fast paths and the BN
 * folding, and small helpers around tfjs typings shared by the custom layers.
 */
import * as tf from '@tensorflow/tfjs';

// tf.customGrad's typing wants variadic (Tensor | save) parameters; ours name them.
/** tf.customGrad for a function with named tensor (and save) parameters. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const customGrad = (f: (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] }) =>
  tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);

/** Every layer of `model` for which `match` holds, searching nested models, in layer order. */
export function findLayers<T extends tf.layers.Layer>(model: tf.LayersModel, match: (l: tf.layers.Layer) => l is T): T[] {
  const out: T[] = [];
  const visit = (layers: tf.layers.Layer[]) => {
    for (const l of layers) {
      if (match(l)) out.push(l);
      else if (l instanceof tf.LayersModel) visit(l.layers);
    }
  };
  visit(model.layers);
  return out;
}

/** tfjs-layers BatchNormalization's configuration and weights. */
export interface BatchNormLayerInternals {
  axis: number | number[];
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

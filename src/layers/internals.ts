/** Fields of tfjs-layers classes that tfjs does not type publicly, read by the fast paths and the BN folding. */
import type * as tf from '@tensorflow/tfjs';

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

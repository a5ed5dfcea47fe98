/**
 * Layers whose run-time `mode` is a JPEG quantiser mode (soft, hard, bpda-identity, bpda-soft): the
 * JPEG-DL layer and the randomised JPEG defence. Sweeps switch JPEG modes, and BPDA its surrogate
 * backward, on all of them alike.
 */
import type * as tf from '@tensorflow/tfjs';
import { findLayers } from '../layers/internals.ts';
import type { QuantMode } from './quantize.ts';

/** Class names of the layers with a JPEG quantiser mode. */
export const JPEG_MODE_LAYER_CLASSES: readonly string[] = ['JpegLayer', 'RandomJpegLayer'];

/** A layer with a switchable JPEG quantiser mode. */
export type JpegModeLayer = tf.layers.Layer & { mode: QuantMode };

/** Every layer of `model` with a JPEG quantiser mode, nested models included, in layer order. */
export function findJpegModeLayers(model: tf.LayersModel): JpegModeLayer[] {
  return findLayers(model, (l): l is JpegModeLayer => JPEG_MODE_LAYER_CLASSES.includes(l.getClassName()));
}

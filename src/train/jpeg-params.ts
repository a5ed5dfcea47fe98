/**
 * Which of a model's weights are JPEG quantisation tables (trained by Adam) and which are backbone
 * (trained by SGD with weight decay). Found by class name so this module works with any model that
 * contains the JPEG layer, nested or not, without importing the layer itself.
 */
import * as tf from '@tensorflow/tfjs';
// Step bounds of the reference's pre-forward hook (min_Q_Step 0 -> 1e-5, max_Q_Step 255).
import { Q_MAX, Q_MIN } from '../jpeg/quantize.ts';

/** Evaluation modes of the JPEG layer. */
export type JpegMode = 'soft' | 'hard' | 'bpda-identity' | 'bpda-soft';

/** A JpegLayer as seen from here: a layer with a run-time `mode` and `getTables()`. */
export interface JpegLayerLike extends tf.layers.Layer {
  mode: JpegMode;
  getTables?: () => unknown;
}

/** All layers of class 'JpegLayer' in `model`, searching nested models, in layer order. */
export function jpegLayersOf(model: tf.LayersModel): JpegLayerLike[] {
  const out: JpegLayerLike[] = [];
  const visit = (layers: tf.layers.Layer[]) => {
    for (const l of layers) {
      if (l.getClassName() === 'JpegLayer') out.push(l as JpegLayerLike);
      const inner = (l as unknown as { layers?: tf.layers.Layer[] }).layers;
      if (Array.isArray(inner)) visit(inner);
    }
  };
  visit(model.layers);
  return out;
}

/** The model's trainable variables split into backbone and JPEG-table groups (each in model order). */
export function splitTrainableVariables(model: tf.LayersModel): { backbone: tf.Variable[]; jpeg: tf.Variable[]; backboneNames: string[]; jpegNames: string[] } {
  const jpegIds = new Set<number>();
  for (const l of jpegLayersOf(model)) for (const w of l.trainableWeights) jpegIds.add(w.id);
  const backbone: tf.Variable[] = [];
  const jpeg: tf.Variable[] = [];
  const backboneNames: string[] = [];
  const jpegNames: string[] = [];
  for (const w of model.trainableWeights) {
    if (jpegIds.has(w.id)) {
      jpeg.push(w.read() as tf.Variable);
      jpegNames.push(w.name);
    } else {
      backbone.push(w.read() as tf.Variable);
      backboneNames.push(w.name);
    }
  }
  return { backbone, jpeg, backboneNames, jpegNames };
}

/** Clamp every JPEG table in place to [Q_MIN, Q_MAX], as the reference does before each forward pass. */
export function clampTables(vars: tf.Variable[]): void {
  tf.tidy(() => {
    for (const v of vars) v.assign(tf.clipByValue(v, Q_MIN, Q_MAX));
  });
}

/** Current tables of every JPEG layer as plain arrays (by layer, then by weight), for logs and reports. */
export function readTables(model: tf.LayersModel): { layer: string; weights: { name: string; shape: number[]; values: number[] }[] }[] {
  return jpegLayersOf(model).map((l) => ({
    layer: l.name,
    weights: l.trainableWeights.map((w) => {
      const t = w.read();
      return { name: w.originalName ?? w.name, shape: t.shape.slice(), values: Array.from(t.dataSync()) };
    }),
  }));
}

/** Run `fn` with every JPEG layer of `model` in `mode`, restoring the previous modes after (even on error). */
export async function withJpegMode<T>(model: tf.LayersModel, mode: JpegMode, fn: () => T | Promise<T>): Promise<T> {
  const layers = jpegLayersOf(model);
  const before = layers.map((l) => l.mode);
  for (const l of layers) l.mode = mode;
  try {
    return await fn();
  } finally {
    layers.forEach((l, i) => (l.mode = before[i]));
  }
}

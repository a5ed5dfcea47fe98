/** Parameter-count summary of the zoo (baseline and JPEG-DL), used by `jpegdl-robust models`. */
import * as tf from '@tensorflow/tfjs';
import { JpegLayer, type JpegLayerArgs } from '../src/jpeg/layer.ts';
import { buildModel, countTrainableParams, getModelInfo, MODEL_NAMES, type ModelInfo } from './registry.ts';

/** One row of the summary; params are trainable-parameter counts (null when the input is too small). */
export interface ModelSummaryRow extends ModelInfo {
  inputShape: [number, number, number];
  numClasses: number;
  baselineParams: number | null;
  /** Baseline + the JPEG layer's trainable tables. */
  jpegParams: number | null;
  /** Why the model could not be built for this input (e.g. too small), else null. */
  error: string | null;
}

/** Trainable parameters of a JpegLayer for images of `channels` channels (64 per table per round). */
export function jpegLayerParams(inputShape: [number, number, number], jpeg: JpegLayerArgs = {}): number {
  const input = tf.input({ shape: inputShape });
  const model = tf.model({ inputs: input, outputs: new JpegLayer(jpeg).apply(input) as tf.SymbolicTensor });
  const n = countTrainableParams(model);
  model.dispose();
  return n;
}

/**
 * Build each model (baseline) for `inputShape` (default: the model's own default input) and
 * `numClasses`, count its trainable parameters, and add the JPEG layer's. Models are disposed.
 */
export function summarizeModels(opts: {
  names?: string[];
  inputShape?: [number, number, number];
  numClasses?: number;
  jpeg?: JpegLayerArgs;
}): ModelSummaryRow[] {
  const names = opts.names ?? [...MODEL_NAMES];
  const numClasses = opts.numClasses ?? 100;
  names.forEach((n) => getModelInfo(n)); // unknown names fail before any model is built
  return names.map((name) => {
    const info = getModelInfo(name);
    const inputShape = opts.inputShape ?? info.defaultInputShape;
    const row: ModelSummaryRow = { ...info, inputShape, numClasses, baselineParams: null, jpegParams: null, error: null };
    let model: tf.LayersModel | undefined;
    try {
      model = buildModel(name, { inputShape, numClasses });
      row.baselineParams = countTrainableParams(model);
      row.jpegParams = row.baselineParams + jpegLayerParams(inputShape, opts.jpeg);
    } catch (err) {
      row.error = (err as Error).message;
    } finally {
      model?.dispose();
    }
    return row;
  });
}

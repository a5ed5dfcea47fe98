/**
 * Bring your own classifier: wrap any tfjs layers model (a Keras model converted with
 * tensorflowjs_converter, or one built with tfjs) so it follows the suite's conventions: it takes
 * float32 [0,1] NHWC pixels (its own scaling, channel order and normalisation move inside the model,
 * as ART's `preprocessing` and Foolbox's `preprocessing` do) and returns logits (a final softmax is
 * stripped, because attacks take their losses on logits). The result is an ordinary LayersModel
 * that every command takes (`attack --model`, `evaluate --baseline`).
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../data/rng.ts';
import { ChannelReverse } from '../layers/channel-ops.ts';
import { Normalize } from '../layers/normalize.ts';

/** How the source model expects its input and what its output is. */
export interface ImportOptions {
  /** Pixel scale the source model was trained on: 1 (pixels 0-1, default) or 255 (pixels 0-255); any positive number. */
  inputScale?: number;
  /** Per-channel mean the source model's pipeline subtracted, on its input scale, in its channel order (one entry or one per channel; default 0). */
  mean?: number[];
  /** Per-channel std the source model's pipeline divided by, on its input scale, in its channel order (default 1). */
  std?: number[];
  /** Channel order the source model was trained on (default 'rgb'; 'bgr' for Caffe-style models). */
  channelOrder?: 'rgb' | 'bgr';
  /** 'auto' (default): strip a final softmax and refuse outputs that still look like probabilities; 'logits': take the outputs as logits unchecked. */
  outputs?: 'auto' | 'logits';
  /** Name of the imported model (default `imported_<source name>`). */
  name?: string;
}

/** What {@link importModel} did, stored in the imported model's metadata. */
export interface ImportSummary {
  sourceName: string;
  inputShape: (number | null)[];
  classes: number;
  inputScale: number;
  mean: number[];
  std: number[];
  channelOrder: 'rgb' | 'bgr';
  outputs: 'auto' | 'logits';
  /** The layer whose softmax was removed (with the pass-through layers walked back over), or null when none was. */
  strippedSoftmax: string | null;
  /** Largest |softmax(imported logits) - source output| on the check images (0 when nothing was stripped). */
  stripError: number;
}

/** Layers that are the identity at inference, walked back over when looking for a final softmax. */
const PASS_THROUGH = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ActivityRegularization']);
const CONTAINERS = new Set(['Sequential', 'Model', 'Functional']);

/** Rows are probabilities when every entry is >= -tol and every row sums to 1 within tol. */
export function rowsLookLikeProbabilities(values: Float32Array | number[], classes: number, tol = 1e-4): boolean {
  if (classes < 2 || values.length === 0 || values.length % classes !== 0) return false;
  for (let r = 0; r < values.length / classes; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const v = values[r * classes + k];
      if (!(v >= -tol)) return false;
      sum += v;
    }
    if (!(Math.abs(sum - 1) <= tol)) return false;
  }
  return true;
}

/** Seeded uniform [0,1] images for output checks (same pixels on every backend); null dims become 32. */
function checkImages(shape: (number | null)[], count: number, seed: number): tf.Tensor4D {
  const [h, w, c] = shape.map((d) => d ?? 32);
  const rng = mulberry32(seed);
  const data = new Float32Array(count * h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = rng();
  return tf.tensor4d(data, [count, h, w, c]);
}

/**
 * Whether `model`'s outputs look like probabilities (non-negative rows summing to 1) on 8 seeded
 * random [0,1] images: a classifier ending in softmax, whose losses would not be on logits.
 */
export function outputsLookLikeProbabilities(model: tf.LayersModel): boolean {
  const shape = model.inputs[0].shape.slice(1);
  const classes = model.outputs[0].shape.at(-1);
  if (typeof classes !== 'number') return false;
  const values = tf.tidy(() => {
    const x = checkImages(shape, 8, 0x1badb002);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
  return rowsLookLikeProbabilities(values, classes);
}

/**
 * Throw (naming `where`) when `model`'s outputs look like probabilities: attacks take losses on
 * logits, and cross-entropy on a softmax output would make them look weaker than they are.
 */
export function assertLogitOutputs(model: tf.LayersModel, where: string): void {
  if (!outputsLookLikeProbabilities(model)) return;
  throw new Error(
    `${where}: the model's outputs look like probabilities (every row non-negative and summing to 1 on 8 random images), ` +
      'but attacks take their losses on logits; strip the softmax with `jpegdl-robust import --model <dir> --out <new dir>` ' +
      '(or, if they really are logits, import with --outputs logits)',
  );
}

/** Whether saved-model metadata says its outputs were imported as logits on the user's word (`outputs: 'logits'`), so no check applies. */
export function declaredLogits(metadata: Record<string, unknown>): boolean {
  const imported = metadata.imported as { outputs?: unknown } | undefined;
  return imported?.outputs === 'logits';
}

type Json = Record<string, unknown>;
interface LayerEntry {
  class_name: string;
  config: Json;
  name?: string;
  inbound_nodes?: unknown[];
}

function entryName(e: LayerEntry): string {
  return String(e.name ?? e.config.name ?? '?');
}

/**
 * In a model's JSON config, find the layer that produces its (single) output, walking back over
 * pass-through layers and into nested models, and turn its softmax into the identity. Returns the
 * changed layer's name, or null when the output is not a softmax.
 */
function stripSoftmaxInConfig(container: { class_name: string; config: Json }): string | null {
  const layers = container.config.layers as LayerEntry[] | undefined;
  if (!Array.isArray(layers) || layers.length === 0) return null;
  const byName = new Map(layers.map((e) => [entryName(e), e] as const));
  let entry: LayerEntry | undefined;
  let previous: (e: LayerEntry) => LayerEntry | undefined;
  if (container.class_name === 'Sequential') {
    entry = layers[layers.length - 1];
    previous = (e) => layers[layers.indexOf(e) - 1];
  } else {
    const outs = container.config.output_layers as unknown[][] | undefined;
    if (!Array.isArray(outs) || outs.length !== 1) return null;
    entry = byName.get(String(outs[0][0]));
    previous = (e) => {
      const nodes = e.inbound_nodes as unknown[][][] | undefined;
      if (!Array.isArray(nodes) || nodes.length !== 1 || nodes[0].length !== 1) return undefined;
      return byName.get(String(nodes[0][0][0]));
    };
  }
  while (entry && PASS_THROUGH.has(entry.class_name)) entry = previous(entry);
  if (!entry) return null;
  if (CONTAINERS.has(entry.class_name)) {
    const inner = stripSoftmaxInConfig(entry as { class_name: string; config: Json });
    return inner === null ? null : `${entryName(entry)}/${inner}`;
  }
  if (entry.class_name === 'Softmax') {
    // The same node, computing the identity: the graph and its weights stay as they are.
    entry.class_name = 'Activation';
    entry.config = { name: entry.config.name, trainable: entry.config.trainable ?? true, dtype: entry.config.dtype ?? 'float32', activation: 'linear' };
    return entryName(entry);
  }
  if (entry.config.activation === 'softmax') {
    entry.config.activation = 'linear';
    return entryName(entry);
  }
  return null;
}

function checkPerChannel(v: number[] | undefined, what: string, channels: number, fill: number, positive: boolean): number[] {
  if (v === undefined) return new Array(channels).fill(fill);
  if (!Array.isArray(v) || v.length === 0) throw new Error(`importModel: ${what} must be a non-empty list of numbers`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`importModel: ${what}[${i}] = ${String(x)} is not a finite number`);
    if (positive && x <= 0) throw new Error(`importModel: ${what}[${i}] = ${x} must be > 0`);
  });
  if (v.length === 1) return new Array(channels).fill(v[0]);
  if (v.length !== channels) throw new Error(`importModel: ${what} has ${v.length} entries but the model's input has ${channels} channel(s) (give 1 or ${channels})`);
  return [...v];
}

/**
 * Wrap `source` (input in its own pixel scale, channel order and normalisation; output logits or
 * softmax probabilities) as a new model on [0,1] NHWC pixels that returns logits. The source is
 * left unchanged; the new model holds copies of its weights. Throws, naming the problem, on
 * inputs or outputs the suite cannot attack (several inputs, channels-first, no class axis).
 */
export async function importModel(source: tf.LayersModel, opts: ImportOptions = {}): Promise<{ model: tf.LayersModel; summary: ImportSummary }> {
  if (!(source instanceof tf.LayersModel)) throw new Error('importModel: source must be a tf.LayersModel');
  if (source.inputs.length !== 1) throw new Error(`importModel: the model has ${source.inputs.length} inputs; a classifier of images takes one`);
  if (source.outputs.length !== 1) throw new Error(`importModel: the model has ${source.outputs.length} outputs; give a classifier with one (the class scores)`);
  const inShape = source.inputs[0].shape;
  if (inShape.length !== 4) throw new Error(`importModel: the model's input is [${inShape.map(String)}]; images must be NHWC [batch, height, width, channels]`);
  const channels = inShape[3];
  if (channels !== 1 && channels !== 3) {
    const hint = inShape[1] === 1 || inShape[1] === 3 ? ' (it looks channels-first; the suite works in NHWC)' : '';
    throw new Error(`importModel: the model's input [${inShape.map(String)}] has ${String(channels)} channels; 1 (grey) or 3 (colour) expected${hint}`);
  }
  const outShape = source.outputs[0].shape;
  const classes = outShape.at(-1);
  if (outShape.length !== 2 || typeof classes !== 'number' || classes < 2) {
    throw new Error(`importModel: the model's output is [${outShape.map(String)}]; a classifier returns [batch, classes] with at least 2 classes`);
  }
  const inputScale = opts.inputScale ?? 1;
  if (typeof inputScale !== 'number' || !Number.isFinite(inputScale) || inputScale <= 0) throw new Error(`importModel: inputScale must be a number > 0 (1 for pixels 0-1, 255 for 0-255), got ${String(inputScale)}`);
  const mean = checkPerChannel(opts.mean, 'mean', channels, 0, false);
  const std = checkPerChannel(opts.std, 'std', channels, 1, true);
  const channelOrder = opts.channelOrder ?? 'rgb';
  if (channelOrder !== 'rgb' && channelOrder !== 'bgr') throw new Error(`importModel: channelOrder must be rgb or bgr, got ${String(channelOrder)}`);
  if (channelOrder === 'bgr' && channels !== 3) throw new Error('importModel: channelOrder bgr needs a 3-channel input');
  const outputs = opts.outputs ?? 'auto';
  if (outputs !== 'auto' && outputs !== 'logits') throw new Error(`importModel: outputs must be auto or logits, got ${String(outputs)}`);

  // The source graph with its final softmax (if any) made the identity, holding copies of its weights.
  const config = source.toJSON(null, false) as unknown as { class_name: string; config: Json };
  const stripped = outputs === 'auto' ? stripSoftmaxInConfig(config) : null;
  const core = await tf.models.modelFromJSON({ modelTopology: config as unknown as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  let model: tf.LayersModel | undefined;
  try {
    core.setWeights(source.getWeights());
    // [0,1] pixels -> the source's channel order -> (x * scale - mean) / std, as one Normalize layer.
    const input = tf.input({ shape: inShape.slice(1) as number[], name: 'pixels' });
    let t: tf.SymbolicTensor = input;
    if (channelOrder === 'bgr') t = new ChannelReverse({ name: 'import_bgr' }).apply(t) as tf.SymbolicTensor;
    const identity = inputScale === 1 && mean.every((m) => m === 0) && std.every((s) => s === 1);
    if (!identity) t = new Normalize({ mean: mean.map((m) => m / inputScale), std: std.map((s) => s / inputScale), name: 'import_preprocess' }).apply(t) as tf.SymbolicTensor;
    const logits = core.apply(t) as tf.SymbolicTensor;
    model = tf.model({ inputs: input, outputs: logits, name: opts.name ?? `imported_${source.name}` });
    const imported = model;

    // Check the strip on random pixels: softmax(new logits) must be the source's output.
    let stripError = 0;
    if (stripped !== null) {
      stripError = tf.tidy(() => {
        const x = checkImages(inShape.slice(1), 8, 0x5eed);
        let pre: tf.Tensor = channelOrder === 'bgr' ? tf.reverse(x, -1) : x;
        pre = tf.div(tf.sub(tf.mul(pre, inputScale), tf.tensor1d(mean)), tf.tensor1d(std));
        const want = source.predict(pre) as tf.Tensor;
        const got = tf.softmax(imported.predict(x) as tf.Tensor);
        return tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
      });
      if (!(stripError <= 1e-5)) throw new Error(`importModel: removing the softmax of ${stripped} changed the model's predictions (max difference ${stripError}); import with outputs 'logits' only if the outputs already are logits`);
    }
    if (outputs === 'auto' && outputsLookLikeProbabilities(imported)) {
      throw new Error(
        `importModel: the model's outputs look like probabilities (rows non-negative and summing to 1 on random images) but its last layer${stripped ? '' : ' (after pass-through layers)'} has no softmax to remove; ` +
          'export the model without its softmax, or import with outputs \'logits\' if they really are logits',
      );
    }
    return {
      model: imported,
      summary: { sourceName: source.name, inputShape: inShape.slice(1), classes, inputScale, mean, std, channelOrder, outputs, strippedSoftmax: stripped, stripError },
    };
  } catch (err) {
    // The outer model owns the core once built on it.
    (model ?? core).dispose();
    throw err;
  }
}

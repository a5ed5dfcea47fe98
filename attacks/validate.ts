/** Argument checks shared by every attack: each failure names the argument, before any work starts. */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';

/** Throw unless `value` is a finite number >= 0 (`what` names the argument). */
export function checkNonNegative(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(`${what}: must be a finite number >= 0, got ${String(value)}`);
  }
}

/** Throw unless `value` is a finite number > 0. */
export function checkPositive(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${what}: must be a finite number > 0, got ${String(value)}`);
  }
}

/** Throw unless `value` is an integer >= `min`. */
export function checkInteger(value: unknown, what: string, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new Error(`${what}: must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Throw on option names the attack does not know (catches typos such as `step` for `steps`). */
export function checkKnownOptions(options: object, known: readonly string[], attack: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new Error(`${attack}: unknown option "${key}"; known options: ${known.join(', ')}`);
  }
}

/** Check a batch of images: rank 4 NHWC, float32, finite, within [0,1]; returns the batch size. */
export function checkImages(images: unknown, what = 'images'): number {
  if (!(images instanceof tf.Tensor)) throw new Error(`${what}: expected a tf.Tensor4D, got ${typeof images}`);
  if (images.isDisposed) throw new Error(`${what}: the tensor is disposed`);
  if (images.rank !== 4) throw new Error(`${what}: expected rank 4 [batch, height, width, channels], got shape [${images.shape}]`);
  if (images.dtype !== 'float32') throw new Error(`${what}: expected dtype float32, got ${images.dtype}`);
  if (images.shape[0] === 0) throw new Error(`${what}: the batch is empty`);
  const [lo, hi, finite] = tf.tidy(() => [tf.min(images), tf.max(images), tf.all(tf.isFinite(images))]);
  const [min, max, ok] = [lo.dataSync()[0], hi.dataSync()[0], finite.dataSync()[0]];
  tf.dispose([lo, hi, finite]);
  if (!ok) throw new Error(`${what}: contains NaN or infinite pixels`);
  if (min < 0 || max > 1) throw new Error(`${what}: pixels must lie in [0,1] (got min ${min}, max ${max}); normalisation belongs inside the model`);
  return images.shape[0];
}

/** Check class indices: rank 1, `batch` entries, integers in [0, numClasses). */
export function checkLabels(labels: unknown, batch: number, numClasses: number, what = 'labels'): void {
  if (!(labels instanceof tf.Tensor)) throw new Error(`${what}: expected a tf.Tensor1D of class indices, got ${typeof labels}`);
  if (labels.isDisposed) throw new Error(`${what}: the tensor is disposed`);
  if (labels.rank !== 1) throw new Error(`${what}: expected rank 1, got shape [${labels.shape}]`);
  if (labels.shape[0] !== batch) throw new Error(`${what}: has ${labels.shape[0]} entries but the batch has ${batch} images`);
  const values = labels.dataSync();
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new Error(`${what}: entry ${i} is ${v}; expected an integer class index in [0, ${numClasses})`);
    }
  }
}

/**
 * Check the model returns logits [batch, classes>=2] for `images`; returns the class count. A
 * LayersModel is checked from its symbolic input and output shapes (no forward pass: that would
 * cost a sixth of a 5-step PGD); a function is run once.
 */
export function checkModelOutput(model: Classifier, images: tf.Tensor4D, what = 'model'): number {
  if (typeof model !== 'function' && !(model instanceof tf.LayersModel)) {
    throw new Error(`${what}: expected a tf.LayersModel or a function from images to logits`);
  }
  if (model instanceof tf.LayersModel) {
    const classes = staticClassCount(model, images, what);
    if (classes !== null) return classes;
  }
  const out = tf.tidy(() => asLogitsFn(model)(images)) as unknown;
  try {
    if (!(out instanceof tf.Tensor)) throw new Error(`${what}: returned ${typeof out}, expected a tf.Tensor2D of logits`);
    const batch = images.shape[0];
    if (out.rank !== 2 || out.shape[0] !== batch || out.shape[1]! < 2) {
      throw new Error(`${what}: output shape [${out.shape}] is not [batch=${batch}, classes>=2] logits`);
    }
    if (out.dtype !== 'float32') throw new Error(`${what}: output dtype ${out.dtype}, expected float32 logits`);
    return out.shape[1]!;
  } finally {
    if (out instanceof tf.Tensor) out.dispose();
  }
}

/** Class count of a single-input, single-output LayersModel from its symbolic shapes; null when they do not say. */
function staticClassCount(model: tf.LayersModel, images: tf.Tensor4D, what: string): number | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const inShape = model.inputs[0].shape;
  const want = images.shape.slice(1);
  if (inShape.length !== 4 || inShape.slice(1).some((d, k) => d !== null && d !== want[k])) {
    throw new Error(`${what}: takes input [${inShape.map((d) => d ?? 'batch')}] but the images are [${images.shape}]`);
  }
  const out = model.outputs[0];
  const batch = images.shape[0];
  if (out.shape.length !== 2 || (out.shape[0] !== null && out.shape[0] !== batch) || (out.shape[1] !== null && out.shape[1] < 2)) {
    throw new Error(`${what}: output shape [${out.shape.map((d) => d ?? 'batch')}] is not [batch=${batch}, classes>=2] logits`);
  }
  if (out.dtype !== 'float32') throw new Error(`${what}: output dtype ${out.dtype}, expected float32 logits`);
  return out.shape[1];
}

/** Options every gradient attack shares (checked by `checkCommon`). */
export interface CommonChecked {
  eps: number;
  targeted?: boolean;
  targets?: tf.Tensor1D;
  eotSamples?: number;
  seed?: number;
  loss?: string;
}

/**
 * Validate the arguments of an attack call in a fixed order (options, images, model output, labels,
 * targets); returns the number of classes. Throws an Error naming the argument.
 */
export function validateAttack(
  attack: string,
  model: Classifier,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  options: CommonChecked & Record<string, unknown>,
  known: readonly string[],
): number {
  if (options === null || typeof options !== 'object') throw new Error(`${attack}: options must be an object with at least eps`);
  checkKnownOptions(options, known, attack);
  checkNonNegative(options.eps, `${attack}: eps`);
  if (options.eotSamples !== undefined) checkInteger(options.eotSamples, `${attack}: eotSamples`, 1);
  if (options.seed !== undefined) checkInteger(options.seed, `${attack}: seed`, 0);
  if (options.loss !== undefined && options.loss !== 'ce' && options.loss !== 'margin' && options.loss !== 'dlr') {
    throw new Error(`${attack}: loss must be "ce", "margin" or "dlr", got ${String(options.loss)}`);
  }
  if (options.targeted && !options.targets) throw new Error(`${attack}: targeted is set but targets (a tf.Tensor1D of class indices) is missing`);
  if (!options.targeted && options.targets) throw new Error(`${attack}: targets given but targeted is not set`);
  const batch = checkImages(images, `${attack}: images`);
  const classes = checkModelOutput(model, images, `${attack}: model`);
  // DLR divides by a spread of the sorted logits: pi1 - pi3 (untargeted), pi1 - (pi3 + pi4) / 2 (targeted).
  const dlrClasses = options.targets ? 4 : 3;
  if (options.loss === 'dlr' && classes < dlrClasses) {
    throw new Error(`${attack}: loss "dlr"${options.targets ? ' (targeted)' : ''} needs at least ${dlrClasses} classes, the model has ${classes}`);
  }
  checkLabels(labels, batch, classes, `${attack}: labels`);
  if (options.targets) checkLabels(options.targets, batch, classes, `${attack}: targets`);
  return classes;
}

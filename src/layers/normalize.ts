/** Per-channel normalisation (x - mean) / std as a serialisable layer, so models take raw [0,1] pixels. */
import * as tf from '@tensorflow/tfjs';

/** Constructor arguments of {@link Normalize}: one mean and one std per input channel (pixel units, 0-1 scale). */
export interface NormalizeArgs {
  mean: number[];
  std: number[];
  name?: string;
}

/** Check a mean/std pair: same length, finite, std > 0; throws naming the bad entry. */
export function validateNormalization(mean: unknown, std: unknown, channels?: number): void {
  if (!Array.isArray(mean) || !Array.isArray(std)) {
    throw new Error(`normalization: mean and std must be arrays of numbers, got ${JSON.stringify({ mean, std })}`);
  }
  if (mean.length !== std.length) {
    throw new Error(`normalization: mean has ${mean.length} entries but std has ${std.length}`);
  }
  if (channels !== undefined && mean.length !== channels) {
    throw new Error(`normalization: mean/std have ${mean.length} entries but the input has ${channels} channel(s)`);
  }
  mean.forEach((m, i) => {
    if (typeof m !== 'number' || !Number.isFinite(m)) throw new Error(`normalization: mean[${i}] = ${m} is not a finite number`);
  });
  std.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) throw new Error(`normalization: std[${i}] = ${s} must be a finite number > 0`);
  });
}

/**
 * (x - mean[c]) / std[c] over the last (channel) axis of an NHWC tensor. No trainable weights:
 * mean/std live in the layer config, so they round-trip through model.json.
 */
export class Normalize extends tf.layers.Layer {
  static className = 'Normalize';
  readonly mean: number[];
  readonly std: number[];

  constructor(args: NormalizeArgs) {
    super({ name: args.name });
    validateNormalization(args.mean, args.std);
    this.mean = [...args.mean];
    this.std = [...args.std];
    this.trainable = false;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (channels !== null && channels !== this.mean.length) {
      throw new Error(`normalization: mean/std have ${this.mean.length} entries but the input has ${channels} channel(s)`);
    }
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      // Multiply by 1/std instead of dividing: same value, one cheaper op on every backend.
      const mean = tf.tensor1d(this.mean);
      const invStd = tf.tensor1d(this.std.map((s) => 1 / s));
      return tf.mul(tf.sub(x, mean), invStd);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mean: this.mean, std: this.std };
  }
}
tf.serialization.registerClass(Normalize);

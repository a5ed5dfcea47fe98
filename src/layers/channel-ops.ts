/** Channel slicing, shuffling and reversal layers (NHWC) for grouped convolutions, ShuffleNets and BGR models; serialisable. */
import * as tf from '@tensorflow/tfjs';

function lastShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
}

/** Keep channels [start, start+size) of an NHWC tensor (torch `x[:, start:start+size]`). */
export class ChannelSlice extends tf.layers.Layer {
  static className = 'ChannelSlice';
  readonly start: number;
  readonly size: number;

  constructor(args: { start: number; size: number; name?: string }) {
    super({ name: args.name });
    if (!Number.isInteger(args.start) || args.start < 0) throw new Error(`ChannelSlice: start must be an integer >= 0, got ${args.start}`);
    if (!Number.isInteger(args.size) || args.size < 1) throw new Error(`ChannelSlice: size must be an integer >= 1, got ${args.size}`);
    this.start = args.start;
    this.size = args.size;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = lastShape(inputShape);
    const c = s[s.length - 1];
    if (c !== null && this.start + this.size > c) {
      throw new Error(`ChannelSlice ${this.name}: channels [${this.start}, ${this.start + this.size}) exceed the input's ${c}`);
    }
    return [...s.slice(0, -1), this.size];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.slice(x, [0, 0, 0, this.start], [-1, -1, -1, this.size]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), start: this.start, size: this.size };
  }
}
tf.serialization.registerClass(ChannelSlice);

/**
 * ShuffleNet channel shuffle: view channels as [groups, C/groups], transpose, flatten; channel
 * i*(C/g)+j moves to j*g+i, the same permutation as the NCHW reference.
 */
export class ChannelShuffle extends tf.layers.Layer {
  static className = 'ChannelShuffle';
  readonly groups: number;

  constructor(args: { groups: number; name?: string }) {
    super({ name: args.name });
    if (!Number.isInteger(args.groups) || args.groups < 1) throw new Error(`ChannelShuffle: groups must be an integer >= 1, got ${args.groups}`);
    this.groups = args.groups;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = lastShape(inputShape);
    const c = s[s.length - 1];
    if (c !== null && c % this.groups !== 0) throw new Error(`ChannelShuffle ${this.name}: ${c} channels not divisible by ${this.groups} groups`);
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (this.groups === 1) return tf.clone(x);
    return tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      const g = this.groups;
      return tf.reshape(tf.transpose(tf.reshape(x, [n, h, w, g, c / g]), [0, 1, 2, 4, 3]), [n, h, w, c]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}
tf.serialization.registerClass(ChannelShuffle);

/** Reverse the channel axis of an NHWC tensor (RGB <-> BGR), for imported models trained on BGR pixels. */
export class ChannelReverse extends tf.layers.Layer {
  static className = 'ChannelReverse';

  constructor(args: { name?: string } = {}) {
    super({ name: args.name });
    this.trainable = false;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return lastShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.reverse(x, -1);
  }
}
tf.serialization.registerClass(ChannelReverse);

/**
 * Layers that imported ONNX graphs need and Keras lacks: element-wise arithmetic with a constant
 * (scalar or one value per channel, broadcast over the last axis) and spatial padding with a
 * constant other than zero (max-pooling pads with -infinity). Serialisable, no weights.
 */
import * as tf from '@tensorflow/tfjs';

/** Operations of {@link ConstantArithmetic}: `x op c`, or `c op x` for the `r` forms; `clip` keeps x in [values[0], values[1]]. */
export const CONSTANT_OPS = ['add', 'sub', 'rsub', 'mul', 'div', 'rdiv', 'clip'] as const;
export type ConstantOp = (typeof CONSTANT_OPS)[number];

function firstShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
}

/** `x op values`, values a scalar (length 1) or one per channel (last axis). */
export class ConstantArithmetic extends tf.layers.Layer {
  static className = 'ConstantArithmetic';
  readonly op: ConstantOp;
  readonly values: number[];

  constructor(args: { op: ConstantOp; values: number[]; name?: string }) {
    super({ name: args.name });
    if (!CONSTANT_OPS.includes(args.op)) throw new Error(`ConstantArithmetic: op must be one of ${CONSTANT_OPS.join(', ')}, got ${String(args.op)}`);
    if (!Array.isArray(args.values) || args.values.length === 0 || args.values.some((v) => typeof v !== 'number' || Number.isNaN(v))) {
      throw new Error(`ConstantArithmetic: values must be a non-empty list of numbers, got ${JSON.stringify(args.values)}`);
    }
    if (args.op === 'clip' && (args.values.length !== 2 || !(args.values[0]! <= args.values[1]!))) {
      throw new Error(`ConstantArithmetic: clip takes [min, max] with min <= max, got ${JSON.stringify(args.values)}`);
    }
    this.op = args.op;
    this.values = [...args.values];
    this.trainable = false;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = firstShape(inputShape);
    const channels = shape[shape.length - 1];
    if (this.op !== 'clip' && this.values.length > 1 && channels !== null && channels !== this.values.length) {
      throw new Error(`ConstantArithmetic ${this.name}: ${this.values.length} values but the input has ${channels} channel(s)`);
    }
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return tf.tidy(() => {
      if (this.op === 'clip') return tf.clipByValue(x, this.values[0]!, this.values[1]!);
      const c = this.values.length === 1 ? tf.scalar(this.values[0]!) : tf.tensor1d(this.values);
      switch (this.op) {
        case 'add': return tf.add(x, c);
        case 'sub': return tf.sub(x, c);
        case 'rsub': return tf.sub(c, x);
        case 'mul': return tf.mul(x, c);
        case 'div': return tf.div(x, c);
        default: return tf.div(c, x);
      }
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), op: this.op, values: this.values };
  }
}
tf.serialization.registerClass(ConstantArithmetic);

/** Pad H and W of an NHWC tensor by [[top, bottom], [left, right]] with zeros or with -infinity (`fill: 'lowest'`). */
export class ConstantPad2D extends tf.layers.Layer {
  static className = 'ConstantPad2D';
  readonly padding: [[number, number], [number, number]];
  readonly fill: 'zero' | 'lowest';

  constructor(args: { padding: [[number, number], [number, number]]; fill: 'zero' | 'lowest'; name?: string }) {
    super({ name: args.name });
    const flat = args.padding?.flat?.() ?? [];
    if (flat.length !== 4 || flat.some((p) => !Number.isInteger(p) || p < 0)) {
      throw new Error(`ConstantPad2D: padding must be [[top, bottom], [left, right]] of integers >= 0, got ${JSON.stringify(args.padding)}`);
    }
    if (args.fill !== 'zero' && args.fill !== 'lowest') throw new Error(`ConstantPad2D: fill must be 'zero' or 'lowest', got ${String(args.fill)}`);
    this.padding = [[args.padding[0][0], args.padding[0][1]], [args.padding[1][0], args.padding[1][1]]];
    this.fill = args.fill;
    this.trainable = false;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w, c] = firstShape(inputShape);
    const [[t, b], [l, r]] = this.padding;
    return [n ?? null, h == null ? null : h + t + b, w == null ? null : w + l + r, c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
    const [[t, b], [l, r]] = this.padding;
    return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], this.fill === 'zero' ? 0 : -Infinity);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), padding: this.padding, fill: this.fill };
  }
}
tf.serialization.registerClass(ConstantPad2D);

/** A shape-preserving function of one tensor with no weights; subclasses name it and say what it computes. */
abstract class ShapePreservingOp extends tf.layers.Layer {
  constructor(args: { name?: string } = {}) {
    super({ name: args.name });
    this.trainable = false;
  }

  protected abstract fn(x: tf.Tensor): tf.Tensor;

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return this.fn(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}

/** log(softmax(x)) over the last axis (PyTorch's F.log_softmax head); same predictions and margins as the logits. */
export class LogSoftmax extends ShapePreservingOp {
  static className = 'LogSoftmax';
  protected fn(x: tf.Tensor): tf.Tensor {
    return tf.logSoftmax(x);
  }
}
tf.serialization.registerClass(LogSoftmax);

/** The error function, element-wise (the TorchScript exporter writes nn.GELU with it). */
export class Erf extends ShapePreservingOp {
  static className = 'Erf';
  protected fn(x: tf.Tensor): tf.Tensor {
    return tf.erf(x);
  }
}
tf.serialization.registerClass(Erf);

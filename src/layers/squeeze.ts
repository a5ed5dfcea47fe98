/**
 * Feature squeezing (Xu, Evans, Qi, NDSS 2018) as serialisable layers: colour bit-depth reduction
 * and median smoothing, the input transformations ART ships as FeatureSqueezing and
 * SpatialSmoothing. Used in front of a trained classifier as preprocessing defences
 * (src/defences/squeeze.ts), they are the comparison points a JPEG defence is usually measured
 * against, and like JPEG's rounding they hide gradients: bit-depth reduction has a zero gradient
 * almost everywhere. Each layer has a run-time `mode`: 'hard' (the exact transform with whatever
 * gradient autodiff gives it), 'bpda-identity' (the same forward, the identity backward: BPDA's
 * straight-through estimator, Athalye, Carlini, Wagner 2018) or 'bpda-soft' (the same forward, the
 * gradient of a smooth stand-in backward: a sigmoid staircase for bit depth, the median's own
 * subgradient for the median filter).
 */
import * as tf from '@tensorflow/tfjs';
import { customGrad } from './internals.ts';

/** Run-time modes of a squeezing layer. */
export type SqueezeMode = 'hard' | 'bpda-identity' | 'bpda-soft';
export const SQUEEZE_MODES: readonly SqueezeMode[] = ['hard', 'bpda-identity', 'bpda-soft'];
/**
 * Steepness of bit depth's soft staircase (in levels): round(v) ~ floor(v) + sigmoid(T (frac(v) - 1/2)),
 * whose slope is T/4 at a rounding threshold and about 0.07 on a level, so the gradient points at the
 * pixels a small change can move to another level.
 */
export const SOFT_STAIRCASE_STEEPNESS = 10;
/** Class names of the layers with these modes (what BPDA looks for, with JpegLayer): the squeezers and total variation minimisation (src/layers/tv-min.ts). */
export const SQUEEZE_LAYER_CLASSES: readonly string[] = ['BitDepthReduction', 'MedianSmoothing', 'TotalVariationMin'];


/** f(x) forward, dy backward (the straight-through estimator); f's own ops are not taped. */
function straightThrough(f: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  return customGrad((x: tf.Tensor) => ({ value: f(x), gradFunc: (dy: tf.Tensor) => dy }));
}

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

function checkMode(m: unknown, who: string): SqueezeMode {
  if (!SQUEEZE_MODES.includes(m as SqueezeMode)) throw new Error(`${who}: mode must be one of ${SQUEEZE_MODES.join(', ')}, got "${String(m)}"`);
  return m as SqueezeMode;
}

function checkImageShape(inputShape: tf.Shape | tf.Shape[], who: string): tf.Shape {
  const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  if (shape.length !== 4) throw new Error(`${who}: input must be [batch, height, width, channels], got [${shape.join(',')}]`);
  return shape;
}

/** Options of {@link BitDepthReduction}. */
export interface BitDepthArgs extends BaseLayerArgs {
  /** Bits per colour channel, 1..8: pixels are rounded to 2^bits levels on the 0-1 scale. */
  bits: number;
  /** Run-time mode (default 'hard'). */
  mode?: SqueezeMode;
}

/**
 * Colour bit-depth reduction: x -> round(x (2^bits - 1)) / (2^bits - 1) on pixels 0-1, rounding half
 * to even (tf.round; numpy's rint, as ART). In 'hard' mode the input gradient is zero (tf.round's).
 */
export class BitDepthReduction extends tf.layers.Layer {
  static className = 'BitDepthReduction';
  readonly bits: number;
  private currentMode: SqueezeMode;

  constructor(args: BitDepthArgs) {
    super({ ...args, trainable: false });
    if (!Number.isInteger(args?.bits) || args.bits < 1 || args.bits > 8) throw new Error(`BitDepthReduction: bits must be an integer in 1..8, got ${String(args?.bits)}`);
    this.bits = args.bits;
    this.currentMode = checkMode(args.mode ?? 'hard', 'BitDepthReduction');
  }

  /** 'hard', 'bpda-identity' or 'bpda-soft'; setting it changes no weight. */
  get mode(): SqueezeMode {
    return this.currentMode;
  }

  set mode(m: SqueezeMode) {
    this.currentMode = checkMode(m, 'BitDepthReduction');
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    checkImageShape(inputShape, 'BitDepthReduction');
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const levels = 2 ** this.bits - 1;
    const squeeze = (v: tf.Tensor) => tf.tidy(() => tf.div(tf.round(tf.mul(v, levels)), levels));
    if (this.currentMode === 'hard') return squeeze(x);
    if (this.currentMode === 'bpda-identity') return straightThrough(squeeze)(x);
    // bpda-soft: d/dx of floor(xL)/L + sigmoid(T (frac(xL) - 1/2))/L = T s (1 - s), s the sigmoid.
    return customGrad((v: tf.Tensor, save: tf.GradSaveFunc) => {
      save([v]);
      return {
        value: squeeze(v),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() => {
            const u = tf.mul(saved[0], levels);
            const s = tf.sigmoid(tf.mul(tf.sub(tf.sub(u, tf.floor(u)), 0.5), SOFT_STAIRCASE_STEEPNESS));
            return tf.mul(dy, tf.mul(tf.mul(s, tf.sub(1, s)), SOFT_STAIRCASE_STEEPNESS));
          }),
      };
    })(x);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), bits: this.bits, mode: this.currentMode };
  }
}
tf.serialization.registerClass(BitDepthReduction);

/** Options of {@link MedianSmoothing}. */
export interface MedianArgs extends BaseLayerArgs {
  /** Window side k, 2..5: each output pixel is the median of a k x k window, per channel. */
  window: number;
  /** Run-time mode (default 'hard'). */
  mode?: SqueezeMode;
}

/**
 * Per-channel k x k median filter with symmetric edge padding, as scipy.ndimage.median_filter(size=k,
 * mode='reflect') (what ART's SpatialSmoothing and Xu et al. call): rank floor(k^2/2) of the sorted
 * window (the upper median for even k), window offsets -floor(k/2) .. k-1-floor(k/2). In 'hard' mode
 * the gradient is the median's own: dy goes to the one window element that was chosen.
 */
export class MedianSmoothing extends tf.layers.Layer {
  static className = 'MedianSmoothing';
  readonly window: number;
  private currentMode: SqueezeMode;

  constructor(args: MedianArgs) {
    super({ ...args, trainable: false });
    if (!Number.isInteger(args?.window) || args.window < 2 || args.window > 5) throw new Error(`MedianSmoothing: window must be an integer in 2..5, got ${String(args?.window)}`);
    this.window = args.window;
    this.currentMode = checkMode(args.mode ?? 'hard', 'MedianSmoothing');
  }

  /** 'hard', 'bpda-identity' or 'bpda-soft'; setting it changes no weight. */
  get mode(): SqueezeMode {
    return this.currentMode;
  }

  set mode(m: SqueezeMode) {
    this.currentMode = checkMode(m, 'MedianSmoothing');
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = checkImageShape(inputShape, 'MedianSmoothing');
    const before = Math.floor(this.window / 2);
    for (const [axis, size] of [['height', shape[1]], ['width', shape[2]]] as const) {
      // Symmetric padding cannot reach further than the image itself.
      if (size !== null && size < before + 1) throw new Error(`MedianSmoothing: ${axis} ${size} is too small for a ${this.window}x${this.window} window`);
    }
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    // bpda-soft: the median's own subgradient is already the smooth stand-in (hard mode's backward).
    return this.currentMode === 'bpda-identity' ? straightThrough((v) => tf.tidy(() => medianFilter(v as tf.Tensor4D, this.window)))(x) : medianFilter(x, this.window);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), window: this.window, mode: this.currentMode };
  }
}
tf.serialization.registerClass(MedianSmoothing);

/** `x` padded by `before` and `after` mirrored copies (edge included: d c b a | a b c d | d c b a) along `axis`. */
function symmetricPad(x: tf.Tensor4D, axis: 1 | 2, before: number, after: number): tf.Tensor4D {
  const len = x.shape[axis];
  const part = (start: number, count: number) => {
    const begin = [0, 0, 0, 0];
    const size = [...x.shape];
    begin[axis] = start;
    size[axis] = count;
    return tf.reverse(tf.slice(x, begin, size), axis);
  };
  const pieces: tf.Tensor4D[] = [];
  if (before > 0) pieces.push(part(0, before));
  pieces.push(x);
  if (after > 0) pieces.push(part(len - after, after));
  return pieces.length === 1 ? x : tf.concat(pieces, axis);
}

/** The k*k shifted copies of `x` (pixels 0-1, NHWC) stacked on a new last axis: [N, H, W, C, k*k]. */
function windows(x: tf.Tensor4D, k: number): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const before = Math.floor(k / 2);
    const after = k - 1 - before;
    // Symmetric padding built from slices and reversals: tf.mirrorPad's gradient drops the
    // reflected parts (tfjs 4.22), which would make the median's gradient wrong at the edges.
    const padded = symmetricPad(symmetricPad(x, 1, before, after), 2, before, after);
    const shifted: tf.Tensor4D[] = [];
    for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) shifted.push(tf.slice(padded, [0, dy, dx, 0], [n, h, w, c]));
    return tf.stack(shifted, 4) as tf.Tensor5D;
  });
}

/**
 * Rank `rank` (0 = smallest) along the last axis of `v`; the gradient goes to the chosen element only
 * (ties: the one TopK ranks there), a subgradient of the order statistic.
 */
function selectRank(v: tf.Tensor, rank: number): tf.Tensor {
  const n = v.shape[v.rank - 1];
  const last = v.rank - 1;
  // TopK sorts descending: ascending rank r sits at index n-1-r.
  const begin = v.shape.map((_, i) => (i === last ? n - 1 - rank : 0));
  const size = v.shape.map((d, i) => (i === last ? 1 : d));
  const chosen = (vv: tf.Tensor) =>
    tf.tidy(() => {
      const { values, indices } = tf.topk(vv, n, true);
      return { value: tf.squeeze(tf.slice(values, begin, size), [last]), index: tf.squeeze(tf.slice(indices, begin, size), [last]) };
    });
  return customGrad((vv: tf.Tensor, save: tf.GradSaveFunc) => {
    // Save the input, not the mask: a tensor made here and saved outside a gradient tape would leak.
    save([vv]);
    const { value, index } = chosen(vv);
    index.dispose();
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const { value: v2, index } = chosen(saved[0]);
          v2.dispose();
          return tf.mul(tf.oneHot(index, n, 1, 0, 'float32'), tf.expandDims(dy, -1));
        }),
    };
  })(v);
}

/** k x k median filter of `x` (pixels 0-1, NHWC), symmetric edges, scipy's rank and origin conventions. */
export function medianFilter(x: tf.Tensor4D, k: number): tf.Tensor4D {
  if (!Number.isInteger(k) || k < 1) throw new Error(`medianFilter: window must be a positive integer, got ${String(k)}`);
  if (k === 1) return tf.clone(x);
  return tf.tidy(() => selectRank(windows(x, k), Math.floor((k * k) / 2)) as tf.Tensor4D);
}

/**
 * Random resizing and padding (Xie, Wang, Zhang, Ren, Yuille, ICLR 2018, "Mitigating adversarial
 * effects through randomization"): on every call each image is resized to a random side r, placed at a
 * random offset on a canvas of side `maxSize` filled with a constant, and (for a fixed-size classifier)
 * the canvas is resized to the image's own side. The reference resizes 299 -> [310, 331) with nearest
 * neighbour and pads to 331 for a network that takes any size; `rrp:32-36` on a 32-pixel model is that
 * recipe followed by the resize back the fixed input needs, `rrp:28-32` the shrink-and-pad variant
 * (ARES' CIFAR port).
 *
 * Every step is linear in the pixels and separable by axis, so the whole transform of image n is
 * out = R_n (x - fill) C_n^T + fill with two s x s matrices built on the host from the draws (a few
 * non-zeros per row). Two batched matMuls apply them: exact, the same on every backend, and its gradient
 * (the transposed resize, i.e. scatter-add for nearest) comes from autodiff. The randomness is what
 * Expectation over Transformation answers (`eotSamples`).
 */
import * as tf from '@tensorflow/tfjs';
import { SeededStream, type Reseedable } from './random.ts';

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** How an axis is resampled: TF1's legacy nearest neighbour (the reference's) or half-pixel bilinear (TF2, PyTorch align_corners=False). */
export type ResizeInterpolation = 'nearest' | 'bilinear';
export const RESIZE_INTERPOLATIONS: readonly ResizeInterpolation[] = ['nearest', 'bilinear'];

/** Options of RandomResizePad (all serialised by getConfig). */
export interface RandomResizePadArgs extends BaseLayerArgs {
  /** Smallest side drawn, pixels (>= 1). */
  minSize: number;
  /** Largest side drawn and the canvas side, pixels (>= minSize); every integer in between is equally likely. */
  maxSize: number;
  /** Resampling of both resizes (default 'nearest', as the reference). */
  interpolation?: ResizeInterpolation;
  /** Canvas value, pixels 0-1 (default 0; the reference pads 0 after scaling to [-1, 1], i.e. 0.5 here). */
  fill?: number;
  /** Seed of the draws (default 0); `reseed` restarts it. */
  seed?: number;
}

/** What one call drew per image: the resized side and the canvas offsets, pixels. */
export interface ResizePadDraws {
  sizes: Int32Array;
  tops: Int32Array;
  lefts: Int32Array;
}

/** Weights of resampling `from` pixels to `to` along one axis: row i lists (source index, weight) pairs summing to 1. */
export function resizeWeights(from: number, to: number, interpolation: ResizeInterpolation): [number, number][][] {
  const scale = from / to;
  return Array.from({ length: to }, (_, i) => {
    if (interpolation === 'nearest') return [[Math.min(Math.floor(i * scale), from - 1), 1]];
    const src = (i + 0.5) * scale - 0.5;
    const f = Math.floor(src);
    const frac = src - f;
    const lo = Math.max(f, 0);
    const hi = Math.min(Math.ceil(src), from - 1);
    return lo === hi ? [[lo, 1]] : [[lo, 1 - frac], [hi, frac]];
  });
}

/**
 * The s x s matrix of one axis (row-major, written into `out` at `offset`): resize s -> size, place at
 * `start` on the canvas, resize canvas -> s (`down`). Canvas pixels off the image contribute nothing
 * (the fill is added outside the matrix).
 */
function axisMatrix(out: Float32Array, offset: number, s: number, size: number, start: number, down: [number, number][][], up: [number, number][][]): void {
  for (let i = 0; i < s; i++) {
    for (const [a, wa] of down[i]) {
      const k = a - start;
      if (k < 0 || k >= size) continue;
      for (const [b, wb] of up[k]) out[offset + i * s + b] += wa * wb;
    }
  }
}

/**
 * Resize each image n of x [N,S,S,C] (pixels 0-1) to side draws.sizes[n], place it at (tops[n], lefts[n])
 * on a `maxSize` canvas of value `fill`, and resize the canvas back to S: exact, differentiable in x.
 * `cache` (optional) keeps resampling weights between calls.
 */
export function resizePad(
  x: tf.Tensor4D,
  draws: ResizePadDraws,
  maxSize: number,
  interpolation: ResizeInterpolation,
  fill: number,
  cache: Map<string, [number, number][][]> = new Map(),
): tf.Tensor4D {
  const [n, s, , c] = x.shape;
  const weights = (from: number, to: number) => {
    const key = `${from}>${to}:${interpolation}`;
    let w = cache.get(key);
    if (!w) cache.set(key, (w = resizeWeights(from, to, interpolation)));
    return w;
  };
  const down = weights(maxSize, s);
  const rows = new Float32Array(n * s * s);
  const cols = new Float32Array(n * s * s);
  for (let i = 0; i < n; i++) {
    const r = draws.sizes[i];
    if (!(r >= 1 && r <= maxSize && draws.tops[i] >= 0 && draws.tops[i] + r <= maxSize && draws.lefts[i] >= 0 && draws.lefts[i] + r <= maxSize)) {
      throw new Error(`resizePad: image ${i}: side ${r} at (${draws.tops[i]}, ${draws.lefts[i]}) does not fit the ${maxSize}-pixel canvas`);
    }
    const up = weights(s, r);
    axisMatrix(rows, i * s * s, s, r, draws.tops[i], down, up);
    axisMatrix(cols, i * s * s, s, r, draws.lefts[i], down, up);
  }
  return tf.tidy(() => {
    const shifted = fill === 0 ? x : tf.sub(x, fill);
    // Rows: [N, s, s] x [N, s, s*C]; then columns on the transposed result.
    const byRows = tf.matMul(tf.tensor3d(rows, [n, s, s]), tf.reshape(shifted, [n, s, s * c]));
    const t = tf.reshape(tf.transpose(tf.reshape(byRows, [n, s, s, c]), [0, 2, 1, 3]), [n, s, s * c]);
    const byCols = tf.matMul(tf.tensor3d(cols, [n, s, s]), t);
    const out = tf.transpose(tf.reshape(byCols, [n, s, s, c]), [0, 2, 1, 3]);
    return (fill === 0 ? out : tf.add(out, fill)) as tf.Tensor4D;
  });
}

/** Random resize and pad, back to the input's size. Input [N,S,S,C] (square), pixels 0-1; output the same shape and scale. */
export class RandomResizePad extends tf.layers.Layer implements Reseedable {
  static className = 'RandomResizePad';

  readonly minSize: number;
  readonly maxSize: number;
  readonly interpolation: ResizeInterpolation;
  readonly fill: number;
  private stream: SeededStream;
  private side: number | undefined;
  private resampling = new Map<string, [number, number][][]>();
  private drawn: ResizePadDraws = { sizes: new Int32Array(0), tops: new Int32Array(0), lefts: new Int32Array(0) };

  constructor(args: RandomResizePadArgs) {
    super({ ...args, trainable: false });
    const { minSize, maxSize } = args ?? ({} as RandomResizePadArgs);
    if (!Number.isInteger(minSize) || minSize < 1) throw new Error(`RandomResizePad: minSize must be an integer >= 1 (pixels), got ${String(minSize)}`);
    if (!Number.isInteger(maxSize) || maxSize < minSize) throw new Error(`RandomResizePad: maxSize must be an integer >= minSize (${minSize}), got ${String(maxSize)}`);
    const interpolation = args.interpolation ?? 'nearest';
    if (!RESIZE_INTERPOLATIONS.includes(interpolation)) throw new Error(`RandomResizePad: interpolation must be one of ${RESIZE_INTERPOLATIONS.join(', ')}, got "${String(interpolation)}"`);
    const fill = args.fill ?? 0;
    if (typeof fill !== 'number' || !(fill >= 0 && fill <= 1)) throw new Error(`RandomResizePad: fill must be a pixel value in [0, 1], got ${String(fill)}`);
    const stream = new SeededStream(args.seed ?? 0, 'RandomResizePad');
    this.minSize = minSize;
    this.maxSize = maxSize;
    this.interpolation = interpolation;
    this.fill = fill;
    this.stream = stream;
  }

  /** Restart the draws from `seed` (an integer); the next call draws what a fresh layer with this seed would. */
  reseed(seed: number): void {
    this.stream.restart(seed, 'RandomResizePad.reseed');
  }

  /** The draws of the last call, one entry per image. */
  lastDraws(): ResizePadDraws {
    return { sizes: this.drawn.sizes.slice(), tops: this.drawn.tops.slice(), lefts: this.drawn.lefts.slice() };
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new Error(`RandomResizePad: input must be [batch, height, width, channels], got [${shape.join(',')}]`);
    const [h, w] = [shape[1], shape[2]];
    if (h == null || w == null || h !== w) throw new Error(`RandomResizePad: input images must be square with a fixed side, got ${h ?? '?'}x${w ?? '?'}`);
    this.side = h;
    this.resampling.clear();
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const s = this.side!;
    if (x.rank !== 4 || x.shape[1] !== s || x.shape[2] !== s) throw new Error(`RandomResizePad: expected [N,${s},${s},C] input, got [${x.shape.join(',')}]`);
    const n = x.shape[0];
    const draws: ResizePadDraws = { sizes: new Int32Array(n), tops: new Int32Array(n), lefts: new Int32Array(n) };
    for (let i = 0; i < n; i++) {
      // Draw order per image: side, top, left (fixed, so a seed names the same transform everywhere).
      const r = this.minSize + this.stream.rng.int(this.maxSize - this.minSize + 1);
      draws.sizes[i] = r;
      draws.tops[i] = this.stream.rng.int(this.maxSize - r + 1);
      draws.lefts[i] = this.stream.rng.int(this.maxSize - r + 1);
    }
    this.drawn = draws;
    return resizePad(x, draws, this.maxSize, this.interpolation, this.fill, this.resampling);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), minSize: this.minSize, maxSize: this.maxSize, interpolation: this.interpolation, fill: this.fill, seed: this.stream.seed };
  }
}
tf.serialization.registerClass(RandomResizePad);

/**
 * Randomised JPEG: every image (or every 8x8 block, as SHIELD's stochastic local quantisation, Das
 * et al. 2018) is compressed at an IJG quality drawn uniformly from [minQuality, maxQuality] on each
 * call. A randomised input defence is the case Expectation over Transformation (Athalye, Engstrom,
 * Ilyas, Kwok 2018) was made for: one gradient sees one draw, so attacks average k of them
 * (`eotSamples`). The draws come from a seeded host-side generator (the same stream on every
 * backend); `reseed` restarts it, which is how a sweep makes each batch's draws independent of the
 * worker process it runs on.
 */
import * as tf from '@tensorflow/tfjs';
import { SeededStream, type Reseedable } from '../layers/random.ts';
import { BLOCK, paddedSize } from './blocks.ts';
import { jpegForwardWithSteps } from './forward.ts';
import { QUANT_MODES, type QuantMode } from './quantize.ts';
import { checkQuality, standardTables } from './tables.ts';

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** What one quality is drawn for. */
export type RandomJpegUnit = 'image' | 'block';
export const RANDOM_JPEG_UNITS: readonly RandomJpegUnit[] = ['image', 'block'];

/** Options of RandomJpegLayer (all serialised by getConfig). */
export interface RandomJpegArgs extends BaseLayerArgs {
  /** Lowest IJG quality drawn (1..100). */
  minQuality: number;
  /** Highest IJG quality drawn (minQuality..100); every integer in between is equally likely. */
  maxQuality: number;
  /** One quality per image (default) or per 8x8 block. */
  per?: RandomJpegUnit;
  /** Quantiser mode (default 'hard': real rounding); switchable at run time through `layer.mode`. */
  mode?: QuantMode;
  /** Seed of the quality stream (default 0); `reseed` restarts it. */
  seed?: number;
}

/** JPEG at a random quality per image or per block. Input [N,H,W,C], C = 1 or 3, pixels 0-1; output same shape and scale (not clamped). */
export class RandomJpegLayer extends tf.layers.Layer implements Reseedable {
  static className = 'RandomJpegLayer';

  readonly minQuality: number;
  readonly maxQuality: number;
  readonly per: RandomJpegUnit;
  private stream: SeededStream;
  private currentMode: QuantMode;
  private channels: number | undefined;
  /** Steps of every quality, [Q, C, 8, 8] flattened ([Y, Cb, Cr] channels; chroma shared by Cb and Cr). */
  private steps: Float32Array | undefined;
  private drawn: Int32Array = new Int32Array(0);

  constructor(args: RandomJpegArgs) {
    super({ ...args, trainable: false });
    const lo = args?.minQuality;
    const hi = args?.maxQuality;
    checkQuality(lo, 'RandomJpegLayer: minQuality');
    checkQuality(hi, 'RandomJpegLayer: maxQuality');
    if (hi < lo) throw new Error(`RandomJpegLayer: maxQuality (${hi}) must be at least minQuality (${lo})`);
    const per = args.per ?? 'image';
    if (!RANDOM_JPEG_UNITS.includes(per)) throw new Error(`RandomJpegLayer: per must be one of ${RANDOM_JPEG_UNITS.join(', ')}, got "${String(per)}"`);
    const stream = new SeededStream(args.seed ?? 0, 'RandomJpegLayer');
    this.minQuality = lo;
    this.maxQuality = hi;
    this.per = per;
    this.stream = stream;
    this.currentMode = 'hard';
    this.mode = args.mode ?? 'hard';
  }

  /** Quantiser mode; setting it changes nothing else. */
  get mode(): QuantMode {
    return this.currentMode;
  }

  set mode(m: QuantMode) {
    if (!QUANT_MODES.includes(m)) throw new Error(`RandomJpegLayer: mode must be one of ${QUANT_MODES.join(', ')}, got "${String(m)}"`);
    this.currentMode = m;
  }

  /** Restart the quality stream from `seed` (an integer); the next call draws what a fresh layer with this seed would. */
  reseed(seed: number): void {
    this.stream.restart(seed, 'RandomJpegLayer.reseed');
  }

  /** The qualities of the last call: one per image, or per block in blockify order (image, block row, block column). */
  lastQualities(): Int32Array {
    return this.drawn.slice();
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new Error(`RandomJpegLayer: input must be [batch, height, width, channels], got [${shape.join(',')}]`);
    const c = shape[3];
    if (c !== 1 && c !== 3) throw new Error(`RandomJpegLayer: input must have 1 (grayscale) or 3 (RGB) channels, got ${c}`);
    this.channels = c;
    const count = this.maxQuality - this.minQuality + 1;
    const steps = new Float32Array(count * c * 64);
    for (let k = 0; k < count; k++) {
      const t = standardTables(this.minQuality + k);
      const per = c === 3 ? [t.luma, t.chroma, t.chroma] : [t.luma];
      per.forEach((table, ch) => steps.set(table, (k * c + ch) * 64));
    }
    this.steps = steps;
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const c = this.channels!;
    if (x.rank !== 4 || x.shape[3] !== c) throw new Error(`RandomJpegLayer: expected [N,H,W,${c}] input, got [${x.shape.join(',')}]`);
    const [n, h, w] = x.shape;
    const [hp, wp] = paddedSize(h, w);
    const blocksPerImage = (hp / BLOCK) * (wp / BLOCK);
    const count = this.maxQuality - this.minQuality + 1;
    // One draw per image or per block; each block then takes its image's (or its own) quality.
    const draws = n * (this.per === 'block' ? blocksPerImage : 1);
    const drawn = new Int32Array(draws);
    for (let i = 0; i < draws; i++) drawn[i] = this.stream.rng.int(count);
    this.drawn = drawn.map((k) => this.minQuality + k);
    const index = this.per === 'block' ? drawn : Int32Array.from({ length: n * blocksPerImage }, (_, b) => drawn[Math.floor(b / blocksPerImage)]);
    return tf.tidy(() => {
      const table = tf.tensor4d(this.steps!, [count, c, 8, 8]);
      const steps = tf.gather(table, tf.tensor1d(index, 'int32'));
      return jpegForwardWithSteps(x, [steps], { mode: this.currentMode });
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), minQuality: this.minQuality, maxQuality: this.maxQuality, per: this.per, mode: this.currentMode, seed: this.stream.seed };
  }
}
tf.serialization.registerClass(RandomJpegLayer);

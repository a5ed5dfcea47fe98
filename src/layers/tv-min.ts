/**
 * Total variation minimisation as an input defence (Guo, Rana, Cisse, van der Maaten, ICLR 2018,
 * "Countering Adversarial Images using Input Transformations"): drop a random share of the pixels,
 * then rebuild the image as the one of least total variation that stays close to the pixels kept,
 *
 *   z* = argmin_z  1/2 sum_i m_i (z_i - x_i)^2 + weight * sum_pixels sqrt((D_h z)^2 + (D_v z)^2),
 *
 * per image and channel, with m the keep mask (each value kept with probability 1 - dropRate,
 * independently per channel, as the reference's pepper noise) and isotropic total variation on
 * forward differences. The reference solves it with split Bregman (100 iterations, weight 0.03, drop
 * rate 0.5); here it is solved by the primal-dual algorithm of Chambolle and Pock (2011), batched on
 * the whole tensor for a fixed number of iterations, so it is deterministic for a mask and its
 * unrolled iterations are differentiable. Athalye, Carlini, Wagner (2018) broke this defence with BPDA
 * (identity backward) and EOT over the masks; the layer's `mode` gives both ways to take gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { customGrad } from './internals.ts';
import { SeededStream, type Reseedable } from './random.ts';
import { SQUEEZE_MODES, type SqueezeMode } from './squeeze.ts';

/** The reference's settings: half of the values dropped, weight 0.03 on pixels 0-1. */
export const TVM_DEFAULTS = { dropRate: 0.5, weight: 0.03, iterations: 100 } as const;

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** Forward differences along height and width, zero at the last row / column (Neumann boundary). */
function gradient(z: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
  const [n, h, w, c] = z.shape;
  const gv = h > 1 ? tf.pad(tf.sub(tf.slice(z, [0, 1, 0, 0], [n, h - 1, w, c]), tf.slice(z, [0, 0, 0, 0], [n, h - 1, w, c])), [[0, 0], [0, 1], [0, 0], [0, 0]]) : tf.zerosLike(z);
  const gh = w > 1 ? tf.pad(tf.sub(tf.slice(z, [0, 0, 1, 0], [n, h, w - 1, c]), tf.slice(z, [0, 0, 0, 0], [n, h, w - 1, c])), [[0, 0], [0, 0], [0, 1], [0, 0]]) : tf.zerosLike(z);
  return [gv as tf.Tensor4D, gh as tf.Tensor4D];
}

/**
 * Divergence, the negative adjoint of `gradient`, for fields whose last row (pv) and last column (ph) are
 * zero, as every dual iterate is: div(p)_i = p_i - p_{i-1} with p_{-1} = 0, so <gradient(z), p> = -<z, div(p)>.
 */
function divergence(pv: tf.Tensor4D, ph: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = pv.shape;
  const dv = h > 1 ? tf.sub(pv, tf.pad(tf.slice(pv, [0, 0, 0, 0], [n, h - 1, w, c]), [[0, 0], [1, 0], [0, 0], [0, 0]])) : tf.zerosLike(pv);
  const dh = w > 1 ? tf.sub(ph, tf.pad(tf.slice(ph, [0, 0, 0, 0], [n, h, w - 1, c]), [[0, 0], [0, 0], [1, 0], [0, 0]])) : tf.zerosLike(ph);
  return tf.add(dv, dh) as tf.Tensor4D;
}

/**
 * The masked TV-L2 reconstruction of `x` (pixels 0-1, NHWC): `keep` 1 where a value is kept, 0 where
 * dropped; `weight` >= 0 on the total variation; `iterations` Chambolle-Pock steps (step sizes
 * tau = sigma = 1/sqrt(8), the bound of the gradient's norm). Differentiable in `x` (the unrolled steps).
 */
export function tvMinimise(x: tf.Tensor4D, keep: tf.Tensor4D, weight: number, iterations: number): tf.Tensor4D {
  if (!(weight >= 0 && Number.isFinite(weight))) throw new Error(`tvMinimise: weight must be a finite number >= 0, got ${String(weight)}`);
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`tvMinimise: iterations must be an integer >= 1, got ${String(iterations)}`);
  if (x.rank !== 4 || keep.rank !== 4 || x.shape.some((d, i) => d !== keep.shape[i])) throw new Error(`tvMinimise: x [${x.shape}] and keep [${keep.shape}] must be NHWC tensors of one shape`);
  const step = 1 / Math.sqrt(8);
  return tf.tidy(() => {
    const stepData = tf.mul(step, tf.mul(keep, x));
    // prox of tau * 1/2 m (z - x)^2: (v + tau m x) / (1 + tau m), elementwise.
    const denom = tf.add(1, tf.mul(step, keep));
    let z: tf.Tensor4D = tf.clone(x);
    let bar: tf.Tensor4D = z;
    let pv: tf.Tensor4D = tf.zerosLike(x);
    let ph: tf.Tensor4D = tf.zerosLike(x);
    for (let k = 0; k < iterations; k++) {
      const [gv, gh] = gradient(bar);
      const qv = tf.add(pv, tf.mul(step, gv));
      const qh = tf.add(ph, tf.mul(step, gh));
      // Project each pixel's (qv, qh) onto the disc of radius weight (isotropic TV's dual ball). The 1e-12
      // under the root keeps the unrolled gradient finite where q = 0 (sqrt's slope there is infinite).
      const scale = tf.maximum(1, tf.div(tf.sqrt(tf.add(tf.add(tf.square(qv), tf.square(qh)), 1e-12)), Math.max(weight, 1e-12)));
      pv = tf.div(qv, scale) as tf.Tensor4D;
      ph = tf.div(qh, scale) as tf.Tensor4D;
      const next = tf.div(tf.add(tf.add(z, tf.mul(step, divergence(pv, ph))), stepData), denom) as tf.Tensor4D;
      bar = tf.sub(tf.mul(2, next), z) as tf.Tensor4D;
      z = next;
    }
    return z;
  });
}

/** The objective the reconstruction minimises, per image (summed over channels): for tests and diagnostics. */
export function tvObjective(z: tf.Tensor4D, x: tf.Tensor4D, keep: tf.Tensor4D, weight: number): tf.Tensor1D {
  return tf.tidy(() => {
    const [gv, gh] = gradient(z);
    const fit = tf.mul(0.5, tf.sum(tf.mul(keep, tf.square(tf.sub(z, x))), [1, 2, 3]));
    const tv = tf.sum(tf.sqrt(tf.add(tf.square(gv), tf.square(gh))), [1, 2, 3]);
    return tf.add(fit, tf.mul(weight, tv)) as tf.Tensor1D;
  });
}

/** Options of {@link TotalVariationMin}. */
export interface TotalVariationMinArgs extends BaseLayerArgs {
  /** Share of values dropped per call, in [0, 1) (default 0.5, the reference's). */
  dropRate?: number;
  /** Weight of the total variation, pixels 0-1 scale (default 0.03, the reference's). */
  weight?: number;
  /** Solver iterations (default 100: objective within about 1e-3 of its minimum on 28x28 images). */
  iterations?: number;
  /** Seed of the masks (default 0); sweeps reseed per batch. */
  seed?: number;
  /**
   * 'hard' (default): gradients through the unrolled solver; 'bpda-identity': the same forward, the
   * identity backward (BPDA, as Athalye et al. attacked it); 'bpda-soft': as 'hard' (the solver is its own smooth stand-in).
   */
  mode?: SqueezeMode;
}

/** Random pixel dropout then total variation minimisation; [N,H,W,C] pixels 0-1 in and out. */
export class TotalVariationMin extends tf.layers.Layer implements Reseedable {
  static className = 'TotalVariationMin';
  readonly dropRate: number;
  readonly weight: number;
  readonly iterations: number;
  private stream: SeededStream;
  private currentMode: SqueezeMode;
  private lastKeep: Uint8Array = new Uint8Array(0);

  constructor(args: TotalVariationMinArgs = {}) {
    super({ ...args, trainable: false });
    const dropRate = args.dropRate ?? TVM_DEFAULTS.dropRate;
    if (typeof dropRate !== 'number' || !(dropRate >= 0 && dropRate < 1)) throw new Error(`TotalVariationMin: dropRate must be a share in [0, 1), got ${String(dropRate)}`);
    const weight = args.weight ?? TVM_DEFAULTS.weight;
    if (typeof weight !== 'number' || !(weight >= 0 && Number.isFinite(weight))) throw new Error(`TotalVariationMin: weight must be a finite number >= 0, got ${String(weight)}`);
    const iterations = args.iterations ?? TVM_DEFAULTS.iterations;
    if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`TotalVariationMin: iterations must be an integer >= 1, got ${String(iterations)}`);
    const stream = new SeededStream(args.seed ?? 0, 'TotalVariationMin');
    this.dropRate = dropRate;
    this.weight = weight;
    this.iterations = iterations;
    this.stream = stream;
    this.currentMode = TotalVariationMin.checkMode(args.mode ?? 'hard');
  }

  private static checkMode(m: unknown): SqueezeMode {
    if (!SQUEEZE_MODES.includes(m as SqueezeMode)) throw new Error(`TotalVariationMin: mode must be one of ${SQUEEZE_MODES.join(', ')}, got "${String(m)}"`);
    return m as SqueezeMode;
  }

  /** 'hard', 'bpda-identity' or 'bpda-soft'; setting it changes no weight. */
  get mode(): SqueezeMode {
    return this.currentMode;
  }

  set mode(m: SqueezeMode) {
    this.currentMode = TotalVariationMin.checkMode(m);
  }

  /** Restart the masks from `seed` (an integer); the next call draws what a fresh layer with this seed would. */
  reseed(seed: number): void {
    this.stream.restart(seed, 'TotalVariationMin.reseed');
  }

  /** The keep mask of the last call (1 kept, 0 dropped), NHWC order. */
  lastMask(): Uint8Array {
    return this.lastKeep.slice();
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new Error(`TotalVariationMin: input must be [batch, height, width, channels], got [${shape.join(',')}]`);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (x.rank !== 4) throw new Error(`TotalVariationMin: expected [N,H,W,C] input, got [${x.shape.join(',')}]`);
    // One draw per value, in NHWC order, so a seed names the same masks on every backend.
    const keep = new Uint8Array(x.size);
    for (let i = 0; i < keep.length; i++) keep[i] = this.stream.rng.next() >= this.dropRate ? 1 : 0;
    this.lastKeep = keep;
    const mask = tf.tensor4d(Float32Array.from(keep), x.shape);
    try {
      if (this.currentMode === 'bpda-identity') {
        const solve = customGrad((v: tf.Tensor) => ({ value: tvMinimise(v as tf.Tensor4D, mask, this.weight, this.iterations), gradFunc: (dy: tf.Tensor) => dy }));
        return solve(x);
      }
      return tvMinimise(x, mask, this.weight, this.iterations);
    } finally {
      mask.dispose();
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dropRate: this.dropRate, weight: this.weight, iterations: this.iterations, seed: this.stream.seed, mode: this.currentMode };
  }
}
tf.serialization.registerClass(TotalVariationMin);

/**
 * JpegLayer: the JPEG-DL layer as a serialisable tfjs-layers custom layer. Trainable weights are
 * the quantisation steps: per round an 8x8 luma table ('luma_q') and, for RGB input, an 8x8
 * chroma table shared by Cb and Cr ('chroma_q'); rounds after the first add the suffix _r<k>.
 */
import * as tf from '@tensorflow/tfjs';
import { findLayers } from '../layers/internals.ts';
import { jpegForward, type RoundTables } from './forward.ts';
import { Q_MAX, Q_MIN, QUANT_MODES, resolveQuantizer, type QuantMode, type SoftGradient } from './quantize.ts';
import { checkQuality, checkTable, standardTables, type JpegTables } from './tables.ts';

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** Options of JpegLayer (all serialised by getConfig). */
export interface JpegLayerArgs extends BaseLayerArgs {
  /** IJG quality (1..100) of the standard initial tables; default 50 when `tables` is not given. */
  quality?: number | null;
  /** Initial tables (raster [u][v], 0-255 DCT scale): one set for every round, or one per round. Overrides quality. */
  tables?: JpegTables | JpegTables[] | null;
  /** Fixed soft-quantiser temperature (default 5). Never trained. */
  alpha?: number;
  /** Hardness matching: alpha = hardness / q^2 recomputed every pass (overrides alpha). */
  hardness?: number | null;
  /** Number of quantiser rounds, each with its own tables (default 1). */
  rounds?: number;
  /** Quantiser mode (default 'soft'); switchable at run time through `layer.mode`. */
  mode?: QuantMode;
  /** Clamp the output to [0,1] (default false, as the reference). */
  clamp?: boolean;
  /** Soft-quantiser window size L (default 5). */
  levels?: number;
  /** Index bit width b (default 8). */
  bits?: number;
  /** 'autodiff' (default, as the reference) or 'analytic' (same soft gradient in closed form, faster, leaner). */
  softGradient?: SoftGradient;
}

function tableSets(args: JpegLayerArgs, rounds: number): JpegTables[] {
  if (args.tables != null) {
    const list = Array.isArray(args.tables) ? args.tables : [args.tables];
    if (list.length !== 1 && list.length !== rounds) {
      throw new Error(`JpegLayer: tables must give 1 set or one per round (${rounds}), got ${list.length}`);
    }
    list.forEach((t, r) => {
      if (t == null || typeof t !== 'object') throw new Error(`JpegLayer: tables[${r}] must be {luma, chroma?}`);
      checkTable(t.luma, `JpegLayer: tables[${r}].luma`);
      if (t.chroma != null) checkTable(t.chroma, `JpegLayer: tables[${r}].chroma`);
    });
    const copy = list.map((t) => ({ luma: Array.from(t.luma), ...(t.chroma != null ? { chroma: Array.from(t.chroma) } : {}) }));
    return rounds > 1 && copy.length === 1 ? Array.from({ length: rounds }, () => ({ ...copy[0] })) : copy;
  }
  const std = standardTables(args.quality ?? 50);
  return Array.from({ length: rounds }, () => ({ luma: [...std.luma], chroma: [...std.chroma] }));
}

/** Differentiable JPEG layer (JPEG-DL). Input [N,H,W,C], C = 1 or 3, in [0,1]; output same shape and scale. */
export class JpegLayer extends tf.layers.Layer {
  static className = 'JpegLayer';

  readonly quality: number | undefined;
  readonly alpha: number;
  readonly hardness: number | undefined;
  readonly rounds: number;
  readonly clamp: boolean;
  readonly levels: number;
  readonly bits: number;
  readonly softGradient: SoftGradient;
  private readonly givenTables: JpegTables[] | undefined;
  private readonly initialTables: JpegTables[];
  private currentMode: QuantMode;
  private channels: number | undefined;
  private lumaVars: tf.LayerVariable[] = [];
  private chromaVars: tf.LayerVariable[] = [];

  constructor(args: JpegLayerArgs = {}) {
    super(args);
    const rounds = args.rounds ?? 1;
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`JpegLayer: rounds must be an integer >= 1, got ${rounds}`);
    if (args.quality != null) checkQuality(args.quality, 'JpegLayer: quality');
    const q = resolveQuantizer(
      {
        mode: args.mode,
        alpha: args.alpha,
        hardness: args.hardness ?? undefined,
        levels: args.levels,
        bits: args.bits,
        softGradient: args.softGradient,
      },
      'JpegLayer',
    );
    if (args.clamp != null && typeof args.clamp !== 'boolean') throw new Error(`JpegLayer: clamp must be a boolean, got ${args.clamp}`);
    this.rounds = rounds;
    this.quality = args.quality ?? undefined;
    this.alpha = q.alpha;
    this.hardness = q.hardness;
    this.levels = q.levels;
    this.bits = q.bits;
    this.softGradient = q.softGradient;
    this.currentMode = q.mode;
    this.clamp = args.clamp ?? false;
    this.initialTables = tableSets(args, rounds);
    this.givenTables = args.tables != null ? this.initialTables.map((t) => ({ ...t })) : undefined;
  }

  /** Quantiser mode; setting it changes no weight. */
  get mode(): QuantMode {
    return this.currentMode;
  }

  set mode(m: QuantMode) {
    if (!QUANT_MODES.includes(m)) throw new Error(`JpegLayer: mode must be one of ${QUANT_MODES.join(', ')}, got "${m}"`);
    this.currentMode = m;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new Error(`JpegLayer: input must be [batch, height, width, channels], got [${shape.join(',')}]`);
    const c = shape[3];
    if (c !== 1 && c !== 3) throw new Error(`JpegLayer: input must have 1 (grayscale) or 3 (RGB) channels, got ${c}`);
    this.channels = c;
    for (let r = 0; r < this.rounds; r++) {
      const t = this.initialTables[r];
      if (c === 3 && t.chroma == null) throw new Error(`JpegLayer: tables[${r}].chroma is required for 3-channel input`);
      const suffix = r === 0 ? '' : `_r${r}`;
      const luma = this.addWeight(`luma_q${suffix}`, [8, 8], 'float32', tf.initializers.zeros());
      tf.tidy(() => {
        luma.write(tf.tensor2d(t.luma, [8, 8]));
      });
      this.lumaVars.push(luma);
      if (c === 3) {
        const chroma = this.addWeight(`chroma_q${suffix}`, [8, 8], 'float32', tf.initializers.zeros());
        tf.tidy(() => {
          chroma.write(tf.tensor2d(t.chroma!, [8, 8]));
        });
        this.chromaVars.push(chroma);
      }
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  /** Clamp the stored steps to [1e-5, 255] in place (the reference does this before every pass). */
  clampTables(): void {
    tf.tidy(() => {
      for (const v of [...this.lumaVars, ...this.chromaVars]) v.write(tf.clipByValue(v.read(), Q_MIN, Q_MAX));
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (x.rank !== 4 || x.shape[3] !== this.channels) {
      throw new Error(`JpegLayer: expected [N,H,W,${this.channels}] input, got [${x.shape.join(',')}]`);
    }
    this.clampTables();
    const tables: RoundTables[] = this.lumaVars.map((l, r) => ({
      luma: l.read(),
      ...(this.channels === 3 ? { chroma: this.chromaVars[r].read() } : {}),
    }));
    return jpegForward(x, tables, {
      mode: this.currentMode,
      alpha: this.alpha,
      hardness: this.hardness,
      levels: this.levels,
      bits: this.bits,
      softGradient: this.softGradient,
      clamp: this.clamp,
    });
  }

  /** Current tables per round as plain arrays (raster [u][v]); the initial ones before the layer is built. */
  getTables(): JpegTables[] {
    if (!this.built) return this.initialTables.map((t) => ({ luma: [...t.luma], ...(t.chroma ? { chroma: [...t.chroma] } : {}) }));
    return this.lumaVars.map((l, r) => ({
      luma: Array.from(l.read().dataSync()),
      ...(this.channels === 3 ? { chroma: Array.from(this.chromaVars[r].read().dataSync()) } : {}),
    }));
  }

  /** Overwrite the tables (one set for all rounds, or one per round); the layer must be built. */
  setTables(tables: JpegTables | JpegTables[]): void {
    if (!this.built) throw new Error('JpegLayer.setTables: the layer is not built yet (call the model once or build it first)');
    const sets = tableSets({ tables }, this.rounds);
    sets.forEach((t, r) => {
      if (this.channels === 3 && t.chroma == null) throw new Error(`JpegLayer.setTables: tables[${r}].chroma is required for RGB input`);
    });
    tf.tidy(() =>
      sets.forEach((t, r) => {
        this.lumaVars[r].write(tf.tensor2d(t.luma, [8, 8]));
        if (this.channels === 3) this.chromaVars[r].write(tf.tensor2d(t.chroma!, [8, 8]));
      }),
    );
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      quality: this.quality ?? null,
      tables: (this.givenTables ?? null) as unknown as tf.serialization.ConfigDictValue,
      alpha: this.alpha,
      hardness: this.hardness ?? null,
      rounds: this.rounds,
      mode: this.currentMode,
      clamp: this.clamp,
      levels: this.levels,
      bits: this.bits,
      softGradient: this.softGradient,
    };
  }
}
tf.serialization.registerClass(JpegLayer);

/** Every JpegLayer in a model, including inside nested models, in layer order. */
export function findJpegLayers(model: tf.LayersModel): JpegLayer[] {
  return findLayers(model, (l): l is JpegLayer => l instanceof JpegLayer);
}

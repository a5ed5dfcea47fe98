/**
 * Model zoo registry: every architecture by name, built with one uniform set of options as
 * input -> [JpegLayer 'jpeg'] -> Normalize 'normalize' -> backbone -> logits (no softmax).
 */
import * as tf from '@tensorflow/tfjs';
import { JpegLayer, type JpegLayerArgs } from '../src/jpeg/layer.ts';
import { Normalize, validateNormalization } from '../src/layers/normalize.ts';
import { LayerFactory, type ArchitectureSpec, type SymbolicTensor } from './common.ts';
import { DENSENET_SPECS } from './densenet.ts';
import { MOBILENETV2_SPECS } from './mobilenetv2.ts';
import { PREACT_RESNET_SPECS } from './preact_resnet.ts';
import { RESNET_CIFAR_SPECS } from './resnet_cifar.ts';
import { RESNET_IMAGENET_SPECS } from './resnet_imagenet.ts';
import { SHUFFLENET_SPECS } from './shufflenet.ts';
import { SMALL_CNN_SPECS } from './small_cnn.ts';
import { SQUEEZENET_SPECS } from './squeezenet.ts';
import { VGG_SPECS } from './vgg.ts';

export type { JpegLayerArgs } from '../src/jpeg/layer.ts';

const SPECS: ArchitectureSpec[] = [
  ...SMALL_CNN_SPECS,
  ...RESNET_CIFAR_SPECS,
  ...VGG_SPECS,
  ...MOBILENETV2_SPECS,
  ...SHUFFLENET_SPECS,
  ...PREACT_RESNET_SPECS,
  ...DENSENET_SPECS,
  ...RESNET_IMAGENET_SPECS,
  ...SQUEEZENET_SPECS,
];
const BY_NAME = new Map(SPECS.map((s) => [s.name, s]));

/** Every registered model name, in listing order. */
export const MODEL_NAMES: readonly string[] = SPECS.map((s) => s.name);

/** Options of {@link buildModel}. */
export interface BuildModelOptions {
  /** Input [height, width, channels] of raw images in [0,1]. */
  inputShape: [number, number, number];
  /** Number of classes (>= 2): size of the logits. */
  numClasses: number;
  /** JPEG-DL variant: JpegLayer options (`{}` for defaults); false/undefined = baseline. */
  jpeg?: false | JpegLayerArgs;
  /** Per-channel mean/std on the 0-1 scale; default identity (mean 0, std 1). */
  normalization?: { mean: number[]; std: number[] };
  /** Seed of the weight initialisers (default 0): same seed => identical weights. */
  seed?: number;
}

/** Registry entry as listed to users. */
export interface ModelInfo {
  name: string;
  family: string;
  paperSet: ArchitectureSpec['paperSet'];
  description: string;
  reference: string;
  defaultInputShape: [number, number, number];
  minInputSize: number;
}

/** All registered models with family, paper set, description and reference. */
export function listModels(): ModelInfo[] {
  return SPECS.map(({ name, family, paperSet, description, reference, defaultInputShape, minInputSize }) => ({
    name,
    family,
    paperSet,
    description,
    reference,
    defaultInputShape: [...defaultInputShape] as [number, number, number],
    minInputSize,
  }));
}

/** Registry entry for `name`; throws listing the known names when it is unknown. */
export function getModelInfo(name: string): ModelInfo {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`unknown model '${name}'; known models: ${MODEL_NAMES.join(', ')}`);
  return listModels().find((m) => m.name === name)!;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

/** Validate every option before any layer is created; throws naming the bad option. */
export function validateBuildOptions(name: string, opts: BuildModelOptions): ArchitectureSpec {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`unknown model '${name}'; known models: ${MODEL_NAMES.join(', ')}`);
  if (opts == null || typeof opts !== 'object') throw new Error(`buildModel(${name}): options {inputShape, numClasses} are required`);
  const { inputShape, numClasses, jpeg, normalization, seed } = opts;
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || !inputShape.every(isPositiveInt)) {
    throw new Error(`buildModel(${name}): inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  const [h, w, c] = inputShape;
  if (!isPositiveInt(numClasses) || numClasses < 2) {
    throw new Error(`buildModel(${name}): numClasses must be an integer >= 2, got ${numClasses}`);
  }
  if (Math.min(h, w) < spec.minInputSize) {
    throw new Error(
      `buildModel(${name}): input ${h}x${w} is too small for ${name}; height and width must be >= ${spec.minInputSize}`,
    );
  }
  if (jpeg !== undefined && jpeg !== false) {
    if (jpeg === null || typeof jpeg !== 'object') throw new Error(`buildModel(${name}): jpeg must be false or a JpegLayer options object, got ${JSON.stringify(jpeg)}`);
    if (c !== 1 && c !== 3) throw new Error(`buildModel(${name}): the JPEG layer needs 1 or 3 input channels, inputShape has ${c}`);
  }
  if (normalization !== undefined) {
    if (normalization === null || typeof normalization !== 'object') throw new Error(`buildModel(${name}): normalization must be {mean, std}`);
    validateNormalization(normalization.mean, normalization.std, c);
  }
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0)) {
    throw new Error(`buildModel(${name}): seed must be a non-negative integer, got ${seed}`);
  }
  return spec;
}

/**
 * Build model `name` for raw [0,1] NHWC input: [JpegLayer 'jpeg' when opts.jpeg] -> Normalize
 * 'normalize' -> backbone -> logits [batch, numClasses]. Weights are seeded (opts.seed, default 0).
 */
export function buildModel(name: string, opts: BuildModelOptions): tf.LayersModel {
  const spec = validateBuildOptions(name, opts);
  const [, , c] = opts.inputShape;
  const seed = opts.seed ?? 0;
  const normalization = opts.normalization ?? { mean: new Array(c).fill(0), std: new Array(c).fill(1) };
  const jpeg = opts.jpeg === undefined || opts.jpeg === false ? undefined : opts.jpeg;

  const input = tf.input({ shape: opts.inputShape, name: 'image' });
  let x: SymbolicTensor = input;
  if (jpeg) x = new JpegLayer({ ...jpeg, name: 'jpeg' }).apply(x) as SymbolicTensor;
  x = new Normalize({ mean: normalization.mean, std: normalization.std, name: 'normalize' }).apply(x) as SymbolicTensor;
  const logits = spec.build(x, opts.numClasses, new LayerFactory(seed, spec.init));
  return tf.model({ inputs: input, outputs: logits, name: jpeg ? `${name}_jpeg` : name });
}

/** Trainable parameter count (what PyTorch's sum(p.numel() for p in parameters()) counts; BN running stats excluded). */
export function countTrainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/** Internal, for tests: the registry spec of `name` (undefined when unknown). */
export function _specFor(name: string): ArchitectureSpec | undefined {
  return BY_NAME.get(name);
}

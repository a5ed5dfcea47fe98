/**
 * Presets of the main job: which data, model, training recipe, JPEG initialisation and attacks.
 * Every field can be overridden from the command line; the resolved config is saved in the run dir.
 */
import type { DatasetSpec } from '../data/types.ts';
import type { SpatialGridOptions } from '../spatial/transform.ts';
import type { Epsilon } from '../eps.ts';
import { parseEpsilonList } from '../eps.ts';
import { defaultTrainConfig, scaledMilestones, type TrainConfig } from '../train/config.ts';

/** How the JPEG-DL tables start. */
export interface JpegInitConfig {
  /** 'sensitivity': from the trained baseline, as the reference on CIFAR-100; 'standard': IJG tables at `quality`. */
  method: 'sensitivity' | 'standard';
  /** IJG quality for 'standard' (1..100). */
  quality: number;
  /** Largest luma step after sensitivity scaling (reference default 10; its robustness checkpoint used 20). */
  qMax: number;
  /** Training images used to estimate the sensitivity (reference: 10,000). */
  sensitivitySamples: number;
  /** Soft-quantiser temperature, fixed (reference: 5). */
  alpha: number;
}

/** One attack column of the sweep. */
export interface AttackConfig {
  /** Registry name ('fgsm', 'pgd', 'apgd') or 'bpda-pgd' (PGD through the hard JPEG layer with an identity backward pass). */
  name: string;
  params: Record<string, unknown>;
}

/** Everything the main job needs; saved as config.json in the run directory. */
export interface RunConfig {
  preset: string;
  description: string;
  dataset: DatasetSpec & { name: NonNullable<DatasetSpec['name']> };
  model: string;
  /** Normalisation inside the model: 'dataset' = per-channel mean/std of the training split, or fixed values. */
  normalization: 'dataset' | { mean: number[]; std: number[] };
  /** Seed of model initialisation (shared by baseline and JPEG-DL backbones). */
  modelSeed: number;
  train: TrainConfig;
  jpeg: JpegInitConfig;
  eval: {
    /** Test images attacked (class-balanced seeded subset; all when >= test size). */
    n: number;
    batchSize: number;
    /** Epsilons on the 0-1 scale, as labels ("0", "1/255", ...). */
    epsilons: string[];
    attacks: AttackConfig[];
    /** Attack seed (random starts). */
    seed: number;
    /**
     * JPEG-DL modes attacked by the plain (non-BPDA) attacks: 'soft' is the reference's evaluation;
     * 'hard' shows gradient masking (rounding has zero gradient), so it costs time but proves the point.
     */
    jpegModes: ('soft' | 'hard')[];
    /**
     * Input defences the trained baseline is also evaluated behind, as `evaluate --defence` specs
     * ("jpeg:75", "tvm:0.5", ...; src/defences): each a model of its own, attacked by every attack (BPDA
     * ones through its non-differentiable parts), JPEG ones in hard mode. Absent or empty: none.
     */
    defences?: string[];
  };
  /**
   * Randomised-smoothing certificates of both models after the attacks (`run --certify`, src/certify):
   * n0 = 100 and alpha = 0.001 as Cohen et al.; absent = skipped.
   */
  certify?: {
    /** Noise standard deviations as labels on the 0-1 scale ("0.25", "64/255"). */
    sigmas: string[];
    /** Test images (class-balanced subset seeded by eval.seed). */
    n: number;
    /** Noise samples that bound each certificate's class probability. */
    samples: number;
    /** L2 radii of the table (0-1 scale), increasing. */
    radii: string[];
  };
  /** Rotations and shifts of both models after the attacks (`run --spatial`, src/spatial); absent = skipped. */
  spatial?: {
    /** Test images (class-balanced subset seeded by eval.seed). */
    n: number;
    /** The grid (default Engstrom et al.'s: 31 rotations in ±30°, 5 x 5 shifts in ±3 px). */
    grid?: SpatialGridOptions;
    /** Random draws per image (worst-of-k; default 10). */
    samples?: number;
  };
  /** Universal perturbations of both models after the attacks (`run --universal`, src/universal), at the run's L-inf epsilons; absent = skipped. */
  universal?: {
    /** Test images scored and training images fitted on (class-balanced subsets seeded by eval.seed). */
    n: number;
    fitN: number;
    /** Passes of the fit (default 10). */
    epochs?: number;
  };
  /** Adversarial patches of both models after the universal perturbations (`run --patch`, src/patch); absent = skipped. */
  patch?: {
    /** Test images scored and training images fitted on (class-balanced subsets seeded by eval.seed). */
    n: number;
    fitN: number;
    /** Patch sides in pixels (default 4, 6, 8). */
    sizes?: number[];
    /** Passes of the fit (default 10). */
    epochs?: number;
  };
  /** Gradient-masking diagnostics of both models after the attacks (`run --diagnose`, src/diagnose); absent = skipped. */
  diagnose?: {
    /** Test images (class-balanced subset seeded by eval.seed). */
    n: number;
    /** L-inf budget of the probes and the convergence curve (default: the largest of eval.epsilons). */
    eps?: string;
    /** Step counts of the convergence curve (default 1, 2, 5, 10, 20, 50, 100). */
    steps?: number[];
    /** Random sign directions per image (default 8). */
    directions?: number;
    /** Images with a loss surface (default 2). */
    surfaces?: number;
  };
  /** Common corruptions of both models after the attacks (`run --corruptions`); absent = skipped. */
  corruptions?: {
    /** Test images (class-balanced subset seeded by eval.seed). */
    n: number;
    severities: number[];
    /** Names (default: every one the images allow). */
    names?: string[];
  };
}

/** PGD as in the reference's robustness_JPEG.py: L-inf, 5 steps, step 2.5*eps/5, random start. */
const PAPER_PGD: AttackConfig = { name: 'pgd', params: { steps: 5, randomStart: true } };
/** The same PGD through the hard (real-JPEG) forward pass with a straight-through backward (BPDA). */
const PAPER_BPDA: AttackConfig = { name: 'bpda-pgd', params: { steps: 5, randomStart: true, backward: 'identity' } };

/** np.linspace(1, 4, 10)/255, the reference's epsilons, with 0 for clean accuracy. */
export function paperEpsilonLabels(): string[] {
  const out = ['0'];
  for (let i = 0; i < 10; i++) {
    const k = 1 + (3 * i) / 9;
    out.push(`${Number(k.toFixed(6))}/255`);
  }
  return out;
}

function preset(p: Omit<RunConfig, 'train'> & { train: Partial<TrainConfig> }): RunConfig {
  const epochs = p.train.epochs ?? 240;
  return { ...p, train: defaultTrainConfig({ milestones: scaledMilestones(epochs), ...p.train, epochs }) };
}

/** The presets by name. */
export const PRESETS: Readonly<Record<string, () => RunConfig>> = {
  smoke: () =>
    preset({
      preset: 'smoke',
      description: 'seconds-long end-to-end check (tests): tiny synthetic colour set, small CNN, 2 epochs, FGSM/PGD/BPDA at 2 eps',
      dataset: { name: 'synthetic', seed: 0, trainSize: 96, testSize: 48, imageSize: 16, numClasses: 4 },
      model: 'small_cnn',
      normalization: 'dataset',
      modelSeed: 0,
      train: { epochs: 2, batchSize: 32, lr: 0.05, jpegLr: 0.003, seed: 0, metricsEvery: 4, augment: true },
      jpeg: { method: 'sensitivity', quality: 50, qMax: 10, sensitivitySamples: 32, alpha: 5 },
      eval: {
        n: 32,
        batchSize: 32,
        epsilons: ['0', '2/255', '8/255'],
        attacks: [{ name: 'fgsm', params: {} }, { name: 'pgd', params: { steps: 2, randomStart: true } }, { name: 'bpda-pgd', params: { steps: 2, randomStart: true, backward: 'identity' } }],
        seed: 0,
        jpegModes: ['soft', 'hard'],
      },
    }),
  ci: () =>
    preset({
      preset: 'ci',
      description:
        "the project's CI regression run: embedded Fashion-MNIST (600 training images), small CNN, 2 epochs, sensitivity-initialised tables, FGSM / PGD-3 / BPDA-PGD-3 at 2 and 8 /255 on 64 test images; checked against reports/baselines/ci.json",
      dataset: { name: 'fashion-mnist-embedded', seed: 0, trainSize: 600 },
      model: 'small_cnn',
      normalization: 'dataset',
      modelSeed: 0,
      train: { epochs: 2, batchSize: 32, lr: 0.05, jpegLr: 0.003, seed: 0, metricsEvery: 8, augment: false },
      jpeg: { method: 'sensitivity', quality: 50, qMax: 10, sensitivitySamples: 128, alpha: 5 },
      eval: {
        n: 64,
        batchSize: 64,
        epsilons: ['0', '2/255', '8/255'],
        attacks: [{ name: 'fgsm', params: {} }, { name: 'pgd', params: { steps: 3, randomStart: true } }, { name: 'bpda-pgd', params: { steps: 3, randomStart: true, backward: 'identity' } }],
        seed: 0,
        jpegModes: ['soft'],
      },
    }),
  default: () =>
    preset({
      preset: 'default',
      description:
        'embedded Fashion-MNIST subset (28x28 grey, 1,500 training images), CIFAR ResNet-8, the reference recipe scaled to 2 epochs, sensitivity-initialised tables, FGSM / PGD-5 / BPDA-PGD-5 at 1, 2, 4 /255 on 200 test images; sized to finish in 10 minutes on 2 CPU cores with the wasm backend',
      dataset: { name: 'fashion-mnist-embedded', seed: 0, trainSize: 1500 },
      model: 'resnet8',
      normalization: 'dataset',
      modelSeed: 0,
      train: { epochs: 2, batchSize: 32, lr: 0.05, jpegLr: 0.003, seed: 0, metricsEvery: 8, augment: false },
      jpeg: { method: 'sensitivity', quality: 50, qMax: 10, sensitivitySamples: 500, alpha: 5 },
      eval: {
        n: 200,
        batchSize: 100,
        epsilons: ['0', '1/255', '2/255', '4/255'],
        attacks: [{ name: 'fgsm', params: {} }, PAPER_PGD, PAPER_BPDA],
        seed: 0,
        jpegModes: ['soft'],
      },
    }),
  'paper-cifar100': () =>
    preset({
      preset: 'paper-cifar100',
      description:
        "the reference's CIFAR-100 robustness setting (robustness_JPEG.py): ResNet-56, 240 epochs, SGD 0.05 / Adam 0.001 on the tables, q_max 20, alpha 5, sensitivity init, FGSM and PGD-5 at linspace(1,4,10)/255 on the full test set, plus BPDA and APGD; for a GPU machine",
      dataset: { name: 'cifar100', seed: 0 },
      model: 'resnet56',
      normalization: { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] },
      modelSeed: 0,
      train: { epochs: 240, batchSize: 64, lr: 0.05, jpegLr: 0.001, seed: 0, metricsEvery: 50, augment: true },
      jpeg: { method: 'sensitivity', quality: 50, qMax: 20, sensitivitySamples: 10000, alpha: 5 },
      eval: {
        n: 10000,
        batchSize: 200,
        epsilons: paperEpsilonLabels(),
        attacks: [{ name: 'fgsm', params: {} }, PAPER_PGD, PAPER_BPDA, { name: 'apgd', params: { steps: 100 } }],
        seed: 0,
        jpegModes: ['soft', 'hard'],
      },
    }),
};

/** Preset names. */
export const PRESET_NAMES = Object.keys(PRESETS);

/** A fresh copy of preset `name`; throws listing the known presets. */
export function getPreset(name: string): RunConfig {
  const make = PRESETS[name];
  if (!make) throw new Error(`--preset: unknown preset "${name}"; known presets: ${PRESET_NAMES.join(', ')}`);
  return make();
}

/** The config's epsilons parsed (labels are kept as given). */
export function runEpsilons(cfg: RunConfig): Epsilon[] {
  return parseEpsilonList(cfg.eval.epsilons, 'eval.epsilons');
}

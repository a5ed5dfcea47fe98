/** Joint-training configuration: the reference's CIFAR-100 recipe, scaled to any epoch count. */
import { trainingMetadata, validateAdversarialConfig, type AdversarialTrainingConfig } from './adversarial.ts';

/** Everything that fixes a training run (with the seed, the data order and augmentation). */
export interface TrainConfig {
  /** Number of epochs (>= 1). */
  epochs: number;
  /** Mini-batch size in images (>= 1). */
  batchSize: number;
  /** Backbone SGD learning rate at epoch 0 (> 0). Reference: 0.05 (0.01 for MobileNetV2/ShuffleNet). */
  lr: number;
  /** Backbone SGD momentum in [0, 1). Reference: 0.9. */
  momentum: number;
  /** Coupled L2 weight decay on backbone weights only (>= 0). Reference: 5e-4. */
  weightDecay: number;
  /** Epochs (0-based, absolute) at whose start both schedules are multiplied by `gamma`. */
  milestones: number[];
  /** Step-decay factor. Reference: 0.1. */
  gamma: number;
  /** Adam learning rate for the JPEG quantisation tables (> 0). Reference README: 0.003. */
  jpegLr: number;
  /** 'constant' (reference with --ADAM_enable) or 'step' (same milestones as the backbone). */
  jpegSchedule: 'constant' | 'step';
  /** Adam betas and epsilon for the tables (PyTorch defaults). */
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** Seed of the data order and augmentation (same for baseline and JPEG-DL). */
  seed: number;
  /** Random crop (pad 4) + horizontal flip, as the reference, when the data source supports it. */
  augment: boolean;
  /** Read the loss/accuracy back from the device once every this many batches (>= 1). */
  metricsEvery: number;
  /** Adversarial training (src/train/adversarial.ts); absent = standard training. */
  adversarial?: AdversarialTrainingConfig;
  /**
   * Gaussian noise augmentation for randomised smoothing (Cohen et al. 2019): N(0, noiseSd²) added to
   * every training image after crop and flip, pixels not clipped (0-1 scale); absent or 0 = none.
   */
  noiseSd?: number;
}

/** Reference milestones 150/180/210 of 240 epochs, as fractions, so shorter runs keep the shape. */
export const REFERENCE_MILESTONE_FRACTIONS = [150 / 240, 180 / 240, 210 / 240];

/** The reference's milestones scaled to `epochs` (rounded; duplicates kept so decays compound). */
export function scaledMilestones(epochs: number, fractions: number[] = REFERENCE_MILESTONE_FRACTIONS): number[] {
  return fractions.map((f) => Math.round(f * epochs)).filter((m) => m > 0 && m < epochs);
}

/** Defaults: the CIFAR-100 recipe of the reference (train_teacher_cifar_JPEG.py), 240 epochs. */
export function defaultTrainConfig(overrides: Partial<TrainConfig> = {}): TrainConfig {
  const epochs = overrides.epochs ?? 240;
  return {
    epochs,
    batchSize: 64,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
    milestones: scaledMilestones(epochs),
    gamma: 0.1,
    jpegLr: 0.003,
    jpegSchedule: 'constant',
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    seed: 0,
    augment: true,
    metricsEvery: 10,
    ...overrides,
  };
}

/** Backbone learning rate for a model name: the reference uses 0.01 for MobileNetV2 and ShuffleNets. */
export function referenceLr(modelName: string): number {
  return /mobilenet|shuffle/i.test(modelName) ? 0.01 : 0.05;
}

/** Learning rate in effect during `epoch` (0-based) for a step schedule. */
export function stepLr(base: number, epoch: number, milestones: number[], gamma: number): number {
  let lr = base;
  for (const m of milestones) if (epoch >= m) lr *= gamma;
  return lr;
}

/** Throw a clear error naming the first bad field; called before any work starts. */
export function validateTrainConfig(c: TrainConfig): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`${name}: must be an integer >= ${min}, got ${v}`);
  };
  const pos = (name: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: must be a finite number > 0, got ${v}`);
  };
  int('epochs', c.epochs, 1);
  int('batchSize', c.batchSize, 1);
  int('metricsEvery', c.metricsEvery, 1);
  int('seed', c.seed, 0);
  pos('lr', c.lr);
  pos('jpegLr', c.jpegLr);
  pos('gamma', c.gamma);
  pos('adamEpsilon', c.adamEpsilon);
  if (!(c.momentum >= 0 && c.momentum < 1)) throw new Error(`momentum: must be in [0, 1), got ${c.momentum}`);
  if (!(c.adamBeta1 >= 0 && c.adamBeta1 < 1)) throw new Error(`adamBeta1: must be in [0, 1), got ${c.adamBeta1}`);
  if (!(c.adamBeta2 >= 0 && c.adamBeta2 < 1)) throw new Error(`adamBeta2: must be in [0, 1), got ${c.adamBeta2}`);
  if (!(Number.isFinite(c.weightDecay) && c.weightDecay >= 0)) throw new Error(`weightDecay: must be >= 0, got ${c.weightDecay}`);
  if (c.jpegSchedule !== 'constant' && c.jpegSchedule !== 'step') {
    throw new Error(`jpegSchedule: must be "constant" or "step", got "${c.jpegSchedule}"`);
  }
  for (const m of c.milestones) int('milestones', m, 0);
  if (c.adversarial !== undefined && c.adversarial !== null) validateAdversarialConfig(c.adversarial, 'adversarial');
  if (c.noiseSd !== undefined && c.noiseSd !== null) {
    if (!(typeof c.noiseSd === 'number' && Number.isFinite(c.noiseSd) && c.noiseSd >= 0)) throw new Error(`noiseSd: must be a finite number >= 0 (0-1 pixel scale), got ${c.noiseSd}`);
    // Noise plus adversarial examples is SmoothAdv (Salman et al. 2019), a recipe of its own not implemented here.
    if (c.noiseSd > 0 && c.adversarial) throw new Error('noiseSd: Gaussian noise augmentation cannot be combined with adversarial training (SmoothAdv is not implemented)');
  }
}

/** One line for logs, reports and model metadata: what the training did beyond the schedule. */
export function describeTraining(c: Pick<TrainConfig, 'adversarial' | 'noiseSd'>): string {
  return trainingMetadata(c.adversarial, c.noiseSd).training;
}

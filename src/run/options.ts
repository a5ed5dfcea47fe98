/** Command-line overrides of a preset, checked before any work starts. */
import { DATASET_NAMES, type DatasetName } from '../data/types.ts';
import { parseDefenceList } from '../defences/index.ts';
import { parseEpsilon, parseEpsilonList } from '../eps.ts';
import { DEFAULT_RADII } from '../certify/job.ts';
import { SMOOTHING_DEFAULTS } from '../certify/smoothing.ts';
import { parseAdversarialSpec } from '../train/adversarial.ts';
import { scaledMilestones } from '../train/config.ts';
import { getPreset, type RunConfig } from './presets.ts';

/** Overrides accepted by `jpegdl-robust run` (strings as commander gives them). */
export interface RunOverrides {
  preset?: string;
  dataset?: string;
  dataDir?: string;
  model?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  jpegLr?: string;
  trainSize?: string;
  testSize?: string;
  evalN?: string;
  eps?: string;
  seed?: string;
  jpegInit?: string;
  qMax?: string;
  /** Adversarial training of both models, e.g. "pgd:eps=8/255" (src/train/adversarial.ts). */
  adversarial?: string;
  /** Gaussian noise augmentation of both models (standard deviation, 0-1 scale), for randomised smoothing. */
  noiseSd?: string;
  /** Certify both models by randomised smoothing at these noise levels (comma-separated, 0-1 scale). */
  certify?: string;
  /** Test images for --certify (default 100). */
  certifyN?: string;
  /** Noise samples per certificate for --certify (default 10,000). */
  certifySamples?: string;
  /** Evaluate both models under rotations and shifts too. */
  spatial?: boolean;
  /** Test images for --spatial (default 500). */
  spatialN?: string;
  /** Also fit and score universal perturbations of both models (`run --universal`). */
  universal?: boolean;
  /** Test images for --universal (default 500). */
  universalN?: string;
  /** Also fit and score adversarial patches of both models (`run --patch`). */
  patch?: boolean;
  /** Test images for --patch (default 500). */
  patchN?: string;
  /** Gradient-masking diagnostics of both models too. */
  diagnose?: boolean;
  /** Test images for --diagnose (default 100). */
  diagnoseN?: string;
  /** Evaluate both models under the common corruptions too. */
  corruptions?: boolean;
  /** Test images for the corruptions (default 1000, capped at the test set). */
  corruptionN?: string;
  /** Input defences to evaluate the baseline behind too, comma-separated `evaluate --defence` specs. */
  defence?: string;
}

function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: must be an integer >= ${min}, got "${v}"`);
  return n;
}
function pos(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: must be a number > 0, got "${v}"`);
  return n;
}

/** The preset with the overrides applied; milestones are rescaled when --epochs changes. */
export function resolveRunConfig(o: RunOverrides): RunConfig {
  const cfg = getPreset(o.preset ?? 'default');
  if (o.dataset !== undefined) {
    const map: Record<string, DatasetName> = { 'fashion-mnist-embedded': 'fashion-mnist-embedded', embedded: 'fashion-mnist-embedded' };
    const name = (map[o.dataset] ?? o.dataset) as DatasetName;
    if (!(DATASET_NAMES as readonly string[]).includes(name)) throw new Error(`--dataset: unknown dataset "${o.dataset}"; expected one of ${DATASET_NAMES.join(', ')}`);
    // A different dataset drops the preset's dataset-specific sizes and normalisation constants.
    cfg.dataset = { name, seed: cfg.dataset.seed };
    if (typeof cfg.normalization !== 'string') cfg.normalization = 'dataset';
  }
  if (o.dataDir !== undefined) cfg.dataset.dataDir = o.dataDir;
  if (o.trainSize !== undefined) cfg.dataset.trainSize = int('train-size', o.trainSize, 1);
  if (o.testSize !== undefined) cfg.dataset.testSize = int('test-size', o.testSize, 1);
  if (o.model !== undefined) cfg.model = o.model;
  if (o.epochs !== undefined) {
    cfg.train.epochs = int('epochs', o.epochs, 1);
    cfg.train.milestones = scaledMilestones(cfg.train.epochs);
  }
  if (o.batchSize !== undefined) cfg.train.batchSize = int('batch-size', o.batchSize, 1);
  if (o.lr !== undefined) cfg.train.lr = pos('lr', o.lr);
  if (o.jpegLr !== undefined) cfg.train.jpegLr = pos('jpeg-lr', o.jpegLr);
  if (o.seed !== undefined) {
    const s = int('seed', o.seed, 0);
    cfg.train.seed = s;
    cfg.modelSeed = s;
    cfg.eval.seed = s;
  }
  if (o.evalN !== undefined) cfg.eval.n = int('eval-n', o.evalN, 1);
  if (o.eps !== undefined) cfg.eval.epsilons = parseEpsilonList(o.eps, '--eps').map((e) => e.label);
  if (o.jpegInit !== undefined) {
    if (o.jpegInit !== 'sensitivity' && o.jpegInit !== 'standard') throw new Error(`--jpeg-init: must be "sensitivity" or "standard", got "${o.jpegInit}"`);
    cfg.jpeg.method = o.jpegInit;
  }
  if (o.qMax !== undefined) cfg.jpeg.qMax = pos('q-max', o.qMax);
  if (o.adversarial !== undefined) cfg.train.adversarial = parseAdversarialSpec(o.adversarial, '--adversarial');
  if (o.noiseSd !== undefined) {
    cfg.train.noiseSd = parseEpsilon(o.noiseSd, '--noise-sd', 'l2').value;
    if (cfg.train.noiseSd > 0 && cfg.train.adversarial) throw new Error('--noise-sd: cannot be combined with --adversarial (noise plus adversarial examples is SmoothAdv, not implemented)');
  }
  if (o.defence !== undefined) {
    parseDefenceList(o.defence, '--defence');
    cfg.eval.defences = o.defence.split(',').map((d) => d.trim());
  }
  if ((o.certifyN !== undefined || o.certifySamples !== undefined) && o.certify === undefined) throw new Error('--certify-n, --certify-samples: only with --certify <sigmas>');
  if (o.certify !== undefined) {
    const sigmas = parseEpsilonList(o.certify, '--certify', 'l2');
    for (const s of sigmas) if (!(s.value > 0)) throw new Error(`--certify: noise standard deviation ${s.label} must be > 0`);
    cfg.certify = {
      sigmas: sigmas.map((s) => s.label),
      n: o.certifyN !== undefined ? int('certify-n', o.certifyN, 1) : 100,
      samples: o.certifySamples !== undefined ? int('certify-samples', o.certifySamples, 1) : SMOOTHING_DEFAULTS.n,
      radii: DEFAULT_RADII.split(','),
    };
  }
  if (o.spatialN !== undefined && !o.spatial) throw new Error('--spatial-n: only with --spatial');
  if (o.spatial) cfg.spatial = { n: o.spatialN !== undefined ? int('spatial-n', o.spatialN, 1) : 500 };
  if (o.universalN !== undefined && !o.universal) throw new Error('--universal-n: only with --universal');
  if (o.universal) cfg.universal = { n: o.universalN !== undefined ? int('universal-n', o.universalN, 1) : 500, fitN: 1000 };
  if (o.patchN !== undefined && !o.patch) throw new Error('--patch-n: only with --patch');
  if (o.patch) cfg.patch = { n: o.patchN !== undefined ? int('patch-n', o.patchN, 1) : 500, fitN: 1000 };
  if (o.diagnoseN !== undefined && !o.diagnose) throw new Error('--diagnose-n: only with --diagnose');
  if (o.diagnose) cfg.diagnose = { n: o.diagnoseN !== undefined ? int('diagnose-n', o.diagnoseN, 1) : 100 };
  if (o.corruptionN !== undefined && !o.corruptions) throw new Error('--corruption-n: only with --corruptions');
  if (o.corruptions) cfg.corruptions = { n: o.corruptionN !== undefined ? int('corruption-n', o.corruptionN, 1) : 1000, severities: [1, 2, 3, 4, 5] };
  return cfg;
}

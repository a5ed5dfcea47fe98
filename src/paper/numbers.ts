/**
 * The JPEG-DL paper's published numbers (arXiv 2410.07081, ICLR 2025) as data, each with its
 * source and how far it is verified (see shared/paper/spec.md sections 3-4). Nothing here is
 * invented: where the paper's value is unknown (per-eps robustness), there is no entry.
 */

/** How much a number can be trusted. */
export type PaperStatus =
  /** Read in the abstract or on OpenReview. */
  | 'verified'
  /** Quoted by reviews of the ICLR text; the table itself was not read. */
  | 'third-party'
  /** Recalled from the CRD paper, to be checked against it. */
  | 'from-memory'
  /** Printed in the authors' released code (log lines), not in the paper. */
  | 'code-log';

/** What a number measures. Accuracies and gains are in percent / percentage points. */
export type PaperQuantity = 'top1' | 'top1-gain' | 'robust-gain-max' | 'extra-params';

export interface PaperNumber {
  id: string;
  quantity: PaperQuantity;
  dataset: string;
  /** Backbone, lower case as in our registry where one exists (e.g. "resnet56"). */
  model?: string;
  variant?: 'baseline' | 'jpeg-dl';
  attack?: 'fgsm' | 'pgd';
  /** Single value (percent, points or a count); null when only a range is known. */
  value: number | null;
  /** Known range [lo, hi] when the source gives one instead of a value. */
  range?: [number, number];
  /** Standard deviation when the source gives one. */
  std?: number;
  unit: 'percent' | 'points' | 'count';
  status: PaperStatus;
  source: string;
  note?: string;
}

const ABSTRACT = 'arXiv 2410.07081 abstract / OpenReview';
const REVIEWS = 'third-party reviews of the ICLR 2025 text (spec.md section 4)';
const CRD = 'CRD (Tian et al. 2019) vanilla baselines, from memory (spec.md section 4: please verify)';
const CODE = 'JpegInspiredDl/JPEG-Inspired-DL first commit 92d38ed, robustness_JPEG.py log lines';

/** Every paper number this project knows, with status and source. */
export const PAPER_NUMBERS: readonly PaperNumber[] = Object.freeze([
  { id: 'abstract-finegrained-gain', quantity: 'top1-gain', dataset: 'fine-grained', value: 20.9, unit: 'points', status: 'verified', source: ABSTRACT, note: 'maximum gain ("up to 20.9%")' },
  { id: 'abstract-extra-params', quantity: 'extra-params', dataset: 'any', value: 128, unit: 'count', status: 'verified', source: ABSTRACT, note: 'two 8x8 tables (luma, shared chroma)' },
  // CIFAR-100 Table 1: the paper copies the baselines from CRD; JPEG-DL is mean ± std over 3 runs (values not found).
  ...([['resnet32', 71.14], ['resnet56', 72.34], ['resnet110', 74.31], ['vgg8', 70.36], ['vgg13', 74.64], ['mobilenetv2', 64.6], ['shufflenetv1', 70.5], ['shufflenetv2', 71.82]] as const).map(
    ([model, value]): PaperNumber => ({ id: `cifar100-${model}-baseline`, quantity: 'top1', dataset: 'cifar100', model, variant: 'baseline', value, unit: 'percent', status: 'from-memory', source: CRD }),
  ),
  { id: 'cifar100-gain-range', quantity: 'top1-gain', dataset: 'cifar100', value: null, range: [0.67, 1.55], unit: 'points', status: 'third-party', source: REVIEWS, note: 'seven models; per-model gains not found' },
  { id: 'cifar100-vgg13-gain', quantity: 'top1-gain', dataset: 'cifar100', model: 'vgg13', value: 1.55, unit: 'points', status: 'third-party', source: REVIEWS },
  { id: 'cifar100-resnet56-jpegdl-log', quantity: 'top1', dataset: 'cifar100', model: 'resnet56', variant: 'jpeg-dl', value: null, range: [72.53, 73.12], unit: 'percent', status: 'code-log', source: CODE, note: 'best-epoch accuracies of the checkpoints attacked in the robustness script' },
  { id: 'flowers-densenet121-baseline', quantity: 'top1', dataset: 'flowers', model: 'densenet121', variant: 'baseline', value: 51.32, unit: 'percent', status: 'third-party', source: REVIEWS },
  { id: 'flowers-densenet121-gain', quantity: 'top1-gain', dataset: 'flowers', model: 'densenet121', value: 20.9, unit: 'points', status: 'third-party', source: REVIEWS },
  { id: 'flowers-resnet18-gain', quantity: 'top1-gain', dataset: 'flowers', model: 'resnet18', value: 11.63, unit: 'points', status: 'third-party', source: REVIEWS },
  { id: 'cub200-densenet121-gain', quantity: 'top1-gain', dataset: 'cub200', model: 'densenet121', value: 4.81, unit: 'points', status: 'third-party', source: REVIEWS },
  { id: 'imagenet-gain-range', quantity: 'top1-gain', dataset: 'imagenet', value: null, range: [0.23, 0.51], unit: 'points', status: 'third-party', source: REVIEWS, note: 'single runs; +0.31 (SqueezeNet1.1, 1 round) and +0.51 (5 rounds) per the seed, model attribution unconfirmed' },
  // Robustness (a figure in the paper, not a table): only the maximum improvement is quoted.
  { id: 'cifar100-resnet56-fgsm-gain-max', quantity: 'robust-gain-max', dataset: 'cifar100', model: 'resnet56', attack: 'fgsm', value: 15, unit: 'points', status: 'third-party', source: REVIEWS, note: '"up to 15%" over eps 1/255..4/255; per-eps values not available' },
  { id: 'cifar100-resnet56-pgd-gain-max', quantity: 'robust-gain-max', dataset: 'cifar100', model: 'resnet56', attack: 'pgd', value: 6, unit: 'points', status: 'third-party', source: REVIEWS, note: '"up to 6%" over eps 1/255..4/255 (PGD, 5 steps); per-eps values not available' },
] satisfies PaperNumber[]);

/** The paper's robustness setting (spec.md section 3, from the released code). */
export const PAPER_ROBUSTNESS_SETTING = Object.freeze({
  dataset: 'cifar100',
  model: 'resnet56',
  /** eps = linspace(1, 4, 10) / 255 on the 0-1 pixel scale. */
  epsilons: Array.from({ length: 10 }, (_, i) => (1 + (3 * i) / 9) / 255),
  attacks: { fgsm: {}, pgd: { steps: 5, stepSize: 'eps/2', randomStart: true } },
  jpegdl: { alpha: 5, jpegLr: 0.001, qMax: 20, optimizer: 'adam', init: 'sensitivity' },
  /** Why no per-eps paper curve is carried. */
  perEpsNote: 'The paper shows robustness as a figure; no per-eps values were found, so none are carried.',
});

/** Canonical dataset name: lower case, no dashes, no "(source)" suffix ("CIFAR-100 (dir)" -> "cifar100"). */
export function canonicalDataset(name: string): string {
  return name.replace(/\s*\(.*$/, '').toLowerCase().replace(/[-_\s]/g, '');
}

/** Paper numbers for a dataset (and model, when given). */
export function paperNumbersFor(dataset: string, model?: string): PaperNumber[] {
  const d = canonicalDataset(dataset);
  return PAPER_NUMBERS.filter((p) => p.dataset === d && (model === undefined || p.model === undefined || p.model === model.toLowerCase()));
}

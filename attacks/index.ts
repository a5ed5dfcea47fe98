/** Registry of attacks: name -> function, norm, defaults, paper. All take (model, images, labels, options) => images. */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier, Norm } from '../src/types.ts';
import type { QueryTrace } from './search.ts';
import { apgd, apgdL2 } from './apgd.ts';
import { apgdL1 } from './apgd_l1.ts';
import { autoAttack, autoAttackL1, autoAttackL2 } from './autoattack.ts';
import { cw, cwMinimal } from './cw.ts';
import { deepfool, deepfoolLinf, deepfoolMinimal } from './deepfool.ts';
import { EAD_DEFAULTS, ead, eadMinimal } from './ead.ts';
import type { MinimalNormAttack } from './epsilons.ts';
import { fab, fabL1, fabL2, fabMinimal } from './fab.ts';
import { fgsm } from './fgsm.ts';
import { diFgsm } from './difgsm.ts';
import { hsja, hsjaLinf, hsjaMinimal } from './hsja.ts';
import { miFgsm } from './mifgsm.ts';
import { niFgsm } from './nifgsm.ts';
import { siNiFgsm } from './sinifgsm.ts';
import { pgd } from './pgd.ts';
import { pgdL0 } from './pgd_l0.ts';
import { pgdL1 } from './pgd_l1.ts';
import { pgdL2 } from './pgd_l2.ts';
import { simba } from './simba.ts';
import { sparseRs } from './sparse_rs.ts';
import { spsa } from './spsa.ts';
import { square, squareL2 } from './square.ts';
import { tiFgsm } from './tifgsm.ts';
import { vmiFgsm } from './vmifgsm.ts';
import { vniFgsm } from './vnifgsm.ts';

/** Options every registered attack accepts (each attack accepts more; see its own options type). */
export interface AttackOptions {
  eps: number;
  [key: string]: unknown;
}

/** What an attack may tell its caller beyond the images: an ensemble (AutoAttack) what each stage fooled, a query-based search (Square, SimBA, Sparse-RS, SPSA) when each image was fooled. */
export type AttackReport = (r: { fooledBy?: Record<string, number>; queries?: QueryTrace }) => void;

/** An attack as the registry stores it; attacks with nothing to add ignore `report`. */
export type AttackFn = (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: AttackOptions, report?: AttackReport) => tf.Tensor4D;

/** One registry entry. */
export interface AttackInfo {
  name: string;
  run: AttackFn;
  norm: Norm;
  /** Defaults of the optional options, as applied when they are omitted (stepSize: 2.5·eps/steps). */
  defaults: Record<string, unknown>;
  description: string;
  paper: string;
  /** Minimal-norm attacks: the least-norm search itself (examples and sizes in the entry's norm), as `attack --minimal` runs it. */
  minimal?: MinimalNormAttack;
  /**
   * The budgeted attack is `projectOrClean` of `minimal`'s points and the search never reads eps, so one
   * search per batch answers every eps of a sweep (bit for bit what the budgeted attack gives with the same seed).
   * Untargeted runs only: a targeted budgeted attack judges success by the target, not by `projectOrClean`.
   */
  sharedSearch?: boolean;
}

/** `minimal` of an entry: the search with its norm fixed to the entry's. */
const minimalIn = <O>(search: (m: Classifier, x: tf.Tensor4D, y: tf.Tensor1D, o: O) => { adversarial: tf.Tensor4D; norms: Float64Array }, norm: Norm | null): MinimalNormAttack =>
  (m, x, y, o) => search(m, x, y, (norm ? { ...o, norm } : o) as O);

const PGD_DEFAULTS = { steps: 10, stepSize: '2.5*eps/steps', randomStart: true, restarts: 1, seed: 0, targeted: false, loss: 'ce', eotSamples: 1 };
const APGD_DEFAULTS = { steps: 100, randomStart: true, restarts: 1, seed: 0, targeted: false, loss: 'ce', eotSamples: 1 };
const APGD_L1_DEFAULTS = { ...APGD_DEFAULTS, epsSchedule: false };
const SQUARE_DEFAULTS = { queries: 5000, pInit: 0.8, loss: 'margin', seed: 0, targeted: false, eotSamples: 1 };
const AUTOATTACK_DEFAULTS = { version: 'standard', steps: 100, targetClasses: 9, fab: true, queries: 5000, restarts: '1 (5 in plus)', eotSamples: '1 (20 in rand)', seed: 0 };
const DEEPFOOL_DEFAULTS = { steps: 50, overshoot: 0.02, candidates: 10 };
const HSJA_DEFAULTS = { steps: 40, initEvals: 100, maxEvals: 10000, gamma: 1, initTries: 100, queries: 'no cap', seed: 0 };
/** Defaults of the transfer family; each entry overrides decay, nesterov, scales, varianceSamples, diversityProb, kernelSize. */
const MIFGSM_DEFAULTS = { steps: 10, stepSize: 'eps/steps', decay: 1, nesterov: false, scales: 1, varianceSamples: 0, varianceBeta: 1.5, diversityProb: 0, resizeRate: 0.9, kernelSize: 1, kernelSigma: 3, randomStart: false, seed: 0, targeted: false, loss: 'ce', eotSamples: 1 };
const FAB_DEFAULTS = { steps: 100, restarts: 1, targetClasses: 0, alphaMax: 0.1, eta: 1.05, beta: 0.9, seed: 0 };

/** All attacks by name. */
export const ATTACKS: Readonly<Record<string, AttackInfo>> = Object.freeze({
  fgsm: {
    name: 'fgsm', run: fgsm as AttackFn, norm: 'linf',
    defaults: { targeted: false, loss: 'ce', eotSamples: 1 },
    description: 'one signed-gradient step of size eps',
    paper: 'Goodfellow, Shlens, Szegedy 2015, Explaining and Harnessing Adversarial Examples',
  },
  pgd: {
    name: 'pgd', run: pgd as AttackFn, norm: 'linf', defaults: PGD_DEFAULTS,
    description: 'projected signed-gradient ascent with random start and restarts',
    paper: 'Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks',
  },
  'pgd-l2': {
    name: 'pgd-l2', run: pgdL2 as AttackFn, norm: 'l2', defaults: PGD_DEFAULTS,
    description: 'projected normalised-gradient ascent in the L2 ball',
    paper: 'Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks',
  },
  'pgd-l1': {
    name: 'pgd-l1', run: pgdL1 as AttackFn, norm: 'l1', defaults: { ...PGD_DEFAULTS, quantile: 0.99 },
    description: 'SLIDE: PGD in the L1 ball moving the pixels with |gradient| above the quantile by equal amounts, exact L1-and-box projection',
    paper: 'Tramèr & Boneh 2019, Adversarial Training and Robustness for Multiple Perturbations',
  },
  'pgd-l0': {
    name: 'pgd-l0', run: pgdL0 as AttackFn, norm: 'l0', defaults: { ...PGD_DEFAULTS, stepSize: 0.15, randomStart: false },
    description: 'PGD0: gradient steps scaled by the mean |gradient|, exact projection onto at most eps changed pixels and the box (eps: a number of pixels)',
    paper: 'Croce & Hein 2019, Sparse and Imperceivable Adversarial Attacks',
  },
  'mi-fgsm': {
    name: 'mi-fgsm', run: miFgsm as AttackFn, norm: 'linf', defaults: MIFGSM_DEFAULTS,
    description: 'MI-FGSM: iterative FGSM on an accumulated, L1-normalised gradient (momentum); crafted on a surrogate, it transfers better than PGD',
    paper: 'Dong et al. 2018, Boosting Adversarial Attacks with Momentum',
  },
  'ni-fgsm': {
    name: 'ni-fgsm', run: niFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, nesterov: true },
    description: 'NI-FGSM: MI-FGSM with the gradient at the Nesterov look-ahead point',
    paper: 'Lin, Song, He, Wang, Hopcroft 2020, Nesterov Accelerated Gradient and Scale Invariance for Adversarial Attacks',
  },
  'si-ni-fgsm': {
    name: 'si-ni-fgsm', run: siNiFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, nesterov: true, scales: 5 },
    description: 'SI-NI-FGSM: NI-FGSM on the gradient averaged over the scaled copies x/2^i (scale invariance)',
    paper: 'Lin, Song, He, Wang, Hopcroft 2020, Nesterov Accelerated Gradient and Scale Invariance for Adversarial Attacks',
  },
  'vmi-fgsm': {
    name: 'vmi-fgsm', run: vmiFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, varianceSamples: 20 },
    description: "VMI-FGSM: MI-FGSM corrected by the previous step's gradient variance over a ±1.5·eps neighbourhood",
    paper: 'Wang & He 2021, Enhancing the Transferability of Adversarial Attacks through Variance Tuning',
  },
  'vni-fgsm': {
    name: 'vni-fgsm', run: vniFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, nesterov: true, varianceSamples: 20 },
    description: 'VNI-FGSM: VMI-FGSM with the Nesterov look-ahead',
    paper: 'Wang & He 2021, Enhancing the Transferability of Adversarial Attacks through Variance Tuning',
  },
  'di-fgsm': {
    name: 'di-fgsm', run: diFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, decay: 0, diversityProb: 0.5 },
    description: 'DI-FGSM: iterative FGSM with gradients through a random resize-and-pad of the input (decay 1: M-DI²-FGSM)',
    paper: 'Xie et al. 2019, Improving Transferability of Adversarial Examples with Input Diversity',
  },
  'ti-fgsm': {
    name: 'ti-fgsm', run: tiFgsm as AttackFn, norm: 'linf', defaults: { ...MIFGSM_DEFAULTS, decay: 0, diversityProb: 0.5, kernelSize: 15 },
    description: 'TI-FGSM: DI-FGSM with the gradient smoothed by a Gaussian kernel (translation invariance)',
    paper: 'Dong, Pang, Su, Zhu 2019, Evading Defenses to Transferable Adversarial Examples by Translation-Invariant Attacks',
  },
  apgd: {
    name: 'apgd', run: apgd as AttackFn, norm: 'linf', defaults: APGD_DEFAULTS,
    description: 'APGD-CE: step-size-free PGD with momentum and adaptive step halving (AutoAttack)',
    paper: 'Croce & Hein 2020, Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks',
  },
  'apgd-l2': {
    name: 'apgd-l2', run: apgdL2 as AttackFn, norm: 'l2', defaults: APGD_DEFAULTS,
    description: 'APGD-CE in the L2 ball',
    paper: 'Croce & Hein 2020 (L2 variant as in AutoAttack)',
  },
  'apgd-l1': {
    name: 'apgd-l1', run: apgdL1 as AttackFn, norm: 'l1', defaults: APGD_L1_DEFAULTS,
    description: 'L1-APGD: sparse box-aware steps with adaptive step size and sparsity, exact L1-and-box projection (epsSchedule: AutoAttack\'s 3/2/1·eps schedule)',
    paper: 'Croce & Hein 2021, Mind the box: l1-APGD for sparse adversarial attacks on image classifiers',
  },
  fab: {
    name: 'fab', run: fab as AttackFn, norm: 'linf', defaults: FAB_DEFAULTS, minimal: minimalIn(fabMinimal, 'linf'),
    description: 'FAB: minimal-norm boundary attack (linearised boundary, projections inside the box); targetClasses k > 0 is FAB-T',
    paper: 'Croce & Hein 2020, Minimally distorted adversarial examples with a fast adaptive boundary attack',
  },
  'fab-l2': {
    name: 'fab-l2', run: fabL2 as AttackFn, norm: 'l2', defaults: FAB_DEFAULTS, minimal: minimalIn(fabMinimal, 'l2'),
    description: 'FAB minimising the L2 norm',
    paper: 'Croce & Hein 2020, Minimally distorted adversarial examples with a fast adaptive boundary attack',
  },
  'fab-l1': {
    name: 'fab-l1', run: fabL1 as AttackFn, norm: 'l1', defaults: FAB_DEFAULTS, minimal: minimalIn(fabMinimal, 'l1'),
    description: 'FAB minimising the L1 norm (least-L1 steps onto the linearised boundary inside the box: fractional knapsacks)',
    paper: 'Croce & Hein 2020, Minimally distorted adversarial examples with a fast adaptive boundary attack',
  },
  'cw-l2': {
    name: 'cw-l2', run: cw as AttackFn, norm: 'l2', minimal: minimalIn(cwMinimal, null), sharedSearch: true,
    defaults: { steps: 1000, searchSteps: 9, initialConst: 0.01, lr: 0.01, confidence: 0, abortEarly: true, targeted: false },
    description: 'Carlini-Wagner L2: least-norm example by Adam in tanh space, binary search over the constant; budgeted: kept if within eps',
    paper: 'Carlini & Wagner 2017, Towards Evaluating the Robustness of Neural Networks',
  },
  ead: {
    name: 'ead', run: ead as AttackFn, norm: 'l1', minimal: minimalIn(eadMinimal, null), sharedSearch: true, defaults: EAD_DEFAULTS,
    description: 'EAD elastic-net attack: least c·hinge + ||δ||₂² + β||δ||₁ by FISTA with shrinkage in the box, binary search over c (C&W family, sparse); budgeted: projected into the L1 ball, kept if still adversarial',
    paper: 'Chen, Sharma, Zhang, Yi, Hsieh 2018, EAD: Elastic-Net Attacks to Deep Neural Networks via Adversarial Examples',
  },
  deepfool: {
    name: 'deepfool', run: deepfool as AttackFn, norm: 'l2', defaults: DEEPFOOL_DEFAULTS, minimal: minimalIn(deepfoolMinimal, 'l2'), sharedSearch: true,
    description: 'DeepFool: steps onto the closest linearised boundary until misclassified (minimal norm); budgeted: kept if within eps',
    paper: 'Moosavi-Dezfooli, Fawzi, Frossard 2016, DeepFool: a simple and accurate method to fool deep neural networks',
  },
  'deepfool-linf': {
    name: 'deepfool-linf', run: deepfoolLinf as AttackFn, norm: 'linf', defaults: DEEPFOOL_DEFAULTS, minimal: minimalIn(deepfoolMinimal, 'linf'), sharedSearch: true,
    description: 'DeepFool in L-inf (sign steps onto the closest boundary)',
    paper: 'Moosavi-Dezfooli, Fawzi, Frossard 2016, DeepFool: a simple and accurate method to fool deep neural networks',
  },
  square: {
    name: 'square', run: square as AttackFn, norm: 'linf', defaults: SQUARE_DEFAULTS,
    description: 'Square Attack: score-based random search over ±eps squares, no gradients (a check for gradient masking)',
    paper: 'Andriushchenko, Croce, Flammarion, Hein 2020, Square Attack: a query-efficient black-box adversarial attack via random search',
  },
  'square-l2': {
    name: 'square-l2', run: squareL2 as AttackFn, norm: 'l2', defaults: SQUARE_DEFAULTS,
    description: 'Square Attack in the L2 ball: random search moving perturbation mass between square windows, no gradients',
    paper: 'Andriushchenko, Croce, Flammarion, Hein 2020, Square Attack: a query-efficient black-box adversarial attack via random search',
  },
  simba: {
    name: 'simba', run: simba as AttackFn, norm: 'l2', defaults: { queries: 10000, stepSize: 'min(0.2, eps)', basis: 'dct', freqDim: 'round(min(h, w) / 8)', stride: 1, loss: 'margin', seed: 0, targeted: false, eotSamples: 1 },
    description: 'SimBA: score-based search along orthonormal directions (whole-image DCT, low frequencies first, or single pixels), keeping each ±stepSize step that raises the objective; no gradients',
    paper: 'Guo, Gardner, You, Wilson, Weinberger 2019, Simple Black-box Adversarial Attacks',
  },
  spsa: {
    name: 'spsa', run: spsa as AttackFn, norm: 'linf', defaults: { steps: 100, samples: 128, delta: 0.01, lr: 0.01, randomStart: true, seed: 0, loss: 'margin', targeted: false, eotSamples: 1, queryBatch: 1024 },
    description: 'SPSA: Adam ascent on a gradient estimated from outputs only (random ±1 directions, central differences at delta), projected; no gradients (a check for gradient masking)',
    paper: "Uesato, O'Donoghue, van den Oord, Kohli 2018, Adversarial Risk and the Dangers of Evaluating Against Weak Attacks",
  },
  'sparse-rs': {
    name: 'sparse-rs', run: sparseRs as AttackFn, norm: 'l0', defaults: { queries: 5000, alphaInit: 0.3, loss: 'margin', seed: 0, targeted: false, eotSamples: 1 },
    description: 'Sparse-RS: score-based random search over which eps pixels to change (each to a corner of the colour cube), no gradients (eps: a number of pixels)',
    paper: 'Croce, Andriushchenko, Singh, Flammarion, Hein 2022, Sparse-RS: a versatile framework for query-efficient sparse black-box adversarial attacks',
  },
  hsja: {
    name: 'hsja', run: hsja as AttackFn, norm: 'l2', defaults: HSJA_DEFAULTS, minimal: minimalIn(hsjaMinimal, 'l2'), sharedSearch: true,
    description: 'HopSkipJump: decision-based (top-1 labels only, no scores or gradients) minimal-norm attack by boundary binary searches and Monte-Carlo normal estimates; budgeted: kept if within eps',
    paper: 'Chen, Jordan, Wainwright 2020, HopSkipJumpAttack: A Query-Efficient Decision-Based Attack',
  },
  'hsja-linf': {
    name: 'hsja-linf', run: hsjaLinf as AttackFn, norm: 'linf', defaults: HSJA_DEFAULTS, minimal: minimalIn(hsjaMinimal, 'linf'), sharedSearch: true,
    description: 'HopSkipJump in L-inf (sign steps, projections by clipping)',
    paper: 'Chen, Jordan, Wainwright 2020, HopSkipJumpAttack: A Query-Efficient Decision-Based Attack',
  },
  autoattack: {
    name: 'autoattack', run: autoAttack as unknown as AttackFn, norm: 'linf', defaults: AUTOATTACK_DEFAULTS,
    description: 'AutoAttack ensemble (standard version: APGD-CE, APGD-T (DLR, 9 targets), FAB-T (9 targets), Square; version plus or rand as the reference), each on the images still robust; robust images returned clean',
    paper: 'Croce & Hein 2020, Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks',
  },
  'autoattack-l2': {
    name: 'autoattack-l2', run: autoAttackL2 as unknown as AttackFn, norm: 'l2', defaults: AUTOATTACK_DEFAULTS,
    description: 'AutoAttack ensemble (standard version) in the L2 ball: APGD-CE, APGD-T, FAB-T, Square, all L2',
    paper: 'Croce & Hein 2020, Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks',
  },
  'autoattack-l1': {
    name: 'autoattack-l1', run: autoAttackL1 as unknown as AttackFn, norm: 'l1', defaults: { ...AUTOATTACK_DEFAULTS, targetClasses: 5, fab: false, queries: 0, restarts: '5 (1 in rand)' },
    description: 'AutoAttack in the L1 ball, as its L1 standard setting runs APGD: L1-APGD-CE (5 restarts), L1-APGD-T (5 targets), both on the 3/2/1·eps schedule; fab=true adds FAB-T in L1 (no Square in L1)',
    paper: 'Croce & Hein 2021, Mind the box: l1-APGD for sparse adversarial attacks on image classifiers',
  },
});

/** Names of all registered attacks. */
export const ATTACK_NAMES = Object.keys(ATTACKS);

/** The registry entry for `name`; throws listing the known names. */
export function getAttack(name: string): AttackInfo {
  const info = Object.prototype.hasOwnProperty.call(ATTACKS, name) ? ATTACKS[name] : undefined;
  if (!info) throw new Error(`attack: unknown attack "${name}"; known attacks: ${ATTACK_NAMES.join(', ')}`);
  return info;
}

export { apgd, apgdL2, apgdCheckpoints } from './apgd.ts';
export { apgdL1, scheduleSteps } from './apgd_l1.ts';
export { autoAttack, autoAttackL1, autoAttackL2, type AutoAttackReport } from './autoattack.ts';
export { bpda, bpdaModel, straightThrough, jpegLayersOf, squeezeLayersOf, hasBpdaLayers } from './bpda.ts';
export { eotGradient, withEot } from './eot.ts';
export { ensembleModel } from './ensemble.ts';
export { cw, cwMinimal, type CwMinimalResult } from './cw.ts';
export { deepfool, deepfoolLinf, deepfoolMinimal, type DeepFoolMinimalResult } from './deepfool.ts';
export { ead, eadMinimal, shrinkToBox, EAD_DEFAULTS, EAD_OPTIONS, type EadDecisionRule, type EadMinimalResult, type EadOptions } from './ead.ts';
export { fab, fabL1, fabL2, fabMinimal, type FabMinimalResult } from './fab.ts';
export { hyperplaneStep } from './hyperplane.ts';
export { fgsm } from './fgsm.ts';
export { miFgsm, type MiFgsmOptions } from './mifgsm.ts';
export { niFgsm } from './nifgsm.ts';
export { siNiFgsm } from './sinifgsm.ts';
export { vmiFgsm } from './vmifgsm.ts';
export { vniFgsm } from './vnifgsm.ts';
export { diFgsm } from './difgsm.ts';
export { tiFgsm } from './tifgsm.ts';
export { diversityDraws, gaussianKernel, neighbourOffsets, neighbourOffsetStream, smoothGradient } from './mifgsm_core.ts';
export { hsja, hsjaLinf, hsjaMinimal, type HsjaMinimalResult } from './hsja.ts';
export { pgd } from './pgd.ts';
export { pgdL0 } from './pgd_l0.ts';
export { pgdL1 } from './pgd_l1.ts';
export { pgdL2 } from './pgd_l2.ts';
export { simba, simbaFreqDim, dctBasisMatrix, dctOrder, SIMBA_OPTIONS, type SimbaBasis, type SimbaOptions } from './simba.ts';
export { sparseRs, sparseRsSwaps, type SparseRsOptions } from './sparse_rs.ts';
export { spsa, spsaGradient, type SpsaOptions } from './spsa.ts';
export { square, squareL2, squareFraction, squareSide } from './square.ts';
export { applyUniversal, fitUniversal, universal, universalSuccess, UNIVERSAL_METHODS, type UniversalMethod, type UniversalOptions, type UniversalResult } from './universal.ts';
export { adversarialPatch, applyPatch, drawPlacements, fitPatch, gridOffsets, patchSuccess, randomPlacements, PATCH_OPTIONS, type PatchOptions, type PatchResult, type Placements } from './patch.ts';
export { patchPgd, PATCH_PGD_OPTIONS, type PatchPgdOptions, type PatchPgdResult } from './patch_pgd.ts';
export { spatial, spatialSearch, resolveSpatialOptions, SPATIAL_OPTIONS, type SpatialOptions, type SpatialResult } from './spatial.ts';
export { centredPattern, squareSideL2, twoLobePattern } from './square_l2.ts';
export { l0Support, l1Threshold, normPerExample, project, projectPerturbation, randomStart } from './project.ts';
export { accuracyFromMinimalNorms, attackOverEpsilons, evaluateAttackOnDataset, mergeTraces, minimalNormsOnDataset, type MinimalNormAttack } from './epsilons.ts';
export type { QueryReport, QueryTrace } from './search.ts';

/**
 * AutoAttack (Croce & Hein 2020), the parameter-free ensemble RobustBench reports. Its "standard"
 * version (the default; `version` selects 'plus' or 'rand' as the reference implementation does) runs
 * APGD-CE, APGD-T (targeted DLR loss) against the most likely wrong classes, FAB-T (minimal-norm
 * boundary attack towards the same classes), then Square, each only on the images the attacks before
 * it did not fool. Per image the first fooling point is kept; images no attack fools are returned
 * clean, as AutoAttack returns them, so accuracy on the output is the ensemble's robust accuracy.
 * L-inf and L2 run the same attacks in their norm (`autoAttackL2`). L1 (`autoAttackL1`) runs AutoAttack's
 * L1 standard setting of its two APGD stages: L1-APGD-CE with 5 restarts and L1-APGD-T against 5 target
 * classes, both on the 3·eps / 2·eps / eps schedule; `fab: true` adds FAB-T in L1 after them (Square has
 * no L1 version here).
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import { apgd } from './apgd.ts';
import { apgdL1 } from './apgd_l1.ts';
import { fab } from './fab.ts';
import { project, subSeed } from './project.ts';
import { square } from './square.ts';
import { argMax, wrongClassesByLikelihood } from './targets.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of AutoAttack. */
export interface AutoAttackOptions {
  /** Budget on the 0-1 pixel scale in `norm` (required). */
  eps: number;
  /** 'linf' (default), 'l2' or 'l1'. */
  norm?: Norm;
  /** APGD iterations for APGD-CE and each APGD-T run (default 100, as AutoAttack). */
  steps?: number;
  /** APGD-T and FAB-T target classes, the most likely wrong ones first (default 9, 5 in L1, as AutoAttack; capped at classes - 1; 0 skips both; APGD-T needs 4+ classes). */
  targetClasses?: number;
  /** Run FAB-T after APGD-T (default true, as AutoAttack's standard version; same steps and targets). */
  fab?: boolean;
  /** Square queries per image (default 5000, as AutoAttack; 0 skips Square). */
  queries?: number;
  /** Seed of the random starts and of Square (default 0). */
  seed?: number;
  /**
   * Which of AutoAttack's versions (default 'standard'): 'standard' runs APGD-CE, APGD-T, FAB-T, Square;
   * 'plus' runs APGD-CE, APGD-DLR, FAB (untargeted), Square, APGD-T, FAB-T with 5 restarts for the
   * untargeted APGD and FAB runs; 'rand' (for randomised defences) runs APGD-CE and APGD-DLR with EOT
   * over 20 model calls per gradient.
   */
  version?: AutoAttackVersion;
  /** Restarts of the untargeted APGD runs and of untargeted FAB (default 1; 5 in 'plus' and in L1). */
  restarts?: number;
  /** EOT: model calls averaged per APGD gradient (default 1; 20 in 'rand'). FAB and Square run without EOT. */
  eotSamples?: number;
}

/** AutoAttack's versions, as in the reference implementation. */
export type AutoAttackVersion = 'standard' | 'plus' | 'rand';
export const AUTOATTACK_VERSIONS: readonly AutoAttackVersion[] = ['standard', 'plus', 'rand'];

export const AUTOATTACK_OPTIONS = ['eps', 'norm', 'steps', 'targetClasses', 'fab', 'queries', 'seed', 'version', 'restarts', 'eotSamples'] as const;

/** Which attacks of the ensemble fooled how many images (for logs and tests). */
export interface AutoAttackReport {
  /** Images misclassified before any attack. */
  clean: number;
  /** Images first fooled by each attack, in running order (standard: 'apgd-ce', 'apgd-t', 'fab-t', 'square'; plus adds 'apgd-dlr' and 'fab'). */
  fooledBy: Record<string, number>;
  /** Images no attack fooled (returned clean). */
  robust: number;
}

/** AutoAttack adversarial images [batch,h,w,c] in [0,1] within the `norm` ball of radius eps; robust images come back clean. Caller disposes. */
export function autoAttack(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: AutoAttackOptions, report?: (r: AutoAttackReport) => void): tf.Tensor4D {
  return runAutoAttack('autoattack', model, images, labels, options, report);
}

function runAutoAttack(attack: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: AutoAttackOptions, report?: (r: AutoAttackReport) => void): tf.Tensor4D {
  const o = options ?? ({} as AutoAttackOptions);
  // Own options first: every option error comes before the model is ever called.
  if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2' && o.norm !== 'l1') throw new Error(`${attack}: norm must be "linf", "l2" or "l1", got ${String(o.norm)}`);
  if (o.steps !== undefined) checkInteger(o.steps, `${attack}: steps`, 1);
  if (o.targetClasses !== undefined) checkInteger(o.targetClasses, `${attack}: targetClasses`, 0);
  if (o.queries !== undefined) checkInteger(o.queries, `${attack}: queries`, 0);
  if (o.fab !== undefined && typeof o.fab !== 'boolean') throw new Error(`${attack}: fab must be true or false, got ${String(o.fab)}`);
  if (o.version !== undefined && !AUTOATTACK_VERSIONS.includes(o.version)) throw new Error(`${attack}: version must be one of ${AUTOATTACK_VERSIONS.join(', ')}, got ${String(o.version)}`);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${attack}: restarts`, 1);
  if (o.version === 'rand') {
    const idle = (['queries', 'fab', 'targetClasses'] as const).filter((k) => o[k] !== undefined);
    if (idle.length) throw new Error(`${attack}: version "rand" runs APGD-CE and APGD-DLR only; ${idle.join(', ')} ${idle.length === 1 ? 'does' : 'do'} not apply`);
  }
  if (o.norm === 'l1') {
    if (o.version === 'plus') throw new Error(`${attack}: version "plus" adds Square, which has no L1 version here; use "standard" (fab=true adds FAB-T) or "rand"`);
    if ((o.version ?? 'standard') === 'standard' && o.steps !== undefined && o.steps < 3) throw new Error(`${attack}: the L1 eps schedule runs three phases and needs steps >= 3, got ${o.steps}`);
    if ((o.queries ?? 0) > 0) throw new Error(`${attack}: Square has no L1 version here, so queries does not apply (the L1 ensemble runs APGD-CE, APGD-T and, with fab=true, FAB-T)`);
  }
  const classes = validateAttack(attack, model, images, labels, { ...o }, AUTOATTACK_OPTIONS);
  const norm = o.norm ?? 'linf';
  const steps = o.steps ?? 100;
  const seed = o.seed ?? 0;
  const version = o.version ?? 'standard';
  const restarts = o.restarts ?? (version === 'plus' || (norm === 'l1' && version === 'standard') ? 5 : 1);
  const eotSamples = o.eotSamples ?? (version === 'rand' ? 20 : 1);
  const eps = o.eps;
  const fn = asLogitsFn(model);
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const y = labels.dataSync();
  const adv = Float32Array.from(images.dataSync());

  // Clean predictions, and per image the wrong classes from most to least likely (APGD-T's targets).
  const clean = tf.tidy(() => fn(images).arraySync() as number[][]);
  const fooled = clean.map((z, i) => argMax(z) !== y[i]);
  const byLikelihood = wrongClassesByLikelihood(clean, y);
  const result: AutoAttackReport = { clean: fooled.filter(Boolean).length, fooledBy: {}, robust: 0 };

  // Run `attack` on the images not fooled yet; keep the points that fool the model.
  const stage = (name: string, attack: (x: tf.Tensor4D, yy: tf.Tensor1D, idx: number[]) => tf.Tensor4D) => {
    const idx = fooled.flatMap((f, i) => (f ? [] : [i]));
    if (idx.length === 0) return;
    let count = 0;
    tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      const out = attack(tf.gather(images, at) as tf.Tensor4D, tf.gather(labels, at) as tf.Tensor1D, idx);
      const rows = out.dataSync();
      const pred = tf.argMax(fn(out), 1).dataSync();
      idx.forEach((i, k) => {
        if (pred[k] === y[i]) return;
        fooled[i] = true;
        adv.set(rows.subarray(k * d, (k + 1) * d), i * d);
        count++;
      });
    });
    result.fooledBy[name] = (result.fooledBy[name] ?? 0) + count;
  };

  if (eps > 0) {
    const targets = Math.min(o.targetClasses ?? (norm === 'l1' ? 5 : 9), classes - 1);
    // L1: FAB-T only when asked for (AutoAttack's L1 setting here is its APGD stages).
    const withFab = (o.fab ?? norm !== 'l1') && version !== 'rand';
    const queries = version === 'rand' || norm === 'l1' ? 0 : o.queries ?? 5000;
    const apgdCommon = { eps, steps, restarts, seed, eotSamples };
    // APGD in the ensemble's norm; L1's standard version on AutoAttack's 3·eps / 2·eps / eps schedule.
    type ApgdStage = Omit<Parameters<typeof apgd>[3], 'norm'>;
    const apgdIn = (x: tf.Tensor4D, yy: tf.Tensor1D, opts: ApgdStage) =>
      norm === 'l1' ? apgdL1(model, x, yy, { ...opts, epsSchedule: version === 'standard' }) : apgd(model, x, yy, { ...opts, norm });
    // APGD-T over the targets, one run per target (each on the images still robust); targeted DLR needs 4+ classes.
    const targeted = () => {
      if (classes < 4) return;
      for (let k = 0; k < targets; k++) {
        stage('apgd-t', (x, yy, idx) => {
          const t = tf.tensor1d(idx.map((i) => byLikelihood[i][k]), 'int32');
          return apgdIn(x, yy, { eps, steps, seed: subSeed(seed, k + 1), eotSamples, loss: 'dlr', targeted: true, targets: t });
        });
      }
    };
    // FAB-T runs its targets in the same order, each on the images still robust.
    const fabT = () => withFab && targets > 0 && stage('fab-t', (x, yy) => fab(model, x, yy, { eps, norm, steps, seed, targetClasses: targets }));
    const squareStage = () => queries > 0 && stage('square', (x, yy) => square(model, x, yy, { eps, norm, queries, seed }));

    stage('apgd-ce', (x, yy) => apgdIn(x, yy, { ...apgdCommon, loss: 'ce' }));
    if (version === 'standard') {
      targeted();
      fabT();
      squareStage();
    } else {
      // Untargeted DLR (needs 3+ classes), then for 'plus' untargeted FAB, Square and the targeted runs.
      if (classes >= 3) stage('apgd-dlr', (x, yy) => apgdIn(x, yy, { ...apgdCommon, loss: 'dlr' }));
      if (version === 'plus') {
        if (withFab) stage('fab', (x, yy) => fab(model, x, yy, { eps, norm, steps, restarts, seed }));
        squareStage();
        targeted();
        fabT();
      }
    }
  }
  result.robust = fooled.filter((f) => !f).length;
  report?.(result);
  return tf.tidy(() => project(tf.tensor4d(adv, [n, h, w, c]), images, { norm, eps }));
}

/** AutoAttack in the L2 ball (APGD-CE, APGD-T, FAB-T, Square, all L2). Caller disposes. */
export function autoAttackL2(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<AutoAttackOptions, 'norm'>, report?: (r: AutoAttackReport) => void): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('autoattack-l2: do not pass norm (it is always l2)');
  return runAutoAttack('autoattack-l2', model, images, labels, { ...options, norm: 'l2' }, report);
}

/** AutoAttack in the L1 ball (L1-APGD-CE with 5 restarts, L1-APGD-T against 5 targets, both on the eps schedule). Caller disposes. */
export function autoAttackL1(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<AutoAttackOptions, 'norm'>, report?: (r: AutoAttackReport) => void): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('autoattack-l1: do not pass norm (it is always l1)');
  return runAutoAttack('autoattack-l1', model, images, labels, { ...options, norm: 'l1' }, report);
}

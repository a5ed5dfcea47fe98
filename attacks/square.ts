/**
 * Square Attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020): a score-based random search that
 * never asks the model for a gradient. L-inf: it starts from vertical stripes of ±eps and then, one
 * model evaluation per step, proposes a random square window set to ±eps per channel, keeping the
 * proposal for each image whose objective improves. L2 (`squareL2`): the start is a grid of two-lobe
 * tiles at norm eps and each step moves mass between two windows (attacks/square_l2.ts). Window sizes
 * shrink on the paper's schedule.
 *
 * Why it is here: a JPEG defence can mask gradients (hard rounding has zero gradient almost
 * everywhere), which makes white-box attacks look weak without the model being robust. An attack that
 * only reads the model's outputs is the standard check (it is one of AutoAttack's four): when Square
 * finds adversarial examples that PGD misses, PGD's number was gradient masking, not robustness.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier, type Norm } from '../src/types.ts';
import type { LossName } from './loss.ts';
import { startSearch, type QueryReport } from './search.ts';
import { proposeWindowsL2, squareSideL2, tilesStartL2 } from './square_l2.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of the Square Attack. */
export interface SquareOptions {
  /** Budget on the 0-1 pixel scale in `norm` (required). */
  eps: number;
  /** 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** Model evaluations per image after the clean check; the stripe start is the first (default 5000, as AutoAttack). */
  queries?: number;
  /** Initial fraction of the image a square covers, halved on the paper's schedule (default 0.8, as AutoAttack in both norms). */
  pInit?: number;
  /** Objective: 'margin' (default, the paper's) or 'ce'. */
  loss?: LossName;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Seed of the stripes, window positions and signs (default 0): same seed, same images. */
  seed?: number;
  /** EOT: average the objective over this many calls of a randomised model per query (default 1). */
  eotSamples?: number;
}

export const SQUARE_OPTIONS = ['eps', 'norm', 'queries', 'pInit', 'loss', 'targeted', 'targets', 'seed', 'eotSamples'] as const;

/** Square side fraction p at step `it` of `queries`: pInit halved at the paper's steps (given for 10,000 queries, rescaled). */
export function squareFraction(pInit: number, it: number, queries: number): number {
  const t = Math.floor((it / queries) * 10000);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((b) => t > b).length;
  return pInit / 2 ** halvings;
}

/** Side in pixels of the square at fraction p of an h x w image: round(sqrt(p·h·w)), at least 1, below the image side. */
export function squareSide(p: number, h: number, w: number): number {
  return Math.max(1, Math.min(Math.round(Math.sqrt(p * h * w)), Math.min(h, w) - 1));
}

/** Square Attack adversarial images [batch,h,w,c] in [0,1] within the `norm` ball of radius eps (L-inf by default); no gradients used. Caller disposes. */
export function square(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SquareOptions, report?: QueryReport): tf.Tensor4D {
  return runSquare('square', model, images, labels, options, report);
}

/** Square Attack in the L2 ball (windows of a centre-weighted two-lobe pattern, mass moved between windows). Caller disposes. */
export function squareL2(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Omit<SquareOptions, 'norm'>, report?: QueryReport): tf.Tensor4D {
  if (options && 'norm' in options) throw new Error('square-l2: do not pass norm (it is always l2)');
  return runSquare('square-l2', model, images, labels, { ...options, norm: 'l2' }, report);
}

function runSquare(attack: string, model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SquareOptions, report?: QueryReport): tf.Tensor4D {
  // Own options first: every option error comes before the model is ever called.
  const queries = options?.queries ?? 5000;
  checkInteger(queries, `${attack}: queries`, 1);
  const pInit = options?.pInit ?? 0.8;
  if (typeof pInit !== 'number' || !(pInit > 0 && pInit <= 1)) throw new Error(`${attack}: pInit must be a number in (0, 1], got ${String(pInit)}`);
  const norm = options?.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`${attack}: norm must be "linf" or "l2", got ${String(norm)}`);
  validateAttack(attack, model, images, labels, { ...options }, SQUARE_OPTIONS);
  const eps = options.eps;
  const spec = { loss: options.loss ?? ('margin' as LossName), eotSamples: options.eotSamples, targets: options.targeted ? options.targets : undefined };
  const [, h, w, c] = images.shape;
  const d = h * w * c;
  const x = images.dataSync() as Float32Array;
  const rng = createRng(options.seed ?? 0);
  const search = startSearch(asLogitsFn(model), images, labels, spec, { norm, eps });
  const { best } = search;

  // Images already misclassified (or at the target) stay clean; the rest start from the norm's
  // initial perturbation (L-inf: vertical stripes; L2: a grid of two-lobe tiles).
  let active = search.unfooled(Array.from({ length: images.shape[0] }, (_, i) => i));
  if (eps > 0 && active.length > 0) {
    const rows = new Float32Array(active.length * d);
    active.forEach((i, k) => {
      const row = rows.subarray(k * d, (k + 1) * d);
      const xi = x.subarray(i * d, (i + 1) * d);
      if (norm === 'linf') stripesStart(row, xi, h, w, c, eps, rng);
      else tilesStartL2(row, xi, h, w, c, eps, rng);
    });
    const r = search.evaluate(active, rows);
    // The start replaces the clean image whatever its score (the paper's start): the search runs from there.
    active.forEach((i, k) => search.take(i, k, r));
    active = search.unfooled(active);

    for (let it = 1; it < queries && active.length > 0; it++) {
      const p = squareFraction(pInit, it, queries);
      const s = norm === 'linf' ? squareSide(p, h, w) : squareSideL2(p, h, w);
      const proposal = new Float32Array(active.length * d);
      active.forEach((i, k) => {
        const row = proposal.subarray(k * d, (k + 1) * d);
        row.set(best.subarray(i * d, (i + 1) * d));
        const xi = x.subarray(i * d, (i + 1) * d);
        if (norm === 'linf') proposeWindow(row, xi, s, h, w, c, eps, rng);
        else proposeWindowsL2(row, xi, s, h, w, c, eps, rng);
      });
      const r = search.evaluate(active, proposal);
      active.forEach((i, k) => search.offer(i, k, r, false));
      active = search.unfooled(active);
    }
  }
  report?.({ queries: search.trace(queries) });
  return search.result();
}

/** L-inf start: one random sign per column and channel (vertical stripes of ±eps), written into `adv` (one image, HWC). */
function stripesStart(adv: Float32Array, x: Float32Array, h: number, w: number, c: number, eps: number, rng: Rng): void {
  for (let col = 0; col < w; col++) {
    for (let ch = 0; ch < c; ch++) {
      const delta = rng.next() < 0.5 ? -eps : eps;
      for (let row = 0; row < h; row++) {
        const j = (row * w + col) * c + ch;
        adv[j] = x[j] + delta;
      }
    }
  }
}

/**
 * Set a random s x s window of `adv` (one image, HWC) to x ± eps, one sign per channel, resampling the
 * signs (up to 10 times) while the window would not change after clipping to [0,1], as the paper does.
 */
function proposeWindow(adv: Float32Array, x: Float32Array, s: number, h: number, w: number, c: number, eps: number, rng: Rng): void {
  const top = rng.int(h - s + 1);
  const left = rng.int(w - s + 1);
  const signs = new Float64Array(c);
  const value = (j: number, ch: number) => Math.fround(Math.min(1, Math.max(0, x[j] + signs[ch] * eps)));
  for (let attempt = 0; attempt < 10; attempt++) {
    for (let ch = 0; ch < c; ch++) signs[ch] = rng.next() < 0.5 ? -1 : 1;
    let changes = false;
    for (let row = top; row < top + s && !changes; row++) {
      for (let col = left; col < left + s && !changes; col++) {
        for (let ch = 0; ch < c; ch++) {
          const j = (row * w + col) * c + ch;
          if (Math.abs(value(j, ch) - adv[j]) > 1e-7) {
            changes = true;
            break;
          }
        }
      }
    }
    if (changes) break;
  }
  for (let row = top; row < top + s; row++) {
    for (let col = left; col < left + s; col++) {
      for (let ch = 0; ch < c; ch++) {
        const j = (row * w + col) * c + ch;
        adv[j] = x[j] + signs[ch] * eps;
      }
    }
  }
}

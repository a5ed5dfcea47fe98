/**
 * Sparse-RS (Croce, Andriushchenko, Singh, Flammarion, Hein, AAAI 2022), L0 pixel attack: a score-based
 * random search over which pixels to change. The budget eps is a number of pixels k (a pixel counts as
 * changed when any of its channels is). It starts from k random pixels, each set to a random corner of
 * the colour cube ({0,1}^c), and each step swaps a shrinking number of them for other pixels with new
 * random corners, keeping the swap for each image whose objective does not get worse. One model
 * evaluation per step and image; no gradients. The new pixels are drawn from every pixel outside the
 * kept part of the support, the vacated ones included, so a swap can also recolour a pixel in place:
 * then on a linear model no single swap improves only at the optimum (k best pixels at their best
 * corners), which the search reaches (tested).
 *
 * Why it is here: an L0 budget is the threat model in which a fixed 8x8 block quantiser sees the
 * attack's change concentrated in a few blocks, and a query attack does not care whether the rounding
 * has a gradient. `pgd-l0` is the white-box counterpart; the report's checks flag Sparse-RS beating it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import type { LossName } from './loss.ts';
import { startSearch, type QueryReport } from './search.ts';
import { checkInteger, validateAttack } from './validate.ts';

/** Options of Sparse-RS. */
export interface SparseRsOptions {
  /** Budget: the number of pixels that may change (a whole number, required). */
  eps: number;
  /** Model evaluations per image after the clean check; the random start is the first (default 5000). */
  queries?: number;
  /** Initial share of the k pixels swapped per step, halved on the Square Attack's schedule (default 0.3, as the paper for L0). */
  alphaInit?: number;
  /** Objective: 'margin' (default, the paper's) or 'ce'. */
  loss?: LossName;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Seed of the pixel choices and colours (default 0): same seed, same images. */
  seed?: number;
  /** EOT: average the objective over this many calls of a randomised model per query (default 1). */
  eotSamples?: number;
}

export const SPARSE_RS_OPTIONS = ['eps', 'queries', 'alphaInit', 'loss', 'targeted', 'targets', 'seed', 'eotSamples'] as const;

/** Pixels swapped at step `it` of `queries` for a budget of k pixels: alphaInit·k halved at the Square Attack's steps (for 10,000 queries, rescaled), at least 1. */
export function sparseRsSwaps(alphaInit: number, it: number, queries: number, k: number): number {
  const t = Math.floor((it / queries) * 10000);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((b) => t > b).length;
  return Math.max(1, Math.min(k, Math.round((alphaInit / 2 ** halvings) * k)));
}

/** Sparse-RS adversarial images [batch,h,w,c] in [0,1] differing from `images` in at most floor(eps) pixels; no gradients used. Caller disposes. */
export function sparseRs(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SparseRsOptions, report?: QueryReport): tf.Tensor4D {
  const name = 'sparse-rs';
  // Own options first: every option error comes before the model is ever called.
  const queries = options?.queries ?? 5000;
  checkInteger(queries, `${name}: queries`, 1);
  const alphaInit = options?.alphaInit ?? 0.3;
  if (typeof alphaInit !== 'number' || !(alphaInit > 0 && alphaInit <= 1)) throw new Error(`${name}: alphaInit must be a number in (0, 1], got ${String(alphaInit)}`);
  if (options && typeof options.eps === 'number' && options.eps >= 0 && Number.isFinite(options.eps) && !Number.isInteger(options.eps)) throw new Error(`${name}: eps must be a whole number of pixels, got ${options.eps}`);
  validateAttack(name, model, images, labels, { ...options }, SPARSE_RS_OPTIONS);
  const spec = { loss: options.loss ?? ('margin' as LossName), eotSamples: options.eotSamples, targets: options.targeted ? options.targets : undefined };
  const [n, h, w, c] = images.shape;
  const p = h * w;
  const d = p * c;
  const k = Math.min(options.eps, p);
  const x = images.dataSync() as Float32Array;
  const rng = createRng(options.seed ?? 0);
  const search = startSearch(asLogitsFn(model), images, labels, spec, { norm: 'l0', eps: k });
  const { best } = search;

  let active = search.unfooled(Array.from({ length: n }, (_, i) => i));
  if (k > 0 && active.length > 0) {
    // The changed pixels of each image's current best point (indices into h·w), in a fixed-size list.
    const support = new Map<number, Int32Array>();
    const rows = new Float32Array(active.length * d);
    active.forEach((i, j) => {
      const row = rows.subarray(j * d, (j + 1) * d);
      row.set(x.subarray(i * d, (i + 1) * d));
      const chosen = samplePixels(p, k, null, 0, rng);
      for (const q of chosen) setCorner(row, q, c, rng);
      support.set(i, chosen);
    });
    const r = search.evaluate(active, rows);
    // The start replaces the clean image whatever its score: the search runs from there.
    active.forEach((i, j) => search.take(i, j, r));
    active = search.unfooled(active);

    for (let it = 1; it < queries && active.length > 0; it++) {
      const m = sparseRsSwaps(alphaInit, it, queries, k);
      const proposal = new Float32Array(active.length * d);
      const proposed: Int32Array[] = [];
      active.forEach((i, j) => {
        const row = proposal.subarray(j * d, (j + 1) * d);
        row.set(best.subarray(i * d, (i + 1) * d));
        const xi = x.subarray(i * d, (i + 1) * d);
        const next = Int32Array.from(support.get(i)!);
        // m slots of the support: their pixels return to x, and m pixels outside the rest of the support
        // (the vacated ones included, so a swap can also recolour a pixel in place) take the slots with
        // new corners.
        const slots = samplePixels(k, m, null, 0, rng);
        const kept = new Uint8Array(p);
        for (const q of next) kept[q] = 1;
        for (const s of slots) {
          const old = next[s];
          kept[old] = 0;
          for (let ch = 0; ch < c; ch++) row[old * c + ch] = xi[old * c + ch];
        }
        const fresh = samplePixels(p, m, kept, k - m, rng);
        slots.forEach((s, t) => {
          setCorner(row, fresh[t], c, rng);
          next[s] = fresh[t];
        });
        proposed.push(next);
      });
      const r = search.evaluate(active, proposal);
      // Ties are accepted so that the search keeps moving where the objective is flat (a hard quantiser).
      active.forEach((i, j) => search.offer(i, j, r, true) && support.set(i, proposed[j]));
      active = search.unfooled(active);
    }
  }
  report?.({ queries: search.trace(queries) });
  return search.result();
}

/**
 * `count` distinct integers of [0, size) not marked in `excluded` (which is then marked; `marked` of its
 * entries are set), drawn by rejection when sparse, else by a partial shuffle.
 */
function samplePixels(size: number, count: number, excluded: Uint8Array | null, marked: number, rng: Rng): Int32Array {
  const out = new Int32Array(count);
  const free = size - marked;
  if (count > free) throw new Error(`sparse-rs: internal: ${count} pixels asked of ${free}`);
  if (count * 4 <= free) {
    const taken = excluded ?? new Uint8Array(size);
    for (let t = 0; t < count; t++) {
      let q = rng.int(size);
      while (taken[q]) q = rng.int(size);
      taken[q] = 1;
      out[t] = q;
    }
    return out;
  }
  const pool: number[] = [];
  for (let q = 0; q < size; q++) if (!excluded || !excluded[q]) pool.push(q);
  for (let t = 0; t < count; t++) {
    const j = t + rng.int(pool.length - t);
    [pool[t], pool[j]] = [pool[j], pool[t]];
    out[t] = pool[t];
    if (excluded) excluded[pool[t]] = 1;
  }
  return out;
}

/** Set pixel `q` of an HWC row to a uniformly random corner of the colour cube {0,1}^c. */
function setCorner(row: Float32Array, q: number, c: number, rng: Rng): void {
  for (let ch = 0; ch < c; ch++) row[q * c + ch] = rng.next() < 0.5 ? 0 : 1;
}

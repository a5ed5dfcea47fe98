/**
 * SimBA (Guo, Gardner, You, Wilson, Weinberger, ICML 2019, "Simple Black-box Adversarial Attacks"): a
 * score-based search along orthonormal directions, no gradients. Each image walks its own random order
 * of basis vectors q without replacement and, for each, tries x' − αq, then (when that does not raise
 * the objective) x' + αq, keeping the first that does; so every kept step raises the objective and each
 * direction costs one or two model evaluations. SimBA-DCT (`basis: 'dct'`, the default) draws q from the
 * whole-image 2-D DCT-II, the lowest `freqDim` x `freqDim` frequencies of every channel first (random
 * order), then ring by ring outwards, `stride` frequencies wide; `basis: 'pixel'` is SimBA on single
 * pixels. The perturbation lives in the L2 ball of radius eps: as long as the box is not hit, k kept
 * steps have norm exactly α·√k, and every candidate goes through the one shared projection.
 *
 * Why it is here: JPEG keeps an image's low frequencies and quantises the high ones away, so a search
 * confined to low-frequency directions asks the question a JPEG front end should be asked: does it
 * protect where JPEG lets the energy through? Like Square, it reads only the model's outputs (a check
 * for gradient masking).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../src/data/rng.ts';
import { dctMatrix } from '../src/jpeg/dct.ts';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import type { LossName } from './loss.ts';
import { startSearch, type QueryReport } from './search.ts';
import { checkInteger, checkPositive, validateAttack } from './validate.ts';

/** Options of SimBA. */
export interface SimbaOptions {
  /** L2 budget on the 0-1 pixel scale, summed over pixels (required). */
  eps: number;
  /** Step length α along each direction, in L2 (default min(0.2, eps): the paper's 0.2 for [0,1] images). */
  stepSize?: number;
  /** Model evaluations per image after the clean check (default 10000, as the paper's budget); an image also stops when every direction was tried. */
  queries?: number;
  /** 'dct' (default: whole-image DCT directions, low frequencies first) or 'pixel' (one pixel and channel per direction). */
  basis?: SimbaBasis;
  /** DCT: side of the lowest-frequency block searched first (default round(min(h, w) / 8), at least 1: 4 on 28-32 px, the paper's 28 on 224 px). */
  freqDim?: number;
  /** DCT: width in frequencies of each ring searched after the first block (default 1). */
  stride?: number;
  /** Objective: 'margin' (default, on logits) or 'ce'. */
  loss?: LossName;
  /** Aim for `targets` instead of away from `labels` (default false). */
  targeted?: boolean;
  /** Target class per example, required when targeted. */
  targets?: tf.Tensor1D;
  /** Seed of the direction orders (default 0): same seed, same images. */
  seed?: number;
  /** EOT: average the objective over this many calls of a randomised model per query (default 1). */
  eotSamples?: number;
}

/** SimBA's bases. */
export type SimbaBasis = 'dct' | 'pixel';

export const SIMBA_OPTIONS = ['eps', 'stepSize', 'queries', 'basis', 'freqDim', 'stride', 'loss', 'targeted', 'targets', 'seed', 'eotSamples'] as const;

/** Default lowest-frequency block side for an h x w image: round(min(h, w) / 8), at least 1. */
export function simbaFreqDim(h: number, w: number): number {
  return Math.max(1, Math.round(Math.min(h, w) / 8));
}

/** The orthonormal DCT-II matrix of size n (src/jpeg/dct.ts), flat row-major: row u is the 1-D basis vector of frequency u. */
export function dctBasisMatrix(n: number): Float64Array {
  return Float64Array.from(dctMatrix(n).flat());
}

/**
 * The order in which one image tries the DCT directions, as indices u·w·c + v·c + ch (frequency u down,
 * v across, channel ch): the block u, v < freqDim first, then the rings freqDim + k·stride <= max(u, v) <
 * freqDim + (k+1)·stride, each group in random order. A permutation of all h·w·c directions.
 */
export function dctOrder(h: number, w: number, c: number, freqDim: number, stride: number, rng: Rng): Int32Array {
  const groups: number[][] = [];
  const groupOf = (u: number, v: number) => {
    const r = Math.max(u, v);
    return r < freqDim ? 0 : 1 + Math.floor((r - freqDim) / stride);
  };
  for (let u = 0; u < h; u++) {
    for (let v = 0; v < w; v++) {
      const g = groupOf(u, v);
      while (groups.length <= g) groups.push([]);
      for (let ch = 0; ch < c; ch++) groups[g].push((u * w + v) * c + ch);
    }
  }
  const out = new Int32Array(h * w * c);
  let k = 0;
  for (const g of groups) {
    shuffle(g, rng);
    for (const j of g) out[k++] = j;
  }
  return out;
}

/** Random order of the h·w·c pixel directions. */
function pixelOrder(d: number, rng: Rng): Int32Array {
  const all = Array.from({ length: d }, (_, j) => j);
  shuffle(all, rng);
  return Int32Array.from(all);
}

/** Fisher-Yates, in place. */
function shuffle(a: number[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}

/** SimBA adversarial images [batch,h,w,c] in [0,1] within the L2 ball of radius eps; no gradients used. Caller disposes. */
export function simba(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: SimbaOptions, report?: QueryReport): tf.Tensor4D {
  const attack = 'simba';
  // Own options first: every option error comes before the model is ever called.
  const o = options ?? ({} as SimbaOptions);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${attack}: stepSize`);
  const queries = o.queries ?? 10000;
  checkInteger(queries, `${attack}: queries`, 1);
  const basis = o.basis ?? 'dct';
  if (basis !== 'dct' && basis !== 'pixel') throw new Error(`${attack}: basis must be "dct" or "pixel", got ${String(basis)}`);
  if (o.freqDim !== undefined) checkInteger(o.freqDim, `${attack}: freqDim`, 1);
  if (o.stride !== undefined) checkInteger(o.stride, `${attack}: stride`, 1);
  if (basis === 'pixel' && (o.freqDim !== undefined || o.stride !== undefined)) throw new Error(`${attack}: freqDim and stride belong to basis "dct", not "pixel"`);
  validateAttack(attack, model, images, labels, { ...o }, SIMBA_OPTIONS);
  const eps = o.eps;
  const alpha = o.stepSize ?? Math.min(0.2, eps);
  const spec = { loss: o.loss ?? ('margin' as LossName), eotSamples: o.eotSamples, targets: o.targeted ? o.targets : undefined };
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const freqDim = o.freqDim ?? simbaFreqDim(h, w);
  const stride = o.stride ?? 1;
  const rng = createRng(o.seed ?? 0);
  const search = startSearch(asLogitsFn(model), images, labels, spec, { norm: 'l2', eps });
  const { best } = search;
  let active = search.unfooled(Array.from({ length: n }, (_, i) => i));
  // Each of the d directions costs at most two queries, so fewer than `queries` may be all there is to spend.
  const budget = Math.min(queries, 2 * d);
  if (!(eps > 0) || active.length === 0) {
    report?.({ queries: search.trace(budget) });
    return search.result();
  }

  // Orders are drawn in image order, so an image's directions depend on the seed and its place in the batch.
  const orders = new Map<number, Int32Array>();
  for (const i of active) orders.set(i, basis === 'dct' ? dctOrder(h, w, c, freqDim, stride, rng) : pixelOrder(d, rng));
  const rowsH = basis === 'dct' ? dctBasisMatrix(h) : null;
  const rowsW = basis === 'dct' ? dctBasisMatrix(w) : null;
  /** Add s·q_j (direction j of the basis, unit L2 norm) to `row` (one image, HWC). */
  const addDirection = (row: Float32Array, j: number, s: number) => {
    if (basis === 'pixel') {
      row[j] += s;
      return;
    }
    const ch = j % c;
    const v = Math.floor(j / c) % w;
    const u = Math.floor(j / (c * w));
    for (let i = 0; i < h; i++) {
      const a = s * rowsH![u * h + i];
      for (let k = 0; k < w; k++) row[(i * w + k) * c + ch] += a * rowsW![v * w + k];
    }
  };
  const used = new Int32Array(n);
  const next = new Int32Array(n);
  // One direction per image per round: −α first, +α for the images it did not improve.
  while (active.length > 0) {
    const dirs = active.map((i) => orders.get(i)![next[i]++]);
    const minus = new Float32Array(active.length * d);
    active.forEach((i, k) => {
      const row = minus.subarray(k * d, (k + 1) * d);
      row.set(best.subarray(i * d, (i + 1) * d));
      addDirection(row, dirs[k], -alpha);
      used[i]++;
    });
    const r1 = search.evaluate(active, minus);
    const retry: number[] = [];
    const retryDirs: number[] = [];
    active.forEach((i, k) => {
      if (!search.offer(i, k, r1, false) && used[i] < queries) {
        retry.push(i);
        retryDirs.push(dirs[k]);
      }
    });
    if (retry.length > 0) {
      const plus = new Float32Array(retry.length * d);
      retry.forEach((i, k) => {
        const row = plus.subarray(k * d, (k + 1) * d);
        row.set(best.subarray(i * d, (i + 1) * d));
        addDirection(row, retryDirs[k], alpha);
        used[i]++;
      });
      const r2 = search.evaluate(retry, plus);
      retry.forEach((i, k) => search.offer(i, k, r2, false));
    }
    active = search.unfooled(active).filter((i) => used[i] < queries && next[i] < d);
  }
  report?.({ queries: search.trace(budget) });
  return search.result();
}

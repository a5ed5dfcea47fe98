/**
 * The bookkeeping shared by the score-based random searches (Square, Sparse-RS): candidate rows are
 * projected (the one budget enforcement), scored, and each image keeps its best point so far; a fooling
 * point beats any other, then the higher objective.
 */
import * as tf from '@tensorflow/tfjs';
import { evaluateObjective, type ObjectiveSpec } from './gradient.ts';
import { project, type Budget } from './project.ts';

/** Scores of candidate rows as the model saw them (after the projection). */
export interface Scored {
  seen: Float32Array;
  objective: Float32Array;
  success: Uint8Array | Int32Array | Float32Array;
}

/**
 * How many queries a search spent on each image before fooling it: `fooledAt[i]` is the query
 * (counted from 1, one per candidate scored, the clean check not counted) whose candidate first
 * fooled image i, 0 when the clean image already was, -1 when none did within `budget` queries.
 */
export interface QueryTrace {
  /** The most queries the search could spend on one image. */
  budget: number;
  fooledAt: Int32Array;
}

/** How a query-based attack hands its trace to the caller (the sweep records it per image). */
export type QueryReport = (report: { queries: QueryTrace }) => void;

/** Per-image best points of a search over host-side image rows (HWC, one row per image). */
export interface SearchState {
  /** Best point per image, rows of `d` values; starts at the clean images. */
  best: Float32Array;
  bestObjective: Float64Array;
  bestSuccess: Uint8Array;
  /** Score rows of the images `idx` (row j belongs to image idx[j]) after projecting them. */
  evaluate(idx: number[], rows: Float32Array): Scored;
  /** Make row j of `r` image i's best point unconditionally (a search's start). */
  take(i: number, j: number, r: Scored): void;
  /** Make row j of `r` image i's best point when it is better (`ties`: also when equally good); returns whether it was taken. */
  offer(i: number, j: number, r: Scored, ties: boolean): boolean;
  /** The images of `idx` not yet fooled (all of them at first: the clean check). */
  unfooled(idx: number[]): number[];
  /** The best points as a tensor, projected once more (bit for bit the same: they are inside). */
  result(): tf.Tensor4D;
  /** Queries spent so far per image (candidates scored, the clean check not counted). */
  queries: Int32Array;
  /** The per-image query trace, for a search whose most queries per image is `budget`. */
  trace(budget: number): QueryTrace;
}

/** Start a search: score the clean images (one model evaluation per image and EOT sample). */
export function startSearch(fn: (x: tf.Tensor4D) => tf.Tensor2D, images: tf.Tensor4D, labels: tf.Tensor1D, spec: ObjectiveSpec, budget: Budget): SearchState {
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const targets = spec.targets;
  const score = (idx: number[], rows: Float32Array): Scored =>
    tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      const x0 = tf.gather(images, at) as tf.Tensor4D;
      const cand = project(tf.tensor4d(rows, [idx.length, h, w, c]), x0, budget);
      const { objective, success } = evaluateObjective(fn, cand, tf.gather(labels, at) as tf.Tensor1D, { ...spec, targets: targets ? (tf.gather(targets, at) as tf.Tensor1D) : undefined });
      return { seen: cand.dataSync() as Float32Array, objective: objective.dataSync() as Float32Array, success: success.dataSync() as Float32Array };
    });
  const best = Float32Array.from(images.dataSync() as Float32Array);
  const bestObjective = new Float64Array(n);
  const bestSuccess = new Uint8Array(n);
  const queries = new Int32Array(n);
  const fooledAt = new Int32Array(n).fill(-1);
  const evaluate = (idx: number[], rows: Float32Array): Scored => {
    const r = score(idx, rows);
    for (const i of idx) queries[i]++;
    return r;
  };
  const take = (i: number, j: number, r: Scored) => {
    best.set(r.seen.subarray(j * d, (j + 1) * d), i * d);
    bestObjective[i] = r.objective[j];
    bestSuccess[i] = r.success[j] ? 1 : 0;
    // The query that scored row j is image i's latest one.
    if (bestSuccess[i] && fooledAt[i] < 0) fooledAt[i] = queries[i];
  };
  const all = Array.from({ length: n }, (_, i) => i);
  const clean = score(all, best);
  all.forEach((i) => {
    bestObjective[i] = clean.objective[i];
    bestSuccess[i] = clean.success[i] ? 1 : 0;
    if (bestSuccess[i]) fooledAt[i] = 0;
  });
  return {
    best, bestObjective, bestSuccess, evaluate, take, queries,
    trace: (budget) => ({ budget, fooledAt: Int32Array.from(fooledAt) }),
    offer(i, j, r, ties) {
      const succ = r.success[j] ? 1 : 0;
      const o = r.objective[j];
      const better = (succ && !bestSuccess[i]) || (succ === bestSuccess[i] && (o > bestObjective[i] || (ties && o === bestObjective[i])));
      if (better) take(i, j, r);
      return better;
    },
    unfooled: (idx) => idx.filter((i) => !bestSuccess[i]),
    result: () => tf.tidy(() => project(tf.tensor4d(best, [n, h, w, c]), images, budget)),
  };
}

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
}

/** Start a search: score the clean images (one model evaluation per image and EOT sample). */
export function startSearch(fn: (x: tf.Tensor4D) => tf.Tensor2D, images: tf.Tensor4D, labels: tf.Tensor1D, spec: ObjectiveSpec, budget: Budget): SearchState {
  const [n, h, w, c] = images.shape;
  const d = h * w * c;
  const targets = spec.targets;
  const evaluate = (idx: number[], rows: Float32Array): Scored =>
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
  const take = (i: number, j: number, r: Scored) => {
    best.set(r.seen.subarray(j * d, (j + 1) * d), i * d);
    bestObjective[i] = r.objective[j];
    bestSuccess[i] = r.success[j] ? 1 : 0;
  };
  const all = Array.from({ length: n }, (_, i) => i);
  const clean = evaluate(all, best);
  all.forEach((i) => {
    bestObjective[i] = clean.objective[i];
    bestSuccess[i] = clean.success[i] ? 1 : 0;
  });
  return {
    best, bestObjective, bestSuccess, evaluate, take,
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

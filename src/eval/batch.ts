/** One batch of a sweep cell, as the sweep thread and its worker threads both run it. */
import * as tf from '@tensorflow/tfjs';
import { normPerExample, projectOrClean } from '../../attacks/project.ts';
import type { AttackReport } from '../../attacks/index.ts';
import type { QueryTrace } from '../../attacks/search.ts';
import type { Norm } from '../types.ts';

/** Per-example results of one batch: 1 = classified correctly; norm of the perturbation (0-1 pixel scale). */
export interface BatchResult {
  correct: Uint8Array;
  norms: Float32Array;
  /** For ensembles (AutoAttack): images each stage fooled first, as the attack reported them. */
  stages?: Record<string, number>;
  /** For query-based searches (Square, SimBA, Sparse-RS, SPSA): the query that first fooled each image of the batch. */
  queries?: QueryTrace;
  /** A shared minimal-norm search (evalBatchShared): the result at each of its budgets, in order. */
  perEps?: BatchResult[];
}

/** How an attack reports what the correctness bits do not show (the registry's AttackReport: stage counts, query traces). */
export type StageReport = AttackReport;

/**
 * Per-example correctness (after `attack`, when given) and perturbation norms of one batch of
 * images in [0,1]; every tensor it makes is disposed. `what` names the cell in errors.
 */
export function evalBatch(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, norm: Norm,
  attack: ((x: tf.Tensor4D, y: tf.Tensor1D, report: StageReport) => tf.Tensor4D) | null, what: string,
): BatchResult {
  let stages: Record<string, number> | undefined;
  let queries: QueryTrace | undefined;
  const [c, d] = tf.tidy(() => {
    let adv = x;
    if (attack) {
      adv = attack(x, y, (r) => {
        if (r.fooledBy) stages = { ...r.fooledBy };
        if (r.queries) queries = r.queries;
      });
      if (!adv || adv.shape.join() !== x.shape.join()) throw new Error(`${what}: attack returned shape [${adv?.shape}] for input [${x.shape}]`);
    }
    const pred = logitsFn(adv).argMax(-1);
    const correct = pred.equal(y.toInt()).toInt();
    const norms = normPerExample(adv.sub(x) as tf.Tensor4D, norm);
    return [correct, norms];
  });
  const out: BatchResult = { correct: Uint8Array.from(c.dataSync()), norms: Float32Array.from(d.dataSync()), ...(stages ? { stages } : {}), ...(queries ? { queries } : {}) };
  tf.dispose([c, d]);
  return out;
}

/**
 * One minimal-norm search answering several budgets: `search` finds each image's least-norm example
 * once, and each eps > 0 gets what the budgeted attack returns from those points (projected onto the
 * eps ball, kept where still misclassified, else the clean image), evaluated as `evalBatch` does.
 * Returns the results in `epsilons` order under `perEps`.
 */
export function evalBatchShared(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, norm: Norm,
  search: (x: tf.Tensor4D, y: tf.Tensor1D) => tf.Tensor4D, epsilons: number[], what: string,
): BatchResult {
  const found = search(x, y);
  try {
    const perEps = epsilons.map((eps) => {
      if (!(eps > 0)) throw new Error(`${what}: a shared search answers budgets > 0, got ${eps}`);
      return evalBatch(logitsFn, x, y, norm, () => projectOrClean(logitsFn, found, x, y, { norm, eps }), what);
    });
    return { correct: new Uint8Array(0), norms: new Float32Array(0), perEps };
  } finally {
    found.dispose();
  }
}

/**
 * Running an attack over a list of budgets (Foolbox-3 style): one result per epsilon, each carrying
 * its ThreatModel, so no report can mix scales or norms. Plus a batched evaluation over a dataset.
 */
import * as tf from '@tensorflow/tfjs';
import type { Epsilon } from '../src/eps.ts';
import { asLogitsFn, type Classifier, type Norm, type ThreatModel } from '../src/types.ts';
import { getAttack, type AttackInfo, type AttackOptions } from './index.ts';
import { projectOrClean } from './project.ts';
import type { QueryTrace } from './search.ts';
import { checkImages, checkInteger, checkLabels, checkModelOutput, checkNonNegative } from './validate.ts';

/** Result of one attack at one epsilon. */
export interface EpsilonResult {
  threat: ThreatModel;
  /** Adversarial images (the clean images for eps = 0); the caller disposes. */
  adversarial: tf.Tensor4D;
  /** Per example: is the model still correct on the adversarial image. */
  correct: boolean[];
  /** Fraction correct, in [0,1]. */
  accuracy: number;
  /** Ensembles (AutoAttack): images each stage fooled first. */
  stages?: Record<string, number>;
  /** Query-based searches (Square, SimBA, Sparse-RS, SPSA): the query that first fooled each image. */
  queries?: QueryTrace;
}

/** Per example: argmax of the model's logits equals the label. */
export function correctness(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D): boolean[] {
  const eq = tf.tidy(() => tf.equal(tf.argMax(asLogitsFn(model)(images), 1), tf.cast(labels, 'int32')));
  const out = Array.from(eq.dataSync(), (v) => v === 1);
  eq.dispose();
  return out;
}

function resolve(attack: string | AttackInfo): AttackInfo {
  return typeof attack === 'string' ? getAttack(attack) : attack;
}

/**
 * Records take their threat model from the registry entry, so options must not switch the attack to
 * another norm (an L2 run recorded as L-inf would put L2 numbers in an L-inf table).
 */
export function checkNormOption(info: Pick<AttackInfo, 'name' | 'norm'>, options: Record<string, unknown> | undefined): void {
  const norm = options?.norm;
  if (norm === undefined || norm === info.norm) return;
  throw new Error(`options.norm: ${info.name} is the ${info.norm} attack and its results are recorded as ${info.norm}; for ${String(norm)} use the attack registered for that norm (e.g. apgd-l2, fab-l2, square-l2, autoattack-l2)`);
}

function checkEpsilons(epsilons: Epsilon[]): void {
  if (!Array.isArray(epsilons) || epsilons.length === 0) throw new Error('epsilons: expected a non-empty list of {value, label}');
  epsilons.forEach((e, i) => checkNonNegative(e?.value, `epsilons[${i}] (${e?.label})`));
}

/**
 * Attack `images` at each epsilon (eps = 0 means no attack: the clean images). `options` must not
 * contain eps. One result per epsilon, in the given order. With `surrogate`, a transfer attack: the
 * images are crafted on the surrogate and judged by `model`.
 */
export function attackOverEpsilons(
  attack: string | AttackInfo,
  model: Classifier,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  epsilons: Epsilon[],
  options: Omit<AttackOptions, 'eps'> = {},
  { surrogate }: { surrogate?: Classifier } = {},
): EpsilonResult[] {
  const info = resolve(attack);
  checkEpsilons(epsilons);
  if ('eps' in options) throw new Error('options: do not pass eps; give the budgets in epsilons');
  checkNormOption(info, options);
  const results: EpsilonResult[] = [];
  // A search that ignores eps (DeepFool, HopSkipJump, C&W, EAD) runs once; each eps takes what the
  // budgeted attack would return from its points. A transfer run keeps the per-eps path (the surrogate
  // judges), and so does a targeted one (success means reaching the target).
  const positive = epsilons.filter((e) => e.value > 0).map((e) => e.value);
  const found = info.sharedSearch && info.minimal && !surrogate && !options.targeted && positive.length > 0
    ? info.minimal(model, images, labels, { ...options, eps: Math.max(...positive) }).adversarial
    : null;
  try {
    for (const e of epsilons) {
      let stages: Record<string, number> | undefined;
      let queries: QueryTrace | undefined;
      const adversarial = e.value === 0
        ? tf.clone(images)
        : found
          ? projectOrClean(asLogitsFn(model), found, images, labels, { norm: info.norm, eps: e.value })
          : info.run(surrogate ?? model, images, labels, { ...options, eps: e.value }, (r) => {
            if (r.fooledBy) stages = { ...r.fooledBy };
            if (r.queries) queries = r.queries;
          });
      const correct = correctness(model, adversarial, labels);
      results.push({
        threat: { norm: info.norm, eps: e.value, epsLabel: e.label, bounds: [0, 1] },
        adversarial,
        correct,
        accuracy: correct.filter(Boolean).length / correct.length,
        ...(stages ? { stages } : {}),
        ...(queries && !surrogate ? { queries } : {}),
      });
    }
  } catch (err) {
    tf.dispose(results.map((r) => r.adversarial));
    throw err;
  } finally {
    found?.dispose();
  }
  return results;
}

/** Images and labels of a dataset, as `ImageDataset` in src/data holds them (pixels in [0,1], NHWC, row-major). */
export interface LabelledImages {
  images: Float32Array;
  labels: Int32Array;
  height: number;
  width: number;
  channels: number;
}

/** Adversarial images kept for inspection: examples 0..k-1 of the dataset, pixels 0-1, NHWC row-major. */
export interface AdversarialExamples {
  images: Float32Array;
  /** The model's predicted class on each kept image. */
  predictions: Int32Array;
}

/** Per-epsilon outcome over a whole dataset. */
export interface DatasetEpsilonResult {
  threat: ThreatModel;
  /** 1 if the model stays correct on example i, else 0. */
  correct: Uint8Array;
  accuracy: number;
  /** Ensembles (AutoAttack): images each stage fooled first, summed over the batches. */
  stages?: Record<string, number>;
  /** Query-based searches: the query that first fooled each example (0: misclassified clean, -1: never), with the search's budget. */
  queries?: QueryTrace;
  /** With `examples: k`: the adversarial images of the dataset's first k examples and the model's class for each. */
  examples?: AdversarialExamples;
}

/**
 * Attack every example of `data` in batches of `batchSize`, at each epsilon; returns per-example
 * correctness. Batch b of an attack that takes a seed uses options.seed + b (default seed 0) so results
 * do not depend on which batches ran before; ensembles' stage counts are summed over the batches.
 * Disposes everything it creates; `onBatch` (optional) reports progress as examples done; `surrogate`
 * makes it a transfer attack (crafted on the surrogate, judged by `model`).
 */
export function evaluateAttackOnDataset(
  attack: string | AttackInfo,
  model: Classifier,
  data: LabelledImages,
  epsilons: Epsilon[],
  { batchSize = 64, options = {}, onBatch, surrogate, examples = 0 }: { batchSize?: number; options?: Omit<AttackOptions, 'eps'>; onBatch?: (done: number, total: number) => void; surrogate?: Classifier; examples?: number } = {},
): DatasetEpsilonResult[] {
  const info = resolve(attack);
  checkEpsilons(epsilons);
  checkNormOption(info, options);
  checkInteger(examples, 'examples', 0);
  const n = data.labels.length;
  const pixels = data.height * data.width * data.channels;
  const k = Math.min(examples, n);
  const kept = epsilons.map(() => ({ images: new Float32Array(k * pixels), predictions: new Int32Array(k) }));
  const correct = epsilons.map(() => new Uint8Array(n));
  const stages: (Record<string, number> | undefined)[][] = epsilons.map(() => []);
  const traces: (QueryTrace | undefined)[][] = epsilons.map(() => []);
  const baseSeed = typeof options.seed === 'number' ? options.seed : 0;
  // Per-batch seeds only for attacks that take one (FGSM is deterministic and rejects a seed).
  const seeded = 'seed' in info.defaults || 'seed' in options;
  forEachBatch(model, data, batchSize, (x, y, start, b) => {
    const perEps = attackOverEpsilons(info, model, x, y, epsilons, seeded ? { ...options, seed: baseSeed + b } : options, { surrogate });
    perEps.forEach((r, i) => {
      r.correct.forEach((c, j) => (correct[i][start + j] = c ? 1 : 0));
      stages[i].push(r.stages);
      traces[i].push(r.queries);
      // The images this very evaluation judged, not a re-run: same seeds, same batch.
      const take = Math.min(k - start, r.adversarial.shape[0]);
      if (take > 0) {
        const part = r.adversarial.slice(0, take);
        kept[i].images.set(part.dataSync(), start * pixels);
        const pred = tf.tidy(() => tf.argMax(asLogitsFn(model)(part), 1));
        kept[i].predictions.set(pred.dataSync(), start);
        tf.dispose([part, pred]);
      }
      r.adversarial.dispose();
    });
  }, onBatch);
  return epsilons.map((e, i) => {
    const merged = mergeStages(stages[i]);
    // A transfer attack's queries went to the surrogate: no trace for the judged model.
    const queries = surrogate ? undefined : mergeTraces(traces[i]);
    return {
      threat: { norm: info.norm, eps: e.value, epsLabel: e.label, bounds: [0, 1] as [number, number] },
      correct: correct[i],
      accuracy: correct[i].reduce((s, v) => s + v, 0) / n,
      ...(merged ? { stages: merged } : {}),
      ...(queries ? { queries } : {}),
      ...(k > 0 ? { examples: kept[i] } : {}),
    };
  });
}

/** Concatenate per-batch query traces in batch order; undefined unless every batch reported one (their budgets must agree). */
export function mergeTraces(parts: (QueryTrace | undefined)[]): QueryTrace | undefined {
  if (!parts.length || parts.some((p) => !p)) return undefined;
  const budget = parts[0]!.budget;
  if (parts.some((p) => p!.budget !== budget)) throw new Error(`query traces: batches report different budgets (${parts.map((p) => p!.budget).join(', ')})`);
  const fooledAt = new Int32Array(parts.reduce((s, p) => s + p!.fooledAt.length, 0));
  let at = 0;
  for (const p of parts) {
    fooledAt.set(p!.fooledAt, at);
    at += p!.fooledAt.length;
  }
  return { budget, fooledAt };
}

/** Sum per-batch stage counts (in batch order, so the keys come in the ensemble's running order); undefined when no batch reported any. */
export function mergeStages(parts: (Record<string, number> | undefined)[]): Record<string, number> | undefined {
  let out: Record<string, number> | undefined;
  for (const p of parts) {
    if (!p) continue;
    out ??= {};
    for (const [k, v] of Object.entries(p)) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

/**
 * Check `data` and `batchSize`, validate the first batch (pixel range, labels, model output) before
 * the long loop, then call `fn` on each batch (b-th batch from example `start`) and dispose its tensors.
 */
function forEachBatch(
  model: Classifier, data: LabelledImages, batchSize: number,
  fn: (x: tf.Tensor4D, y: tf.Tensor1D, start: number, b: number) => void, onBatch?: (done: number, total: number) => void,
): void {
  checkInteger(batchSize, 'batchSize', 1);
  const pixels = data.height * data.width * data.channels;
  const n = data.labels.length;
  if (n === 0) throw new Error('data: the dataset is empty');
  if (data.images.length !== n * pixels) {
    throw new Error(`data: images hold ${data.images.length} values but ${n} labels x ${data.height}x${data.width}x${data.channels} need ${n * pixels}`);
  }
  const batch = (start: number, m: number) => ({
    x: tf.tensor4d(data.images.subarray(start * pixels, (start + m) * pixels), [m, data.height, data.width, data.channels]),
    y: tf.tensor1d(data.labels.subarray(start, start + m), 'int32'),
  });
  {
    const m = Math.min(batchSize, n);
    const { x, y } = batch(0, m);
    try {
      checkImages(x, 'data: images');
      checkLabels(y, m, checkModelOutput(model, x, 'model'), 'data: labels');
    } finally {
      tf.dispose([x, y]);
    }
  }
  for (let start = 0, b = 0; start < n; start += batchSize, b++) {
    const m = Math.min(batchSize, n - start);
    const { x, y } = batch(start, m);
    try {
      fn(x, y, start, b);
    } finally {
      tf.dispose([x, y]);
    }
    onBatch?.(start + m, n);
  }
}

/** A minimal-norm attack as `fabMinimal` is one: least-norm adversarial examples and their norms (Infinity: none found). */
export type MinimalNormAttack = (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: AttackOptions) => { adversarial: tf.Tensor4D; norms: Float64Array };

/**
 * Least-norm adversarial perturbation sizes (0-1 pixel scale) for every example of `data`, from one
 * run of a minimal-norm attack per batch (batch b with seed options.seed + b, as evaluateAttackOnDataset);
 * 0 for examples misclassified clean, Infinity where none was found.
 */
export function minimalNormsOnDataset(
  attack: MinimalNormAttack,
  model: Classifier,
  data: LabelledImages,
  { batchSize = 64, options, onBatch, seeded = true }: { batchSize?: number; options: AttackOptions; onBatch?: (done: number, total: number) => void; seeded?: boolean },
): Float64Array {
  const norms = new Float64Array(data.labels.length);
  const baseSeed = typeof options.seed === 'number' ? options.seed : 0;
  forEachBatch(model, data, batchSize, (x, y, start, b) => {
    // `seeded: false` for deterministic attacks that take no seed (C&W).
    const r = attack(model, x, y, seeded ? { ...options, seed: baseSeed + b } : options);
    r.adversarial.dispose();
    norms.set(r.norms, start);
  }, onBatch);
  return norms;
}

/**
 * Per-eps correctness implied by least-norm perturbation sizes: example i counts as correct at eps
 * when no adversarial example within eps was found (norm > eps). One run answers every eps (as
 * Foolbox evaluates minimisation attacks); it bounds robust accuracy from above, like any attack.
 */
export function accuracyFromMinimalNorms(norms: ArrayLike<number>, epsilons: Epsilon[], norm: Norm): DatasetEpsilonResult[] {
  checkEpsilons(epsilons);
  const n = norms.length;
  if (n === 0) throw new Error('norms: empty');
  for (let i = 0; i < n; i++) {
    if (!(norms[i] >= 0)) throw new Error(`norms: entry ${i} is ${norms[i]}; expected a size >= 0 (Infinity: not fooled)`);
  }
  return epsilons.map((e) => {
    const correct = Uint8Array.from(Array.from(norms, (v) => (v > e.value ? 1 : 0)));
    return {
      threat: { norm, eps: e.value, epsLabel: e.label, bounds: [0, 1] as [number, number] },
      correct,
      accuracy: correct.reduce((s, v) => s + v, 0) / n,
    };
  });
}

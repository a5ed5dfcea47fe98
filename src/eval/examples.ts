/**
 * Adversarial examples of an evaluation, as pictures beside its report: for each evaluated series
 * (model x JPEG mode, first seed), the attack that left the fewest images correct at the largest eps
 * runs again on the first k images of the evaluated set, at every eps > 0, with the seed of that cell's
 * first batch. The images are crafted for the pictures (a batch of k draws other random starts than
 * the sweep's batch), so they illustrate the cells rather than reproduce them image for image.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { writeAdversarialExamples, type ExampleGrid } from '../report/examples.ts';
import type { ReportExample } from '../report/model.ts';
import type { Epsilon } from '../eps.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { asLogitsFn, type Classifier, type Norm } from '../types.ts';
import { CLEAN_ATTACK, TRANSFER_PARAMS, attackOptions, canonicalParams, cellKey, type CellRecord } from './records.ts';
import { cellSeed, onSurrogate, type AttackFn } from './sweep.ts';

/** One picture file of a report (series, attack, png and json paths relative to the report's directory). */
export type ExampleFile = ReportExample;

/** A series to draw: the model instance and the JPEG mode its records were made in (null: none). */
export interface ExampleSeries {
  label: string;
  model: Classifier;
  jpegMode: string | null;
  /** Record identity of this instance: its records are found by these. */
  name: string;
  modelSeed: number;
}

/** An attack of the sweep, as runSweep was given it. */
export interface ExampleAttack {
  name: string;
  params: Record<string, unknown>;
  fn: AttackFn;
  norm: Norm;
  /** Whether the sweep passed a derived seed. */
  seeded: boolean;
  /** This attack's budgets when they differ from `ExampleOptions.epsilons` (an evaluation mixing norms). */
  epsilons?: Epsilon[];
}

export interface ExampleOptions {
  /** Report directory: pictures go to examples/<series>/examples.{png,json} under it. */
  outDir: string;
  /** Images per picture (the first k of the evaluated set). */
  k: number;
  series: ExampleSeries[];
  attacks: ExampleAttack[];
  epsilons: Epsilon[];
  records: CellRecord[];
  /** The evaluated images (pixels 0-1, NHWC) and labels. */
  images: tf.Tensor4D;
  labels: tf.Tensor1D;
  /** The sweep's seed (cell seeds derive from it). */
  seed: number;
  classNames?: string[];
  meta?: Record<string, unknown>;
}

/** Whether record `r` was made by attack `a` (same name and parameters, transfer keys aside). */
function madeBy(a: Pick<ExampleAttack, 'name' | 'params'>, r: CellRecord): boolean {
  return a.name === r.attack && canonicalParams(attackOptions(a.params)) === canonicalParams(attackOptions(r.attackParams));
}

/**
 * The record of `s` that decides which attack to draw: lowest accuracy at the largest eps, first attack on ties; null when none.
 * Budgets of different norms are not comparable, so only the norm of the first attack with records counts.
 */
export function strongestAttackRecord(records: CellRecord[], s: Pick<ExampleSeries, 'name' | 'modelSeed' | 'jpegMode'>, attacks: Pick<ExampleAttack, 'name' | 'params'>[]): CellRecord | null {
  const order = (r: CellRecord) => attacks.findIndex((a) => madeBy(a, r));
  // Transfer cells are crafted on another model: they picture the surrogate, not this model's weakness.
  const ours = records.filter((r) => r.model === s.name && r.modelSeed === s.modelSeed && (r.jpegMode ?? null) === s.jpegMode && r.attack !== CLEAN_ATTACK && !TRANSFER_PARAMS.some((k) => r.attackParams?.[k] !== undefined) && order(r) >= 0);
  if (!ours.length) return null;
  const norm = ours.reduce((first, r) => (order(r) < order(first) ? r : first)).threat.norm;
  const mine = ours.filter((r) => r.threat.norm === norm);
  const top = Math.max(...mine.map((r) => r.threat.eps));
  const atTop = mine.filter((r) => r.threat.eps === top);
  return atTop.reduce((best, r) => (r.accuracy < best.accuracy || (r.accuracy === best.accuracy && order(r) < order(best)) ? r : best));
}

/** A file-system-safe name for a series label: "jpeg-dl [soft]" -> "jpeg-dl-soft". */
export function seriesSlug(label: string): string {
  return label.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-+|-+$/g, '') || 'model';
}

/** Craft and write the pictures; returns one entry per series drawn (series without attack records are skipped). */
export function writeEvaluationExamples(o: ExampleOptions): ExampleFile[] {
  if (!Number.isInteger(o.k) || o.k < 1) throw new Error(`examples: k must be a positive integer, got ${String(o.k)}`);
  const k = Math.min(o.k, o.labels.shape[0]);
  const [, h, w, c] = o.images.shape;
  const x = tf.tidy(() => tf.slice(o.images, [0, 0, 0, 0], [k, h, w, c]));
  const y = tf.tidy(() => tf.slice(o.labels, [0], [k]));
  const out: ExampleFile[] = [];
  try {
    const clean = x.dataSync() as Float32Array;
    const labels = Int32Array.from(y.dataSync());
    for (const s of o.series) {
      const rec = strongestAttackRecord(o.records, s, o.attacks);
      if (!rec) continue;
      const attack = o.attacks.find((a) => madeBy(a, rec))!;
      // In the JPEG mode of the series' records, restored after (as a sweep's surrogate is).
      const file = onSurrogate(s.model, s.label, s.jpegMode, (): ExampleFile | null => {
        const predict = (v: tf.Tensor4D) => tf.tidy(() => Int32Array.from(tf.argMax(asLogitsFn(s.model)(v), 1).dataSync()));
        const perEps: ExampleGrid['perEps'] = [];
        for (const e of attack.epsilons ?? o.epsilons) {
          if (e.value === 0) continue;
          const options: Record<string, unknown> = { ...attackOptions(attack.params), eps: e.value };
          const key = cellKey({ model: s.name, variant: rec.variant, modelSeed: s.modelSeed, jpegMode: s.jpegMode, attack: attack.name, attackParams: attack.params, threat: { norm: attack.norm, eps: e.value, epsLabel: e.label, bounds: [0, 1] } });
          const firstBatchSeed = cellSeed(o.seed, key) & 0x7fffffff;
          if (attack.seeded) options.seed = firstBatchSeed;
          // A randomised model draws as in the cell's first batch.
          reseedRandomLayers(s.model, firstBatchSeed);
          const adv = attack.fn(s.model, x, y, options);
          try {
            perEps.push({ epsLabel: e.label, eps: e.value, images: Float32Array.from(adv.dataSync()), predictions: predict(adv) });
          } finally {
            adv.dispose();
          }
        }
        if (!perEps.length) return null;
        const rel = join('examples', seriesSlug(s.label));
        const dir = join(o.outDir, rel);
        writeAdversarialExamples(dir, { height: h, width: w, channels: c, clean, labels, cleanPredictions: predict(x), perEps, indices: Array.from({ length: k }, (_, i) => i), ...(o.classNames ? { classNames: o.classNames } : {}) }, {
          ...(o.meta ?? {}),
          series: s.label,
          attack: attack.name,
          attackParams: attack.params,
          norm: attack.norm,
          chosenBecause: `lowest accuracy at the largest eps (${rec.threat.epsLabel}: ${(100 * rec.accuracy).toFixed(1)}%) among this series' attacks`,
          note: 'crafted again for the picture on the first k evaluated images with the seed of the cell\'s first batch; a batch of k draws other random starts than the sweep\'s batch',
        });
        return { series: s.label, attack: attack.name, attackParams: attack.params, png: join(rel, 'examples.png'), json: join(rel, 'examples.json') };
      });
      if (file) out.push(file);
    }
  } finally {
    tf.dispose([x, y]);
  }
  return out;
}

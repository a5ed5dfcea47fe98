/**
 * Gradient-masking diagnostics of saved models (Carlini et al. 2019's checklist, measured): per model
 * x JPEG mode, one probe record (zero gradients, finite differences, the loss along the gradient sign
 * and along random directions, loss surfaces around the first images) and one record per attack run of
 * the convergence curve (accuracy after 1, 2, 5, ... steps) and of the unbounded attack (eps = the
 * whole box, which must reach 0% on any model). Records are appended and fsynced as they finish, so a
 * killed run resumes; every number of the report is rendered from them.
 */
import * as tf from '@tensorflow/tfjs';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { keySeed } from '../data/rng.ts';
import { findNamedAttack, namedAttackNames } from '../eval/named-attacks.ts';
import { appendRecord, packBits } from '../eval/records.ts';
import { readJsonLines } from '../io/jsonl.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { jpegLayersOf, withJpegMode, type JpegMode } from '../train/jpeg-params.ts';
import { asLogitsFn } from '../types.ts';
import { lossSurface, probeBatch, resolveProbeOptions } from './probes.ts';
import type { LossName } from '../../attacks/loss.ts';

/** What every record of one diagnosis shares; resuming refuses records of another setting. */
export interface DiagnoseSetting {
  dataset: string;
  n: number;
  seed: number;
  /** L-inf budget (0-1 scale) of the probes and the convergence curve, and its label ("8/255"). */
  eps: number;
  epsLabel: string;
  loss: LossName;
  directions: number;
  fdStep: number;
  profile: number[];
}

/** Identity of a series: model, seed, JPEG mode. */
interface SeriesIds {
  model: string;
  variant: string;
  modelSeed: number;
  jpegMode: JpegMode | null;
}

/** The probes of one series over all images (per-image arrays in dataset order; profiles by t, then image). */
export interface ProbeRecord extends DiagnoseSetting, SeriesIds {
  schema: 1;
  kind: 'diagnose-probe';
  /** Values per image (h·w·c), to turn mean |gradient| into its L1 norm. */
  values: number;
  objective: number[];
  /** Per image, 1 = right on the clean image (base64 bit set). */
  correctBits: string;
  gradMean: number[];
  alongGradient: number[][];
  randomMean: number[][];
  randomMax: number[][];
  fdError: number[];
  /** Objective on a size x size grid around the first images (src/diagnose/probes.ts lossSurface). */
  surfaces: { index: number; label: number; size: number; values: number[] }[];
  seconds: number;
}

/** One attack run: `steps` steps at `attackEps` (the setting's eps, or the whole box for the unbounded check). */
export interface AttackRecord extends DiagnoseSetting, SeriesIds {
  schema: 1;
  kind: 'diagnose-attack';
  attack: string;
  steps: number;
  attackEps: number;
  unbounded: boolean;
  /** Independent runs, each image keeping its worst case (absent: 1). */
  restarts?: number;
  correct: number;
  accuracy: number;
  correctBits: string;
  seconds: number;
}

export type DiagnoseRecord = ProbeRecord | AttackRecord;

/** A model to diagnose. */
export interface DiagnoseModel {
  name: string;
  variant: string;
  modelSeed: number;
  model: tf.LayersModel;
  /** JPEG modes to run (ignored for models without a JPEG layer). */
  jpegModes?: JpegMode[];
}

/** Options of the diagnosis. */
export interface DiagnoseOptions {
  /** L-inf budget on the 0-1 scale (default 8/255), with its label. */
  eps?: number;
  epsLabel?: string;
  /** Probe objective (default 'margin'). */
  loss?: LossName;
  /** Random sign directions per image (default 8). */
  directions?: number;
  /** Finite-difference step (default 1/255). */
  fdStep?: number;
  /** Fractions of eps of the loss profiles (default 0, 0.1, ..., 1). */
  profile?: number[];
  /** Images with a loss surface in the report (default 2; 0 for none). */
  surfaces?: number;
  /** Grid points per side of a loss surface (default 21). */
  surfaceSize?: number;
  /** L-inf attack of the convergence curve, one with a steps option (default 'pgd'). */
  attack?: string;
  /** Step counts of the convergence curve (default 1, 2, 5, 10, 20, 50, 100; empty for none). */
  steps?: number[];
  /** Budget of the unbounded check (default 1: any image is reachable; 0 skips it), run with the largest step count. */
  unboundedEps?: number;
  /** Restarts of one more run at the largest step count (default 1: no such run), Carlini et al.'s restart check. */
  restarts?: number;
  /** Images per batch (default 100). */
  batchSize?: number;
  /** Seed of the random directions and the attacks' random starts (default 0). */
  seed?: number;
  /** Dataset name written into the records. */
  dataset?: string;
  /** JSONL file: done records are skipped, new ones appended as they finish. */
  recordsPath?: string;
  /** Called after each record (done, total). */
  onCell?: (done: number, total: number, record: DiagnoseRecord) => void;
}

/** L-inf attacks the convergence curve can use: registered, L-inf, with a steps option. */
export function convergenceAttackNames(): string[] {
  return namedAttackNames().filter((a) => {
    const info = findNamedAttack(a)!;
    return info.norm === 'linf' && 'steps' in info.defaults && !info.minimal;
  });
}

/** Options with defaults, every value checked before any work (errors name the option). */
export function resolveDiagnoseOptions(o: DiagnoseOptions = {}) {
  const eps = o.eps ?? 8 / 255;
  const epsLabel = o.epsLabel ?? (o.eps === undefined ? '8/255' : String(eps));
  const probe = resolveProbeOptions({ eps, loss: o.loss, directions: o.directions, fdStep: o.fdStep, profile: o.profile, seed: o.seed });
  const surfaces = o.surfaces ?? 2;
  if (!(Number.isInteger(surfaces) && surfaces >= 0)) throw new Error(`surfaces: must be an integer >= 0, got ${String(o.surfaces)}`);
  const surfaceSize = o.surfaceSize ?? 21;
  if (!(Number.isInteger(surfaceSize) && surfaceSize >= 2 && surfaceSize <= 101)) throw new Error(`surfaceSize: must be an integer in [2, 101], got ${String(o.surfaceSize)}`);
  const attack = o.attack ?? 'pgd';
  const allowed = convergenceAttackNames();
  if (!allowed.includes(attack)) throw new Error(`attack: "${attack}" cannot draw a convergence curve; use an L-inf attack with a steps option (${allowed.join(', ')})`);
  if (o.steps !== undefined && !Array.isArray(o.steps)) throw new Error(`steps: must be a list of integers >= 1, got ${JSON.stringify(o.steps)}`);
  const steps = [...(o.steps ?? [1, 2, 5, 10, 20, 50, 100])];
  if (steps.some((s) => !(Number.isInteger(s) && s >= 1))) throw new Error(`steps: must be a list of integers >= 1, got ${JSON.stringify(o.steps)}`);
  if (new Set(steps).size !== steps.length) throw new Error(`steps: ${JSON.stringify(o.steps)} repeats a step count`);
  steps.sort((a, b) => a - b);
  const unboundedEps = o.unboundedEps ?? 1;
  if (typeof unboundedEps !== 'number' || !(unboundedEps >= 0 && unboundedEps <= 1)) throw new Error(`unboundedEps: must be a number in [0, 1] (0 skips the check), got ${String(o.unboundedEps)}`);
  if (unboundedEps > 0 && unboundedEps <= eps) throw new Error(`unboundedEps: ${unboundedEps} is not above eps ${eps}; the unbounded check needs a budget far larger than the one evaluated (default 1, the whole box)`);
  if (unboundedEps > 0 && steps.length === 0) throw new Error('unboundedEps: the unbounded check runs the attack with the largest step count; give steps too, or unboundedEps 0');
  const restarts = o.restarts ?? 1;
  if (!(Number.isInteger(restarts) && restarts >= 1)) throw new Error(`restarts: must be an integer >= 1 (1: no restart run), got ${String(o.restarts)}`);
  if (restarts > 1 && steps.length === 0) throw new Error('restarts: the restart run uses the largest step count; give steps too');
  if (restarts > 1 && typeof findNamedAttack(attack)!.defaults.restarts !== 'number') throw new Error(`restarts: ${attack} has no restarts option`);
  const batchSize = o.batchSize ?? 100;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize: must be an integer >= 1, got ${String(o.batchSize)}`);
  return { ...probe, epsLabel, surfaces, surfaceSize, attack, steps, unboundedEps, restarts, batchSize };
}

/** The series a record belongs to: model, seed and JPEG mode. */
export const diagnoseSeriesKey = (r: Pick<SeriesIds, 'model' | 'modelSeed' | 'jpegMode'>): string => `${r.model}#${r.modelSeed}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`;
const recordKey = (r: Pick<SeriesIds, 'model' | 'modelSeed' | 'jpegMode'> & { kind: string; attack?: string; steps?: number; unbounded?: boolean; restarts?: number }): string =>
  `${diagnoseSeriesKey(r)}|${r.kind === 'diagnose-probe' ? 'probe' : `${r.attack}|${r.steps}|${r.unbounded ? 'unbounded' : 'eps'}${(r.restarts ?? 1) > 1 ? `|r${r.restarts}` : ''}`}`;

const settingText = (s: DiagnoseSetting) => `${s.dataset}, n = ${s.n}, seed ${s.seed}, eps ${s.epsLabel}, loss ${s.loss}, ${s.directions} directions, fd step ${s.fdStep}, profile ${s.profile.join(' ')}`;

/** Load a records file (missing: empty); refuse records of other images or settings. A torn last line is dropped, and with `repair` cut from the file. */
export function loadDiagnoseRecords(path: string, expect?: DiagnoseSetting, { repair = false }: { repair?: boolean } = {}): DiagnoseRecord[] {
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as DiagnoseRecord;
    if (r.kind !== 'diagnose-probe' && r.kind !== 'diagnose-attack') throw new Error(`${path}:${line}: not a diagnose record (kind ${String((r as { kind?: unknown }).kind)})`);
    if (expect && settingText(r) !== settingText(expect)) throw new Error(`${path} holds diagnose records of other settings (${settingText(r)}; this run: ${settingText(expect)}); use another --out`);
    return r;
  });
}

/** Six significant digits: records stay small and the same on every rerun. */
const round6 = (a: ArrayLike<number>): number[] => Array.from(a, (v) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : v));

/** Probe every image of `data` in batches and draw the first images' loss surfaces. */
function probeAll(model: tf.LayersModel, data: LabelledImages, o: ReturnType<typeof resolveDiagnoseOptions>) {
  const n = data.labels.length;
  const pixels = data.height * data.width * data.channels;
  const shape = (m: number): [number, number, number, number] => [m, data.height, data.width, data.channels];
  const objective = new Float32Array(n), correct = new Uint8Array(n), gradMean = new Float32Array(n), fdError = new Float32Array(n);
  const along = o.profile.map(() => new Float32Array(n)), rmean = o.profile.map(() => new Float32Array(n)), rmax = o.profile.map(() => new Float32Array(n));
  for (let s = 0; s < n; s += o.batchSize) {
    const m = Math.min(o.batchSize, n - s);
    const x = tf.tensor4d(data.images.subarray(s * pixels, (s + m) * pixels), shape(m));
    const y = tf.tensor1d(data.labels.subarray(s, s + m), 'int32');
    try {
      const r = probeBatch(model, x, y, s, o);
      objective.set(r.objective, s); correct.set(r.correct, s); gradMean.set(r.gradMean, s); fdError.set(r.fdError, s);
      o.profile.forEach((_, k) => { along[k].set(r.alongGradient[k], s); rmean[k].set(r.randomMean[k], s); rmax[k].set(r.randomMax[k], s); });
    } finally {
      tf.dispose([x, y]);
    }
  }
  const surfaces = Array.from({ length: Math.min(o.surfaces, n) }, (_, i) => {
    const x = tf.tensor4d(data.images.subarray(i * pixels, (i + 1) * pixels), shape(1));
    try {
      return { index: i, label: data.labels[i], size: o.surfaceSize, values: round6(lossSurface(model, x, data.labels[i], i, { ...o, size: o.surfaceSize })) };
    } finally {
      x.dispose();
    }
  });
  return {
    values: pixels, objective: round6(objective), correctBits: packBits(correct), gradMean: round6(gradMean),
    alongGradient: along.map(round6), randomMean: rmean.map(round6), randomMax: rmax.map(round6), fdError: round6(fdError), surfaces,
  };
}

/** Run the attack on every image in batches; per image 1 = still right afterwards. */
function attackAll(model: tf.LayersModel, data: LabelledImages, attack: string, eps: number, steps: number, restarts: number, o: ReturnType<typeof resolveDiagnoseOptions>, seed: number): Uint8Array {
  const info = findNamedAttack(attack)!;
  const n = data.labels.length;
  const pixels = data.height * data.width * data.channels;
  const fn = asLogitsFn(model);
  const out = new Uint8Array(n);
  for (let s = 0; s < n; s += o.batchSize) {
    const m = Math.min(o.batchSize, n - s);
    const x = tf.tensor4d(data.images.subarray(s * pixels, (s + m) * pixels), [m, data.height, data.width, data.channels]);
    const y = tf.tensor1d(data.labels.subarray(s, s + m), 'int32');
    try {
      // Each batch its own seed of the random starts, the same for every model (paired comparisons).
      const adv = info.run(model, x, y, { eps, steps, ...(restarts > 1 ? { restarts } : {}), seed: keySeed(seed, `${attack}|${steps}|${eps}|${s}`) });
      const eq = tf.tidy(() => tf.equal(tf.argMax(fn(adv), 1), y));
      out.set(eq.dataSync(), s);
      tf.dispose([adv, eq]);
    } finally {
      tf.dispose([x, y]);
    }
  }
  return out;
}

/** Run (or resume) the diagnosis of every model (pixels 0-1): probes first, then the convergence curve and the unbounded check. */
export async function evaluateDiagnose(models: DiagnoseModel[], data: LabelledImages, options: DiagnoseOptions = {}): Promise<DiagnoseRecord[]> {
  if (models.length === 0) throw new Error('models: nothing to diagnose');
  const o = resolveDiagnoseOptions(options);
  const n = data.labels.length;
  const setting: DiagnoseSetting = { dataset: options.dataset ?? 'unnamed', n, seed: o.seed, eps: o.eps, epsLabel: o.epsLabel, loss: o.loss, directions: o.directions, fdStep: o.fdStep, profile: o.profile };
  const series = models.flatMap((m) => (jpegLayersOf(m.model).length ? (m.jpegModes ?? ['soft', 'hard', 'bpda-identity']).map((mode) => ({ ...m, mode: mode as JpegMode | null })) : [{ ...m, mode: null as JpegMode | null }]));
  const done = new Map<string, DiagnoseRecord>();
  if (options.recordsPath) for (const r of loadDiagnoseRecords(options.recordsPath, setting, { repair: true })) done.set(recordKey(r), r);
  const runs = [
    { kind: 'diagnose-probe' as const },
    ...o.steps.map((steps) => ({ kind: 'diagnose-attack' as const, steps, unbounded: false })),
    ...(o.unboundedEps > 0 ? [{ kind: 'diagnose-attack' as const, steps: o.steps[o.steps.length - 1], unbounded: true }] : []),
    ...(o.restarts > 1 ? [{ kind: 'diagnose-attack' as const, steps: o.steps[o.steps.length - 1], unbounded: false, restarts: o.restarts }] : []),
  ];
  const total = runs.length * series.length;
  let count = 0;
  const records: DiagnoseRecord[] = [];
  for (const s of series) {
    const ids: SeriesIds = { model: s.name, variant: s.variant, modelSeed: s.modelSeed, jpegMode: s.mode };
    for (const run of runs) {
      const key = recordKey({ ...ids, ...run, attack: o.attack });
      let rec = done.get(key);
      if (!rec) {
        const t0 = performance.now();
        // A randomised model draws from its record's own seed, so a resumed run draws what an unbroken one would.
        reseedRandomLayers(s.model, keySeed(o.seed, key));
        const work = async (): Promise<DiagnoseRecord> => {
          if (run.kind === 'diagnose-probe') return { schema: 1, kind: run.kind, ...ids, ...setting, ...probeAll(s.model, data, o), seconds: 0 };
          const attackEps = run.unbounded ? o.unboundedEps : o.eps;
          const restarts = 'restarts' in run ? run.restarts : 1;
          const bits = attackAll(s.model, data, o.attack, attackEps, run.steps, restarts, o, o.seed);
          const correct = bits.reduce((a, v) => a + v, 0);
          return { schema: 1, kind: run.kind, ...ids, ...setting, attack: o.attack, steps: run.steps, attackEps, unbounded: run.unbounded, ...(restarts > 1 ? { restarts } : {}), correct, accuracy: correct / n, correctBits: packBits(bits), seconds: 0 };
        };
        rec = s.mode ? await withJpegMode(s.model, s.mode, work) : await work();
        rec.seconds = (performance.now() - t0) / 1000;
        if (options.recordsPath) appendRecord(options.recordsPath, rec);
      }
      records.push(rec);
      options.onCell?.(++count, total, rec);
    }
  }
  return records;
}

/**
 * Universal perturbations across models: for each model (as the source, in each crafting mode) and
 * each eps, one perturbation is fitted on the fit images (training split) and every model is scored
 * with it on held-out images, so the table holds both the model's own universal perturbation and
 * every other model's (transfer). One record per (source, eps, evaluated model x mode), appended and
 * fsynced; each fitted perturbation is saved atomically, so a killed run refits nothing it finished.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { applyUniversal, fitUniversal, UNIVERSAL_METHODS, type UniversalMethod } from '../../attacks/universal.ts';
import { keySeed } from '../data/rng.ts';
import { parseEpsilon, type Epsilon } from '../eps.ts';
import { predictClasses, topClassShare } from '../eval/predict.ts';
import { appendRecord, packBits } from '../eval/records.ts';
import { decodeFloats, encodeFloats } from '../io/floats.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { readJsonLines } from '../io/jsonl.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { jpegLayersOf, withJpegMode, type JpegMode } from '../train/jpeg-params.ts';
import type { Norm } from '../types.ts';

/** The model (and JPEG mode) a perturbation was fitted on. */
export interface UniversalSource {
  model: string;
  variant: string;
  modelSeed: number;
  /** Mode of its JPEG layers while fitting (null: none). */
  mode: JpegMode | null;
}

/** How every perturbation of a run is fitted (the same for all sources and eps). */
export interface UniversalSettings {
  norm: Norm;
  method: UniversalMethod;
  epochs: number;
  batchSize: number;
  /** sgd: first step as a fraction of eps; decay per pass; CE clamp. */
  stepFraction: number;
  stepDecay: number;
  beta: number;
  /** Targeted: the class every image is sent to (null: untargeted). */
  target: number | null;
  /** deepfool: stop at this fooling rate on the fit images; overshoot; linearisation steps. */
  foolingRate: number;
  overshoot: number;
  deepfoolSteps: number;
}

/** One cell: a model (in one JPEG mode) on the held-out images with one universal perturbation, or clean (source null, eps 0). */
export interface UniversalRecord {
  schema: 1;
  kind: 'universal';
  source: UniversalSource | null;
  /** Budget on the 0-1 scale and the text it was given as ("8/255"). */
  eps: number;
  epsLabel: string;
  /** The model evaluated, in `jpegMode`. */
  model: string;
  variant: string;
  modelSeed: number;
  jpegMode: JpegMode | null;
  dataset: string;
  /** Held-out images, fit images, and the seed of both subsets and the fitting. */
  n: number;
  fitN: number;
  seed: number;
  settings: UniversalSettings;
  correct: number;
  accuracy: number;
  /** Per image, 1 = still correct (base64 bit set, as attack records). */
  correctBits: string;
  /** Images whose prediction differs from the model's clean prediction (the papers' fooling rate). */
  changed: number;
  changeRate: number;
  /** Distinct classes among the predictions, and the share of the images given the most common one (1: one class for everything). */
  predictedClasses: number;
  topClassShare: number;
  /** Targeted: images of other classes now predicted as the target, and their fraction. */
  targetHits: number | null;
  targetRate: number | null;
  /** The source's success on the fit images, and the perturbation's size (0-1 scale). */
  fitSuccess: number | null;
  perturbationNorm: { linf: number; l2: number } | null;
  seconds: number;
}

/** A fitted perturbation as saved in <out>/perturbations/. */
export interface SavedPerturbation {
  schema: 1;
  kind: 'universal-perturbation';
  source: UniversalSource;
  eps: number;
  epsLabel: string;
  dataset: string;
  fitN: number;
  seed: number;
  settings: UniversalSettings;
  shape: [number, number, number, number];
  /** Float32 little-endian, base64. */
  data: string;
  successRate: number;
  history: number[];
  seconds: number;
}

/** A model to evaluate (and to fit perturbations on). */
export interface UniversalModel {
  name: string;
  variant: string;
  modelSeed: number;
  model: tf.LayersModel;
  /** JPEG modes it is evaluated in, and fitted in (ignored for models without a JPEG layer). */
  jpegModes?: JpegMode[];
  craftModes?: JpegMode[];
}

/** Options of evaluateUniversal. */
export interface UniversalEvalOptions extends Partial<Omit<UniversalSettings, 'norm'>> {
  /** Budgets, as text ("8/255") or Epsilon objects (default 4/255, 8/255, 16/255, 32/255). */
  epsilons?: (string | Epsilon)[];
  /** 'linf' (default) or 'l2'. */
  norm?: Norm;
  /** Images per forward pass when scoring (default 100). */
  evalBatchSize?: number;
  /** Seed of the fitting order (default 0; the job also seeds its subsets with it). */
  seed?: number;
  /** Also score the constant shifts +eps and -eps of every pixel, the trivial universal perturbations (default true). */
  constants?: boolean;
  dataset?: string;
  /** JSONL file: done cells are skipped, new ones appended. */
  recordsPath?: string;
  /** Directory of the fitted perturbations (resumed from, written to). */
  perturbationsDir?: string;
  onCell?: (done: number, total: number, record: UniversalRecord) => void;
}

/** Source names of the constant shifts (+eps, -eps on every pixel). */
export const CONSTANT_PLUS = 'uniform+';
export const CONSTANT_MINUS = 'uniform-';

export const DEFAULT_UNIVERSAL_EPSILONS = ['4/255', '8/255', '16/255', '32/255'];

/** Check the options before any work; returns the settings, budgets and batch size. */
export function resolveUniversalEval(o: UniversalEvalOptions = {}): { settings: UniversalSettings; epsilons: Epsilon[]; evalBatchSize: number; seed: number } {
  const norm = o.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2') throw new Error(`norm: a universal perturbation is "linf" or "l2", got ${String(norm)}`);
  const method = o.method ?? 'sgd';
  if (!UNIVERSAL_METHODS.includes(method)) throw new Error(`method: must be one of ${UNIVERSAL_METHODS.join(', ')}, got ${String(method)}`);
  const int = (v: number | undefined, d: number, what: string, min: number) => {
    const x = v ?? d;
    if (!(Number.isInteger(x) && x >= min)) throw new Error(`${what}: must be an integer >= ${min}, got ${String(v)}`);
    return x;
  };
  const inUnit = (v: number | undefined, d: number, what: string) => {
    const x = v ?? d;
    if (!(typeof x === 'number' && x > 0 && x <= 1)) throw new Error(`${what}: must be in (0, 1], got ${String(v)}`);
    return x;
  };
  const positive = (v: number | undefined, d: number, what: string) => {
    const x = v ?? d;
    if (!(typeof x === 'number' && Number.isFinite(x) && x > 0)) throw new Error(`${what}: must be a number > 0, got ${String(v)}`);
    return x;
  };
  const target = o.target ?? null;
  if (target !== null && !(Number.isInteger(target) && target >= 0)) throw new Error(`target: must be a class index (integer >= 0), got ${String(target)}`);
  if (target !== null && method !== 'sgd') throw new Error('target: a targeted universal perturbation needs method sgd');
  const overshoot = o.overshoot ?? 0.02;
  if (!(typeof overshoot === 'number' && Number.isFinite(overshoot) && overshoot >= 0)) throw new Error(`overshoot: must be a number >= 0, got ${String(o.overshoot)}`);
  const settings: UniversalSettings = {
    norm, method,
    epochs: int(o.epochs, 10, 'epochs', 1),
    batchSize: int(o.batchSize, 32, 'batchSize', 1),
    stepFraction: positive(o.stepFraction, 0.25, 'stepFraction'),
    stepDecay: inUnit(o.stepDecay, 0.8, 'stepDecay'),
    beta: positive(o.beta, 10, 'beta'),
    target,
    foolingRate: inUnit(o.foolingRate, 0.8, 'foolingRate'),
    overshoot,
    deepfoolSteps: int(o.deepfoolSteps, 50, 'deepfoolSteps', 1),
  };
  const epsilons = (o.epsilons ?? DEFAULT_UNIVERSAL_EPSILONS).map((e) => (typeof e === 'string' ? parseEpsilon(e, 'eps', norm) : e));
  if (epsilons.length === 0) throw new Error('eps: the epsilon list is empty');
  if (epsilons.some((e) => e.value === 0)) throw new Error('eps: 0 is the clean cell, which is always evaluated; list only budgets > 0');
  return { settings, epsilons, evalBatchSize: int(o.evalBatchSize, 100, 'evalBatchSize', 1), seed: int(o.seed, 0, 'seed', 0) };
}

/** Name of a source or evaluated series: model, seed and JPEG mode. */
export const universalSeriesKey = (r: { model: string; modelSeed: number; mode?: JpegMode | null; jpegMode?: JpegMode | null }): string => {
  const mode = r.mode ?? r.jpegMode ?? null;
  return `${r.model}#${r.modelSeed}${mode ? ` [${mode}]` : ''}`;
};
const recordKey = (r: Pick<UniversalRecord, 'source' | 'epsLabel' | 'model' | 'modelSeed' | 'jpegMode'>) => `${r.source ? universalSeriesKey(r.source) : 'clean'}|${r.epsLabel}|${universalSeriesKey(r)}`;

const settingText = (r: { dataset: string; n?: number; fitN: number; seed: number; settings: UniversalSettings }) =>
  `${r.dataset}${r.n === undefined ? '' : `, n = ${r.n}`}, ${r.fitN} fit images, seed ${r.seed}, ${JSON.stringify(r.settings)}`;

/** Load a records file (missing: empty); refuse records of other images or settings. A torn last line is dropped (and with `repair` cut). */
export function loadUniversalRecords(path: string, expect?: Pick<UniversalRecord, 'dataset' | 'n' | 'fitN' | 'seed' | 'settings'>, { repair = false }: { repair?: boolean } = {}): UniversalRecord[] {
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as UniversalRecord;
    if (r.kind !== 'universal') throw new Error(`${path}:${line}: not a universal-perturbation record (kind ${String(r.kind)})`);
    if (expect && settingText(r) !== settingText(expect)) throw new Error(`${path} holds universal-perturbation records of other settings (${settingText(r)}; this run: ${settingText(expect)}); use another --out`);
    return r;
  });
}

/** File name of a saved perturbation: source and budget, filesystem-safe. */
export function perturbationFile(source: UniversalSource, epsLabel: string): string {
  return `${universalSeriesKey(source)}@${epsLabel}`.replace(/[^A-Za-z0-9._-]+/g, '_') + '.json';
}

/** Read a saved perturbation, refusing one of other settings or images (the path names the file). */
export function readPerturbation(path: string, expect: Pick<SavedPerturbation, 'dataset' | 'fitN' | 'seed' | 'settings' | 'shape'>): { saved: SavedPerturbation; values: Float32Array } {
  let saved: SavedPerturbation;
  try {
    saved = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not a readable perturbation file (${(err as Error).message})`);
  }
  if (saved.kind !== 'universal-perturbation') throw new Error(`${path}: not a universal perturbation (kind ${String(saved.kind)})`);
  if (settingText(saved) !== settingText(expect)) throw new Error(`${path} was fitted with other settings (${settingText(saved)}; this run: ${settingText(expect)}); use another --out`);
  if (saved.shape.join('x') !== expect.shape.join('x')) throw new Error(`${path}: perturbation of shape ${saved.shape.join('x')}, the images need ${expect.shape.join('x')}`);
  return { saved, values: decodeFloats(saved.data, saved.shape.reduce((a, b) => a * b, 1), path, 'perturbation') };
}

/** A fitted (or loaded) perturbation, as the report draws it. */
export interface UniversalPerturbation {
  source: UniversalSource;
  eps: number;
  epsLabel: string;
  /** [h,w,c] values on the 0-1 scale. */
  values: Float32Array;
  successRate: number;
}

type Series = UniversalModel & { mode: JpegMode | null };
const seriesKey = (s: Series) => universalSeriesKey({ model: s.name, modelSeed: s.modelSeed, mode: s.mode });

/**
 * Run (or resume) every cell: the clean cell of each evaluated series, then per eps and source the
 * perturbation (fitted on `fit`, or loaded) and one record per evaluated series on `test`. Pixels 0-1.
 */
export async function evaluateUniversal(models: UniversalModel[], fit: LabelledImages, test: LabelledImages, o: UniversalEvalOptions = {}): Promise<{ records: UniversalRecord[]; perturbations: UniversalPerturbation[] }> {
  if (models.length === 0) throw new Error('models: nothing to evaluate');
  const names = models.map((m) => universalSeriesKey({ model: m.name, modelSeed: m.modelSeed }));
  const twice = names.find((k, i) => names.indexOf(k) !== i);
  if (twice) throw new Error(`models: two models are ${twice} (name and seed must tell them apart)`);
  const { settings, epsilons, evalBatchSize, seed } = resolveUniversalEval(o);
  const shape = [test.height, test.width, test.channels];
  if ([fit.height, fit.width, fit.channels].join('x') !== shape.join('x')) throw new Error(`fit images are ${fit.height}x${fit.width}x${fit.channels}, test images ${shape.join('x')}`);
  const dataset = o.dataset ?? 'unnamed';
  const [n, fitN] = [test.labels.length, fit.labels.length];
  const setting = { dataset, n, fitN, seed, settings };
  const hasJpeg = (m: UniversalModel) => jpegLayersOf(m.model).length > 0;
  const evalSeries: Series[] = models.flatMap((m): Series[] => (hasJpeg(m) ? (m.jpegModes ?? ['soft', 'hard']).map((mode) => ({ ...m, mode })) : [{ ...m, mode: null }]));
  const fitted: Series[] = models.flatMap((m): Series[] => (hasJpeg(m) ? (m.craftModes ?? ['soft']).map((mode) => ({ ...m, mode })) : [{ ...m, mode: null }]));
  const sources: { source: UniversalSource; fitFrom: Series | null; sign: number }[] = [
    ...fitted.map((f) => ({ source: { model: f.name, variant: f.variant, modelSeed: f.modelSeed, mode: f.mode }, fitFrom: f, sign: 1 })),
    ...((o.constants ?? true) ? [1, -1].map((sign) => ({ source: { model: sign > 0 ? CONSTANT_PLUS : CONSTANT_MINUS, variant: 'constant', modelSeed: 0, mode: null }, fitFrom: null, sign })) : []),
  ];
  const done = new Map<string, UniversalRecord>();
  if (o.recordsPath) for (const r of loadUniversalRecords(o.recordsPath, setting, { repair: true })) done.set(recordKey(r), r);
  if (o.perturbationsDir) mkdirSync(o.perturbationsDir, { recursive: true });
  const total = evalSeries.length * (1 + epsilons.length * sources.length);
  let count = 0;
  const records: UniversalRecord[] = [];
  const perturbations: UniversalPerturbation[] = [];
  const pixels = shape[0] * shape[1] * shape[2];
  const testX = tf.tensor4d(test.images.subarray(0, n * pixels), [n, ...shape] as [number, number, number, number]);
  const testY = Int32Array.from(test.labels.subarray(0, n));
  // The fit images go up once for every fit of the run.
  const fitX = tf.tensor4d(fit.images.subarray(0, fitN * pixels), [fitN, ...shape] as [number, number, number, number]);
  const fitY = tf.tensor1d(fit.labels.subarray(0, fitN), 'int32');
  const inMode = async <T>(s: Series, fn: () => T | Promise<T>) => (s.mode ? withJpegMode(s.model, s.mode, fn) : fn());
  const batchOf = (delta: tf.Tensor4D | null, budget: { norm: Norm; eps: number }) => (s: number, m: number) => {
    const x = testX.slice([s, 0, 0, 0], [m, -1, -1, -1]);
    return delta ? applyUniversal(x, delta, budget) : x;
  };
  try {
    // Clean predictions per evaluated series: the reference of "prediction changed".
    const clean = new Map<string, Int32Array>();
    for (const s of evalSeries) {
      const t0 = performance.now();
      reseedRandomLayers(s.model, keySeed(seed, `clean|${seriesKey(s)}`));
      const pred = await inMode(s, () => predictClasses(s.model, n, evalBatchSize, batchOf(null, { norm: settings.norm, eps: 0 })));
      clean.set(seriesKey(s), pred);
      const ids = { source: null, epsLabel: '0', model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode };
      const rec = done.get(recordKey(ids)) ?? cellRecord(ids, s, 0, pred, pred, testY, setting, null, null, performance.now() - t0);
      if (!done.has(recordKey(ids)) && o.recordsPath) appendRecord(o.recordsPath, rec);
      records.push(rec);
      o.onCell?.(++count, total, rec);
    }
    for (const eps of epsilons) {
      const budget = { norm: settings.norm, eps: eps.value };
      for (const { source, fitFrom, sign } of sources) {
        const missing = evalSeries.filter((s) => !done.has(recordKey({ source, epsLabel: eps.label, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode })));
        const file = fitFrom && o.perturbationsDir ? join(o.perturbationsDir, perturbationFile(source, eps.label)) : null;
        const t0 = performance.now();
        let successRate: number | null = null;
        // The perturbation's values: needed to score missing cells, and (fitted ones) for the picture when saved.
        let values: Float32Array | null = null;
        if (!fitFrom) {
          // A constant shift of every pixel by ±eps (L2: ±eps/sqrt(pixels)): the trivial universal perturbation a fit should beat.
          if (missing.length) values = new Float32Array(pixels).fill(sign * (settings.norm === 'linf' ? eps.value : eps.value / Math.sqrt(pixels)));
        } else if (file && existsSync(file)) {
          const loaded = readPerturbation(file, { dataset, fitN, seed, settings, shape: [1, ...shape] as [number, number, number, number] });
          [values, successRate] = [loaded.values, loaded.saved.successRate];
        } else if (missing.length || file) {
          // Every cell done and no file asked for: nothing to fit.
          const made = await fitOne(fitFrom, source, eps, fitX, fitY, fit, seed, settings, dataset);
          if (file) writeJsonAtomic(file, made.saved);
          [values, successRate] = [made.values, made.saved.successRate];
        }
        if (fitFrom && values) perturbations.push({ source, eps: eps.value, epsLabel: eps.label, values, successRate: successRate! });
        const fitSeconds = (performance.now() - t0) / 1000;
        const delta = missing.length ? tf.tensor4d(values!, [1, ...shape] as [number, number, number, number]) : null;
        try {
          const norm = delta && tf.tidy(() => ({ linf: tf.max(tf.abs(delta)).dataSync()[0], l2: tf.norm(delta).dataSync()[0] }));
          for (const s of evalSeries) {
            const ids = { source, epsLabel: eps.label, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode };
            let rec = done.get(recordKey(ids));
            if (!rec) {
              const t1 = performance.now();
              reseedRandomLayers(s.model, keySeed(seed, recordKey(ids)));
              const pred = await inMode(s, () => predictClasses(s.model, n, evalBatchSize, batchOf(delta, budget)));
              rec = cellRecord(ids, s, eps.value, pred, clean.get(seriesKey(s))!, testY, setting, successRate, norm, performance.now() - t1 + (s === missing[0] ? fitSeconds * 1000 : 0));
              if (o.recordsPath) appendRecord(o.recordsPath, rec);
            }
            records.push(rec);
            o.onCell?.(++count, total, rec);
          }
        } finally {
          delta?.dispose();
        }
      }
    }
    return { records, perturbations };
  } finally {
    tf.dispose([testX, fitX, fitY]);
  }
}

/** Fit one perturbation on the fit images `x`, `y` with `src` in its crafting mode (a randomised model draws from the cell's own seed). */
async function fitOne(src: Series, source: UniversalSource, eps: Epsilon, x: tf.Tensor4D, y: tf.Tensor1D, fit: LabelledImages, seed: number, settings: UniversalSettings, dataset: string): Promise<{ saved: SavedPerturbation; values: Float32Array }> {
  const t0 = performance.now();
  reseedRandomLayers(src.model, keySeed(seed, `fit|${universalSeriesKey(source)}|${eps.label}`));
  const run = () => fitUniversal(src.model, x, y, {
    eps: eps.value, norm: settings.norm, method: settings.method, epochs: settings.epochs, batchSize: settings.batchSize,
    stepDecay: settings.stepDecay, beta: settings.beta, foolingRate: settings.foolingRate, overshoot: settings.overshoot, deepfoolSteps: settings.deepfoolSteps, seed,
    ...(eps.value > 0 ? { stepSize: settings.stepFraction * eps.value } : {}),
    ...(settings.target !== null ? { target: settings.target } : {}),
  });
  const r = src.mode ? await withJpegMode(src.model, src.mode, run) : run();
  const values = Float32Array.from(r.perturbation.dataSync() as Float32Array);
  r.perturbation.dispose();
  const saved: SavedPerturbation = {
    schema: 1, kind: 'universal-perturbation', source, eps: eps.value, epsLabel: eps.label, dataset, fitN: fit.labels.length, seed, settings,
    shape: [1, fit.height, fit.width, fit.channels], data: encodeFloats(values), successRate: r.successRate, history: r.history, seconds: (performance.now() - t0) / 1000,
  };
  return { saved, values };
}

function cellRecord(
  ids: { source: UniversalSource | null; epsLabel: string; model: string; modelSeed: number; jpegMode: JpegMode | null },
  s: Series, eps: number, pred: Int32Array, cleanPred: Int32Array, labels: Int32Array,
  setting: { dataset: string; n: number; fitN: number; seed: number; settings: UniversalSettings },
  fitSuccess: number | null, norm: { linf: number; l2: number } | null, ms: number,
): UniversalRecord {
  const n = labels.length;
  const bits = new Uint8Array(n);
  let [changed, hits, others] = [0, 0, 0];
  const target = setting.settings.target;
  for (let i = 0; i < n; i++) {
    bits[i] = Number(pred[i] === labels[i]);
    changed += Number(pred[i] !== cleanPred[i]);
    if (target !== null && labels[i] !== target) {
      others++;
      hits += Number(pred[i] === target);
    }
  }
  const correct = bits.reduce((a, v) => a + v, 0);
  return {
    schema: 1, kind: 'universal', ...ids, eps, variant: s.variant, ...setting,
    correct, accuracy: correct / n, correctBits: packBits(bits), changed, changeRate: changed / n, predictedClasses: new Set(pred).size, topClassShare: topClassShare(pred),
    targetHits: target === null || ids.source === null ? null : hits, targetRate: target === null || ids.source === null ? null : others ? hits / others : 0,
    fitSuccess, perturbationNorm: norm, seconds: ms / 1000,
  };
}

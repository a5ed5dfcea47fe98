/**
 * Accuracy under common corruptions, per model x JPEG mode x corruption x severity: one record per cell
 * (appended and fsynced, so a killed run resumes), the same corrupted images for every model (paired),
 * and the summary RobustBench's corruption leaderboard gives: mean corruption accuracy, per corruption
 * and per severity, and each model's corruption error relative to the baseline's.
 */
import * as tf from '@tensorflow/tfjs';
import { readJsonLines } from '../io/jsonl.ts';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { subSeed } from '../../attacks/project.ts';
import { keySeed } from '../data/rng.ts';
import { correctnessInBatches } from '../eval/correctness.ts';
import { appendRecord, packBits } from '../eval/records.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { withJpegMode, jpegLayersOf, type JpegMode } from '../train/jpeg-params.ts';
import { CORRUPTIONS, corruptImages, getCorruption, type CorruptionInfo } from './functions.ts';
import { Sampler } from './random.ts';

/** The clean cell's corruption name (severity 0). */
export const CLEAN = 'clean';

/** One cell: a model (in one JPEG mode) on the images under one corruption at one severity. */
export interface CorruptionRecord {
  schema: 1;
  kind: 'corruption';
  model: string;
  variant: string;
  modelSeed: number;
  /** JPEG mode the model ran in (null: no JPEG layer). */
  jpegMode: JpegMode | null;
  /** 'clean' with severity 0, or a corruption name with severity 1-5. */
  corruption: string;
  severity: number;
  /** What was corrupted: dataset name, image count and the seed of subset and corruption noise. */
  dataset: string;
  n: number;
  seed: number;
  correct: number;
  accuracy: number;
  /** Per image, 1 = still correct (base64 bit set, as attack records). */
  correctBits: string;
  seconds: number;
}

/** A model to evaluate. */
export interface CorruptionModel {
  name: string;
  variant: string;
  modelSeed: number;
  model: tf.LayersModel;
  /** JPEG modes to run (ignored for models without a JPEG layer). */
  jpegModes?: JpegMode[];
}

/** Options of evaluateCorruptions. */
export interface CorruptionOptions {
  /** Corruption names (default: every one the images allow). */
  corruptions?: string[];
  /** Severities 1-5 (default all five). */
  severities?: number[];
  batchSize?: number;
  /** Seed of the corruption noise (per corruption, severity and image). */
  seed?: number;
  /** Dataset name written into the records. */
  dataset?: string;
  /** JSONL file: done cells are skipped, new ones appended as they finish. */
  recordsPath?: string;
  /** Called after each cell (done, total). */
  onCell?: (done: number, total: number, record: CorruptionRecord) => void;
}

const cellKey = (r: Pick<CorruptionRecord, 'model' | 'modelSeed' | 'jpegMode' | 'corruption' | 'severity'>) => `${r.model}|${r.modelSeed}|${r.jpegMode ?? ''}|${r.corruption}|${r.severity}`;

/** A stable 32-bit seed from a corruption's name, so adding corruptions never changes the others' noise. */
function nameSeed(name: string): number {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** Seed of image i's corruption noise: a function of (seed, corruption name, severity, i) only. */
function imageSeed(seed: number, name: string, severity: number, i: number): number {
  return subSeed(subSeed(subSeed(seed, nameSeed(name)), severity), i);
}

/** Image `index` of `data` under one corruption, exactly as corruptDataset makes it (for pictures). */
export function corruptOne(data: LabelledImages, index: number, info: CorruptionInfo, severity: number, seed: number): Float32Array {
  const pixels = data.height * data.width * data.channels;
  const img = { data: data.images.subarray(index * pixels, (index + 1) * pixels), height: data.height, width: data.width, channels: data.channels };
  return corruptImages(info, [img], severity, () => new Sampler(imageSeed(seed, info.name, severity, index)))[0];
}

/** Every image of `data` under one corruption at one severity (image i seeded by seed, name, severity, i). */
export function corruptDataset(data: LabelledImages, info: CorruptionInfo, severity: number, seed: number): Float32Array {
  const pixels = data.height * data.width * data.channels;
  const out = new Float32Array(data.images.length);
  // Chunks bound the memory of batched corruptions (one JPEG mosaic per chunk).
  const chunk = 256;
  for (let s = 0; s < data.labels.length; s += chunk) {
    const imgs = Array.from({ length: Math.min(chunk, data.labels.length - s) }, (_, k) => ({ data: data.images.subarray((s + k) * pixels, (s + k + 1) * pixels), height: data.height, width: data.width, channels: data.channels }));
    corruptImages(info, imgs, severity, (k) => new Sampler(imageSeed(seed, info.name, severity, s + k))).forEach((o, k) => out.set(o, (s + k) * pixels));
  }
  return out;
}

/** Per image: is the model right (inference mode), in batches; pixels 0-1. */
function correctness(model: tf.LayersModel, images: Float32Array, data: LabelledImages, batchSize: number): Uint8Array {
  const pixels = data.height * data.width * data.channels;
  return correctnessInBatches(model, data.labels, batchSize, (s, m) => tf.tensor4d(images.subarray(s * pixels, (s + m) * pixels), [m, data.height, data.width, data.channels]));
}

/** Check the options before any work; returns the corruptions and severities to run. */
export function resolveCorruptionOptions(data: Pick<LabelledImages, 'channels'>, o: CorruptionOptions): { infos: CorruptionInfo[]; severities: number[] } {
  const severities = o.severities ?? [1, 2, 3, 4, 5];
  if (severities.length === 0) throw new Error('severities: the list is empty');
  for (const s of severities) if (!(Number.isInteger(s) && s >= 1 && s <= 5)) throw new Error(`severities: each must be an integer 1-5, got ${s}`);
  const names = o.corruptions;
  let infos: CorruptionInfo[];
  if (names === undefined) {
    infos = CORRUPTIONS
      .filter((c) => !c.colourOnly || data.channels === 3);
  } else {
    if (names.length === 0) throw new Error('corruptions: the list is empty');
    infos = names.map(getCorruption);
    for (const c of infos) if (c.colourOnly && data.channels !== 3) throw new Error(`corruptions: ${c.name} is defined for colour images only, these have ${data.channels} channel(s)`);
  }
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw new Error(`batchSize: must be an integer >= 1, got ${o.batchSize}`);
  return { infos, severities: [...new Set(severities)].sort((a, b) => a - b) };
}

/**
 * Load a records file (missing: empty); refuse records of other images (dataset, n or seed differ). A
 * torn last line (a kill mid-append) is dropped, and with `repair` cut from the file so appends start clean.
 */
export function loadCorruptionRecords(path: string, expect?: { dataset: string; n: number; seed: number }, { repair = false }: { repair?: boolean } = {}): CorruptionRecord[] {
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as CorruptionRecord;
    if (r.kind !== 'corruption') throw new Error(`${path}:${line}: not a corruption record (kind ${String(r.kind)})`);
    if (expect && (r.dataset !== expect.dataset || r.n !== expect.n || r.seed !== expect.seed)) {
      throw new Error(`${path} holds corruption records of other images (${r.dataset}, n = ${r.n}, seed ${r.seed}; this run: ${expect.dataset}, n = ${expect.n}, seed ${expect.seed}); use another --out`);
    }
    return r;
  });
}

/** Run (or resume) every cell; returns all records, the ones found on disk included. Pixels 0-1. */
export async function evaluateCorruptions(models: CorruptionModel[], data: LabelledImages, o: CorruptionOptions = {}): Promise<CorruptionRecord[]> {
  if (models.length === 0) throw new Error('models: nothing to evaluate');
  const { infos, severities } = resolveCorruptionOptions(data, o);
  const batchSize = o.batchSize ?? 100;
  const seed = o.seed ?? 0;
  const dataset = o.dataset ?? 'unnamed';
  const n = data.labels.length;
  const series = models.flatMap((m) => (jpegLayersOf(m.model).length ? (m.jpegModes ?? ['soft', 'hard']).map((mode) => ({ ...m, mode: mode as JpegMode | null })) : [{ ...m, mode: null as JpegMode | null }]));
  const done = new Map<string, CorruptionRecord>();
  if (o.recordsPath) for (const r of loadCorruptionRecords(o.recordsPath, { dataset, n, seed }, { repair: true })) done.set(cellKey(r), r);
  const cells: { corruption: CorruptionInfo | null; severity: number }[] = [{ corruption: null, severity: 0 }, ...infos.flatMap((c) => severities.map((s) => ({ corruption: c, severity: s })))];
  const total = cells.length * series.length;
  let count = 0;
  const records: CorruptionRecord[] = [];
  for (const cell of cells) {
    const name = cell.corruption?.name ?? CLEAN;
    const todo = series.filter((s) => !done.has(cellKey({ model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode, corruption: name, severity: cell.severity })));
    // Corrupt once per cell, shared by every model (paired comparison); skipped when all are done.
    const images = todo.length === 0 ? null : cell.corruption ? corruptDataset(data, cell.corruption, cell.severity, seed) : data.images;
    for (const s of series) {
      const key = cellKey({ model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode, corruption: name, severity: cell.severity });
      let rec = done.get(key);
      if (!rec) {
        const t0 = performance.now();
        // A randomised model (random JPEG) draws from its cell's own seed, so a resumed run draws what an unbroken one would.
        reseedRandomLayers(s.model, keySeed(seed, key));
        const run = async () => correctness(s.model, images!, data, batchSize);
        const bits = s.mode ? await withJpegMode(s.model, s.mode, run) : await run();
        const correct = bits.reduce((a, v) => a + v, 0);
        rec = {
          schema: 1, kind: 'corruption', model: s.name, variant: s.variant, modelSeed: s.modelSeed, jpegMode: s.mode,
          corruption: name, severity: cell.severity, dataset, n, seed, correct, accuracy: correct / n, correctBits: packBits(bits), seconds: (performance.now() - t0) / 1000,
        };
        if (o.recordsPath) appendRecord(o.recordsPath, rec);
      }
      records.push(rec);
      o.onCell?.(++count, total, rec);
    }
  }
  return records;
}

/** One model x mode in the summary. */
export interface CorruptionSeries {
  key: string;
  label: string;
  variant: string;
  clean: number;
  /** Mean accuracy over severities, per corruption. */
  perCorruption: Record<string, number>;
  /** Mean accuracy over corruptions, per severity. */
  perSeverity: Record<string, number>;
  /** Mean corruption accuracy over every corruption and severity. */
  mean: number;
  /** Corruption error relative to the reference series (1 = as bad; < 1 better), mean over corruptions. */
  relativeError: number | null;
}

/** The summary of a set of corruption records (series in first-seen order; the first baseline is the reference). */
export function summarizeCorruptions(records: CorruptionRecord[]): { series: CorruptionSeries[]; corruptions: string[]; severities: number[]; reference: string | null } {
  const keyOf = (r: CorruptionRecord) => `${r.model}#${r.modelSeed}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`;
  const keys = [...new Set(records.map(keyOf))];
  const corruptions = [...new Set(records.filter((r) => r.severity > 0).map((r) => r.corruption))];
  const severities = [...new Set(records.filter((r) => r.severity > 0).map((r) => r.severity))].sort((a, b) => a - b);
  const byCell = new Map(records.map((r) => [`${keyOf(r)}|${r.corruption}|${r.severity}`, r]));
  const cell = (k: string, c: string, s: number) => byCell.get(`${k}|${c}|${s}`);
  const refKey = keys.find((k) => records.find((r) => keyOf(r) === k)!.variant === 'baseline') ?? null;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, v) => a + v, 0) / xs.length : NaN);
  const seedsOf = (model: string) => new Set(records.filter((r) => r.model === model).map((r) => r.modelSeed)).size;
  const series = keys.map((k) => {
    const first = records.find((r) => keyOf(r) === k)!;
    const acc = (c: string, s: number) => cell(k, c, s)?.accuracy;
    const perCorruption = Object.fromEntries(corruptions.map((c) => [c, mean(severities.map((s) => acc(c, s)).filter((v): v is number => v !== undefined))]));
    const perSeverity = Object.fromEntries(severities.map((s) => [String(s), mean(corruptions.map((c) => acc(c, s)).filter((v): v is number => v !== undefined))]));
    // Hendrycks & Dietterich's CE_c = sum_s E(model) / sum_s E(reference), here against the run's baseline.
    const ce = refKey === null ? [] : corruptions.map((c) => {
      const err = (kk: string) => severities.reduce((a, s) => a + (1 - (cell(kk, c, s)?.accuracy ?? NaN)), 0);
      return err(k) / err(refKey);
    }).filter(Number.isFinite);
    return {
      key: k,
      label: `${first.model}${first.jpegMode ? ` [${first.jpegMode}]` : ''}${seedsOf(first.model) > 1 ? ` seed ${first.modelSeed}` : ''}`,
      variant: first.variant,
      clean: cell(k, CLEAN, 0)?.accuracy ?? NaN,
      perCorruption,
      perSeverity,
      mean: mean(Object.values(perCorruption)),
      relativeError: ce.length ? mean(ce) : null,
    };
  });
  return { series, corruptions, severities, reference: refKey };
}

/**
 * Spatial robustness of saved models: per model x JPEG mode, accuracy under every transform of a
 * rotation/shift grid and under k random draws per image, one record per (model, mode, transform or
 * draw), appended and fsynced so a killed run resumes. The worst cases (any transform of the grid, of
 * the rotations alone, of the shifts alone, of the draws) are per-image ANDs over those records, so
 * every number of the report is rendered from them.
 */
import * as tf from '@tensorflow/tfjs';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { keySeed } from '../data/rng.ts';
import { correctnessInBatches } from '../eval/correctness.ts';
import { appendRecord, packBits, unpackBits } from '../eval/records.ts';
import { readJsonLines } from '../io/jsonl.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { allCorrect, pairedBits } from '../report/paired.ts';
import { jpegLayersOf, withJpegMode, type JpegMode } from '../train/jpeg-params.ts';
import {
  randomTransform, resolveGrid, resolveResample, spatialGrid, transformImages,
  type ResampleOptions, type SpatialGridOptions, type SpatialTransform,
} from './transform.ts';

/** One cell: a model (in one JPEG mode) on every image under one grid transform, or under random draw `draw` (a transform per image). */
export interface SpatialRecord {
  schema: 1;
  kind: 'spatial';
  model: string;
  variant: string;
  modelSeed: number;
  /** JPEG mode the model ran in (null: no JPEG layer). */
  jpegMode: JpegMode | null;
  /** 'grid' (one transform for all images) or 'random' (draw `draw`, one uniform transform per image). */
  search: 'grid' | 'random';
  transform: SpatialTransform | null;
  draw: number | null;
  /** What was evaluated: dataset, image count, seed of subset and draws, grid and resampling. */
  dataset: string;
  n: number;
  seed: number;
  grid: Required<SpatialGridOptions>;
  fill: string;
  interpolation: string;
  correct: number;
  accuracy: number;
  /** Per image, 1 = still correct (base64 bit set, as attack records). */
  correctBits: string;
  seconds: number;
}

/** A model to evaluate. */
export interface SpatialModel {
  name: string;
  variant: string;
  modelSeed: number;
  model: tf.LayersModel;
  /** JPEG modes to run (ignored for models without a JPEG layer). */
  jpegModes?: JpegMode[];
}

/** Options of evaluateSpatial: the grid (Engstrom et al.'s CIFAR grid by default), the draws and resampling. */
export interface SpatialEvalOptions extends SpatialGridOptions, ResampleOptions {
  /** Random transforms per image (worst-of-k; default 10, 0 for none). */
  samples?: number;
  /** Images per forward pass (default 100). */
  batchSize?: number;
  /** Seed of the random draws (default 0). */
  seed?: number;
  /** Dataset name written into the records. */
  dataset?: string;
  /** JSONL file: done cells are skipped, new ones appended as they finish. */
  recordsPath?: string;
  /** Called after each cell (done, total). */
  onCell?: (done: number, total: number, record: SpatialRecord) => void;
}

/** Check the options before any work; returns them with defaults. */
export function resolveSpatialEval(o: SpatialEvalOptions = {}): { grid: Required<SpatialGridOptions>; resample: Required<ResampleOptions>; samples: number; batchSize: number; seed: number } {
  const grid = resolveGrid(o, 'spatial');
  const resample = resolveResample(o, 'spatial');
  const samples = o.samples ?? 10;
  if (!(Number.isInteger(samples) && samples >= 0)) throw new Error(`samples: must be an integer >= 0, got ${o.samples}`);
  const batchSize = o.batchSize ?? 100;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize: must be an integer >= 1, got ${o.batchSize}`);
  const seed = o.seed ?? 0;
  if (!(Number.isInteger(seed) && seed >= 0)) throw new Error(`seed: must be an integer >= 0, got ${o.seed}`);
  return { grid, resample, samples, batchSize, seed };
}

/** The series a record belongs to: model, seed and JPEG mode. */
export const spatialSeriesKey = (r: Pick<SpatialRecord, 'model' | 'modelSeed' | 'jpegMode'>): string => `${r.model}#${r.modelSeed}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`;
const cellName = (c: { transform: SpatialTransform | null; draw: number | null }) => (c.transform ? `grid ${c.transform.angle}|${c.transform.dx}|${c.transform.dy}` : `draw ${c.draw}`);
const cellKey = (r: Pick<SpatialRecord, 'model' | 'modelSeed' | 'jpegMode' | 'transform' | 'draw'>) => `${spatialSeriesKey(r)}|${cellName(r)}`;

/**
 * Load a records file (missing: empty); refuse records of other images or settings (dataset, n, seed,
 * grid, resampling). A torn last line is dropped, and with `repair` cut from the file.
 */
export function loadSpatialRecords(path: string, expect?: Pick<SpatialRecord, 'dataset' | 'n' | 'seed' | 'grid' | 'fill' | 'interpolation'>, { repair = false }: { repair?: boolean } = {}): SpatialRecord[] {
  const setting = (r: Pick<SpatialRecord, 'dataset' | 'n' | 'seed' | 'grid' | 'fill' | 'interpolation'>) =>
    `${r.dataset}, n = ${r.n}, seed ${r.seed}, rotations ${r.grid.rotations} in ±${r.grid.maxRotation}°, shifts ${r.grid.translations} in ±${r.grid.maxTranslation} px, fill ${r.fill}, ${r.interpolation}`;
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as SpatialRecord;
    if (r.kind !== 'spatial') throw new Error(`${path}:${line}: not a spatial record (kind ${String(r.kind)})`);
    if (expect && setting(r) !== setting(expect)) throw new Error(`${path} holds spatial records of other settings (${setting(r)}; this run: ${setting(expect)}); use another --out`);
    return r;
  });
}

/** Per image: is the model right on the transformed images (inference mode), in batches. */
function correctness(model: tf.LayersModel, data: LabelledImages, transformsOf: (start: number, count: number) => SpatialTransform | SpatialTransform[], resample: Required<ResampleOptions>, batchSize: number): Uint8Array {
  const pixels = data.height * data.width * data.channels;
  return correctnessInBatches(model, data.labels, batchSize, (s, m) =>
    transformImages(tf.tensor4d(data.images.subarray(s * pixels, (s + m) * pixels), [m, data.height, data.width, data.channels]), transformsOf(s, m), resample));
}

/** Run (or resume) every cell: the grid transforms (identity first), then the random draws. Pixels 0-1. */
export async function evaluateSpatial(models: SpatialModel[], data: LabelledImages, o: SpatialEvalOptions = {}): Promise<SpatialRecord[]> {
  if (models.length === 0) throw new Error('models: nothing to evaluate');
  const { grid, resample, samples, batchSize, seed } = resolveSpatialEval(o);
  const dataset = o.dataset ?? 'unnamed';
  const n = data.labels.length;
  const setting = { dataset, n, seed, grid, fill: resample.fill, interpolation: resample.interpolation };
  const series = models.flatMap((m) => (jpegLayersOf(m.model).length ? (m.jpegModes ?? ['soft', 'hard']).map((mode) => ({ ...m, mode: mode as JpegMode | null })) : [{ ...m, mode: null as JpegMode | null }]));
  const done = new Map<string, SpatialRecord>();
  if (o.recordsPath) for (const r of loadSpatialRecords(o.recordsPath, setting, { repair: true })) done.set(cellKey(r), r);
  const cells = [
    ...spatialGrid(grid).map((t) => ({ transform: t as SpatialTransform | null, draw: null as number | null })),
    ...Array.from({ length: samples }, (_, d) => ({ transform: null as SpatialTransform | null, draw: d as number | null })),
  ];
  const total = cells.length * series.length;
  let count = 0;
  const records: SpatialRecord[] = [];
  for (const cell of cells) {
    // A draw gives image i its own transform from (seed, i, draw), whatever the batch.
    const transformsOf = (s: number, m: number) => (cell.transform ?? Array.from({ length: m }, (_, k) => randomTransform(seed, s + k, cell.draw!, grid)));
    for (const s of series) {
      const ids = { model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode, transform: cell.transform, draw: cell.draw };
      let rec = done.get(cellKey(ids));
      if (!rec) {
        const t0 = performance.now();
        // A randomised model (random JPEG) draws from its cell's own seed, so a resumed run draws what an unbroken one would.
        reseedRandomLayers(s.model, keySeed(seed, cellKey(ids)));
        const run = async () => correctness(s.model, data, transformsOf, resample, batchSize);
        const bits = s.mode ? await withJpegMode(s.model, s.mode, run) : await run();
        const correct = bits.reduce((a, v) => a + v, 0);
        rec = {
          schema: 1, kind: 'spatial', ...ids, variant: s.variant,
          search: cell.transform ? 'grid' : 'random', ...setting, correct, accuracy: correct / n, correctBits: packBits(bits), seconds: (performance.now() - t0) / 1000,
        };
        if (o.recordsPath) appendRecord(o.recordsPath, rec);
      }
      records.push(rec);
      o.onCell?.(++count, total, rec);
    }
  }
  return records;
}

/** The worst cases of the summary, in table order. */
export const SPATIAL_ROWS = ['clean', 'rotation', 'translation', 'grid', 'random'] as const;
export type SpatialRow = (typeof SPATIAL_ROWS)[number];

/** One model x mode in the summary; accuracies are null when the records lack the cells (e.g. no draws). */
export interface SpatialSeries {
  key: string;
  label: string;
  variant: string;
  /** Accuracy on untransformed images (the grid's identity). */
  clean: number | null;
  /** Right under every rotation of the grid without a shift. */
  rotation: number | null;
  /** Right under every shift of the grid without a rotation. */
  translation: number | null;
  /** Right under every transform of the grid (Engstrom et al.'s grid attack). */
  grid: number | null;
  /** Right under every random draw (worst-of-k). */
  random: number | null;
  /** Mean accuracy over the grid's transforms (the average case). */
  gridMean: number | null;
  /** Random draws per image. */
  draws: number;
  /** The same images right under every transform and draw: answers that do not depend on the transform (e.g. one class for everything). */
  invariant: boolean;
  /** Accuracy per angle without a shift, and worst over the shifts at each angle. */
  perAngle: { angle: number; accuracy: number; worstOverShifts: number }[];
  /** Accuracy per horizontal shift (no rotation, no vertical shift). */
  perShift: { dx: number; accuracy: number }[];
}

/** A paired comparison of a series with the reference (the first baseline) on one worst case. */
export interface SpatialPairedRow {
  series: string;
  row: SpatialRow;
  /** Images right for this series only, and for the reference only. */
  onlySeries: number;
  onlyReference: number;
  /** Two-sided exact McNemar p-value. */
  p: number;
}

/** The summary of a set of spatial records (series in first-seen order; the first baseline is the reference). */
export function summarizeSpatial(records: SpatialRecord[]): { series: SpatialSeries[]; reference: string | null; paired: SpatialPairedRow[]; n: number } {
  const keys = [...new Set(records.map(spatialSeriesKey))];
  const n = records[0]?.n ?? 0;
  const seedsOf = (model: string) => new Set(records.filter((r) => r.model === model).map((r) => r.modelSeed)).size;
  const bitsOf = new Map<string, Record<SpatialRow, Uint8Array | null>>();
  const series = keys.map((k) => {
    const mine = records.filter((r) => spatialSeriesKey(r) === k);
    const first = mine[0];
    const gridRecs = mine.filter((r) => r.transform);
    const isRot = (t: SpatialTransform) => t.dx === 0 && t.dy === 0;
    const isShift = (t: SpatialTransform) => t.angle === 0;
    // Each record's bits are unpacked once: a record enters several worst cases.
    const unpacked = new Map(mine.map((r) => [r, unpackBits(r.correctBits, n)]));
    // Per image AND over a set of records: right under every one of them.
    const all = (rs: SpatialRecord[]): Uint8Array | null => (rs.length ? allCorrect(rs.map((r) => unpacked.get(r)!), n) : null);
    const identity = gridRecs.find((r) => isRot(r.transform!) && isShift(r.transform!));
    const bits: Record<SpatialRow, Uint8Array | null> = {
      clean: identity ? unpacked.get(identity)! : null,
      rotation: all(gridRecs.filter((r) => isRot(r.transform!))),
      translation: all(gridRecs.filter((r) => isShift(r.transform!))),
      grid: all(gridRecs),
      random: all(mine.filter((r) => r.draw !== null)),
    };
    bitsOf.set(k, bits);
    const acc = (b: Uint8Array | null) => (b ? b.reduce((a, v) => a + v, 0) / n : null);
    const angles = [...new Set(gridRecs.map((r) => r.transform!.angle))].sort((a, b) => a - b);
    const perAngle = angles.flatMap((angle) => {
      const plain = gridRecs.find((r) => r.transform!.angle === angle && isRot(r.transform!));
      return plain ? [{ angle, accuracy: plain.accuracy, worstOverShifts: acc(all(gridRecs.filter((r) => r.transform!.angle === angle)))! }] : [];
    });
    const perShift = gridRecs.filter((r) => r.transform!.angle === 0 && r.transform!.dy === 0).map((r) => ({ dx: r.transform!.dx, accuracy: r.accuracy })).sort((a, b) => a.dx - b.dx);
    return {
      key: k,
      label: `${first.model}${first.jpegMode ? ` [${first.jpegMode}]` : ''}${seedsOf(first.model) > 1 ? ` seed ${first.modelSeed}` : ''}`,
      variant: first.variant,
      clean: acc(bits.clean), rotation: acc(bits.rotation), translation: acc(bits.translation), grid: acc(bits.grid), random: acc(bits.random),
      gridMean: gridRecs.length ? gridRecs.reduce((a, r) => a + r.accuracy, 0) / gridRecs.length : null,
      draws: mine.filter((r) => r.draw !== null).length,
      invariant: mine.length > 1 && mine.every((r) => r.correctBits === mine[0].correctBits),
      perAngle,
      perShift,
    };
  });
  const reference = series.find((s) => s.variant === 'baseline')?.key ?? null;
  const paired: SpatialPairedRow[] = [];
  if (reference) {
    const ref = bitsOf.get(reference)!;
    for (const s of series.filter((x) => x.key !== reference)) {
      const mine = bitsOf.get(s.key)!;
      for (const row of SPATIAL_ROWS) {
        const [a, b] = [mine[row], ref[row]];
        if (!a || !b) continue;
        paired.push({ series: s.label, row, ...pairedBits(a, b) });
      }
    }
  }
  return { series, reference, paired, n };
}

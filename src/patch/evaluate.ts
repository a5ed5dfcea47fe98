/**
 * Adversarial patches across models: for each model (as the source, in each crafting mode) and each
 * patch size, one patch is fitted on the fit images (training split) and every model is scored with it
 * on held-out images, pasted at one seeded random position per image (the same positions for every
 * patch and model, so cells are paired) and, unless turned off, at every position of a grid (an image
 * counts as right only when it is right wherever the patch goes: the attacker choosing the place).
 * A patch of uniform noise of the same size is the control: what occluding that much of the image
 * costs without any fitting. Optionally (`perImage`) every model also meets the strongest patch threat:
 * a patch of its own for every image, at a place of its own, white-box (attacks/patch_pgd.ts). One record
 * per (source, size, evaluated model x mode), appended and fsynced; each fitted patch is saved
 * atomically, so a killed run refits nothing it finished.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { applyPatch, fitPatch, gridOffsets, randomPlacements, type Placements } from '../../attacks/patch.ts';
import { patchPgd } from '../../attacks/patch_pgd.ts';
import { createRng, keySeed } from '../data/rng.ts';
import { predictClasses, topClassShare } from '../eval/predict.ts';
import { appendRecord, packBits } from '../eval/records.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { decodeFloats, encodeFloats } from '../io/floats.ts';
import { readJsonLines } from '../io/jsonl.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { jpegLayersOf, withJpegMode, type JpegMode } from '../train/jpeg-params.ts';
import { universalSeriesKey, type UniversalModel } from '../universal/evaluate.ts';

/** The model (and JPEG mode) a patch was fitted on; the noise control is model "noise", variant "noise"; the per-image attack model "per-image", variant "per-image". */
export interface PatchSource {
  model: string;
  variant: string;
  modelSeed: number;
  /** Mode of its JPEG layers while fitting (null: none). */
  mode: JpegMode | null;
}

/** How every patch of a run is fitted and placed (the same for all sources and sizes). */
export interface PatchSettings {
  epochs: number;
  batchSize: number;
  /** First sign step on the 0-1 scale, and its factor per pass. */
  stepSize: number;
  stepDecay: number;
  /** Untargeted: cross-entropy clamp per image (nats). */
  beta: number;
  /** Targeted: the class every image is sent to (null: untargeted). */
  target: number | null;
  /** Worst placement over a grid of corners this many pixels apart (null: the size, i.e. tiles; 0: no grid). */
  gridStride: number | null;
}

/** The worst placement over the grid: images right at every grid position. */
export interface GridResult {
  positions: number;
  correct: number;
  accuracy: number;
  correctBits: string;
}

/** One cell: a model (in one JPEG mode) on the held-out images with one patch, or clean (source null, size 0). */
export interface PatchRecord {
  schema: 1;
  kind: 'patch';
  source: PatchSource | null;
  /** Side of the patch in pixels, and the fraction of the image it covers. */
  size: number;
  area: number;
  /** The model evaluated, in `jpegMode`. */
  model: string;
  variant: string;
  modelSeed: number;
  jpegMode: JpegMode | null;
  dataset: string;
  n: number;
  fitN: number;
  seed: number;
  settings: PatchSettings;
  /** At the seeded random position of each image. */
  correct: number;
  accuracy: number;
  correctBits: string;
  /** Images whose prediction differs from the model's clean prediction. */
  changed: number;
  changeRate: number;
  predictedClasses: number;
  topClassShare: number;
  /** Targeted: images of other classes now predicted as the target, and their fraction. */
  targetHits: number | null;
  targetRate: number | null;
  grid: GridResult | null;
  /** The source's success on the fit images (null: clean, the noise control, the per-image attack). */
  fitSuccess: number | null;
  /** Per-image records only: the attack's settings and the JPEG mode it crafted in (the series' own, BPDA for hard). */
  perImage?: PerImageSettings & { craftMode: JpegMode | null };
  seconds: number;
}

/** The per-image white-box patch attack of an evaluation (attacks/patch_pgd.ts). */
export interface PerImageSettings {
  steps: number;
  restarts: number;
  stepSize: number;
}

/** A fitted patch as saved in <out>/patches/. */
export interface SavedPatch {
  schema: 1;
  kind: 'adversarial-patch';
  source: PatchSource;
  size: number;
  dataset: string;
  fitN: number;
  seed: number;
  settings: PatchSettings;
  shape: [number, number, number, number];
  /** Float32 little-endian, base64. */
  data: string;
  successRate: number;
  history: number[];
  seconds: number;
}

/** A fitted (or loaded) patch, as the report draws it. */
export interface PatchPicture {
  source: PatchSource;
  size: number;
  /** [size,size,c] values in [0,1]. */
  values: Float32Array;
  successRate: number;
}

/** Options of evaluatePatches. */
export interface PatchEvalOptions extends Partial<PatchSettings> {
  /** Patch sides in pixels (default 4, 6, 8). */
  sizes?: number[];
  /** Images per forward pass when scoring (default 100). */
  evalBatchSize?: number;
  /** Seed of the fitting, the positions and the noise control (default 0; the job also seeds its subsets with it). */
  seed?: number;
  /** Also score a patch of uniform noise of each size (default true). */
  noise?: boolean;
  /** Also attack every image with a patch of its own (white-box; absent or null: not run). */
  perImage?: Partial<PerImageSettings> | null;
  dataset?: string;
  /** JSONL file: done cells are skipped, new ones appended. */
  recordsPath?: string;
  /** Directory of the fitted patches (resumed from, written to). */
  patchesDir?: string;
  onCell?: (done: number, total: number, record: PatchRecord) => void;
}

export const NOISE_SOURCE = 'noise';
export const PER_IMAGE_SOURCE = 'per-image';
export const DEFAULT_PATCH_SIZES = [4, 6, 8];

/** Check the options before any work (sizes against the images' `side`, the smaller of height and width). */
export function resolvePatchEval(o: PatchEvalOptions = {}, side = Infinity): { settings: PatchSettings; sizes: number[]; evalBatchSize: number; seed: number; perImage: PerImageSettings | null } {
  const int = (v: number | undefined, d: number, what: string, min: number) => {
    const x = v ?? d;
    if (!(Number.isInteger(x) && x >= min)) throw new Error(`${what}: must be an integer >= ${min}, got ${String(v)}`);
    return x;
  };
  const positive = (v: number | undefined, d: number, what: string) => {
    const x = v ?? d;
    if (!(typeof x === 'number' && Number.isFinite(x) && x > 0)) throw new Error(`${what}: must be a number > 0, got ${String(v)}`);
    return x;
  };
  const stepDecay = o.stepDecay ?? 0.8;
  if (!(typeof stepDecay === 'number' && stepDecay > 0 && stepDecay <= 1)) throw new Error(`stepDecay: must be in (0, 1], got ${String(o.stepDecay)}`);
  const target = o.target ?? null;
  if (target !== null && !(Number.isInteger(target) && target >= 0)) throw new Error(`target: must be a class index (integer >= 0), got ${String(target)}`);
  const gridStride = o.gridStride ?? null;
  if (gridStride !== null && !(Number.isInteger(gridStride) && gridStride >= 0)) throw new Error(`gridStride: must be an integer >= 0 (0: no grid), got ${String(gridStride)}`);
  const settings: PatchSettings = {
    epochs: int(o.epochs, 10, 'epochs', 1), batchSize: int(o.batchSize, 32, 'batchSize', 1), stepSize: positive(o.stepSize, 0.05, 'stepSize'), stepDecay,
    beta: positive(o.beta, 10, 'beta'), target, gridStride,
  };
  const sizes = o.sizes ?? DEFAULT_PATCH_SIZES;
  if (!Array.isArray(sizes) || sizes.length === 0) throw new Error('sizes: the list of patch sizes is empty');
  for (const s of sizes) if (!(Number.isInteger(s) && s >= 1 && s <= side)) throw new Error(`sizes: a patch side is an integer from 1 to the image's side (${side}), got ${String(s)}`);
  if (new Set(sizes).size !== sizes.length) throw new Error(`sizes: ${sizes.join(',')} lists a size twice`);
  const perImage = o.perImage ? {
    steps: int(o.perImage.steps, 20, 'perImage.steps', 1), restarts: int(o.perImage.restarts, 4, 'perImage.restarts', 1), stepSize: positive(o.perImage.stepSize, 0.1, 'perImage.stepSize'),
  } : null;
  return { settings, sizes: [...sizes].sort((a, b) => a - b), evalBatchSize: int(o.evalBatchSize, 100, 'evalBatchSize', 1), seed: int(o.seed, 0, 'seed', 0), perImage };
}

/** Name of a source or evaluated series: model, seed and JPEG mode (as the universal evaluation names them). */
export const patchSeriesKey = universalSeriesKey;
const recordKey = (r: Pick<PatchRecord, 'source' | 'size' | 'model' | 'modelSeed' | 'jpegMode'>) => `${r.source ? patchSeriesKey(r.source) : 'clean'}|${r.size}|${patchSeriesKey(r)}`;

const settingText = (r: { dataset: string; n?: number; fitN: number; seed: number; settings: PatchSettings }) =>
  `${r.dataset}${r.n === undefined ? '' : `, n = ${r.n}`}, ${r.fitN} fit images, seed ${r.seed}, ${JSON.stringify(r.settings)}`;

/** Load a records file (missing: empty); refuse records of other images or settings. A torn last line is dropped (and with `repair` cut). */
export function loadPatchRecords(path: string, expect?: Pick<PatchRecord, 'dataset' | 'n' | 'fitN' | 'seed' | 'settings'>, { repair = false }: { repair?: boolean } = {}): PatchRecord[] {
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as PatchRecord;
    if (r.kind !== 'patch') throw new Error(`${path}:${line}: not an adversarial-patch record (kind ${String(r.kind)})`);
    if (expect && settingText(r) !== settingText(expect)) throw new Error(`${path} holds adversarial-patch records of other settings (${settingText(r)}; this run: ${settingText(expect)}); use another --out`);
    return r;
  });
}

/** File name of a saved patch: source and size, filesystem-safe. */
export function patchFile(source: PatchSource, size: number): string {
  return `${patchSeriesKey(source)}@${size}px`.replace(/[^A-Za-z0-9._-]+/g, '_') + '.json';
}

/** Read a saved patch, refusing one of other settings, images or shape (the path names the file). */
export function readPatch(path: string, expect: Pick<SavedPatch, 'dataset' | 'fitN' | 'seed' | 'settings' | 'shape'>): { saved: SavedPatch; values: Float32Array } {
  let saved: SavedPatch;
  try {
    saved = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not a readable patch file (${(err as Error).message})`);
  }
  if (saved.kind !== 'adversarial-patch') throw new Error(`${path}: not an adversarial patch (kind ${String(saved.kind)})`);
  if (settingText(saved) !== settingText(expect)) throw new Error(`${path} was fitted with other settings (${settingText(saved)}; this run: ${settingText(expect)}); use another --out`);
  if (saved.shape.join('x') !== expect.shape.join('x')) throw new Error(`${path}: patch of shape ${saved.shape.join('x')}, this run needs ${expect.shape.join('x')}`);
  return { saved, values: decodeFloats(saved.data, saved.shape.reduce((a, b) => a * b, 1), path, 'patch') };
}

/** The noise control of a size: uniform values from a stream keyed by the run's seed and the size. */
export function noisePatch(size: number, channels: number, seed: number): Float32Array {
  const rng = createRng(keySeed(seed, `noise|${size}`));
  return Float32Array.from({ length: size * size * channels }, () => rng.next());
}

/** The evaluation's random position of every image for a size (shared by all patches and models). */
export const evalPlacements = (n: number, height: number, width: number, size: number, seed: number): Placements => randomPlacements(n, height, width, size, keySeed(seed, `place|${size}`));

type Series = UniversalModel & { mode: JpegMode | null };
const seriesKey = (s: Series) => patchSeriesKey({ model: s.name, modelSeed: s.modelSeed, mode: s.mode });

/**
 * Per image: right at every grid position of the patch? Only images still right are scored at the next
 * position (the answer is the same, the work shrinks as the patch wins). Pixels 0-1.
 */
function gridCorrect(model: tf.LayersModel, x: tf.Tensor4D, labels: Int32Array, patch: tf.Tensor4D, stride: number, batchSize: number): { bits: Uint8Array; positions: number } {
  const [n, h, w] = x.shape;
  const s = patch.shape[1];
  const bits = new Uint8Array(n).fill(1);
  const rows = gridOffsets(h, s, stride);
  const cols = gridOffsets(w, s, stride);
  for (const r of rows) {
    for (const c of cols) {
      const alive = Array.from({ length: n }, (_, i) => i).filter((i) => bits[i]);
      if (alive.length === 0) break;
      const pred = predictClasses(model, alive.length, batchSize, (start, m) => tf.tidy(() => {
        const at = { rows: new Int32Array(m).fill(r), cols: new Int32Array(m).fill(c) };
        return applyPatch(tf.gather(x, tf.tensor1d(alive.slice(start, start + m), 'int32')) as tf.Tensor4D, patch, at);
      }));
      alive.forEach((i, k) => (bits[i] = Number(pred[k] === labels[i])));
    }
  }
  return { bits, positions: rows.length * cols.length };
}

/**
 * Run (or resume) every cell: the clean cell of each evaluated series, then per size and source the
 * patch (fitted on `fit`, loaded, or the noise control) and one record per evaluated series on `test`.
 */
export async function evaluatePatches(models: UniversalModel[], fit: LabelledImages, test: LabelledImages, o: PatchEvalOptions = {}): Promise<{ records: PatchRecord[]; patches: PatchPicture[] }> {
  if (models.length === 0) throw new Error('models: nothing to evaluate');
  const names = models.map((m) => patchSeriesKey({ model: m.name, modelSeed: m.modelSeed }));
  const twice = names.find((k, i) => names.indexOf(k) !== i);
  if (twice) throw new Error(`models: two models are ${twice} (name and seed must tell them apart)`);
  const [h, w, ch] = [test.height, test.width, test.channels];
  if ([fit.height, fit.width, fit.channels].join('x') !== [h, w, ch].join('x')) throw new Error(`fit images are ${fit.height}x${fit.width}x${fit.channels}, test images ${h}x${w}x${ch}`);
  const { settings, sizes, evalBatchSize, seed, perImage } = resolvePatchEval(o, Math.min(h, w));
  const dataset = o.dataset ?? 'unnamed';
  const [n, fitN] = [test.labels.length, fit.labels.length];
  const setting = { dataset, n, fitN, seed, settings };
  const hasJpeg = (m: UniversalModel) => jpegLayersOf(m.model).length > 0;
  const evalSeries: Series[] = models.flatMap((m): Series[] => (hasJpeg(m) ? (m.jpegModes ?? ['soft', 'hard']).map((mode) => ({ ...m, mode })) : [{ ...m, mode: null }]));
  const fitted: Series[] = models.flatMap((m): Series[] => (hasJpeg(m) ? (m.craftModes ?? ['soft']).map((mode) => ({ ...m, mode })) : [{ ...m, mode: null }]));
  const sources: { source: PatchSource; fitFrom: Series | null }[] = [
    ...fitted.map((f) => ({ source: { model: f.name, variant: f.variant, modelSeed: f.modelSeed, mode: f.mode }, fitFrom: f })),
    ...((o.noise ?? true) ? [{ source: { model: NOISE_SOURCE, variant: 'noise', modelSeed: 0, mode: null }, fitFrom: null }] : []),
  ];
  const perImageSource: PatchSource = { model: PER_IMAGE_SOURCE, variant: 'per-image', modelSeed: 0, mode: null };
  const done = new Map<string, PatchRecord>();
  if (o.recordsPath) for (const r of loadPatchRecords(o.recordsPath, setting, { repair: true })) done.set(recordKey(r), r);
  if (o.patchesDir) mkdirSync(o.patchesDir, { recursive: true });
  const total = evalSeries.length * (1 + sizes.length * (sources.length + (perImage ? 1 : 0)));
  let count = 0;
  const records: PatchRecord[] = [];
  const patches: PatchPicture[] = [];
  const pixels = h * w * ch;
  const testX = tf.tensor4d(test.images.subarray(0, n * pixels), [n, h, w, ch]);
  const testY = Int32Array.from(test.labels.subarray(0, n));
  const fitX = tf.tensor4d(fit.images.subarray(0, fitN * pixels), [fitN, h, w, ch]);
  const fitY = tf.tensor1d(fit.labels.subarray(0, fitN), 'int32');
  const inMode = async <T>(s: Series, fn: () => T | Promise<T>) => (s.mode ? withJpegMode(s.model, s.mode, fn) : fn());
  try {
    const clean = new Map<string, Int32Array>();
    for (const s of evalSeries) {
      const t0 = performance.now();
      reseedRandomLayers(s.model, keySeed(seed, `clean|${seriesKey(s)}`));
      const pred = await inMode(s, () => predictClasses(s.model, n, evalBatchSize, (start, m) => testX.slice([start, 0, 0, 0], [m, -1, -1, -1])));
      clean.set(seriesKey(s), pred);
      const ids = { source: null, size: 0, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode };
      const rec = done.get(recordKey(ids)) ?? cellRecord(ids, s, pred, pred, testY, setting, null, null, null, performance.now() - t0, h * w);
      if (!done.has(recordKey(ids)) && o.recordsPath) appendRecord(o.recordsPath, rec);
      records.push(rec);
      o.onCell?.(++count, total, rec);
    }
    for (const size of sizes) {
      const at = evalPlacements(n, h, w, size, seed);
      const stride = settings.gridStride ?? size;
      for (const { source, fitFrom } of sources) {
        const missing = evalSeries.filter((s) => !done.has(recordKey({ source, size, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode })));
        const file = fitFrom && o.patchesDir ? join(o.patchesDir, patchFile(source, size)) : null;
        const t0 = performance.now();
        let successRate: number | null = null;
        let values: Float32Array | null = null;
        if (!fitFrom) {
          if (missing.length) values = noisePatch(size, ch, seed);
        } else if (file && existsSync(file)) {
          const loaded = readPatch(file, { dataset, fitN, seed, settings, shape: [1, size, size, ch] });
          [values, successRate] = [loaded.values, loaded.saved.successRate];
        } else if (missing.length || file) {
          const made = await fitOne(fitFrom, source, size, fitX, fitY, seed, settings, dataset);
          if (file) writeJsonAtomic(file, made.saved);
          [values, successRate] = [made.values, made.saved.successRate];
        }
        if (fitFrom && values) patches.push({ source, size, values, successRate: successRate! });
        const fitSeconds = (performance.now() - t0) / 1000;
        const patch = missing.length ? tf.tensor4d(values!, [1, size, size, ch]) : null;
        try {
          for (const s of evalSeries) {
            const ids = { source, size, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode };
            let rec = done.get(recordKey(ids));
            if (!rec) {
              const t1 = performance.now();
              reseedRandomLayers(s.model, keySeed(seed, recordKey(ids)));
              const pred = await inMode(s, () => predictClasses(s.model, n, evalBatchSize, (start, m) => tf.tidy(() => applyPatch(testX.slice([start, 0, 0, 0], [m, -1, -1, -1]), patch!, { rows: at.rows.subarray(start, start + m), cols: at.cols.subarray(start, start + m) }))));
              const grid = stride > 0 ? await inMode(s, () => gridCorrect(s.model, testX, testY, patch!, stride, evalBatchSize)) : null;
              rec = cellRecord(ids, s, pred, clean.get(seriesKey(s))!, testY, setting, successRate, grid, size, performance.now() - t1 + (s === missing[0] ? fitSeconds * 1000 : 0), h * w);
              if (o.recordsPath) appendRecord(o.recordsPath, rec);
            }
            records.push(rec);
            o.onCell?.(++count, total, rec);
          }
        } finally {
          patch?.dispose();
        }
      }
      if (!perImage) continue;
      // The per-image attack: each series crafted in its own mode (hard through BPDA), scored in its evaluation mode.
      for (const s of evalSeries) {
        const ids = { source: perImageSource, size, model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode };
        const craftMode: JpegMode | null = s.mode === 'hard' ? 'bpda-identity' : s.mode;
        let rec = done.get(recordKey(ids));
        if (rec && JSON.stringify(rec.perImage) !== JSON.stringify({ ...perImage, craftMode })) {
          throw new Error(`${o.recordsPath} holds per-image patch records of other settings (${JSON.stringify(rec.perImage)}; this run: ${JSON.stringify({ ...perImage, craftMode })}); use another --out`);
        }
        if (!rec) {
          const t1 = performance.now();
          reseedRandomLayers(s.model, keySeed(seed, recordKey(ids)));
          const adv = await perImageAttack(s, craftMode, testX, testY, size, perImage, settings.target, keySeed(seed, `per-image|${size}`), evalBatchSize);
          try {
            const pred = await inMode(s, () => predictClasses(s.model, n, evalBatchSize, (start, m) => adv.slice([start, 0, 0, 0], [m, -1, -1, -1])));
            rec = { ...cellRecord(ids, s, pred, clean.get(seriesKey(s))!, testY, setting, null, null, size, performance.now() - t1, h * w), perImage: { ...perImage, craftMode } };
          } finally {
            adv.dispose();
          }
          if (o.recordsPath) appendRecord(o.recordsPath, rec);
        }
        records.push(rec);
        o.onCell?.(++count, total, rec);
      }
    }
    return { records, patches };
  } finally {
    tf.dispose([testX, fitX, fitY]);
  }
}

/** Per-image patches for every test image (towards `target` when set), `batchSize` at a time, crafted on `s` in `craftMode` (pixels 0-1). Caller disposes. */
async function perImageAttack(s: Series, craftMode: JpegMode | null, x: tf.Tensor4D, y: Int32Array, size: number, o: PerImageSettings, target: number | null, seed: number, batchSize: number): Promise<tf.Tensor4D> {
  const parts: tf.Tensor4D[] = [];
  try {
    for (let start = 0; start < y.length; start += batchSize) {
      const m = Math.min(batchSize, y.length - start);
      const xb = x.slice([start, 0, 0, 0], [m, -1, -1, -1]);
      const yb = tf.tensor1d(y.subarray(start, start + m), 'int32');
      try {
        const run = () => patchPgd(s.model, xb, yb, { size, steps: o.steps, restarts: o.restarts, stepSize: o.stepSize, seed: keySeed(seed, String(start)), ...(target !== null ? { target } : {}) }).adversarial;
        parts.push(craftMode ? await withJpegMode(s.model, craftMode, run) : run());
      } finally {
        tf.dispose([xb, yb]);
      }
    }
    return tf.concat(parts) as tf.Tensor4D;
  } finally {
    tf.dispose(parts);
  }
}

/** Fit one patch on the fit images with `src` in its crafting mode (a randomised model draws from the cell's own seed). */
async function fitOne(src: Series, source: PatchSource, size: number, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, settings: PatchSettings, dataset: string): Promise<{ saved: SavedPatch; values: Float32Array }> {
  const t0 = performance.now();
  reseedRandomLayers(src.model, keySeed(seed, `fit|${patchSeriesKey(source)}|${size}`));
  const run = () => fitPatch(src.model, x, y, {
    size, epochs: settings.epochs, batchSize: settings.batchSize, stepSize: settings.stepSize, stepDecay: settings.stepDecay, beta: settings.beta, seed,
    ...(settings.target !== null ? { target: settings.target } : {}),
  });
  const r = src.mode ? await withJpegMode(src.model, src.mode, run) : run();
  const values = Float32Array.from(r.patch.dataSync() as Float32Array);
  r.patch.dispose();
  const saved: SavedPatch = {
    schema: 1, kind: 'adversarial-patch', source, size, dataset, fitN: y.shape[0], seed, settings, shape: [1, size, size, x.shape[3]],
    data: encodeFloats(values), successRate: r.successRate, history: r.history, seconds: (performance.now() - t0) / 1000,
  };
  return { saved, values };
}

function cellRecord(
  ids: { source: PatchSource | null; size: number; model: string; modelSeed: number; jpegMode: JpegMode | null },
  s: Series, pred: Int32Array, cleanPred: Int32Array, labels: Int32Array,
  setting: { dataset: string; n: number; fitN: number; seed: number; settings: PatchSettings },
  fitSuccess: number | null, grid: { bits: Uint8Array; positions: number } | null, size: number | null, ms: number, imageArea: number,
): PatchRecord {
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
  const gridCount = grid ? grid.bits.reduce((a, v) => a + v, 0) : 0;
  return {
    schema: 1, kind: 'patch', ...ids, area: ((size ?? 0) ** 2) / imageArea, variant: s.variant, ...setting,
    correct, accuracy: correct / n, correctBits: packBits(bits), changed, changeRate: changed / n, predictedClasses: new Set(pred).size, topClassShare: topClassShare(pred),
    targetHits: target === null || ids.source === null ? null : hits, targetRate: target === null || ids.source === null ? null : others ? hits / others : 0,
    grid: grid ? { positions: grid.positions, correct: gridCount, accuracy: gridCount / n, correctBits: packBits(grid.bits) } : null,
    fitSuccess, seconds: ms / 1000,
  };
}

/**
 * `jpegdl-robust patch` as a library call: saved checkpoints (or a run directory); patches fitted on a
 * seeded class-balanced subset of the training split, scored on one of the test split; records in
 * <out>/records.jsonl and patches in <out>/patches/ (both resumable), the tables in
 * <out>/patch.{json,md,txt,html} with a picture of the patches.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { QUANT_MODES as JPEG_MODES } from '../jpeg/quantize.ts';
import { imageGridPng } from '../report/examples.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { evalPlacements, evaluatePatches, patchSeriesKey, resolvePatchEval, type PatchEvalOptions, type PatchPicture, type PatchRecord } from './evaluate.ts';
import { renderPatchTerminal, writePatchReport } from './report.ts';

/** What to evaluate and where to write it. */
export interface PatchJobOptions extends Omit<PatchEvalOptions, 'dataset' | 'recordsPath' | 'patchesDir' | 'onCell'>, Omit<JobSourceOptions, 'split'> {
  /** Held-out test images (class-balanced seeded subset; default 500) and training images to fit on (default 1000). */
  n?: number;
  fitN?: number;
  /** Modes JPEG-DL models are evaluated in (default soft, hard) and fitted in (default soft). */
  jpegModes?: JpegMode[];
  craftModes?: JpegMode[];
  out: string;
  onCell?: (done: number, total: number) => void;
}

/** Pixels 0-1 of an image-sized canvas: `values` ([s,s,c]) pasted at (row, col) over `base`. */
function pasted(base: Float32Array, w: number, c: number, values: Float32Array, s: number, row: number, col: number): Float32Array {
  const out = Float32Array.from(base);
  for (let r = 0; r < s; r++) for (let q = 0; q < s; q++) for (let k = 0; k < c; k++) out[((row + r) * w + col + q) * c + k] = values[(r * s + q) * c + k];
  return out;
}

/**
 * The picture of the patches: one row per source; per size the patch alone (centred on grey) and the
 * first test image with it at that image's random position in the evaluation.
 */
export function patchPicturePng(patches: PatchPicture[], test: LabelledImages, seed: number): Uint8Array {
  const { height: h, width: w, channels: c } = test;
  const first = test.images.subarray(0, h * w * c);
  const grey = new Float32Array(h * w * c).fill(0.5);
  const rows = new Map<string, Float32Array[]>();
  for (const p of patches) {
    const key = patchSeriesKey(p.source);
    const at = evalPlacements(test.labels.length, h, w, p.size, seed);
    const alone = pasted(grey, w, c, p.values, p.size, Math.floor((h - p.size) / 2), Math.floor((w - p.size) / 2));
    rows.set(key, [...(rows.get(key) ?? []), alone, pasted(first, w, c, p.values, p.size, at.rows[0], at.cols[0])]);
  }
  return imageGridPng([...rows.values()], test);
}

/** Write the report of `records` into `outDir`: patch.{json,md,txt,html} and, when patches were fitted or loaded, patches.png. */
export function writePatchOutputs(
  outDir: string,
  test: LabelledImages,
  fit: LabelledImages,
  records: PatchRecord[],
  patches: PatchPicture[],
  o: { seed: number; datasetName: string; noise: boolean; notes?: string[]; meta?: Record<string, unknown> },
): { title: string; files: { json: string; markdown: string; terminal: string; html: string }; picture: string | null } {
  const title = `Adversarial patches: ${o.datasetName}, ${test.labels.length} test images, fitted on ${fit.labels.length} training images`;
  const notes = [
    'An adversarial patch (Brown et al. 2017) is a small square of any pixel values, the same for every image and put anywhere: no Lp budget bounds it, its size does. It is a physical-world threat (a sticker), which input transformations such as JPEG compression are not built to remove.',
    'Fit and evaluation images come from different splits (training and test); the random positions are the same for every patch and model, so cells are paired.',
    ...(o.noise ? ['Uniform noise: a patch of random values of the same size, no fit: what covering that much of the image costs by itself.'] : []),
    ...(records.some((r) => r.perImage) ? ['Per image: a patch of its own for every image at a place of its own, found with the model\'s gradients (hard JPEG through BPDA): the strongest patch threat here, an upper bound on what one universal patch can do.'] : []),
    ...(o.notes ?? []),
  ];
  mkdirSync(outDir, { recursive: true });
  let picture: string | null = null;
  if (patches.length) {
    picture = join(outDir, 'patches.png');
    writeFileAtomic(picture, patchPicturePng(patches, test, o.seed));
  }
  const files = writePatchReport(outDir, records, { title, notes, dataset: o.datasetName, n: test.labels.length, fitN: fit.labels.length, seed: o.seed, ...o.meta, ...(picture ? { picturePng: 'patches.png' } : {}) });
  return { title, files, picture };
}

/** Run (or resume) the adversarial-patch evaluation and write its report; every argument is checked before loading. */
export async function runPatchJob(o: PatchJobOptions): Promise<{ records: PatchRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string; picture: string | null; patches: string }; terminal: string }> {
  const src = resolveModelSources(o, 'patch');
  const n = o.n ?? 500;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`-n: must be an integer >= 1, got ${o.n}`);
  const fitN = o.fitN ?? 1000;
  if (!(Number.isInteger(fitN) && fitN >= 1)) throw new Error(`--fit-n: must be an integer >= 1, got ${o.fitN}`);
  const jpegModes = o.jpegModes ?? ['soft', 'hard'];
  for (const m of jpegModes) if (m !== 'soft' && m !== 'hard') throw new Error(`--jpeg-modes: models are evaluated as they are deployed, soft or hard; got "${m}"`);
  const craftModes = o.craftModes ?? ['soft'];
  for (const m of craftModes) if (!(JPEG_MODES as readonly string[]).includes(m)) throw new Error(`--craft-modes: unknown JPEG mode "${m}" (known: ${JPEG_MODES.join(', ')})`);
  const evalOptions: PatchEvalOptions = {
    sizes: o.sizes, epochs: o.epochs, batchSize: o.batchSize, stepSize: o.stepSize, stepDecay: o.stepDecay, beta: o.beta, target: o.target, gridStride: o.gridStride,
    evalBatchSize: o.evalBatchSize, seed: o.seed, noise: o.noise, perImage: o.perImage,
  };
  // Sizes are checked against the images once they are known; everything else now.
  const { seed, settings } = resolvePatchEval(evalOptions);
  const testData = resolveJobData(src, { dataset: o.dataset, split: 'test' });
  const { full, data: test } = await loadJobData(testData, n, seed);
  resolvePatchEval(evalOptions, Math.min(test.height, test.width));
  const { data: fit } = await loadJobData({ ...testData, split: 'train' }, fitN, seed);
  if (settings.target !== null && !test.labels.some((y) => y !== settings.target)) throw new Error(`--target: every test image is of class ${settings.target}`);
  const outDir = resolve(o.out);
  mkdirSync(outDir, { recursive: true });
  const recordsPath = join(outDir, 'records.jsonl');
  const patchesDir = join(outDir, 'patches');
  const { models, dispose } = await loadJobModels(src, test, jpegModes);
  try {
    const { records, patches } = await evaluatePatches(models.map((m) => ({ ...m, craftModes })), fit, test, { ...evalOptions, dataset: full.name, recordsPath, patchesDir, onCell: o.onCell });
    const { title, files, picture } = writePatchOutputs(outDir, test, fit, records, patches, { seed, datasetName: full.name, noise: o.noise !== false, notes: modelNotes(src), meta: { models: [...src.metas.keys()] } });
    return { records, files: { ...files, records: recordsPath, picture, patches: patchesDir }, terminal: renderPatchTerminal(records, title) };
  } finally {
    dispose();
  }
}

/**
 * `jpegdl-robust universal` as a library call: saved checkpoints (or a run directory); perturbations
 * fitted on a seeded class-balanced subset of the training split, scored on one of the test split;
 * records in <out>/records.jsonl and perturbations in <out>/perturbations/ (both resumable), the
 * tables in <out>/universal.{json,md,txt,html} with a picture of the perturbations.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { imageGridPng } from '../report/examples.ts';
import { QUANT_MODES as JPEG_MODES } from '../jpeg/quantize.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { evaluateUniversal, resolveUniversalEval, universalSeriesKey, type UniversalEvalOptions, type UniversalPerturbation, type UniversalRecord, type UniversalSettings } from './evaluate.ts';
import { renderUniversalTerminal, writeUniversalReport } from './report.ts';

/** What to evaluate and where to write it. */
export interface UniversalJobOptions extends Omit<UniversalEvalOptions, 'dataset' | 'recordsPath' | 'perturbationsDir' | 'onCell'>, Omit<JobSourceOptions, 'split'> {
  /** Held-out test images (class-balanced seeded subset; default 500) and training images to fit on (default 1000). */
  n?: number;
  fitN?: number;
  /** Modes JPEG-DL models are evaluated in (default soft, hard) and fitted in (default soft). */
  jpegModes?: JpegMode[];
  craftModes?: JpegMode[];
  out: string;
  onCell?: (done: number, total: number) => void;
}

/**
 * The picture of the perturbations: one row per source; per eps the perturbation (0.5 grey = 0,
 * scaled by its largest magnitude) and the first test image with it added (clipped to [0,1]).
 */
export function universalExamplesPng(perturbations: UniversalPerturbation[], test: LabelledImages): Uint8Array {
  const pixels = test.height * test.width * test.channels;
  const first = test.images.subarray(0, pixels);
  const rows = new Map<string, Float32Array[]>();
  for (const p of perturbations) {
    const key = universalSeriesKey(p.source);
    const peak = p.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
    const shown = p.values.map((v) => 0.5 + v / (2 * peak));
    const added = first.map((v, i) => Math.min(1, Math.max(0, v + p.values[i])));
    rows.set(key, [...(rows.get(key) ?? []), shown, added]);
  }
  return imageGridPng([...rows.values()], test);
}

/**
 * Write the report of `records` into `outDir`: universal.{json,md,txt,html} and, when perturbations were
 * fitted or loaded, universal-perturbations.png. Returns the title and paths.
 */
export function writeUniversalOutputs(
  outDir: string,
  test: LabelledImages,
  fit: LabelledImages,
  records: UniversalRecord[],
  perturbations: UniversalPerturbation[],
  o: { settings: UniversalSettings; seed: number; datasetName: string; epsilons: string[]; constants: boolean; notes?: string[]; meta?: Record<string, unknown> },
): { title: string; files: { json: string; markdown: string; terminal: string; html: string }; examples: string | null } {
  const title = `Universal perturbations: ${o.datasetName}, ${test.labels.length} test images, fitted on ${fit.labels.length} training images`;
  const notes = [
    'A universal perturbation is one pattern added to every image (Moosavi-Dezfooli et al. 2017): a weaker threat than a per-image attack, but one an attacker can compute once, offline, and apply to inputs never seen. Each model gets its own; the other cells measure transfer.',
    'Fit and evaluation images come from different splits (training and test), so the accuracy is that of images the perturbation was not fitted on.',
    ...(o.constants ? ['Uniform ±eps: every pixel shifted by +eps (brighter) or -eps (darker) before clipping; no fit, the trivial universal perturbation a fitted one should beat.'] : []),
    ...(o.settings.target !== null ? [`Targeted at class ${o.settings.target}: the fit pulls every image towards it (minus its cross-entropy).`] : []),
    ...(o.notes ?? []),
  ];
  mkdirSync(outDir, { recursive: true });
  let examples: string | null = null;
  if (perturbations.length) {
    examples = join(outDir, 'universal-perturbations.png');
    writeFileAtomic(examples, universalExamplesPng(perturbations, test));
  }
  const files = writeUniversalReport(outDir, records, {
    title, notes, dataset: o.datasetName, n: test.labels.length, fitN: fit.labels.length, seed: o.seed, epsilons: o.epsilons, settings: o.settings,
    ...o.meta, ...(examples ? { examplesPng: 'universal-perturbations.png' } : {}),
  });
  return { title, files, examples };
}

/** Run (or resume) the universal-perturbation evaluation and write its report; every argument is checked before loading. */
export async function runUniversalJob(o: UniversalJobOptions): Promise<{ records: UniversalRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string; examples: string | null; perturbations: string }; terminal: string }> {
  const src = resolveModelSources(o, 'universal');
  const n = o.n ?? 500;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`-n: must be an integer >= 1, got ${o.n}`);
  const fitN = o.fitN ?? 1000;
  if (!(Number.isInteger(fitN) && fitN >= 1)) throw new Error(`--fit-n: must be an integer >= 1, got ${o.fitN}`);
  const jpegModes = o.jpegModes ?? ['soft', 'hard'];
  for (const m of jpegModes) if (m !== 'soft' && m !== 'hard') throw new Error(`--jpeg-modes: models are evaluated as they are deployed, soft or hard; got "${m}"`);
  const craftModes = o.craftModes ?? ['soft'];
  for (const m of craftModes) if (!(JPEG_MODES as readonly string[]).includes(m)) throw new Error(`--craft-modes: unknown JPEG mode "${m}" (known: ${JPEG_MODES.join(', ')})`);
  const evalOptions: UniversalEvalOptions = {
    epsilons: o.epsilons, norm: o.norm, method: o.method, epochs: o.epochs, batchSize: o.batchSize, stepFraction: o.stepFraction, stepDecay: o.stepDecay,
    beta: o.beta, target: o.target, foolingRate: o.foolingRate, overshoot: o.overshoot, deepfoolSteps: o.deepfoolSteps, evalBatchSize: o.evalBatchSize, seed: o.seed, constants: o.constants,
  };
  const { seed, settings, epsilons } = resolveUniversalEval(evalOptions);
  const testData = resolveJobData(src, { dataset: o.dataset, split: 'test' });
  const { full, data: test } = await loadJobData(testData, n, seed);
  const { data: fit } = await loadJobData({ ...testData, split: 'train' }, fitN, seed);
  if (settings.target !== null && !test.labels.some((y) => y !== settings.target)) throw new Error(`--target: every test image is of class ${settings.target}`);
  const outDir = resolve(o.out);
  mkdirSync(outDir, { recursive: true });
  const recordsPath = join(outDir, 'records.jsonl');
  const perturbationsDir = join(outDir, 'perturbations');
  const { models, dispose } = await loadJobModels(src, test, jpegModes);
  try {
    const { records, perturbations } = await evaluateUniversal(models.map((m) => ({ ...m, craftModes })), fit, test, { ...evalOptions, dataset: full.name, recordsPath, perturbationsDir, onCell: o.onCell });
    const { title, files, examples } = writeUniversalOutputs(outDir, test, fit, records, perturbations, {
      settings, seed, datasetName: full.name, epsilons: epsilons.map((e) => e.label), constants: o.constants !== false, notes: modelNotes(src), meta: { models: [...src.metas.keys()] },
    });
    return { records, files: { ...files, records: recordsPath, examples, perturbations: perturbationsDir }, terminal: renderUniversalTerminal(records, title) };
  } finally {
    dispose();
  }
}

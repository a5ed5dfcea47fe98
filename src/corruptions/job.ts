/**
 * `jpegdl-robust corruptions` as a library call: saved checkpoints (or a run directory) on a seeded
 * class-balanced subset under the common corruptions; records in <out>/records.jsonl (resumable) and
 * the tables in <out>/corruptions.{json,md,txt}.
 */
import { mkdirSync } from 'node:fs';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { join, resolve } from 'node:path';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { imageGridPng } from '../report/examples.ts';
import { corruptOne, evaluateCorruptions, resolveCorruptionOptions, type CorruptionRecord } from './evaluate.ts';
import { OMITTED_CORRUPTIONS } from './functions.ts';
import { renderCorruptionTerminal, writeCorruptionReport } from './report.ts';

/** What to evaluate and where to write it. */
export interface CorruptionJobOptions extends JobSourceOptions {
  /** Images (class-balanced seeded subset; default 1000). */
  n?: number;
  corruptions?: string[];
  severities?: number[];
  jpegModes?: JpegMode[];
  batchSize?: number;
  seed?: number;
  out: string;
  onCell?: (done: number, total: number) => void;
}

/**
 * Write the corruption report of `records` into `outDir`: corruptions.{json,md,txt,html} and
 * corruption-examples.png (image 0 of `data` under every corruption and severity, with the seeds the
 * evaluation used). Returns the title and paths.
 */
export function writeCorruptionOutputs(
  outDir: string,
  data: LabelledImages,
  records: CorruptionRecord[],
  o: { datasetName: string; split: string; seed: number; corruptions?: string[]; severities?: number[]; notes?: string[]; meta?: Record<string, unknown> },
): { title: string; files: { json: string; markdown: string; terminal: string; html: string }; examples: string } {
  const title = `Common corruptions: ${o.datasetName} ${o.split}, ${data.labels.length} images`;
  const omitted = Object.entries(OMITTED_CORRUPTIONS).map(([k, v]) => `${k} (${v})`).join('; ');
  const notes = [
    'Corruptions of Hendrycks & Dietterich (2019) with the CIFAR-10-C severity constants, generated here with seeded noise (the same corrupted images for every model) and stored as 8-bit values as CIFAR-10-C is; JPEG through jpeg-js (no chroma subsampling, PIL subsamples 4:2:0).',
    `Not included: ${omitted}.`,
    ...(o.notes ?? []),
  ];
  const { infos, severities } = resolveCorruptionOptions(data, { corruptions: o.corruptions, severities: o.severities });
  const pixels = data.height * data.width * data.channels;
  const clean = data.images.slice(0, pixels);
  const grid = infos.map((info) => [clean, ...severities.map((sev) => corruptOne(data, 0, info, sev, o.seed))]);
  mkdirSync(outDir, { recursive: true });
  const examples = join(outDir, 'corruption-examples.png');
  writeFileAtomic(examples, imageGridPng(grid, data));
  const files = writeCorruptionReport(outDir, records, { title, notes, dataset: o.datasetName, split: o.split, n: data.labels.length, seed: o.seed, ...o.meta, examplesPng: 'corruption-examples.png' });
  return { title, files, examples };
}

/** Run (or resume) the corruption evaluation and write its report; every argument is checked before loading. */
export async function runCorruptionJob(o: CorruptionJobOptions): Promise<{ records: CorruptionRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string; examples: string }; terminal: string }> {
  const src = resolveModelSources(o, 'corruptions');
  const n = o.n ?? 1000;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`-n: must be an integer >= 1, got ${o.n}`);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: must be an integer >= 0, got ${o.seed}`);
  const jobData = resolveJobData(src, o);
  const jpegModes = o.jpegModes ?? ['soft', 'hard'];
  for (const m of jpegModes) if (m !== 'soft' && m !== 'hard') throw new Error(`--jpeg-modes: corruptions run a model as it is deployed, soft or hard; got "${m}"`);
  // Names and severities are checked now; channel-dependent checks once the data is known.
  resolveCorruptionOptions({ channels: 3 }, { corruptions: o.corruptions, severities: o.severities, batchSize: o.batchSize });

  // --seed picks the evaluated subset and the noise.
  const { full, data } = await loadJobData(jobData, n, seed);
  const split = jobData.split;
  resolveCorruptionOptions(data, { corruptions: o.corruptions, severities: o.severities });
  const outDir = resolve(o.out);
  const recordsPath = join(outDir, 'records.jsonl');
  const { models, dispose } = await loadJobModels(src, data, jpegModes);
  try {
    const records = await evaluateCorruptions(models, data, { corruptions: o.corruptions, severities: o.severities, batchSize: o.batchSize, seed, dataset: full.name, recordsPath, onCell: o.onCell });
    const { title, files, examples } = writeCorruptionOutputs(outDir, data, records, { datasetName: full.name, split, seed, corruptions: o.corruptions, severities: o.severities, notes: modelNotes(src), meta: { models: [...src.metas.keys()] } });
    return { records, files: { ...files, records: recordsPath, examples }, terminal: renderCorruptionTerminal(records, title) };
  } finally {
    dispose();
  }
}

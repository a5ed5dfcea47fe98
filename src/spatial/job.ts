/**
 * `jpegdl-robust spatial` as a library call: saved checkpoints (or a run directory) on a seeded
 * class-balanced subset under a rotation/shift grid and random draws; records in <out>/records.jsonl
 * (resumable) and the tables in <out>/spatial.{json,md,txt,html} with an example picture.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { imageGridPng } from '../report/examples.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { evaluateSpatial, resolveSpatialEval, type SpatialEvalOptions, type SpatialRecord } from './evaluate.ts';
import { renderSpatialTerminal, writeSpatialReport } from './report.ts';
import { transformImages, type SpatialTransform } from './transform.ts';

/** What to evaluate and where to write it. */
export interface SpatialJobOptions extends Omit<SpatialEvalOptions, 'dataset' | 'recordsPath' | 'onCell'>, JobSourceOptions {
  /** Images (class-balanced seeded subset; default 500). */
  n?: number;
  jpegModes?: JpegMode[];
  out: string;
  onCell?: (done: number, total: number) => void;
}

/** The example picture: the first images (up to 4), clean and under the grid's extreme rotations and shifts. */
export function spatialExamplesPng(data: LabelledImages, o: Pick<SpatialEvalOptions, 'maxRotation' | 'maxTranslation' | 'fill' | 'interpolation'>): Uint8Array {
  const { grid, resample } = resolveSpatialEval(o);
  const [r, t] = [grid.maxRotation, grid.maxTranslation];
  const transforms: SpatialTransform[] = [
    { angle: 0, dx: 0, dy: 0 },
    ...(r > 0 ? [{ angle: -r, dx: 0, dy: 0 }, { angle: r, dx: 0, dy: 0 }] : []),
    ...(t > 0 ? [{ angle: 0, dx: -t, dy: 0 }, { angle: 0, dx: t, dy: 0 }, { angle: 0, dx: 0, dy: -t }, { angle: 0, dx: 0, dy: t }] : []),
    ...(r > 0 && t > 0 ? [{ angle: r, dx: t, dy: t }] : []),
  ];
  const count = Math.min(4, data.labels.length);
  const pixels = data.height * data.width * data.channels;
  const x = tf.tensor4d(data.images.subarray(0, count * pixels), [count, data.height, data.width, data.channels]);
  try {
    const cols = transforms.map((tr) => {
      const y = transformImages(x, tr, resample);
      const v = y.dataSync() as Float32Array;
      y.dispose();
      return Array.from({ length: count }, (_, i) => v.slice(i * pixels, (i + 1) * pixels));
    });
    return imageGridPng(Array.from({ length: count }, (_, i) => cols.map((c) => c[i])), data);
  } finally {
    x.dispose();
  }
}

/**
 * Write the spatial report of `records` into `outDir`: spatial.{json,md,txt,html} and
 * spatial-examples.png (the first images of `data` under the grid's extreme transforms). Returns the
 * title and paths.
 */
export function writeSpatialOutputs(
  outDir: string,
  data: LabelledImages,
  records: SpatialRecord[],
  o: Pick<SpatialEvalOptions, 'maxRotation' | 'rotations' | 'maxTranslation' | 'translations' | 'fill' | 'interpolation' | 'samples'> & { datasetName: string; split: string; seed: number; notes?: string[]; meta?: Record<string, unknown> },
): { title: string; files: { json: string; markdown: string; terminal: string; html: string }; examples: string } {
  const { grid, resample, samples } = resolveSpatialEval(o);
  const title = `Spatial robustness: ${o.datasetName} ${o.split}, ${data.labels.length} images`;
  const notes = [
    `Rotations about the image centre and shifts in pixels (Engstrom, Tran, Tsipras, Schmidt & Madry, ICML 2019), ${resample.interpolation} resampling, uncovered pixels ${resample.fill === 'zeros' ? 'black' : `filled by ${resample.fill}`}; every model sees the same transformed images.`,
    ...(samples > 0 ? [`Random: ${samples} uniform draws per image over ±${grid.maxRotation}° and ±${grid.maxTranslation} px (seed ${o.seed}), the worst kept (worst-of-k).`] : []),
    'No gradients are used, so a masked gradient cannot hide anything here; a JPEG layer quantises fixed 8x8 blocks, so shifts move the content across its block grid.',
    ...(o.notes ?? []),
  ];
  mkdirSync(outDir, { recursive: true });
  const examples = join(outDir, 'spatial-examples.png');
  writeFileAtomic(examples, spatialExamplesPng(data, { ...grid, ...resample }));
  const files = writeSpatialReport(outDir, records, { title, notes, dataset: o.datasetName, split: o.split, n: data.labels.length, seed: o.seed, ...o.meta, examplesPng: 'spatial-examples.png' });
  return { title, files, examples };
}

/** Run (or resume) the spatial evaluation and write its report; every argument is checked before loading. */
export async function runSpatialJob(o: SpatialJobOptions): Promise<{ records: SpatialRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string; examples: string }; terminal: string }> {
  const src = resolveModelSources(o, 'spatial');
  const n = o.n ?? 500;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`-n: must be an integer >= 1, got ${o.n}`);
  const jobData = resolveJobData(src, o);
  const jpegModes = o.jpegModes ?? ['soft', 'hard'];
  for (const m of jpegModes) if (m !== 'soft' && m !== 'hard') throw new Error(`--jpeg-modes: a spatial evaluation runs a model as it is deployed, soft or hard; got "${m}"`);
  const evalOptions: SpatialEvalOptions = {
    maxRotation: o.maxRotation, rotations: o.rotations, maxTranslation: o.maxTranslation, translations: o.translations,
    fill: o.fill, interpolation: o.interpolation, samples: o.samples, batchSize: o.batchSize, seed: o.seed,
  };
  const { seed } = resolveSpatialEval(evalOptions);

  const { full, data } = await loadJobData(jobData, n, seed);
  const split = jobData.split;
  const outDir = resolve(o.out);
  const recordsPath = join(outDir, 'records.jsonl');
  const { models, dispose } = await loadJobModels(src, data, jpegModes);
  try {
    const records = await evaluateSpatial(models, data, { ...evalOptions, dataset: full.name, recordsPath, onCell: o.onCell });
    const { files, examples, title } = writeSpatialOutputs(outDir, data, records, { ...evalOptions, datasetName: full.name, split, seed, notes: modelNotes(src), meta: { models: [...src.metas.keys()] } });
    return { records, files: { ...files, records: recordsPath, examples }, terminal: renderSpatialTerminal(records, title) };
  } finally {
    dispose();
  }
}

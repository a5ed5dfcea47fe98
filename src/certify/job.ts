/**
 * `jpegdl-robust certify` as a library call: randomised-smoothing certificates of saved models (or a
 * run directory's) on a seeded class-balanced subset; records in <out>/records.jsonl (resumable per
 * image), tables and plot in <out>/certify.{json,md,txt,html}.
 */
import { resolve, join } from 'node:path';
import { parseEpsilonList } from '../eps.ts';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { certifyModels, type CertifyRecord } from './evaluate.ts';
import { renderCertifyTerminal, writeCertifyReport } from './report.ts';
import { SMOOTHING_DEFAULTS } from './smoothing.ts';

/** Default L2 radii of the table (0-1 pixel scale). */
export const DEFAULT_RADII = '0,0.25,0.5,0.75,1,1.25,1.5';

/** What to certify and where to write it. */
export interface CertifyJobOptions extends JobSourceOptions {
  /** Images (class-balanced seeded subset; default 100). */
  n?: number;
  /** Noise standard deviations, 0-1 scale: numbers or fractions ("0.25", "64/255"). */
  sigmas: string[];
  /** L2 radii of the table (default DEFAULT_RADII). */
  radii?: string[];
  n0?: number;
  samples?: number;
  alpha?: number;
  batchSize?: number;
  seed?: number;
  jpegModes?: JpegMode[];
  out: string;
  onImage?: (done: number, total: number) => void;
}

/** Run (or resume) the certification and write its report; every argument is checked before loading. */
export async function runCertifyJob(o: CertifyJobOptions): Promise<{ records: CertifyRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string }; terminal: string }> {
  const src = resolveModelSources(o, 'certify');
  if (!o.sigmas?.length) throw new Error('--sigma: give at least one noise standard deviation (0-1 scale), e.g. 0.25');
  const sigmas = parseEpsilonList(o.sigmas, '--sigma', 'l2');
  for (const s of sigmas) if (!(s.value > 0)) throw new Error(`--sigma: ${s.label} must be > 0`);
  const radii = parseEpsilonList(o.radii ?? DEFAULT_RADII.split(','), '--radii', 'l2');
  if (!radii.length) throw new Error('--radii: the list is empty');
  for (let i = 1; i < radii.length; i++) if (!(radii[i].value > radii[i - 1].value)) throw new Error(`--radii: must increase, got ${radii[i - 1].label} then ${radii[i].label}`);
  const int = (v: number | undefined, flag: string, min: number, def: number) => {
    const x = v ?? def;
    if (!(Number.isInteger(x) && x >= min)) throw new Error(`${flag}: must be an integer >= ${min}, got ${v}`);
    return x;
  };
  const n = int(o.n, '-n', 1, 100);
  const n0 = int(o.n0, '--n0', 1, SMOOTHING_DEFAULTS.n0);
  const samples = int(o.samples, '--samples', 1, SMOOTHING_DEFAULTS.n);
  const batchSize = int(o.batchSize, '--batch-size', 1, SMOOTHING_DEFAULTS.batchSize);
  const seed = int(o.seed, '--seed', 0, 0);
  const alpha = o.alpha ?? SMOOTHING_DEFAULTS.alpha;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`--alpha: must be in (0, 1), got ${o.alpha}`);
  const jobData = resolveJobData(src, o);
  const jpegModes = o.jpegModes ?? ['soft', 'hard'];
  if (!jpegModes.length) throw new Error('--jpeg-modes: the list is empty');
  for (const m of jpegModes) if (m !== 'soft' && m !== 'hard') throw new Error(`--jpeg-modes: certification runs a model as it is deployed, soft or hard; got "${m}"`);

  const { full, data } = await loadJobData(jobData, n, seed);
  const split = jobData.split;
  const outDir = resolve(o.out);
  const recordsPath = join(outDir, 'records.jsonl');
  const { models, dispose } = await loadJobModels(src, data, jpegModes);
  try {
    const records = await certifyModels(models, data, { sigmas, n0, samples, alpha, batchSize, seed, dataset: full.name, recordsPath, onImage: o.onImage });
    const title = `Randomised smoothing certificates: ${full.name} ${split}, ${data.labels.length} images`;
    const notes = [
      'Gaussian noise on the 0-1 pixel scale, pixels not clipped; the same noise for every model (image i\'s noise depends only on the seed, i and the batch size), so the columns are paired.',
      'A certificate holds for the smoothed classifier g(x) = argmax_c P(f(x + δ) = c), not for the base model f; g is what a deployment would have to run (n forward passes per prediction). Base classifiers trained with Gaussian noise at the same sigma (`train --noise-sd`, `run --noise-sd`) are the ones randomised smoothing is meant for.',
      ...modelNotes(src),
    ];
    const files = writeCertifyReport(outDir, records, radii, { title, notes, dataset: full.name, split, n: data.labels.length, seed, models: [...src.metas.keys()] });
    return { records, files: { ...files, records: recordsPath }, terminal: renderCertifyTerminal(records, radii, title) };
  } finally {
    dispose();
  }
}

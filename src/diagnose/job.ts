/**
 * `jpegdl-robust diagnose` as a library call: saved checkpoints (or a run directory) on a seeded
 * class-balanced subset; records in <out>/records.jsonl (resumable) and the report in
 * <out>/diagnose.{json,md,txt,html}.
 */
import { join, resolve } from 'node:path';
import { loadJobData, loadJobModels, modelNotes, resolveJobData, resolveModelSources, type JobSourceOptions } from '../eval/job-models.ts';
import type { JpegMode } from '../train/jpeg-params.ts';
import { evaluateDiagnose, resolveDiagnoseOptions, type DiagnoseOptions, type DiagnoseRecord } from './evaluate.ts';
import { renderDiagnoseTerminal, writeDiagnoseReport } from './report.ts';

/** What to diagnose and where to write it. */
export interface DiagnoseJobOptions extends Omit<DiagnoseOptions, 'dataset' | 'recordsPath' | 'onCell'>, JobSourceOptions {
  /** Images (class-balanced seeded subset; default 100). */
  n?: number;
  /** Modes of JPEG-DL models (default soft, hard, bpda-identity). */
  jpegModes?: JpegMode[];
  out: string;
  onCell?: (done: number, total: number) => void;
}

const MODES: readonly JpegMode[] = ['soft', 'hard', 'bpda-identity', 'bpda-soft'];

/** Run (or resume) the diagnosis and write its report; every argument is checked before loading. */
export async function runDiagnoseJob(o: DiagnoseJobOptions): Promise<{ records: DiagnoseRecord[]; files: { json: string; markdown: string; terminal: string; html: string; records: string }; terminal: string }> {
  const src = resolveModelSources(o, 'diagnose');
  const n = o.n ?? 100;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`-n: must be an integer >= 1, got ${o.n}`);
  const jobData = resolveJobData(src, o);
  const jpegModes = o.jpegModes ?? ['soft', 'hard', 'bpda-identity'];
  if (jpegModes.length === 0) throw new Error('--jpeg-modes: give at least one mode (soft, hard, bpda-identity, bpda-soft)');
  for (const m of jpegModes) if (!MODES.includes(m)) throw new Error(`--jpeg-modes: unknown mode "${m}" (soft, hard, bpda-identity, bpda-soft)`);
  const evalOptions: DiagnoseOptions = {
    eps: o.eps, epsLabel: o.epsLabel, loss: o.loss, directions: o.directions, fdStep: o.fdStep, profile: o.profile, surfaces: o.surfaces, surfaceSize: o.surfaceSize,
    attack: o.attack, steps: o.steps, unboundedEps: o.unboundedEps, restarts: o.restarts, batchSize: o.batchSize, seed: o.seed,
  };
  const { seed } = resolveDiagnoseOptions(evalOptions);
  const { full, data } = await loadJobData(jobData, n, seed);
  const outDir = resolve(o.out);
  const recordsPath = join(outDir, 'records.jsonl');
  const { models, dispose } = await loadJobModels(src, data, jpegModes);
  try {
    const records = await evaluateDiagnose(models, data, { ...evalOptions, dataset: full.name, recordsPath, onCell: o.onCell });
    const title = `Gradient-masking diagnostics: ${full.name} ${jobData.split}, ${data.labels.length} images`;
    const notes = [
      'After Carlini et al. 2019 ("On Evaluating Adversarial Robustness") and Athalye, Carlini & Wagner 2018 ("Obfuscated Gradients Give a False Sense of Security"): these measure whether the gradient an attack follows describes the model; they do not replace the attacks.',
      'JPEG modes: soft = the trained soft quantiser (the gradient of the function evaluated); hard = real rounding (zero gradient almost everywhere); bpda-identity = real rounding forward, identity backward (Athalye et al.\'s BPDA), whose gradient is a surrogate by design: its finite-difference error is expected, and what matters is whether attacks on it converge and reach 0% unbounded.',
      ...modelNotes(src),
    ];
    const files = writeDiagnoseReport(outDir, records, { title, notes, dataset: full.name, split: jobData.split, n: data.labels.length, seed, models: [...src.metas.keys()] });
    return { records, files: { ...files, records: recordsPath }, terminal: renderDiagnoseTerminal(records, title) };
  } finally {
    dispose();
  }
}

/**
 * The models a forward-only job (corruptions, certification) evaluates: a run directory's baseline
 * and JPEG-DL models or explicit model directories, and each baseline behind input defences. Sources
 * are checked (metadata read, defences parsed) before anything loads; loading checks the input shape.
 */
import type * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { loadDataset, subset } from '../data/index.ts';
import { DATASET_NAMES, type DatasetSpec, type ImageDataset } from '../data/types.ts';
import { defenceName, defended, defenceVariant, repeatedDefence, type DefenceSpec } from '../defences/index.ts';
import { loadModel, loadModelMetadata } from '../io/model-io.ts';
import type { JpegMode } from '../train/jpeg-params.ts';

/** Where the models come from (as the commands' --run, --baseline, --jpeg-dl and --defence give them). */
export interface ModelSources {
  /** A run directory of `jpegdl-robust run`: its models and dataset are the defaults. */
  run?: string;
  baseline?: string[];
  jpegdl?: string[];
  /** Input defences in front of each baseline, each a model of its own. */
  defences?: DefenceSpec[];
}

/** Where a forward-only job's models and images come from: the sources, the dataset (default: the run's) and the split (default test). */
export interface JobSourceOptions extends ModelSources {
  dataset?: DatasetSpec;
  split?: 'test' | 'train';
}

/** The sources, checked: directories with their metadata, and the run's dataset spec. */
export interface ResolvedSources {
  baselineDirs: string[];
  jpegDirs: string[];
  metas: Map<string, Record<string, unknown>>;
  defences: DefenceSpec[];
  runDataset?: DatasetSpec;
}

/** A loaded model to evaluate. */
export interface JobModel {
  name: string;
  variant: string;
  modelSeed: number;
  model: tf.LayersModel;
  /** JPEG modes to run (ignored for models without a JPEG layer). */
  jpegModes?: JpegMode[];
}

/** Check the sources of `command` (errors name the flag and directory) before anything loads. */
export function resolveModelSources(o: ModelSources, command: string): ResolvedSources {
  let runDataset: DatasetSpec | undefined;
  let baselineDirs = o.baseline ?? [];
  let jpegDirs = o.jpegdl ?? [];
  if (o.run) {
    const cfgPath = join(o.run, 'config.json');
    if (!existsSync(cfgPath)) throw new Error(`--run: ${cfgPath} does not exist (not a run directory of \`jpegdl-robust run\`)`);
    runDataset = (JSON.parse(readFileSync(cfgPath, 'utf8')) as { run?: { dataset?: DatasetSpec } }).run?.dataset;
    if (!baselineDirs.length && existsSync(join(o.run, 'models', 'baseline'))) baselineDirs = [join(o.run, 'models', 'baseline')];
    if (!jpegDirs.length && existsSync(join(o.run, 'models', 'jpeg-dl'))) jpegDirs = [join(o.run, 'models', 'jpeg-dl')];
  }
  if (!baselineDirs.length && !jpegDirs.length) throw new Error(`${command}: give --run <dir> or at least one --baseline / --jpeg-dl model directory`);
  const metas = new Map<string, Record<string, unknown>>();
  for (const [flag, dirs] of [['--baseline', baselineDirs], ['--jpeg-dl', jpegDirs]] as const) {
    for (const d of dirs) {
      try {
        metas.set(d, loadModelMetadata(d));
      } catch (err) {
        throw new Error(`${flag} ${d}: ${(err as Error).message.replace(/^loadModel: /, '')}`);
      }
    }
  }
  const defences = o.defences ?? [];
  const twice = repeatedDefence(defences);
  if (twice) throw new Error(`--defence: ${twice} is listed twice`);
  if (defences.length > 0 && !baselineDirs.length) throw new Error('--defence: needs a baseline model to put behind the defence (--baseline or a run with one)');
  return { baselineDirs, jpegDirs, metas, defences, ...(runDataset ? { runDataset } : {}) };
}

/**
 * Load the resolved models for images of size height x width x channels (a mismatch names the
 * directory), then each baseline behind each defence (wrappers sharing its weights). `dispose` frees all.
 */
export async function loadJobModels(src: ResolvedSources, image: { height: number; width: number; channels: number }, jpegModes: JpegMode[]): Promise<{ models: JobModel[]; dispose: () => void }> {
  const loaded: tf.LayersModel[] = [];
  const wrappers: tf.LayersModel[] = [];
  const dispose = () => {
    for (const m of [...wrappers, ...loaded]) m.dispose();
  };
  try {
    const models: JobModel[] = [];
    for (const [variant, dirs] of [['baseline', src.baselineDirs], ['jpeg-dl', src.jpegDirs]] as const) {
      for (let i = 0; i < dirs.length; i++) {
        const model = await loadModel(dirs[i]);
        loaded.push(model);
        const shape = model.inputs[0].shape.slice(1).join('x');
        if (shape !== [image.height, image.width, image.channels].join('x')) throw new Error(`--${variant} ${dirs[i]}: the model takes ${shape} images, the data is ${image.height}x${image.width}x${image.channels}`);
        const meta = src.metas.get(dirs[i]) ?? {};
        const modelSeed = typeof meta.seed === 'number' ? meta.seed : dirs.length > 1 ? i : 0;
        models.push({ name: variant, variant, modelSeed, model, jpegModes });
      }
    }
    // Disposing a wrapper frees only its own layers (a JPEG layer, if any), not the baseline's weights.
    for (const b of models.filter((m) => m.variant === 'baseline')) {
      for (const spec of src.defences) {
        const model = defended(b.model, spec);
        wrappers.push(model);
        models.push({ name: defenceName(spec), variant: defenceVariant(spec), modelSeed: b.modelSeed, model, jpegModes });
      }
    }
    return { models, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** One note line naming the model directories and their training, for reports. */
export function modelNotes(src: ResolvedSources): string[] {
  return src.metas.size ? [`Models: ${[...src.metas.entries()].map(([d, m]) => `${d}${typeof m.training === 'string' ? ` (${m.training})` : ''}`).join(', ')}.`] : [];
}

/** Where a job's images come from, checked before anything loads: the run's dataset spec (its seed included) overridden by --dataset, and the split. */
export interface JobData {
  dataset: DatasetSpec;
  split: 'test' | 'train';
}

/** Check --split and --dataset against the sources (errors name the flag). */
export function resolveJobData(src: ResolvedSources, o: { dataset?: DatasetSpec; split?: string }): JobData {
  const split = o.split ?? 'test';
  if (split !== 'test' && split !== 'train') throw new Error(`--split: must be test or train, got ${String(split)}`);
  // The run's spec fixes synthetic images, folder splits and size subsets; the job's seed picks its subset.
  const dataset: DatasetSpec = { ...(src.runDataset ?? {}), ...(o.dataset ?? {}) };
  if (dataset.name && !(DATASET_NAMES as readonly string[]).includes(dataset.name)) throw new Error(`--dataset: unknown name "${dataset.name}" (known: ${DATASET_NAMES.join(', ')})`);
  return { dataset, split };
}

/** Load the split and take its class-balanced subset of n images seeded by `seed` (all when n exceeds it). */
export async function loadJobData(d: JobData, n: number, seed: number): Promise<{ full: ImageDataset; data: LabelledImages }> {
  const splits = await loadDataset(d.dataset);
  const full = d.split === 'test' ? splits.test : splits.train;
  return { full, data: subset(full, Math.min(n, full.labels.length), seed) };
}

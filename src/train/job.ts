/**
 * One model trained from a plain spec (used by `jpegdl-robust train`): dataset, architecture,
 * optional JPEG layer, recipe. Writes <out>/train-config.json, <out>/checkpoint (every epoch),
 * <out>/history.json and, when finished, <out>/model (tfjs format, loadable by loadModel); with
 * adversarial training also <out>/model-best, the epoch of highest robust test accuracy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildModel } from '../../models/registry.ts';
import { loadDataset } from '../data/load.ts';
import type { DatasetSpec } from '../data/types.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { saveModel } from '../io/model-io.ts';
import type { JpegLayerArgs } from '../jpeg/layer.ts';
import { channelStats, evalBatchesOf, trainDataOf } from '../run/data.ts';
import { subset } from '../data/subset.ts';
import { ROBUST_EVAL_IMAGES, trainingMetadata } from './adversarial.ts';
import { validateTrainConfig, type TrainConfig } from './config.ts';
import { trainModel, trainPaths, type TrainResult } from './trainer.ts';

/** What to train. */
export interface TrainJobSpec {
  dataset: DatasetSpec;
  model: string;
  /** JPEG-DL variant: JpegLayer options (tables, quality, alpha); false = baseline. */
  jpeg: false | JpegLayerArgs;
  /** Seed of the weight initialisers. */
  modelSeed: number;
  train: TrainConfig;
  /** Test images for per-epoch clean accuracy (0 = none). */
  evalBatchSize: number;
}

/** Train (or resume) one model into `outDir`; throws before work if outDir holds another run and !resume. */
export async function runTrainingJob(spec: TrainJobSpec, outDir: string, opts: { resume?: boolean; progress?: boolean; log?: (l: string) => void } = {}): Promise<TrainResult & { outDir: string }> {
  validateTrainConfig(spec.train);
  const dir = resolve(outDir);
  const cfgPath = join(dir, 'train-config.json');
  if (existsSync(cfgPath)) {
    if (!opts.resume) throw new Error(`--out: ${dir} already holds a training run; pass --resume to continue it or choose another directory`);
    const saved = JSON.parse(readFileSync(cfgPath, 'utf8')) as TrainJobSpec;
    if (JSON.stringify(saved) !== JSON.stringify(spec)) {
      throw new Error(`--resume: ${cfgPath} was written with different options; rerun with the same options (saved: ${JSON.stringify(saved)})`);
    }
  }
  const { train, test } = await loadDataset(spec.dataset);
  writeJsonAtomic(cfgPath, spec);
  const model = buildModel(spec.model, {
    inputShape: [train.height, train.width, train.channels],
    numClasses: train.numClasses,
    normalization: channelStats(train),
    seed: spec.modelSeed,
    jpeg: spec.jpeg,
  });
  try {
    const res = await trainModel({
      model,
      data: trainDataOf(train),
      config: spec.train,
      label: spec.jpeg ? 'jpeg-dl' : 'baseline',
      ...trainPaths(dir),
      resume: opts.resume,
      evalData: spec.evalBatchSize > 0 ? evalBatchesOf(test, spec.evalBatchSize) : undefined,
      robustEvalData: spec.train.adversarial && spec.evalBatchSize > 0 ? evalBatchesOf(subset(test, Math.min(ROBUST_EVAL_IMAGES, test.labels.length), spec.train.seed), spec.evalBatchSize) : undefined,
      ...(spec.train.adversarial && spec.evalBatchSize > 0 ? { bestModelDir: join(dir, 'model-best'), bestModelMeta: { variant: spec.jpeg ? 'jpeg-dl' : 'baseline', model: spec.model, ...trainingMetadata(spec.train.adversarial, spec.train.noiseSd) } } : {}),
      progress: opts.progress,
      log: opts.log,
    });
    if (res.finished) await saveModel(model, join(dir, 'model'), { variant: spec.jpeg ? 'jpeg-dl' : 'baseline', model: spec.model, ...trainingMetadata(spec.train.adversarial, spec.train.noiseSd) });
    return { ...res, outDir: dir };
  } finally {
    model.dispose();
  }
}

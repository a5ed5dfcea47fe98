/** Adapters from the data layer to the trainer and the sweep. */
import * as tf from '@tensorflow/tfjs';
import { batches } from '../data/batches.ts';
import type { ImageDataset } from '../data/types.ts';
import type { Batch } from '../train/evaluate.ts';
import type { TrainData } from '../train/trainer.ts';

/** Crop padding of the reference's augmentation (4 px at 32x32), scaled to the image size, at least 1. */
export function augmentPad(height: number): number {
  return Math.max(1, Math.round((4 * height) / 32));
}

/** Training data: seeded per-epoch shuffle, and random crop (zero pad) + horizontal flip when augmenting. */
export function trainDataOf(ds: ImageDataset): TrainData {
  return {
    size: ds.labels.length,
    batches: (epoch, { batchSize, seed, augment }) =>
      batches(ds, { batchSize, shuffle: true, seed, epoch, augment: augment ? { pad: augmentPad(ds.height), flip: true } : false }),
  };
}

/** Evaluation batches in dataset order, no augmentation. */
export function evalBatchesOf(ds: ImageDataset, batchSize: number): () => Iterable<Batch> {
  return () => batches(ds, { batchSize });
}

/** Per-channel mean and std (population) of a dataset's pixels, on the 0-1 scale. */
export function channelStats(ds: ImageDataset): { mean: number[]; std: number[] } {
  const c = ds.channels;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const n = ds.images.length / c;
  for (let i = 0; i < ds.images.length; i++) {
    const v = ds.images[i];
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / n - mean[k] * mean[k], 1e-12)));
  return { mean, std };
}

/** The whole dataset as tensors (caller disposes). */
export function datasetTensors(ds: ImageDataset): { images: tf.Tensor4D; labels: tf.Tensor1D } {
  return {
    images: tf.tensor4d(ds.images, [ds.labels.length, ds.height, ds.width, ds.channels]),
    labels: tf.tensor1d(ds.labels, 'int32'),
  };
}

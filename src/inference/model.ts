/**
 * The model as attacks run it: inference mode with BatchNorm folded into the preceding convs
 * (src/inference/fold-batchnorm.ts), cached per model and rebuilt when any weight changes.
 * `JPEGDL_FOLD_BN=0` (or `setBatchNormFolding(false)`) runs the original model instead.
 */
import * as tf from '@tensorflow/tfjs';
import { foldBatchNorm, type FoldedModel } from './fold-batchnorm.ts';

interface Entry {
  /** Identity of each weight's storage when folded; tf.Variable.assign swaps it, so any update shows. */
  storage: unknown[];
  folded: FoldedModel | null;
}

const cache = new WeakMap<tf.LayersModel, Entry>();
let foldingOn = process.env.JPEGDL_FOLD_BN !== '0';

/** Switch BatchNorm folding for inference on or off (default on unless JPEGDL_FOLD_BN=0); returns the previous state. */
export function setBatchNormFolding(on: boolean): boolean {
  const prev = foldingOn;
  foldingOn = on;
  return prev;
}

/** Whether BatchNorm folding for inference is on. */
export function batchNormFolding(): boolean {
  return foldingOn;
}

function storageOf(model: tf.LayersModel): unknown[] | null {
  const ids: unknown[] = [];
  for (const w of model.weights) {
    const v = (w as unknown as { val: tf.Variable }).val;
    if (v.isDisposed) return null;
    ids.push((v as unknown as { dataId: unknown }).dataId);
  }
  return ids;
}

function release(entry: Entry | undefined): void {
  for (const l of entry?.folded?.ownLayers ?? []) l.dispose();
}

/**
 * The network to run for inference (BatchNorm moving statistics): a cached BN-folded copy of
 * `model` sharing all other layers, or `model` itself when folding is off or finds nothing.
 */
export function inferenceModel(model: tf.LayersModel): tf.LayersModel {
  if (!foldingOn) return model;
  const storage = storageOf(model);
  let entry = cache.get(model);
  if (storage === null) {
    // The model's weights were disposed: drop the folded copy too.
    release(entry);
    cache.delete(model);
    return model;
  }
  if (!entry || entry.storage.length !== storage.length || entry.storage.some((id, i) => id !== storage[i])) {
    release(entry);
    if (!entry) hookDispose(model);
    entry = { storage, folded: foldBatchNorm(model) };
    cache.set(model, entry);
  }
  return entry.folded?.model ?? model;
}

/** Make model.dispose() also free the folded layers' weights (they are tensors tfjs would keep). */
function hookDispose(model: tf.LayersModel): void {
  const own = model.dispose.bind(model);
  model.dispose = () => {
    release(cache.get(model));
    cache.delete(model);
    return own();
  };
}

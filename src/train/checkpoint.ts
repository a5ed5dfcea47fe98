/**
 * Training checkpoints: one directory replaced atomically after every epoch, holding the model's
 * weights (all of them, BatchNorm statistics included), both optimisers' state, the epoch, the
 * RNG position (seed + next epoch: data order and augmentation are functions of both), the
 * history and the JPEG tables. A kill at any moment leaves either the old or the new checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceDirAtomic, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import type { OptimizerState } from './optimizers.ts';
import { packArrays, unpackArrays, type NamedArray, type PackManifestEntry } from './tensor-state.ts';
import type { EpochRecord } from './history.ts';
import type { TrainConfig } from './config.ts';

export const CHECKPOINT_VERSION = 1;

/** The JSON part of a checkpoint (state.json). */
export interface CheckpointState {
  version: number;
  /** Epochs completed; training resumes at this 0-based epoch. */
  epoch: number;
  /** Data order / augmentation RNG position: the next epoch's stream is derived from (seed, nextEpoch). */
  rng: { seed: number; nextEpoch: number };
  config: TrainConfig;
  history: EpochRecord[];
  weights: PackManifestEntry[];
  optimizers: { name: string; kind: OptimizerState['kind']; step: number; slots: PackManifestEntry[] }[];
  tables: EpochRecord['tables'];
}

/** Host copies of a model's weights, all of them, in model.weights order. */
export async function modelWeightArrays(model: tf.LayersModel): Promise<NamedArray[]> {
  const out: NamedArray[] = [];
  for (const w of model.weights) {
    const t = w.read();
    if (t.dtype !== 'float32') throw new Error(`checkpoint: weight ${w.name} has dtype ${t.dtype}; only float32 is supported`);
    out.push({ name: w.name, shape: t.shape.slice(), values: (await t.data()) as Float32Array });
  }
  return out;
}

/** Write weights back by position (names differ between model instances), checking every shape. */
export function setModelWeightArrays(model: tf.LayersModel, arrays: NamedArray[], source: string): void {
  const ws = model.weights;
  if (ws.length !== arrays.length) throw new Error(`${source}: holds ${arrays.length} weights but the model has ${ws.length}`);
  tf.tidy(() => {
    ws.forEach((w, i) => {
      if (w.shape.join('x') !== arrays[i].shape.join('x')) {
        throw new Error(`${source}: weight ${i} (${arrays[i].name}) has shape [${arrays[i].shape}] but the model's ${w.name} has [${w.shape}]`);
      }
      w.write(tf.tensor(arrays[i].values, arrays[i].shape, 'float32'));
    });
  });
}

/** Atomically replace checkpoint directory `dir`. */
export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  optimizers: { name: string; state: OptimizerState }[],
  meta: Omit<CheckpointState, 'version' | 'weights' | 'optimizers'>,
): Promise<void> {
  const weights = packArrays(await modelWeightArrays(model));
  const optPacks = optimizers.map((o) => ({ o, pack: packArrays(o.state.slots) }));
  const state: CheckpointState = {
    version: CHECKPOINT_VERSION,
    ...meta,
    weights: weights.manifest,
    optimizers: optPacks.map(({ o, pack }) => ({ name: o.name, kind: o.state.kind, step: o.state.step, slots: pack.manifest })),
  };
  await replaceDirAtomic(dir, (tmp) => {
    writeFileAtomic(join(tmp, 'weights.bin'), weights.bytes);
    for (const { o, pack } of optPacks) writeFileAtomic(join(tmp, `optimizer-${o.name}.bin`), pack.bytes);
    writeJsonAtomic(join(tmp, 'tables.json'), meta.tables ?? []);
    // state.json last: its presence marks a complete checkpoint.
    writeJsonAtomic(join(tmp, 'state.json'), state);
  });
}

/** True when `dir` holds a complete checkpoint. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'state.json'));
}

/** Read a checkpoint: its state, the weights and each optimiser's state. */
export function readCheckpoint(dir: string): { state: CheckpointState; weights: NamedArray[]; optimizers: Map<string, OptimizerState> } {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) throw new Error(`checkpoint ${dir}: no state.json (not a checkpoint, or never completed)`);
  const state = JSON.parse(readFileSync(file, 'utf8')) as CheckpointState;
  if (state.version !== CHECKPOINT_VERSION) throw new Error(`${file}: checkpoint version ${state.version}, expected ${CHECKPOINT_VERSION}`);
  const weights = unpackArrays(state.weights, join(dir, 'weights.bin'));
  const optimizers = new Map<string, OptimizerState>();
  for (const o of state.optimizers) {
    optimizers.set(o.name, { kind: o.kind, step: o.step, slots: unpackArrays(o.slots, join(dir, `optimizer-${o.name}.bin`)) });
  }
  return { state, weights, optimizers };
}

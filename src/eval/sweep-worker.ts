/**
 * Worker process of a parallel sweep (runSweep with workers > 1): rebuilds the sweep's models from
 * their serialised artifacts on the same backend, then evaluates whole batches: the same
 * evalBatch, attack, options and per-batch seed the sweep's own process would use, so records match.
 */
import * as tf from '@tensorflow/tfjs';
import { objectiveGradient } from '../../attacks/gradient.ts';
import { initBackend } from '../backend.ts';
import { setBatchNormFolding } from '../inference/model.ts';
import { modelFromMemory, type ModelInMemory } from '../io/model-io.ts';
import { serveJobs } from '../parallel/pool.ts';
import { asLogitsFn, type Norm } from '../types.ts';
import { evalBatch } from './batch.ts';
import { findNamedAttack } from './named-attacks.ts';
import type { AttackFn } from './sweep.ts';

/** What every sweep worker starts from. */
export interface SweepWorkerInit {
  backend: string;
  foldBatchNorm: boolean;
  models: ModelInMemory[];
  /** Attack names by index (resolved with findNamedAttack). */
  attacks: string[];
}

/** One batch to evaluate. */
export interface SweepJob {
  model: number;
  /** JPEG quantiser mode to set first (null: leave the model as it is). */
  mode: string | null;
  /** Index into init.attacks; -1 for the clean cell. */
  attack: number;
  options: Record<string, unknown>;
  norm: Norm;
  what: string;
  x: Float32Array;
  shape: [number, number, number, number];
  y: Float32Array | Int32Array;
  yDtype: 'float32' | 'int32';
  /** Benchmark only (src/bench): instead of evaluating, take this many attack gradient steps on the batch. */
  gradientSteps?: number;
}

let models: tf.LayersModel[] = [];
let logits: ((x: tf.Tensor4D) => tf.Tensor2D)[] = [];
let attacks: AttackFn[] = [];

serveJobs<SweepWorkerInit, SweepJob>(async (init) => {
  // A pool is reused across sweeps: a new init replaces the previous sweep's models.
  for (const m of models) m.dispose();
  models = [];
  await initBackend(init.backend);
  setBatchNormFolding(init.foldBatchNorm);
  attacks = init.attacks.map((name) => {
    const a = findNamedAttack(name);
    if (!a) throw new Error(`unknown attack "${name}"`);
    return a.run;
  });
  models = await Promise.all(init.models.map(modelFromMemory));
  logits = models.map((m) => asLogitsFn(m));
}, (job) => {
  const model = models[job.model];
  if (job.mode !== null) {
    for (const l of model.layers) if (l.getClassName() === 'JpegLayer') (l as unknown as { mode: string }).mode = job.mode;
  }
  const x = tf.tensor4d(job.x, job.shape);
  const y = tf.tensor1d(job.y, job.yDtype);
  try {
    if (job.gradientSteps) {
      // Exactly the step `npm run bench` times in one process: the attacks' objective gradient.
      for (let i = 0; i < job.gradientSteps; i++) {
        const g = objectiveGradient(logits[job.model], x, y);
        if (i === job.gradientSteps - 1) g.grad.dataSync();
        tf.dispose([g.grad, g.objective, g.success]);
      }
      return { correct: new Uint8Array(0), norms: new Float32Array(0) };
    }
    const fn = job.attack >= 0 ? attacks[job.attack] : null;
    const r = evalBatch(logits[job.model], x, y, job.norm, fn ? (xx, yy) => fn(model, xx, yy, job.options) : null, job.what);
    return r;
  } finally {
    tf.dispose([x, y]);
  }
});

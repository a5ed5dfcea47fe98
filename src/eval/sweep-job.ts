/**
 * What a parallel sweep's worker process does (src/eval/sweep-worker.ts wires it to the pool):
 * rebuild the sweep's models from their serialised form on the same backend, then evaluate whole
 * batches with the same evalBatch, attack, options and per-batch seed the sweep's own process
 * would use, so records match. Kept apart from the process wiring so it can be tested in-process.
 */
import * as tf from '@tensorflow/tfjs';
import { objectiveGradient } from '../../attacks/gradient.ts';
import { initBackend } from '../backend.ts';
import { setBatchNormFolding } from '../inference/model.ts';
import { modelFromMemory, type ModelInMemory } from '../io/model-io.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import { asLogitsFn, type Classifier, type Norm } from '../types.ts';
import type { AttackOptions } from '../../attacks/index.ts';
import { evalBatch, evalBatchShared, type BatchResult } from './batch.ts';
import { findNamedAttack } from './named-attacks.ts';
import { defaultSetMode, onSurrogates, type AttackFn } from './sweep.ts';

/** What every sweep worker starts from. */
export interface SweepWorkerInit {
  backend: string;
  foldBatchNorm: boolean;
  models: ModelInMemory[];
  /** Attack names by index (resolved with findNamedAttack). */
  attacks: string[];
}

/** One batch to evaluate (images in [0,1], NHWC). */
export interface SweepJob {
  model: number;
  /** JPEG quantiser mode to set first (null: leave the model as it is). */
  mode: string | null;
  /** Index into init.attacks; -1 for the clean cell. */
  attack: number;
  options: Record<string, unknown>;
  /** Seed the randomised layers of the model (and surrogate) restart from before the batch (default: left as they are). */
  noiseSeed?: number;
  /** Transfer attack: craft on these models (indices; several: their logit ensemble), each in its JPEG mode (null: as it is), evaluate on `model`. */
  surrogate?: { model: number; mode: string | null }[];
  norm: Norm;
  what: string;
  x: Float32Array;
  shape: [number, number, number, number];
  y: Float32Array | Int32Array;
  yDtype: 'float32' | 'int32';
  /** A shared minimal-norm search (the attack's `sharedSearch`): run it once and evaluate at each of these budgets (result under `perEps`). */
  epsilons?: number[];
  /** Benchmark only (src/bench): instead of evaluating, take this many attack gradient steps on the batch. */
  gradientSteps?: number;
}

/** The models and attacks of one sweep, ready to evaluate jobs; dispose() frees the models. */
export interface SweepJobRunner {
  run(job: SweepJob): BatchResult;
  dispose(): void;
}

/** Load `init` (backend, BN folding, models, attacks) and return the job runner. */
export async function sweepJobRunner(init: SweepWorkerInit): Promise<SweepJobRunner> {
  await initBackend(init.backend);
  setBatchNormFolding(init.foldBatchNorm);
  const named = init.attacks.map((name) => {
    const a = findNamedAttack(name);
    if (!a) throw new Error(`unknown attack "${name}"`);
    return a;
  });
  const attacks: AttackFn[] = named.map((a) => a.run);
  const models = await Promise.all(init.models.map(modelFromMemory));
  const logits = models.map((m) => asLogitsFn(m));
  return {
    run: (job) => {
      const model = models[job.model];
      if (!model) throw new Error(`${job.what}: no model ${job.model} in this sweep`);
      if (job.mode !== null) defaultSetMode(model, job.what)(job.mode);
      if (job.noiseSeed !== undefined) {
        reseedRandomLayers(model, job.noiseSeed);
        for (const m of job.surrogate ?? []) if (models[m.model] !== model) reseedRandomLayers(models[m.model], job.noiseSeed);
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
        if (job.epsilons) {
          const search = named[job.attack]?.sharedSearch ? named[job.attack].minimal : undefined;
          if (!search) throw new Error(`${job.what}: attack ${init.attacks[job.attack]} has no shared minimal-norm search`);
          return evalBatchShared(logits[job.model], x, y, job.norm, (xx, yy) => search(model, xx, yy, job.options as AttackOptions).adversarial, job.epsilons, job.what);
        }
        const fn = job.attack >= 0 ? attacks[job.attack] : null;
        const s = job.surrogate;
        const members = s?.map(({ model: i, mode }) => {
          if (!models[i]) throw new Error(`${job.what}: no surrogate model ${i} in this sweep`);
          return { model: models[i] as Classifier, name: `model ${i}`, mode };
        });
        const craft = (xx: tf.Tensor4D, yy: tf.Tensor1D, report: Parameters<AttackFn>[4]) => members
          ? onSurrogates(members, (m) => fn!(m, xx, yy, job.options, report))
          : fn!(model, xx, yy, job.options, report);
        return evalBatch(logits[job.model], x, y, job.norm, fn ? craft : null, job.what);
      } finally {
        tf.dispose([x, y]);
      }
    },
    dispose: () => {
      for (const m of models) m.dispose();
    },
  };
}

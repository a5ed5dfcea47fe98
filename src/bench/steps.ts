/**
 * The two timed workloads, on whatever backend is active: one training step of the
 * product's trainer (SGD momentum with weight decay), and one attack step (forward + gradient of the loss w.r.t. the input only,
 * as FGSM/PGD need). Both are leak-free and synchronous: the loss / gradient is read
 * back at the end of each timed repeat so queued work cannot escape the timer.
 */
import * as tf from '@tensorflow/tfjs';
import { objectiveGradient } from '../../attacks/gradient.ts';
import { defaultTrainConfig } from '../train/config.ts';
import { JointTrainer } from '../train/trainer.ts';
import { asLogitsFn } from '../types.ts';

/** A model with its fixed random batch and optimiser, ready to time. */
export interface Workload {
  train(): tf.Scalar;
  attack(): tf.Tensor4D;
  dispose(): void;
}

/** Build the workload for `model` with a seeded batch of `batch` images of `shape` in [0,1]. */
export function makeWorkload(model: tf.LayersModel, batch: number, shape: [number, number, number], numClasses: number, seed = 0): Workload {
  const x = tf.randomUniform([batch, ...shape], 0, 1, 'float32', seed) as tf.Tensor4D;
  const classes = tf.randomUniform([batch], 0, numClasses, 'int32', seed + 1) as tf.Tensor1D;
  // The training step is the product's (JointTrainer: SGD momentum 0.9, coupled weight decay 5e-4,
  // lr 0.01); the PyTorch peer runs torch.optim.SGD with the same settings.
  const trainer = new JointTrainer(model, defaultTrainConfig({ lr: 0.01, momentum: 0.9, weightDecay: 5e-4 }));
  // The attack step is exactly what FGSM/PGD run per iteration: the shared objective gradient
  // (attacks/gradient.ts) through asLogitsFn, i.e. the model as attacks see it.
  const logitsFn = asLogitsFn(model);
  return {
    train: () => {
      const { loss, correct } = trainer.step(x, classes);
      correct.dispose();
      return loss;
    },
    attack: () => {
      const { grad, objective, success } = objectiveGradient(logitsFn, x, classes);
      tf.dispose([objective, success]);
      return grad;
    },
    dispose: () => {
      tf.dispose([x, classes]);
      trainer.dispose();
    },
  };
}

/**
 * Run `step` `warmup` times untimed, then `repeats` x `steps` timed; returns the mean
 * seconds per step of each repeat. The last output of each repeat is read back
 * (dataSync) inside the timer.
 */
export function timeSteps(step: () => tf.Tensor, { warmup, repeats, steps }: { warmup: number; repeats: number; steps: number }): number[] {
  for (let i = 0; i < warmup; i++) {
    const out = step();
    out.dataSync();
    out.dispose();
  }
  const seconds: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < steps; i++) {
      const out = step();
      if (i === steps - 1) out.dataSync();
      out.dispose();
    }
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9 / steps);
  }
  return seconds;
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median: empty list');
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

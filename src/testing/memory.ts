/** Tensor-leak checks for loops: every training step, attack step and sweep cell uses these in tests. */
import * as tf from '@tensorflow/tfjs';

/**
 * Run `step` once to warm up (lazy weights, caches), then `reps` more times, and throw
 * if `tf.memory().numTensors` differs between the first and the last repetition.
 * Returns the leak per step (0 when clean). `step` may be async and may return tensors,
 * which are disposed.
 */
export async function assertNoTensorLeak(
  step: () => unknown | Promise<unknown>,
  { reps = 3, label = 'step' }: { reps?: number; label?: string } = {},
): Promise<void> {
  const run = async () => {
    const out = await step();
    tf.dispose(out as tf.TensorContainer);
  };
  await run();
  const before = tf.memory().numTensors;
  for (let i = 0; i < reps; i++) await run();
  const after = tf.memory().numTensors;
  if (after !== before) {
    throw new Error(`${label} leaked ${(after - before) / reps} tensors per call (${before} -> ${after} after ${reps} calls)`);
  }
}

/** Test helpers: the wasm and cpu backends side by side in one process, beside the native one. */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { registerWasmTrainingKernels } from '../../src/wasm/kernels.ts';

const require = createRequire(import.meta.url);
let ready: Promise<void> | undefined;

/** Register the wasm backend (package's own .wasm files) and its training kernels, once. */
export function ensureWasm(): Promise<void> {
  ready ??= (async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(require.resolve('@tensorflow/tfjs-backend-wasm/package.json').replace(/package\.json$/, 'dist/'));
    registerWasmTrainingKernels();
    const original = tf.getBackend();
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
    await tf.setBackend(original);
  })();
  return ready;
}

/** Run `fn` with `name` as the active backend, restoring the previous backend afterwards. */
export async function onBackend<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const original = tf.getBackend();
  await tf.setBackend(name);
  try {
    return await fn();
  } finally {
    await tf.setBackend(original);
  }
}

/** Evaluate `fn` on backend `name` and return its output as plain numbers (tensors disposed). */
export async function valuesOn(name: string, fn: () => tf.Tensor): Promise<{ shape: number[]; values: Float32Array }> {
  return onBackend(name, () => {
    const t = fn();
    const out = { shape: t.shape, values: Float32Array.from(t.dataSync()) };
    t.dispose();
    return out;
  });
}

/** max |a-b| / max(1e-6, max |b|): error relative to the reference's scale. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(1e-6, scale);
}

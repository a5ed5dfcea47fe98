/** How many worker processes a data-parallel sweep uses. */
import { availableParallelism, freemem } from 'node:os';

/** Memory budgeted per worker process: TensorFlow alone is about 0.7 GB resident (measured). */
export const WORKER_MEMORY_BYTES = 1024 ** 3;

/**
 * Worker count from a `--workers` value: a positive integer, or 'auto' = one per core, as many as
 * free memory allows at {@link WORKER_MEMORY_BYTES} each, and 1 on a GPU backend (one device:
 * workers would only queue on it). `machine` overrides the cores / free memory seen (tests).
 */
export function parseWorkers(
  value: string | number | undefined, backend: string, flag = '--workers',
  machine: { cores: number; freeBytes: number } = { cores: availableParallelism(), freeBytes: freemem() },
): number {
  if (value === undefined || value === 'auto') {
    if (backend === 'tensorflow-gpu') return 1;
    return Math.max(1, Math.min(machine.cores, Math.floor(machine.freeBytes / WORKER_MEMORY_BYTES)));
  }
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer or "auto", got "${value}"`);
  return n;
}

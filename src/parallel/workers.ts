/** How many worker processes a data-parallel sweep uses. */
import { availableParallelism } from 'node:os';

/**
 * Worker count from a `--workers` value: a positive integer, or 'auto' = one per core, except on a
 * GPU backend (one device: workers would only queue on it) where it is 1.
 */
export function parseWorkers(value: string | number | undefined, backend: string, flag = '--workers'): number {
  if (value === undefined || value === 'auto') return backend === 'tensorflow-gpu' ? 1 : availableParallelism();
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer or "auto", got "${value}"`);
  return n;
}

import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseWorkers, WORKER_MEMORY_BYTES } from '../../src/parallel/workers.ts';

describe('parseWorkers', () => {
  const GB = WORKER_MEMORY_BYTES;
  it('auto is one worker per core within free memory, and 1 on a GPU backend', () => {
    expect(parseWorkers('auto', 'tensorflow', '--workers', { cores: 8, freeBytes: 64 * GB })).toBe(8);
    expect(parseWorkers(undefined, 'wasm', '--workers', { cores: 8, freeBytes: 3.5 * GB })).toBe(3);
    expect(parseWorkers('auto', 'cpu', '--workers', { cores: 8, freeBytes: 0.2 * GB })).toBe(1);
    expect(parseWorkers('auto', 'tensorflow-gpu', '--workers', { cores: 8, freeBytes: 64 * GB })).toBe(1);
    // This machine: between one worker and one per core.
    const here = parseWorkers('auto', 'tensorflow');
    expect(here).toBeGreaterThanOrEqual(1);
    expect(here).toBeLessThanOrEqual(availableParallelism());
  });
  it('takes positive integers; anything else names the flag', () => {
    expect(parseWorkers('3', 'tensorflow')).toBe(3);
    expect(parseWorkers(2, 'cpu')).toBe(2);
    for (const bad of ['0', '-1', '1.5', 'two', '', 0]) expect(() => parseWorkers(bad, 'tensorflow', '--workers')).toThrow(/^--workers: expected a positive integer or "auto"/);
  });
});

import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { parseWorkers } from '../../src/parallel/workers.ts';

describe('parseWorkers', () => {
  it('auto is one worker per core, except on a GPU backend; integers pass; anything else names the flag', () => {
    expect(parseWorkers('auto', 'tensorflow')).toBe(availableParallelism());
    expect(parseWorkers(undefined, 'wasm')).toBe(availableParallelism());
    expect(parseWorkers('auto', 'tensorflow-gpu')).toBe(1);
    expect(parseWorkers('3', 'tensorflow')).toBe(3);
    expect(parseWorkers(2, 'cpu')).toBe(2);
    for (const bad of ['0', '-1', '1.5', 'two', '', 0]) expect(() => parseWorkers(bad, 'tensorflow', '--workers')).toThrow(/^--workers: expected a positive integer or "auto"/);
  });
});

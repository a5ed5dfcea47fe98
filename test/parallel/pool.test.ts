import { describe, expect, it } from 'vitest';
import { WorkerPool } from '../../src/parallel/pool.ts';

const ENTRY = new URL('./square-worker.ts', import.meta.url);
type Out = { sq: number; tag: string; env: string | null; pid: number };

describe('WorkerPool', () => {
  it('runs every job once across worker processes, results tagged by job, env given to the workers only', async () => {
    delete process.env.JPEGDL_POOL_TEST;
    const pool = await WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'a' }, env: { JPEGDL_POOL_TEST: 'x' } });
    expect(process.env.JPEGDL_POOL_TEST).toBeUndefined();
    try {
      const seen = new Map<number, Out>();
      let taken = 0;
      // Uneven job lengths: results arrive out of order.
      const jobs = Array.from({ length: 25 }, (_, i) => ({ v: i, delayMs: i % 3 === 0 ? 15 : 0 }));
      await pool.runAll<{ v: number; delayMs: number }, Out>(jobs, (j) => { taken++; return j; }, (j, r) => {
        expect(seen.has(j.v)).toBe(false);
        seen.set(j.v, r);
      });
      expect(taken).toBe(25);
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(jobs.map((j) => j.v));
      for (const [v, r] of seen) expect(r).toMatchObject({ sq: v * v, tag: 'a', env: 'x' });
      expect(new Set([...seen.values()].map((r) => r.pid)).size).toBe(2);
      expect([...seen.values()].some((r) => r.pid === process.pid)).toBe(false);
      // Reusable after a run; an empty job list resolves at once.
      await pool.runAll([], () => (null), () => { throw new Error('no jobs expected'); });
      let sum = 0;
      await pool.runAll<{ v: number }, Out>([{ v: 3 }, { v: 4 }], (j) => j, (_, r) => { sum += r.sq; });
      expect(sum).toBe(25);
      // A new init reaches every worker; the same processes serve on.
      const pids = new Set([...seen.values()].map((r) => r.pid));
      await pool.reset({ tag: 'a2' });
      const after: Out[] = [];
      await pool.runAll<{ v: number; delayMs: number }, Out>([1, 2, 3, 4].map((v) => ({ v, delayMs: 10 })), (j) => j, (_, r) => { after.push(r); });
      expect(new Set(after.map((r) => r.tag))).toEqual(new Set(['a2']));
      for (const r of after) expect(pids.has(r.pid)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('pulls jobs lazily: never more in flight than workers', async () => {
    const pool = await WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'b' } });
    try {
      let taken = 0, done = 0, maxAhead = 0;
      await pool.runAll<{ v: number }, Out>(
        (function* () { for (let v = 0; v < 12; v++) yield { v, delayMs: 5 }; })(),
        (j) => { taken++; maxAhead = Math.max(maxAhead, taken - done); return j; },
        () => { done++; },
      );
      expect(done).toBe(12);
      expect(maxAhead).toBeLessThanOrEqual(2);
    } finally {
      await pool.close();
    }
  });

  it('rejects with the job error (and onResult throws), naming what failed', async () => {
    const pool = await WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'c' } });
    try {
      await expect(pool.runAll([{ v: 1 }, { v: -2 }, { v: 3 }], (j) => j, () => {})).rejects.toThrow('negative input -2');
      await expect(pool.runAll([{ v: 1 }], (j) => j, () => { throw new Error('consumer failed'); })).rejects.toThrow('consumer failed');
    } finally {
      await pool.close();
    }
  });

  it('fails to start with the worker setup error, and checks its size', async () => {
    await expect(WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'd', failSetup: true }, name: 'square worker' })).rejects.toThrow(/square worker \d failed to start: setup refused on purpose/);
    await expect(WorkerPool.start({ size: 0, entry: ENTRY, init: {} })).rejects.toThrow('size must be a positive integer, got 0');
    await expect(WorkerPool.start({ size: 1, entry: new URL('./no-such-worker.ts', import.meta.url), init: {} })).rejects.toThrow(/failed to start/);
  });
});

describe('WorkerPool when a worker dies', () => {
  it('rejects the run naming the worker and how it ended; the pool is then unusable', async () => {
    const pool = await WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'f' }, name: 'square worker' });
    try {
      await expect(pool.runAll([{ v: 1 }, { v: 999 }, { v: 2 }], (j) => j, () => {})).rejects.toThrow(/square worker \d died: exited with code 3/);
      expect(pool.usable).toBe(false);
      await expect(pool.runAll([{ v: 1 }], (j) => j, () => {})).rejects.toThrow(/died/);
    } finally {
      await pool.close();
    }
  });
});

describe('WorkerPool after a job error', () => {
  it('starts no new job but hands the running ones to onResult before rejecting', async () => {
    const pool = await WorkerPool.start({ size: 2, entry: ENTRY, init: { tag: 'e' } });
    try {
      const got: number[] = [];
      let taken = 0;
      // Worker A fails at once on -1 while worker B is busy with a slow job: B's result must still arrive.
      const jobs = [{ v: 5, delayMs: 300 }, { v: -1 }, { v: 6 }, { v: 7 }];
      await expect(pool.runAll<{ v: number }, Out>(jobs, (j) => { taken++; return j; }, (j) => { got.push(j.v); })).rejects.toThrow('negative input -1');
      expect(got).toEqual([5]);
      expect(taken).toBe(2);
    } finally {
      await pool.close();
    }
  });
});

// Test worker for the pool: squares numbers (negative: a job error), reports its env and init.
import { serveJobs } from '../../src/parallel/pool.ts';

let tag = '';
serveJobs<{ failSetup?: boolean; tag: string }, { v: number; delayMs?: number }>(async (init) => {
  if (init.failSetup) throw new Error('setup refused on purpose');
  tag = init.tag;
}, (job) => {
  if (job.v < 0) throw new Error(`negative input ${job.v}`);
  if (job.v === 999) process.exit(3); // a crash, not an error reply
  if (job.delayMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, job.delayMs);
  return { sq: job.v * job.v, tag, env: process.env.JPEGDL_POOL_TEST ?? null, pid: process.pid };
});

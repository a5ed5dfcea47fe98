/** Entry of a parallel sweep's worker process: serves src/eval/sweep-job.ts over the pool's channel. */
import { serveJobs } from '../parallel/pool.ts';
import { sweepJobRunner, type SweepJob, type SweepJobRunner, type SweepWorkerInit } from './sweep-job.ts';

let runner: SweepJobRunner | null = null;

serveJobs<SweepWorkerInit, SweepJob>(async (init) => {
  // A pool is reused across sweeps: a new init replaces the previous sweep's models.
  runner?.dispose();
  runner = null;
  runner = await sweepJobRunner(init);
}, (job) => runner!.run(job));

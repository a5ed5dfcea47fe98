/**
 * A pool of child processes, each running one TypeScript module (loaded through tsx) that serves
 * jobs one at a time. Jobs are pulled lazily from an iterator as workers become free, so a long
 * job stream never sits in memory; results come back out of order, tagged with their job.
 * Used for data-parallel sweeps (src/eval/sweep-worker.ts): TensorFlow's intra-op threads scale
 * poorly on small convolutions, whole batches on separate single-threaded workers scale almost
 * linearly. Processes, not worker threads: TensorFlow keeps process-wide state (one intra-op pool,
 * thread counts read once), and concurrent native initialisation in threads was seen to crash.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Messages from a worker. */
type Reply =
  | { type: 'hello' }
  | { type: 'ready' }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string }
  | { type: 'fatal'; message: string };
/** Messages to a worker. */
type Request = { type: 'init'; init: unknown } | { type: 'job'; id: number; job: unknown };

const BOOT = fileURLToPath(new URL('./boot.mjs', import.meta.url));
// TensorFlow's start-up notices, printed by every worker: kept out of the user's terminal.
const NOISE = /oneDNN custom operations are on|absl::InitializeLog|cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags|This TensorFlow binary is optimized/;

export interface PoolOptions {
  /** Number of worker processes (>= 1). */
  size: number;
  /** The TypeScript module each worker runs; it calls {@link serveJobs}. */
  entry: URL;
  /** Handed to every worker's setup (structured-cloned, typed arrays included). */
  init: unknown;
  /** Extra environment of the workers (e.g. TF_NUM_INTRAOP_THREADS). */
  env?: Record<string, string>;
  /** Used in error messages, e.g. "sweep worker". */
  name?: string;
}

interface Slot {
  child: ChildProcess;
  /** Last lines the worker wrote to stderr, for error messages. */
  tail: string[];
}

/** Worker processes serving jobs; create with {@link WorkerPool.start}, always {@link WorkerPool.close}. */
export class WorkerPool {
  private readonly slots: Slot[];
  private failure: Error | null = null;
  private closing = false;
  /** Job ids are unique over the pool's life: a late reply from an aborted run is never mistaken for a new job's. */
  private nextId = 0;
  private onFailure: ((err: Error) => void) | null = null;
  private onReply: ((slot: Slot, reply: Reply) => void) | null = null;

  private constructor(children: ChildProcess[], readonly name: string) {
    this.slots = children.map((child) => ({ child, tail: [] }));
  }

  /** Spawn `size` workers and wait until every one has run its setup (rejects with the first failure). */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`worker pool: size must be a positive integer, got ${opts.size}`);
    const name = opts.name ?? 'worker';
    const children: ChildProcess[] = [];
    for (let i = 0; i < opts.size; i++) {
      children.push(fork(BOOT, [opts.entry.href], {
        serialization: 'advanced',
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        execArgv: [],
      }));
    }
    const pool = new WorkerPool(children, name);
    pool.slots.forEach((slot) => pool.captureStderr(slot));
    try {
      await Promise.all(pool.slots.map((slot, i) => new Promise<void>((resolve, reject) => {
        const c = slot.child;
        const off = () => {
          c.off('error', onError);
          c.off('exit', onExit);
          c.off('message', onMessage);
        };
        const fail = (err: Error) => {
          off();
          reject(new Error(`${name} ${i} failed to start: ${err.message}${pool.tailOf(slot)}`));
        };
        const onError = (err: Error) => fail(err);
        const onExit = (code: number | null, signal: string | null) => fail(new Error(`exited with ${signal ?? `code ${code}`}`));
        const onMessage = (m: Reply) => {
          if (m.type === 'hello') return void c.send({ type: 'init', init: opts.init } satisfies Request);
          if (m.type !== 'ready') return fail(new Error(m.type === 'fatal' ? m.message : `unexpected message ${m.type}`));
          off();
          resolve();
        };
        c.on('error', onError);
        c.on('exit', onExit);
        c.on('message', onMessage);
      })));
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.listen();
    pool.hold(false);
    return pool;
  }

  /**
   * Keep the parent process alive for the workers (true) or not (false): an idle pool must not
   * stop the program from exiting; its workers exit when their parent goes.
   */
  private hold(on: boolean): void {
    for (const s of this.slots) {
      // The process handle, the IPC channel and the stderr pipe each keep the event loop alive.
      const handles = [s.child.channel, s.child.stderr] as ({ ref?: () => void; unref?: () => void } | null | undefined)[];
      if (on) s.child.ref();
      else s.child.unref();
      for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
    }
  }

  /** Whether the pool can still run jobs (no worker has died and it was not closed). */
  get usable(): boolean {
    return !this.failure && !this.closing;
  }

  /** Run every worker's setup again with a new `init` (e.g. other models); resolves when all are ready. */
  async reset(init: unknown): Promise<void> {
    if (!this.usable) throw this.failure ?? new Error(`${this.name} pool is closed`);
    this.hold(true);
    try {
      await new Promise<void>((resolve, reject) => {
        let pending = this.slots.length;
        this.onFailure = (err) => reject(err);
        this.onReply = (_slot, m) => {
          if (m.type === 'fatal') return reject(new Error(`${this.name}: ${m.message}`));
          if (m.type === 'ready' && --pending === 0) resolve();
        };
        for (const s of this.slots) s.child.send({ type: 'init', init } satisfies Request);
      });
    } finally {
      this.onReply = null;
      this.onFailure = null;
      this.hold(false);
    }
  }

  /** Number of workers. */
  get size(): number {
    return this.slots.length;
  }

  private captureStderr(slot: Slot): void {
    let partial = '';
    slot.child.stderr?.setEncoding('utf8');
    slot.child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (NOISE.test(line)) continue;
        slot.tail.push(line);
        if (slot.tail.length > 20) slot.tail.shift();
        process.stderr.write(`${line}\n`);
      }
    });
  }

  private tailOf(slot: Slot): string {
    const t = slot.tail.filter((l) => l.trim()).slice(-5);
    return t.length ? ` (its last output: ${t.join(' | ')})` : '';
  }

  private listen(): void {
    this.slots.forEach((slot, i) => {
      const die = (err: Error) => this.fail(new Error(`${this.name} ${i} died: ${err.message}${this.tailOf(slot)}`));
      slot.child.on('error', die);
      slot.child.on('exit', (code, signal) => die(new Error(`exited with ${signal ?? `code ${code}`}`)));
      slot.child.on('message', (m: Reply) => this.onReply?.(slot, m));
    });
  }

  private fail(err: Error): void {
    if (this.closing) return;
    if (!this.failure) this.failure = err;
    this.onFailure?.(this.failure);
  }

  /**
   * Run every job of `jobs` on the pool: `message(job)` builds what a worker receives (taken only
   * when a worker is free), `onResult(job, result)` sees each result as it arrives. Resolves when
   * all results have been handled. On the first job error (or throw from onResult) no further job
   * starts, the running ones are still handed to onResult, then the run rejects with that error.
   */
  runAll<J, R>(jobs: Iterable<J>, message: (job: J) => unknown, onResult: (job: J, result: R) => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.hold(true);
    const it = jobs[Symbol.iterator]();
    const inFlight = new Map<number, J>();
    let exhausted = false;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let jobError: Error | null = null;
      const finish = (err?: Error | null) => {
        if (settled) return;
        settled = true;
        this.onReply = null;
        this.onFailure = null;
        this.hold(false);
        if (err) reject(err);
        else resolve();
      };
      const settleIfDone = () => {
        if ((exhausted || jobError) && inFlight.size === 0) finish(jobError);
      };
      this.onFailure = (err) => finish(err);
      const feed = (slot: Slot) => {
        if (settled || exhausted || jobError) return;
        const n = it.next();
        if (n.done) {
          exhausted = true;
          return;
        }
        const id = this.nextId++;
        inFlight.set(id, n.value);
        slot.child.send({ type: 'job', id, job: message(n.value) } satisfies Request);
      };
      this.onReply = (slot, m) => {
        if (settled) return;
        if (m.type === 'fatal') return finish(new Error(`${this.name}: ${m.message}`));
        if ((m.type !== 'result' && m.type !== 'error') || !inFlight.has(m.id)) return;
        const job = inFlight.get(m.id) as J;
        inFlight.delete(m.id);
        try {
          if (m.type === 'error') throw new Error(m.message);
          onResult(job, m.result as R);
          feed(slot);
        } catch (err) {
          jobError ??= err as Error;
        }
        settleIfDone();
      };
      try {
        for (const slot of this.slots) feed(slot);
      } catch (err) {
        jobError ??= err as Error;
      }
      settleIfDone();
    });
  }

  /** Stop every worker and wait for it to exit (idempotent). */
  async close(): Promise<void> {
    this.onReply = null;
    this.onFailure = null;
    this.closing = true;
    this.hold(true);
    await Promise.all(this.slots.map((s) => new Promise<void>((resolve) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
      s.child.once('exit', () => resolve());
      s.child.kill();
    })));
  }
}

/**
 * Inside a pool worker: run `setup(init)` (e.g. load models), announce readiness, then answer
 * every job with `handle(job)`; a throw becomes that job's error, a failed setup the pool's start
 * error. The worker exits when the pool goes away.
 */
export function serveJobs<I, J>(setup: (init: I) => Promise<void>, handle: (job: J) => unknown): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('serveJobs: not running in a pool worker (no IPC channel)');
  process.on('disconnect', () => process.exit(0));
  let ready: Promise<boolean> | null = null;
  process.on('message', async (m: Request) => {
    if (m.type === 'init') {
      ready = setup(m.init as I).then(() => true, (err: Error) => {
        send({ type: 'fatal', message: err.message } satisfies Reply);
        return false;
      });
      if (await ready) send({ type: 'ready' } satisfies Reply);
      return;
    }
    if (m.type !== 'job' || !ready || !(await ready)) return;
    try {
      send({ type: 'result', id: m.id, result: handle(m.job as J) } satisfies Reply);
    } catch (err) {
      send({ type: 'error', id: m.id, message: (err as Error).message } satisfies Reply);
    }
  });
  send({ type: 'hello' } satisfies Reply);
}

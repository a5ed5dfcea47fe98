/**
 * Robustness sweep: every model (and JPEG quantiser mode) x attack x eps, one record per cell,
 * appended as each cell finishes so an interrupted sweep resumes where it stopped.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { backendInfo, describeBackend } from '../backend.ts';
import { keySeed } from '../data/rng.ts';
import { findJpegModeLayers, JPEG_MODE_LAYER_CLASSES } from '../jpeg/modes.ts';
import { isRandomised, reseedRandomLayers } from '../layers/random.ts';
import type { QuantMode } from '../jpeg/quantize.ts';
import type { Epsilon } from '../eps.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { modelToMemory } from '../io/model-io.ts';
import { batchNormFolding } from '../inference/model.ts';
import { WorkerPool } from '../parallel/pool.ts';
import { ensembleModel } from '../../attacks/ensemble.ts';
import { mergeStages, mergeTraces, type MinimalNormAttack } from '../../attacks/epsilons.ts';
import type { QueryTrace } from '../../attacks/search.ts';
import type { AttackOptions } from '../../attacks/index.ts';
import { evalBatch, evalBatchShared, type BatchResult, type StageReport } from './batch.ts';

export { mergeStages, TRANSFER_PARAMS, attackOptions };
import { findNamedAttack, namedAttackNames } from './named-attacks.ts';
import type { SweepJob, SweepWorkerInit } from './sweep-job.ts';
import { asLogitsFn, type Classifier, type Norm, type ThreatModel } from '../types.ts';
import {
  CLEAN_ATTACK, RECORD_SCHEMA, TRANSFER_PARAMS, VARIANTS, appendRecord, attackOptions, cellKey, dedupeRecords, loadRecords, packBits, unpackBits,
  type CellRecord, type Variant,
} from './records.ts';

/** An attack as the registry exports it: adversarial images in [0,1], same shape as `images`. */
export type AttackFn = (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Record<string, unknown>, report?: StageReport) => tf.Tensor4D;

/** One model instance to evaluate. */
export interface SweepModel {
  /** Name shared by the seeds of one configuration, e.g. "baseline" or "jpeg-dl". */
  name: string;
  variant: Variant;
  /** Training seed of this instance (default 0); seeds of one name aggregate to mean ± std. */
  seed?: number;
  model: Classifier;
  /** JPEG quantiser modes to evaluate (each is its own column); default: the model's current mode. */
  jpegModes?: string[];
  /** How to switch modes; default: set `.mode` on every layer of class 'JpegLayer'. */
  setJpegMode?: (mode: string) => void;
}

/**
 * One attack configuration; `fn` overrides the registry (tests, custom attacks). Two reserved params
 * make it a transfer attack: `surrogate` (a model name of this sweep, or names joined by "+" for the
 * logit ensemble of those models) crafts the adversarial images on that model and evaluates them on each
 * model; `surrogateMode` is the JPEG mode of the surrogate (of every member with JPEG layers) while it
 * crafts (default: the first of its jpegModes, else its mode at the start of the sweep). Both stay in
 * the records' attackParams (a transfer cell is its own cell) and are not passed to the attack.
 */
export interface SweepAttack {
  name: string;
  params?: Record<string, unknown>;
  fn?: AttackFn;
  /** Norm of this attack's budget (default: the registry entry's, else the sweep's), e.g. 'l2' for pgd-l2. */
  norm?: Norm;
  /** Pass a derived per-batch `seed` option (default: when the registry entry's defaults have a seed). */
  seeded?: boolean;
  /** This attack's budgets (default: the sweep's `epsilons`): a sweep mixing norms gives each attack the list of its own norm. */
  epsilons?: Epsilon[];
}

/** Progress of a sweep, in batches (the unit of work). */
export interface SweepProgress {
  done: number;
  total: number;
  /** Human description of the cell being run, e.g. "jpeg-dl [soft] pgd 8/255". */
  cell: string;
  skipped: number;
}

export interface SweepOptions {
  models: SweepModel[];
  attacks: SweepAttack[];
  epsilons: Epsilon[];
  /** Norm of every eps (default 'linf'). */
  norm?: Norm;
  /** [N,H,W,C] float32 in [0,1]. */
  images: tf.Tensor4D;
  /** [N] integer class labels. */
  labels: tf.Tensor1D;
  batchSize: number;
  /** Seeds attack randomness (random starts); cell seeds are derived from it. */
  seed: number;
  /** Directory holding records.jsonl and sweep.json. */
  outDir: string;
  onProgress?: (p: SweepProgress) => void;
  /** Draw a cli-progress bar with ETA on stderr (default: when stderr is a TTY). */
  progressBar?: boolean;
  /** Attack lookup for attacks without `fn` (default: the registry in attacks/index.ts). */
  resolveAttack?: (name: string) => ResolvedAttack | Promise<ResolvedAttack>;
  /** Backend description stored in records (default: describeBackend(backendInfo())). */
  backend?: string;
  /**
   * Worker processes evaluating whole batches in parallel (default 1: this process only). Records are
   * the same as with one; needs LayersModels (default JPEG mode switching) and attacks known by
   * name (src/eval/named-attacks.ts), since functions cannot be sent to another process.
   */
  workers?: number;
  /** TensorFlow intra-op threads per worker (default: cores / workers, at least 1). */
  threadsPerWorker?: number;
}

export interface SweepResult {
  /** All records of this sweep (finished earlier or now), one per cell. */
  records: CellRecord[];
  /** Cells computed in this call. */
  ran: number;
  /** Cells skipped because they were already in the records file. */
  skipped: number;
  /** Batches evaluated by worker processes (the rest ran in this process). */
  batchesOnWorkers: number;
  recordsPath: string;
  /** A torn last line dropped from the records file on resume, if any. */
  droppedTail?: string;
}

/** File names inside a sweep's outDir. */
export const RECORDS_FILE = 'records.jsonl';
export const SWEEP_FILE = 'sweep.json';

/** A registry entry as attacks/index.ts exports it (getAttack(name)). */
export interface RegistryEntry {
  run: AttackFn;
  norm?: Norm;
  /** Defaults of optional options; a 'seed' key means the attack takes a seed. */
  defaults?: Record<string, unknown>;
  /** Minimal-norm attacks: the least-norm search (examples and sizes). */
  minimal?: MinimalNormAttack;
  /** The budgeted attack is the search's points projected onto the ball, and the search ignores eps: one search per batch answers every eps. */
  sharedSearch?: boolean;
}

/** What a resolver may return: the function itself or a registry entry. */
export type ResolvedAttack = AttackFn | RegistryEntry;

const REGISTRY = '../../attacks/index.ts'; // loaded at run time: the registry is another module's

/** getAttack(name) of the attack registry in attacks/index.ts. */
export async function registryResolver(): Promise<(name: string) => ResolvedAttack> {
  let mod: { getAttack?: (name: string) => ResolvedAttack };
  try {
    mod = await import(REGISTRY);
  } catch (err) {
    throw new Error(`attack registry attacks/index.ts could not be loaded: ${(err as Error).message}`);
  }
  if (typeof mod.getAttack !== 'function') throw new Error('attacks/index.ts does not export getAttack(name)');
  return mod.getAttack;
}

/** Names the registry knows, for error messages (empty if unknown). */
export async function knownAttackNames(): Promise<string[]> {
  try {
    const mod = (await import(REGISTRY)) as { ATTACKS?: Record<string, unknown> };
    return mod.ATTACKS ? Object.keys(mod.ATTACKS) : [];
  } catch {
    return [];
  }
}

/** sha256 of the evaluation images + labels, to refuse resuming a sweep on different data. */
export function dataFingerprint(images: tf.Tensor4D, labels: tf.Tensor1D): string {
  const h = createHash('sha256');
  const x = images.dataSync() as Float32Array;
  h.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  h.update(new Uint8Array(Int32Array.from(labels.dataSync() as ArrayLike<number>).buffer));
  h.update(JSON.stringify(images.shape));
  return h.digest('hex');
}

/** Current quantiser mode of a LayersModel's JPEG layers (JPEG-DL's or the randomised JPEG defence's; null when it has none). */
export function currentJpegMode(model: Classifier): string | null {
  if (typeof model === 'function') return null;
  const layers = findJpegModeLayers(model);
  return layers.length ? String(layers[0].mode ?? 'soft') : null;
}

/** Sets the quantiser mode of every JPEG layer (JpegLayer, RandomJpegLayer) of `model` (named `name` in errors). */
export function defaultSetMode(model: Classifier, name: string): (mode: string) => void {
  return (mode: string) => {
    if (typeof model === 'function') throw new Error(`model "${name}": jpegModes given for a plain function; pass setJpegMode`);
    const layers = findJpegModeLayers(model);
    if (!layers.length) throw new Error(`model "${name}": jpegModes given but the model has no ${JPEG_MODE_LAYER_CLASSES.join(' or ')}`);
    for (const l of layers) l.mode = mode as QuantMode;
  };
}

/**
 * Run `craft` with `model` (the surrogate) switched to JPEG `mode` (null: leave it), restoring its mode
 * afterwards, so the evaluated model (possibly the same object in another mode) is unaffected.
 */
export function onSurrogate<T>(model: Classifier, name: string, mode: string | null, craft: () => T, set: (mode: string) => void = defaultSetMode(model, name)): T {
  const before = mode === null ? null : currentJpegMode(model);
  if (mode === null || before === mode) return craft();
  set(mode);
  try {
    return craft();
  } finally {
    set(before!);
  }
}

/**
 * Run `craft` on the surrogate: one model, or the logit ensemble of several (attacks/ensemble.ts), each
 * member switched to its JPEG mode for the call and restored afterwards (see onSurrogate).
 */
export function onSurrogates<T>(members: { model: Classifier; name: string; mode: string | null; set?: (mode: string) => void }[], craft: (surrogate: Classifier) => T): T {
  const surrogate = members.length === 1 ? members[0].model : ensembleModel(members.map((m) => m.model));
  const from = (k: number): T => (k === members.length ? craft(surrogate) : onSurrogate(members[k].model, members[k].name, members[k].mode, () => from(k + 1), members[k].set));
  return from(0);
}

/** Derive a 31-bit seed for a cell from the sweep seed and the cell key (FNV-1a). */
export const cellSeed = keySeed;

/** Check every argument before any work starts; throws naming what is wrong. */
function validate(opts: SweepOptions): void {
  const { models, attacks, epsilons, images, labels, batchSize } = opts;
  if (!models?.length) throw new Error('runSweep: models is empty');
  const ids = new Set<string>();
  for (const m of models) {
    if (!m.name) throw new Error('runSweep: a model has no name');
    if (!VARIANTS.includes(m.variant)) throw new Error(`runSweep: model "${m.name}" has variant "${String(m.variant)}"; expected ${VARIANTS.join(', ')}`);
    const id = `${m.name}/${m.variant}/${m.seed ?? 0}`;
    if (ids.has(id)) throw new Error(`runSweep: model "${m.name}" (${m.variant}, seed ${m.seed ?? 0}) is listed twice`);
    ids.add(id);
  }
  if (!attacks?.length) throw new Error('runSweep: attacks is empty');
  for (const a of attacks) if (!a.name || a.name === CLEAN_ATTACK) throw new Error(`runSweep: invalid attack name "${a.name}" ("${CLEAN_ATTACK}" is reserved)`);
  // The sweep's list serves the attacks without their own (a sweep mixing norms gives each attack its norm's list).
  const lists: [string, Epsilon[] | undefined][] = [
    ...(attacks.some((a) => a.epsilons === undefined) ? [['the epsilon list', epsilons] as [string, Epsilon[] | undefined]] : []),
    ...attacks.filter((a) => a.epsilons !== undefined).map((a): [string, Epsilon[]] => [`the epsilon list of attack "${a.name}"`, a.epsilons!]),
  ];
  for (const [what, list] of lists) {
    if (!list?.length) throw new Error(`runSweep: ${what} is empty`);
    // Above 1 only for L2 and L1 attacks (sizes summed over pixels): checked once the attacks' norms are known.
    for (const e of list) if (!(e.value >= 0 && Number.isFinite(e.value))) throw new Error(`runSweep: eps ${e.label} = ${e.value} in ${what} must be a finite number >= 0`);
    if (new Set(list.map((e) => e.label)).size !== list.length) throw new Error(`runSweep: ${what} has duplicates`);
  }
  if (images.rank !== 4) throw new Error(`runSweep: images must be [N,H,W,C], got shape [${images.shape}]`);
  if (labels.rank !== 1 || labels.shape[0] !== images.shape[0]) throw new Error(`runSweep: labels shape [${labels.shape}] does not match ${images.shape[0]} images`);
  if (images.shape[0] === 0) throw new Error('runSweep: no images');
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`runSweep: batchSize must be a positive integer, got ${batchSize}`);
  const [lo, hi] = tf.tidy(() => [images.min().dataSync()[0], images.max().dataSync()[0]]);
  if (lo < 0 || hi > 1) throw new Error(`runSweep: images must be in [0,1], found range [${lo}, ${hi}]`);
}

/** What a worker needs to rebuild the sweep's models and attacks. */
async function workerInit(models: SweepModel[], attacks: SweepAttack[]): Promise<SweepWorkerInit> {
  return {
    backend: backendInfo()?.name ?? tf.getBackend(),
    foldBatchNorm: batchNormFolding(),
    models: await Promise.all(models.map((m) => modelToMemory(m.model as tf.LayersModel))),
    attacks: attacks.map((a) => a.name),
  };
}

/**
 * Evaluate `jobs` (batches) on `pool`; results reach `onResult` as they arrive. After a failure
 * the shared pool is dropped (its workers may still be busy with abandoned batches).
 */
async function runOnWorkers<J extends { lo: number; sz: number }>(
  pool: WorkerPool, images: tf.Tensor4D, labels: tf.Tensor1D,
  jobs: Iterable<J>, onResult: (job: J, r: BatchResult) => void,
  describe: (job: J) => Pick<SweepJob, 'model' | 'mode' | 'attack' | 'norm' | 'what' | 'options' | 'surrogate' | 'epsilons'>,
): Promise<void> {
  let ok = false;
  try {
    const xs = images.dataSync() as Float32Array;
    const ys = labels.dataSync();
    const [, h, w, ch] = images.shape;
    const per = h * w * ch;
    const yDtype = labels.dtype === 'int32' ? 'int32' : 'float32';
    await pool.runAll<J, BatchResult>(jobs, (job) => {
      const x = xs.slice(job.lo * per, (job.lo + job.sz) * per);
      const y = yDtype === 'int32' ? Int32Array.from(ys.subarray(job.lo, job.lo + job.sz)) : Float32Array.from(ys.subarray(job.lo, job.lo + job.sz));
      return { ...describe(job), x, shape: [job.sz, h, w, ch], y, yDtype } satisfies SweepJob;
    }, onResult);
    ok = true;
  } finally {
    if (!ok) await closeSweepWorkers();
  }
}

// Worker processes outlive a sweep (starting one costs about 2 s: Node, tsx, TensorFlow), so the
// several sweeps of one run share them; idle, they do not keep the program alive.
let shared: { pool: WorkerPool; size: number; threads: number } | null = null;
// A start still in progress (a sweep may finish before its workers are up): the next one waits for it.
let starting: Promise<unknown> | null = null;

/** The shared pool of `size` sweep workers with `threads` TensorFlow threads each, set up with `init`. */
export async function sweepPool(size: number, threads: number, init: SweepWorkerInit): Promise<WorkerPool> {
  while (starting) await starting.catch(() => undefined);
  const run = getPool(size, threads, init);
  starting = run;
  try {
    return await run;
  } finally {
    if (starting === run) starting = null;
  }
}

async function getPool(size: number, threads: number, init: SweepWorkerInit): Promise<WorkerPool> {
  if (shared && (shared.size !== size || shared.threads !== threads || !shared.pool.usable)) await closeShared();
  if (shared) {
    try {
      await shared.pool.reset(init);
    } catch (err) {
      await closeShared();
      throw err;
    }
    return shared.pool;
  }
  const pool = await WorkerPool.start({ size, entry: new URL('./sweep-worker.ts', import.meta.url), init, env: { TF_NUM_INTRAOP_THREADS: String(threads) }, name: 'sweep worker' });
  shared = { pool, size, threads };
  return pool;
}

/** Stop the worker processes parallel sweeps keep for reuse (they also exit with this process). */
export async function closeSweepWorkers(): Promise<void> {
  while (starting) await starting.catch(() => undefined);
  await closeShared();
}

async function closeShared(): Promise<void> {
  const s = shared;
  shared = null;
  await s?.pool.close();
}

/**
 * Run the sweep, appending one record per finished cell to outDir/records.jsonl and skipping
 * cells already there. Each model instance gets a clean cell; eps = 0 attack cells reuse it.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  validate(opts);
  const { models, attacks, epsilons, images, labels, batchSize, seed, outDir } = opts;
  const norm: Norm = opts.norm ?? 'linf';
  const backend = opts.backend ?? (backendInfo() ? describeBackend(backendInfo()!) : tf.getBackend());

  /** The budgets of an attack: its own list, else the sweep's. */
  const epsOf = (a: SweepAttack): Epsilon[] => a.epsilons ?? epsilons;
  // Attacks of one norm share one list: two lists of a norm would give the worst case cells of differing attack sets.
  const listOfNorm = new Map<Norm, string>();

  // Resolve attacks before any work, so an unknown name fails fast.
  const fns = new Map<SweepAttack, AttackFn>();
  const seeded = new Map<SweepAttack, boolean>();
  const norms = new Map<SweepAttack, Norm>();
  /** Registry attacks whose one least-norm search per batch answers every eps (not transfer runs: the surrogate would judge). */
  const shared = new Map<SweepAttack, MinimalNormAttack>();
  let resolver = opts.resolveAttack;
  for (const a of attacks) {
    let resolved: ResolvedAttack | undefined = a.fn;
    if (!resolved) {
      if (!resolver) resolver = await registryResolver();
      try {
        resolved = await resolver(a.name);
      } catch (err) {
        const msg = (err as Error).message;
        const known = msg.includes('known attacks') ? [] : await knownAttackNames();
        throw new Error(`unknown attack "${a.name}"${known.length ? `; known attacks: ${known.join(', ')}` : ''} (${msg})`);
      }
    }
    const entry: RegistryEntry | undefined = typeof resolved === 'function' ? undefined : resolved;
    const fn = typeof resolved === 'function' ? resolved : resolved?.run;
    if (typeof fn !== 'function') throw new Error(`unknown attack "${a.name}": the registry returned no function`);
    fns.set(a, fn);
    const attackNorm: Norm = a.norm ?? entry?.norm ?? opts.norm ?? 'linf';
    if (a.params?.norm !== undefined && a.params.norm !== attackNorm) {
      throw new Error(`attack "${a.name}": params.norm is ${String(a.params.norm)} but the attack's records are ${attackNorm}; use the attack registered for that norm (e.g. apgd-l2, square-l2, autoattack-l2)`);
    }
    norms.set(a, attackNorm);
    const labels = JSON.stringify(epsOf(a).map((e) => e.label));
    if (listOfNorm.has(attackNorm) && listOfNorm.get(attackNorm) !== labels) throw new Error(`runSweep: attack "${a.name}" has eps ${JSON.parse(labels).join(', ')} but another ${attackNorm} attack has ${JSON.parse(listOfNorm.get(attackNorm)!).join(', ')}; attacks of one norm share one list (the worst case is taken over them per eps)`);
    listOfNorm.set(attackNorm, labels);
    const tooBig = attackNorm === 'linf' ? epsOf(a).find((e) => e.value > 1) : undefined;
    if (tooBig) throw new Error(`runSweep: eps ${tooBig.label} = ${tooBig.value} is outside [0,1], the L-inf budget of attack "${a.name}" (only L2 and L1 budgets exceed 1)`);
    // By name, also when the caller passes the registry's own function (evaluate and run do); a custom function is run as given.
    const named = findNamedAttack(a.name);
    const search = entry?.sharedSearch ? entry.minimal : named?.sharedSearch && fn === named.run ? named.minimal : undefined;
    if (search && a.params?.surrogate === undefined && !a.params?.targeted) shared.set(a, search);
    seeded.set(a, a.seeded ?? (a.params?.seed === undefined && entry?.defaults !== undefined && 'seed' in entry.defaults));
  }

  // Transfer attacks: the surrogate ("a", or a logit ensemble "a+b") must name models of this sweep, one
  // with JPEG layers if a mode is asked for (the mode applies to every member that has them).
  const surrogateMembers = new Map<SweepAttack, { name: string; mode: string | null }[]>();
  for (const a of attacks) {
    const sur = a.params?.surrogate;
    if (sur === undefined) continue;
    const names = typeof sur === 'string' ? sur.split('+') : [];
    const known = [...new Set(models.map((m) => m.name))].join(', ');
    if (names.length === 0) throw new Error(`attack "${a.name}": surrogate "${String(sur)}" is not a model of this sweep (models: ${known})`);
    if (new Set(names).size !== names.length) throw new Error(`attack "${a.name}": surrogate "${sur}" names a model twice`);
    const asked = a.params?.surrogateMode;
    if (asked !== undefined && typeof asked !== 'string') throw new Error(`attack "${a.name}": surrogateMode must be a JPEG mode name, got ${String(asked)}`);
    const members = names.map((name) => {
      const named = models.filter((m) => m.name === name);
      if (named.length === 0) throw new Error(names.length === 1 ? `attack "${a.name}": surrogate "${sur}" is not a model of this sweep (models: ${known})` : `attack "${a.name}": surrogate "${sur}": "${name}" is not a model of this sweep (models: ${known})`);
      const current = currentJpegMode(named[0].model);
      return { name, mode: current === null ? null : ((asked as string | undefined) ?? named[0].jpegModes?.[0] ?? current) };
    });
    if (asked !== undefined && members.every((m) => m.mode === null)) throw new Error(`attack "${a.name}": surrogateMode "${asked}" given but surrogate "${sur}" has no JpegLayer`);
    surrogateMembers.set(a, members);
  }
  /** The surrogate's model indices for a target: per member name, the instance with the target's seed when the name has several. */
  const surrogateIndices = (a: SweepAttack, target: SweepModel): number[] | null => {
    const members = surrogateMembers.get(a);
    if (!members) return null;
    return members.map(({ name }) => {
      const idx = models.flatMap((m, i) => (m.name === name ? [i] : []));
      return idx.find((i) => (models[i].seed ?? 0) === (target.seed ?? 0)) ?? idx[0];
    });
  };

  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`runSweep: workers must be a positive integer, got ${opts.workers}`);
  const threads = opts.threadsPerWorker ?? Math.max(1, Math.floor(availableParallelism() / workers));
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`runSweep: threadsPerWorker must be a positive integer, got ${opts.threadsPerWorker}`);
  if (workers > 1) {
    for (const m of models) {
      if (typeof m.model === 'function') throw new Error(`runSweep: workers > 1 needs tf.LayersModel models to copy into worker processes; model "${m.name}" is a function (use workers: 1)`);
      if (m.setJpegMode) throw new Error(`runSweep: workers > 1 cannot use model "${m.name}"'s custom setJpegMode in worker processes (use workers: 1)`);
    }
    for (const a of attacks) {
      if (findNamedAttack(a.name)?.run !== fns.get(a)) throw new Error(`runSweep: workers > 1 runs attacks by name in worker processes; "${a.name}" is not one of ${namedAttackNames().join(', ')} or has a custom function (use workers: 1)`);
    }
  }

  // Refuse to mix results from different data into one records file.
  mkdirSync(outDir, { recursive: true });
  const n = images.shape[0];
  const meta = { schema: RECORD_SCHEMA, n, shape: images.shape, batchSize, norm, data: dataFingerprint(images, labels) };
  const sweepPath = join(outDir, SWEEP_FILE);
  if (existsSync(sweepPath)) {
    const old = JSON.parse(readFileSync(sweepPath, 'utf8')) as typeof meta;
    for (const k of ['n', 'batchSize', 'norm', 'data'] as const) {
      if (JSON.stringify(old[k]) !== JSON.stringify(meta[k])) {
        throw new Error(`${outDir} holds a sweep with different ${k} (${JSON.stringify(old[k])} vs ${JSON.stringify(meta[k])}); use another output directory`);
      }
    }
  } else writeJsonAtomic(sweepPath, meta);

  const recordsPath = join(outDir, RECORDS_FILE);
  const loaded = loadRecords(recordsPath, { repair: true });
  const done = new Map(dedupeRecords(loaded.records).map((r) => [cellKey(r), r]));

  // Plan: clean cell then attack x eps cells per model instance and mode, in this order.
  const nb = Math.ceil(n / batchSize);
  interface Plan { m: SweepModel; index: number; mode: string | null; series: string; base: Omit<CellRecord, 'attack' | 'attackParams' | 'threat' | 'n' | 'correct' | 'accuracy' | 'cleanCorrect' | 'successRate' | 'meanNorm' | 'maxNorm' | 'wallTimeMs' | 'seed' | 'backend' | 'correctBits' | 'finishedAt'> }
  const plans: Plan[] = [];
  models.forEach((m, index) => {
    const modes = m.jpegModes?.length ? m.jpegModes : [currentJpegMode(m.model)];
    for (const mode of modes) {
      plans.push({ m, index, mode, series: mode ? `${m.name} [${mode}]` : m.name, base: { schema: RECORD_SCHEMA, model: m.name, variant: m.variant, modelSeed: m.seed ?? 0, jpegMode: mode } });
    }
  });
  interface Cell {
    plan: Plan;
    attack: SweepAttack | null;
    attackIndex: number;
    eps: Epsilon | null;
    threat: ThreatModel;
    key: string;
    what: string;
    prev?: CellRecord;
    /** Batches to evaluate (0 when already done or eps = 0). */
    jobs: number;
    seedBase: number;
    bits: Uint8Array;
    sumNorm: number;
    maxNorm: number;
    /** Per batch, what an ensemble's stages fooled (merged in batch order, so records do not depend on which worker finished first). */
    stages: (Record<string, number> | undefined)[];
    /** Per batch, a query-based search's trace (merged in batch order into one per-image array). */
    traces: (QueryTrace | undefined)[];
    remaining: number;
    t0: number;
    /** Cells of a shared minimal-norm search (one per eps still to compute, in eps order): its batches run once for all of them. */
    group?: Cell[];
    /** Seed base of that search: the cell key with eps "*", so it is the same whichever eps are still missing. */
    groupSeedBase?: number;
  }
  const threatOf = (e: Epsilon, nrm: Norm): ThreatModel => ({ norm: nrm, eps: e.value, epsLabel: e.label, bounds: [0, 1] });
  const cells: Cell[] = [];
  const cell = (plan: Plan, attack: SweepAttack | null, attackIndex: number, eps: Epsilon | null, threat: ThreatModel): Cell => {
    const key = cellKey({ ...plan.base, attack: attack?.name ?? CLEAN_ATTACK, attackParams: attack?.params ?? {}, threat });
    const prev = done.get(key);
    const jobs = prev || (eps && eps.value === 0) ? 0 : nb;
    const what = attack ? `${plan.series} ${attack.name} ${eps!.label}` : `${plan.series} clean`;
    return { plan, attack, attackIndex, eps, threat, key, what, prev, jobs, seedBase: cellSeed(seed, key), bits: new Uint8Array(jobs ? n : 0), sumNorm: 0, maxNorm: 0, stages: [], traces: [], remaining: jobs, t0: 0 };
  };
  for (const plan of plans) {
    cells.push(cell(plan, null, -1, null, threatOf({ value: 0, label: '0' }, norm)));
    attacks.forEach((a, ai) => {
      const own = epsOf(a).map((e) => cell(plan, a, ai, e, threatOf(e, norms.get(a)!)));
      cells.push(...own);
      const group = own.filter((c) => c.jobs > 0);
      if (shared.has(a) && group.length > 0) {
        const groupSeedBase = cellSeed(seed, cellKey({ ...plan.base, attack: a.name, attackParams: a.params ?? {}, threat: threatOf({ value: 0, label: '*' }, norms.get(a)!) }));
        for (const c of group) Object.assign(c, { group, groupSeedBase });
      }
    });
  }

  const total = plans.length * (1 + attacks.reduce((k, a) => k + epsOf(a).filter((e) => e.value > 0).length, 0)) * nb;
  let progressDone = 0;
  let skipped = 0;
  let ran = 0;
  const useBar = opts.progressBar ?? Boolean(process.stderr.isTTY);
  const bar = useBar
    ? new cliProgress.SingleBar({ format: 'sweep {bar} {percentage}% | {value}/{total} batches | ETA {eta_formatted} | {cell}', stream: process.stderr, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { cell: '' });
  const tick = (cellName: string, k = 1) => {
    progressDone += k;
    bar?.update(progressDone, { cell: cellName });
    opts.onProgress?.({ done: progressDone, total, cell: cellName, skipped });
  };

  // Records are written in plan order as soon as a cell and every cell before it are complete,
  // whichever thread computed their batches, so the file reads the same for any worker count.
  const results: CellRecord[] = [];
  const cleanOf = new Map<Plan, CellRecord>();
  let next = 0;
  const finalize = (c: Cell) => {
    if (c.prev) {
      results.push(c.prev);
      if (!c.attack) cleanOf.set(c.plan, c.prev);
      skipped++;
      if (!c.eps || c.eps.value > 0) tick(`${c.what} (done)`, nb);
      return;
    }
    const common = { ...c.plan.base, attack: c.attack?.name ?? CLEAN_ATTACK, attackParams: c.attack?.params ?? {}, threat: c.threat, n, seed, backend };
    let rec: CellRecord;
    if (!c.attack) {
      const correct = c.bits.reduce((s, v) => s + v, 0);
      rec = { ...common, correct, accuracy: correct / n, cleanCorrect: correct, successRate: null, meanNorm: 0, maxNorm: 0, wallTimeMs: performance.now() - c.t0, correctBits: packBits(c.bits), finishedAt: new Date().toISOString() };
      cleanOf.set(c.plan, rec);
    } else {
      const clean = cleanOf.get(c.plan)!;
      const cleanBits = unpackBits(clean.correctBits, n);
      // eps = 0: no perturbation is allowed, the attack cannot change anything.
      const bits = c.jobs ? c.bits : cleanBits;
      if (c.jobs === 0) c.t0 = performance.now();
      // An attack outside its budget would make every number meaningless.
      if (c.maxNorm > c.eps!.value + 1e-5 + 1e-4 * c.eps!.value) throw new Error(`${c.what}: perturbation norm ${c.maxNorm} exceeds eps ${c.eps!.value} (${c.eps!.label}); the attack does not respect its threat model`);
      const correct = bits.reduce((acc, v) => acc + v, 0);
      let flipped = 0;
      for (let i = 0; i < n; i++) if (cleanBits[i] && !bits[i]) flipped++;
      rec = { ...common, correct, accuracy: correct / n, cleanCorrect: clean.correct, successRate: clean.correct ? flipped / clean.correct : null, meanNorm: c.sumNorm / n, maxNorm: c.maxNorm, wallTimeMs: performance.now() - c.t0, correctBits: packBits(bits), finishedAt: new Date().toISOString() };
      const stages = mergeStages(c.stages);
      if (stages) rec.stages = stages;
      // A transfer attack's queries went to its surrogate, not to the model judged here.
      const trace = c.jobs && surrogateIndices(c.attack, c.plan.m) === null ? mergeTraces(c.traces) : undefined;
      if (trace) rec.queries = { budget: trace.budget, fooledAt: Array.from(trace.fooledAt) };
    }
    appendRecord(recordsPath, rec);
    results.push(rec);
    ran++;
  };
  const groupWhat = (c: Cell) => `${c.plan.series} ${c.attack!.name} (one search for ${c.group!.map((g) => g.eps!.label).join(', ')})`;
  const advance = () => {
    while (next < cells.length && cells[next].remaining === 0) finalize(cells[next++]);
  };

  /** Which models draw randomness on each call (randomised layers); the others make EOT pointless. */
  const randomised = models.map((m) => isRandomised(m.model));
  /** One batch of one cell; `lo`/`sz` index the images. */
  interface Job { cell: Cell; b: number; lo: number; sz: number; options: Record<string, unknown>; noiseSeed: number }
  function* jobs(): Generator<Job> {
    for (const c of cells) {
      // A shared search's batches are yielded once, at its first cell, and fill every cell of it.
      if (c.group && c.group[0] !== c) continue;
      for (let b = 0; b < c.jobs; b++) {
        if (b === 0) for (const g of c.group ?? [c]) g.t0 = performance.now();
        const lo = b * batchSize, sz = Math.min(batchSize, n - lo);
        // A shared search validates against the largest eps it answers (it never reads it).
        const eps = c.group ? Math.max(...c.group.map((g) => g.eps!.value)) : c.eps?.value;
        const options: Record<string, unknown> = c.attack ? { ...attackOptions(c.attack.params), eps } : {};
        // EOT's k draws of a model that draws no randomness are k copies of one gradient: compute it once.
        if (c.attack && typeof options.eotSamples === 'number' && options.eotSamples > 1 && !(surrogateIndices(c.attack, c.plan.m) ?? [c.plan.index]).some((i) => randomised[i])) options.eotSamples = 1;
        const batchSeed = ((c.group ? c.groupSeedBase! : c.seedBase) + b) & 0x7fffffff;
        if (c.attack && seeded.get(c.attack)) options.seed = batchSeed;
        // Randomised models restart their draws from the batch's seed, wherever the batch runs.
        yield { cell: c, b, lo, sz, options, noiseSeed: batchSeed };
      }
    }
  }
  const onResult = (job: Job, r: BatchResult) => {
    const parts = job.cell.group ? job.cell.group.map((c, k) => [c, r.perEps?.[k]] as const) : [[job.cell, r] as const];
    for (const [c, part] of parts) {
      if (!part) throw new Error(`${c.what}: the shared search returned no result for this eps`);
      c.bits.set(part.correct, job.lo);
      c.stages[job.b] = part.stages;
      c.traces[job.b] = part.queries;
      for (const v of part.norms) { c.sumNorm += v; if (v > c.maxNorm) c.maxNorm = v; }
      c.remaining--;
      tick(c.what);
    }
    advance();
  };

  const before = models.map((m) => currentJpegMode(m.model));
  let batchesOnWorkers = 0;
  try {
    advance();
    const pending = cells.reduce((s, c) => s + c.jobs, 0);
    const logitsFns = models.map((m) => asLogitsFn(m.model));
    const setters = models.map((m) => (m.jpegModes?.length ? m.setJpegMode ?? defaultSetMode(m.model, m.name) : null));
    const modeNow = models.map(() => null as string | null);
    const runHere = (job: Job) => {
      const { plan } = job.cell;
      const setMode = setters[plan.index];
      if (setMode && plan.mode !== null && modeNow[plan.index] !== plan.mode) {
        setMode(plan.mode);
        modeNow[plan.index] = plan.mode;
      }
      const x = images.slice([job.lo, 0, 0, 0], [job.sz, -1, -1, -1]);
      const y = labels.slice([job.lo], [job.sz]);
      let r: BatchResult;
      try {
        const a = job.cell.attack;
        const fn = a ? fns.get(a)! : null;
        const si = a ? surrogateIndices(a, plan.m) : null;
        reseedRandomLayers(plan.m.model, job.noiseSeed);
        if (si !== null) for (const i of si) reseedRandomLayers(models[i].model, job.noiseSeed);
        const members = si?.map((i, k) => ({ model: models[i].model, name: models[i].name, mode: surrogateMembers.get(a!)![k].mode, set: models[i].setJpegMode }));
        const craft = (xx: tf.Tensor4D, yy: tf.Tensor1D, report: StageReport) => !members
          ? fn!(plan.m.model, xx, yy, job.options, report)
          : onSurrogates(members, (m) => fn!(m, xx, yy, job.options, report));
        const group = job.cell.group;
        r = group
          ? evalBatchShared(logitsFns[plan.index], x, y, job.cell.threat.norm, (xx, yy) => shared.get(a!)!(plan.m.model, xx, yy, job.options as AttackOptions).adversarial, group.map((g) => g.eps!.value), groupWhat(job.cell))
          : evalBatch(logitsFns[plan.index], x, y, job.cell.threat.norm, fn ? craft : null, job.cell.what);
      } finally {
        tf.dispose([x, y]);
      }
      onResult(job, r);
    };
    const queue = jobs();
    // Wait for the workers (about 2 s) rather than start a batch here meanwhile: this process hands
    // out the jobs, and one batch run here holds it for its whole length (minutes for an AutoAttack
    // batch) while the ready workers sit idle. No workers when nothing is left to do.
    let pool: WorkerPool | null = null;
    if (workers > 1 && pending > 0) {
      // Workers that cannot start (a model that does not serialise, a custom layer registered only
      // here, ...) must not stop the sweep: it goes on in this process, with the same records.
      try {
        const init = await workerInit(models, attacks);
        pool = await sweepPool(Math.min(workers, pending), threads, init);
      } catch (err) {
        console.warn(`runSweep: worker processes could not start (${(err as Error).message.split('\n')[0]}); the sweep runs in this process`);
      }
    }
    for (;;) {
      if (pool) break;
      const next = queue.next();
      if (next.done) break;
      runHere(next.value);
      await new Promise((r) => setImmediate(r));
    }
    if (pool) {
      const counted = (job: Job, r: BatchResult) => { batchesOnWorkers++; onResult(job, r); };
      await runOnWorkers(pool, images, labels, { [Symbol.iterator]: () => queue }, counted, (job) => ({
        model: job.cell.plan.index, mode: job.cell.plan.mode, attack: job.cell.attackIndex, norm: job.cell.threat.norm, what: job.cell.group ? groupWhat(job.cell) : job.cell.what, options: job.options, noiseSeed: job.noiseSeed,
        ...(job.cell.group ? { epsilons: job.cell.group.map((g) => g.eps!.value) } : {}),
        ...(job.cell.attack && surrogateMembers.has(job.cell.attack) ? { surrogate: surrogateIndices(job.cell.attack, job.cell.plan.m)!.map((model, k) => ({ model, mode: surrogateMembers.get(job.cell.attack!)![k].mode })) } : {}),
      }));
    }
    advance();
  } finally {
    bar?.stop();
    models.forEach((m, i) => {
      if (m.jpegModes?.length && before[i] !== null) (m.setJpegMode ?? defaultSetMode(m.model, m.name))(before[i]!);
    });
  }
  return { records: results, ran, skipped, batchesOnWorkers, recordsPath, droppedTail: loaded.droppedTail };
}

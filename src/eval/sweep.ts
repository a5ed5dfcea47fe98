/**
 * Robustness sweep: every model (and JPEG quantiser mode) x attack x eps, one record per cell,
 * appended as each cell finishes so an interrupted sweep resumes where it stopped.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { backendInfo, describeBackend } from '../backend.ts';
import type { Epsilon } from '../eps.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { asLogitsFn, type Classifier, type Norm, type ThreatModel } from '../types.ts';
import {
  CLEAN_ATTACK, RECORD_SCHEMA, appendRecord, cellKey, dedupeRecords, loadRecords, packBits, unpackBits,
  type CellRecord, type Variant,
} from './records.ts';

/** An attack as the registry exports it: adversarial images in [0,1], same shape as `images`. */
export type AttackFn = (model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: Record<string, unknown>) => tf.Tensor4D;

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

/** One attack configuration; `fn` overrides the registry (tests, custom attacks). */
export interface SweepAttack {
  name: string;
  params?: Record<string, unknown>;
  fn?: AttackFn;
  /** Norm of this attack's budget (default: the registry entry's, else the sweep's), e.g. 'l2' for pgd-l2. */
  norm?: Norm;
  /** Pass a derived per-batch `seed` option (default: when the registry entry's defaults have a seed). */
  seeded?: boolean;
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
}

export interface SweepResult {
  /** All records of this sweep (finished earlier or now), one per cell. */
  records: CellRecord[];
  /** Cells computed in this call. */
  ran: number;
  /** Cells skipped because they were already in the records file. */
  skipped: number;
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

/** Classes of layers this suite treats as JPEG layers. */
const JPEG_LAYER_CLASS = 'JpegLayer';

/** Current quantiser mode of a LayersModel's JPEG layers (null when it has none). */
export function currentJpegMode(model: Classifier): string | null {
  if (typeof model === 'function') return null;
  const layers = model.layers.filter((l) => l.getClassName() === JPEG_LAYER_CLASS) as unknown as { mode?: string }[];
  return layers.length ? String(layers[0].mode ?? 'soft') : null;
}

function defaultSetMode(model: Classifier, name: string): (mode: string) => void {
  return (mode: string) => {
    if (typeof model === 'function') throw new Error(`model "${name}": jpegModes given for a plain function; pass setJpegMode`);
    const layers = model.layers.filter((l) => l.getClassName() === JPEG_LAYER_CLASS) as unknown as { mode?: string }[];
    if (!layers.length) throw new Error(`model "${name}": jpegModes given but the model has no ${JPEG_LAYER_CLASS}`);
    for (const l of layers) l.mode = mode;
  };
}

/** Derive a 31-bit seed for a cell from the sweep seed and the cell key (FNV-1a). */
export function cellSeed(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** Check every argument before any work starts; throws naming what is wrong. */
function validate(opts: SweepOptions): void {
  const { models, attacks, epsilons, images, labels, batchSize } = opts;
  if (!models?.length) throw new Error('runSweep: models is empty');
  const ids = new Set<string>();
  for (const m of models) {
    if (!m.name) throw new Error('runSweep: a model has no name');
    if (m.variant !== 'baseline' && m.variant !== 'jpeg-dl') throw new Error(`runSweep: model "${m.name}" has variant "${String(m.variant)}"; expected baseline or jpeg-dl`);
    const id = `${m.name}/${m.variant}/${m.seed ?? 0}`;
    if (ids.has(id)) throw new Error(`runSweep: model "${m.name}" (${m.variant}, seed ${m.seed ?? 0}) is listed twice`);
    ids.add(id);
  }
  if (!attacks?.length) throw new Error('runSweep: attacks is empty');
  for (const a of attacks) if (!a.name || a.name === CLEAN_ATTACK) throw new Error(`runSweep: invalid attack name "${a.name}" ("${CLEAN_ATTACK}" is reserved)`);
  if (!epsilons?.length) throw new Error('runSweep: the epsilon list is empty');
  for (const e of epsilons) if (!(e.value >= 0 && e.value <= 1)) throw new Error(`runSweep: eps ${e.label} = ${e.value} is outside [0,1]`);
  if (new Set(epsilons.map((e) => e.label)).size !== epsilons.length) throw new Error('runSweep: the epsilon list has duplicates');
  if (images.rank !== 4) throw new Error(`runSweep: images must be [N,H,W,C], got shape [${images.shape}]`);
  if (labels.rank !== 1 || labels.shape[0] !== images.shape[0]) throw new Error(`runSweep: labels shape [${labels.shape}] does not match ${images.shape[0]} images`);
  if (images.shape[0] === 0) throw new Error('runSweep: no images');
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`runSweep: batchSize must be a positive integer, got ${batchSize}`);
  const [lo, hi] = tf.tidy(() => [images.min().dataSync()[0], images.max().dataSync()[0]]);
  if (lo < 0 || hi > 1) throw new Error(`runSweep: images must be in [0,1], found range [${lo}, ${hi}]`);
}

/** Per-example correctness and perturbation norms of one batch (all tensors disposed). */
function evalBatch(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, norm: Norm,
  attack: ((x: tf.Tensor4D, y: tf.Tensor1D) => tf.Tensor4D) | null, what: string,
): { correct: Uint8Array; norms: Float32Array } {
  const [c, d] = tf.tidy(() => {
    let adv = x;
    if (attack) {
      adv = attack(x, y);
      if (!adv || adv.shape.join() !== x.shape.join()) throw new Error(`${what}: attack returned shape [${adv?.shape}] for input [${x.shape}]`);
    }
    const pred = logitsFn(adv).argMax(-1);
    const correct = pred.equal(y.toInt()).toInt();
    const delta = adv.sub(x).reshape([x.shape[0], -1]);
    const norms = norm === 'linf' ? delta.abs().max(1) : delta.square().sum(1).sqrt();
    return [correct, norms];
  });
  const out = { correct: Uint8Array.from(c.dataSync()), norms: Float32Array.from(d.dataSync()) };
  tf.dispose([c, d]);
  return out;
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

  // Resolve attacks before any work, so an unknown name fails fast.
  const fns = new Map<SweepAttack, AttackFn>();
  const seeded = new Map<SweepAttack, boolean>();
  const norms = new Map<SweepAttack, Norm>();
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
    norms.set(a, a.norm ?? entry?.norm ?? opts.norm ?? 'linf');
    seeded.set(a, a.seeded ?? (a.params?.seed === undefined && entry?.defaults !== undefined && 'seed' in entry.defaults));
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

  // Plan: clean cell then attack x eps cells per model instance and mode.
  const nb = Math.ceil(n / batchSize);
  interface Plan { m: SweepModel; mode: string | null }
  const plans: Plan[] = [];
  for (const m of models) {
    const modes = m.jpegModes?.length ? m.jpegModes : [currentJpegMode(m.model)];
    for (const mode of modes) plans.push({ m, mode });
  }
  const total = plans.length * (1 + attacks.length * epsilons.filter((e) => e.value > 0).length) * nb;
  let progressDone = 0;
  let skipped = 0;
  let ran = 0;
  const useBar = opts.progressBar ?? Boolean(process.stderr.isTTY);
  const bar = useBar
    ? new cliProgress.SingleBar({ format: 'sweep {bar} {percentage}% | {value}/{total} batches | ETA {eta_formatted} | {cell}', stream: process.stderr, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { cell: '' });
  const tick = (cell: string, k = 1) => {
    progressDone += k;
    bar?.update(progressDone, { cell });
    opts.onProgress?.({ done: progressDone, total, cell, skipped });
  };

  const results: CellRecord[] = [];
  const yInt = labels;
  try {
    for (const { m, mode } of plans) {
      const modelSeed = m.seed ?? 0;
      const setMode = m.setJpegMode ?? defaultSetMode(m.model, m.name);
      const before = currentJpegMode(m.model);
      if (m.jpegModes?.length && mode !== null) setMode(mode);
      const logitsFn = asLogitsFn(m.model);
      const series = mode ? `${m.name} [${mode}]` : m.name;
      try {
        const base = { schema: RECORD_SCHEMA, model: m.name, variant: m.variant, modelSeed, jpegMode: mode };
        const zero = (e: Epsilon, nrm: Norm = norm): ThreatModel => ({ norm: nrm, eps: e.value, epsLabel: e.label, bounds: [0, 1] });

        // Clean predictions (reused by every eps = 0 cell).
        const cleanThreat = zero({ value: 0, label: '0' });
        const cleanKey = cellKey({ ...base, attack: CLEAN_ATTACK, attackParams: {}, threat: cleanThreat });
        let clean = done.get(cleanKey);
        if (clean) { skipped++; tick(`${series} clean (done)`, nb); }
        else {
          const t0 = performance.now();
          const bits = new Uint8Array(n);
          for (let b = 0; b < nb; b++) {
            const lo = b * batchSize, sz = Math.min(batchSize, n - lo);
            const x = images.slice([lo, 0, 0, 0], [sz, -1, -1, -1]);
            const y = yInt.slice([lo], [sz]);
            try { bits.set(evalBatch(logitsFn, x, y, norm, null, `${series} clean`).correct, lo); } finally { tf.dispose([x, y]); }
            tick(`${series} clean`);
            await new Promise((r) => setImmediate(r));
          }
          const correct = bits.reduce((s, v) => s + v, 0);
          clean = { ...base, attack: CLEAN_ATTACK, attackParams: {}, threat: cleanThreat, n, correct, accuracy: correct / n, cleanCorrect: correct, successRate: null, meanNorm: 0, maxNorm: 0, wallTimeMs: performance.now() - t0, seed, backend, correctBits: packBits(bits), finishedAt: new Date().toISOString() };
          appendRecord(recordsPath, clean);
          ran++;
        }
        results.push(clean);
        const cleanBits = unpackBits(clean.correctBits, n);
        const cleanCorrect = clean.correct;

        for (const a of attacks) {
          const fn = fns.get(a)!;
          const params = a.params ?? {};
          const attackNorm = norms.get(a)!;
          for (const e of epsilons) {
            const threat = zero(e, attackNorm);
            const key = cellKey({ ...base, attack: a.name, attackParams: params, threat });
            const what = `${series} ${a.name} ${e.label}`;
            const prev = done.get(key);
            if (prev) { results.push(prev); skipped++; if (e.value > 0) tick(`${what} (done)`, nb); continue; }
            const t0 = performance.now();
            let bits: Uint8Array;
            let sumNorm = 0, maxNorm = 0;
            if (e.value === 0) {
              bits = cleanBits; // no perturbation is allowed: the attack cannot change anything
            } else {
              bits = new Uint8Array(n);
              const s = cellSeed(seed, key);
              for (let b = 0; b < nb; b++) {
                const lo = b * batchSize, sz = Math.min(batchSize, n - lo);
                const x = images.slice([lo, 0, 0, 0], [sz, -1, -1, -1]);
                const y = yInt.slice([lo], [sz]);
                try {
                  const options: Record<string, unknown> = { ...params, eps: e.value };
                  if (seeded.get(a)) options.seed = (s + b) & 0x7fffffff;
                  const r = evalBatch(logitsFn, x, y, attackNorm, (xx, yy) => fn(m.model, xx, yy, options), what);
                  bits.set(r.correct, lo);
                  for (const v of r.norms) { sumNorm += v; if (v > maxNorm) maxNorm = v; }
                } finally { tf.dispose([x, y]); }
                tick(what);
                await new Promise((r) => setImmediate(r));
              }
              // An attack outside its budget would make every number meaningless.
              if (maxNorm > e.value + 1e-5 + 1e-4 * e.value) throw new Error(`${what}: perturbation norm ${maxNorm} exceeds eps ${e.value} (${e.label}); the attack does not respect its threat model`);
            }
            const correct = bits.reduce((acc, v) => acc + v, 0);
            let flipped = 0;
            for (let i = 0; i < n; i++) if (cleanBits[i] && !bits[i]) flipped++;
            const rec: CellRecord = { ...base, attack: a.name, attackParams: params, threat, n, correct, accuracy: correct / n, cleanCorrect, successRate: cleanCorrect ? flipped / cleanCorrect : null, meanNorm: sumNorm / n, maxNorm, wallTimeMs: performance.now() - t0, seed, backend, correctBits: packBits(bits), finishedAt: new Date().toISOString() };
            appendRecord(recordsPath, rec);
            results.push(rec);
            ran++;
          }
        }
      } finally {
        if (m.jpegModes?.length && before !== null) setMode(before);
      }
    }
  } finally {
    bar?.stop();
  }
  return { records: results, ran, skipped, recordsPath, droppedTail: loaded.droppedTail };
}

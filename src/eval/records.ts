/**
 * Sweep results as data: one JSON record per (model, jpeg mode, attack, eps) cell, appended to a
 * JSONL file as each cell finishes. Reports are always re-rendered from these records.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ThreatModel } from '../types.ts';

/** Bump when the record layout changes incompatibly. */
export const RECORD_SCHEMA = 1;

/**
 * baseline: undefended; jpeg-dl: trained with its JPEG layer; jpeg-defence: a baseline behind fixed real
 * JPEG (src/defences/jpeg.ts); random-jpeg: a baseline behind JPEG at a random quality per image or block
 * (src/defences/random-jpeg.ts); random-resize-pad: a baseline behind random resizing and padding
 * (src/defences/resize-pad.ts); tv-minimisation: a baseline behind random pixel dropout and total variation
 * minimisation (src/defences/tv-min.ts); feature-squeezing: a baseline behind bit-depth reduction or a median filter
 * (src/defences/squeeze.ts).
 */
export type Variant = 'baseline' | 'jpeg-dl' | 'jpeg-defence' | 'random-jpeg' | 'random-resize-pad' | 'tv-minimisation' | 'feature-squeezing';
/** Every variant a record may carry. */
export const VARIANTS: readonly Variant[] = ['baseline', 'jpeg-dl', 'jpeg-defence', 'random-jpeg', 'random-resize-pad', 'tv-minimisation', 'feature-squeezing'];

/** The attack name used for the clean (unattacked) evaluation cell. */
export const CLEAN_ATTACK = 'clean';

/** One finished sweep cell. Accuracies are fractions in [0,1]; norms are on the 0-1 pixel scale. */
export interface CellRecord {
  schema: number;
  /** Model name (shared by the separately trained seeds of one configuration). */
  model: string;
  variant: Variant;
  /** Training seed of this model instance (seeds aggregate to mean ± std). */
  modelSeed: number;
  /** Quantiser mode the JPEG layers ran in ('soft', 'hard', ...); null for models without one. */
  jpegMode: string | null;
  /** Attack name as in the registry, or 'clean'. */
  attack: string;
  /** Attack parameters other than eps/norm (steps, step size, ...). */
  attackParams: Record<string, unknown>;
  threat: ThreatModel;
  /** Number of images evaluated. */
  n: number;
  /** Images classified correctly after the attack. */
  correct: number;
  /** correct / n. */
  accuracy: number;
  /** Images classified correctly without attack. */
  cleanCorrect: number;
  /** Fraction of clean-correct images the attack made wrong; null when none was clean-correct. */
  successRate: number | null;
  /** Mean and max perturbation norm (in threat.norm) over the n images, 0-1 pixel scale. */
  meanNorm: number;
  maxNorm: number;
  /** Wall time spent on this cell (attack + evaluation), milliseconds. */
  wallTimeMs: number;
  /** Sweep seed the attack randomness was derived from. */
  seed: number;
  /** describeBackend() of the backend that ran the cell. */
  backend: string;
  /** Per-example correctness after attack, bit i = image i, packed LSB-first, base64. */
  correctBits: string;
  /** ISO time the cell finished. */
  finishedAt: string;
  /** Ensembles only (AutoAttack): images each stage fooled first, in running order, summed over batches. */
  stages?: Record<string, number>;
  /**
   * Query-based searches only (Square, SimBA, Sparse-RS, SPSA): `fooledAt[i]` is the query (from 1) whose
   * candidate first fooled image i, 0 when it was misclassified clean, -1 when no query did; `budget` is
   * the most queries the search could spend on one image. Accuracy after any smaller budget follows.
   */
  queries?: { budget: number; fooledAt: number[] };
}

/** Params that make a cell a transfer attack (crafted on another model) rather than configure the attack itself. */
export const TRANSFER_PARAMS = ['surrogate', 'surrogateMode'] as const;

/** `params` without the transfer keys: what the attack function itself receives. */
export function attackOptions(params: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...(params ?? {}) };
  for (const k of TRANSFER_PARAMS) delete out[k];
  return out;
}

/** Identity of a cell: records with equal keys are the same result (used to skip finished cells). */
export function cellKey(r: Pick<CellRecord, 'model' | 'variant' | 'modelSeed' | 'jpegMode' | 'attack' | 'attackParams' | 'threat'>): string {
  return JSON.stringify([r.model, r.variant, r.modelSeed, r.jpegMode ?? null, r.attack, canonicalParams(r.attackParams), r.threat.norm, r.threat.epsLabel]);
}

/** Parameters as a key-sorted JSON string, so {a,b} and {b,a} are the same attack. */
export function canonicalParams(params: Record<string, unknown>): string {
  const keys = Object.keys(params ?? {}).sort();
  return JSON.stringify(keys.map((k) => [k, params[k]]));
}

/** Pack booleans into a base64 bitmap (LSB-first within each byte). */
export function packBits(bits: ArrayLike<boolean | number>): string {
  const bytes = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) bytes[i >> 3] |= 1 << (i & 7);
  return Buffer.from(bytes).toString('base64');
}

/** Unpack `n` booleans from a bitmap written by packBits. */
export function unpackBits(b64: string, n: number): Uint8Array {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== Math.ceil(n / 8)) throw new Error(`correctBits: expected ${Math.ceil(n / 8)} bytes for n=${n}, got ${bytes.length}`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (i & 7)) & 1;
  return out;
}

const REQUIRED: (keyof CellRecord)[] = ['model', 'variant', 'modelSeed', 'attack', 'threat', 'n', 'correct', 'accuracy', 'correctBits'];

/** Throw unless `r` looks like a CellRecord of this schema; `where` names the file and line. */
export function validateRecord(r: unknown, where: string): CellRecord {
  if (!r || typeof r !== 'object') throw new Error(`${where}: not a JSON object`);
  const rec = r as CellRecord;
  if (rec.schema !== RECORD_SCHEMA) throw new Error(`${where}: record schema ${String(rec.schema)} is not the supported ${RECORD_SCHEMA}`);
  for (const k of REQUIRED) if (rec[k] === undefined) throw new Error(`${where}: record lacks "${k}"`);
  if (!Number.isInteger(rec.n) || rec.n <= 0 || rec.correct < 0 || rec.correct > rec.n) throw new Error(`${where}: inconsistent n=${rec.n} correct=${rec.correct}`);
  if (rec.queries !== undefined) {
    const q = rec.queries;
    if (!q || !Number.isInteger(q.budget) || q.budget < 1 || !Array.isArray(q.fooledAt) || q.fooledAt.length !== rec.n || q.fooledAt.some((v) => !Number.isInteger(v) || v < -1 || v > q.budget)) {
      throw new Error(`${where}: "queries" must hold a whole budget >= 1 and fooledAt, ${rec.n} whole numbers from -1 to the budget`);
    }
  }
  return rec;
}

/** What loadRecords found: the records and whether a torn last line was dropped. */
export interface LoadedRecords {
  records: CellRecord[];
  /** Text of a torn (unterminated or unparsable) last line that was dropped, if any. */
  droppedTail?: string;
}

/**
 * Read a JSONL records file. A torn last line (a kill during an append) is dropped and, when
 * `repair` is set, truncated away so later appends start on a clean line. A corrupt line
 * anywhere else is an error: the file was damaged by something other than a kill.
 */
export function loadRecords(path: string, { repair = false }: { repair?: boolean } = {}): LoadedRecords {
  if (!existsSync(path)) return { records: [] };
  const text = readFileSync(path, 'utf8');
  const records: CellRecord[] = [];
  let pos = 0;
  let line = 0;
  let droppedTail: string | undefined;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const raw = text.slice(pos, end);
    line++;
    const isLast = nl < 0 || nl === text.length - 1;
    if (raw.trim() === '') {
      pos = end + 1;
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
      if (nl < 0) throw new Error('unterminated line'); // an append always ends with "\n"
    } catch (err) {
      if (!isLast) throw new Error(`${path}:${line}: corrupt record (${(err as Error).message}); the file is damaged beyond a torn last line`);
      droppedTail = raw;
      if (repair) truncateSync(path, Buffer.byteLength(text.slice(0, pos), 'utf8'));
      break;
    }
    records.push(validateRecord(parsed, `${path}:${line}`));
    pos = end + 1;
  }
  return { records, droppedTail };
}

/** Append one record as a line and fsync, so a finished cell survives a kill right after. */
export function appendRecord(path: string, record: CellRecord | object): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, JSON.stringify(record) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Latest record per cell key (a rerun of a cell replaces the older one). */
export function dedupeRecords(records: CellRecord[]): CellRecord[] {
  const byKey = new Map<string, CellRecord>();
  for (const r of records) byKey.set(cellKey(r), r);
  return [...byKey.values()];
}

/**
 * The one deterministic pseudo-random generator of the data layer: mulberry32 (32-bit state,
 * period 2^32). It is small, fast, has no global state, and gives the same stream on every
 * platform, which is all shuffling, subsetting, augmentation and synthetic images need.
 * It is NOT cryptographic.
 */

/** A seeded stream of uniform numbers; every method advances the same state. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n), n >= 1. */
  int(n: number): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal sample (Box-Muller: two uniform draws give two normals, the second is kept for the next call). */
  normal(): number;
}

/** The raw mulberry32 stream of uniform floats in [0,1) from a 32-bit state (no seed hashing). */
export function mulberry32(state32: number): () => number {
  let state = state32 | 0;
  return () => {
    // mulberry32 step (Tommy Ettinger's constants), output scaled to [0,1) with 2^-32.
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Create a mulberry32 generator from any finite number seed (hashed to 32 bits first). */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new Error(`seed: ${seed} is not a finite number`);
  const next = mulberry32(hashSeed(seed));
  let spare = NaN;
  return {
    next,
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1) throw new Error(`rng.int: n must be an integer >= 1, got ${n}`);
      return Math.floor(next() * n);
    },
    uniform(lo: number, hi: number): number {
      return lo + (hi - lo) * next();
    },
    normal(): number {
      if (!Number.isNaN(spare)) {
        const z = spare;
        spare = NaN;
        return z;
      }
      // 1 - u keeps log() away from 0.
      const rad = Math.sqrt(-2 * Math.log(1 - next()));
      const ang = 2 * Math.PI * next();
      spare = rad * Math.sin(ang);
      return rad * Math.cos(ang);
    },
  };
}

/**
 * Mix a seed and any number of extra integers (e.g. epoch, batch) into one 32-bit seed, so that
 * derived streams (per epoch, per purpose) are independent-looking yet reproducible.
 */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = hashSeed(seed);
  for (const p of parts) h = hashSeed(h ^ Math.imul(hashSeed(p), 0x9e3779b1));
  return h >>> 0;
}

/** In-place Fisher-Yates shuffle driven by `rng`; returns the same array. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: Rng): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = arr[i];
    arr[i] = arr[j];
    arr[j] = tmp;
  }
  return arr;
}

/** A seeded random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}

// Fold a JS number (possibly fractional or > 2^32) into a well-mixed 32-bit integer
// (murmur3 finaliser), so nearby seeds give unrelated streams.
function hashSeed(seed: number): number {
  let h = (Math.floor(seed) ^ Math.floor(seed / 4294967296)) | 0;
  const frac = seed - Math.floor(seed);
  if (frac !== 0) h ^= Math.floor(frac * 4294967296) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 31-bit seed from a base seed and a string key (FNV-1a), e.g. one per sweep or corruption cell. */
export function keySeed(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** A seed for tfjs' randomNormal, which takes 0 to mean "unseeded" (Math.random): 0 is mapped to a fixed other value. */
export function normalSeed(seed: number): number {
  return seed === 0 ? 0x9e3779b9 : seed;
}

/**
 * Quantisation tables: the JPEG standard's example tables (ITU-T T.81 Annex K), the IJG
 * quality scaling, zigzag order and argument checks. Tables are plain 64-number arrays in
 * raster order [u][v] (u = vertical frequency, v = horizontal), on the 0-255 DCT scale.
 */

/** Annex K.1 luminance table, raster order [u][v]. */
export const STANDARD_LUMA: readonly number[] = Object.freeze([
  16, 11, 10, 16, 24, 40, 51, 61,
  12, 12, 14, 19, 26, 58, 60, 55,
  14, 13, 16, 24, 40, 57, 69, 56,
  14, 17, 22, 29, 51, 87, 80, 62,
  18, 22, 37, 56, 68, 109, 103, 77,
  24, 35, 55, 64, 81, 104, 113, 92,
  49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
]);

/** Annex K.2 chrominance table, raster order [u][v]. */
export const STANDARD_CHROMA: readonly number[] = Object.freeze([
  17, 18, 24, 47, 99, 99, 99, 99,
  18, 21, 26, 66, 99, 99, 99, 99,
  24, 26, 56, 99, 99, 99, 99, 99,
  47, 66, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99,
]);

/** One round's tables: `luma` (64) and, for colour input, `chroma` (64, shared by Cb and Cr). */
export interface JpegTables {
  luma: number[];
  chroma?: number[];
}

/** Throw unless `quality` is an integer in 1..100 (the IJG quality factor). */
export function checkQuality(quality: number, name = 'quality'): void {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new Error(`${name}: must be an integer from 1 to 100, got ${quality}`);
  }
}

/** IJG percentage scale for a quality factor: 5000/Q below 50, 200-2Q from 50 up. */
export function qualityScale(quality: number): number {
  checkQuality(quality);
  return quality < 50 ? Math.floor(5000 / quality) : 200 - 2 * quality;
}

/** Scale a base table to `quality` with the IJG rule floor((b*s+50)/100), clamped to [1,255] (baseline). */
export function scaleTable(base: readonly number[], quality: number): number[] {
  checkTable(base, 'base table');
  const s = qualityScale(quality);
  return base.map((b) => Math.min(255, Math.max(1, Math.floor((b * s + 50) / 100))));
}

/** Standard luma and chroma tables at an IJG quality factor (1..100), raster order [u][v]. */
export function standardTables(quality: number): Required<JpegTables> {
  checkQuality(quality);
  return { luma: scaleTable(STANDARD_LUMA, quality), chroma: scaleTable(STANDARD_CHROMA, quality) };
}

/** ZIGZAG[k] = raster index (8u+v) of the k-th coefficient in zigzag scan order. */
export const ZIGZAG: readonly number[] = Object.freeze(buildZigzag());

function buildZigzag(): number[] {
  const order: number[] = [];
  // Walk the anti-diagonals s = u+v; odd diagonals go down-left (u increasing), even ones up-right.
  for (let s = 0; s <= 14; s++) {
    const lo = Math.max(0, s - 7);
    const hi = Math.min(7, s);
    for (let k = lo; k <= hi; k++) {
      const u = s % 2 === 1 ? k : s - k;
      order.push(8 * u + (s - u));
    }
  }
  return order;
}

/** Raster-order table [u][v] -> zigzag-ordered vector. */
export function toZigzag(table: readonly number[]): number[] {
  checkTable(table, 'table');
  return ZIGZAG.map((r) => table[r]);
}

/** Zigzag-ordered vector -> raster-order table [u][v]. */
export function fromZigzag(vector: readonly number[]): number[] {
  checkTable(vector, 'zigzag vector');
  const out = new Array<number>(64);
  ZIGZAG.forEach((r, k) => (out[r] = vector[k]));
  return out;
}

/** Throw unless `table` holds 64 finite numbers. */
export function checkTable(table: unknown, name: string): asserts table is number[] {
  if (!Array.isArray(table) && !(table instanceof Float32Array) && !(table instanceof Float64Array)) {
    throw new Error(`${name}: expected an array of 64 numbers, got ${typeof table}`);
  }
  const t = table as ArrayLike<number>;
  if (t.length !== 64) throw new Error(`${name}: expected 64 values (an 8x8 table), got ${t.length}`);
  for (let i = 0; i < 64; i++) {
    if (typeof t[i] !== 'number' || !Number.isFinite(t[i])) {
      throw new Error(`${name}: value ${i} is not a finite number (${t[i]})`);
    }
  }
}

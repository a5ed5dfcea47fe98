/** Float32 arrays packed into one binary blob plus a JSON manifest (names, shapes, offsets). */
import { readFileSync } from 'node:fs';

/** One named array. */
export interface NamedArray {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** Where each array lives in the blob (offsets in float32 elements). */
export interface PackManifestEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

/** Concatenate arrays into one little-endian float32 buffer with its manifest. */
export function packArrays(arrays: NamedArray[]): { manifest: PackManifestEntry[]; bytes: Uint8Array } {
  const total = arrays.reduce((s, a) => s + a.values.length, 0);
  const all = new Float32Array(total);
  const manifest: PackManifestEntry[] = [];
  let off = 0;
  for (const a of arrays) {
    const n = a.shape.reduce((p, d) => p * d, 1);
    if (n !== a.values.length) throw new Error(`packArrays: ${a.name} has ${a.values.length} values but shape [${a.shape}]`);
    all.set(a.values, off);
    manifest.push({ name: a.name, shape: a.shape, offset: off, length: n });
    off += n;
  }
  return { manifest, bytes: new Uint8Array(all.buffer) };
}

/** Inverse of packArrays, reading the blob from `file` (errors name the file). */
export function unpackArrays(manifest: PackManifestEntry[], file: string): NamedArray[] {
  const buf = readFileSync(file);
  const need = manifest.reduce((s, e) => Math.max(s, (e.offset + e.length) * 4), 0);
  if (buf.byteLength < need) throw new Error(`${file}: truncated (${buf.byteLength} bytes, manifest needs ${need})`);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return manifest.map((e) => ({ name: e.name, shape: e.shape, values: all.slice(e.offset, e.offset + e.length) }));
}

/** Float32 arrays as base64 text (little-endian), for fitted patterns saved inside JSON files. */

/** Encode float32 values as base64 of their little-endian bytes. */
export function encodeFloats(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(4 * i, v[i], true);
  return Buffer.from(bytes).toString('base64');
}

/** Decode `count` float32 values from base64; `where` (a file name) and `what` (the data's name) lead the error when the length is wrong. */
export function decodeFloats(b64: string, count: number, where: string, what = 'float'): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length !== 4 * count) throw new Error(`${where}: ${bytes.length} bytes of ${what} data, expected ${4 * count}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
}

/**
 * IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain.
 * Layout: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type these datasets use),
 * a byte giving the number of dimensions, then each dimension as a big-endian uint32, then the data.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ImageDataset } from './types.ts';

/** A decoded IDX array: its shape and its bytes (row-major). */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Decode IDX bytes (already gunzipped); `file` names the source in errors. */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  if (buf.length < 4) throw new Error(`${file}: truncated IDX file (${buf.length} bytes, the header alone needs 4)`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new Error(`${file}: wrong magic number 0x${hex(buf, 0, 4)} (an IDX file starts with 0x0000)`);
  }
  if (buf[2] !== 0x08) {
    throw new Error(`${file}: IDX data type 0x${buf[2].toString(16).padStart(2, '0')} is not supported (only 0x08, unsigned byte)`);
  }
  const ndims = buf[3];
  if (ndims < 1) throw new Error(`${file}: wrong magic number 0x${hex(buf, 0, 4)} (0 dimensions)`);
  const headerLen = 4 + 4 * ndims;
  if (buf.length < headerLen) throw new Error(`${file}: truncated IDX file (${buf.length} bytes, the ${ndims}-D header needs ${headerLen})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndims; d++) {
    const v = view.getUint32(4 + 4 * d, false);
    dims.push(v);
    count *= v;
  }
  const have = buf.length - headerLen;
  if (have < count) {
    throw new Error(`${file}: truncated IDX file: shape [${dims.join(', ')}] needs ${count} data bytes, found ${have}`);
  }
  if (have > count) {
    throw new Error(`${file}: ${have - count} unexpected bytes after the data of shape [${dims.join(', ')}]`);
  }
  return { dims, data: buf.subarray(headerLen, headerLen + count) };
}

/** Encode an unsigned-byte array as IDX bytes (used by the embedded-subset script and tests). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeIdx: shape [${dims.join(', ')}] needs ${count} bytes, got ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Encode and gzip (level 9): the on-disk form of the embedded subset. */
export function encodeIdxGz(dims: number[], data: Uint8Array): Uint8Array {
  return gzipSync(encodeIdx(dims, data), { level: 9 });
}

/** Read an IDX file from disk, gunzipping it when it starts with the gzip magic 1f 8b. */
export function readIdxFile(file: string): IdxArray {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read IDX file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let buf: Uint8Array = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      buf = gunzipSync(raw);
    } catch (err) {
      throw new Error(`${file}: truncated or corrupt gzip data (${(err as Error).message})`);
    }
  }
  return parseIdx(buf, file);
}

/** Fashion-MNIST's ten class names, in label order. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** Build an ImageDataset from an images IDX file ([N,H,W] or [N,H,W,C]) and a labels IDX file ([N]). */
export function loadIdxPair(
  imagesFile: string,
  labelsFile: string,
  opts: { name: string; classNames: string[]; source?: string },
): ImageDataset {
  const img = readIdxFile(imagesFile);
  const lab = readIdxFile(labelsFile);
  if (img.dims.length !== 3 && img.dims.length !== 4) {
    throw new Error(`${imagesFile}: images must have 3 or 4 dimensions [N,H,W(,C)], found [${img.dims.join(', ')}]`);
  }
  if (lab.dims.length !== 1) throw new Error(`${labelsFile}: labels must have 1 dimension [N], found [${lab.dims.join(', ')}]`);
  const [n, height, width] = img.dims;
  const channels = img.dims.length === 4 ? img.dims[3] : 1;
  if (lab.dims[0] !== n) {
    throw new Error(`count mismatch: ${imagesFile} holds ${n} images but ${labelsFile} holds ${lab.dims[0]} labels`);
  }
  const numClasses = opts.classNames.length;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = lab.data[i];
    if (y >= numClasses) throw new Error(`${labelsFile}: label ${y} of item ${i} is outside the class range [0, ${numClasses - 1}]`);
    labels[i] = y;
  }
  return {
    name: opts.name,
    images: bytesToUnit(img.data),
    labels,
    height,
    width,
    channels,
    numClasses,
    classNames: [...opts.classNames],
    source: opts.source ?? imagesFile,
  };
}

/** Bytes 0..255 to float32 in [0,1]. */
export function bytesToUnit(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}

/** The file names an MNIST-style directory may use for one split ('train' or 't10k'). */
export function idxCandidates(split: 'train' | 't10k', kind: 'images' | 'labels'): string[] {
  const base = kind === 'images' ? `${split}-images-idx3-ubyte` : `${split}-labels-idx1-ubyte`;
  const dotted = kind === 'images' ? `${split}-images.idx3-ubyte` : `${split}-labels.idx1-ubyte`;
  return [`${base}.gz`, base, `${dotted}.gz`, dotted];
}

/** Find the images/labels files of one split in `dir`, or throw naming what was expected. */
export function findIdxSplit(dir: string, split: 'train' | 't10k'): { images: string; labels: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: directory does not exist`);
  const pick = (kind: 'images' | 'labels'): string => {
    const names = idxCandidates(split, kind);
    for (const f of names) if (existsSync(join(dir, f))) return join(dir, f);
    throw new Error(`${dir}: missing expected file ${names[0]} (or ${names.slice(1).join(', ')})`);
  };
  return { images: pick('images'), labels: pick('labels') };
}

/** Load the train (train-*) and test (t10k-*) splits of an MNIST-format directory. */
export function loadIdxDir(dir: string, opts: { name: string; classNames: string[] }): { train: ImageDataset; test: ImageDataset } {
  const tr = findIdxSplit(dir, 'train');
  const te = findIdxSplit(dir, 't10k');
  return {
    train: loadIdxPair(tr.images, tr.labels, { ...opts, source: tr.images }),
    test: loadIdxPair(te.images, te.labels, { ...opts, source: te.images }),
  };
}

function hex(buf: Uint8Array, start: number, len: number): string {
  return Array.from(buf.subarray(start, start + len), (b) => b.toString(16).padStart(2, '0')).join('');
}

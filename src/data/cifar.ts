/**
 * CIFAR-10 and CIFAR-100 binary format (`cifar-10-batches-bin`, `cifar-100-binary`).
 * Each record is the label byte(s) (CIFAR-10: one; CIFAR-100: coarse then fine) followed by
 * 3072 bytes: the 32x32 red plane, then green, then blue, each row-major.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from './types.ts';

export type CifarVariant = 'cifar10' | 'cifar100';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = 3 * PLANE;

/** Per-variant layout: the folder the official archive unpacks to, its files, label bytes. */
export const CIFAR_LAYOUT = {
  cifar10: {
    folder: 'cifar-10-batches-bin',
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
    labelBytes: 1,
    meta: { fine: 'batches.meta.txt', coarse: 'batches.meta.txt' },
    numClasses: { fine: 10, coarse: 10 },
  },
  cifar100: {
    folder: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    labelBytes: 2,
    meta: { fine: 'fine_label_names.txt', coarse: 'coarse_label_names.txt' },
    numClasses: { fine: 100, coarse: 20 },
  },
} as const;

/** Every file a complete directory of `variant` must hold. */
export function cifarExpectedFiles(variant: CifarVariant): string[] {
  const l = CIFAR_LAYOUT[variant];
  return [...new Set<string>([...l.train, ...l.test, l.meta.fine, l.meta.coarse])];
}

/**
 * Find the directory holding the files: `dir` itself, or `dir/<official folder name>`.
 * Throws naming the first missing file otherwise.
 */
export function resolveCifarDir(dir: string, variant: CifarVariant): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: directory does not exist`);
  const l = CIFAR_LAYOUT[variant];
  const inner = join(dir, l.folder);
  const base = existsSync(join(dir, l.train[0])) || !existsSync(inner) ? dir : inner;
  for (const f of cifarExpectedFiles(variant)) {
    if (!existsSync(join(base, f))) {
      throw new Error(`${base}: missing expected ${variant} file ${f} (a complete directory holds ${cifarExpectedFiles(variant).join(', ')})`);
    }
  }
  return base;
}

/** Read class names, one per line (blank lines ignored), and check their count. */
export function readLabelNames(file: string, expected: number): string[] {
  const names = readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== expected) throw new Error(`${file}: expected ${expected} class names, found ${names.length}`);
  return names;
}

/**
 * Decode one binary batch file into `images`/`labels` starting at record `offset`.
 * `which` selects CIFAR-100's coarse or fine byte.
 */
export function parseCifarBatch(
  buf: Uint8Array,
  file: string,
  variant: CifarVariant,
  which: 'fine' | 'coarse' = 'fine',
): { images: Float32Array; labels: Int32Array } {
  const l = CIFAR_LAYOUT[variant];
  const rec = l.labelBytes + PIXEL_BYTES;
  if (buf.length === 0) throw new Error(`${file}: empty ${variant} batch file`);
  if (buf.length % rec !== 0) {
    throw new Error(
      `${file}: truncated ${variant} batch: ${buf.length} bytes is not a whole number of ${rec}-byte records ` +
        `(${Math.floor(buf.length / rec)} complete, ${buf.length % rec} bytes left over)`,
    );
  }
  const n = buf.length / rec;
  const numClasses = l.numClasses[which];
  const labelPos = variant === 'cifar100' && which === 'fine' ? 1 : 0;
  const images = new Float32Array(n * PIXEL_BYTES);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * rec;
    const y = buf[off + labelPos];
    if (y >= numClasses) throw new Error(`${file}: ${which} label ${y} of record ${i} is outside the class range [0, ${numClasses - 1}]`);
    labels[i] = y;
    const px = off + l.labelBytes;
    const o = i * PIXEL_BYTES;
    // Planar RGB to interleaved NHWC.
    for (let p = 0; p < PLANE; p++) {
      images[o + 3 * p] = buf[px + p] / 255;
      images[o + 3 * p + 1] = buf[px + PLANE + p] / 255;
      images[o + 3 * p + 2] = buf[px + 2 * PLANE + p] / 255;
    }
  }
  return { images, labels };
}

/** Encode images (NHWC bytes 0..255, 32x32x3) and labels as one CIFAR binary batch (tests, tools). */
export function encodeCifarBatch(variant: CifarVariant, pixels: Uint8Array, fine: ArrayLike<number>, coarse?: ArrayLike<number>): Uint8Array {
  const l = CIFAR_LAYOUT[variant];
  const n = fine.length;
  if (pixels.length !== n * PIXEL_BYTES) throw new Error(`encodeCifarBatch: ${pixels.length} bytes for ${n} images`);
  const rec = l.labelBytes + PIXEL_BYTES;
  const out = new Uint8Array(n * rec);
  for (let i = 0; i < n; i++) {
    const off = i * rec;
    if (variant === 'cifar100') {
      out[off] = coarse ? coarse[i] : 0;
      out[off + 1] = fine[i];
    } else out[off] = fine[i];
    for (let p = 0; p < PLANE; p++) {
      for (let ch = 0; ch < 3; ch++) out[off + l.labelBytes + ch * PLANE + p] = pixels[i * PIXEL_BYTES + 3 * p + ch];
    }
  }
  return out;
}

/** Load the train and test splits of CIFAR-10 or CIFAR-100 (binary version) from `dir`. */
export function loadCifarDir(
  dir: string,
  variant: CifarVariant,
  which: 'fine' | 'coarse' = 'fine',
): { train: ImageDataset; test: ImageDataset } {
  const base = resolveCifarDir(dir, variant);
  const l = CIFAR_LAYOUT[variant];
  const classNames = readLabelNames(join(base, l.meta[which]), l.numClasses[which]);
  const load = (files: readonly string[]): ImageDataset => {
    const parts = files.map((f) => {
      const file = join(base, f);
      return parseCifarBatch(readFileSync(file), file, variant, which);
    });
    const n = parts.reduce((a, p) => a + p.labels.length, 0);
    const images = new Float32Array(n * PIXEL_BYTES);
    const labels = new Int32Array(n);
    let k = 0;
    for (const p of parts) {
      images.set(p.images, k * PIXEL_BYTES);
      labels.set(p.labels, k);
      k += p.labels.length;
    }
    const name = variant === 'cifar100' && which === 'coarse' ? 'cifar100-coarse' : variant;
    return { name, images, labels, height: SIDE, width: SIDE, channels: 3, numClasses: classNames.length, classNames, source: base };
  };
  return { train: load(l.train), test: load(l.test) };
}

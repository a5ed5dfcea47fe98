/**
 * Image folders: `root/<class>/<image>.jpg|jpeg|png` (the layout of the paper's fine-grained sets
 * once arranged by class). If `root/train` and `root/test` both exist, each holds class folders
 * and is one split; otherwise a seeded, per-class split holds out `testFraction` of each class.
 * Decoded with jpeg-js / pngjs, alpha composited over black, resized bilinearly.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { createRng, deriveSeed, shuffleInPlace } from './rng.ts';
import { parseImageSize, resizeImage } from './transform.ts';
import type { ImageDataset } from './types.ts';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

/** Decoded pixels: RGB float32 in [0,1], HWC. */
export interface DecodedImage {
  height: number;
  width: number;
  rgb: Float32Array;
}

/**
 * Decode a JPEG or PNG file (chosen by its bytes, not its name) to RGB in [0,1]; grey images are
 * replicated to RGB, alpha is composited over black (so transparent pixels are 0). Throws naming the file.
 */
export function decodeImageFile(file: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read image (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  try {
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
      // tolerantDecoding off: a truncated JPEG must fail, not decode to a half-grey picture.
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false, maxMemoryUsageInMB: 1024 });
      ({ width, height } = img);
      rgba = img.data;
    } else if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
      // pngjs expands grey, palette and 16-bit images to 8-bit RGBA.
      const img = PNG.sync.read(bytes);
      ({ width, height } = img);
      rgba = img.data;
    } else {
      throw new Error('neither a JPEG nor a PNG (unknown leading bytes)');
    }
  } catch (err) {
    throw new Error(`${file}: unreadable image: ${(err as Error).message}`);
  }
  if (!(width > 0 && height > 0) || rgba.length < width * height * 4) {
    throw new Error(`${file}: unreadable image: decoded to ${width}x${height} with ${rgba.length} bytes`);
  }
  const rgb = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const a = rgba[4 * p + 3] / 255;
    rgb[3 * p] = (rgba[4 * p] / 255) * a;
    rgb[3 * p + 1] = (rgba[4 * p + 1] / 255) * a;
    rgb[3 * p + 2] = (rgba[4 * p + 2] / 255) * a;
  }
  return { height, width, rgb };
}

/** List `root`'s class folders and their image files (sorted), throwing on anything unusable. */
export function scanImageFolder(root: string): { classNames: string[]; files: string[][] } {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`${root}: image folder does not exist`);
  const classNames = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  if (classNames.length < 2) {
    throw new Error(`${root}: expected one sub-folder per class (root/<class>/<image>.jpg|png), found ${classNames.length}`);
  }
  const files = classNames.map((c) => {
    const dir = join(root, c);
    const names = readdirSync(dir, { withFileTypes: true }).filter((d) => !d.name.startsWith('.')).map((d) => d.name).sort();
    for (const n of names) {
      if (!IMAGE_EXT.has(extname(n).toLowerCase())) throw new Error(`${join(dir, n)}: not a .jpg, .jpeg or .png image`);
    }
    if (names.length === 0) throw new Error(`${dir}: class folder holds no images`);
    return names.map((n) => join(dir, n));
  });
  return { classNames, files };
}

/** Options for `loadImageFolder`. */
export interface FolderOptions {
  /** Output size in pixels: [height, width], or one number for square. */
  size: number | [number, number];
  /** 3 (default) or 1 (BT.601 luma). */
  channels?: 1 | 3;
  /** Dataset name in the result (default 'folder'). */
  name?: string;
}

/** Decode and resize every listed image into one dataset; `files[k]` are the images of class k. */
export function loadFileLists(files: string[][], classNames: string[], opts: FolderOptions & { source: string }): ImageDataset {
  const [h, w] = parseImageSize(opts.size, 'size');
  const channels = opts.channels ?? 3;
  const n = files.reduce((a, f) => a + f.length, 0);
  const per = h * w * channels;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  let k = 0;
  files.forEach((list, cls) => {
    for (const file of list) {
      const img = decodeImageFile(file);
      const rgb = resizeImage(img.rgb, img.height, img.width, 3, h, w);
      if (channels === 3) images.set(rgb, k * per);
      else {
        for (let p = 0; p < h * w; p++) {
          images[k * per + p] = Math.min(1, 0.299 * rgb[3 * p] + 0.587 * rgb[3 * p + 1] + 0.114 * rgb[3 * p + 2]);
        }
      }
      labels[k++] = cls;
    }
  });
  return { name: opts.name ?? 'folder', images, labels, height: h, width: w, channels, numClasses: classNames.length, classNames, source: opts.source };
}

/**
 * Load an image folder as train/test splits. With `root/train` and `root/test` present they are
 * used as given (their class lists must match); otherwise each class is split with `seed`,
 * holding out round(testFraction * count) images (at least 1 per split).
 */
export function loadImageFolder(
  root: string,
  opts: FolderOptions & { seed?: number; testFraction?: number },
): { train: ImageDataset; test: ImageDataset } {
  parseImageSize(opts.size, 'size');
  if (opts.channels !== undefined && opts.channels !== 1 && opts.channels !== 3) throw new Error(`channels: must be 1 or 3, got ${opts.channels}`);
  const trainDir = join(root, 'train');
  const testDir = join(root, 'test');
  if (existsSync(trainDir) && existsSync(testDir)) {
    const tr = scanImageFolder(trainDir);
    const te = scanImageFolder(testDir);
    if (tr.classNames.join('\n') !== te.classNames.join('\n')) {
      throw new Error(`${root}: train/ and test/ hold different class folders (${tr.classNames.length} vs ${te.classNames.length})`);
    }
    return {
      train: loadFileLists(tr.files, tr.classNames, { ...opts, source: trainDir }),
      test: loadFileLists(te.files, te.classNames, { ...opts, source: testDir }),
    };
  }
  const frac = opts.testFraction ?? 0.2;
  if (!(frac > 0 && frac < 1)) throw new Error(`testFraction: must be in (0, 1), got ${frac}`);
  const seed = opts.seed ?? 0;
  const { classNames, files } = scanImageFolder(root);
  const trainFiles: string[][] = [];
  const testFiles: string[][] = [];
  files.forEach((list, cls) => {
    if (list.length < 2) throw new Error(`${join(root, classNames[cls])}: needs at least 2 images to split into train and test`);
    const shuffled = shuffleInPlace([...list], createRng(deriveSeed(seed, 0x666f6c64, cls)));
    const nTest = Math.min(list.length - 1, Math.max(1, Math.round(frac * list.length)));
    // Keep file order within each split sorted, so the split (not the order) is what the seed picks.
    testFiles.push(shuffled.slice(0, nTest).sort());
    trainFiles.push(shuffled.slice(nTest).sort());
  });
  const source = `${root} (seeded split, seed ${seed}, test fraction ${frac})`;
  return {
    train: loadFileLists(trainFiles, classNames, { ...opts, source }),
    test: loadFileLists(testFiles, classNames, { ...opts, source }),
  };
}

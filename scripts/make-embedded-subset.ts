/**
 * Rebuild data/fashion-mnist-subset/ (the embedded default dataset) from the full Fashion-MNIST
 * IDX files, e.g. Debian's package dataset-fashion-mnist:
 *
 *   apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb /tmp/fm
 *   npx tsx scripts/make-embedded-subset.ts /tmp/fm/usr/share/datasets/fashion-mnist
 *
 * (default source: /usr/share/datasets/fashion-mnist). It picks a seeded class-balanced subset
 * (600 training and 100 test images per class) and writes gzip IDX files plus MANIFEST.json
 * (seed, chosen source indices' count, SHA-256 of inputs and outputs). Same inputs => same bytes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeIdxGz, findIdxSplit, readIdxFile } from '../src/data/idx.ts';
import { subsetIndices } from '../src/data/subset.ts';
import { writeFileAtomic, writeJsonAtomic } from '../src/io/atomic.ts';

export const SUBSET_SEED = 20200523; // the Debian package's upstream snapshot date, an arbitrary fixed seed
export const TRAIN_SIZE = 6000;
export const TEST_SIZE = 1000;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Write the subset of the IDX directory `srcDir` into `outDir`; returns the manifest. */
export function makeEmbeddedSubset(srcDir: string, outDir: string): Record<string, unknown> {
  const manifest: Record<string, unknown> = {
    dataset: 'Fashion-MNIST (Zalando Research), class-balanced subset',
    seed: SUBSET_SEED,
    script: 'scripts/make-embedded-subset.ts',
    files: {} as Record<string, unknown>,
  };
  const files = manifest.files as Record<string, unknown>;
  for (const [split, size] of [['train', TRAIN_SIZE], ['t10k', TEST_SIZE]] as const) {
    const src = findIdxSplit(srcDir, split);
    const img = readIdxFile(src.images);
    const lab = readIdxFile(src.labels);
    const [n, h, w] = img.dims;
    if (lab.dims[0] !== n) throw new Error(`${src.labels}: ${lab.dims[0]} labels for ${n} images`);
    const labels = Int32Array.from(lab.data);
    const idx = subsetIndices(labels, 10, size, SUBSET_SEED + (split === 'train' ? 0 : 1));
    const per = h * w;
    const pixels = new Uint8Array(idx.length * per);
    const outLabels = new Uint8Array(idx.length);
    idx.forEach((i, k) => {
      pixels.set(img.data.subarray(i * per, (i + 1) * per), k * per);
      outLabels[k] = lab.data[i];
    });
    const out = {
      images: encodeIdxGz([idx.length, h, w], pixels),
      labels: encodeIdxGz([idx.length], outLabels),
    };
    for (const kind of ['images', 'labels'] as const) {
      const name = kind === 'images' ? `${split}-images-idx3-ubyte.gz` : `${split}-labels-idx1-ubyte.gz`;
      writeFileAtomic(join(outDir, name), out[kind]);
      const srcFile = src[kind];
      files[name] = { count: idx.length, sha256: sha256(out[kind]), from: basename(srcFile), fromSha256: sha256(readFileSync(srcFile)) };
    }
  }
  writeJsonAtomic(join(outDir, 'MANIFEST.json'), manifest);
  return manifest;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const src = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
  const out = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'fashion-mnist-subset');
  const m = makeEmbeddedSubset(src, out);
  console.log(JSON.stringify(m, null, 2));
}

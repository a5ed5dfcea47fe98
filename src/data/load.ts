/** `loadDataset(spec)`: one entry point for every dataset the suite knows, by name. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CIFAR_LAYOUT, loadCifarDir, resolveCifarDir } from './cifar.ts';
import { EMBEDDED_DIR, loadEmbeddedFashionMnist } from './embedded.ts';
import { loadImageFolder } from './folder.ts';
import { FASHION_MNIST_CLASSES, findIdxSplit, loadIdxDir } from './idx.ts';
import { subset } from './subset.ts';
import { makeSynthetic } from './synthetic.ts';
import { convertChannels, parseImageSize, resizeDataset } from './transform.ts';
import { DATASET_NAMES, validateDataset, type DatasetName, type DatasetSpec, type DatasetSplits, type ImageDataset } from './types.ts';

/** Where Debian/Ubuntu's dataset-fashion-mnist package installs the full set. */
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';

/** Default folder for downloaded datasets: $JPEGDL_DATA_HOME, else ~/.cache/jpegdl-robust/datasets. */
export function defaultDataHome(): string {
  return process.env.JPEGDL_DATA_HOME || join(homedir(), '.cache', 'jpegdl-robust', 'datasets');
}

/** One line per dataset name, for `datasets list` and error messages. */
export const DATASET_DESCRIPTIONS: Record<DatasetName, string> = {
  'fashion-mnist-embedded': 'committed Fashion-MNIST subset, 6,000 train + 1,000 test, 28x28 grey, 10 classes (default)',
  'fashion-mnist': 'full Fashion-MNIST (IDX) from --data-dir, else /usr/share/datasets/fashion-mnist',
  cifar10: 'CIFAR-10 binary version from --data-dir, else the download folder (datasets download cifar10)',
  cifar100: 'CIFAR-100 binary version (fine or coarse labels), like cifar10',
  folder: 'image folders root/<class>/<image>.jpg|png (optionally root/train, root/test), resized',
  synthetic: 'seeded synthetic colour shapes on textured backgrounds, 32x32, 6 classes, no files',
};

/** Check a spec's fields before any file is read; returns it with defaults filled in. */
export function checkSpec(spec: DatasetSpec): DatasetSpec & { name: DatasetName; seed: number } {
  const name = spec.name ?? 'fashion-mnist-embedded';
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(`dataset: unknown name "${name}" (known: ${DATASET_NAMES.join(', ')})`);
  }
  const seed = spec.seed ?? 0;
  if (!Number.isFinite(seed)) throw new Error(`seed: must be a finite number, got ${seed}`);
  for (const k of ['trainSize', 'testSize'] as const) {
    const v = spec[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${k}: must be a positive integer, got ${v}`);
  }
  if (spec.channels !== undefined && spec.channels !== 1 && spec.channels !== 3) {
    throw new Error(`channels: must be 1 or 3, got ${spec.channels}`);
  }
  if (spec.imageSize !== undefined) parseImageSize(spec.imageSize);
  if (spec.label !== undefined && spec.label !== 'fine' && spec.label !== 'coarse') {
    throw new Error(`label: must be "fine" or "coarse", got ${spec.label}`);
  }
  if (name === 'folder' && !spec.dataDir) throw new Error('dataDir: the "folder" dataset needs the root folder (--data-dir)');
  return { ...spec, name, seed };
}

/**
 * The directory `name` would be read from, and every place looked at (for `datasets info` and
 * errors). `dir` is null when none holds the files.
 */
export function locateDataset(name: DatasetName, dataDir?: string): { dir: string | null; looked: string[]; problem?: string } {
  const tryDirs = (dirs: string[], check: (d: string) => void) => {
    const problems: string[] = [];
    for (const d of dirs) {
      try {
        check(d);
        return { dir: d, looked: dirs };
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    return { dir: null, looked: dirs, problem: problems.join('; ') };
  };
  switch (name) {
    case 'fashion-mnist-embedded':
      return { dir: EMBEDDED_DIR, looked: [EMBEDDED_DIR] };
    case 'fashion-mnist':
      return tryDirs(dataDir ? [dataDir] : [FASHION_MNIST_SYSTEM_DIR], (d) => {
        findIdxSplit(d, 'train');
        findIdxSplit(d, 't10k');
      });
    case 'cifar10':
    case 'cifar100': {
      const dirs = dataDir ? [dataDir] : [join(defaultDataHome(), CIFAR_LAYOUT[name].folder)];
      const found = tryDirs(dirs, (d) => resolveCifarDir(d, name));
      return found.dir ? { ...found, dir: resolveCifarDir(found.dir, name) } : found;
    }
    case 'folder':
      return dataDir && existsSync(dataDir) ? { dir: dataDir, looked: [dataDir] } : { dir: null, looked: dataDir ? [dataDir] : [], problem: 'needs --data-dir' };
    case 'synthetic':
      return { dir: null, looked: [] };
  }
}

/**
 * Load a dataset's train and test splits as float32 NHWC in [0,1]. Then, in this order: optional
 * seeded class-balanced subsets (trainSize/testSize), channel conversion, bilinear resize.
 * Throws, naming the file, on anything missing or malformed; never returns a partial dataset.
 */
export async function loadDataset(spec: DatasetSpec = {}): Promise<DatasetSplits> {
  const s = checkSpec(spec);
  let splits: DatasetSplits;
  switch (s.name) {
    case 'fashion-mnist-embedded':
      splits = loadEmbeddedFashionMnist();
      break;
    case 'fashion-mnist': {
      const loc = locateDataset('fashion-mnist', s.dataDir);
      if (!loc.dir) {
        throw new Error(
          `fashion-mnist: no complete IDX set found (${loc.problem}). Give --data-dir, or install Debian/Ubuntu's ` +
            `dataset-fashion-mnist package, or use the embedded subset (fashion-mnist-embedded)`,
        );
      }
      splits = loadIdxDir(loc.dir, { name: 'fashion-mnist', classNames: FASHION_MNIST_CLASSES });
      break;
    }
    case 'cifar10':
    case 'cifar100': {
      const loc = locateDataset(s.name, s.dataDir);
      if (!loc.dir) throw new Error(`${s.name}: ${loc.problem}. Give --data-dir or run "jpegdl-robust datasets download ${s.name}"`);
      splits = loadCifarDir(loc.dir, s.name, s.label ?? 'fine');
      break;
    }
    case 'folder': {
      const size = parseImageSize(s.imageSize ?? 64);
      splits = loadImageFolder(s.dataDir!, { size, channels: s.channels, seed: s.seed, testFraction: s.testFraction });
      break;
    }
    case 'synthetic': {
      const common = { seed: s.seed, numClasses: s.numClasses, imageSize: s.imageSize === undefined ? 32 : parseImageSize(s.imageSize)[0] };
      if (Array.isArray(s.imageSize) && s.imageSize[0] !== s.imageSize[1]) throw new Error('imageSize: synthetic images are square');
      splits = {
        train: makeSynthetic({ ...common, size: s.trainSize ?? 2000, split: 'train' }),
        test: makeSynthetic({ ...common, size: s.testSize ?? 500, split: 'test' }),
      };
      return finish(splits, { ...s, trainSize: undefined, testSize: undefined, imageSize: undefined });
    }
  }
  return finish(splits, s);
}

function finish(splits: DatasetSplits, s: DatasetSpec & { seed: number }): DatasetSplits {
  const post = (ds: ImageDataset, size: number | undefined, salt: number): ImageDataset => {
    let out = ds;
    if (size !== undefined && size < out.labels.length) out = subset(out, size, s.seed + salt);
    else if (size !== undefined && size > out.labels.length) {
      throw new Error(`${salt === 0 ? 'trainSize' : 'testSize'}: ${size} is more than the ${out.labels.length} images of ${ds.name}`);
    }
    if (s.channels !== undefined) out = convertChannels(out, s.channels);
    if (s.imageSize !== undefined) {
      const [h, w] = parseImageSize(s.imageSize);
      out = resizeDataset(out, h, w);
    }
    validateDataset(out);
    return out;
  };
  return { train: post(splits.train, s.trainSize, 0), test: post(splits.test, s.testSize, 1) };
}

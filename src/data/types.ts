/** The in-memory image dataset every loader returns, and the spec `loadDataset` accepts. */

/**
 * A labelled image set: `images` holds N*height*width*channels float32 pixels in [0,1], NHWC,
 * `labels` holds N integers in [0, numClasses).
 */
export interface ImageDataset {
  name: string;
  images: Float32Array;
  labels: Int32Array;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  classNames: string[];
  /** Where the pixels came from (path, URL or generator with its seed), for run records. */
  source: string;
}

/** Names `loadDataset` dispatches on. */
export const DATASET_NAMES = ['fashion-mnist-embedded', 'fashion-mnist', 'cifar10', 'cifar100', 'folder', 'synthetic'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** What to load; fields a dataset does not use are ignored (e.g. `testFraction` outside 'folder'). */
export interface DatasetSpec {
  /** Default 'fashion-mnist-embedded'. */
  name?: DatasetName;
  /** Directory holding the files ('fashion-mnist', 'cifar10', 'cifar100') or the class folders ('folder'). */
  dataDir?: string;
  /** Resize every image to this size (pixels; one number = square); required-ish for 'folder' (default 64). */
  imageSize?: number | [number, number];
  /** Convert to this many channels (1 = BT.601 luma, 3 = grey replicated); default: the dataset's own. */
  channels?: 1 | 3;
  /** Seed for subsets, the 'folder' train/test split and the synthetic generator (default 0). */
  seed?: number;
  /** Keep a seeded class-balanced subset of this many training images (default: all; synthetic: 2000). */
  trainSize?: number;
  /** Keep a seeded class-balanced subset of this many test images (default: all; synthetic: 500). */
  testSize?: number;
  /** 'cifar100' only: which label byte to use (default 'fine', 100 classes; 'coarse' = 20). */
  label?: 'fine' | 'coarse';
  /** 'folder' only, when there are no train/ and test/ subfolders: fraction per class held out (default 0.2). */
  testFraction?: number;
  /** 'synthetic' only: number of classes, 2..6 (default 6). */
  numClasses?: number;
}

/** A loaded dataset pair. */
export interface DatasetSplits {
  train: ImageDataset;
  test: ImageDataset;
}

/** Throw if `ds` is internally inconsistent (sizes, label range, pixel range); `where` names it. */
export function validateDataset(ds: ImageDataset, where = ds.name): void {
  const { height: h, width: w, channels: c } = ds;
  for (const [k, v] of [['height', h], ['width', w], ['channels', c], ['numClasses', ds.numClasses]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${v}`);
  }
  const n = ds.labels.length;
  if (ds.images.length !== n * h * w * c) {
    throw new Error(`${where}: ${ds.images.length} pixel values do not match ${n} labels x ${h}x${w}x${c}`);
  }
  if (ds.classNames.length !== ds.numClasses) {
    throw new Error(`${where}: ${ds.classNames.length} class names for ${ds.numClasses} classes`);
  }
  for (let i = 0; i < n; i++) {
    const y = ds.labels[i];
    if (y < 0 || y >= ds.numClasses) throw new Error(`${where}: label ${y} of image ${i} is outside [0, ${ds.numClasses - 1}]`);
  }
  for (let i = 0; i < ds.images.length; i++) {
    const v = ds.images[i];
    if (!(v >= 0 && v <= 1)) throw new Error(`${where}: pixel ${i} is ${v}, outside [0,1]`);
  }
}

/** Per-class image counts of `ds`. */
export function classCounts(ds: Pick<ImageDataset, 'labels' | 'numClasses'>): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const y of ds.labels) counts[y]++;
  return counts;
}

/** A new dataset holding images `indices` of `ds`, in that order (pixels copied). */
export function selectImages(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  const per = ds.height * ds.width * ds.channels;
  const images = new Float32Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.labels.length) throw new Error(`${ds.name}: image index ${i} out of range`);
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i];
  }
  return { ...ds, name, images, labels, classNames: [...ds.classNames] };
}

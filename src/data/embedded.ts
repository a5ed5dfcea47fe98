/** The committed Fashion-MNIST subset (data/fashion-mnist-subset/), the suite's default dataset. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FASHION_MNIST_CLASSES, loadIdxDir } from './idx.ts';
import type { ImageDataset } from './types.ts';

/** Absolute path of the embedded subset's directory in this checkout. */
export const EMBEDDED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'fashion-mnist-subset');

/** Load the embedded subset: 6,000 train + 1,000 test 28x28x1 images, 10 balanced classes. */
export function loadEmbeddedFashionMnist(dir: string = EMBEDDED_DIR): { train: ImageDataset; test: ImageDataset } {
  const { train, test } = loadIdxDir(dir, { name: 'fashion-mnist-embedded', classNames: FASHION_MNIST_CLASSES });
  return { train, test };
}

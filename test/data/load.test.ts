import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { encodeIdx } from '../../src/data/idx.ts';
import { checkSpec, FASHION_MNIST_SYSTEM_DIR, loadDataset, locateDataset } from '../../src/data/load.ts';
import { classCounts } from '../../src/data/types.ts';
import { tempDir, writeCifar10, writeCifar100 } from './fixtures.ts';

describe('loadDataset', () => {
  const root = tempDir();

  it('defaults to the embedded Fashion-MNIST subset', async () => {
    const { train, test } = await loadDataset();
    expect(train.name).toBe('fashion-mnist-embedded');
    expect([train.labels.length, test.labels.length]).toEqual([6000, 1000]);
  });

  it('applies seeded balanced subsets, channel conversion and resizing after loading', async () => {
    const a = await loadDataset({ trainSize: 100, testSize: 20, channels: 3, imageSize: 32, seed: 9 });
    expect(classCounts(a.train)).toEqual(Array(10).fill(10));
    expect(classCounts(a.test)).toEqual(Array(10).fill(2));
    expect([a.train.height, a.train.width, a.train.channels]).toEqual([32, 32, 3]);
    // Grey replicated: R = G = B.
    for (let p = 0; p < 200; p++) expect(a.train.images[3 * p]).toBe(a.train.images[3 * p + 1]);
    const b = await loadDataset({ trainSize: 100, testSize: 20, channels: 3, imageSize: 32, seed: 9 });
    expect(b.train.images).toEqual(a.train.images);
    await expect(loadDataset({ testSize: 1001 })).rejects.toThrow(/testSize: 1001 is more than the 1000 images of fashion-mnist-embedded/);
  });

  it('reads full Fashion-MNIST from --data-dir', async () => {
    const d = join(root, 'fm');
    mkdirSync(d);
    const img = (n: number) => gzipSync(encodeIdx([n, 28, 28], new Uint8Array(n * 784).fill(51)));
    const lab = (n: number) => gzipSync(encodeIdx([n], Uint8Array.from({ length: n }, (_, i) => i % 10)));
    writeFileSync(join(d, 'train-images-idx3-ubyte.gz'), img(20));
    writeFileSync(join(d, 'train-labels-idx1-ubyte.gz'), lab(20));
    writeFileSync(join(d, 't10k-images-idx3-ubyte.gz'), img(10));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte.gz'), lab(10));
    const { train, test } = await loadDataset({ name: 'fashion-mnist', dataDir: d });
    expect(train.name).toBe('fashion-mnist');
    expect([train.labels.length, test.labels.length]).toEqual([20, 10]);
    expect(train.images[5]).toBeCloseTo(0.2, 6);
    expect(train.classNames[9]).toBe('Ankle boot');
    expect(locateDataset('fashion-mnist', d).dir).toBe(d);
  });

  it.skipIf(existsSync(FASHION_MNIST_SYSTEM_DIR))('says where it looked when full Fashion-MNIST is not installed', async () => {
    await expect(loadDataset({ name: 'fashion-mnist' })).rejects.toThrow(
      /fashion-mnist: no complete IDX set found \(\/usr\/share\/datasets\/fashion-mnist: directory does not exist\)\. Give --data-dir, or install .*dataset-fashion-mnist/,
    );
  });

  // The real full set, when present (Debian's dataset-fashion-mnist, or FASHION_MNIST_DIR).
  const full = process.env.FASHION_MNIST_DIR ?? FASHION_MNIST_SYSTEM_DIR;
  it.skipIf(!existsSync(join(full, 'train-images-idx3-ubyte.gz')))('loads the full Fashion-MNIST: 60,000 + 10,000, 6,000 / 1,000 per class', async () => {
    const { train, test } = await loadDataset({ name: 'fashion-mnist', dataDir: full });
    expect(classCounts(train)).toEqual(Array(10).fill(6000));
    expect(classCounts(test)).toEqual(Array(10).fill(1000));
  });

  it('reads CIFAR-10 and CIFAR-100 (fine and coarse) from --data-dir', async () => {
    writeCifar10(join(root, 'c10'), 3, 4);
    writeCifar100(join(root, 'c100'), 5, 3);
    const c10 = await loadDataset({ name: 'cifar10', dataDir: join(root, 'c10') });
    expect([c10.train.labels.length, c10.test.labels.length, c10.train.numClasses]).toEqual([15, 4, 10]);
    const c100 = await loadDataset({ name: 'cifar100', dataDir: join(root, 'c100'), label: 'coarse' });
    expect(c100.train.numClasses).toBe(20);
    await expect(loadDataset({ name: 'cifar10', dataDir: join(root, 'c100') })).rejects.toThrow(/missing expected cifar10 file data_batch_1\.bin.*datasets download cifar10/);
  });

  it('reads image folders and generates the synthetic set', async () => {
    const f = join(root, 'folder');
    for (const c of ['x', 'y']) {
      mkdirSync(join(f, c), { recursive: true });
      for (let i = 0; i < 3; i++) {
        const img = new PNG({ width: 5, height: 5 });
        img.data.fill(c === 'x' ? 255 : 0);
        writeFileSync(join(f, c, `${i}.png`), PNG.sync.write(img));
      }
    }
    const fo = await loadDataset({ name: 'folder', dataDir: f, imageSize: 8, testFraction: 0.34 });
    expect([fo.train.labels.length, fo.test.labels.length, fo.train.height]).toEqual([4, 2, 8]);
    const sy = await loadDataset({ name: 'synthetic', trainSize: 30, testSize: 12, seed: 2, numClasses: 3 });
    expect([sy.train.labels.length, sy.test.labels.length, sy.train.numClasses]).toEqual([30, 12, 3]);
    expect(classCounts(sy.test)).toEqual([4, 4, 4]);
  });

  it('checks the spec before reading anything', async () => {
    await expect(loadDataset({ name: 'mnist' as never })).rejects.toThrow(/dataset: unknown name "mnist" \(known: fashion-mnist-embedded, fashion-mnist, cifar10/);
    await expect(loadDataset({ trainSize: 0 })).rejects.toThrow(/trainSize: must be a positive integer, got 0/);
    await expect(loadDataset({ channels: 2 as never })).rejects.toThrow(/channels: must be 1 or 3, got 2/);
    await expect(loadDataset({ imageSize: -3 })).rejects.toThrow(/imageSize: must be an integer/);
    await expect(loadDataset({ name: 'folder' })).rejects.toThrow(/dataDir: the "folder" dataset needs the root folder/);
    await expect(loadDataset({ name: 'cifar100', label: 'medium' as never })).rejects.toThrow(/label: must be "fine" or "coarse"/);
    expect(checkSpec({}).name).toBe('fashion-mnist-embedded');
  });
});

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EMBEDDED_DIR, loadEmbeddedFashionMnist } from '../../src/data/embedded.ts';
import { FASHION_MNIST_CLASSES } from '../../src/data/idx.ts';
import { classCounts, validateDataset } from '../../src/data/types.ts';
import { makeEmbeddedSubset } from '../../scripts/make-embedded-subset.ts';
import { tempDir } from './fixtures.ts';

describe('embedded Fashion-MNIST subset', () => {
  it('loads in under 2 s: 6,000 + 1,000 balanced 28x28x1 images in [0,1]', () => {
    const t0 = performance.now();
    const { train, test } = loadEmbeddedFashionMnist();
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(2);
    expect(train.labels.length).toBe(6000);
    expect(test.labels.length).toBe(1000);
    expect(classCounts(train)).toEqual(Array(10).fill(600));
    expect(classCounts(test)).toEqual(Array(10).fill(100));
    expect([train.height, train.width, train.channels]).toEqual([28, 28, 1]);
    expect(train.classNames).toEqual(FASHION_MNIST_CLASSES);
    validateDataset(train);
    validateDataset(test);
    // Real images: Fashion-MNIST's mean pixel is about 0.286; black borders, bright garments.
    const mean = train.images.reduce((a, v) => a + v, 0) / train.images.length;
    expect(mean).toBeGreaterThan(0.25);
    expect(mean).toBeLessThan(0.32);
    expect(train.images[0]).toBe(0);
  });

  it('matches the SHA-256 sums in MANIFEST.json, and ships its licence', () => {
    const manifest = JSON.parse(readFileSync(join(EMBEDDED_DIR, 'MANIFEST.json'), 'utf8')) as { files: Record<string, { sha256: string; count: number }> };
    expect(Object.keys(manifest.files)).toHaveLength(4);
    for (const [name, f] of Object.entries(manifest.files)) {
      expect(createHash('sha256').update(readFileSync(join(EMBEDDED_DIR, name))).digest('hex')).toBe(f.sha256);
    }
    expect(readFileSync(join(EMBEDDED_DIR, 'LICENSE'), 'utf8')).toMatch(/Zalando SE[\s\S]*dataset-fashion-mnist[\s\S]*Permission is hereby granted/);
  });

  // Needs the full Fashion-MNIST (Debian's dataset-fashion-mnist, or FASHION_MNIST_DIR).
  const full = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
  it.skipIf(!existsSync(join(full, 'train-images-idx3-ubyte.gz')))('the committed script reproduces the committed files byte for byte', () => {
    const out = tempDir();
    makeEmbeddedSubset(full, out);
    for (const f of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'MANIFEST.json']) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(EMBEDDED_DIR, f)))).toBe(true);
    }
  });
});

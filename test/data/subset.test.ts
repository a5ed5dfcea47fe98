import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { balancedQuotas, subset, subsetIndices } from '../../src/data/subset.ts';
import { classCounts, type ImageDataset } from '../../src/data/types.ts';

// Image i holds the value i / n everywhere, so a pixel identifies its source image.
function tagged(labels: number[], numClasses: number): ImageDataset {
  const n = labels.length;
  const images = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i / n, i * 4, (i + 1) * 4);
  return { name: 't', images, labels: Int32Array.from(labels), height: 2, width: 2, channels: 1, numClasses, classNames: Array.from({ length: numClasses }, (_, i) => `c${i}`), source: 's' };
}

describe('class-balanced subsets', () => {
  it('quotas sum to n, never exceed a class, and unsaturated classes differ by at most one (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }), fc.integer(), fc.double({ min: 0, max: 1, noNaN: true }), (counts, seed, frac) => {
        const total = counts.reduce((a, b) => a + b, 0);
        fc.pre(total > 0);
        const n = Math.max(1, Math.round(frac * total));
        const q = balancedQuotas(counts, n, seed);
        expect(q.reduce((a, b) => a + b, 0)).toBe(n);
        q.forEach((v, i) => expect(v >= 0 && v <= counts[i]).toBe(true));
        const open = q.filter((v, i) => v < counts[i]);
        if (open.length) {
          // Water-filling: a class left with spare images got at least as many as any other class, minus one.
          expect(Math.max(...q) - Math.min(...open)).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('takes exactly n/k of each class when possible, reproducibly, in original order, with the right pixels', () => {
    const labels = Array.from({ length: 300 }, (_, i) => (i * 7) % 3);
    const ds = tagged(labels, 3);
    const a = subset(ds, 30, 5);
    expect(classCounts(a)).toEqual([10, 10, 10]);
    expect(subset(ds, 30, 5).images).toEqual(a.images);
    const idx = Array.from(subsetIndices(ds.labels, 3, 30, 5));
    expect(idx).toEqual([...idx].sort((x, y) => x - y));
    idx.forEach((i, k) => {
      expect(a.labels[k]).toBe(labels[i]);
      expect(a.images[k * 4 + 3]).toBe(Math.fround(i / 300));
    });
    expect(Array.from(subsetIndices(ds.labels, 3, 30, 6))).not.toEqual(idx);
    // A different size with the same seed is not forced to nest, but stays balanced.
    expect(classCounts(subset(ds, 31, 5)).sort()).toEqual([10, 10, 11]);
  });

  it('gives a scarce class all it has and spreads the rest', () => {
    expect(balancedQuotas([2, 50, 50], 30, 0)).toEqual([2, 14, 14]);
    expect(balancedQuotas([5, 5], 10, 0)).toEqual([5, 5]);
  });

  it('rejects impossible sizes', () => {
    const ds = tagged([0, 1, 0], 2);
    expect(() => subset(ds, 4, 0)).toThrow(/subset: asked for 4 images but the dataset holds only 3/);
    expect(() => subset(ds, 0, 0)).toThrow(/subset: size must be a positive integer, got 0/);
  });
});

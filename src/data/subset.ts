/** Seeded, class-balanced subsets. */
import { createRng, deriveSeed, permutation, shuffleInPlace } from './rng.ts';
import { classCounts, selectImages, type ImageDataset } from './types.ts';

/**
 * How many images of each class a subset of `n` takes: as equal as possible ("water-filling":
 * a class with too few images gives all it has, the rest is spread evenly over the others);
 * the remainder of n / numClasses goes to classes in a seeded order.
 */
export function balancedQuotas(counts: number[], n: number, seed: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!Number.isInteger(n) || n < 1) throw new Error(`subset: size must be a positive integer, got ${n}`);
  if (n > total) throw new Error(`subset: asked for ${n} images but the dataset holds only ${total}`);
  const k = counts.length;
  const order = counts.map((c, i) => [c, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const q = new Array<number>(k).fill(0);
  let remaining = n;
  let left = k;
  for (const [c, i] of order) {
    q[i] = Math.min(c, Math.floor(remaining / left));
    remaining -= q[i];
    left--;
  }
  const perm = permutation(k, createRng(deriveSeed(seed, 0x71756f74)));
  while (remaining > 0) {
    for (const i of perm) {
      if (remaining > 0 && q[i] < counts[i]) {
        q[i]++;
        remaining--;
      }
    }
  }
  return q;
}

/**
 * A seeded, class-balanced subset of `n` images of `ds` (see `balancedQuotas`). Which images are
 * taken depends only on (labels, n, seed); they keep their original relative order.
 */
export function subset(ds: ImageDataset, n: number, seed: number): ImageDataset {
  return selectImages(ds, subsetIndices(ds.labels, ds.numClasses, n, seed));
}

/** The sorted indices `subset` would take. */
export function subsetIndices(labels: Int32Array, numClasses: number, n: number, seed: number): Int32Array {
  const counts = classCounts({ labels, numClasses });
  const quotas = balancedQuotas(counts, n, seed);
  const byClass: number[][] = counts.map(() => []);
  labels.forEach((y, i) => byClass[y].push(i));
  const chosen: number[] = [];
  byClass.forEach((idx, cls) => {
    shuffleInPlace(idx, createRng(deriveSeed(seed, 0x73756273, cls)));
    for (let j = 0; j < quotas[cls]; j++) chosen.push(idx[j]);
  });
  return Int32Array.from(chosen.sort((a, b) => a - b));
}

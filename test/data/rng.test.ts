import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { createRng, deriveSeed, normalSeed, permutation } from '../../src/data/rng.ts';

describe('mulberry32 rng', () => {
  it('is reproducible from the seed and differs between seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(xa);
    expect(xa.every((v) => v >= 0 && v < 1)).toBe(true);
  });

  it('has uniform moments: mean 1/2, variance 1/12, and normal() has mean 0, variance 1', () => {
    const r = createRng(7);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = r.next();
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    // Standard errors: sqrt(1/12/n) ~ 6.5e-4 for the mean.
    expect(Math.abs(mean - 0.5)).toBeLessThan(4e-3);
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(2e-3);
    let z = 0;
    let z2 = 0;
    for (let i = 0; i < n; i++) {
      const v = r.normal();
      z += v;
      z2 += v * v;
    }
    expect(Math.abs(z / n)).toBeLessThan(0.01);
    expect(Math.abs(z2 / n - 1)).toBeLessThan(0.02);
  });

  it('int(n) stays in range and permutation() is a permutation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer(), (n, seed) => {
        const r = createRng(seed);
        for (let i = 0; i < 20; i++) {
          const v = r.int(n);
          expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
        }
        const p = Array.from(permutation(n, createRng(seed)));
        expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
      { numRuns: 50 },
    );
  });

  it('derives distinct seeds for distinct parts, and rejects bad seeds', () => {
    const seeds = new Set<number>();
    for (let e = 0; e < 1000; e++) seeds.add(deriveSeed(0, e));
    expect(seeds.size).toBe(1000);
    expect(deriveSeed(5, 1, 2)).toBe(deriveSeed(5, 1, 2));
    expect(deriveSeed(5, 1, 2)).not.toBe(deriveSeed(5, 2, 1));
    expect(() => createRng(NaN)).toThrow(/seed: NaN is not a finite number/);
    expect(() => createRng(1).int(0)).toThrow(/integer >= 1/);
  });

  it('normalSeed makes seed 0 a seed for tfjs randomNormal (which reads 0 as "unseeded"); deriveSeed(0, 0, ...) is 0', () => {
    expect(deriveSeed(0, 0, 0, 0)).toBe(0);
    const draw = (seed: number) => tf.tidy(() => Array.from(tf.randomNormal([64], 0, 1, 'float32', seed).dataSync()));
    expect(draw(normalSeed(0))).toEqual(draw(normalSeed(0)));
    expect(normalSeed(7)).toBe(7);
  });
});

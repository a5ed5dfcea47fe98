// Rank-7 binary ops and pads on wasm: XNNPACK would leave garbage; the wrappers give cpu's numbers.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergeBroadcastAxes, mergePadAxes } from '../../src/wasm/rank-limits.ts';
import { ensureWasm, relativeError, valuesOn } from './wasm-backend.ts';

beforeAll(ensureWasm);

/** A rank-7/8 output shape and two operand shapes broadcasting to it (random axes set to 1, random leading axes dropped). */
const broadcastArb = fc
  .record({
    out: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 7, maxLength: 8 }),
    maskA: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    maskB: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    dropB: fc.nat(3),
    seed: fc.nat(1000),
    op: fc.constantFrom('add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'squaredDifference', 'pow'),
  })
  .map(({ out, maskA, maskB, dropB, seed, op }) => ({
    a: out.map((d, i) => (maskA[i] ? 1 : d)),
    b: out.map((d, i) => (maskB[i] ? 1 : d)).slice(dropB),
    seed,
    op,
  }));

describe('binary kernels on wasm at rank > 6', () => {
  it('equal cpu for random broadcasts (add, sub, mul, div, maximum, minimum, squaredDifference, pow)', async () => {
    await fc.assert(
      fc.asyncProperty(broadcastArb, async ({ a, b, seed, op }) => {
        const run = () => tf.tidy(() => {
          const fn = (tf as unknown as Record<string, (x: tf.Tensor, y: tf.Tensor) => tf.Tensor>)[op];
          return fn(tf.randomUniform(a, 0.5, 2, 'float32', seed), tf.randomUniform(b, 0.5, 2, 'float32', seed + 1));
        });
        const [w, c] = [await valuesOn('wasm', run), await valuesOn('cpu', run)];
        expect(w.shape).toEqual(c.shape);
        expect(relativeError(w.values, c.values)).toBeLessThan(1e-5);
      }),
      { numRuns: 60, seed: 23 },
    );
  });

  it('merging keeps element order: merged shapes have the same sizes and broadcast to the same element count', () => {
    fc.assert(
      fc.property(broadcastArb, ({ a, b }) => {
        const m = mergeBroadcastAxes(a, b);
        const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
        expect(size(m.a)).toBe(size(a));
        expect(size(m.b)).toBe(size(b));
        expect(size(tf.backend_util.assertAndGetBroadcastShape(m.a, m.b))).toBe(size(tf.backend_util.assertAndGetBroadcastShape(a, b)));
        // Alternating patterns at most: full/full, a-only, b-only can each follow the others.
        expect(m.a.length).toBeLessThanOrEqual(Math.max(a.length, b.length));
      }),
      { numRuns: 200, seed: 29 },
    );
  });
});

describe('PadV2 on wasm at rank > 6', () => {
  it('equals cpu for random paddings of up to 4 axes of a rank-7 tensor', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 7, maxLength: 7 }),
        fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { minLength: 7, maxLength: 7 }),
        fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
        fc.nat(1000),
        async (shape, pads, keep, seed) => {
          // At most 4 padded axes, so the merged pad always fits 6 axes.
          let budget = 4;
          const paddings = pads.map((p, i) => (keep[i] && budget-- > 0 ? p : [0, 0])) as [number, number][];
          const run = () => tf.tidy(() => tf.pad(tf.randomUniform(shape, -1, 1, 'float32', seed), paddings, 0.5));
          const [w, c] = [await valuesOn('wasm', run), await valuesOn('cpu', run)];
          expect(w.shape).toEqual(c.shape);
          expect(relativeError(w.values, c.values)).toBeLessThan(1e-6);
          expect(mergePadAxes(shape, paddings).shape.length).toBeLessThanOrEqual(5);
        },
      ),
      { numRuns: 40, seed: 31 },
    );
  });

  it('says which pad it cannot do instead of returning garbage', async () => {
    const paddings = [[1, 0], [0, 1], [1, 0], [0, 1], [1, 0], [0, 1], [1, 1]] as [number, number][];
    await expect(valuesOn('wasm', () => tf.tidy(() => tf.pad(tf.ones([2, 2, 2, 2, 2, 2, 2]), paddings)))).rejects.toThrow(/PadV2 \(wasm\).*needs 7 axes/);
  });
});

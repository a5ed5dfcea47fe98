// gatherRows: TensorFlow's GatherV2 called directly on the native backend (no per-index JavaScript
// check) gives tf.gather's values, still rejects an out-of-range index, and leaks nothing.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeFastPathsActive, withNativeFastPaths } from '../../src/native/fast-grads.ts';
import { gatherRows } from '../../src/native/gather.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const native = tf.getBackend() === 'tensorflow';

describe('gatherRows', () => {
  it.skipIf(!native)('runs the direct kernel on the native backend (skipped elsewhere: it is tf.gather there)', () => {
    expect(nativeFastPathsActive()).toBe(true);
  });

  it('equals tf.gather for float32 and int32, rank 1 and 2, with and without the fast path', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.nat(), { minLength: 0, maxLength: 60 }), fc.boolean(), (n, cols, raw, asInt) => {
        const idx = raw.map((v) => v % n);
        const values = Array.from({ length: n * cols }, (_, i) => (asInt ? i * 3 - 7 : Math.sin(i) * 10));
        const x = cols === 1 ? tf.tensor1d(values, asInt ? 'int32' : 'float32') : tf.tensor2d(values, [n, cols], asInt ? 'int32' : 'float32');
        const at = tf.tensor1d(idx, 'int32');
        const want = tf.gather(x, at);
        for (const on of [true, false]) {
          const got = withNativeFastPaths(on, () => gatherRows(x, at));
          expect(got.shape).toEqual(want.shape);
          expect(got.dtype).toBe(want.dtype);
          expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
          got.dispose();
        }
        tf.dispose([x, at, want]);
      }),
      { numRuns: 40, seed: 5 },
    );
  });

  it('rejects float indices, and an index out of range (TensorFlow checks it on the native path)', () => {
    const x = tf.tensor1d([1, 2, 3]);
    expect(() => gatherRows(x, tf.tensor1d([0.5]) as tf.Tensor1D)).toThrow(/gatherRows: indices must be int32, got float32/);
    expect(() => gatherRows(x, tf.tensor1d([3], 'int32'))).toThrow(/3/);
    x.dispose();
  });

  it('leaks no tensor', async () => {
    const x = tf.randomNormal([1000]);
    const at = tf.tensor1d([5, 0, 999], 'int32');
    await assertNoTensorLeak(() => gatherRows(x, at), { label: 'gatherRows' });
    tf.dispose([x, at]);
  });
});

import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { blockify, deblockify, paddedSize } from '../../src/jpeg/blocks.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

describe('8x8 blocks', () => {
  it('pads right/bottom with zeros and puts pixel (r,c) of channel k at block (r/8,c/8), entry (r%8,c%8)', () => {
    const [n, h, w, c] = [2, 11, 17, 3];
    const x = tf.tensor4d(Array.from({ length: n * h * w * c }, (_, i) => i + 1), [n, h, w, c]);
    expect(paddedSize(h, w)).toEqual([16, 24]);
    const b = blockify(x);
    expect(b.shape).toEqual([2, 2, 3, 3, 8, 8]);
    const bv = b.arraySync() as number[][][][][][];
    const xv = x.arraySync() as number[][][][];
    for (const [i, r, col, k] of [[0, 0, 0, 0], [1, 10, 16, 2], [0, 9, 3, 1], [1, 7, 8, 0]]) {
      expect(bv[i][Math.floor(r / 8)][Math.floor(col / 8)][k][r % 8][col % 8]).toBe(xv[i][r][col][k]);
    }
    expect(bv[0][1][2][0][7][7]).toBe(0); // padding
    expect(bv[1][1][0][2][3][0]).toBe(0); // row 11 is padding
    const back = deblockify(b, h, w);
    expect(back.shape).toEqual([n, h, w, c]);
    expect(Array.from(back.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, b, back]);
  });

  it('rejects a crop the blocks cannot hold, and leaks nothing', async () => {
    const b = blockify(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D);
    expect(() => deblockify(b, 9, 8)).toThrow(/cannot hold a 9x8 image/);
    const x = tf.randomUniform([2, 13, 5, 1]) as tf.Tensor4D;
    await assertNoTensorLeak(() => tf.tidy(() => deblockify(blockify(x), 13, 5)), { label: 'blockify+deblockify' });
    tf.dispose([b, x]);
  });
});

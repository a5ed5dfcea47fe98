import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { dct2, dctMatrix, idct2 } from '../../src/jpeg/dct.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const block = fc.array(fc.double({ min: -128, max: 127, noNaN: true }), { minLength: 64, maxLength: 64 });

describe('8x8 orthonormal DCT-II', () => {
  it('the matrix is orthonormal (D D^T = I) in float64', () => {
    const d = dctMatrix();
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) {
        const dot = d[i].reduce((s, v, k) => s + v * d[j][k], 0);
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 12);
      }
    }
  });

  it('inverse(forward(x)) = x to 1e-5 (relative to the 0-255 scale) and energy is preserved', () => {
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 4 }), (blocks) => {
        const x = tf.tensor3d(blocks.flat(), [blocks.length, 8, 8]);
        const c = dct2(x);
        const back = idct2(c);
        const err = tf.max(tf.abs(tf.sub(back, x))).dataSync()[0];
        const ex = tf.sum(tf.square(x)).dataSync()[0];
        const ec = tf.sum(tf.square(c)).dataSync()[0];
        tf.dispose([x, c, back]);
        // float32 on values up to 128: 1e-5 of full scale.
        expect(err).toBeLessThan(255 * 1e-5);
        expect(Math.abs(ec - ex)).toBeLessThanOrEqual(1e-5 * Math.max(1, ex));
      }),
      { numRuns: 50 },
    );
  });

  it('the DC of a constant block v is 8v and all AC are zero', () => {
    fc.assert(
      fc.property(fc.double({ min: -128, max: 128, noNaN: true }), (v) => {
        const c = dct2(tf.fill([8, 8], v));
        const vals = c.dataSync();
        c.dispose();
        expect(vals[0]).toBeCloseTo(8 * v, 3);
        for (let k = 1; k < 64; k++) expect(Math.abs(vals[k])).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
      }),
      { numRuns: 30 },
    );
  });

  it('row index u is the vertical frequency: a block varying only down the rows has energy in column v = 0', () => {
    // x[r][col] = cos((2r+1) * 3 pi / 16): the u = 3 basis function along rows, constant across columns.
    const vals = Array.from({ length: 64 }, (_, k) => Math.cos(((2 * Math.floor(k / 8) + 1) * 3 * Math.PI) / 16));
    const c = dct2(tf.tensor2d(vals, [8, 8])).arraySync() as number[][];
    for (let u = 0; u < 8; u++) {
      for (let v = 0; v < 8; v++) {
        // sum_r D[3][r] x[r] = 0.5 * 4 = 2 per column; the DC of 8 equal columns is 2 * 8 / sqrt(8).
        if (u === 3 && v === 0) expect(c[u][v]).toBeCloseTo(2 * Math.sqrt(8), 4);
        else expect(Math.abs(c[u][v])).toBeLessThan(1e-5);
      }
    }
  });

  it('matches the direct cosine-sum definition on a random block', () => {
    const x = Array.from({ length: 64 }, (_, k) => ((k * 37) % 101) - 50);
    const c = dct2(tf.tensor2d(x, [8, 8])).dataSync();
    for (let u = 0; u < 8; u++) {
      for (let v = 0; v < 8; v++) {
        let s = 0;
        for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) s += x[8 * i + j] * Math.cos(((2 * i + 1) * u * Math.PI) / 16) * Math.cos(((2 * j + 1) * v * Math.PI) / 16);
        const cu = u === 0 ? Math.SQRT1_2 : 1;
        const cv = v === 0 ? Math.SQRT1_2 : 1;
        expect(c[8 * u + v]).toBeCloseTo((cu * cv * s) / 4, 3);
      }
    }
  });

  it('rejects tensors without trailing 8x8 blocks and leaks no tensors', async () => {
    expect(() => dct2(tf.zeros([4, 4]))).toThrow(/trailing 8x8 blocks, got shape \[4,4\]/);
    const x = tf.randomUniform([3, 2, 8, 8]);
    await assertNoTensorLeak(() => tf.tidy(() => idct2(dct2(x))), { label: 'dct2+idct2' });
    x.dispose();
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { rgbToYcbcr, ycbcrToRgb } from '../../src/jpeg/colour.ts';

describe('RGB <-> YCbCr (reference formulas, level-shifted 0-255 scale)', () => {
  it('round trip is the identity to 1e-5 on the [0,1] pixel scale', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 60 }), (vals) => {
        const n = Math.floor(vals.length / 3);
        const px = vals.slice(0, 3 * n);
        const x = tf.tensor4d(px, [1, 1, n, 3]);
        const back = tf.tidy(() => tf.div(tf.add(ycbcrToRgb(rgbToYcbcr(tf.sub(tf.mul(x, 255), 128) as tf.Tensor4D)), 128), 255));
        const err = tf.max(tf.abs(tf.sub(back, x))).dataSync()[0];
        tf.dispose([x, back]);
        expect(err).toBeLessThan(1e-5);
      }),
      { numRuns: 50 },
    );
  });

  it('uses the reference formulas, including the +0.5 chroma offset', () => {
    // R',G',B' = 50, -20, 10 (after the -128 level shift).
    const [y, cb, cr] = rgbToYcbcr(tf.tensor4d([50, -20, 10], [1, 1, 1, 3])).dataSync();
    const yy = 0.299 * 50 + 0.587 * -20 + 0.114 * 10;
    expect(y).toBeCloseTo(yy, 4);
    expect(cb).toBeCloseTo((10 - yy) / 1.772 + 0.5, 4);
    expect(cr).toBeCloseTo((50 - yy) / 1.402 + 0.5, 4);
    // Grey has no colour: Cb = Cr = the offset.
    const g = rgbToYcbcr(tf.tensor4d([7, 7, 7], [1, 1, 1, 3])).dataSync();
    expect(Array.from(g)).toEqual([expect.closeTo(7, 5), expect.closeTo(0.5, 5), expect.closeTo(0.5, 5)]);
  });

  it('rejects non-RGB input', () => {
    expect(() => rgbToYcbcr(tf.zeros([1, 2, 2, 1]) as tf.Tensor4D)).toThrow(/expected 3 channels, got 1/);
  });
});

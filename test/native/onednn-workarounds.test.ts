// TensorFlow 2.21's oneDNN filter-gradient kernels return wrong values for 1x1 kernels with stride > 1
// (state-dependent: after some earlier calls). src/native/onednn.ts replaces them for that geometry;
// these tests run long sequences of random convolutions in one process against a float64 reference.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const native = tf.getBackend() === 'tensorflow';

interface Geometry { n: number; h: number; w: number; ci: number; co: number; k: number; s: number; pad: 'same' | 'valid'; seed: number }

/** Output size and top/left padding as TensorFlow computes them. */
function outGeometry(g: Geometry): { oh: number; ow: number; pt: number; pl: number } {
  const oh = g.pad === 'same' ? Math.ceil(g.h / g.s) : Math.floor((g.h - g.k) / g.s) + 1;
  const ow = g.pad === 'same' ? Math.ceil(g.w / g.s) : Math.floor((g.w - g.k) / g.s) + 1;
  const pt = g.pad === 'same' ? Math.floor(Math.max((oh - 1) * g.s + g.k - g.h, 0) / 2) : 0;
  const pl = g.pad === 'same' ? Math.floor(Math.max((ow - 1) * g.s + g.k - g.w, 0) / 2) : 0;
  return { oh, ow, pt, pl };
}

/** Float64 filter gradient of sum(conv(x, W) * dy) for a dense (or, with depthwise, per-channel) conv. */
function filterGradRef(x: Float32Array, dy: Float32Array, g: Geometry, depthwise: boolean): Float64Array {
  const { oh, ow, pt, pl } = outGeometry(g);
  const co = depthwise ? g.ci * g.co : g.co; // g.co is the multiplier for depthwise
  const out = new Float64Array(g.k * g.k * g.ci * (depthwise ? g.co : g.co));
  for (let b = 0; b < g.n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let u = 0; u < g.k; u++) for (let v = 0; v < g.k; v++) {
    const y = i * g.s + u - pt;
    const xx = j * g.s + v - pl;
    if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) continue;
    for (let c = 0; c < g.ci; c++) {
      const xv = x[((b * g.h + y) * g.w + xx) * g.ci + c];
      const base = ((b * oh + i) * ow + j) * co;
      if (depthwise) {
        for (let m = 0; m < g.co; m++) out[((u * g.k + v) * g.ci + c) * g.co + m] += xv * dy[base + c * g.co + m];
      } else {
        for (let o = 0; o < g.co; o++) out[((u * g.k + v) * g.ci + c) * g.co + o] += xv * dy[base + o];
      }
    }
  }
  return out;
}

function maxRelErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let s = 1;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i] - ref[i]));
    s = Math.max(s, Math.abs(ref[i]));
  }
  return d / s;
}

function filterGrad(g: Geometry, depthwise: boolean): { got: Float32Array; ref: Float64Array } {
  let result: { got: Float32Array; ref: Float64Array } | undefined;
  tf.tidy(() => {
    const x = tf.randomNormal([g.n, g.h, g.w, g.ci], 0, 1, 'float32', g.seed + 1) as tf.Tensor4D;
    const filter = tf.randomNormal([g.k, g.k, g.ci, g.co], 0, 1, 'float32', g.seed + 2) as tf.Tensor4D;
    const conv = (f: tf.Tensor) => (depthwise ? tf.depthwiseConv2d(x, f as tf.Tensor4D, g.s, g.pad) : tf.conv2d(x, f as tf.Tensor4D, g.s, g.pad));
    const y = conv(filter);
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', g.seed + 3);
    const got = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(conv(f), dy)))(filter).dataSync() as Float32Array;
    result = { got, ref: filterGradRef(x.dataSync() as Float32Array, dy.dataSync() as Float32Array, g, depthwise) };
  });
  return result!;
}

const geometry = fc.record({
  n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 3, max: 10 }), w: fc.integer({ min: 3, max: 10 }),
  ci: fc.integer({ min: 1, max: 5 }), co: fc.integer({ min: 1, max: 5 }), k: fc.constantFrom(1, 1, 3),
  s: fc.constantFrom(1, 2, 2, 3), pad: fc.constantFrom('same' as const, 'valid' as const), seed: fc.integer({ min: 1, max: 10_000 }),
}).filter((g) => g.pad === 'same' || (g.h >= g.k && g.w >= g.k));

describe.skipIf(!native)('oneDNN filter-gradient workaround (native backend)', () => {
  it('the exact sequence that returned wrong 1x1 stride-2 filter gradients now matches the reference', () => {
    const seq: Geometry[] = [
      { n: 2, h: 6, w: 8, ci: 2, co: 3, k: 1, s: 2, pad: 'same', seed: 8 },
      { n: 3, h: 8, w: 8, ci: 4, co: 4, k: 1, s: 2, pad: 'same', seed: 8 },
      { n: 2, h: 6, w: 8, ci: 2, co: 3, k: 1, s: 2, pad: 'same', seed: 8 },
      { n: 3, h: 6, w: 8, ci: 4, co: 4, k: 1, s: 2, pad: 'valid', seed: 9 },
    ];
    for (const g of seq) {
      const { got, ref } = filterGrad(g, false);
      expect(maxRelErr(got, ref)).toBeLessThan(1e-5);
    }
  });

  it('Conv2D filter gradients match a float64 reference over long random sequences (1x1 strided included)', () => {
    fc.assert(fc.property(geometry, (g) => {
      const { got, ref } = filterGrad(g, false);
      expect(maxRelErr(got, ref)).toBeLessThan(1e-5);
    }), { numRuns: 200 });
  });

  it('depthwise filter gradients (multiplier 1-3) match the reference too', () => {
    fc.assert(fc.property(geometry.map((g) => ({ ...g, co: 1 + (g.co % 3) })), (g) => {
      const { got, ref } = filterGrad(g, true);
      expect(maxRelErr(got, ref)).toBeLessThan(1e-5);
    }), { numRuns: 150 });
  });

  it('the replacement leaks no tensors', async () => {
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const f = tf.randomNormal([1, 1, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const fd = tf.randomNormal([1, 1, 3, 2], 0, 1, 'float32', 3) as tf.Tensor4D;
    await assertNoTensorLeak(() => tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 2, 'valid')))(f), { label: '1x1 strided conv filter gradient' });
    await assertNoTensorLeak(() => tf.grad((w: tf.Tensor) => tf.sum(tf.depthwiseConv2d(x, w as tf.Tensor4D, 2, 'same')))(fd), { label: '1x1 strided depthwise filter gradient' });
    tf.dispose([x, f, fd]);
  });
});

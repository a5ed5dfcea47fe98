// The wasm convolution-gradient kernels equal the cpu backend's, over random geometry.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureWasm, relativeError, valuesOn } from './wasm-backend.ts';

const TOL = 1e-4;
type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

const padArb: fc.Arbitrary<Pad> = fc.oneof(
  fc.constant('same' as const),
  fc.constant('valid' as const),
  fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)).map(([a, b, c, d]) => [[0, 0], [a, b], [c, d], [0, 0]] as Pad),
);

interface Geometry {
  n: number; h: number; w: number; cin: number; cout: number;
  fh: number; fw: number; strides: [number, number]; dilations: [number, number]; pad: Pad; seed: number;
}

/** Random geometry; dilated only when not strided (tfjs forbids both), output at least 1x1. */
function geometryArb(dilated: boolean): fc.Arbitrary<Geometry> {
  return fc
    .record({
      n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 10 }), w: fc.integer({ min: 1, max: 10 }),
      cin: fc.integer({ min: 1, max: 4 }), cout: fc.integer({ min: 1, max: 4 }),
      fh: fc.integer({ min: 1, max: 4 }), fw: fc.integer({ min: 1, max: 4 }),
      strides: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      dilations: dilated ? fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })) : fc.constant([1, 1] as [number, number]),
      pad: padArb, seed: fc.nat(1000),
    })
    .map((g) => (g.dilations.some((d) => d > 1) ? { ...g, strides: [1, 1] as [number, number] } : g))
    .filter((g) => {
      const info = tf.backend_util.computeConv2DInfo([g.n, g.h, g.w, g.cin], [g.fh, g.fw, g.cin, g.cout], g.strides, g.dilations, g.pad, undefined, false);
      return info.outHeight > 0 && info.outWidth > 0;
    });
}

function outShape(g: Geometry, outC: number): number[] {
  const info = tf.backend_util.computeConv2DInfo([g.n, g.h, g.w, g.cin], [g.fh, g.fw, g.cin, 1], g.strides, g.dilations, g.pad, undefined, true);
  return [g.n, info.outHeight, info.outWidth, outC];
}

const rand = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);

/** A dilated filter as the equivalent undilated one: zeros between taps. Shape [(fh-1)dh+1, (fw-1)dw+1, ...]. */
function dilateFilter(f: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  const [fh, fw, c, m] = f.shape;
  const r = f.reshape([fh, 1, fw, 1, c * m]).pad([[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0]]);
  return r.reshape([fh * dh, fw * dw, c, m]).slice([0, 0, 0, 0], [(fh - 1) * dh + 1, (fw - 1) * dw + 1, c, m]) as tf.Tensor4D;
}

beforeAll(ensureWasm);

describe('Conv2DBackpropFilter and Conv2DBackpropInput on wasm', () => {
  it('equals the cpu kernel (random shapes, strides, same/valid/explicit padding, NHWC and NCHW)', async () => {
    await fc.assert(
      fc.asyncProperty(geometryArb(false), fc.boolean(), async (g, nchw) => {
        const run = () => tf.tidy(() => {
          let x: tf.Tensor = rand([g.n, g.h, g.w, g.cin], g.seed);
          let dy: tf.Tensor = rand(outShape(g, g.cout), g.seed + 1);
          if (nchw) { x = x.transpose([0, 3, 1, 2]); dy = dy.transpose([0, 3, 1, 2]); }
          const pad = nchw && Array.isArray(g.pad) ? [[0, 0], [0, 0], g.pad[1], g.pad[2]] : g.pad;
          const attrs = { strides: g.strides, pad, dataFormat: nchw ? 'NCHW' : 'NHWC', filterShape: [g.fh, g.fw, g.cin, g.cout] };
          return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
        });
        const [a, b] = [await valuesOn('wasm', run), await valuesOn('cpu', run)];
        expect(a.shape).toEqual([g.fh, g.fw, g.cin, g.cout]);
        expect(relativeError(a.values, b.values)).toBeLessThan(TOL);
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  it('Conv2DBackpropInput (replacing wasm\'s loop kernel) equals the cpu kernel, NHWC and NCHW', async () => {
    await fc.assert(
      fc.asyncProperty(geometryArb(false), fc.boolean(), async (g, nchw) => {
        const run = () => tf.tidy(() => {
          let dy: tf.Tensor = rand(outShape(g, g.cout), g.seed + 1);
          const filter = rand([g.fh, g.fw, g.cin, g.cout], g.seed + 2);
          let inputShape = [g.n, g.h, g.w, g.cin];
          if (nchw) { dy = dy.transpose([0, 3, 1, 2]); inputShape = [g.n, g.cin, g.h, g.w]; }
          const pad = nchw && Array.isArray(g.pad) ? [[0, 0], [0, 0], g.pad[1], g.pad[2]] : g.pad;
          const attrs = { strides: g.strides, pad, dataFormat: nchw ? 'NCHW' : 'NHWC', inputShape };
          return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
        });
        const [a, b] = [await valuesOn('wasm', run), await valuesOn('cpu', run)];
        expect(a.shape).toEqual(nchw ? [g.n, g.cin, g.h, g.w] : [g.n, g.h, g.w, g.cin]);
        expect(relativeError(a.values, b.values)).toBeLessThan(TOL);
      }),
      { numRuns: 100, seed: 19 },
    );
  });

  it('is the adjoint of conv2d: <dW, V> = <conv2d(x, V), dy> for any V', async () => {
    const g: Geometry = { n: 2, h: 9, w: 7, cin: 3, cout: 5, fh: 3, fw: 2, strides: [2, 1], dilations: [1, 1], pad: 'same', seed: 3 };
    const [lhs, rhs] = await valuesOn('wasm', () => tf.tidy(() => {
      const x = rand([g.n, g.h, g.w, g.cin], 1) as tf.Tensor4D;
      const v = rand([g.fh, g.fw, g.cin, g.cout], 2) as tf.Tensor4D;
      const dy = rand(outShape(g, g.cout), 4) as tf.Tensor4D;
      const dW = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: g.strides, pad: g.pad, dataFormat: 'NHWC', filterShape: v.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return tf.stack([dW.mul(v).sum(), tf.conv2d(x, v, g.strides, g.pad).mul(dy).sum()]);
    })).then((r) => [r.values[0], r.values[1]]);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * Math.abs(rhs));
  });

  it('rejects a dy whose shape does not match the convolution, naming it', async () => {
    await expect(valuesOn('wasm', () => tf.tidy(() => {
      const x = tf.zeros([1, 5, 5, 2]);
      const dy = tf.zeros([1, 4, 5, 3]);
      return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] } as unknown as tf.NamedAttrMap) as tf.Tensor;
    }))).rejects.toThrow(/dy has shape \[1,4,5,3\], expected \[1,5,5,3\]/);
  });
});

describe('depthwise convolution gradients on wasm', () => {
  // The cpu kernels read the dilation only for shapes (their loops ignore it), so the
  // reference for a dilated filter is the cpu kernel on the equivalent undilated
  // filter, zeros between taps, whose gradient at the zero taps is dropped.
  it('DepthwiseConv2dNativeBackpropFilter equals cpu (random shapes, strides, dilations, paddings, multipliers)', async () => {
    await fc.assert(
      fc.asyncProperty(geometryArb(true), async (g) => {
        const m = g.cout;
        const [dh, dw] = g.dilations;
        const inputs = () => [rand([g.n, g.h, g.w, g.cin], g.seed), rand(outShape(g, g.cin * m), g.seed + 1)];
        const wasm = await valuesOn('wasm', () => tf.tidy(() => {
          const [x, dy] = inputs();
          return tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy },
            { strides: g.strides, dilations: g.dilations, pad: g.pad, filterShape: [g.fh, g.fw, g.cin, m] } as unknown as tf.NamedAttrMap) as tf.Tensor;
        }));
        const cpu = await valuesOn('cpu', () => tf.tidy(() => {
          const [x, dy] = inputs();
          const full = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy },
            { strides: g.strides, dilations: [1, 1], pad: g.pad, filterShape: [(g.fh - 1) * dh + 1, (g.fw - 1) * dw + 1, g.cin, m] } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
          return tf.stridedSlice(full, [0, 0, 0, 0], full.shape, [dh, dw, 1, 1]);
        }));
        expect(wasm.shape).toEqual([g.fh, g.fw, g.cin, m]);
        expect(relativeError(wasm.values, cpu.values)).toBeLessThan(TOL);
      }),
      { numRuns: 100, seed: 11 },
    );
  });

  it('DepthwiseConv2dNativeBackpropInput equals cpu (random shapes, strides, dilations, paddings, multipliers)', async () => {
    await fc.assert(
      fc.asyncProperty(geometryArb(true), async (g) => {
        const m = g.cout;
        const inputs = () => [rand(outShape(g, g.cin * m), g.seed + 1), rand([g.fh, g.fw, g.cin, m], g.seed + 2) as tf.Tensor4D] as const;
        const attrs = (filterDil: [number, number]) => ({ strides: g.strides, dilations: filterDil, pad: g.pad, inputShape: [g.n, g.h, g.w, g.cin] }) as unknown as tf.NamedAttrMap;
        const wasm = await valuesOn('wasm', () => tf.tidy(() => {
          const [dy, filter] = inputs();
          return tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, attrs(g.dilations)) as tf.Tensor;
        }));
        const cpu = await valuesOn('cpu', () => tf.tidy(() => {
          const [dy, filter] = inputs();
          return tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: dilateFilter(filter, g.dilations) }, attrs([1, 1])) as tf.Tensor;
        }));
        expect(wasm.shape).toEqual([g.n, g.h, g.w, g.cin]);
        expect(relativeError(wasm.values, cpu.values)).toBeLessThan(TOL);
      }),
      { numRuns: 100, seed: 13 },
    );
  });

  it('the dilated reference is itself right: the input gradient is the adjoint of the dilated forward conv', async () => {
    const g: Geometry = { n: 2, h: 9, w: 8, cin: 3, cout: 2, fh: 3, fw: 2, strides: [1, 1], dilations: [2, 3], pad: 'same', seed: 5 };
    const r = await valuesOn('cpu', () => tf.tidy(() => {
      const x = rand([g.n, g.h, g.w, g.cin], 1) as tf.Tensor4D;
      const f = rand([g.fh, g.fw, g.cin, g.cout], 2) as tf.Tensor4D;
      const dy = rand(outShape(g, g.cin * g.cout), 3) as tf.Tensor4D;
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: dilateFilter(f, g.dilations) },
        { strides: 1, dilations: 1, pad: g.pad, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return tf.stack([dx.mul(x).sum(), tf.depthwiseConv2d(x, f, 1, g.pad, 'NHWC', g.dilations).mul(dy).sum()]);
    }));
    expect(Math.abs(r.values[0] - r.values[1])).toBeLessThan(1e-4 * Math.abs(r.values[1]));
  });
});

describe('UnsortedSegmentSum on wasm (gradient of tf.gather)', () => {
  it('equals cpu for random ids, including ids outside [0, numSegments)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.nat(1000),
        async (n, r, segs, seed) => {
          const ids = Array.from({ length: n }, (_, i) => ((i * 7 + seed) % (segs + 2)) - 1);
          const run = () => tf.tidy(() => tf.unsortedSegmentSum(rand([n, r], seed), tf.tensor1d(ids, 'int32'), segs));
          const [a, b] = [await valuesOn('wasm', run), await valuesOn('cpu', run)];
          expect(a.shape).toEqual([segs, r]);
          expect(relativeError(a.values, b.values)).toBeLessThan(TOL);
        },
      ),
      { numRuns: 30, seed: 17 },
    );
  });
});

describe('no buffer leaks inside the composed kernels', () => {
  it('each kernel call leaves exactly its output in the wasm backend, and nothing after dispose', async () => {
    await valuesOn('wasm', () => {
      const backend = tf.backend();
      const x = rand([2, 7, 7, 3], 1);
      const dyC = rand([2, 4, 4, 5], 2);
      const dyD = rand([2, 4, 4, 6], 3);
      const f = rand([3, 3, 3, 2], 4);
      const calls: Array<() => tf.Tensor> = [
        () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dyC }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 5] } as unknown as tf.NamedAttrMap) as tf.Tensor,
        () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: dyD }, { strides: 2, dilations: 1, pad: 'same', filterShape: [3, 3, 3, 2] } as unknown as tf.NamedAttrMap) as tf.Tensor,
        () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dyD, filter: f }, { strides: 2, dilations: 1, pad: 'same', inputShape: [2, 7, 7, 3] } as unknown as tf.NamedAttrMap) as tf.Tensor,
        () => tf.engine().runKernel('Conv2DBackpropInput', { dy: dyC, filter: rand([3, 3, 3, 5], 5) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 7, 7, 3] } as unknown as tf.NamedAttrMap) as tf.Tensor,
        () => tf.unsortedSegmentSum(x.reshape([2, 147]), tf.tensor1d([1, 0], 'int32'), 3),
      ];
      for (const call of calls) {
        const before = backend.numDataIds();
        const tensorsBefore = tf.memory().numTensors;
        const out = tf.tidy(call);
        expect(backend.numDataIds()).toBe(before + 1);
        out.dispose();
        expect(backend.numDataIds()).toBe(before);
        expect(tf.memory().numTensors).toBe(tensorsBefore);
      }
      tf.dispose([x, dyC, dyD, f]);
      return tf.scalar(0);
    });
  });
});

// Rotations and shifts of image batches: exact cases (identity, whole-pixel shifts, quarter turns),
// bilinear closed forms, mass conservation, the grid and the random draws.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import {
  randomTransform, samplingPlan, spatialGrid, symmetricSteps, transformImages, transformLabel,
  type SpatialFill,
} from '../../src/spatial/transform.ts';
import { randomImagesData } from '../attacks/helpers.ts';

/** Pixel (y, x, ch) of image i of a flat NHWC array. */
const px = (a: ArrayLike<number>, [h, w, c]: number[], i: number, y: number, x: number, ch: number) => a[((i * h + y) * w + x) * c + ch];

/** Reference whole-pixel shift: out(y, x) = in(y - dy, x - dx), outside filled by `fill`. */
function shiftRef(a: Float32Array, [n, h, w, c]: number[], dx: number, dy: number, fill: SpatialFill): Float32Array {
  const out = new Float32Array(a.length);
  const idx = (i: number, len: number) => {
    if (i >= 0 && i < len) return i;
    if (fill === 'zeros') return -1;
    if (fill === 'edge') return Math.min(len - 1, Math.max(0, i));
    return i < 0 ? -i - 1 : 2 * len - 1 - i;
  };
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    const [sy, sx] = [idx(y - dy, h), idx(x - dx, w)];
    out[((i * h + y) * w + x) * c + ch] = sy < 0 || sx < 0 ? 0 : px(a, [h, w, c], i, sy, sx, ch);
  }
  return out;
}

describe('transformImages', () => {
  it('leaves images unchanged under the identity, for every fill and interpolation', () => {
    const shape: [number, number, number, number] = [2, 7, 6, 3];
    const data = randomImagesData(1, 2 * 7 * 6 * 3);
    const x = tf.tensor4d(data, shape);
    for (const fill of ['zeros', 'edge', 'reflect'] as const) {
      for (const interpolation of ['bilinear', 'nearest'] as const) {
        const y = transformImages(x, { angle: 0, dx: 0, dy: 0 }, { fill, interpolation });
        expect(Array.from(y.dataSync())).toEqual(Array.from(data));
        y.dispose();
      }
    }
    x.dispose();
  });

  it('shifts by whole pixels exactly (content moves right by dx, down by dy), for each fill', () => {
    fc.assert(
      fc.property(fc.integer({ min: -4, max: 4 }), fc.integer({ min: -4, max: 4 }), fc.constantFrom<SpatialFill>('zeros', 'edge', 'reflect'), fc.constantFrom('bilinear' as const, 'nearest' as const), (dx, dy, fill, interpolation) => {
        const shape = [2, 5, 6, 2];
        const data = randomImagesData(dx * 31 + dy + 100, 2 * 5 * 6 * 2);
        const x = tf.tensor4d(data, shape as [number, number, number, number]);
        const y = transformImages(x, { angle: 0, dx, dy }, { fill, interpolation });
        const got = y.dataSync();
        tf.dispose([x, y]);
        const want = shiftRef(data, shape, dx, dy, fill);
        for (let k = 0; k < want.length; k++) expect(got[k]).toBeCloseTo(want[k], 6);
      }),
      { numRuns: 40 },
    );
  });

  it('turns a quarter counter-clockwise exactly: out(y, x) = in(x, w-1-y); four quarter turns and a full turn are the identity', () => {
    const [h, w, c] = [6, 6, 2];
    const data = randomImagesData(7, h * w * c);
    const x = tf.tensor4d(data, [1, h, w, c]);
    const q = transformImages(x, { angle: 90, dx: 0, dy: 0 });
    const got = q.dataSync();
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) {
      expect(px(got, [h, w, c], 0, y, xx, ch)).toBeCloseTo(px(data, [h, w, c], 0, xx, w - 1 - y, ch), 6);
    }
    let cur = x.clone();
    for (let k = 0; k < 4; k++) {
      const next = transformImages(cur, { angle: 90, dx: 0, dy: 0 });
      cur.dispose();
      cur = next;
    }
    const full = transformImages(x, { angle: 360, dx: 0, dy: 0 });
    const back = cur.dataSync();
    const fullData = full.dataSync();
    for (let k = 0; k < data.length; k++) {
      expect(back[k]).toBeCloseTo(data[k], 6);
      expect(fullData[k]).toBeCloseTo(data[k], 6);
    }
    tf.dispose([x, q, cur, full]);
  });

  it('a half-pixel shift is the mean of horizontal neighbours (bilinear), and nearest rounds to a whole pixel', () => {
    const [h, w] = [3, 5];
    const data = randomImagesData(3, h * w);
    const x = tf.tensor4d(data, [1, h, w, 1]);
    const half = transformImages(x, { angle: 0, dx: 0.5, dy: 0 }, { fill: 'edge' });
    const got = half.dataSync();
    for (let y = 0; y < h; y++) {
      for (let xx = 1; xx < w; xx++) expect(got[y * w + xx]).toBeCloseTo((data[y * w + xx - 1] + data[y * w + xx]) / 2, 6);
      expect(got[y * w]).toBeCloseTo(data[y * w], 6); // the edge pixel is its own neighbour
    }
    // 0.6 rounds to a shift of one whole pixel.
    const near = transformImages(x, { angle: 0, dx: 0.6, dy: 0 }, { interpolation: 'nearest' });
    const want = shiftRef(data, [1, h, w, 1], 1, 0, 'zeros');
    expect(Array.from(near.dataSync())).toEqual(Array.from(want));
    tf.dispose([x, half, near]);
  });

  it('bilinear weights sum to one inside the image: a constant image stays constant under any transform with edge fill; zero fill never brightens', () => {
    fc.assert(
      fc.property(fc.double({ min: -180, max: 180, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (angle, dx, dy, v) => {
        const x = tf.fill([1, 9, 8, 1], v) as tf.Tensor4D;
        const e = transformImages(x, { angle, dx, dy }, { fill: 'edge' });
        const z = transformImages(x, { angle, dx, dy }, { fill: 'zeros' });
        const [ed, zd] = [e.dataSync(), z.dataSync()];
        tf.dispose([x, e, z]);
        for (const p of ed) expect(p).toBeCloseTo(v, 5);
        for (const p of zd) expect(p).toBeLessThanOrEqual(v + 1e-6);
        for (const p of zd) expect(p).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 60 },
    );
  });

  it('a sub-pixel shift of content away from the border keeps its total brightness (bilinear splats mass, zero fill loses none)', () => {
    fc.assert(
      fc.property(fc.double({ min: -2, max: 2, noNaN: true }), fc.double({ min: -2, max: 2, noNaN: true }), (dx, dy) => {
        const [h, w] = [12, 12];
        const data = new Float32Array(h * w);
        const r = randomImagesData(5, 36);
        for (let y = 0; y < 6; y++) for (let xx = 0; xx < 6; xx++) data[(y + 3) * w + xx + 3] = r[y * 6 + xx];
        const x = tf.tensor4d(data, [1, h, w, 1]);
        const y = transformImages(x, { angle: 0, dx, dy });
        const sum = Array.from(y.dataSync() as Float32Array).reduce((a, v) => a + v, 0);
        tf.dispose([x, y]);
        expect(sum).toBeCloseTo(data.reduce((a, v) => a + v, 0), 3);
      }),
      { numRuns: 40 },
    );
  });

  it('one transform per image equals transforming each image alone', () => {
    const shape: [number, number, number, number] = [3, 8, 8, 3];
    const x = tf.tensor4d(randomImagesData(11, 3 * 8 * 8 * 3), shape);
    const ts = [{ angle: 12.5, dx: 1.25, dy: -0.5 }, { angle: -30, dx: 0, dy: 3 }, { angle: 0, dx: 0, dy: 0 }];
    const all = transformImages(x, ts);
    const got = all.dataSync();
    const per = 8 * 8 * 3;
    ts.forEach((t, i) => {
      const xi = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
      const yi = transformImages(xi, t);
      const want = yi.dataSync();
      for (let k = 0; k < per; k++) expect(got[i * per + k]).toBeCloseTo(want[k], 6);
      tf.dispose([xi, yi]);
    });
    tf.dispose([x, all]);
  });

  it('names what is wrong with its arguments', () => {
    const x = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    const t = { angle: 0, dx: 0, dy: 0 };
    expect(() => transformImages(x, [t, t, t])).toThrow(/3 transforms for 2 images/);
    expect(() => transformImages(x, { angle: NaN, dx: 0, dy: 0 })).toThrow(/transforms\[0\]\.angle: must be a finite number/);
    expect(() => transformImages(x, { angle: 0, dx: 0 } as never)).toThrow(/\.dy: must be a finite number/);
    expect(() => transformImages(x, t, { fill: 'wrap' as never })).toThrow(/fill must be one of zeros, edge, reflect/);
    expect(() => transformImages(x, t, { interpolation: 'cubic' as never })).toThrow(/interpolation must be one of bilinear, nearest/);
    x.dispose();
  });

  it('leaks no tensors over repeated calls', async () => {
    const x = tf.tensor4d(randomImagesData(2, 2 * 8 * 8 * 1), [2, 8, 8, 1]);
    let k = 0;
    await assertNoTensorLeak(() => transformImages(x, [{ angle: ++k, dx: 0.5, dy: 0 }, { angle: -k, dx: 0, dy: 1 }]), { label: 'transformImages' });
    x.dispose();
  });
});

describe('samplingPlan', () => {
  it('points zero-weight corners and uncovered pixels at the black pixel (index h*w) under zero fill', () => {
    const { index, weight } = samplingPlan(4, 4, { angle: 0, dx: 2, dy: 0 });
    // Output column 0 and 1 come from columns -2 and -1: black.
    for (const y of [0, 1, 2, 3]) for (const x of [0, 1]) {
      const p = y * 4 + x;
      for (let k = 0; k < 4; k++) expect(index[4 * p + k] === 16 || weight[4 * p + k] === 0).toBe(true);
    }
    // Whole-pixel shift: one corner of weight 1 per covered pixel.
    const p = 4 + 3;
    expect(Array.from(weight.subarray(4 * p, 4 * p + 4))).toEqual([1, 0, 0, 0]);
    expect(index[4 * p]).toBe(4 + 1);
  });
});

describe('spatialGrid', () => {
  it('is Engstrom et al.\'s CIFAR grid by default: 31 rotations in ±30°, 5 x 5 shifts in ±3 px, identity first, no repeats', () => {
    const g = spatialGrid();
    expect(g.length).toBe(775);
    expect(g[0]).toEqual({ angle: 0, dx: 0, dy: 0 });
    expect(new Set(g.map(transformLabel)).size).toBe(775);
    expect(new Set(g.map((t) => t.angle))).toEqual(new Set(symmetricSteps(30, 31)));
    expect(symmetricSteps(30, 31)).toContain(-30);
    expect(symmetricSteps(30, 31)).toContain(2);
    expect(symmetricSteps(3, 5)).toEqual([-3, -1.5, 0, 1.5, 3]);
    for (const t of g) expect(Math.abs(t.angle) <= 30 && Math.abs(t.dx) <= 3 && Math.abs(t.dy) <= 3).toBe(true);
  });

  it('collapses an axis with extent 0 and refuses inconsistent or out-of-range grids', () => {
    expect(spatialGrid({ maxRotation: 0 }).length).toBe(25);
    expect(spatialGrid({ maxTranslation: 0, rotations: 3 }).map((t) => t.angle)).toEqual([0, -30, 30]);
    expect(() => spatialGrid({ rotations: 1 })).toThrow(/rotations is 1 but maxRotation is 30/);
    expect(() => spatialGrid({ maxRotation: 200 })).toThrow(/maxRotation must be a number of degrees in \[0, 180\]/);
    expect(() => spatialGrid({ translations: 0 })).toThrow(/translations must be an integer in 1\.\.1001/);
    expect(() => spatialGrid({ maxTranslation: -1 })).toThrow(/maxTranslation must be a finite number of pixels >= 0/);
  });
});

describe('randomTransform', () => {
  it('draws uniformly within the ranges, as a function of (seed, index, draw) only', () => {
    const draws = Array.from({ length: 2000 }, (_, k) => randomTransform(3, k % 50, Math.floor(k / 50), { maxRotation: 20, maxTranslation: 2 }));
    for (const t of draws) expect(Math.abs(t.angle) <= 20 && Math.abs(t.dx) <= 2 && Math.abs(t.dy) <= 2).toBe(true);
    // Uniform on [-20, 20]: mean 0, variance 400/3 (sd of the mean of 2000 draws ~0.26).
    const mean = draws.reduce((a, t) => a + t.angle, 0) / draws.length;
    const variance = draws.reduce((a, t) => a + (t.angle - mean) ** 2, 0) / draws.length;
    expect(Math.abs(mean)).toBeLessThan(1.2);
    expect(variance).toBeGreaterThan(400 / 3 - 15);
    expect(variance).toBeLessThan(400 / 3 + 15);
    expect(randomTransform(3, 7, 2)).toEqual(randomTransform(3, 7, 2));
    expect(randomTransform(3, 7, 2)).not.toEqual(randomTransform(3, 8, 2));
    expect(randomTransform(3, 7, 2)).not.toEqual(randomTransform(3, 7, 3));
    expect(randomTransform(3, 7, 2)).not.toEqual(randomTransform(4, 7, 2));
  });
});

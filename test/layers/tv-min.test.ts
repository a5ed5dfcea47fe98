// Total variation minimisation: the solver against closed forms (identity, constants, a step's known
// minimiser, holes filled), near-optimality of its output (no small move lowers the objective), the
// layer's masks (share, seed, reseed), its gradient modes (unrolled solver = finite differences,
// BPDA identity = dy), save/load, errors and leaks.
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { TotalVariationMin, tvMinimise, tvObjective, TVM_DEFAULTS } from '../../src/layers/tv-min.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const ones = (shape: [number, number, number, number]) => tf.ones(shape) as tf.Tensor4D;

describe('tvMinimise', () => {
  it('weight 0 with every value kept returns the image; a constant image stays constant, its dropped values filled', () => {
    const x = tf.randomUniform([2, 6, 7, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const keep = ones([2, 6, 7, 3]);
    expect(maxAbs(tvMinimise(x, keep, 0, 20), x)).toBeLessThan(1e-6);
    // A constant 0.6 whose dropped values were set to 0 (as the reference's pepper noise does): rebuilt as 0.6 everywhere.
    const mask = tf.tensor4d(Array.from({ length: 2 * 6 * 7 * 3 }, (_, i) => (i % 5 === 1 || i % 7 === 0 ? 0 : 1)), [2, 6, 7, 3]);
    const c = tf.mul(tf.fill([2, 6, 7, 3], 0.6), mask) as tf.Tensor4D;
    expect(maxAbs(tvMinimise(c, mask, 0.05, 200), tf.fill([2, 6, 7, 3], 0.6))).toBeLessThan(1e-5);
    tf.dispose([x, keep, mask, c]);
  });

  it('a vertical step a|b (every value kept) moves each side by weight / its width toward the other, the closed form of TV denoising', () => {
    // Rows are equal, so only the jump between columns 2 and 3 has variation: it costs weight per row, and the
    // minimiser of 1/2 sum (z - f)^2 + weight |z_R - z_L| per row is z_L = a + weight / 3, z_R = b - weight / 5.
    const [a, b, wgt] = [0.2, 0.8, 0.3];
    const row = [a, a, a, b, b, b, b, b];
    const x = tf.tensor4d(Array.from({ length: 4 }, () => row).flat(), [1, 4, 8, 1]);
    const z = tvMinimise(x, ones([1, 4, 8, 1]), wgt, 200);
    const want = tf.tensor4d(Array.from({ length: 4 }, () => row.map((v) => (v === a ? a + wgt / 3 : b - wgt / 5))).flat(), [1, 4, 8, 1]);
    expect(maxAbs(z, want)).toBeLessThan(1e-5);
    // A weight beyond the jump's worth merges the two sides at the mean.
    const merged = tvMinimise(x, ones([1, 4, 8, 1]), 5, 200);
    expect(maxAbs(merged, tf.fill([1, 4, 8, 1], (3 * a + 5 * b) / 8))).toBeLessThan(1e-5);
    tf.dispose([x, z, want, merged]);
  });

  it('isotropic: a 2x2 image with one bright corner has the closed-form minimiser a = 1 - w sqrt(2), the rest w sqrt(2) / 3', () => {
    // F = 1/2 sum (z - x)^2 + w (sqrt((b - a)^2 + (c - a)^2) + |d - b| + |d - c|) for x = [1, 0; 0, 0]: the corner's two
    // differences share one Euclidean norm (anisotropic TV would give a = 1 - 2w), and b = c = d merge.
    const w = 0.2;
    const z = tvMinimise(tf.tensor4d([1, 0, 0, 0], [1, 2, 2, 1]), ones([1, 2, 2, 1]), w, 300);
    const [a, rest] = [1 - w * Math.SQRT2, (w * Math.SQRT2) / 3];
    expect(Array.from(z.dataSync()).map((v) => v.toFixed(5))).toEqual([a, rest, rest, rest].map((v) => v.toFixed(5)));
    z.dispose();
  });

  it('returns a near-minimiser: no random small move lowers the objective, and it is below the image\'s own (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 7 }), fc.integer({ min: 2, max: 7 }), fc.integer({ min: 1, max: 3 }), fc.double({ min: 0.01, max: 0.3, noNaN: true }), fc.double({ min: 0, max: 0.7, noNaN: true }), fc.integer({ min: 1, max: 1e6 }), (h, w, c, weight, drop, seed) => {
        tf.tidy(() => {
          const x = tf.randomUniform([1, h, w, c], 0, 1, 'float32', seed) as tf.Tensor4D;
          const keep = tf.randomUniform([1, h, w, c], 0, 1, 'float32', seed + 1).greaterEqual(drop).toFloat() as tf.Tensor4D;
          const z = tvMinimise(x, keep, weight, 300);
          const f = tvObjective(z, x, keep, weight).dataSync()[0];
          expect(f).toBeLessThanOrEqual(tvObjective(x, x, keep, weight).dataSync()[0] + 1e-6);
          for (let k = 0; k < 6; k++) {
            const d = tf.randomNormal([1, h, w, c], 0, 1, 'float32', seed + 10 + k);
            for (const t of [1e-2, 1e-3]) {
              const moved = tvObjective(tf.add(z, tf.mul(d, t)) as tf.Tensor4D, x, keep, weight).dataSync()[0];
              expect(moved, `h ${h} w ${w} c ${c} weight ${weight} drop ${drop} t ${t}`).toBeGreaterThanOrEqual(f - 1e-4 * Math.max(1, f));
            }
          }
        });
      }),
      { numRuns: 8, seed: 5 },
    );
  });

  it('refuses bad arguments', () => {
    const x = tf.zeros([1, 3, 3, 1]) as tf.Tensor4D;
    expect(() => tvMinimise(x, x, -1, 5)).toThrow('tvMinimise: weight must be a finite number >= 0, got -1');
    expect(() => tvMinimise(x, x, 0.1, 0)).toThrow('tvMinimise: iterations must be an integer >= 1, got 0');
    expect(() => tvMinimise(x, tf.zeros([1, 3, 4, 1]) as tf.Tensor4D, 0.1, 5)).toThrow('tvMinimise: x [1,3,3,1] and keep [1,3,4,1] must be NHWC tensors of one shape');
    x.dispose();
  });
});

describe('TotalVariationMin', () => {
  const x = () => tf.randomUniform([3, 8, 8, 3], 0, 1, 'float32', 7) as tf.Tensor4D;

  it('drops the given share of values, independently per channel, from a seeded stream that reseed restarts; equals the solver on its own mask', () => {
    const layer = new TotalVariationMin({ dropRate: 0.3, weight: 0.05, iterations: 30, seed: 4 });
    const big = tf.zeros([4, 32, 32, 3]);
    tf.dispose(layer.apply(big) as tf.Tensor);
    const m = layer.lastMask();
    const dropped = m.length - m.reduce((a, v) => a + v, 0);
    // Binomial(12288, 0.3): sd about 51; 4 sd either side.
    expect(Math.abs(dropped - 0.3 * m.length)).toBeLessThan(4 * Math.sqrt(m.length * 0.3 * 0.7));
    // The three channels of a pixel are not dropped together.
    let same = 0;
    for (let p = 0; p < m.length / 3; p++) if (m[3 * p] === m[3 * p + 1] && m[3 * p] === m[3 * p + 2]) same++;
    expect(same / (m.length / 3)).toBeLessThan(0.5);
    const xs = x();
    layer.reseed(9);
    const out = layer.apply(xs) as tf.Tensor4D;
    const mask = tf.tensor4d(Float32Array.from(layer.lastMask()), xs.shape);
    expect(maxAbs(out, tvMinimise(xs, mask, 0.05, 30))).toBeLessThan(1e-6);
    const again = layer.apply(xs) as tf.Tensor;
    expect(maxAbs(out, again)).toBeGreaterThan(1e-3);
    layer.reseed(9);
    expect(maxAbs(out, layer.apply(xs) as tf.Tensor)).toBe(0);
    expect(Array.from(new TotalVariationMin({ seed: 9, weight: 0.05, iterations: 30, dropRate: 0.3 }).apply(xs) as tf.Tensor4D && layer.lastMask())).toEqual(Array.from(layer.lastMask()));
    const none = new TotalVariationMin({ dropRate: 0 });
    tf.dispose(none.apply(xs) as tf.Tensor);
    expect(none.lastMask().every((v) => v === 1)).toBe(true);
    tf.dispose([big, xs, out, mask, again]);
  });

  it('gradients: through the unrolled solver in hard mode (finite differences), the identity in bpda-identity mode, the solver\'s own in bpda-soft', () => {
    const xs = tf.randomUniform([1, 5, 5, 1], 0.2, 0.8, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([1, 5, 5, 1], 0, 1, 'float32', 8);
    const layer = new TotalVariationMin({ dropRate: 0.4, weight: 0.1, iterations: 40, seed: 2 });
    const f = (v: tf.Tensor) => { layer.reseed(2); return tf.sum(tf.mul(layer.apply(v) as tf.Tensor, w)); };
    const g = tf.grad(f)(xs);
    // Central differences on a few pixels (float32: step 1e-2, the map is piecewise smooth).
    const xv = xs.dataSync();
    for (const i of [0, 6, 12, 18, 24]) {
      const e = new Float32Array(xv.length); e[i] = 1e-2;
      const up = tf.tidy(() => f(tf.add(xs, tf.tensor4d(e, xs.shape))).dataSync()[0]);
      const down = tf.tidy(() => f(tf.sub(xs, tf.tensor4d(e, xs.shape))).dataSync()[0]);
      expect(g.dataSync()[i]).toBeCloseTo((up - down) / 2e-2, 1);
    }
    // Not the identity: the solver mixes neighbouring pixels.
    expect(maxAbs(g, w)).toBeGreaterThan(0.05);
    // Finite on flat images too (zero differences everywhere, where the norm's slope is infinite).
    const flat = tf.grad(f)(tf.fill([1, 5, 5, 1], 0.5));
    expect(Array.from(flat.dataSync()).every(Number.isFinite)).toBe(true);
    flat.dispose();
    layer.mode = 'bpda-identity';
    expect(maxAbs(tf.grad(f)(xs), w)).toBe(0);
    // The forward is the same in every mode.
    layer.reseed(2);
    const bpdaOut = layer.apply(xs) as tf.Tensor;
    layer.mode = 'hard';
    layer.reseed(2);
    expect(maxAbs(bpdaOut, layer.apply(xs) as tf.Tensor)).toBe(0);
    layer.mode = 'bpda-soft';
    expect(maxAbs(tf.grad(f)(xs), g)).toBe(0);
    tf.dispose([xs, w, g, bpdaOut]);
  });

  it('saves and loads with its settings, uses the reference\'s defaults, refuses bad options, and leaks nothing forward or backward', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const model = tf.model({ inputs: input, outputs: new TotalVariationMin({ dropRate: 0.2, weight: 0.04, iterations: 12, seed: 6, mode: 'bpda-identity' }).apply(input) as tf.SymbolicTensor });
    const saved: tf.io.ModelArtifacts[] = [];
    await model.save(tf.io.withSaveHandler(async (a) => { saved.push(a); return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved[0]));
    const l = loaded.layers[1] as TotalVariationMin;
    expect([l.dropRate, l.weight, l.iterations, l.mode]).toEqual([0.2, 0.04, 12, 'bpda-identity']);
    const xs = x();
    expect(maxAbs(model.predict(xs) as tf.Tensor, loaded.predict(xs) as tf.Tensor)).toBe(0);
    const d = new TotalVariationMin();
    expect([d.dropRate, d.weight, d.iterations]).toEqual([TVM_DEFAULTS.dropRate, TVM_DEFAULTS.weight, TVM_DEFAULTS.iterations]);
    expect([TVM_DEFAULTS.dropRate, TVM_DEFAULTS.weight]).toEqual([0.5, 0.03]);
    for (const [args, msg] of [
      [{ dropRate: 1 }, 'TotalVariationMin: dropRate must be a share in [0, 1), got 1'],
      [{ dropRate: -0.1 }, 'TotalVariationMin: dropRate must be a share in [0, 1), got -0.1'],
      [{ weight: -1 }, 'TotalVariationMin: weight must be a finite number >= 0, got -1'],
      [{ iterations: 2.5 }, 'TotalVariationMin: iterations must be an integer >= 1, got 2.5'],
      [{ seed: 0.5 }, 'TotalVariationMin: seed must be an integer, got 0.5'],
      [{ mode: 'soft' }, 'TotalVariationMin: mode must be one of hard, bpda-identity, bpda-soft, got "soft"'],
    ] as const) expect(() => new TotalVariationMin(args as never)).toThrow(msg);
    expect(() => new TotalVariationMin().apply(tf.input({ shape: [8, 8] }))).toThrow(/TotalVariationMin: input must be \[batch, height, width, channels\]/);
    const layer = new TotalVariationMin({ iterations: 5 });
    await assertNoTensorLeak(() => { tf.dispose(layer.apply(xs) as tf.Tensor); }, { label: 'TotalVariationMin forward' });
    for (const mode of ['hard', 'bpda-identity'] as const) {
      layer.mode = mode;
      await assertNoTensorLeak(() => { tf.dispose(tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(xs)); }, { label: `TotalVariationMin backward (${mode})` });
    }
    xs.dispose();
    model.dispose();
    loaded.dispose();
  });
});

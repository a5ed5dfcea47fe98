// Adversarial patches: pasting (exact values inside, the image untouched outside), placements and the
// placement grid, the fit against a float64 host replay on a linear model (clamp, decay, targeted,
// seeded start/order/positions), its closed form on a two-class linear model, the box, success rates,
// determinism, leaks and named errors before any model call.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adversarialPatch, applyPatch, drawPlacements, fitPatch, gridOffsets, patchSuccess, randomPlacements } from '../../attacks/patch.ts';
import { createRng, permutation } from '../../src/data/rng.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { accuracy, linearModel, randomWeights, rng, trainedModel } from './helpers.ts';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('applyPatch', () => {
  it('puts the patch values exactly inside the square at each position and leaves every other pixel bit for bit', () => {
    fc.assert(fc.property(
      fc.record({ n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 7 }), w: fc.integer({ min: 1, max: 7 }), c: fc.integer({ min: 1, max: 3 }), seed: fc.nat() }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      ({ n, h, w, c, seed }, sizeFrac) => {
        const s = Math.max(1, Math.ceil(sizeFrac * Math.min(h, w)));
        const r = rng(seed);
        const xs = Float32Array.from({ length: n * h * w * c }, () => r());
        const ps = Float32Array.from({ length: s * s * c }, () => r());
        const at = randomPlacements(n, h, w, s, seed);
        const out = applyPatch(tf.tensor4d(xs, [n, h, w, c]), tf.tensor4d(ps, [1, s, s, c]), at);
        const got = out.dataSync();
        for (let i = 0; i < n; i++) {
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              const inside = y >= at.rows[i] && y < at.rows[i] + s && x >= at.cols[i] && x < at.cols[i] + s;
              for (let k = 0; k < c; k++) {
                const q = ((i * h + y) * w + x) * c + k;
                const want = inside ? ps[((y - at.rows[i]) * s + (x - at.cols[i])) * c + k] : xs[q];
                if (got[q] !== want) return false;
              }
            }
          }
        }
        out.dispose();
        return true;
      },
    ), { numRuns: 80 });
  });

  it('has as gradient in the patch the sum of the output gradients under it', () => {
    const [n, h, w, s] = [2, 4, 5, 2];
    const x = tf.fill([n, h, w, 1], 0.3) as tf.Tensor4D;
    const u = Float32Array.from({ length: n * h * w }, (_, i) => i + 1);
    const at = { rows: Int32Array.from([0, 2]), cols: Int32Array.from([3, 1]) };
    const g = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(applyPatch(x, p as tf.Tensor4D, at), tf.tensor4d(u, [n, h, w, 1]))))(tf.zeros([1, s, s, 1]));
    const want = Array.from({ length: s * s }, (_, k) => [0, 1].reduce((a, i) => a + u[(i * h + at.rows[i] + Math.floor(k / s)) * w + at.cols[i] + (k % s)], 0));
    expect(Array.from(g.dataSync())).toEqual(want);
    tf.dispose([x, g]);
  });

  it('pastes one patch per image when given [n,s,s,c]', () => {
    const x = tf.zeros([3, 4, 4, 1]) as tf.Tensor4D;
    const p = tf.tensor4d(Float32Array.from({ length: 12 }, (_, k) => k + 1), [3, 2, 2, 1]);
    const at = { rows: Int32Array.from([0, 1, 2]), cols: Int32Array.from([2, 0, 1]) };
    const out = applyPatch(x, p, at).arraySync() as number[][][][];
    for (let i = 0; i < 3; i++) for (let r = 0; r < 2; r++) for (let q = 0; q < 2; q++) expect(out[i][at.rows[i] + r][at.cols[i] + q][0]).toBe(4 * i + 2 * r + q + 1);
    expect(out.flat(3).filter((v) => v !== 0)).toHaveLength(12);
    expect(() => applyPatch(x, tf.zeros([2, 2, 2, 1]) as tf.Tensor4D, at)).toThrow(/patch: shape \[2,2,2,1\] is not \[1,s,s,1\] or \[3,s,s,1\]/);
    tf.dispose([x, p]);
  });

  it('refuses patches of the wrong shape and positions outside the image, naming them', () => {
    const x = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    const p = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    expect(() => applyPatch(x, tf.zeros([1, 2, 3, 1]) as tf.Tensor4D, randomPlacements(2, 4, 4, 2, 0))).toThrow(/patch: shape \[1,2,3,1\] is not \[1,s,s,1\] or \[2,s,s,1\]/);
    expect(() => applyPatch(x, p, { rows: Int32Array.from([0, 3]), cols: Int32Array.from([0, 0]) })).toThrow(/placements: image 1 puts the 2x2 patch at \(3, 0\), outside the 4x4 image/);
    expect(() => applyPatch(x, p, randomPlacements(3, 4, 4, 2, 0))).toThrow(/placements: 3 rows and 3 columns for 2 images/);
    tf.dispose([x, p]);
  });
});

describe('placements', () => {
  it('draws every position a patch fits in, uniformly and reproducibly', () => {
    const a = randomPlacements(4000, 6, 5, 3, 9);
    expect(Array.from(a.rows)).toEqual(Array.from(randomPlacements(4000, 6, 5, 3, 9).rows));
    const counts = new Map<string, number>();
    a.rows.forEach((r, i) => counts.set(`${r},${a.cols[i]}`, (counts.get(`${r},${a.cols[i]}`) ?? 0) + 1));
    // 4 x 3 places, each about 4000 / 12 = 333 times.
    expect(counts.size).toBe(12);
    for (const v of counts.values()) expect(Math.abs(v - 333)).toBeLessThan(80);
    expect(Array.from(randomPlacements(50, 6, 5, 3, 10).rows)).not.toEqual(Array.from(a.rows.subarray(0, 50)));
    expect(() => randomPlacements(2, 4, 4, 5, 0)).toThrow(/placements: size 5 does not fit in 4x4 images/);
  });

  it('grids the offsets from 0 by the stride and always ends at the last place', () => {
    expect(gridOffsets(28, 8, 8)).toEqual([0, 8, 16, 20]);
    expect(gridOffsets(32, 8, 8)).toEqual([0, 8, 16, 24]);
    expect(gridOffsets(5, 5, 3)).toEqual([0]);
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 12 }), (side, size0, stride) => {
      const size = Math.min(side, size0);
      const g = gridOffsets(side, size, stride);
      // Sorted, inside, gaps at most the stride, first 0 and last side - size: every pixel is under some grid patch.
      return g[0] === 0 && g[g.length - 1] === side - size && g.every((v, i) => i === 0 || (v > g[i - 1] && v - g[i - 1] <= stride));
    }));
    expect(() => gridOffsets(10, 4, 0)).toThrow(/grid: stride must be an integer >= 1, got 0/);
  });
});

const [H, W, C, K, N] = [5, 5, 2, 3, 20];

interface HostOptions { size: number; epochs: number; batchSize: number; stepSize: number; stepDecay: number; beta: number; target: number | null; seed: number }

/** The fit replayed in float64 on logits = paste(x)·W + b, drawing start, scoring positions, order and positions from the same stream. */
function hostFit(xs: Float32Array, ys: Int32Array, Wt: number[][], b: number[], o: HostOptions): { patch: Float64Array; scoreAt: { rows: Int32Array; cols: Int32Array } } {
  const n = ys.length;
  const d = H * W * C;
  const s = o.size;
  const rand = createRng(o.seed);
  const patch = Float64Array.from({ length: s * s * C }, () => rand.next());
  const scoreAt = drawPlacements(n, H, W, s, rand);
  for (let e = 0; e < o.epochs; e++) {
    const alpha = o.stepSize * o.stepDecay ** e;
    const order = permutation(n, rand);
    for (let start = 0; start < n; start += o.batchSize) {
      const idx = Array.from(order.subarray(start, Math.min(n, start + o.batchSize)));
      const at = drawPlacements(idx.length, H, W, s, rand);
      const g = new Float64Array(s * s * C);
      idx.forEach((i, j) => {
        // Where each patch value lands for this image.
        const where = (k: number) => ((at.rows[j] + Math.floor(k / (s * C))) * W + at.cols[j] + (Math.floor(k / C) % s)) * C + (k % C);
        const img = Float64Array.from({ length: d }, (_, q) => xs[i * d + q]);
        for (let k = 0; k < s * s * C; k++) img[where(k)] = patch[k];
        const z = b.map((bk, cls) => bk + img.reduce((a, v, q) => a + v * Wt[q][cls], 0));
        const top = Math.max(...z);
        const ez = z.map((v) => Math.exp(v - top));
        const sum = ez.reduce((a, v) => a + v, 0);
        const p = ez.map((v) => v / sum);
        const cls = o.target ?? ys[i];
        const ce = -Math.log(p[cls]);
        const sign = o.target !== null ? -1 : ce < o.beta ? 1 : 0;
        for (let k = 0; k < s * s * C; k++) for (let m = 0; m < b.length; m++) g[k] += (sign * Wt[where(k)][m] * (p[m] - (m === cls ? 1 : 0))) / idx.length;
      });
      for (let k = 0; k < patch.length; k++) patch[k] = Math.min(1, Math.max(0, patch[k] + alpha * Math.sign(g[k])));
    }
  }
  return { patch, scoreAt };
}

function task(seed: number, n = N) {
  const r = rng(seed);
  const xs = Float32Array.from({ length: n * H * W * C }, () => r());
  const ys = Int32Array.from({ length: n }, () => Math.floor(r() * K));
  return { xs, ys, x: tf.tensor4d(xs, [n, H, W, C]), y: tf.tensor1d(ys, 'int32') };
}

describe('fitPatch', () => {
  const Wt = randomWeights(7, H * W * C, K, 1.2);
  const b = [0.3, -0.2, 0];
  const model = linearModel(Wt, b);
  const { xs, ys, x, y } = task(3);
  const base: HostOptions = { size: 3, epochs: 3, batchSize: 6, stepSize: 0.04, stepDecay: 0.7, beta: 1.5, target: null, seed: 5 };

  it('follows the host replay step for step (clamped cross-entropy, decaying sign steps, seeded start, order and positions, box)', () => {
    const want = hostFit(xs, ys, Wt, b, base);
    const { patch, history, successRate } = fitPatch(model, x, y, { size: 3, epochs: 3, batchSize: 6, stepSize: 0.04, stepDecay: 0.7, beta: 1.5, seed: 5 });
    expect(patch.shape).toEqual([1, 3, 3, C]);
    expect(maxDiff(patch.dataSync(), want.patch)).toBeLessThan(1e-5);
    // The clamp and the decay both matter here, so dropping either is seen.
    expect(maxDiff(hostFit(xs, ys, Wt, b, { ...base, beta: 1e9 }).patch, want.patch)).toBeGreaterThan(0.01);
    expect(maxDiff(hostFit(xs, ys, Wt, b, { ...base, stepDecay: 1 }).patch, want.patch)).toBeGreaterThan(0.01);
    expect(history).toHaveLength(3);
    // The reported rate is that of the final patch at the fixed scoring positions.
    const ok = patchSuccess(model, x, y, patch, want.scoreAt);
    expect(successRate).toBeCloseTo(ok.reduce((a, v) => a + v, 0) / N, 12);
    patch.dispose();
  });

  it('follows it targeted too (minus the target cross-entropy, success counted over the other classes)', () => {
    const o = { ...base, target: 1, beta: 10 };
    const want = hostFit(xs, ys, Wt, b, o);
    const { patch, successRate } = fitPatch(model, x, y, { size: 3, epochs: 3, batchSize: 6, stepSize: 0.04, stepDecay: 0.7, target: 1, seed: 5 });
    expect(maxDiff(patch.dataSync(), want.patch)).toBeLessThan(1e-5);
    const hit = patchSuccess(model, x, y, patch, want.scoreAt, { target: 1 });
    const others = Array.from(ys).map((v, i) => [v, i]).filter(([v]) => v !== 1);
    expect(successRate).toBeCloseTo(others.reduce((a, [, i]) => a + hit[i], 0) / others.length, 12);
    patch.dispose();
  });

  it('reaches the closed form on a two-class linear model: 1 where w1 - w0 > 0, 0 where < 0 (and the reverse when targeted at class 0)', () => {
    // Channel 0 pushes towards class 1 everywhere, channel 1 towards class 0: d CE_0 / d pixel = p1 (w1 - w0).
    const w2 = Array.from({ length: H * W * C }, (_, q) => (q % C === 0 ? [0, 0.4] : [0.4, 0]));
    const lin = linearModel(w2, [0, 0]);
    const imgs = tf.fill([8, H, W, C], 0.5) as tf.Tensor4D;
    const zeros = tf.zeros([8], 'int32') as tf.Tensor1D;
    const ones = tf.ones([8], 'int32') as tf.Tensor1D;
    const want = Array.from({ length: 2 * 2 * C }, (_, k) => (k % C === 0 ? 1 : 0));
    // 5 passes of 2 steps of 0.12: 1.2 of travel, enough from any start in [0,1].
    const un = fitPatch(lin, imgs, zeros, { size: 2, epochs: 5, batchSize: 4, stepSize: 0.12, stepDecay: 1, beta: 1e9 });
    expect(Array.from(un.patch.dataSync())).toEqual(want);
    expect(un.successRate).toBe(1);
    const tg = fitPatch(lin, imgs, ones, { size: 2, epochs: 5, batchSize: 4, stepSize: 0.12, stepDecay: 1, target: 0 });
    expect(Array.from(tg.patch.dataSync())).toEqual(want.map((v) => 1 - v));
    tf.dispose([imgs, zeros, ones, un.patch, tg.patch]);
  });

  it('is reproducible from its seed and stays in [0,1]', () => {
    const a = fitPatch(model, x, y, { size: 2, epochs: 2, stepSize: 0.5, seed: 8 });
    const again = fitPatch(model, x, y, { size: 2, epochs: 2, stepSize: 0.5, seed: 8 });
    const other = fitPatch(model, x, y, { size: 2, epochs: 2, stepSize: 0.5, seed: 9 });
    expect(Array.from(again.patch.dataSync())).toEqual(Array.from(a.patch.dataSync()));
    expect(maxDiff(other.patch.dataSync(), a.patch.dataSync())).toBeGreaterThan(0);
    for (const v of a.patch.dataSync()) expect(v >= 0 && v <= 1).toBe(true);
    tf.dispose([a.patch, again.patch, other.patch]);
  });

  it('fools a trained model far more than a random patch of the same size', async () => {
    const t = await trainedModel();
    const clean = accuracy(t.model, t.x, t.y);
    const at = randomPlacements(100, 4, 4, 2, 3);
    const noise = tf.tensor4d(Float32Array.from({ length: 4 }, rng(4)), [1, 2, 2, 1]);
    const { patch } = fitPatch(t.model, t.x, t.y, { size: 2, epochs: 5, stepSize: 0.1 });
    const rateOf = (p: tf.Tensor4D) => patchSuccess(t.model, t.x, t.y, p, at).reduce((a, v) => a + v, 0) / 100;
    // The fitted patch must beat a random one (0.25 vs 0.05 here; it was fitted on these images).
    expect(rateOf(patch)).toBeGreaterThan(rateOf(noise) + 0.15);
    expect(rateOf(patch)).toBeGreaterThan(1 - clean + 0.15);
    const adv = adversarialPatch(t.model, t.x, t.y, { size: 2, epochs: 5, stepSize: 0.1 });
    expect(adv.shape).toEqual(t.x.shape);
    tf.dispose([noise, patch, adv, t.x, t.y]);
    t.model.dispose();
  });

  it('does not leak tensors in fitting, pasting, scoring or the attack', async () => {
    await assertNoTensorLeak(() => fitPatch(model, x, y, { size: 2, epochs: 2 }).patch, { label: 'fit' });
    await assertNoTensorLeak(() => fitPatch(model, x, y, { size: 2, epochs: 1, target: 0 }).patch, { label: 'fit targeted' });
    const p = tf.ones([1, 2, 2, C]) as tf.Tensor4D;
    const at = randomPlacements(N, H, W, 2, 1);
    await assertNoTensorLeak(() => applyPatch(x, p, at), { label: 'apply' });
    await assertNoTensorLeak(() => patchSuccess(model, x, y, p, at, { batchSize: 7 }), { label: 'success' });
    await assertNoTensorLeak(() => adversarialPatch(model, x, y, { size: 2, epochs: 1 }), { label: 'attack' });
    p.dispose();
  });

  it('names the bad option or argument before calling the model', () => {
    let calls = 0;
    const counting = (t: tf.Tensor4D) => {
      calls++;
      return model(t);
    };
    const bad: [object, RegExp][] = [
      [{}, /patch: size: must be an integer >= 1, got undefined/],
      [{ size: 6 }, /patch: size 6 does not fit in 5x5 images/],
      [{ size: 2.5 }, /patch: size: must be an integer >= 1, got 2.5/],
      [{ size: 2, epochs: 0 }, /patch: epochs: must be an integer >= 1, got 0/],
      [{ size: 2, stepDecay: 1.5 }, /patch: stepDecay must be in \(0, 1\], got 1.5/],
      [{ size: 2, stepSize: -1 }, /patch: stepSize/],
      [{ size: 2, eps: 0.1 }, /patch: unknown option/],
    ];
    for (const [o, re] of bad) expect(() => fitPatch(counting, x, y, o as never)).toThrow(re);
    expect(calls).toBe(0);
    expect(() => fitPatch(model, x, y, { size: 2, target: 3 })).toThrow(/patch: target 3 is not a class of the model \(3 classes\)/);
  });
});

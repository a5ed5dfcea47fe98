// Spatial attack: the budget (every output is a grid transform of its input), a closed form on a
// one-pixel classifier, monotonicity in the grid and in the draws, determinism, leaks and errors.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { spatial, spatialSearch } from '../../attacks/spatial.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { spatialGrid, transformImages, transformLabel } from '../../src/spatial/transform.ts';
import { randomImages, randomLabels, randomMlp } from './helpers.ts';

const [H, W] = [5, 9];

/** Images with one bright pixel at row 2, column c (c = 0..8). */
function onePixelImages(): tf.Tensor4D {
  const data = new Float32Array(W * H * W);
  for (let c = 0; c < W; c++) data[c * H * W + 2 * W + c] = 1;
  return tf.tensor4d(data, [W, H, W, 1]);
}

/** Class 0 holds the brightness of columns 0-4, class 1 of columns 5-8 (argMax breaks a tie for class 0). */
const halfModel = (x: tf.Tensor4D) => tf.tidy(() => {
  const left = tf.sum(tf.slice(x, [0, 0, 0, 0], [-1, -1, 5, -1]), [1, 2, 3]);
  const right = tf.sum(tf.slice(x, [0, 0, 5, 0], [-1, -1, -1, -1]), [1, 2, 3]);
  return tf.stack([left, right], 1) as tf.Tensor2D;
});

/** Robust columns under whole-pixel shifts up to m: label 0 survives unless c + m reaches column 5; label 1 falls when c - m reaches column 4, or when a shift pushes the pixel out (a tie is class 0). */
function robustColumns(m: number): number[] {
  return Array.from({ length: W }, (_, c) => c).filter((c) => (c <= 4 ? c + m <= 4 : c - m >= 5 && c + m <= 8 && 2 + m <= 4));
}

const labelsOfColumns = () => tf.tensor1d(Array.from({ length: W }, (_, c) => (c <= 4 ? 0 : 1)), 'int32');

describe('spatial attack', () => {
  it('matches the closed form of a one-pixel classifier under whole-pixel shifts', () => {
    const x = onePixelImages();
    const y = labelsOfColumns();
    for (const m of [1, 2, 3]) {
      const res = spatialSearch(halfModel, x, y, { maxRotation: 0, maxTranslation: m, translations: 2 * m + 1 });
      const robust = res.success.flatMap((s, c) => (s ? [] : [c]));
      expect(robust).toEqual(robustColumns(m));
      res.adversarial.dispose();
    }
    expect(robustColumns(1)).toEqual([0, 1, 2, 3, 6, 7]);
    expect(robustColumns(3)).toEqual([0, 1]);
    tf.dispose([x, y]);
  });

  it('stays inside its threat model: each output is its input under the reported transform, a member of the grid', () => {
    const x = randomImages(4, [6, 10, 10, 3]);
    const y = randomLabels(5, 6, 4);
    const model = randomMlp(6, 300, 4);
    const opts = { maxRotation: 20, rotations: 5, maxTranslation: 2, translations: 3 };
    const grid = new Set(spatialGrid(opts).map(transformLabel));
    const res = spatialSearch(model, x, y, opts);
    expect(res.transforms.every((t) => grid.has(transformLabel(t)))).toBe(true);
    const again = transformImages(x, res.transforms);
    expect(Array.from(res.adversarial.dataSync())).toEqual(Array.from(again.dataSync()));
    // The model's verdict on the output is the reported success.
    const pred = tf.tidy(() => tf.argMax(model(res.adversarial), 1).dataSync());
    const labels = y.dataSync();
    res.success.forEach((s, i) => expect(s).toBe(pred[i] !== labels[i]));
    // Random draws stay within the ranges.
    const rnd = spatialSearch(model, x, y, { ...opts, search: 'random', samples: 4 });
    for (const t of rnd.transforms) expect(Math.abs(t.angle) <= 20 && Math.abs(t.dx) <= 2 && Math.abs(t.dy) <= 2).toBe(true);
    const rndAgain = transformImages(x, rnd.transforms);
    expect(Array.from(rnd.adversarial.dataSync())).toEqual(Array.from(rndAgain.dataSync()));
    tf.dispose([x, y, res.adversarial, again, rnd.adversarial, rndAgain]);
  });

  it('never does worse with more transforms: a finer grid and more random draws fool a superset of images, and never fewer than clean', () => {
    const x = randomImages(8, [24, 8, 8, 1]);
    const y = randomLabels(9, 24, 3);
    const model = randomMlp(10, 64, 3, 16);
    const fooled = (o: object) => {
      const r = spatialSearch(model, x, y, o);
      r.adversarial.dispose();
      return r.success;
    };
    const clean = tf.tidy(() => Array.from(tf.notEqual(tf.argMax(model(x), 1), y).dataSync(), Boolean));
    const coarse = fooled({ maxRotation: 30, rotations: 3, maxTranslation: 2, translations: 3 });
    const fine = fooled({ maxRotation: 30, rotations: 7, maxTranslation: 2, translations: 5 });
    const few = fooled({ search: 'random', samples: 3, seed: 2 });
    const many = fooled({ search: 'random', samples: 8, seed: 2 });
    for (let i = 0; i < 24; i++) {
      if (clean[i]) expect(coarse[i]).toBe(true);
      if (coarse[i]) expect(fine[i]).toBe(true);
      if (few[i]) expect(many[i]).toBe(true);
    }
    expect(fine.filter(Boolean).length).toBeGreaterThan(clean.filter(Boolean).length);
    tf.dispose([x, y]);
  });

  it('is deterministic, and random draws depend on the image index, not the batch (indexOffset)', () => {
    const x = randomImages(12, [6, 8, 8, 1]);
    const y = randomLabels(13, 6, 3);
    const model = randomMlp(14, 64, 3);
    const o = { search: 'random' as const, samples: 5, seed: 7 };
    const a = spatialSearch(model, x, y, o);
    const b = spatialSearch(model, x, y, o);
    expect(b.transforms).toEqual(a.transforms);
    const [x1, x2] = [tf.slice(x, [0, 0, 0, 0], [2, -1, -1, -1]), tf.slice(x, [2, 0, 0, 0], [4, -1, -1, -1])];
    const [y1, y2] = [tf.slice(y, 0, 2), tf.slice(y, 2, 4)];
    const p1 = spatialSearch(model, x1, y1, o);
    const p2 = spatialSearch(model, x2, y2, { ...o, indexOffset: 2 });
    expect([...p1.transforms, ...p2.transforms]).toEqual(a.transforms);
    const c = spatialSearch(model, x, y, { ...o, seed: 8 });
    expect(c.transforms).not.toEqual(a.transforms);
    tf.dispose([x, y, x1, x2, y1, y2, a.adversarial, b.adversarial, p1.adversarial, p2.adversarial, c.adversarial]);
  });

  it('stops at the first transform once every image is fooled (the identity, for a model that is always wrong)', () => {
    const x = onePixelImages();
    const y = tf.tensor1d(Array.from({ length: W }, (_, c) => (c <= 4 ? 1 : 0)), 'int32');
    const res = spatialSearch(halfModel, x, y);
    expect(res.queries).toBe(1);
    expect(res.transforms.every((t) => t.angle === 0 && t.dx === 0 && t.dy === 0)).toBe(true);
    tf.dispose([x, y, res.adversarial]);
  });

  it('leaks no tensors across calls', async () => {
    const x = randomImages(15, [4, 8, 8, 1]);
    const y = randomLabels(16, 4, 3);
    const model = randomMlp(17, 64, 3);
    await assertNoTensorLeak(() => spatial(model, x, y, { rotations: 3, translations: 3 }), { label: 'spatial grid' });
    await assertNoTensorLeak(() => spatial(model, x, y, { search: 'random', samples: 3 }), { label: 'spatial random' });
    tf.dispose([x, y]);
  });

  it('checks its arguments before calling the model, naming the option', () => {
    const x = randomImages(18, [2, 8, 8, 1]);
    const y = randomLabels(19, 2, 3);
    let calls = 0;
    const model = (z: tf.Tensor4D) => {
      calls++;
      return tf.tidy(() => tf.concat([tf.mean(z, [1, 2]), tf.zeros([z.shape[0], 2])], 1) as tf.Tensor2D);
    };
    expect(() => spatial(model, x, y, { search: 'bayes' as never })).toThrow(/spatial: search must be "grid" or "random"/);
    expect(() => spatial(model, x, y, { samples: 0 })).toThrow(/spatial: samples: must be an integer >= 1/);
    expect(() => spatial(model, x, y, { loss: 'dlr' as never })).toThrow(/spatial: loss must be "ce" or "margin"/);
    expect(() => spatial(model, x, y, { rotation: 10 } as never)).toThrow(/spatial: unknown option "rotation"/);
    expect(() => spatial(model, x, y, { fill: 'wrap' as never })).toThrow(/spatial: fill must be one of/);
    expect(() => spatial(model, x, y, { maxRotation: -1 })).toThrow(/spatial: maxRotation/);
    expect(calls).toBe(0);
    const bad = tf.fill([2, 8, 8, 1], 2) as tf.Tensor4D;
    expect(() => spatial(model, bad, y)).toThrow(/spatial: images: pixels must lie in \[0,1\]/);
    expect(() => spatial(model, x, tf.tensor1d([0, 5], 'int32'))).toThrow(/spatial: labels: entry 1 is 5/);
    tf.dispose([x, y, bad]);
  });
});

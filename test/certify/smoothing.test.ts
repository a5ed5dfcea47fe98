// Randomised smoothing against the closed form of a linear classifier: under δ ~ N(0, σ²I) a binary
// linear classifier with signed distance m = (w·x + b)/||w|| to its boundary gives class A with
// probability exactly Φ(m/σ), so the exact smoothed radius is |m|; a sound certificate stays below it.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { averageCertifiedRadius, certifiedAccuracy, certifiedRadius, certifySmoothed, predictSmoothed, type Certificate } from '../../src/certify/smoothing.ts';
import { normalCdf } from '../../src/certify/stats.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, rng } from '../attacks/helpers.ts';

const d = 16;
const r = rng(11);
const w = Array.from({ length: d }, () => (0.5 + 0.5 * r()) * (r() < 0.5 ? -1 : 1));
const norm = Math.hypot(...w);
// Class 0's logit is w·x + b with b = -w·0.5, class 1's is 0: the boundary passes through the grey image.
const model = linearModel(w.map((v) => [v, 0]), [-0.5 * w.reduce((a, v) => a + v, 0), 0]);
/** The grey image moved by m along w's direction: signed distance m from the boundary (pixels stay in [0,1]). */
const atDistance = (m: number) => w.map((v) => 0.5 + (m * v) / norm);
const margins = [0.3, 0.15, -0.2, 0.02];
const images = tf.tensor4d(margins.flatMap(atDistance), [margins.length, 4, 4, 1]);
const labels = tf.tensor1d(margins.map((m) => (m > 0 ? 0 : 1)), 'int32');
const sigma = 0.25;
const n = 20000;

describe('certifySmoothed on a linear classifier', () => {
  const certs = certifySmoothed(model, images, labels, { sigma, n, seed: 3 });

  it('counts the class as often as Φ(m/σ) predicts, within 4 standard deviations', () => {
    margins.forEach((m, i) => {
      const p = normalCdf(Math.abs(m) / sigma);
      expect(Math.abs(certs[i].count / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    });
  });

  it('certifies the right class with a radius at most the true distance |m| and close to it', () => {
    margins.forEach((m, i) => {
      const c = certs[i];
      expect(c.prediction).toBe(m > 0 ? 0 : 1);
      expect(c.correct).toBe(true);
      expect(c.radius).toBeLessThanOrEqual(Math.abs(m));
      // n = 20,000 at alpha 0.001 loses at most ~0.04σ of radius on these margins.
      expect(c.radius).toBeGreaterThan(Math.abs(m) - 0.04 * sigma);
      expect(c.radius).toBeCloseTo(certifiedRadius(c.pLower, sigma)!, 12);
    });
  });

  it('abstains on the boundary (p = 1/2): prediction -1, radius 0, not correct', () => {
    const x = tf.tensor4d(atDistance(0), [1, 4, 4, 1]);
    const y = tf.tensor1d([0], 'int32');
    const [c] = certifySmoothed(model, x, y, { sigma, n: 2000, seed: 1 });
    expect(c).toMatchObject({ prediction: -1, radius: 0, correct: false });
    expect(c.pLower).toBeLessThan(0.5);
    tf.dispose([x, y]);
  });

  it('same seed, same certificates; an image certified alone with its indexOffset gets the same noise', () => {
    const again = certifySmoothed(model, images, labels, { sigma, n, seed: 3 });
    expect(again).toEqual(certs);
    const x2 = tf.slice(images, [2, 0, 0, 0], [1, 4, 4, 1]);
    const y2 = tf.slice(labels, [2], [1]);
    expect(certifySmoothed(model, x2, y2, { sigma, n, seed: 3, indexOffset: 2 })).toEqual([certs[2]]);
    const other = certifySmoothed(model, x2, y2, { sigma, n, seed: 4, indexOffset: 2 });
    expect(other[0].count).not.toBe(certs[2].count);
    tf.dispose([x2, y2]);
  });

  it('seed 0 is a seed too (tfjs reads randomNormal seed 0 as unseeded): on the boundary the selected class repeats', () => {
    // Image 0's selection chunk derives seed 0; on the boundary one noisy copy picks either class with probability 1/2.
    const x = tf.tensor4d(atDistance(0), [1, 4, 4, 1]);
    const y = tf.tensor1d([0], 'int32');
    const runs = Array.from({ length: 6 }, () => certifySmoothed(model, x, y, { sigma, n0: 1, n: 50, seed: 0 })[0]);
    for (const c of runs) expect(c).toEqual(runs[0]);
    tf.dispose([x, y]);
  });

  it('a larger alpha (weaker guarantee) never gives a smaller radius on the same noise', () => {
    const loose = certifySmoothed(model, images, labels, { sigma, n, seed: 3, alpha: 0.05 });
    loose.forEach((c, i) => {
      expect(c.count).toBe(certs[i].count);
      expect(c.radius).toBeGreaterThan(certs[i].radius);
    });
  });

  it('does not leak tensors', async () => {
    await assertNoTensorLeak(() => certifySmoothed(model, images, labels, { sigma, n0: 50, n: 600, batchSize: 256 }), { label: 'certifySmoothed' });
    await assertNoTensorLeak(() => predictSmoothed(model, images, { sigma, n: 600, batchSize: 256 }), { label: 'predictSmoothed' });
  });

  it('names the bad argument before any sampling', () => {
    expect(() => certifySmoothed(model, images, labels, { sigma: 0 })).toThrow(/certify: sigma must be a finite number > 0/);
    expect(() => certifySmoothed(model, images, labels, { sigma, n0: 1.5 })).toThrow(/certify: n0/);
    expect(() => certifySmoothed(model, images, labels, { sigma, alpha: 1 })).toThrow(/certify: alpha must be in \(0, 1\)/);
    expect(() => certifySmoothed(model, images, labels, { sigma, eps: 1 } as never)).toThrow(/eps/);
    const bright = tf.mul(images, 2) as tf.Tensor4D;
    expect(() => certifySmoothed(model, bright, labels, { sigma })).toThrow(/certify: images: pixels must lie in \[0,1\]/);
    const bad = tf.tensor1d([0, 1, 2, 0], 'int32');
    expect(() => certifySmoothed(model, images, bad, { sigma })).toThrow(/certify: labels: entry 2/);
    tf.dispose([bright, bad]);
  });
});

describe('predictSmoothed on a linear classifier', () => {
  it('returns the side of the boundary away from it and abstains on it', () => {
    const x = tf.tensor4d([...atDistance(0.3), ...atDistance(-0.3), ...atDistance(0)], [3, 4, 4, 1]);
    expect(predictSmoothed(model, x, { sigma, n: 2000, seed: 5 })).toEqual([0, 1, -1]);
    x.dispose();
  });
});

describe('certified accuracy and average certified radius', () => {
  const cert = (radius: number, correct: boolean): Certificate => ({ label: 0, prediction: correct ? 0 : 1, count: 0, pLower: 0.6, radius, correct });

  it('counts correct certificates with radius >= r, never increasing in r', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 2, noNaN: true }), fc.boolean()), { minLength: 1, maxLength: 30 }), (cs) => {
      const certs = cs.map(([rad, ok]) => cert(rad, ok));
      const radii = [0, 0.25, 0.5, 1, 1.5, 2];
      const acc = certifiedAccuracy(certs, radii);
      for (let i = 1; i < acc.length; i++) expect(acc[i]).toBeLessThanOrEqual(acc[i - 1]);
      expect(acc[0]).toBe(certs.filter((c) => c.correct).length / certs.length);
      // The average certified radius is the area under the certified-accuracy curve.
      const fine = Array.from({ length: 2001 }, (_, i) => i / 1000);
      const area = certifiedAccuracy(certs, fine).reduce((s, v) => s + v / 1000, 0);
      expect(Math.abs(area - averageCertifiedRadius(certs))).toBeLessThan(certs.length * 0.001 + 1e-9);
    }), { numRuns: 40 });
  });

  it('refuses an empty list', () => {
    expect(() => certifiedAccuracy([], [0])).toThrow(/no certificates/);
  });
});

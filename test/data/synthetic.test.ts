import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { batches } from '../../src/data/batches.ts';
import { makeSynthetic, SYNTHETIC_CLASSES } from '../../src/data/synthetic.ts';
import { classCounts, validateDataset, type ImageDataset } from '../../src/data/types.ts';

// Mean RGB of each image.
function meanColours(ds: ImageDataset): number[][] {
  const per = ds.height * ds.width;
  return Array.from({ length: ds.labels.length }, (_, i) => {
    const m = [0, 0, 0];
    for (let p = 0; p < per; p++) for (let c = 0; c < 3; c++) m[c] += ds.images[(i * per + p) * 3 + c] / per;
    return m;
  });
}

describe('synthetic colour dataset', () => {
  it('is a pure function of (seed, split, size): same seed same pixels, other seed or split other pixels', () => {
    const a = makeSynthetic({ seed: 3, size: 24 });
    expect(makeSynthetic({ seed: 3, size: 24 }).images).toEqual(a.images);
    expect(makeSynthetic({ seed: 4, size: 24 }).images).not.toEqual(a.images);
    expect(makeSynthetic({ seed: 3, size: 24, split: 'test' }).images).not.toEqual(a.images);
    validateDataset(a);
    expect([a.height, a.width, a.channels, a.numClasses]).toEqual([32, 32, 3, 6]);
    expect(a.classNames).toEqual([...SYNTHETIC_CLASSES]);
    expect(a.source).toContain('seed 3');
  });

  it('is class-balanced and uses the whole [0,1] range', () => {
    const ds = makeSynthetic({ seed: 1, size: 62, numClasses: 4, imageSize: 16 });
    expect(classCounts(ds)).toEqual([16, 16, 15, 15]);
    expect(ds.height).toBe(16);
    const min = ds.images.reduce((m, v) => Math.min(m, v), 1);
    const max = ds.images.reduce((m, v) => Math.max(m, v), 0);
    expect(min).toBeLessThan(0.1);
    expect(max).toBeGreaterThan(0.9);
  });

  it('is not solvable from colour: a nearest-centroid classifier on mean RGB stays near chance', () => {
    const tr = makeSynthetic({ seed: 5, size: 360 });
    const te = makeSynthetic({ seed: 5, size: 240, split: 'test' });
    const ftr = meanColours(tr);
    const cent = Array.from({ length: 6 }, () => [0, 0, 0, 0]);
    ftr.forEach((f, i) => {
      const c = cent[tr.labels[i]];
      for (let k = 0; k < 3; k++) c[k] += f[k];
      c[3]++;
    });
    let correct = 0;
    meanColours(te).forEach((f, i) => {
      let best = -1;
      let bd = Infinity;
      cent.forEach((c, k) => {
        const d = (f[0] - c[0] / c[3]) ** 2 + (f[1] - c[1] / c[3]) ** 2 + (f[2] - c[2] / c[3]) ** 2;
        if (d < bd) [bd, best] = [d, k];
      });
      if (best === te.labels[i]) correct++;
    });
    // Chance is 1/6; binomial std on 240 is ~0.024, so 0.3 is > 5 sigma above chance.
    expect(correct / 240).toBeLessThan(0.3);
  });

  it('the object shows: the centre differs from the border more than the noise does', () => {
    const clean = makeSynthetic({ seed: 2, size: 30, noise: 0 });
    const s = 32;
    let diff = 0;
    for (let i = 0; i < 30; i++) {
      const at = (y: number, x: number, c: number) => clean.images[((i * s + y) * s + x) * 3 + c];
      for (let c = 0; c < 3; c++) diff += Math.abs(at(16, 16, c) - at(0, 0, c)) / 90;
    }
    // Mean absolute centre-vs-corner difference; objects are >= 0.35 (RGB distance) from the background.
    expect(diff).toBeGreaterThan(0.1);
  });

  it('rejects bad options', () => {
    expect(() => makeSynthetic({ numClasses: 7 })).toThrow(/synthetic: numClasses must be an integer 2\.\.6, got 7/);
    expect(() => makeSynthetic({ size: 0 })).toThrow(/synthetic: size must be a positive integer/);
    expect(() => makeSynthetic({ imageSize: 4 })).toThrow(/synthetic: imageSize must be an integer 8\.\.1024/);
    expect(() => makeSynthetic({ noise: -1 })).toThrow(/noise must be in \[0,1\]/);
  });
});

// Opt-in: a small CNN learns the shapes well above chance (about 0.4 after 8 epochs on 3,000 images;
// chance 1/6), showing the task is learnable but not trivial.
describe.skipIf(!process.env.JPEGDL_SLOW)('synthetic learnability (JPEGDL_SLOW)', () => {
  it('a small CNN beats chance by a wide margin', () => {
    const tr = makeSynthetic({ seed: 1, size: 3000 });
    const te = makeSynthetic({ seed: 1, size: 600, split: 'test' });
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 16, kernelSize: 3, activation: 'relu', padding: 'same' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', padding: 'same' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 64, activation: 'relu' }),
        tf.layers.dense({ units: 6 }),
      ],
    });
    const opt = tf.train.adam(1e-3);
    for (let e = 0; e < 8; e++) {
      for (const b of batches(tr, { batchSize: 32, shuffle: true, seed: 1, epoch: e })) {
        opt.minimize(() => tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, 6), m.predict(b.x) as tf.Tensor) as tf.Scalar);
        tf.dispose([b.x, b.y]);
      }
    }
    const acc = tf.tidy(() => {
      const pred = (m.predict(tf.tensor4d(te.images, [600, 32, 32, 3])) as tf.Tensor).argMax(1);
      return pred.equal(tf.tensor1d(te.labels, 'int32')).mean().dataSync()[0];
    });
    m.dispose();
    expect(acc).toBeGreaterThan(0.3);
  });
});

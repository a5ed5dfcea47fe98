// The JPEG-compression input defence: exactly JPEG then the model, tables frozen at the quality's,
// a zero input gradient in hard mode (what PGD sees) that BPDA replaces, clear errors, no leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bpdaModel } from '../../attacks/bpda.ts';
import { pgd } from '../../attacks/pgd.ts';
import { buildModel } from '../../models/registry.ts';
import { jpegDefended } from '../../src/defences/jpeg.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { standardTables } from '../../src/jpeg/tables.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const images = () => tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;

describe('jpegDefended', () => {
  it('is real JPEG at the quality, then the model, bit for bit; only the model\'s weights train', () => {
    const model = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 4, seed: 1 });
    const defended = jpegDefended(model, { quality: 75 });
    const x = images();
    const jpeg = new JpegLayer({ quality: 75, mode: 'hard' });
    const want = tf.tidy(() => (model.predict(jpeg.apply(x) as tf.Tensor4D) as tf.Tensor).dataSync());
    const got = tf.tidy(() => (defended.predict(x) as tf.Tensor).dataSync());
    expect(Array.from(got)).toEqual(Array.from(want));
    // Not the undefended model's answer.
    const plain = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
    expect(Array.from(got)).not.toEqual(Array.from(plain));
    // Frozen tables equal to the quality's standard ones; the trainable weights are the model's.
    const layer = defended.layers.find((l) => l.getClassName() === 'JpegLayer') as JpegLayer;
    expect(layer.trainable).toBe(false);
    const tables = layer.getTables()[0];
    expect(tables.luma.map(Math.round)).toEqual(Array.from(standardTables(75).luma));
    expect(defended.trainableWeights.map((w) => w.name)).toEqual(model.trainableWeights.map((w) => w.name));
    tf.dispose([x]);
    jpeg.dispose();
    defended.dispose();
    // The model it wraps is still whole.
    const again = tf.tidy(() => (model.predict(images()) as tf.Tensor).dataSync());
    expect(again).toHaveLength(16);
    model.dispose();
  });

  it('hard mode gives PGD a zero input gradient (the masking Athalye et al. describe); BPDA restores one and breaks it', () => {
    // A linear head (an untrained CNN answers one class for every image, which nothing can fool).
    const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [16, 16, 3] }), tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 0.1 }) })] });
    const defended = jpegDefended(model, { quality: 75 });
    const x = images();
    const y = tf.tidy(() => tf.argMax(defended.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const grad = (m: tf.LayersModel | ((v: tf.Tensor4D) => tf.Tensor2D)) => tf.tidy(() => {
      const f = typeof m === 'function' ? m : (v: tf.Tensor4D) => m.apply(v) as tf.Tensor2D;
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor4D), tf.oneHot(y, 4))))(x).abs().max().dataSync()[0];
    });
    expect(grad(defended)).toBe(0);
    expect(grad(bpdaModel(defended, { backward: 'identity' }))).toBeGreaterThan(0);
    // Without a random start PGD cannot move; through BPDA it changes the images and fools some.
    const stuck = pgd(defended, x, y, { eps: 16 / 255, steps: 5, randomStart: false });
    expect(Array.from(stuck.dataSync())).toEqual(Array.from(x.dataSync()));
    const broken = pgd(bpdaModel(defended, { backward: 'identity' }), x, y, { eps: 16 / 255, steps: 5, randomStart: false });
    const fooled = tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(defended.predict(broken) as tf.Tensor, 1), y).toInt()).dataSync()[0]);
    expect(fooled).toBeGreaterThan(0);
    tf.dispose([x, y, stuck, broken]);
    defended.dispose();
    model.dispose();
  });

  it('refuses what it cannot defend, naming the problem, and leaks nothing', async () => {
    const model = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 4, seed: 1 });
    expect(() => jpegDefended(model, { quality: 0 })).toThrow('jpeg defence: quality must be an integer in 1..100, got 0');
    expect(() => jpegDefended(model, { quality: 75.5 })).toThrow(/quality must be an integer/);
    const jpegdl = buildModel('small_cnn', { inputShape: [16, 16, 3], numClasses: 4, seed: 1, jpeg: {} });
    expect(() => jpegDefended(jpegdl, { quality: 75 })).toThrow(/already has a JpegLayer/);
    const x = images();
    await assertNoTensorLeak(() => {
      const d = jpegDefended(model, { quality: 50 });
      tf.dispose(d.predict(x) as tf.Tensor);
      d.dispose();
    }, { label: 'jpegDefended' });
    tf.dispose(x);
    jpegdl.dispose();
    model.dispose();
  });
});

// Joint training with the real JpegLayer and a registry model (small inputs, seconds).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../models/registry.ts';
import { defaultTrainConfig } from '../../src/train/config.ts';
import { splitTrainableVariables } from '../../src/train/jpeg-params.ts';
import { JointTrainer, trainModel } from '../../src/train/trainer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { rng } from './fixtures.ts';
import type { TrainData } from '../../src/train/trainer.ts';

const shape: [number, number, number] = [16, 16, 3];

/** Seeded colour images: class k has a brighter channel k, so the task is learnable. */
function colourData(n: number): TrainData {
  const r = rng(11);
  const per = 16 * 16 * 3;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let p = 0; p < per; p++) images[i * per + p] = Math.min(1, (p % 3 === labels[i] ? 0.5 : 0.2) + 0.3 * r());
  }
  return {
    size: n,
    *batches(epoch, { batchSize, seed }) {
      const q = rng(seed * 31 + epoch);
      const order = Array.from({ length: n }, (_, i) => i).sort(() => q() - 0.5);
      for (let s = 0; s < n; s += batchSize) {
        const idx = order.slice(s, s + batchSize);
        const x = new Float32Array(idx.length * per);
        idx.forEach((src, b) => x.set(images.subarray(src * per, (src + 1) * per), b * per));
        yield { x: tf.tensor4d(x, [idx.length, ...shape]), y: tf.tensor1d(Int32Array.from(idx.map((i) => labels[i])), 'int32') };
      }
    },
  };
}

describe('joint training with the real JpegLayer', () => {
  it('baseline and JPEG-DL backbones start identical under the same seed', () => {
    const a = buildModel('small_cnn', { inputShape: shape, numClasses: 3, seed: 4 });
    const b = buildModel('small_cnn', { inputShape: shape, numClasses: 3, seed: 4, jpeg: { quality: 50 } });
    const wa = splitTrainableVariables(a).backbone.map((v) => Array.from(v.dataSync()));
    const sb = splitTrainableVariables(b);
    expect(sb.jpeg.map((v) => v.size)).toEqual([64, 64]); // luma + shared chroma: 128 parameters
    expect(sb.backbone.map((v) => Array.from(v.dataSync()))).toEqual(wa);
    a.dispose();
    b.dispose();
  });

  it('a step leaks no tensors; Adam moves the tables by ~lr on the first step; the task is learnt', async () => {
    const model = buildModel('small_cnn', { inputShape: shape, numClasses: 3, seed: 1, jpeg: { quality: 50 } });
    const cfg = defaultTrainConfig({ epochs: 3, batchSize: 16, lr: 0.05, jpegLr: 0.01, seed: 2, milestones: [] });
    const data = colourData(48);
    const { jpeg } = splitTrainableVariables(model);
    const q0 = jpeg.map((v) => Array.from(v.dataSync()));
    const trainer = new JointTrainer(model, cfg);
    const [{ x, y }] = [...data.batches(0, { batchSize: 16, seed: 2, augment: false })];
    tf.dispose(Object.values(trainer.step(x, y)));
    // First Adam step: |dq| = lr * |g| / (|g| + eps) <= lr, and = lr wherever the gradient is not tiny.
    const moves = jpeg.flatMap((v, k) => Array.from(v.dataSync()).map((q, i) => Math.abs(q - q0[k][i])));
    expect(Math.max(...moves)).toBeLessThanOrEqual(0.01 + 4e-5); // float32 steps up to 255 have ulp 1.5e-5
    expect(moves.filter((m) => Math.abs(m - 0.01) < 1e-4).length).toBeGreaterThan(32); // hard-quantised bins have ~zero gradient
    await assertNoTensorLeak(() => trainer.step(x, y), { label: 'joint step with JpegLayer' });
    tf.dispose([x, y]);
    trainer.dispose();
    const res = await trainModel({ model, data, config: cfg, progress: false });
    // The (easy) task is learnt: far below chance-level loss ln 3.
    expect(res.history[2].trainLoss).toBeLessThan(0.1 * Math.log(3));
    expect(res.history[2].trainAcc).toBeGreaterThan(0.9);
    const t = res.history[2].tables[0].weights;
    expect(t.map((w) => w.name.split('/').pop())).toEqual(['luma_q', 'chroma_q']);
    model.dispose();
  });
});

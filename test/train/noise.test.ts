// Gaussian noise augmentation (the base classifiers of randomised smoothing), read back exactly from
// one SGD step on a zero-initialised linear model: with batch 1, K classes, lr 1 and no momentum or
// decay, the label's weight column after the step is (1 - 1/K)·(the image the model was trained on).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { defaultTrainConfig, describeTraining, validateTrainConfig, type TrainConfig } from '../../src/train/config.ts';
import { parseAdversarialSpec, trainingMetadata } from '../../src/train/adversarial.ts';
import { JointTrainer } from '../../src/train/trainer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { randomImagesData } from '../attacks/helpers.ts';

const K = 10;
const side = 16;
const d = side * side;
const cfg = (o: Partial<TrainConfig> = {}) => defaultTrainConfig({ epochs: 1, batchSize: 1, lr: 1, momentum: 0, weightDecay: 0, seed: 7, metricsEvery: 1, ...o });

function linear(): tf.LayersModel {
  return tf.sequential({ layers: [tf.layers.flatten({ inputShape: [side, side, 1] }), tf.layers.dense({ units: K, kernelInitializer: 'zeros', biasInitializer: 'zeros' })] });
}

/** The image the model was trained on in each of `steps` successive batches (weights reset to zero after each, so every step reads exactly). */
function trainedOn(c: TrainConfig, x: tf.Tensor4D, label: number, steps = 1): Float32Array[] {
  const model = linear();
  const trainer = new JointTrainer(model, c);
  const y = tf.tensor1d([label], 'int32');
  const seen: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const out = trainer.step(x, y);
    tf.dispose([out.loss, out.correct]);
    const w = model.layers[1].getWeights()[0].arraySync() as number[][];
    seen.push(Float32Array.from(w, (row) => row[label] / (1 - 1 / K)));
    const zeros = [tf.zeros([d, K]), tf.zeros([K])];
    model.layers[1].setWeights(zeros);
    tf.dispose(zeros);
  }
  y.dispose();
  trainer.dispose();
  model.dispose();
  return seen;
}

describe('training with Gaussian noise augmentation', () => {
  const xData = randomImagesData(3, d);
  const x = tf.tensor4d(xData, [1, side, side, 1]);

  it('without noise the step sees the image itself', () => {
    const [seen] = trainedOn(cfg(), x, 2);
    seen.forEach((v, j) => expect(v).toBeCloseTo(xData[j], 5));
  });

  it('with noiseSd σ it sees x + N(0, σ²): mean 0, standard deviation σ, not clipped to [0,1]', () => {
    const sigma = 0.25;
    const [seen] = trainedOn(cfg({ noiseSd: sigma }), x, 2);
    const noise = Array.from(seen, (v, j) => v - xData[j]);
    const mean = noise.reduce((a, v) => a + v, 0) / d;
    const sd = Math.sqrt(noise.reduce((a, v) => a + (v - mean) ** 2, 0) / (d - 1));
    expect(Math.abs(mean)).toBeLessThan((4 * sigma) / Math.sqrt(d));
    expect(Math.abs(sd / sigma - 1)).toBeLessThan(0.2);
    expect(seen.some((v) => v < 0 || v > 1)).toBe(true);
  });

  it('the noise is fixed by (seed, epoch, batch): same seed same noise, another seed or batch other noise', () => {
    const [a0, a1] = trainedOn(cfg({ noiseSd: 0.5 }), x, 4, 2);
    const [b0, b1] = trainedOn(cfg({ noiseSd: 0.5 }), x, 4, 2);
    const [c0] = trainedOn(cfg({ noiseSd: 0.5, seed: 8 }), x, 4, 1);
    expect(Array.from(b0)).toEqual(Array.from(a0));
    expect(Array.from(b1)).toEqual(Array.from(a1));
    expect(Array.from(a1)).not.toEqual(Array.from(a0));
    expect(Array.from(c0)).not.toEqual(Array.from(a0));
  });

  it('does not leak tensors', async () => {
    const model = linear();
    const trainer = new JointTrainer(model, cfg({ noiseSd: 0.25 }));
    const y = tf.tensor1d([1], 'int32');
    await assertNoTensorLeak(() => {
      const o = trainer.step(x, y);
      return [o.loss, o.correct];
    }, { label: 'noisy training step' });
    y.dispose();
    trainer.dispose();
    model.dispose();
  });

  it('is described, and refuses a negative σ or adversarial training beside it', () => {
    expect(describeTraining(cfg({ noiseSd: 0.25 }))).toBe('Gaussian noise augmentation (sigma 0.25)');
    expect(describeTraining(cfg())).toBe('standard training');
    // What a trained model's metadata says (reports and the leaderboard read it).
    expect(trainingMetadata(undefined, 0.5)).toEqual({ training: 'Gaussian noise augmentation (sigma 0.5)', noiseSd: 0.5 });
    expect(trainingMetadata(undefined, 0)).toEqual({ training: 'standard training' });
    expect(() => validateTrainConfig(cfg({ noiseSd: -0.1 }))).toThrow(/noiseSd: must be a finite number >= 0/);
    expect(() => validateTrainConfig(cfg({ noiseSd: 0.25, adversarial: parseAdversarialSpec('pgd:eps=2/255') }))).toThrow(/noiseSd: .*cannot be combined with adversarial training/);
  });
});

import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultTrainConfig, type TrainConfig } from '../../src/train/config.ts';
import { evaluateAccuracy, evaluateCleanModes } from '../../src/train/evaluate.ts';
import { splitTrainableVariables } from '../../src/train/jpeg-params.ts';
import { crossEntropy, JointTrainer, trainModel, trainPaths } from '../../src/train/trainer.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { tinyEvalBatches, tinyModel, tinyTrainData, weightsOf } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cfg = (o: Partial<TrainConfig> = {}) =>
  defaultTrainConfig({ epochs: 4, batchSize: 16, lr: 0.05, jpegLr: 0.01, seed: 3, metricsEvery: 2, ...o });

describe('JointTrainer.step', () => {
  it('SGD+weight decay updates exactly the backbone, Adam (no decay) exactly the tables', () => {
    const model = tinyModel({ jpeg: true });
    const wd = 0.5; // large, so a decay wrongly applied to the tables would flip Adam's step direction
    const c = cfg({ weightDecay: wd, lr: 0.1, jpegLr: 0.01 });
    const { backbone, jpeg } = splitTrainableVariables(model);
    expect(jpeg.length).toBe(1);
    expect(jpeg[0].size).toBe(64);
    // Make some table gradients small and of the opposite sign to wd*q by perturbing the tables.
    tf.tidy(() => jpeg[0].assign(tf.add(jpeg[0], tf.randomUniform([8, 8], -0.5, 0.5, 'float32', 5))));
    const data = tinyTrainData(16);
    const [{ x, y }] = [...data.batches(0, { batchSize: 16, seed: 1, augment: false })];
    // Expected update from the same gradients, computed independently.
    const before = [...backbone, ...jpeg].map((v) => v.dataSync().slice());
    const { grads } = tf.variableGrads(() => crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y), [...backbone, ...jpeg]);
    const g = [...backbone, ...jpeg].map((v) => grads[v.name].dataSync().slice());
    tf.dispose(grads);
    const trainer = new JointTrainer(model, c);
    const bnBefore = model.weights.filter((w) => !w.trainable).map((w) => w.read().dataSync().slice());
    const out = trainer.step(x, y);
    tf.dispose([out.loss, out.correct, x, y]);
    backbone.forEach((v, i) => {
      const got = v.dataSync();
      for (let k = 0; k < got.length; k++) {
        const want = before[i][k] - 0.1 * (g[i][k] + wd * before[i][k]);
        expect(Math.abs(got[k] - want)).toBeLessThan(2e-5);
      }
    });
    const q = jpeg[0].dataSync();
    const gq = g[backbone.length];
    let opposite = 0;
    for (let k = 0; k < 64; k++) {
      const want = before[backbone.length][k] - (0.01 * gq[k]) / (Math.abs(gq[k]) + 1e-8);
      expect(Math.abs(q[k] - want)).toBeLessThan(1e-5);
      if (Math.sign(gq[k]) !== Math.sign(gq[k] + wd * before[backbone.length][k])) opposite++;
    }
    expect(opposite).toBeGreaterThan(0); // the test can tell decayed from undecayed tables
    // BatchNorm moving statistics were updated (training=true in the step).
    const bnAfter = model.weights.filter((w) => !w.trainable).map((w) => w.read().dataSync());
    expect(bnAfter.some((a, i) => a.some((v, k) => v !== bnBefore[i][k]))).toBe(true);
    trainer.dispose();
    model.dispose();
  });

  it('clamps the tables to [1e-5, 255] after each step', () => {
    const model = tinyModel({ jpeg: true });
    const { jpeg } = splitTrainableVariables(model);
    tf.tidy(() => jpeg[0].assign(tf.fill([8, 8], 300)));
    const trainer = new JointTrainer(model, cfg());
    expect(Math.max(...jpeg[0].dataSync())).toBe(255);
    tf.tidy(() => jpeg[0].assign(tf.fill([8, 8], 1e-9)));
    const [{ x, y }] = [...tinyTrainData(16).batches(0, { batchSize: 16, seed: 1, augment: false })];
    tf.dispose(Object.values(trainer.step(x, y)));
    expect(Math.min(...jpeg[0].dataSync())).toBeGreaterThanOrEqual(1e-5 * (1 - 1e-6));
    tf.dispose([x, y]);
    trainer.dispose();
    model.dispose();
  });

  it('a training step leaks no tensors (baseline and JPEG-DL)', async () => {
    for (const jpeg of [false, true]) {
      const model = tinyModel({ jpeg });
      const trainer = new JointTrainer(model, cfg());
      const [{ x, y }] = [...tinyTrainData(16).batches(0, { batchSize: 16, seed: 1, augment: true })];
      await assertNoTensorLeak(() => trainer.step(x, y), { label: `train step (jpeg=${jpeg})` });
      await assertNoTensorLeak(() => evaluateAccuracy(model, tinyEvalBatches()(), 'hard'), { label: 'evaluate' });
      tf.dispose([x, y]);
      trainer.dispose();
      model.dispose();
    }
  });
});

describe('trainModel', () => {
  it('loss decreases, tables move from their init, history holds tables and both clean modes', async () => {
    const model = tinyModel({ jpeg: true });
    const dir = join(tmp, 'learn');
    const res = await trainModel({ model, data: tinyTrainData(64), config: cfg({ epochs: 6 }), ...trainPaths(dir), evalData: tinyEvalBatches(), progress: false });
    expect(res.finished).toBe(true);
    const h = res.history;
    expect(h).toHaveLength(6);
    expect(h[5].trainLoss).toBeLessThan(h[0].trainLoss * 0.8);
    expect(h[5].testAcc!.soft).toBeGreaterThan(0.5); // 4 classes: chance is 0.25
    expect(h[5].testAcc!.hard).toBeTypeOf('number');
    const t0 = h[0].tables[0].weights[0].values;
    const t5 = h[5].tables[0].weights[0].values;
    expect(t0).toHaveLength(64);
    const moved = t5.reduce((s, v) => s + Math.abs(v - 4), 0) / 64;
    expect(moved).toBeGreaterThan(0.01);
    const onDisk = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'));
    expect(onDisk).toHaveLength(6);
    expect(existsSync(join(dir, 'checkpoint', 'tables.json'))).toBe(true);
    expect(readCheckpoint(join(dir, 'checkpoint')).state.epoch).toBe(6);
    model.dispose();
  });

  it('is deterministic: same seed => identical weights; other seed => different', async () => {
    const run = async (seed: number) => {
      const model = tinyModel({ jpeg: true });
      await trainModel({ model, data: tinyTrainData(32), config: cfg({ epochs: 2, seed }), progress: false });
      const w = weightsOf(model);
      model.dispose();
      return w;
    };
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('stop after k epochs + resume gives the same final weights, history and tables as an uninterrupted run', async () => {
    const config = cfg({ epochs: 5, milestones: [3, 4], jpegSchedule: 'step' });
    const full = tinyModel({ jpeg: true });
    const fullRes = await trainModel({ model: full, data: tinyTrainData(48), config, ...trainPaths(join(tmp, 'full')), progress: false });
    const dir = join(tmp, 'killed');
    const first = tinyModel({ jpeg: true });
    const part = await trainModel({ model: first, data: tinyTrainData(48), config, ...trainPaths(dir), progress: false, stopAfterEpochs: 2 });
    expect(part.finished).toBe(false);
    expect(part.epochsCompleted).toBe(2);
    first.dispose();
    // A fresh process would build the model anew (different init seed here, to prove the checkpoint wins).
    const resumed = tinyModel({ jpeg: true, seed: 77 });
    const res = await trainModel({ model: resumed, data: tinyTrainData(48), config, ...trainPaths(dir), resume: true, progress: false });
    expect(res.startEpoch).toBe(2);
    expect(res.finished).toBe(true);
    expect(weightsOf(resumed)).toEqual(weightsOf(full));
    expect(res.history.map((r) => r.trainLoss)).toEqual(fullRes.history.map((r) => r.trainLoss));
    // jpegSchedule 'step': the tables' Adam rate follows the backbone's milestones.
    [0.01, 0.01, 0.01, 0.001, 0.0001].forEach((v, i) => expect(res.history[i].jpegLr).toBeCloseTo(v, 12));
    [0.05, 0.05, 0.05, 0.005, 0.0005].forEach((v, i) => expect(res.history[i].lr).toBeCloseTo(v, 12));
    // A resume with a different recipe is refused before any work.
    await expect(trainModel({ model: resumed, data: tinyTrainData(48), config: { ...config, lr: 0.1 }, ...trainPaths(dir), resume: true, progress: false })).rejects.toThrow(/lr=0.05/);
    full.dispose();
    resumed.dispose();
  });

  it('baseline (no JPEG layer) trains with SGD only and evaluates in plain mode', async () => {
    const model = tinyModel({ jpeg: false });
    const res = await trainModel({ model, data: tinyTrainData(32), config: cfg({ epochs: 2 }), evalData: tinyEvalBatches(), progress: false });
    expect(res.history[0].jpegLr).toBeNull();
    expect(res.history[0].tables).toEqual([]);
    expect(Object.keys(res.history[1].testAcc!)).toEqual(['plain']);
    const modes = await evaluateCleanModes(model, tinyEvalBatches());
    expect(modes.plain).toBeGreaterThanOrEqual(0);
    model.dispose();
  });

  it('rejects bad arguments before training', async () => {
    const model = tinyModel({ jpeg: true });
    const data = tinyTrainData(16);
    await expect(trainModel({ model, data, config: cfg({ epochs: 0 }) })).rejects.toThrow(/epochs/);
    await expect(trainModel({ model, data, config: cfg({ lr: 0 }) })).rejects.toThrow(/lr/);
    await expect(trainModel({ model, data, config: cfg({ batchSize: 0 }) })).rejects.toThrow(/batchSize/);
    await expect(trainModel({ model, data: { ...data, size: 0 }, config: cfg() })).rejects.toThrow(/size/);
    await expect(trainModel({ model, data, config: cfg(), resume: true })).rejects.toThrow(/checkpointDir/);
    model.dispose();
  });
});

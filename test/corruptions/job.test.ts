import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCorruptionJob } from '../../src/corruptions/job.ts';
import { loadDataset, subset } from '../../src/data/index.ts';
import { unpackBits } from '../../src/eval/records.ts';
import { saveModel } from '../../src/io/model-io.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-corr-job-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('runCorruptionJob on a run directory', () => {
  it('uses the run\'s dataset as it was (its own seed) and --seed only for the subset and the noise', async () => {
    const run = join(tmp, 'run');
    const spec = { name: 'synthetic' as const, seed: 7, trainSize: 12, testSize: 30, imageSize: 16, numClasses: 4 };
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ run: { dataset: spec } }));
    const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [16, 16, 3] }), tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 0.05 }) })] });
    await saveModel(model, join(run, 'models', 'baseline'), { variant: 'baseline' });
    const res = await runCorruptionJob({ run, n: 20, seed: 5, corruptions: ['contrast'], severities: [1], out: join(tmp, 'out') });
    // The clean cell judged the run's test images (dataset seed 7), subset seeded by 5.
    const { test } = await loadDataset(spec);
    const data = subset(test, 20, 5);
    const want = Array.from(tf.tidy(() => tf.equal(tf.argMax(model.predict(tf.tensor4d(data.images, [20, 16, 16, 3])) as tf.Tensor2D, 1), tf.tensor1d(data.labels, 'int32')).dataSync()));
    const clean = res.records.find((r) => r.corruption === 'clean')!;
    expect(Array.from(unpackBits(clean.correctBits, 20))).toEqual(want);
    expect(clean.seed).toBe(5);
    model.dispose();
  });
});

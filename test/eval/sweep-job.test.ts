import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { fgsm } from '../../attacks/fgsm.ts';
import { buildModel } from '../../models/registry.ts';
import { backendInfo } from '../../src/backend.ts';
import { evalBatch } from '../../src/eval/batch.ts';
import { sweepJobRunner, type SweepJob } from '../../src/eval/sweep-job.ts';
import { batchNormFolding } from '../../src/inference/model.ts';
import { modelToMemory } from '../../src/io/model-io.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { asLogitsFn } from '../../src/types.ts';

// What a worker process runs, tested in this process: same results as the sweep's own evalBatch,
// no tensors left per job, clear errors.
describe('sweep job runner (worker side)', () => {
  it('evaluates a batch exactly as the sweep process does, switches JPEG modes, and leaks nothing per job', async () => {
    const model = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 3, seed: 2, jpeg: {} });
    const runner = await sweepJobRunner({ backend: backendInfo()!.name, foldBatchNorm: batchNormFolding(), models: [await modelToMemory(model)], attacks: ['fgsm', 'pgd'] });
    const x = tf.randomUniform([5, 8, 8, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 0, 1], 'int32');
    const job = (over: Partial<SweepJob>): SweepJob => ({ model: 0, mode: 'soft', attack: 0, options: { eps: 8 / 255 }, norm: 'linf', what: 'cell', x: x.dataSync() as Float32Array, shape: [5, 8, 8, 3], y: y.dataSync() as Int32Array, yDtype: 'int32', ...over });
    try {
      const here = evalBatch(asLogitsFn(model), x, y, 'linf', (xx, yy) => fgsm(model, xx, yy, { eps: 8 / 255 }), 'cell');
      const there = runner.run(job({}));
      expect(Array.from(there.correct)).toEqual(Array.from(here.correct));
      expect(Array.from(there.norms)).toEqual(Array.from(here.norms));
      for (const v of there.norms) expect(v).toBeLessThanOrEqual(8 / 255 + 1e-6);
      const clean = runner.run(job({ attack: -1 }));
      expect(Array.from(clean.norms)).toEqual([0, 0, 0, 0, 0]);
      runner.run(job({ attack: -1, mode: 'hard' }));
      const jpeg = model.layers.find((l) => l.getClassName() === 'JpegLayer') as unknown as { mode: string };
      expect(jpeg.mode).toBe('soft'); // the runner's copy switched, not this model
      await assertNoTensorLeak(() => { runner.run(job({ attack: 1, options: { eps: 4 / 255, steps: 2, seed: 3 } })); }, { label: 'worker job' });
      await assertNoTensorLeak(() => { runner.run(job({ gradientSteps: 2 })); }, { label: 'worker bench job' });
      expect(() => runner.run(job({ model: 3 }))).toThrow('cell: no model 3 in this sweep');
      expect(() => runner.run(job({ attack: 1, options: { eps: 4 / 255, steps: -1 } }))).toThrow(/steps/);
    } finally {
      runner.dispose();
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it('refuses an attack it cannot name', async () => {
    await expect(sweepJobRunner({ backend: backendInfo()!.name, foldBatchNorm: true, models: [], attacks: ['nope'] })).rejects.toThrow('unknown attack "nope"');
  });
});

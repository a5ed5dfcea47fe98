// Checks every randomised input defence must pass (randomised JPEG, random resize-and-pad): the EOT
// gradient is the mean of the single-draw gradients of the same stream; a sweep gives the same records
// whole or resumed; a worker process draws what the sweep process draws for a batch seed.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { objectiveGradient } from '../../attacks/gradient.ts';
import { backendInfo } from '../../src/backend.ts';
import { defended, parseDefenceSpec } from '../../src/defences/index.ts';
import { parseEpsilonList } from '../../src/eps.ts';
import { evalBatch } from '../../src/eval/batch.ts';
import type { CellRecord } from '../../src/eval/records.ts';
import { runSweep, type SweepAttack, type SweepModel } from '../../src/eval/sweep.ts';
import { sweepJobRunner } from '../../src/eval/sweep-job.ts';
import { batchNormFolding } from '../../src/inference/model.ts';
import { modelToMemory } from '../../src/io/model-io.ts';
import { reseedRandomLayers } from '../../src/layers/random.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { asLogitsFn, type Classifier } from '../../src/types.ts';

/** 8x8 RGB images in [0,1]. */
export const images = (n = 6, seed = 3) => tf.randomUniform([n, 8, 8, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
/** A linear head: an untrained CNN answers one class for every image, which nothing can fool. */
export const linear = () => tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 3] }), tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 0.2 }) })] });
export const linf = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** `spec` (ending in :draws=k) builds the averaged wrapper: repeat the batch, the defence's layer `className`, the model, the mean of the draws. */
export function expectAveragedLayout(spec: string, className: string): void {
  const model = linear();
  const avg = defended(model, parseDefenceSpec(spec));
  expect(avg.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'RepeatDraws', className, 'Sequential', 'MeanOfDraws']);
  avg.dispose();
  model.dispose();
}

/** The EOT gradient over k draws of `f` (a classifier over the randomised `model`) equals the mean of k single-draw gradients from the same seed, which differ. */
export function expectEotIsMeanOfSingles(model: tf.LayersModel, f: Classifier, k = 4): void {
  const x = images(4, 5);
  const y = tf.tensor1d([0, 1, 2, 3], 'int32');
  reseedRandomLayers(model, 9);
  const eot = objectiveGradient(asLogitsFn(f), x, y, { eotSamples: k });
  reseedRandomLayers(model, 9);
  const singles = Array.from({ length: k }, () => {
    const g = objectiveGradient(asLogitsFn(f), x, y);
    tf.dispose([g.objective, g.success]);
    return g.grad;
  });
  const mean = tf.tidy(() => tf.div(tf.addN(singles), k));
  expect(linf(eot.grad, mean)).toBeLessThan(1e-6);
  // Draws matter: two single-draw gradients are not the same.
  expect(linf(singles[0], singles[1])).toBeGreaterThan(1e-3);
  tf.dispose([x, y, eot.grad, eot.objective, eot.success, mean, ...singles]);
}

const sweepImages = () => images(7, 11);
const sweepLabels = () => tf.tensor1d([0, 1, 2, 3, 0, 1, 2], 'int32');

/**
 * Run `attack` after FGSM on the defended linear head, whole and resumed after FGSM alone; the records
 * must be equal and within budget. Returns the whole run's records for further checks.
 */
export async function expectSweepResumeSame(defend: (m: tf.LayersModel) => SweepModel & { model: tf.LayersModel }, attack: SweepAttack): Promise<CellRecord[]> {
  const epsilons = parseEpsilonList('4/255,16/255', '--eps', 'linf');
  const sweep = async (dir: string, attacks: SweepAttack[]) => {
    const model = linear();
    const d = defend(model);
    const [xx, yy] = [sweepImages(), sweepLabels()];
    try {
      return (await runSweep({ models: [d], attacks, epsilons, images: xx, labels: yy, batchSize: 3, seed: 5, outDir: dir, progressBar: false })).records;
    } finally {
      tf.dispose([xx, yy]);
      d.model.dispose();
      model.dispose();
    }
  };
  const root = mkdtempSync(join(tmpdir(), 'randomised-sweep-'));
  try {
    const whole = await sweep(join(root, 'whole'), [{ name: 'fgsm', params: {} }, attack]);
    await sweep(join(root, 'resumed'), [{ name: 'fgsm', params: {} }]);
    const resumed = await sweep(join(root, 'resumed'), [{ name: 'fgsm', params: {} }, attack]);
    const strip = (rs: CellRecord[]) => rs.map((r) => ({ model: r.model, mode: r.jpegMode, attack: r.attack, eps: r.threat.epsLabel, bits: r.correctBits, meanNorm: r.meanNorm, maxNorm: r.maxNorm }));
    expect(strip(resumed)).toEqual(strip(whole));
    for (const r of whole) expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-6);
    return whole;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** What the worker check crafts with. */
export type CraftOptions = { eps: number; steps: number; eotSamples: number; seed: number };

/** A worker process running `attackName` on the randomised `model` (in `mode`) gives what `craft` gives here for the same batch seed, and another seed gives other draws. */
export async function expectWorkerDrawsSame(model: tf.LayersModel, attackName: string, mode: string | null, craft: (x: tf.Tensor4D, y: tf.Tensor1D, options: CraftOptions) => tf.Tensor4D): Promise<void> {
  const runner = await sweepJobRunner({ backend: backendInfo()!.name, foldBatchNorm: batchNormFolding(), models: [await modelToMemory(model)], attacks: [attackName] });
  const [xx, yy] = [sweepImages(), sweepLabels()];
  const options: CraftOptions = { eps: 8 / 255, steps: 3, eotSamples: 2, seed: 17 };
  try {
    reseedRandomLayers(model, 123);
    // L2 sizes of the L-inf perturbations: they tell apart adversarial images crafted on other draws.
    const here = evalBatch(asLogitsFn(model), xx, yy, 'l2', (a, b) => craft(a, b, options), 'cell');
    const job = { model: 0, mode, attack: 0, options, noiseSeed: 123, norm: 'l2' as const, what: 'cell', x: xx.dataSync() as Float32Array, shape: xx.shape, y: yy.dataSync() as Int32Array, yDtype: 'int32' as const };
    const there = runner.run(job);
    expect(Array.from(there.correct)).toEqual(Array.from(here.correct));
    expect(Array.from(there.norms)).toEqual(Array.from(here.norms));
    const other = runner.run({ ...job, noiseSeed: 124 });
    expect(Array.from(other.norms)).not.toEqual(Array.from(here.norms));
    await assertNoTensorLeak(() => { runner.run({ ...job, noiseSeed: 124 }); }, { label: `randomised worker job (${attackName})` });
  } finally {
    runner.dispose();
    tf.dispose([xx, yy]);
  }
}

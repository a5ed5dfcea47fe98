import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensembleModel, getAttack } from '../../attacks/index.ts';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import { buildModel } from '../../models/registry.ts';
import { runSweep, type AttackFn, type SweepOptions, type SweepResult } from '../../src/eval/sweep.ts';
import { loadRecords, unpackBits, type CellRecord } from '../../src/eval/records.ts';
import { parseEpsilonList } from '../../src/eps.ts';
import { defaultTrainConfig } from '../../src/train/config.ts';
import { JointTrainer } from '../../src/train/trainer.ts';

// Two real models (a JPEG-DL one with soft and hard columns), the registry's attacks and BPDA:
// a sweep on worker processes must write the records a single-thread sweep writes.
const tmp = () => mkdtempSync(join(tmpdir(), 'jpegdl-psweep-'));
const EPS = parseEpsilonList('0,2/255,8/255');
const shape: [number, number, number] = [16, 16, 3];

function setup() {
  const baseline = buildModel('small_cnn', { inputShape: shape, numClasses: 4, seed: 1 });
  const jpeg = buildModel('small_cnn', { inputShape: shape, numClasses: 4, seed: 1, jpeg: {} });
  const images = tf.randomUniform([22, ...shape], 0, 1, 'float32', 5) as tf.Tensor4D;
  const labels = tf.tensor1d(Array.from({ length: 22 }, (_, i) => (i * 7) % 4), 'int32');
  // A few training steps so predictions depend on the image (an untrained net answers one class).
  for (const model of [baseline, jpeg]) {
    const trainer = new JointTrainer(model, defaultTrainConfig({ lr: 0.05, momentum: 0.9, weightDecay: 0 }));
    for (let i = 0; i < 15; i++) tf.dispose(Object.values(trainer.step(images, labels)));
    trainer.dispose();
  }
  const opts = (over: Partial<SweepOptions>): SweepOptions => ({
    models: [
      { name: 'baseline', variant: 'baseline', model: baseline },
      { name: 'jpeg-dl', variant: 'jpeg-dl', model: jpeg, jpegModes: ['soft', 'hard'] },
    ],
    attacks: [
      { name: 'fgsm' },
      { name: 'pgd', params: { steps: 3 } },
      { name: 'bpda-pgd', params: { steps: 2 }, fn: bpdaPgd as AttackFn, seeded: true },
      { name: 'square', params: { queries: 10 } },
      { name: 'fab', params: { steps: 3, targetClasses: 2 } },
      { name: 'cw-l2', params: { steps: 3, searchSteps: 2 } },
      { name: 'autoattack', params: { steps: 1, targetClasses: 1, queries: 2 } },
      // A shared minimal-norm search: one job per batch answers both eps.
      { name: 'hsja', params: { steps: 2, initEvals: 10 } },
      // Transfer: FGSM crafted on the JPEG-DL model in soft mode, evaluated on every column.
      { name: 'fgsm', params: { surrogate: 'jpeg-dl', surrogateMode: 'soft' } },
      // Transfer from the logit ensemble of both models (JPEG-DL in soft mode).
      { name: 'fgsm', params: { surrogate: 'baseline+jpeg-dl', surrogateMode: 'soft' } },
    ],
    epsilons: EPS, images, labels, batchSize: 6, seed: 7, outDir: tmp(), progressBar: false, ...over,
  });
  const dispose = () => { tf.dispose([images, labels]); baseline.dispose(); jpeg.dispose(); };
  return { opts, dispose, jpeg };
}

// A serial and a parallel sweep of ten attacks: about a minute alone, several when other jobs share
// the two cores; a timeout would leave a sweep running on the shared worker pool under the next test.
const LONG = 600_000;

const essence = (r: CellRecord) => ({ key: [r.model, r.jpegMode, r.attack, JSON.stringify(r.attackParams), r.threat.epsLabel], correct: r.correct, bits: r.correctBits, mean: r.meanNorm, max: r.maxNorm, sr: r.successRate, stages: JSON.stringify(r.stages), queries: JSON.stringify(r.queries) });

describe('runSweep with worker processes', () => {
  // One set of trained models for every test here (sweeps do not change weights).
  let opts: ReturnType<typeof setup>['opts'];
  let jpeg: tf.LayersModel;
  let dispose: () => void;
  beforeAll(() => ({ opts, jpeg, dispose } = setup()));
  afterAll(() => dispose());
  // The single-process sweep of every attack, run once and compared against by two tests.
  let serialRun: Promise<SweepResult> | undefined;
  const serialSweep = () => (serialRun ??= runSweep(opts({})));

  it('writes the same records, in the same order, as a single-thread sweep; restores modes; no tensors left', async () => {
    const serial = await serialSweep();
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const par = await runSweep(opts({ workers: 2, threadsPerWorker: 1, onProgress: (p) => progress.push(p.done) }));
    expect(tf.memory().numTensors).toBe(before);
    expect(par.ran).toBe(serial.ran);
    // The workers run every batch (this process only hands out jobs and writes records).
    // (HopSkipJump and C&W: one job per batch for both of their eps.)
    expect(par.batchesOnWorkers).toBe(3 * (1 + 8 * 2 + 2) * 4);
    // AutoAttack's stage counts come back from the workers too (compared in essence above, key order included).
    expect(par.records.filter((r) => r.stages).length).toBe(3 * 2);
    // Square's per-image query traces too (three series x two eps > 0).
    expect(par.records.filter((r) => r.queries).length).toBe(3 * 2);
    expect(serial.batchesOnWorkers).toBe(0);
    expect(par.records.map(essence)).toEqual(serial.records.map(essence));
    // the file itself, line by line (timings aside)
    const fileOf = (p: string) => loadRecords(p).records.map(essence);
    expect(fileOf(par.recordsPath)).toEqual(fileOf(serial.recordsPath));
    // not vacuous: attacks change outcomes, and the hard column differs from the soft one somewhere
    expect(new Set(par.records.map((r) => r.correct)).size).toBeGreaterThan(3);
    expect(progress.at(-1)).toBe(3 * (1 + 10 * 2) * 4); // 3 series x (clean + 10 attacks x 2 eps > 0) x 4 batches
    const modes = jpeg.layers.filter((l) => l.getClassName() === 'JpegLayer').map((l) => (l as unknown as { mode: string }).mode);
    expect(modes).toEqual(['soft']);
  }, LONG);

  it('transfer cells: images crafted on the surrogate in its mode, judged by each column (the same model in hard mode included)', async () => {
    const serial = await serialSweep();
    const [images, labels] = [opts({}).images, opts({}).labels];
    const layers = jpeg.layers.filter((l) => l.getClassName() === 'JpegLayer') as unknown as { mode: string }[];
    const setMode = (m: string) => layers.forEach((l) => (l.mode = m));
    const transfer = serial.records.filter((r) => r.attackParams.surrogate === 'jpeg-dl');
    expect(transfer.map((r) => `${r.model} [${r.jpegMode}] ${r.threat.epsLabel}`)).toEqual(['baseline [null] 0', 'baseline [null] 2/255', 'baseline [null] 8/255', 'jpeg-dl [soft] 0', 'jpeg-dl [soft] 2/255', 'jpeg-dl [soft] 8/255', 'jpeg-dl [hard] 0', 'jpeg-dl [hard] 2/255', 'jpeg-dl [hard] 8/255']);
    for (const e of EPS.filter((v) => v.value > 0)) {
      // FGSM treats every image alone, so one batch of all images gives the sweep's crafted images.
      setMode('soft');
      const adv = getAttack('fgsm').run(jpeg, images, labels, { eps: e.value });
      for (const r of transfer.filter((t) => t.threat.epsLabel === e.label)) {
        const judge = r.model === 'baseline' ? opts({}).models[0].model as tf.LayersModel : jpeg;
        setMode(r.jpegMode ?? 'soft');
        const pred = tf.tidy(() => Array.from((judge.predict(adv) as tf.Tensor).argMax(-1).dataSync()));
        const want = pred.map((p, i) => (p === labels.dataSync()[i] ? 1 : 0));
        expect(Array.from(unpackBits(r.correctBits, r.n))).toEqual(want);
      }
      setMode('soft');
      adv.dispose();
    }
    // The ensemble surrogate: FGSM on the mean logits of the baseline and JPEG-DL (soft), judged by each column.
    const both = serial.records.filter((r) => r.attackParams.surrogate === 'baseline+jpeg-dl');
    expect(both.length).toBe(9);
    for (const e of EPS.filter((v) => v.value > 0)) {
      setMode('soft');
      const adv = getAttack('fgsm').run(ensembleModel([opts({}).models[0].model, jpeg]), images, labels, { eps: e.value });
      for (const r of both.filter((t) => t.threat.epsLabel === e.label)) {
        const judge = r.model === 'baseline' ? opts({}).models[0].model as tf.LayersModel : jpeg;
        setMode(r.jpegMode ?? 'soft');
        const pred = tf.tidy(() => Array.from((judge.predict(adv) as tf.Tensor).argMax(-1).dataSync()));
        expect(Array.from(unpackBits(r.correctBits, r.n))).toEqual(pred.map((p, i) => (p === labels.dataSync()[i] ? 1 : 0)));
      }
      setMode('soft');
      adv.dispose();
    }
    // On its own soft column the transfer is the white-box FGSM; the hard column judges other images.
    const white = serial.records.filter((r) => r.attack === 'fgsm' && !r.attackParams.surrogate);
    for (const t of transfer.filter((r) => r.jpegMode === 'soft')) expect(t.correctBits).toBe(white.find((w) => w.jpegMode === 'soft' && w.threat.epsLabel === t.threat.epsLabel)!.correctBits);
  }, LONG);

  it('resumes a sweep another worker count started, computing only the missing cells', async () => {
    const outDir = tmp();
    const full = await serialSweep();
    // First pass: one attack, single thread; second pass: all attacks, two workers.
    const first = await runSweep(opts({ outDir, attacks: [{ name: 'fgsm' }] }));
    const second = await runSweep(opts({ outDir, workers: 2, threadsPerWorker: 1 }));
    expect(second.skipped).toBe(first.ran);
    expect(second.ran).toBe(full.ran - first.ran);
    expect(second.records.map(essence)).toEqual(full.records.map(essence));
    expect(second.batchesOnWorkers).toBeGreaterThan(0);
  }, LONG);

  it('stops on the first failing batch with its error, keeping the cells finished before it', async () => {
    const outDir = tmp();
    await expect(runSweep(opts({ outDir, workers: 2, threadsPerWorker: 1, attacks: [{ name: 'fgsm' }, { name: 'pgd', params: { steps: -1 } }] }))).rejects.toThrow(/steps/);
    const kept = loadRecords(join(outDir, 'records.jsonl')).records;
    // Every cell before the failing one (pgd at the first eps > 0 of the first series) is written.
    expect(kept.map((r) => `${r.attack} ${r.threat.epsLabel}`)).toEqual(['clean 0', 'fgsm 0', 'fgsm 2/255', 'fgsm 8/255', 'pgd 0']);
  });

  it('refuses what cannot be sent to a worker process, before writing anything', async () => {
    const fn = (x: tf.Tensor4D) => tf.tidy(() => x.reshape([x.shape[0], -1]).slice([0, 0], [-1, 4]) as tf.Tensor2D);
    const custom: AttackFn = (m, x) => x.clone();
    const cases: [Partial<SweepOptions>, RegExp][] = [
      [{ models: [{ name: 'f', variant: 'baseline', model: fn }], attacks: [{ name: 'fgsm' }] }, /model "f" is a function/],
      [{ attacks: [{ name: 'mine', fn: custom }] }, /"mine" is not one of fgsm, pgd.*bpda-pgd or has a custom function/],
      [{ attacks: [{ name: 'fgsm', fn: custom }] }, /"fgsm" is not one of .* or has a custom function/],
      [{ models: [{ name: 'j', variant: 'jpeg-dl', model: buildModel('small_cnn', { inputShape: shape, numClasses: 4 }), jpegModes: ['soft'], setJpegMode: () => {} }], attacks: [{ name: 'fgsm' }] }, /custom setJpegMode/],
    ];
    for (const [over, msg] of cases) {
      const outDir = tmp();
      await expect(runSweep(opts({ ...over, outDir, workers: 2 }))).rejects.toThrow(msg);
      expect(() => readFileSync(join(outDir, 'records.jsonl'))).toThrow();
    }
    await expect(runSweep(opts({ workers: 0 }))).rejects.toThrow('workers must be a positive integer, got 0');
    await expect(runSweep(opts({ workers: 2, threadsPerWorker: 1.5 }))).rejects.toThrow('threadsPerWorker must be a positive integer, got 1.5');
    // Refusing the custom 'fgsm' left the registry's own FGSM in place.
    expect(getAttack('fgsm').run).not.toBe(custom);
  });
});

/** A layer the worker processes do not know (registered in this process only). */
class TestOnlyScale extends tf.layers.Layer {
  static className = 'TestOnlyScale';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 1.5));
  }
}
tf.serialization.registerClass(TestOnlyScale);

describe('runSweep when worker processes cannot start', () => {
  it('warns and goes on in this process, with the records a single-process sweep writes', async () => {
    const inp = tf.input({ shape });
    const h = new TestOnlyScale().apply(tf.layers.flatten().apply(inp)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(h) as tf.SymbolicTensor });
    const images = tf.randomUniform([12, ...shape], 0, 1, 'float32', 9) as tf.Tensor4D;
    const labels = tf.tidy(() => (model.predict(images) as tf.Tensor2D).argMax(-1).toInt()) as tf.Tensor1D;
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => { warnings.push(m); };
    try {
      const o = (over: Partial<SweepOptions>): SweepOptions => ({ models: [{ name: 'custom', variant: 'baseline', model }], attacks: [{ name: 'fgsm' }], epsilons: EPS, images, labels, batchSize: 5, seed: 1, outDir: tmp(), progressBar: false, ...over });
      const one = await runSweep(o({}));
      const two = await runSweep(o({ workers: 2, threadsPerWorker: 1 }));
      // The sweep does not wait for its workers: the warning may come after it has finished here.
      await vi.waitFor(() => expect(warnings).toHaveLength(1), { timeout: 30_000, interval: 100 });
      expect(warnings[0]).toMatch(/^runSweep: worker processes could not start \(.*TestOnlyScale.*\); the sweep runs in this process$/);
      expect(two.records.map(essence)).toEqual(one.records.map(essence));
      expect(new Set(one.records.map((r) => r.correct)).size).toBeGreaterThan(1);
    } finally {
      console.warn = warn;
      tf.dispose([images, labels]);
      model.dispose();
    }
  });
});

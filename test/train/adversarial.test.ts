import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPgd } from '../../attacks/pgd_core.ts';
import {
  adversarialCount,
  adversarialSeed,
  craftPgdBatch,
  craftTrades,
  describeAdversarial,
  klDivergence,
  parseAdversarialSpec,
  robustAccuracy,
  tradesLoss,
  type AdversarialTrainingConfig,
} from '../../src/train/adversarial.ts';
import { defaultTrainConfig, validateTrainConfig, type TrainConfig } from '../../src/train/config.ts';
import { crossEntropy, JointTrainer, trainModel, trainPaths } from '../../src/train/trainer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { tinyEvalBatches, tinyModel, tinyTrainData, weightsOf } from './fixtures.ts';
import { l1MaxDrop } from '../attacks/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-adv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const D = 16; // 4x4x1 images

/** A two-class linear model in the layers API (no BatchNorm), seeded. */
function linearLayersModel(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 1] });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 1 }), biasInitializer: 'zeros' }).apply(flat) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Images away from the box edges (0.35..0.65) and alternating labels, seeded. */
function interiorBatch(n: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D; xs: Float32Array; labels: number[] } {
  const xs = Float32Array.from(tf.tidy(() => tf.randomUniform([n * D], 0.35, 0.65, 'float32', seed).dataSync()));
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  return { x: tf.tensor4d(xs, [n, 4, 4, 1]), y: tf.tensor1d(labels, 'int32'), xs, labels };
}

/**
 * The exact L-inf worst case of the cross-entropy of a two-class linear model (kernel W [D,2]): the CE
 * falls with the margin (w_y - w_o)·x, so each pixel moves eps against sign(w_y - w_o).
 */
function linfWorstCase(model: tf.LayersModel, xs: Float32Array, labels: number[], eps: number): Float32Array {
  const W = model.layers[2].getWeights()[0].dataSync();
  const out = new Float32Array(xs.length);
  labels.forEach((yl, i) => {
    for (let p = 0; p < D; p++) {
      const d = W[p * 2 + yl] - W[p * 2 + (1 - yl)];
      out[i * D + p] = Math.fround(xs[i * D + p] - eps * Math.sign(d));
    }
  });
  return out;
}

const inference = (m: tf.LayersModel) => (t: tf.Tensor4D) => m.apply(t, { training: false }) as tf.Tensor2D;

describe('parseAdversarialSpec', () => {
  it('fills each method\'s documented defaults and keeps the eps text', () => {
    const pgd = parseAdversarialSpec('pgd:eps=8/255');
    expect(pgd).toEqual({ method: 'pgd', norm: 'linf', eps: 8 / 255, epsLabel: '8/255', steps: 10, stepSize: (2.5 * 8) / 255 / 10, ratio: 1, beta: 6 });
    // Madry's rule follows the step count when only steps is given.
    expect(parseAdversarialSpec('pgd:eps=8/255,steps=7').stepSize).toBeCloseTo((2.5 * 8) / 255 / 7, 12);
    expect(parseAdversarialSpec('pgd:eps=8/255,steps=7,stepSize=2/255').stepSize).toBeCloseTo(2 / 255, 12);
    const fast = parseAdversarialSpec('fgsm-rs:eps=8/255');
    expect([fast.steps, fast.stepSize]).toEqual([1, 1.25 * (8 / 255)]);
    const trades = parseAdversarialSpec('trades:eps=0.031,beta=1');
    expect([trades.steps, trades.stepSize, trades.beta]).toEqual([10, 0.031 / 4, 1]);
    const l2 = parseAdversarialSpec('pgd:eps=1.5,norm=l2,ratio=0.5');
    expect([l2.norm, l2.eps, l2.ratio]).toEqual(['l2', 1.5, 0.5]);
    expect(describeAdversarial(pgd)).toBe('PGD-10 adversarial training, L-inf eps 8/255 (step 0.00784)');
    expect(describeAdversarial(l2)).toContain('50% of each batch adversarial');
    expect(describeAdversarial(trades)).toContain('TRADES (beta 1');
  });

  it('refuses bad specs with a message naming the argument and the problem', () => {
    const bad: [string, RegExp][] = [
      ['', /--adversarial: empty spec/],
      ['madry:eps=8/255', /unknown method "madry"; expected one of pgd, fgsm-rs, trades/],
      ['pgd', /eps is required/],
      ['pgd:eps=8', /did you mean 8\/255/],
      ['pgd:eps=0', /eps must be > 0/],
      ['pgd:eps=8/255,foo=1', /unknown option "foo"/],
      ['pgd:eps=8/255,steps', /"steps" is not key=value/],
      ['pgd:eps=8/255,steps=0', /steps must be an integer >= 1/],
      ['pgd:eps=8/255,steps=x', /steps is not a number: "x"/],
      ['fgsm-rs:eps=8/255,steps=3', /fgsm-rs takes exactly one step/],
      ['pgd:eps=8/255,ratio=0', /ratio must be in \(0, 1\]/],
      ['pgd:eps=8/255,ratio=1.5', /ratio must be in \(0, 1\]/],
      ['trades:eps=8/255,ratio=0.5', /ratio applies to pgd and fgsm-rs only/],
      ['trades:eps=8/255,beta=-1', /beta must be >= 0/],
      ['pgd:eps=8/255,norm=l0', /norm must be linf, l2 or l1/],
      ['pgd:eps=8/255,stepSize=-1', /stepSize/],
    ];
    for (const [spec, msg] of bad) expect(() => parseAdversarialSpec(spec), spec).toThrow(msg);
  });

  it('validateTrainConfig checks the adversarial part too', () => {
    const c = defaultTrainConfig({ adversarial: { ...parseAdversarialSpec('pgd:eps=0.1'), steps: 2.5 } });
    expect(() => validateTrainConfig(c)).toThrow(/adversarial: steps must be an integer/);
  });
});

describe('craftPgdBatch', () => {
  it('PGD reaches the exact L-inf worst case of a linear model, inside the budget', () => {
    const model = linearLayersModel(3);
    const { x, y, xs, labels } = interiorBatch(8, 11);
    const eps = 0.05;
    // 10 steps of 0.25·eps cover the 2·eps from any random start to the far corner.
    const c = parseAdversarialSpec(`pgd:eps=${eps}`);
    const adv = craftPgdBatch(inference(model), x, y, c, 5);
    const got = adv.dataSync();
    const want = linfWorstCase(model, xs, labels, eps);
    for (let i = 0; i < got.length; i++) {
      expect(Math.abs(got[i] - xs[i])).toBeLessThanOrEqual(eps + 1e-7);
      expect(got[i]).toBeCloseTo(want[i], 6);
    }
    tf.dispose([adv, x, y]);
    model.dispose();
  });

  it('FGSM-RS moves every pixel between 0.25·eps and eps towards the worst case; seeded', () => {
    const model = linearLayersModel(4);
    const { x, y, xs, labels } = interiorBatch(8, 12);
    const eps = 0.08;
    const c = parseAdversarialSpec(`fgsm-rs:eps=${eps}`);
    const adv = craftPgdBatch(inference(model), x, y, c, 9);
    const got = adv.dataSync();
    const worst = linfWorstCase(model, xs, labels, eps);
    let interior = 0;
    for (let i = 0; i < got.length; i++) {
      const dir = Math.sign(worst[i] - xs[i]);
      const along = (got[i] - xs[i]) * dir;
      // From a start in [-eps, eps], a 1.25·eps step towards the worst case ends at >= 0.25·eps, clipped at eps.
      expect(along).toBeGreaterThanOrEqual(0.25 * eps - 1e-6);
      expect(along).toBeLessThanOrEqual(eps + 1e-6);
      if (along < eps - 1e-4) interior++;
    }
    expect(interior).toBeGreaterThan(0); // the random start matters: not every pixel ends at the corner
    // Same seed: same images; another seed: other images.
    const again = craftPgdBatch(inference(model), x, y, c, 9);
    const other = craftPgdBatch(inference(model), x, y, c, 10);
    expect(Array.from(again.dataSync())).toEqual(Array.from(got));
    expect(Array.from(other.dataSync())).not.toEqual(Array.from(got));
    tf.dispose([adv, again, other, x, y]);
    model.dispose();
  });

  it('ratio replaces the first round(ratio·n) images and leaves the rest bit for bit', () => {
    const model = linearLayersModel(5);
    const { x, y, xs } = interiorBatch(8, 13);
    const c = parseAdversarialSpec('pgd:eps=0.05,norm=linf,ratio=0.4,steps=3');
    expect(adversarialCount(c, 8)).toBe(3);
    expect(adversarialCount(c, 1)).toBe(1); // never a batch with no adversarial image
    const adv = craftPgdBatch(inference(model), x, y, c, 1);
    const got = adv.dataSync();
    // The adversarial part is exactly what PGD gives on those images alone.
    const alone = runPgd('linf', inference(model), x.slice(0, 3), y.slice(0, 3), { eps: 0.05, steps: 3, stepSize: c.stepSize, randomStart: true, seed: 1 });
    expect(Array.from(got.slice(0, 3 * D))).toEqual(Array.from(alone.dataSync()));
    expect(Array.from(got.slice(3 * D))).toEqual(Array.from(xs.slice(3 * D)));
    tf.dispose([adv, alone, x, y]);
    model.dispose();
  });

  it('L2: the perturbation stays in the ball and in [0,1] and points to the linear worst case', () => {
    const model = linearLayersModel(6);
    const { x, y, xs, labels } = interiorBatch(6, 14);
    const eps = 0.3;
    const c = parseAdversarialSpec(`pgd:eps=${eps},norm=l2,steps=20,stepSize=0.1`);
    const got = craftPgdBatch(inference(model), x, y, c, 2).dataSync();
    const W = model.layers[2].getWeights()[0].dataSync();
    labels.forEach((yl, i) => {
      let n2 = 0;
      let dot = 0;
      let dn = 0;
      for (let p = 0; p < D; p++) {
        const delta = got[i * D + p] - xs[i * D + p];
        const d = W[p * 2 + yl] - W[p * 2 + (1 - yl)];
        n2 += delta * delta;
        dot -= delta * d;
        dn += d * d;
        expect(got[i * D + p]).toBeGreaterThanOrEqual(0);
        expect(got[i * D + p]).toBeLessThanOrEqual(1);
      }
      expect(Math.sqrt(n2)).toBeLessThanOrEqual(eps + 1e-6);
      // Cosine with the worst-case direction -(w_y - w_o): each step on the sphere cuts the angle's tangent by 1 + step/eps.
      expect(dot / (Math.sqrt(n2) * Math.sqrt(dn))).toBeGreaterThan(0.99);
    });
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('L1 adversarial training (SLIDE steps)', () => {
  it('parses L1 budgets above 1, and PGD-AT crafts inside the L1 ball and box, at least half way to the exact linear optimum', () => {
    const c = parseAdversarialSpec('pgd:eps=2,norm=l1,steps=20');
    expect([c.norm, c.eps, c.epsLabel]).toEqual(['l1', 2, '2']);
    expect(describeAdversarial(c)).toBe('PGD-20 adversarial training, L1 eps 2 (step 0.25)');
    const model = linearLayersModel(6);
    const { x, y, xs, labels } = interiorBatch(8, 15);
    const got = craftPgdBatch(inference(model), x, y, c, 3).dataSync();
    const W = model.layers[2].getWeights()[0].dataSync();
    labels.forEach((yl, i) => {
      const v = Array.from({ length: D }, (_, p) => W[p * 2 + yl] - W[p * 2 + (1 - yl)]);
      let l1 = 0;
      let drop = 0;
      for (let p = 0; p < D; p++) {
        const delta = got[i * D + p] - xs[i * D + p];
        l1 += Math.abs(delta);
        drop -= delta * v[p];
        expect(got[i * D + p] >= 0 && got[i * D + p] <= 1).toBe(true);
      }
      expect(l1).toBeLessThanOrEqual(2 + 1e-6);
      // The margin of y over the other class falls by at most, and at least half of, the exact L1 optimum (fractional knapsack).
      const best = l1MaxDrop(v, xs.subarray(i * D, (i + 1) * D), 2);
      expect(drop).toBeLessThanOrEqual(best + 1e-4);
      expect(drop).toBeGreaterThan(0.5 * best); // measured 0.53-0.93: SLIDE moves one of these 16 pixels per step
    });
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('TRADES', () => {
  it('klDivergence matches the closed form, is >= 0 and 0 on equal logits', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -5, max: 5, noNaN: true }), { minLength: 6, maxLength: 6 }), fc.array(fc.float({ min: -5, max: 5, noNaN: true }), { minLength: 6, maxLength: 6 }), (a, b) => {
        const sm = (v: number[]) => {
          const m = Math.max(...v);
          const e = v.map((t) => Math.exp(t - m));
          const s = e.reduce((p, q) => p + q, 0);
          return e.map((t) => t / s);
        };
        const [pa, pb] = [sm(a.slice(0, 3)), sm(b.slice(0, 3))];
        const want = pa.reduce((s, p, i) => s + p * Math.log(p / pb[i]), 0);
        const kl = tf.tidy(() => klDivergence(tf.tensor2d([a.slice(0, 3), a.slice(0, 3)]), tf.tensor2d([b.slice(0, 3), a.slice(0, 3)])).arraySync());
        expect(kl[0]).toBeGreaterThanOrEqual(-1e-6);
        expect(kl[0]).toBeCloseTo(want, 4);
        expect(Math.abs(kl[1])).toBeLessThan(1e-6);
      }),
      { numRuns: 50, seed: 1 },
    );
  });

  it('the loss is CE(clean) + beta·mean KL, and equals the cross-entropy at beta 0', () => {
    const clean = tf.tensor2d([[2, 0, -1], [0.5, 0.2, 0.1]]);
    const adv = tf.tensor2d([[1, 1, -1], [0, 1, 0]]);
    const y = tf.tensor1d([0, 2], 'int32');
    const ce = crossEntropy(clean, y).dataSync()[0];
    const kl = klDivergence(clean, adv).dataSync();
    expect(tradesLoss(clean, adv, y, 0).dataSync()[0]).toBeCloseTo(ce, 6);
    expect(tradesLoss(clean, adv, y, 6).dataSync()[0]).toBeCloseTo(ce + 6 * ((kl[0] + kl[1]) / 2), 5);
    tf.dispose([clean, adv, y]);
  });

  it('the inner maximisation stays in the budget and raises the KL far above its start', () => {
    const model = tinyModel({ jpeg: false, seed: 3 });
    const { x } = { x: tf.tidy(() => tf.randomUniform([6, 8, 8, 1], 0, 1, 'float32', 4)) as tf.Tensor4D };
    for (const norm of ['linf', 'l2', 'l1'] as const) {
      const eps = norm === 'linf' ? 0.1 : norm === 'l2' ? 0.8 : 4;
      const c = parseAdversarialSpec(`trades:eps=${eps},norm=${norm}`);
      const zero = parseAdversarialSpec(`trades:eps=${eps},norm=${norm},steps=1,stepSize=1e-9`);
      const adv = craftTrades(inference(model), x, c, 7);
      const start = craftTrades(inference(model), x, zero, 7);
      const [klAdv, klStart, dist] = tf.tidy(() => {
        const f = inference(model);
        const delta = tf.sub(adv, x);
        const d = norm === 'linf' ? tf.max(tf.abs(delta), [1, 2, 3]) : norm === 'l2' ? tf.sqrt(tf.sum(tf.square(delta), [1, 2, 3])) : tf.sum(tf.abs(delta), [1, 2, 3]);
        return [klDivergence(f(x), f(adv)).arraySync(), klDivergence(f(x), f(start)).arraySync(), d.arraySync()] as number[][];
      });
      for (let i = 0; i < 6; i++) {
        expect(dist[i]).toBeLessThanOrEqual(eps + 1e-6);
        expect(klAdv[i]).toBeGreaterThan(10 * klStart[i] + 1e-6);
      }
      expect(Math.min(...adv.dataSync())).toBeGreaterThanOrEqual(0);
      expect(Math.max(...adv.dataSync())).toBeLessThanOrEqual(1);
      tf.dispose([adv, start]);
    }
    x.dispose();
    model.dispose();
  });
});

describe('robustAccuracy', () => {
  it('on a linear model counts exactly the images whose margin survives the L-inf worst case', async () => {
    const model = linearLayersModel(31);
    const { x, y, xs, labels } = interiorBatch(40, 32);
    const W = model.layers[2].getWeights()[0].dataSync();
    // Centre the logits on the images' mid-grey so margins are spread around 0.
    const bias = [0, 1].map((k) => -0.5 * Array.from({ length: D }, (_, p) => W[p * 2 + k]).reduce((a, v) => a + v, 0));
    model.layers[2].setWeights([model.layers[2].getWeights()[0], tf.tensor1d(bias)]);
    const logits = tf.tidy(() => (model.predict(x) as tf.Tensor2D).arraySync());
    const eps = 0.02;
    // Margin at the worst case: m(x) - eps·||w_y - w_o||_1 (no pixel reaches the box at 0.35..0.65).
    const expected = labels.filter((yl, i) => {
      let l1 = 0;
      for (let p = 0; p < D; p++) l1 += Math.abs(W[p * 2 + yl] - W[p * 2 + (1 - yl)]);
      return logits[i][yl] - logits[i][1 - yl] - eps * l1 > 1e-4;
    }).length;
    const clean = labels.filter((yl, i) => logits[i][yl] > logits[i][1 - yl]).length;
    expect(expected).toBeLessThan(clean); // the budget matters for some images
    expect(expected).toBeGreaterThan(0); // and not for all
    const batches = function* () {
      for (let s = 0; s < 40; s += 16) yield { x: tf.tensor4d(xs.slice(s * D, Math.min(40, s + 16) * D), [Math.min(16, 40 - s), 4, 4, 1]), y: tf.tensor1d(labels.slice(s, s + 16), 'int32') };
    };
    const r = await robustAccuracy(model, batches(), parseAdversarialSpec(`pgd:eps=${eps}`));
    expect(r).toEqual({ accuracy: expected / 40, correct: expected, total: 40 });
    await assertNoTensorLeak(() => robustAccuracy(model, batches(), parseAdversarialSpec(`pgd:eps=${eps}`), { steps: 2 }), { label: 'robustAccuracy' });
    await expect(robustAccuracy(model, [], parseAdversarialSpec('pgd:eps=0.1'))).rejects.toThrow(/yielded no images/);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('bestModelDir keeps the epoch of highest robust accuracy (early stopping), also across a resume', async () => {
    const config = advCfg('pgd:eps=0.15,steps=2', { epochs: 4, lr: 0.2 });
    const dir = join(tmp, 'best');
    const common = { data: tinyTrainData(32), config, progress: false, robustEvalData: tinyEvalBatches(24, 3, 12), robustEvalSteps: 3, ...trainPaths(dir), bestModelDir: join(dir, 'model-best'), bestModelMeta: { variant: 'jpeg-dl' } };
    // No stand-in JPEG layer here: the saved model is loaded back, and only real layers deserialise.
    const first = tinyModel({ jpeg: false, seed: 8 });
    await trainModel({ model: first, ...common, stopAfterEpochs: 2 });
    first.dispose();
    const model = tinyModel({ jpeg: false, seed: 8 });
    const res = await trainModel({ model, ...common, resume: true });
    const accs = res.history.map((h) => h.testRobustAcc!.accuracy);
    const bestEpoch = accs.indexOf(Math.max(...accs)) + 1;
    // lr 0.2 makes this recipe worse after a while (seen: 50% then 25%), so the best epoch is not the last
    // and, with the kill after epoch 2, was saved before the resume.
    expect(bestEpoch).toBeLessThan(3);
    const { loadModel, loadModelMetadata } = await import('../../src/io/model-io.ts');
    const meta = loadModelMetadata(join(dir, 'model-best'));
    expect(meta).toMatchObject({ variant: 'jpeg-dl', bestEpoch, testRobustAcc: res.history[bestEpoch - 1].testRobustAcc });
    // The saved weights are that epoch's: measuring them again gives its accuracy.
    const best = await loadModel(join(dir, 'model-best'));
    expect((await robustAccuracy(best, tinyEvalBatches(24, 3, 12)(), config.adversarial!, { steps: 3, seed: config.seed })).accuracy).toBe(accs[bestEpoch - 1]);
    best.dispose();
    model.dispose();
  });

  it('trainModel records it after every epoch for adversarial training only', async () => {
    const model = tinyModel({ jpeg: true, seed: 4 });
    const logs: string[] = [];
    const config = advCfg('pgd:eps=4/255,steps=2', { epochs: 2 });
    const res = await trainModel({ model, data: tinyTrainData(32), config, progress: false, robustEvalData: tinyEvalBatches(24, 3, 12), robustEvalSteps: 3, log: (l) => logs.push(l) });
    expect(res.history.map((h) => h.testRobustAcc)).toEqual([
      { attack: 'pgd-3', epsLabel: '4/255', n: 24, accuracy: expect.any(Number) },
      { attack: 'pgd-3', epsLabel: '4/255', n: 24, accuracy: expect.any(Number) },
    ]);
    // The same figure as measuring the final model directly (same fixed starts).
    const direct = await robustAccuracy(model, tinyEvalBatches(24, 3, 12)(), config.adversarial!, { steps: 3, seed: config.seed });
    expect(res.history[1].testRobustAcc!.accuracy).toBe(direct.accuracy);
    expect(logs.some((l) => /robust \(pgd-3 at 4\/255\) \d\.\d{4}/.test(l))).toBe(true);
    await expect(trainModel({ model, data: tinyTrainData(32), config, progress: false, bestModelDir: join(tmp, 'x') })).rejects.toThrow(/bestModelDir: needs robustEvalData/);
    await expect(trainModel({ model, data: tinyTrainData(32), config: { ...config, adversarial: undefined }, progress: false, robustEvalData: tinyEvalBatches(8) })).rejects.toThrow(/robustEvalData: robust accuracy during training needs config.adversarial/);
    await expect(trainModel({ model, data: tinyTrainData(32), config, progress: false, robustEvalSteps: 0 })).rejects.toThrow(/robustEvalSteps: must be an integer >= 1, got 0/);
    model.dispose();
  });
});

const advCfg = (spec: string, o: Partial<TrainConfig> = {}) =>
  defaultTrainConfig({ epochs: 3, batchSize: 16, lr: 0.05, jpegLr: 0.01, seed: 3, metricsEvery: 2, weightDecay: 5e-4, adversarial: parseAdversarialSpec(spec), ...o });

describe('JointTrainer with adversarial training', () => {
  it('PGD-AT steps equal standard steps on the exact worst-case batches (Danskin), step after step', () => {
    const eps = 0.05;
    const a = linearLayersModel(21);
    const b = linearLayersModel(21);
    const ta = new JointTrainer(a, advCfg(`pgd:eps=${eps}`, { weightDecay: 0 }));
    const tb = new JointTrainer(b, { ...advCfg(`pgd:eps=${eps}`, { weightDecay: 0 }), adversarial: undefined });
    ta.setEpoch(0);
    tb.setEpoch(0);
    for (let s = 0; s < 3; s++) {
      const { x, y, xs, labels } = interiorBatch(8, 30 + s);
      // b's weights equal a's before each step, so the worst case computed on b is a's too.
      const worst = tf.tensor4d(linfWorstCase(b, xs, labels, eps), [8, 4, 4, 1]);
      const ra = ta.step(x, y);
      const rb = tb.step(worst, y);
      expect(ra.loss.dataSync()[0]).toBeCloseTo(rb.loss.dataSync()[0], 5);
      const [wa, wb] = [weightsOf(a), weightsOf(b)];
      wa.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(wb[i][j], 5)));
      tf.dispose([ra.loss, ra.correct, rb.loss, rb.correct, x, y, worst]);
    }
    // Standard training on the clean batch would have moved the weights elsewhere.
    ta.dispose();
    tb.dispose();
    a.dispose();
    b.dispose();
  });

  it('TRADES with beta 0 takes the same step as standard training', () => {
    const a = linearLayersModel(22);
    const b = linearLayersModel(22);
    const ta = new JointTrainer(a, advCfg('trades:eps=0.05,beta=0'));
    const tb = new JointTrainer(b, { ...advCfg('trades:eps=0.05'), adversarial: undefined });
    const { x, y } = interiorBatch(8, 40);
    const ra = ta.step(x, y);
    const rb = tb.step(x, y);
    expect(ra.loss.dataSync()[0]).toBeCloseTo(rb.loss.dataSync()[0], 6);
    expect(ra.correct.dataSync()[0]).toBe(rb.correct.dataSync()[0]);
    const [wa, wb] = [weightsOf(a), weightsOf(b)];
    wa.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(wb[i][j], 6)));
    tf.dispose([ra.loss, ra.correct, rb.loss, rb.correct, x, y]);
    [ta, tb, a, b].forEach((m) => m.dispose());
  });

  it('crafting does not move the BatchNorm moving statistics (inference mode); only the training pass does', () => {
    const a = tinyModel({ jpeg: false, seed: 9 });
    const b = tinyModel({ jpeg: false, seed: 9 });
    const ta = new JointTrainer(a, advCfg('pgd:eps=0.05,steps=3'));
    const tb = new JointTrainer(b, { ...advCfg('pgd:eps=0.05'), adversarial: undefined });
    const [{ x, y }] = [...tinyTrainData(16).batches(0, { batchSize: 16, seed: 1, augment: false })];
    // Both take one training-mode pass; a's runs on its adversarial batch, so the moving means differ
    // from b's exactly as a training-mode pass over that batch moves them.
    const adv = craftPgdBatch(inference(a), x, y, ta.config.adversarial!, adversarialSeed(3, 0, 0));
    ta.setEpoch(0);
    const out = ta.step(x, y);
    const r = tb.step(adv, y);
    const bn = (m: tf.LayersModel) => m.weights.filter((w) => !w.trainable).map((w) => Array.from(w.read().dataSync()));
    const [ma, mb] = [bn(a), bn(b)];
    ma.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(mb[i][j], 6)));
    tf.dispose([out.loss, out.correct, r.loss, r.correct, x, y, adv]);
    [ta, tb, a, b].forEach((m) => m.dispose());
  });

  it('no tensor leak per step (PGD with a mixed batch, FGSM-RS, TRADES; JPEG model)', async () => {
    for (const spec of ['pgd:eps=0.05,steps=2,ratio=0.5', 'fgsm-rs:eps=0.05', 'trades:eps=0.05,steps=2']) {
      const model = tinyModel({ jpeg: true, seed: 2 });
      const trainer = new JointTrainer(model, advCfg(spec));
      trainer.setEpoch(0);
      const data = tinyTrainData(16);
      await assertNoTensorLeak(
        () => {
          const [{ x, y }] = [...data.batches(0, { batchSize: 16, seed: 1, augment: false })];
          const out = trainer.step(x, y);
          tf.dispose([x, y]);
          return [out.loss, out.correct];
        },
        { label: `adversarial step ${spec}` },
      );
      trainer.dispose();
      model.dispose();
    }
  });

  it('a killed adversarial run resumes to the same weights as an uninterrupted one; another recipe is refused', async () => {
    const config = advCfg('pgd:eps=0.05,steps=2,ratio=0.5');
    const full = tinyModel({ jpeg: true, seed: 77 });
    await trainModel({ model: full, data: tinyTrainData(48), config, progress: false });
    const dir = join(tmp, 'resume');
    const first = tinyModel({ jpeg: true, seed: 77 });
    const part = await trainModel({ model: first, data: tinyTrainData(48), config, ...trainPaths(dir), progress: false, stopAfterEpochs: 1 });
    expect(part.finished).toBe(false);
    first.dispose();
    const resumed = tinyModel({ jpeg: true, seed: 77 });
    await trainModel({ model: resumed, data: tinyTrainData(48), config, ...trainPaths(dir), resume: true, progress: false });
    expect(weightsOf(resumed)).toEqual(weightsOf(full));
    const other = { ...config, adversarial: parseAdversarialSpec('pgd:eps=0.1,steps=2,ratio=0.5') };
    await expect(trainModel({ model: resumed, data: tinyTrainData(48), config: other, ...trainPaths(dir), resume: true, progress: false })).rejects.toThrow(/adversarial=.*"eps":0.05/);
    // A checkpoint of standard training is refused for an adversarial run and the other way round.
    const plainDir = join(tmp, 'plain');
    const plain = tinyModel({ jpeg: true, seed: 77 });
    await trainModel({ model: plain, data: tinyTrainData(48), config: { ...config, adversarial: undefined }, ...trainPaths(plainDir), progress: false, stopAfterEpochs: 1 });
    await expect(trainModel({ model: plain, data: tinyTrainData(48), config, ...trainPaths(plainDir), resume: true, progress: false })).rejects.toThrow(/adversarial=null/);
    [full, resumed, plain].forEach((m) => m.dispose());
  });

  it('makes the model robust: PGD-AT and TRADES beat standard training under PGD-20 at the training budget', async () => {
    // The tiny task's classes differ by 0.5 in a quadrant's brightness, so a classifier robust at 0.2 exists;
    // standard training does not find it (measured: 30% robust), adversarial training does (98-100%).
    const eps = 0.2;
    const accuracy = (m: tf.LayersModel, e: number) => {
      let correct = 0;
      let n = 0;
      for (const { x, y } of tinyEvalBatches(64, 5, 32)()) {
        const adv = e === 0 ? x.clone() : runPgd('linf', inference(m), x, y, { eps: e, steps: 20, stepSize: e / 8, randomStart: true, seed: 1 });
        correct += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(inference(m)(adv), 1), y), 'int32')).dataSync()[0]);
        n += y.shape[0];
        tf.dispose([x, y, adv]);
      }
      return correct / n;
    };
    const base = { epochs: 12, batchSize: 16, lr: 0.05, seed: 1, augment: false, milestones: [] };
    const trained = async (spec?: string) => {
      const m = tinyModel({ jpeg: false, seed: 5 });
      await trainModel({ model: m, data: tinyTrainData(128), config: defaultTrainConfig({ ...base, adversarial: spec ? parseAdversarialSpec(spec) : undefined }), progress: false });
      const acc = [accuracy(m, 0), accuracy(m, eps)];
      m.dispose();
      return acc;
    };
    const [stdClean, stdRobust] = await trained();
    expect(stdClean).toBeGreaterThan(0.9);
    // TRADES at beta 1: its default 6 at this large a budget and lr diverges on the tiny net (seen: loss 5.7, then chance).
    for (const spec of [`pgd:eps=${eps},steps=5`, `trades:eps=${eps},steps=5,beta=1`]) {
      const [clean, robust] = await trained(spec);
      expect(clean, spec).toBeGreaterThan(0.9);
      expect(robust, spec).toBeGreaterThan(stdRobust + 0.4);
    }
  }, 120_000);
});

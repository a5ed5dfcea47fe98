// Bad input: every attack throws a clear error naming the argument, before running the model's attack loop.
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { eotGradient } from '../../attacks/eot.ts';
import { ATTACKS } from '../../attacks/index.ts';
import type { Classifier } from '../../src/types.ts';
import { linearModel, randomWeights } from './helpers.ts';

const x = tf.fill([2, 2, 2, 1], 0.5) as tf.Tensor4D;
const y = tf.tensor1d([0, 1], 'int32');
afterAll(() => tf.dispose([x, y]));

/** A model that counts its calls, to prove validation happens before any attack work. */
function counting(): { model: Classifier; calls: () => number } {
  let n = 0;
  const inner = linearModel(randomWeights(1, 4, 3), [0, 0, 0]);
  return { model: (v) => (n++, inner(v)), calls: () => n };
}

describe('attack argument errors', () => {
  for (const info of Object.values(ATTACKS)) {
    describe(info.name, () => {
      const run = (opts: Record<string, unknown>, model?: Classifier, images: tf.Tensor = x, labels: tf.Tensor = y) => {
        const c = counting();
        // L0 budgets are whole pixel counts: the cases' eps 0.1 becomes 1 pixel.
        const o = info.norm === 'l0' && opts.eps === 0.1 ? { ...opts, eps: 1 } : opts;
        try {
          return info.run(model ?? c.model, images as tf.Tensor4D, labels as tf.Tensor1D, o as { eps: number });
        } finally {
          // Option errors must come before the model is ever called.
          if (!model && images === x && labels === y) expect(c.calls()).toBe(0);
        }
      };
      it('rejects a negative, NaN or missing eps', () => {
        expect(() => run({ eps: -0.1 })).toThrow(new RegExp(`${info.name}: eps: must be a finite number >= 0, got -0.1`));
        expect(() => run({ eps: NaN })).toThrow(/eps: must be a finite number >= 0, got NaN/);
        expect(() => run({})).toThrow(/eps: must be a finite number >= 0, got undefined/);
      });
      it('rejects unknown options and bad EOT counts and losses', () => {
        expect(() => run({ eps: 0.1, epsilon: 0.1 })).toThrow(/unknown option "epsilon"/);
        // AutoAttack fixes its losses and targets (APGD-CE, APGD-T with DLR, Square): no such options.
        // So does FAB (no loss: it steps to the linearised boundary; FAB-T's targets come from targetClasses).
        if (info.name === 'cw-l2' || info.name === 'ead') {
          // C&W and EAD have their own hinge loss on logits and no EOT.
          for (const k of ['loss', 'eotSamples']) expect(() => run({ eps: 0.1, [k]: 1 })).toThrow(new RegExp(`${info.name}: unknown option "${k}"`));
          expect(() => run({ eps: 0.1, targeted: true })).toThrow(/targeted is set but targets .* is missing/);
          return;
        }
        if (info.name.startsWith('hsja')) {
          // HopSkipJump sees labels only: no loss, no EOT (a label has no expectation), untargeted only.
          for (const k of ['loss', 'eotSamples', 'targeted', 'restarts']) expect(() => run({ eps: 0.1, [k]: 1 })).toThrow(new RegExp(`${info.name}: unknown option "${k}"`));
          return;
        }
        if (info.name.startsWith('deepfool')) {
          // DeepFool steps to the linearised boundary: no loss, no EOT, untargeted only.
          for (const k of ['loss', 'eotSamples', 'targeted']) expect(() => run({ eps: 0.1, [k]: 1 })).toThrow(new RegExp(`${info.name}: unknown option "${k}"`));
          return;
        }
        if (info.name.startsWith('autoattack') || info.name.startsWith('fab')) {
          for (const k of ['loss', 'targeted']) expect(() => run({ eps: 0.1, [k]: 1 })).toThrow(new RegExp(`${info.name}: unknown option "${k}"`));
          // AutoAttack's APGD stages take EOT ('rand' version); FAB has none.
          if (info.name.startsWith('fab')) expect(() => run({ eps: 0.1, eotSamples: 1 })).toThrow(new RegExp(`${info.name}: unknown option "eotSamples"`));
          else expect(() => run({ eps: 0.1, eotSamples: 0 })).toThrow(/eotSamples: must be an integer >= 1, got 0/);
          return;
        }
        expect(() => run({ eps: 0.1, eotSamples: 0 })).toThrow(/eotSamples: must be an integer >= 1, got 0/);
        expect(() => run({ eps: 0.1, loss: 'mse' })).toThrow(/loss must be "ce", "margin" or "dlr"/);
        // The validation model has 3 classes: enough for DLR, not for targeted DLR.
        expect(() => run({ eps: 0.1, loss: 'dlr', targeted: true, targets: tf.tensor1d([1, 2], 'int32') }, ((v: tf.Tensor4D) => tf.tidy(() => tf.reshape(v, [v.shape[0], -1]).slice([0, 0], [-1, 3]))) as Classifier)).toThrow(new RegExp(`${info.name}: loss "dlr" \\(targeted\\) needs at least 4 classes, the model has 3`));
        expect(() => run({ eps: 0.1, targeted: true })).toThrow(/targeted is set but targets .* is missing/);
      });
      if (info.name.startsWith('autoattack')) {
        it('rejects steps < 1, targetClasses or queries < 0, a bad norm and a negative seed', () => {
          const name = info.name;
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow(`${name}: steps: must be an integer >= 1, got 0`);
          expect(() => run({ eps: 0.1, targetClasses: -1 })).toThrow(`${name}: targetClasses: must be an integer >= 0, got -1`);
          expect(() => run({ eps: 0.1, queries: 1.5 })).toThrow(`${name}: queries: must be an integer >= 0, got 1.5`);
          if (name === 'autoattack') expect(() => run({ eps: 0.1, norm: 'l0' })).toThrow('autoattack: norm must be "linf", "l2" or "l1", got l0');
          else expect(() => run({ eps: 0.1, norm: 'l2' })).toThrow(`${name}: do not pass norm (it is always ${name.slice(-2)})`);
          expect(() => run({ eps: 0.1, fab: 'yes' })).toThrow(`${name}: fab must be true or false, got yes`);
          expect(() => run({ eps: 0.1, version: 'fast' })).toThrow(`${name}: version must be one of standard, plus, rand, got fast`);
          expect(() => run({ eps: 0.1, restarts: 0 })).toThrow(`${name}: restarts: must be an integer >= 1, got 0`);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name.startsWith('fab')) {
        it('rejects steps or restarts < 1, targetClasses < 0, alphaMax or beta outside [0, 1], eta <= 0, a bad norm and a negative seed', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow(/fab(-l2|-l1)?: steps: must be an integer >= 1, got 0/);
          expect(() => run({ eps: 0.1, restarts: 0 })).toThrow(/fab(-l2|-l1)?: restarts: must be an integer >= 1, got 0/);
          expect(() => run({ eps: 0.1, targetClasses: -1 })).toThrow(/fab(-l2|-l1)?: targetClasses: must be an integer >= 0, got -1/);
          expect(() => run({ eps: 0.1, alphaMax: 1.5 })).toThrow(/fab(-l2|-l1)?: alphaMax must lie in \[0, 1\], got 1.5/);
          expect(() => run({ eps: 0.1, beta: 2 })).toThrow(/fab(-l2|-l1)?: beta must lie in \[0, 1\], got 2/);
          expect(() => run({ eps: 0.1, eta: -1 })).toThrow(/fab(-l2|-l1)?: eta: must be a finite number > 0, got -1/);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
          if (info.name === 'fab') expect(() => run({ eps: 0.1, norm: 'l0' })).toThrow(/fab: norm must be "linf", "l2" or "l1", got l0/);
        });
      } else if (info.name.startsWith('hsja')) {
        it('rejects steps, initEvals, maxEvals, initTries or queries < 1, gamma <= 0, a bad norm and a negative seed', () => {
          const name = info.name;
          for (const k of ['steps', 'initEvals', 'maxEvals', 'initTries', 'queries']) {
            expect(() => run({ eps: 0.1, [k]: 0 })).toThrow(`${name}: ${k}: must be an integer >= 1, got 0`);
          }
          expect(() => run({ eps: 0.1, queries: 2.5 })).toThrow(`${name}: queries: must be an integer >= 1, got 2.5`);
          expect(() => run({ eps: 0.1, gamma: 0 })).toThrow(`${name}: gamma: must be a finite number > 0, got 0`);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
          if (name === 'hsja') expect(() => run({ eps: 0.1, norm: 'l1' })).toThrow('hsja: norm must be "linf" or "l2", got l1');
          else expect(() => run({ eps: 0.1, norm: 'l2' })).toThrow('hsja-linf: do not pass norm (it is always linf)');
        });
      } else if (info.name.startsWith('deepfool')) {
        it('rejects steps < 1, a negative overshoot and fewer than 2 candidate classes', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow(`${info.name}: steps: must be an integer >= 1, got 0`);
          expect(() => run({ eps: 0.1, overshoot: -1 })).toThrow(`${info.name}: overshoot: must be a finite number >= 0, got -1`);
          expect(() => run({ eps: 0.1, candidates: 1 })).toThrow(`${info.name}: candidates: must be an integer >= 2, got 1`);
        });
      } else if (info.name === 'cw-l2') {
        it('rejects steps or searchSteps < 1, initialConst or lr <= 0 and a negative confidence', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow('cw-l2: steps: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, searchSteps: 0 })).toThrow('cw-l2: searchSteps: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, initialConst: -1 })).toThrow('cw-l2: initialConst: must be a finite number > 0, got -1');
          expect(() => run({ eps: 0.1, lr: 0 })).toThrow('cw-l2: lr: must be a finite number > 0, got 0');
          expect(() => run({ eps: 0.1, confidence: NaN })).toThrow('cw-l2: confidence: must be a finite number >= 0, got NaN');
          expect(() => run({ eps: 0.1, abortEarly: 'no' })).toThrow('cw-l2: abortEarly must be true or false, got no');
        });
      } else if (info.name === 'ead') {
        it('rejects steps or searchSteps < 1, initialConst or lr <= 0, a negative beta or confidence and an unknown decision rule', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow('ead: steps: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, searchSteps: 1.5 })).toThrow('ead: searchSteps: must be an integer >= 1, got 1.5');
          expect(() => run({ eps: 0.1, initialConst: 0 })).toThrow('ead: initialConst: must be a finite number > 0, got 0');
          expect(() => run({ eps: 0.1, lr: -1 })).toThrow('ead: lr: must be a finite number > 0, got -1');
          expect(() => run({ eps: 0.1, beta: -0.1 })).toThrow('ead: beta: must be a finite number >= 0, got -0.1');
          expect(() => run({ eps: 0.1, decisionRule: 'l2' })).toThrow('ead: decisionRule must be "en" or "l1", got l2');
          expect(() => run({ eps: 0.1, confidence: NaN })).toThrow('ead: confidence: must be a finite number >= 0, got NaN');
          expect(() => run({ eps: 0.1, abortEarly: 1 })).toThrow('ead: abortEarly must be true or false, got 1');
        });
      } else if (info.name.startsWith('square')) {
        it('rejects queries < 1, pInit outside (0, 1], a bad norm and a negative seed', () => {
          const name = info.name;
          expect(() => run({ eps: 0.1, queries: 0 })).toThrow(`${name}: queries: must be an integer >= 1, got 0`);
          expect(() => run({ eps: 0.1, queries: 2.5 })).toThrow(`${name}: queries: must be an integer >= 1, got 2.5`);
          expect(() => run({ eps: 0.1, pInit: 0 })).toThrow(`${name}: pInit must be a number in (0, 1], got 0`);
          expect(() => run({ eps: 0.1, pInit: '0.5' })).toThrow(`${name}: pInit must be a number in (0, 1], got 0.5`);
          if (name === 'square') expect(() => run({ eps: 0.1, norm: 'l1' })).toThrow('square: norm must be "linf" or "l2", got l1');
          else expect(() => run({ eps: 0.1, norm: 'linf' })).toThrow('square-l2: do not pass norm (it is always l2)');
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name === 'sparse-rs') {
        it('rejects queries < 1, alphaInit outside (0, 1], a fractional pixel count and a negative seed', () => {
          expect(() => run({ eps: 0.1, queries: 0 })).toThrow('sparse-rs: queries: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, alphaInit: 1.5 })).toThrow('sparse-rs: alphaInit must be a number in (0, 1], got 1.5');
          expect(() => run({ eps: 2.5 })).toThrow('sparse-rs: eps must be a whole number of pixels, got 2.5');
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name === 'spsa') {
        it('rejects steps or samples < 1, a non-positive delta or lr, a tiny queryBatch and a negative seed', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow('spsa: steps: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, samples: 0 })).toThrow('spsa: samples: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, delta: NaN })).toThrow('spsa: delta: must be a finite number > 0, got NaN');
          expect(() => run({ eps: 0.1, lr: 0 })).toThrow('spsa: lr: must be a finite number > 0, got 0');
          expect(() => run({ eps: 0.1, queryBatch: 1 })).toThrow('spsa: queryBatch: must be an integer >= 2, got 1');
          expect(() => run({ eps: 0.1, stepSize: 0.1 })).toThrow(/spsa: unknown option "stepSize"/);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name === 'simba') {
        it('rejects queries < 1, a bad step size, basis, freqDim or stride, DCT options with the pixel basis, and a negative seed', () => {
          expect(() => run({ eps: 0.1, queries: 0 })).toThrow('simba: queries: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, stepSize: 0 })).toThrow('simba: stepSize: must be a finite number > 0, got 0');
          expect(() => run({ eps: 0.1, basis: 'wavelet' })).toThrow('simba: basis must be "dct" or "pixel", got wavelet');
          expect(() => run({ eps: 0.1, freqDim: 2.5 })).toThrow('simba: freqDim: must be an integer >= 1, got 2.5');
          expect(() => run({ eps: 0.1, stride: 0 })).toThrow('simba: stride: must be an integer >= 1, got 0');
          expect(() => run({ eps: 0.1, basis: 'pixel', stride: 2 })).toThrow('simba: freqDim and stride belong to basis "dct", not "pixel"');
          expect(() => run({ eps: 0.1, steps: 10 })).toThrow(/simba: unknown option "steps"/);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name.endsWith('i-fgsm')) {
        it('rejects steps < 1, a bad step size, decay, probability, rate or kernel, and a negative seed', () => {
          const name = info.name;
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow(`${name}: steps: must be an integer >= 1, got 0`);
          expect(() => run({ eps: 0.1, stepSize: -1 })).toThrow(`${name}: stepSize: must be a finite number > 0, got -1`);
          expect(() => run({ eps: 0.1, decay: NaN })).toThrow(`${name}: decay: must be a finite number >= 0, got NaN`);
          expect(() => run({ eps: 0.1, diversityProb: -0.1 })).toThrow(`${name}: diversityProb must be a probability in [0, 1], got -0.1`);
          expect(() => run({ eps: 0.1, resizeRate: 0 })).toThrow(`${name}: resizeRate must be a finite number > 0 other than 1`);
          expect(() => run({ eps: 0.1, kernelSize: 2 })).toThrow(`${name}: kernelSize must be an odd integer >= 1`);
          expect(() => run({ eps: 0.1, randomStart: 1 })).toThrow(`${name}: randomStart must be a boolean`);
          expect(() => run({ eps: 0.1, restarts: 2 })).toThrow(new RegExp(`${name}: unknown option "restarts"`));
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
        });
      } else if (info.name !== 'fgsm') {
        it('rejects steps < 1, a bad step size, restarts < 1 and a negative seed', () => {
          expect(() => run({ eps: 0.1, steps: 0 })).toThrow(/steps: must be an integer >= 1, got 0/);
          expect(() => run({ eps: 0.1, steps: 2.5 })).toThrow(/steps: must be an integer >= 1, got 2.5/);
          expect(() => run({ eps: 0.1, restarts: 0 })).toThrow(/restarts: must be an integer >= 1, got 0/);
          expect(() => run({ eps: 0.1, seed: -1 })).toThrow(/seed: must be an integer >= 0, got -1/);
          if (!info.name.startsWith('apgd')) expect(() => run({ eps: 0.1, stepSize: -1 })).toThrow(/stepSize: must be a finite number > 0, got -1/);
        });
      }
      it('rejects images outside [0,1], of the wrong rank or dtype, or with NaN', () => {
        const big = tf.fill([2, 2, 2, 1], 1.5);
        const rank3 = tf.fill([2, 2, 2], 0.5);
        const ints = tf.fill([2, 2, 2, 1], 0, 'int32');
        const nan = tf.fill([2, 2, 2, 1], NaN);
        expect(() => run({ eps: 0.1 }, undefined, big)).toThrow(/images: pixels must lie in \[0,1\] \(got min 1.5, max 1.5\)/);
        expect(() => run({ eps: 0.1 }, undefined, rank3)).toThrow(/images: expected rank 4/);
        expect(() => run({ eps: 0.1 }, undefined, ints)).toThrow(/images: expected dtype float32, got int32/);
        expect(() => run({ eps: 0.1 }, undefined, nan)).toThrow(/images: contains NaN/);
        tf.dispose([big, rank3, ints, nan]);
      });
      it('rejects a label count that does not match the batch, and out-of-range labels', () => {
        const three = tf.tensor1d([0, 1, 2], 'int32');
        const bad = tf.tensor1d([0, 7], 'int32');
        expect(() => run({ eps: 0.1 }, undefined, x, three)).toThrow(/labels: has 3 entries but the batch has 2 images/);
        expect(() => run({ eps: 0.1 }, undefined, x, bad)).toThrow(/labels: entry 1 is 7; expected an integer class index in \[0, 3\)/);
        tf.dispose([three, bad]);
      });
      it('rejects a model whose output is not [batch, classes]', () => {
        const flat: Classifier = (v) => tf.sum(v, [1, 2, 3]) as unknown as tf.Tensor2D;
        const wrongBatch: Classifier = () => tf.zeros([1, 3]) as tf.Tensor2D;
        expect(() => run({ eps: 0.1 }, flat)).toThrow(/model: output shape \[2\] is not \[batch=2, classes>=2\] logits/);
        expect(() => run({ eps: 0.1 }, wrongBatch)).toThrow(/model: output shape \[1,3\] is not \[batch=2/);
      });
    });
  }

  it('checks a LayersModel from its symbolic shapes, without running it', () => {
    const inp = tf.input({ shape: [2, 2, 1] });
    const logits = tf.model({ inputs: inp, outputs: tf.layers.dense({ units: 3 }).apply(tf.layers.flatten().apply(inp)) as tf.SymbolicTensor });
    const noFlatten = tf.model({ inputs: inp, outputs: tf.layers.dense({ units: 3 }).apply(inp) as tf.SymbolicTensor });
    const small = tf.fill([2, 3, 3, 1], 0.5) as tf.Tensor4D;
    for (const info of Object.values(ATTACKS)) {
      const eps = info.norm === 'l0' ? 1 : 0.1;
      expect(() => info.run(logits, small, y, { eps })).toThrow(new RegExp(`${info.name}: model: takes input \\[batch,2,2,1\\] but the images are \\[2,3,3,1\\]`));
      expect(() => info.run(noFlatten, x, y, { eps })).toThrow(new RegExp(`${info.name}: model: output shape \\[batch,2,2,3\\] is not \\[batch=2, classes>=2\\] logits`));
      expect(() => info.run(logits, x, tf.tensor1d([0, 3], 'int32'), { eps })).toThrow(/labels: entry 1 is 3; expected an integer class index in \[0, 3\)/);
    }
    // A valid call runs no extra forward pass: FGSM = one gradient (forward + backward), nothing more.
    const kernels = (f: () => tf.Tensor) => { let n = 0; const orig = tf.engine().runKernel.bind(tf.engine()); (tf.engine() as unknown as { runKernel: unknown }).runKernel = (...a: Parameters<typeof orig>) => { if (a[0] === 'MatMul' || a[0] === '_FusedMatMul' || a[0] === 'BatchMatMul') n++; return orig(...a); }; try { tf.dispose(f()); } finally { (tf.engine() as unknown as { runKernel: unknown }).runKernel = orig; } return n; };
    const n = kernels(() => ATTACKS.fgsm.run(logits, x, y, { eps: 0.1 }));
    expect(n).toBeLessThanOrEqual(2); // the forward matMul and its input gradient; a checking forward would add one
    tf.dispose([small]);
    logits.dispose();
    noFlatten.dispose();
  });

  it('eotGradient rejects samples < 1', () => {
    const m = linearModel(randomWeights(1, 4, 3), [0, 0, 0]);
    expect(() => eotGradient(m, x, y, { samples: 0 })).toThrow(/eot: samples: must be an integer >= 1, got 0/);
  });
});

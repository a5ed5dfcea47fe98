// FGSM against closed forms on linear classifiers.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fgsm } from '../../attacks/fgsm.ts';
import { linearModel, randomImagesData, randomWeights, rng } from './helpers.ts';

/** Closed-form FGSM on logits = xW + b: sign of ∇x CE = W(p - e_y), in float64, then the float32 step and clip. */
function expectedFgsm(x: Float32Array, W: number[][], b: number[], labels: number[], eps: number, batch: number, target?: number[]): number[] {
  const d = W.length;
  const classes = b.length;
  const out: number[] = [];
  const e32 = Math.fround(eps);
  for (let i = 0; i < batch; i++) {
    const z = b.map((bc, c) => W.reduce((s, row, j) => s + x[i * d + j] * row[c], bc));
    const m = Math.max(...z);
    const ex = z.map((v) => Math.exp(v - m));
    const sum = ex.reduce((a, v) => a + v, 0);
    const p = ex.map((v) => v / sum);
    const y = target ? target[i] : labels[i];
    const sgn = target ? -1 : 1; // targeted: descend the CE of the target
    for (let j = 0; j < d; j++) {
      let g = 0;
      for (let c = 0; c < classes; c++) g += W[j][c] * (p[c] - (c === y ? 1 : 0));
      const s = Math.sign(sgn * g);
      const v = Math.fround(x[i * d + j] + Math.fround(e32 * s));
      out.push(Math.min(1, Math.max(0, v)));
    }
  }
  return out;
}

describe('fgsm on a linear classifier', () => {
  it('binary case: x + eps·sign(w_other - w_label), clipped, exactly', () => {
    const d = 12;
    const r = rng(3);
    // |w1 - w0| >= 0.1 per pixel so no gradient component is near zero.
    const W = Array.from({ length: d }, () => {
      const base = 2 * r() - 1;
      const gap = (0.1 + r()) * (r() < 0.5 ? -1 : 1);
      return [base, base + gap];
    });
    const model = linearModel(W, [0.1, -0.2]);
    const xData = randomImagesData(4, 2 * d);
    const x = tf.tensor4d(xData, [2, 2, 2, 3]);
    const y = tf.tensor1d([0, 1], 'int32');
    const eps = 8 / 255;
    const adv = fgsm(model, x, y, { eps }).dataSync();
    const e32 = Math.fround(eps);
    for (let i = 0; i < 2; i++) {
      const other = 1 - i;
      for (let j = 0; j < d; j++) {
        const s = Math.sign(W[j][other] - W[j][i]);
        expect(adv[i * d + j]).toBe(Math.min(1, Math.max(0, Math.fround(xData[i * d + j] + Math.fround(e32 * s)))));
      }
    }
    tf.dispose([x, y]);
  });

  it('multi-class, untargeted and targeted: equals sign(W(p - e_y)) step exactly (random cases)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 2, max: 6 }), fc.double({ min: 0.001, max: 0.5, noNaN: true }), fc.boolean(), (seed, classes, eps, targeted) => {
        const d = 8;
        const batch = 3;
        const W = randomWeights(seed, d, classes);
        const b = randomWeights(seed + 1, 1, classes)[0];
        const model = linearModel(W, b);
        const xData = randomImagesData(seed + 2, batch * d);
        const labels = [0, 1, classes - 1];
        const targets = labels.map((l) => (l + 1) % classes);
        const x = tf.tensor4d(xData, [batch, 2, 4, 1]);
        const y = tf.tensor1d(labels, 'int32');
        const t = tf.tensor1d(targets, 'int32');
        const adv = fgsm(model, x, y, targeted ? { eps, targeted: true, targets: t } : { eps });
        expect(Array.from(adv.dataSync())).toEqual(expectedFgsm(xData, W, b, labels, eps, batch, targeted ? targets : undefined));
        tf.dispose([x, y, t, adv]);
      }),
      { numRuns: 25, seed: 7 },
    );
  });

  it('targeted FGSM reaches the target on a block-indicator linear model', () => {
    // Class c responds to pixel block c only; from mid-grey, one step of 0.5 lights block t and darkens the rest.
    const d = 12;
    const W = Array.from({ length: d }, (_, j) => [0, 1, 2].map((c) => (Math.floor(j / 4) === c ? 1 : 0)));
    const model = linearModel(W, [0, 0, 0]);
    const x = tf.fill([3, 2, 2, 3], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const t = tf.tensor1d([2, 0, 1], 'int32');
    const adv = fgsm(model, x, y, { eps: 0.5, targeted: true, targets: t });
    expect(Array.from(tf.argMax(model(adv), 1).dataSync())).toEqual([2, 0, 1]);
    tf.dispose([x, y, t, adv]);
  });

  it('eps = 0 returns the input unchanged', () => {
    const model = linearModel(randomWeights(1, 4, 3), [0, 0, 0]);
    const x = tf.tensor4d(randomImagesData(2, 8), [2, 2, 2, 1]);
    const y = tf.tensor1d([0, 2], 'int32');
    const adv = fgsm(model, x, y, { eps: 0 });
    expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, y, adv]);
  });
});

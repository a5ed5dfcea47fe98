// Attack objectives on logits, and the per-example worst-case selection used by restarts.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepWorstCase, objectiveGradient } from '../../attacks/gradient.ts';
import { attackObjective, attackSuccess, crossEntropyPerExample, dlrPerExample, marginPerExample, targetedDlrPerExample } from '../../attacks/loss.ts';
import { linearModel, randomWeights } from './helpers.ts';

const logitsArb = fc.array(fc.array(fc.double({ min: -30, max: 30, noNaN: true }), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 5 });

describe('losses', () => {
  it('CE = logsumexp(z) - z_y and margin = max_{j≠y} z_j - z_y, per example (stable for large logits)', () => {
    fc.assert(
      fc.property(logitsArb, fc.nat(), (rows, s) => {
        const labels = rows.map((_, i) => (s + i) % 4);
        const z = tf.tensor2d(rows);
        const y = tf.tensor1d(labels, 'int32');
        const ce = crossEntropyPerExample(z, y).dataSync();
        const mg = marginPerExample(z, y).dataSync();
        rows.forEach((r, i) => {
          const m = Math.max(...r);
          const lse = m + Math.log(r.reduce((a, v) => a + Math.exp(v - m), 0));
          expect(ce[i]).toBeCloseTo(lse - r[labels[i]], 4);
          expect(mg[i]).toBeCloseTo(Math.max(...r.filter((_, j) => j !== labels[i])) - r[labels[i]], 4);
        });
        tf.dispose([z, y]);
      }),
      { numRuns: 50, seed: 1 },
    );
  });

  it('DLR = margin / (z_pi1 - z_pi3), targeted DLR = (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4)/2); invariant to shifting and scaling the logits', () => {
    // Five distinct logits per row (ties make the sort order ambiguous), in [-30, 30].
    const distinct = fc.uniqueArray(fc.integer({ min: -300, max: 300 }), { minLength: 5, maxLength: 5 }).map((r) => r.map((v) => v / 10));
    fc.assert(
      fc.property(fc.array(distinct, { minLength: 1, maxLength: 4 }), fc.nat(), fc.double({ min: 0.1, max: 10, noNaN: true }), fc.double({ min: -5, max: 5, noNaN: true }), (rows, s, a, b) => {
        const labels = rows.map((_, i) => (s + i) % 5);
        const targets = labels.map((y) => (y + 1 + (s % 4)) % 5);
        const z = tf.tensor2d(rows);
        const y = tf.tensor1d(labels, 'int32');
        const t = tf.tensor1d(targets, 'int32');
        const dlr = dlrPerExample(z, y).dataSync();
        const tdlr = targetedDlrPerExample(z, y, t).dataSync();
        const scaled = tf.add(tf.mul(z, a), b) as tf.Tensor2D;
        const dlrScaled = dlrPerExample(scaled, y).dataSync();
        rows.forEach((r, i) => {
          const sorted = [...r].sort((u, v) => v - u);
          const yv = r[labels[i]];
          const margin = Math.max(...r.filter((_, j) => j !== labels[i])) - yv;
          // float32 logits: compare relatively (a small spread makes large ratios).
          const near = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(want)));
          near(dlr[i], margin / (sorted[0] - sorted[2] + 1e-12));
          near(tdlr[i], (r[targets[i]] - yv) / (sorted[0] - (sorted[2] + sorted[3]) / 2 + 1e-12));
          near(dlrScaled[i], dlr[i]);
        });
        expect(Array.from(attackObjective(z, y, { loss: 'dlr' }).dataSync())).toEqual(Array.from(dlr));
        expect(Array.from(attackObjective(z, y, { loss: 'dlr', targets: t }).dataSync())).toEqual(Array.from(tdlr));
        tf.dispose([z, y, t, scaled]);
      }),
      { numRuns: 40, seed: 4 },
    );
  });

  it('DLR has a gradient through the logits it ranks (finite, nonzero on a linear model)', () => {
    const model = linearModel(randomWeights(3, 4, 5), [0, 0.1, 0.2, 0.3, 0.4]);
    const x = tf.tensor4d([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.7, 0.6], [2, 2, 2, 1]);
    const y = tf.tensor1d([1, 2], 'int32');
    const t = tf.tensor1d([3, 0], 'int32');
    for (const targets of [undefined, t]) {
      const g = objectiveGradient(model, x, y, { loss: 'dlr', targets }).grad.dataSync();
      expect(g.every(Number.isFinite)).toBe(true);
      expect(g.some((v) => v !== 0)).toBe(true);
    }
    tf.dispose([x, y, t]);
  });

  it('targeted objectives are minus the loss of the target; success is misclassified / hit target', () => {
    const z = tf.tensor2d([[3, 1, 0], [0, 2, 1]]);
    const y = tf.tensor1d([0, 0], 'int32');
    const t = tf.tensor1d([2, 1], 'int32');
    expect(Array.from(attackObjective(z, y, { targets: t }).dataSync())).toEqual(Array.from(tf.neg(crossEntropyPerExample(z, t)).dataSync()));
    expect(Array.from(attackObjective(z, y, { loss: 'margin', targets: t }).dataSync())).toEqual([-3, 1]);
    expect(Array.from(attackSuccess(z, y).dataSync())).toEqual([0, 1]);
    expect(Array.from(attackSuccess(z, y, t).dataSync())).toEqual([0, 1]);
    tf.dispose([z, y, t]);
  });

  it("the objective gradient of a batch is each example's own gradient (the summed loss separates)", () => {
    const model = linearModel(randomWeights(2, 4, 3), [0, 0, 0]);
    const x = tf.tensor4d([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.7, 0.6], [2, 2, 2, 1]);
    const y = tf.tensor1d([1, 2], 'int32');
    const joint = objectiveGradient(model, x, y).grad.dataSync();
    for (let i = 0; i < 2; i++) {
      const xi = tf.slice(x, [i, 0, 0, 0], [1, 2, 2, 1]);
      const alone = objectiveGradient(model, xi, tf.slice(y, [i], [1])).grad.dataSync();
      for (let j = 0; j < 4; j++) expect(alone[j]).toBeCloseTo(joint[i * 4 + j], 6);
    }
    tf.dispose([x, y]);
  });
});

describe('keepWorstCase', () => {
  it('success beats failure; otherwise the higher objective wins; ties keep the first', () => {
    const mk = (vals: number[], obj: number[], succ: boolean[]) => ({
      adv: tf.tensor4d(vals, [vals.length, 1, 1, 1]),
      objective: tf.tensor1d(obj),
      success: tf.tensor1d(succ.map(Number), 'bool'),
    });
    const a = mk([1, 2, 3, 4], [5, 1, 2, 2], [false, true, false, false]);
    const b = mk([10, 20, 30, 40], [1, 9, 3, 2], [true, false, false, false]);
    const r = keepWorstCase(a, b);
    expect(Array.from(r.adv.dataSync())).toEqual([10, 2, 30, 4]);
    expect(Array.from(r.objective.dataSync())).toEqual([1, 1, 3, 2]);
    expect(Array.from(r.success.dataSync())).toEqual([1, 1, 0, 0]);
  });
});

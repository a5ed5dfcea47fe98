// The query traces of the score-based searches (Square L-inf and L2, Sparse-RS, SimBA, SPSA): which query
// first fooled each image, checked against the model's own verdicts and against the number of candidate
// rows the search actually sent to the model; closed forms on models whose search path is known.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attackOverEpsilons, evaluateAttackOnDataset, mergeTraces, type QueryTrace } from '../../attacks/index.ts';
import { simba } from '../../attacks/simba.ts';
import { sparseRs } from '../../attacks/sparse_rs.ts';
import { spsa } from '../../attacks/spsa.ts';
import { square, squareL2 } from '../../attacks/square.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { randomImagesData, randomLabels, randomMlp, roundingCounter } from './helpers.ts';

type Run = (model: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor1D, queries: number, seed: number, report: (r: { queries: QueryTrace }) => void) => tf.Tensor4D;

/** Each search at a budget it sometimes exhausts, and how many queries its budget is per image (SimBA: at most two per direction). */
const SEARCHES: { name: string; run: Run; budget: (queries: number, d: number) => number }[] = [
  { name: 'square', run: (m, x, y, q, seed, rep) => square(m, x, y, { eps: 0.05, queries: q, seed }, rep), budget: (q) => q },
  { name: 'square-l2', run: (m, x, y, q, seed, rep) => squareL2(m, x, y, { eps: 1.5, queries: q, seed }, rep), budget: (q) => q },
  { name: 'sparse-rs', run: (m, x, y, q, seed, rep) => sparseRs(m, x, y, { eps: 2, queries: q, seed }, rep), budget: (q) => q },
  { name: 'simba', run: (m, x, y, q, seed, rep) => simba(m, x, y, { eps: 0.3, queries: q, seed, stepSize: 0.1 }, rep), budget: (q, d) => Math.min(q, 2 * d) },
  // SPSA: 1 + q % 4 steps of 2 pairs; each step costs 2·2 gradient queries and one check, the random start one query.
  { name: 'spsa', run: (m, x, y, q, seed, rep) => spsa(m, x, y, { eps: 0.1, steps: 1 + (q % 4), samples: 2, lr: 0.05, seed }, rep), budget: (q) => 1 + (1 + (q % 4)) * 5 },
  { name: 'spsa without random start', run: (m, x, y, q, seed, rep) => spsa(m, x, y, { eps: 0.1, steps: 1 + (q % 4), samples: 2, lr: 0.05, seed, randomStart: false }, rep), budget: (q) => (1 + (q % 4)) * 5 },
];

/** Wrap a model so it counts the rows it scores per call. */
function counting(model: (x: tf.Tensor4D) => tf.Tensor2D): { fn: (x: tf.Tensor4D) => tf.Tensor2D; calls: number[] } {
  const calls: number[] = [];
  return { fn: (x) => (calls.push(x.shape[0]), model(x)), calls };
}

describe('query traces of the score-based searches', () => {
  for (const s of SEARCHES) {
    it(`${s.name}: fooledAt is 0 for images wrong clean, -1 for images still right, in 1..budget for the rest; the rows sent add up`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 40 }), (seed, queries) => {
          const [n, h, w, c] = [6, 5, 5, 1];
          const d = h * w * c;
          const model = randomMlp(seed, d, 3);
          const x = tf.tensor4d(randomImagesData(seed + 1, n * d), [n, h, w, c]);
          const y = randomLabels(seed + 2, n, 3);
          const m = counting(model);
          let trace: QueryTrace | undefined;
          const adv = s.run(m.fn, x, y, queries, seed, (r) => (trace = r.queries));
          const clean = tf.tidy(() => Array.from(tf.equal(tf.argMax(model(x), 1), y.toInt()).dataSync()));
          const after = tf.tidy(() => Array.from(tf.equal(tf.argMax(model(adv), 1), y.toInt()).dataSync()));
          expect(trace).toBeDefined();
          const budget = s.budget(queries, d);
          expect(trace!.budget).toBe(budget);
          expect(trace!.fooledAt.length).toBe(n);
          for (let i = 0; i < n; i++) {
            const t = trace!.fooledAt[i];
            if (!clean[i]) expect(t).toBe(0);
            else if (after[i]) expect(t).toBe(-1);
            else {
              expect(t).toBeGreaterThanOrEqual(1);
              expect(t).toBeLessThanOrEqual(budget);
            }
          }
          // Calls: the output check and the clean check score all n rows; the search's rows follow. An image
          // stops at the query that fooled it; Square, Sparse-RS and SPSA spend their whole budget on the others.
          const searchRows = m.calls.slice(2).reduce((a, b) => a + b, 0);
          const spent = Array.from(trace!.fooledAt, (t, i) => (t >= 0 ? t : clean[i] ? budget : 0));
          if (s.name === 'simba') expect(searchRows).toBeLessThanOrEqual(spent.reduce((a, b) => a + b, 0));
          else expect(searchRows).toBe(spent.reduce((a, b) => a + b, 0));
          tf.dispose([x, y, adv]);
        }),
        { numRuns: 6, seed: 11 },
      );
    });
  }

  it('SimBA on a hard-rounding model: the fifth kept pixel step, query 10, fools every image (two queries per pixel)', () => {
    // 16 pixels at 0.4 round to 0; class 1 wins when 5 of them round to 1: −0.2 changes nothing, +0.2 is kept.
    const model = roundingCounter(4.5);
    const x = tf.fill([4, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([4], 'int32') as tf.Tensor1D;
    let trace: QueryTrace | undefined;
    const adv = simba(model, x, y, { eps: 0.5, queries: 12, basis: 'pixel', stepSize: 0.2, seed: 3 }, (r) => (trace = r.queries));
    expect(trace!.budget).toBe(12);
    expect(Array.from(trace!.fooledAt)).toEqual([10, 10, 10, 10]);
    tf.dispose([x, y, adv]);
  });

  it('SimBA on a model it cannot move: every image -1, budget min(queries, 2·directions)', () => {
    const flat = (v: tf.Tensor4D) => tf.tidy(() => tf.concat([tf.fill([v.shape[0], 1], 5), tf.zeros([v.shape[0], 1])], 1) as tf.Tensor2D);
    const x = tf.tensor4d(randomImagesData(13, 3 * 9), [3, 3, 3, 1]);
    const y = tf.tensor1d([0, 0, 1], 'int32');
    for (const [queries, budget] of [[7, 7], [100, 18]] as const) {
      let trace: QueryTrace | undefined;
      const adv = simba(flat, x, y, { eps: 0.5, queries }, (r) => (trace = r.queries));
      expect(trace!.budget).toBe(budget);
      // Image 2 (label 1) is wrong clean.
      expect(Array.from(trace!.fooledAt)).toEqual([-1, -1, 0]);
      adv.dispose();
    }
    tf.dispose([x, y]);
  });

  it('Square at eps 0 reports a trace that spent nothing; the report callback adds no tensor', async () => {
    const model = randomMlp(5, 16, 3);
    const x = tf.tensor4d(randomImagesData(6, 2 * 16), [2, 4, 4, 1]);
    const y = tf.tensor1d([0, 1], 'int32');
    let trace: QueryTrace | undefined;
    const adv = square(model, x, y, { eps: 0, queries: 10 }, (r) => (trace = r.queries));
    expect(trace!.budget).toBe(10);
    expect(Array.from(trace!.fooledAt).every((t) => t === 0 || t === -1)).toBe(true);
    adv.dispose();
    await assertNoTensorLeak(() => square(model, x, y, { eps: 0.1, queries: 5, seed: 1 }, () => undefined), { label: 'square with a report' });
    tf.dispose([x, y]);
  });

  it('the epsilon sweeps carry the trace: per eps, and over a dataset concatenated in batch order; none for a transfer attack', () => {
    const [n, h, w, c] = [5, 4, 4, 1];
    const d = h * w * c;
    const model = randomMlp(21, d, 3);
    const images = randomImagesData(22, n * d);
    const labels = Int32Array.from(randomLabels(23, n, 3).dataSync());
    const eps = [{ value: 0, label: '0' }, { value: 0.1, label: '0.1' }];
    const x = tf.tensor4d(images, [n, h, w, c]);
    const y = tf.tensor1d(labels, 'int32');
    const whole = attackOverEpsilons('square', model, x, y, eps, { queries: 20, seed: 4 });
    expect(whole.map((r) => r.queries?.budget)).toEqual([undefined, 20]);
    tf.dispose(whole.map((r) => r.adversarial));
    const data = { images, labels, height: h, width: w, channels: c };
    const byBatch = evaluateAttackOnDataset('square', model, data, eps, { batchSize: 2, options: { queries: 20, seed: 4 } });
    const parts: QueryTrace[] = [];
    for (let b = 0; b < 3; b++) {
      const xb = tf.tensor4d(images.subarray(b * 2 * d, Math.min(n, (b + 1) * 2) * d), [Math.min(2, n - 2 * b), h, w, c]);
      const yb = tf.tensor1d(labels.subarray(b * 2, Math.min(n, (b + 1) * 2)), 'int32');
      const r = attackOverEpsilons('square', model, xb, yb, [eps[1]], { queries: 20, seed: 4 + b });
      parts.push(r[0].queries!);
      tf.dispose([xb, yb, r[0].adversarial]);
    }
    expect(Array.from(byBatch[1].queries!.fooledAt)).toEqual(Array.from(mergeTraces(parts)!.fooledAt));
    const transfer = evaluateAttackOnDataset('square', model, data, [eps[1]], { batchSize: 5, options: { queries: 20 }, surrogate: randomMlp(24, d, 3) });
    expect(transfer[0].queries).toBeUndefined();
    expect(() => mergeTraces([{ budget: 3, fooledAt: new Int32Array(1) }, { budget: 4, fooledAt: new Int32Array(1) }])).toThrow(/different budgets \(3, 4\)/);
    expect(mergeTraces([{ budget: 3, fooledAt: new Int32Array(1) }, undefined])).toBeUndefined();
    tf.dispose([x, y]);
  });
});

// AutoAttack ensemble: first fooling point per image, robust images clean, stages on what is left.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { apgd } from '../../attacks/apgd.ts';
import { autoAttack, autoAttackL1, autoAttackL2, type AutoAttackReport } from '../../attacks/autoattack.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearL1Task, linearModel, perExampleDistances, randomImagesData, randomMlp, randomWeights } from './helpers.ts';

/**
 * Hard rounding (zero gradient): class 1 wins when 5 of the 16 pixels round to 1. Two extra classes
 * that never win keep 4 classes, so APGD-T runs too.
 */
const rounding = (v: tf.Tensor4D) => tf.tidy(() => {
  const ones = tf.reshape(tf.sum(tf.round(v), [1, 2, 3]), [-1, 1]);
  return tf.concat([tf.zerosLike(ones), tf.sub(ones, 4.5), tf.fill(ones.shape as [number, number], -50), tf.fill(ones.shape as [number, number], -60)], 1) as tf.Tensor2D;
});

const predict = (model: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D) => tf.tidy(() => Array.from(tf.argMax(model(x), 1).dataSync()));

describe('autoAttack', () => {
  it('returns, per image, a fooling point or the clean image, and its report adds up', () => {
    const [n, h, w, c, classes] = [12, 3, 3, 2, 5];
    const model = randomMlp(31, h * w * c, classes, 12);
    const xs = randomImagesData(32, n * h * w * c);
    const x = tf.tensor4d(xs, [n, h, w, c]);
    // Half the labels are the model's own predictions (attackable), half a wrong class (misclassified already).
    const pred = predict(model, x);
    const labels = pred.map((p, i) => (i % 2 === 0 ? p : (p + 1) % classes));
    const y = tf.tensor1d(labels, 'int32');
    let report: AutoAttackReport | undefined;
    const adv = autoAttack(model, x, y, { eps: 0.15, steps: 10, targetClasses: 3, queries: 40, seed: 2 }, (r) => (report = r));
    const a = adv.dataSync();
    const after = predict(model, adv);
    const d = h * w * c;
    let robust = 0;
    for (let i = 0; i < n; i++) {
      const same = Array.from(a.slice(i * d, (i + 1) * d)).every((v, j) => v === xs[i * d + j]);
      if (after[i] === labels[i]) {
        robust++;
        expect(same).toBe(true); // robust images come back clean
      }
      if (i % 2 === 1) expect(same).toBe(true); // already wrong: untouched
    }
    perExampleDistances(a, xs, n).linf.forEach((v) => expect(v).toBeLessThanOrEqual(0.15 + 1e-6));
    expect(report!.clean).toBe(n / 2);
    expect(report!.robust).toBe(robust);
    expect(report!.clean + Object.values(report!.fooledBy).reduce((s, v) => s + v, 0) + report!.robust).toBe(n);
    // Not vacuous: the attacks fooled some of the attackable half.
    expect(robust).toBeLessThan(n / 2);
    tf.dispose([x, y, adv]);
  });

  it('is APGD-CE (same seed) when APGD-T, FAB-T and Square are off, on images it gets right', () => {
    const model = randomMlp(41, 12, 4, 10);
    const x = tf.tensor4d(randomImagesData(42, 8 * 12), [8, 2, 2, 3]);
    const y = tf.tensor1d(predict(model, x), 'int32');
    const aa = autoAttack(model, x, y, { eps: 0.1, steps: 8, targetClasses: 0, queries: 0, seed: 5 });
    const ce = apgd(model, x, y, { eps: 0.1, steps: 8, seed: 5, loss: 'ce' });
    const fooled = predict(model, ce).map((p, i) => p !== y.dataSync()[i]);
    expect(fooled.some(Boolean)).toBe(true);
    const [a, b, xs] = [aa.dataSync(), ce.dataSync(), x.dataSync()];
    for (let i = 0; i < 8; i++) {
      const want = fooled[i] ? b : xs;
      expect(Array.from(a.slice(i * 12, (i + 1) * 12))).toEqual(Array.from(want.slice(i * 12, (i + 1) * 12)));
    }
    tf.dispose([x, y, aa, ce]);
  });

  it('runs APGD-T only with 4+ classes, and Square catches what gradient attacks miss (hard rounding)', () => {
    // Rounding model as in square.test.ts: zero gradient, 5 of 16 pixels must cross 0.5.
    const x = tf.fill([8, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    let report: AutoAttackReport | undefined;
    const adv = autoAttack(rounding, x, y, { eps: 0.15, steps: 5, targetClasses: 2, queries: 50, seed: 3 }, (r) => (report = r));
    expect(predict(rounding, adv).every((p) => p !== 0)).toBe(true);
    expect(report!.robust).toBe(0);
    expect(report!.fooledBy.square).toBeGreaterThan(0);
    expect(Object.keys(report!.fooledBy)).toContain('apgd-t');

    // Three classes: APGD-T (targeted DLR needs 4) is skipped whatever targetClasses says.
    const three = linearModel(randomWeights(5, 16, 3), [0, 0, 0]);
    const y3 = tf.tensor1d(predict(three, x), 'int32');
    let r3: AutoAttackReport | undefined;
    tf.dispose(autoAttack(three, x, y3, { eps: 0.01, steps: 2, targetClasses: 9, queries: 2 }, (r) => (r3 = r)));
    expect(Object.keys(r3!.fooledBy)).not.toContain('apgd-t');
    tf.dispose([x, y, adv, y3]);
  });

  it('L2: all four stages run in the L2 ball, and Square-L2 catches what the gradient stages miss (hard rounding)', () => {
    const x = tf.fill([8, 4, 4, 1], 0.4) as tf.Tensor4D;
    const y = tf.zeros([8], 'int32') as tf.Tensor1D;
    let report: AutoAttackReport | undefined;
    // 5 pixels must exceed 0.5: L2 cost at least 0.1·√5 ≈ 0.22 of the 0.4 budget.
    const adv = autoAttackL2(rounding, x, y, { eps: 0.4, steps: 5, targetClasses: 2, queries: 100, seed: 3 }, (r) => (report = r));
    expect(Object.keys(report!.fooledBy)).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
    expect(report!.fooledBy['apgd-ce'] + report!.fooledBy['apgd-t'] + report!.fooledBy['fab-t']).toBe(0);
    expect(report!.fooledBy.square).toBeGreaterThanOrEqual(6);
    expect(predict(rounding, adv).filter((p) => p !== 0).length).toBe(8 - report!.robust);
    perExampleDistances(adv.dataSync(), x.dataSync(), 8).l2.forEach((v) => expect(v).toBeLessThanOrEqual(0.4 + 1e-6));
    tf.dispose([x, y, adv]);
  });

  it('FAB-T catches what APGD-CE misses when the softmax saturates (3 classes: no APGD-T), and fab: false leaves it out', () => {
    // Logits scaled by 1e4: the cross-entropy gradient underflows to exactly 0 in float32 (gradient
    // masking by scale); FAB steps on logit differences, which are scale-free.
    const W = randomWeights(71, 16, 3);
    const base = linearModel(W, [0, 0, 0]);
    const scaled = (v: tf.Tensor4D) => tf.tidy(() => tf.mul(base(v), 1e4) as tf.Tensor2D);
    const x = tf.tensor4d(Float32Array.from(randomImagesData(72, 6 * 16), (v) => 0.4 + 0.2 * v), [6, 4, 4, 1]);
    const y = tf.tensor1d(predict(base, x), 'int32');
    // eps = the largest exact L-inf distance to a boundary, times 1.1: every image is within FAB's reach.
    const xs = x.dataSync();
    const labels = Array.from(y.dataSync());
    const exact = labels.map((yi, i) => Math.min(...[0, 1, 2].filter((s) => s !== yi).map((s) => {
      const g = W.map((row) => row[yi] - row[s]);
      const gap = W.reduce((acc, row, j) => acc + xs[i * 16 + j] * (row[yi] - row[s]), 0);
      return gap / g.reduce((acc, v) => acc + Math.abs(v), 0);
    })));
    const eps = Math.max(...exact) * 1.1;
    let withFab: AutoAttackReport | undefined;
    let without: AutoAttackReport | undefined;
    const a = autoAttack(scaled, x, y, { eps, steps: 10, queries: 0, seed: 1 }, (r) => (withFab = r));
    const b = autoAttack(scaled, x, y, { eps, steps: 10, queries: 0, seed: 1, fab: false }, (r) => (without = r));
    expect(without!.fooledBy['apgd-ce']).toBe(0);
    expect(without!.robust).toBe(6);
    expect(Object.keys(without!.fooledBy)).toEqual(['apgd-ce']);
    expect(withFab!.fooledBy['fab-t']).toBe(6);
    expect(predict(base, a).every((p, i) => p !== labels[i])).toBe(true);
    expect(Array.from(b.dataSync())).toEqual(Array.from(xs));
    perExampleDistances(a.dataSync(), xs, 6).linf.forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
    tf.dispose([x, y, a, b]);
  });

  it('leaks no tensors with every stage running (APGD-T with targeted DLR needs 4+ classes)', async () => {
    const model = randomMlp(61, 12, 5, 10);
    const x = tf.tensor4d(randomImagesData(62, 4 * 12), [4, 2, 2, 3]);
    const y = tf.tensor1d(predict(model, x), 'int32');
    let stages: string[] = [];
    await assertNoTensorLeak(() => autoAttack(model, x, y, { eps: 0.05, steps: 3, targetClasses: 2, queries: 5, seed: 1 }, (r) => (stages = Object.keys(r.fooledBy))), { label: 'autoattack' });
    expect(stages).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
    tf.dispose([x, y]);
  });

  it('eps 0 returns the clean images and reports the clean accuracy', () => {
    const model = randomMlp(51, 4, 3);
    const x = tf.tensor4d(randomImagesData(52, 6 * 4), [6, 2, 2, 1]);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    let report: AutoAttackReport | undefined;
    const adv = autoAttack(model, x, y, { eps: 0 }, (r) => (report = r));
    expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
    const correct = predict(model, x).filter((p, i) => p === y.dataSync()[i]).length;
    expect(report).toEqual({ clean: 6 - correct, fooledBy: {}, robust: correct });
    tf.dispose([x, y, adv]);
  });
});

describe('autoAttack versions', () => {
  /** A 3-class linear model with logits scaled by 1e4 (CE gradient underflows to 0), images, labels and eps = `factor` times the largest exact L-inf boundary distance. */
  function saturated(factor: number) {
    const W = randomWeights(71, 16, 3);
    const base = linearModel(W, [0, 0, 0]);
    const scaled = (v: tf.Tensor4D) => tf.tidy(() => tf.mul(base(v), 1e4) as tf.Tensor2D);
    const x = tf.tensor4d(Float32Array.from(randomImagesData(72, 6 * 16), (v) => 0.4 + 0.2 * v), [6, 4, 4, 1]);
    const labels = predict(base, x);
    const xs = x.dataSync();
    const exact = labels.map((yi, i) => Math.min(...[0, 1, 2].filter((s) => s !== yi).map((s) => {
      const gap = W.reduce((acc, row, j) => acc + xs[i * 16 + j] * (row[yi] - row[s]), 0);
      return gap / W.reduce((acc, row) => acc + Math.abs(row[yi] - row[s]), 0);
    })));
    return { base, scaled, x, y: tf.tensor1d(labels, 'int32'), labels, eps: Math.max(...exact) * factor };
  }

  it("plus: APGD-DLR (scale-free) fools the saturated-softmax model APGD-CE cannot, right after it", () => {
    // Twice the largest boundary distance: a short APGD-DLR run reaches every boundary.
    const { base, scaled, x, y, labels, eps } = saturated(2);
    let report: AutoAttackReport | undefined;
    const adv = autoAttack(scaled, x, y, { eps, version: 'plus', steps: 20, restarts: 2, queries: 5, seed: 1 }, (r) => (report = r));
    // APGD-CE moves no further than its random starts (zero gradient); DLR catches every image it leaves.
    const ce = apgd(scaled, x, y, { eps, steps: 20, restarts: 2, seed: 1, loss: 'ce' });
    const byCe = predict(base, ce).filter((p, i) => p !== labels[i]).length;
    expect(byCe).toBeLessThan(6);
    expect(report!.fooledBy).toEqual({ 'apgd-ce': byCe, 'apgd-dlr': 6 - byCe });
    expect(predict(base, adv).every((p, i) => p !== labels[i])).toBe(true);
    perExampleDistances(adv.dataSync(), x.dataSync(), 6).linf.forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
    tf.dispose([x, y, adv, ce]);
  });

  it('plus runs its six stages in the reference order; rand runs APGD-CE and APGD-DLR only, with EOT over 20 calls by default', () => {
    const model = randomMlp(61, 12, 5, 10);
    const x = tf.tensor4d(randomImagesData(62, 4 * 12), [4, 2, 2, 3]);
    const y = tf.tensor1d(predict(model, x), 'int32');
    let stages: string[] = [];
    // eps so small that every image stays robust: every stage runs.
    tf.dispose(autoAttack(model, x, y, { eps: 1e-4, version: 'plus', steps: 2, restarts: 1, targetClasses: 2, queries: 3, seed: 1 }, (r) => (stages = Object.keys(r.fooledBy))));
    expect(stages).toEqual(['apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t']);

    let calls = 0;
    const counted = (v: tf.Tensor4D) => (calls++, model(v));
    let r20: AutoAttackReport | undefined;
    tf.dispose(autoAttack(counted, x, y, { eps: 1e-4, version: 'rand', steps: 3, seed: 1 }, (r) => (r20 = r)));
    const withEot = calls;
    calls = 0;
    tf.dispose(autoAttack(counted, x, y, { eps: 1e-4, version: 'rand', steps: 3, seed: 1, eotSamples: 1 }));
    expect(Object.keys(r20!.fooledBy)).toEqual(['apgd-ce', 'apgd-dlr']);
    // Gradient calls dominate: 20 per gradient instead of 1.
    expect(withEot / calls).toBeGreaterThan(10);
    expect(() => autoAttack(model, x, y, { eps: 0.1, version: 'rand', queries: 10, fab: true })).toThrow('autoattack: version "rand" runs APGD-CE and APGD-DLR only; queries, fab do not apply');
    expect(() => autoAttack(model, x, y, { eps: 0.1, version: 'fast' as never })).toThrow('autoattack: version must be one of standard, plus, rand, got fast');
    tf.dispose([x, y]);
  });

  it('standard is unchanged by the version machinery: same images as without the option', () => {
    const model = randomMlp(81, 12, 5, 10);
    const x = tf.tensor4d(randomImagesData(82, 5 * 12), [5, 2, 2, 3]);
    const y = tf.tensor1d(predict(model, x), 'int32');
    const a = autoAttack(model, x, y, { eps: 0.05, steps: 3, targetClasses: 2, queries: 4, seed: 2 });
    const b = autoAttack(model, x, y, { eps: 0.05, steps: 3, targetClasses: 2, queries: 4, seed: 2, version: 'standard', restarts: 1, eotSamples: 1 });
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, y, a, b]);
  });
});

describe('autoattack-l1', () => {
  it('on a 5-class linear model its robust accuracy is the exact one (fractional knapsack per wrong class), within the L1 budget', () => {
    const eps = 0.8;
    const t = linearL1Task(12, 40, 5, eps);
    let report: AutoAttackReport | undefined;
    const adv = autoAttackL1(t.model, t.x, t.y, { eps, steps: 30 }, (r) => (report = r));
    for (const v of perExampleDistances(adv.dataSync(), t.xs, 40).l1) expect(v).toBeLessThanOrEqual(eps);
    const pred = tf.tidy(() => (tf.argMax(t.model(adv), 1).arraySync() as number[]));
    let robust = 0;
    let broken = 0;
    t.labels.forEach((y, i) => {
      const least = Math.min(...t.leastMargins[i]);
      if (least > 0) {
        expect(pred[i]).toBe(y);
        robust++;
      } else if (least < -0.02) {
        expect(pred[i]).not.toBe(y);
        broken++;
      }
    });
    expect(robust).toBeGreaterThan(5);
    expect(broken).toBeGreaterThan(5);
    // Its L1 standard setting: the two APGD stages only.
    expect(Object.keys(report!.fooledBy).every((k) => k === 'apgd-ce' || k === 'apgd-t')).toBe(true);
    expect(report!.robust).toBe(pred.filter((p, i) => p === t.labels[i]).length);
    tf.dispose([t.x, t.y, adv]);
  });

  it('fab=true adds FAB-T in L1 after the APGD stages, within the budget', () => {
    const eps = 0.8;
    const t = linearL1Task(12, 40, 5, eps);
    let report: AutoAttackReport | undefined;
    // One APGD step without restarts leaves images for FAB-T, which then fools some of them.
    const adv = autoAttackL1(t.model, t.x, t.y, { eps, steps: 3, restarts: 1, targetClasses: 2, fab: true }, (r) => (report = r));
    for (const v of perExampleDistances(adv.dataSync(), t.xs, 40).l1) expect(v).toBeLessThanOrEqual(eps);
    expect(report!.fooledBy['fab-t']).toBeGreaterThan(0);
    tf.dispose([t.x, t.y, adv]);
  });

  it('refuses what has no L1 version here (Square, the plus version) and a schedule without three phases', () => {
    const t = linearL1Task(13, 4, 5, 1);
    expect(() => autoAttackL1(t.model, t.x, t.y, { eps: 1, queries: 100 })).toThrow(/autoattack-l1: Square has no L1 version here/);
    expect(() => autoAttackL1(t.model, t.x, t.y, { eps: 1, fab: true, version: 'rand' })).toThrow(/version "rand" runs APGD-CE and APGD-DLR only; fab does not apply/);
    expect(() => autoAttackL1(t.model, t.x, t.y, { eps: 1, version: 'plus' })).toThrow(/autoattack-l1: version "plus"/);
    expect(() => autoAttackL1(t.model, t.x, t.y, { eps: 1, steps: 2 })).toThrow(/autoattack-l1: the L1 eps schedule .* steps >= 3/);
    expect(() => autoAttackL1(t.model, t.x, t.y, { eps: 1, norm: 'l2' } as never)).toThrow(/autoattack-l1: do not pass norm/);
    tf.dispose([t.x, t.y]);
  });
});

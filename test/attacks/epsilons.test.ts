// attackOverEpsilons (one result per epsilon, each with its threat model) and the batched dataset evaluation.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { accuracyFromMinimalNorms, attackOverEpsilons, correctness, evaluateAttackOnDataset, minimalNormsOnDataset, type MinimalNormAttack } from '../../attacks/epsilons.ts';
import { fab, fabMinimal } from '../../attacks/fab.ts';
import { getAttack } from '../../attacks/index.ts';
import { parseEpsilonList } from '../../src/eps.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, perExampleDistances, randomImagesData, randomWeights, rng } from './helpers.ts';

const W = randomWeights(1, 12, 3, 3);
const model = linearModel(W, [0, 0, 0]);

function data(n: number, seed: number) {
  const images = randomImagesData(seed, n * 12);
  const r = rng(seed + 1);
  const labels = Int32Array.from({ length: n }, () => Math.floor(r() * 3));
  return { images, labels, height: 2, width: 2, channels: 3 };
}

describe('attackOverEpsilons', () => {
  it('returns one result per epsilon with its ThreatModel, clean images at eps 0, budgets respected', () => {
    const d = data(6, 2);
    const x = tf.tensor4d(d.images, [6, 2, 2, 3]);
    const y = tf.tensor1d(d.labels, 'int32');
    const eps = parseEpsilonList('0,4/255,0.1');
    for (const [name, norm] of [['pgd', 'linf'], ['pgd-l2', 'l2']] as const) {
      const res = attackOverEpsilons(name, model, x, y, eps, { steps: 3, seed: 1 });
      expect(res.map((r) => r.threat)).toEqual(eps.map((e) => ({ norm, eps: e.value, epsLabel: e.label, bounds: [0, 1] })));
      expect(Array.from(res[0].adversarial.dataSync())).toEqual(Array.from(d.images));
      res.forEach((r, i) => {
        const dist = perExampleDistances(r.adversarial.dataSync(), d.images, 6);
        for (const v of norm === 'linf' ? dist.linf : dist.l2) expect(v).toBeLessThanOrEqual(eps[i].value + 1e-6);
        expect(r.correct).toEqual(correctness(model, r.adversarial, y));
        expect(r.accuracy).toBe(r.correct.filter(Boolean).length / 6);
      });
      tf.dispose(res.map((r) => r.adversarial));
    }
    expect(() => attackOverEpsilons('pgd', model, x, y, [], {})).toThrow(/epsilons: expected a non-empty list/);
    expect(() => attackOverEpsilons('pgd', model, x, y, eps, { eps: 0.1 })).toThrow(/do not pass eps/);
    expect(() => attackOverEpsilons('nope', model, x, y, eps)).toThrow(/unknown attack "nope"; known attacks: fgsm, pgd/);
    expect(() => attackOverEpsilons('fgsm', model, x, y, [{ value: -1, label: '-1' }])).toThrow(/epsilons\[0\] \(-1\): must be a finite number >= 0/);
    tf.dispose([x, y]);
  });

  it('runs a search that ignores eps (HopSkipJump, DeepFool, C&W, EAD) once, and gives bit for bit what the budgeted attack gives at each eps', () => {
    const d = data(6, 3);
    const x = tf.tensor4d(d.images, [6, 2, 2, 3]);
    // Labelled as the model predicts, so every image has a boundary to find.
    const y = tf.tidy(() => tf.argMax(model(x), 1).toInt()) as tf.Tensor1D;
    // EAD's L1 sizes here lie between 0.25 and 1.3: budgets of its own scale.
    const cases = [['hsja', { steps: 3, initEvals: 10, seed: 4 }], ['deepfool-linf', { steps: 4 }], ['cw-l2', { steps: 30, searchSteps: 3, initialConst: 1 }], ['ead', { steps: 30, searchSteps: 3, initialConst: 1, beta: 0.01 }]] as const;
    for (const [name, opts] of cases) {
      const eps = name === 'ead' ? parseEpsilonList('0,0.3,0.7,2', '--eps', 'l1') : parseEpsilonList('0,0.05,0.2,1');
      let calls = 0;
      const counting = (v: tf.Tensor4D) => (calls++, model(v));
      const res = attackOverEpsilons(name, counting, x, y, eps, opts);
      const sharedCalls = calls;
      calls = 0;
      eps.forEach((e, i) => {
        const alone = e.value === 0 ? tf.clone(x) : getAttack(name).run(counting, x, y, { ...opts, eps: e.value });
        expect(Array.from(res[i].adversarial.dataSync())).toEqual(Array.from(alone.dataSync()));
        alone.dispose();
      });
      // The per-eps runs searched three times.
      expect(sharedCalls).toBeLessThan(calls / 2);
      // Not vacuous: the budget changes the outcome.
      expect(new Set(res.map((r) => r.accuracy)).size).toBeGreaterThan(2);
      tf.dispose(res.map((r) => r.adversarial));
    }
    tf.dispose([x, y]);
  });

  it('a targeted C&W or EAD keeps the per-eps path (success means the target wins), equal to the budgeted attack at each eps', () => {
    const d = data(6, 3);
    const x = tf.tensor4d(d.images, [6, 2, 2, 3]);
    const y = tf.tidy(() => tf.argMax(model(x), 1).toInt()) as tf.Tensor1D;
    const targets = tf.tidy(() => tf.mod(tf.add(y, 1), 3).toInt()) as tf.Tensor1D;
    const eps = parseEpsilonList('0,0.2,1');
    for (const name of ['cw-l2', 'ead']) {
      const opts = { steps: 20, searchSteps: 2, initialConst: 1, targeted: true, targets };
      let calls = 0;
      const counting = (v: tf.Tensor4D) => (calls++, model(v));
      const res = attackOverEpsilons(name, counting, x, y, eps, opts);
      const sweepCalls = calls;
      calls = 0;
      eps.forEach((e, i) => {
        const alone = e.value === 0 ? tf.clone(x) : getAttack(name).run(counting, x, y, { ...opts, eps: e.value });
        expect(Array.from(res[i].adversarial.dataSync())).toEqual(Array.from(alone.dataSync()));
        alone.dispose();
      });
      // The same searches, one per eps, plus one correctness check per eps.
      expect(sweepCalls).toBe(calls + eps.length);
      tf.dispose(res.map((r) => r.adversarial));
    }
    tf.dispose([x, y, targets]);
  });

  it('leaks no tensor over repeated shared searches', async () => {
    const d = data(4, 5);
    const x = tf.tensor4d(d.images, [4, 2, 2, 3]);
    const y = tf.tidy(() => tf.argMax(model(x), 1).toInt()) as tf.Tensor1D;
    const eps = parseEpsilonList('0,0.05,0.2');
    for (const [name, opts] of [['hsja', { steps: 2, initEvals: 5, seed: 1 }], ['deepfool', { steps: 3 }], ['ead', { steps: 3, searchSteps: 2 }]] as const) {
      await assertNoTensorLeak(() => attackOverEpsilons(name, model, x, y, eps, opts).map((r) => r.adversarial), { label: `attackOverEpsilons ${name}` });
    }
    tf.dispose([x, y]);
  });
});

describe('evaluateAttackOnDataset', () => {
  it('in batches gives the same per-example correctness as one big batch (deterministic attack)', () => {
    const d = data(10, 3);
    const eps = parseEpsilonList('0,2/255,8/255,0.2');
    const x = tf.tensor4d(d.images, [10, 2, 2, 3]);
    const y = tf.tensor1d(d.labels, 'int32');
    const whole = attackOverEpsilons('pgd', model, x, y, eps, { steps: 3, randomStart: false });
    let progress = 0;
    const batched = evaluateAttackOnDataset('pgd', model, d, eps, { batchSize: 3, options: { steps: 3, randomStart: false }, onBatch: (done) => (progress = done) });
    expect(progress).toBe(10);
    batched.forEach((r, i) => {
      expect(r.threat).toEqual(whole[i].threat);
      expect(Array.from(r.correct, Boolean)).toEqual(whole[i].correct);
      expect(r.accuracy).toBeCloseTo(whole[i].accuracy, 12);
    });
    tf.dispose([x, y, ...whole.map((r) => r.adversarial)]);
  });

  it('examples: k keeps exactly the images that were judged (across batches, seeded per batch) and the class on each', async () => {
    const d = data(7, 5);
    const eps = parseEpsilonList('0,8/255,0.2');
    const res = evaluateAttackOnDataset('pgd', model, d, eps, { batchSize: 3, options: { steps: 3, seed: 4 }, examples: 5 });
    // Batch b ran with seed 4 + b: the first 5 images are batch 0 (images 0-2) and the head of batch 1.
    const parts = [0, 1].map((b) => {
      const x = tf.tensor4d(d.images.slice(b * 36, (b + 1) * 36), [3, 2, 2, 3]);
      const y = tf.tensor1d(d.labels.slice(b * 3, (b + 1) * 3), 'int32');
      const out = attackOverEpsilons('pgd', model, x, y, eps, { steps: 3, seed: 4 + b });
      tf.dispose([x, y]);
      return out;
    });
    res.forEach((r, i) => {
      const want = [...parts[0][i].adversarial.dataSync(), ...parts[1][i].adversarial.dataSync()].slice(0, 5 * 12);
      expect(Array.from(r.examples!.images)).toEqual(want);
      const pred = Array.from(tf.tidy(() => tf.argMax(model(tf.tensor4d(want, [5, 2, 2, 3])), 1).dataSync()));
      expect(Array.from(r.examples!.predictions)).toEqual(pred);
      // Consistent with the recorded correctness.
      pred.forEach((p, j) => expect(p === d.labels[j]).toBe(r.correct[j] === 1));
    });
    expect(Array.from(res[0].examples!.images)).toEqual(Array.from(d.images.slice(0, 60)));
    tf.dispose(parts.flat().map((r) => r.adversarial));
    // More than the data holds: all of it; none asked: no examples field.
    expect(evaluateAttackOnDataset('fgsm', model, d, eps, { examples: 50 })[1].examples!.predictions).toHaveLength(7);
    expect(evaluateAttackOnDataset('fgsm', model, d, eps)[1].examples).toBeUndefined();
    expect(() => evaluateAttackOnDataset('fgsm', model, d, eps, { examples: -1 })).toThrow(/examples: must be an integer >= 0/);
    await assertNoTensorLeak(() => {
      evaluateAttackOnDataset('pgd', model, d, eps, { batchSize: 3, options: { steps: 2 }, examples: 4 });
    }, { label: 'evaluateAttackOnDataset with examples' });
  });

  it('checks its inputs before the loop and leaks nothing', async () => {
    const d = data(5, 4);
    const eps = parseEpsilonList('0,4/255');
    expect(() => evaluateAttackOnDataset('fgsm', model, { ...d, images: d.images.subarray(1) }, eps)).toThrow(/data: images hold 59 values/);
    expect(() => evaluateAttackOnDataset('fgsm', model, { ...d, labels: Int32Array.from([0, 1, 9, 0, 0]) }, eps)).toThrow(/data: labels: entry 2 is 9/);
    expect(() => evaluateAttackOnDataset('fgsm', model, { ...d, images: d.images.map((v) => v * 2) }, eps)).toThrow(/data: images: pixels must lie in \[0,1\]/);
    expect(() => evaluateAttackOnDataset('fgsm', model, d, eps, { batchSize: 0 })).toThrow(/batchSize: must be an integer >= 1/);
    // Records take their norm from the registry: an option that switches norms is refused, naming the way out.
    expect(() => evaluateAttackOnDataset('apgd', model, d, eps, { options: { norm: 'l2' } })).toThrow('options.norm: apgd is the linf attack and its results are recorded as linf; for l2 use the attack registered for that norm (e.g. apgd-l2, fab-l2, square-l2, autoattack-l2)');
    expect(() => evaluateAttackOnDataset('autoattack', model, d, eps, { options: { norm: 'l2' } })).toThrow(/options.norm: autoattack is the linf attack/);
    await assertNoTensorLeak(() => {
      evaluateAttackOnDataset('apgd', model, d, eps, { batchSize: 2, options: { steps: 3 } });
    }, { label: 'evaluateAttackOnDataset' });
    const x = tf.tensor4d(d.images, [5, 2, 2, 3]);
    const y = tf.tensor1d(d.labels, 'int32');
    expect(() => attackOverEpsilons('fab', model, x, y, eps, { norm: 'l2' })).toThrow(/options.norm: fab is the linf attack/);
    // The norm the entry already has is accepted, and the threat model says it.
    const l2 = attackOverEpsilons('square-l2', model, x, y, parseEpsilonList('0.5'), { queries: 2 });
    expect(l2[0].threat).toEqual({ norm: 'l2', eps: 0.5, epsLabel: '0.5', bounds: [0, 1] });
    tf.dispose(l2.map((r) => r.adversarial));
    await assertNoTensorLeak(() => attackOverEpsilons('pgd', model, x, y, eps, { steps: 2 }).map((r) => r.adversarial), { label: 'attackOverEpsilons' });
    tf.dispose([x, y]);
  });
});

describe('ensemble stages', () => {
  it('evaluateAttackOnDataset sums AutoAttack\'s stage counts over batches; they add up with what stays correct', () => {
    const d = data(10, 6);
    const eps = parseEpsilonList('0,0.05,0.3');
    const res = evaluateAttackOnDataset('autoattack', model, d, eps, { batchSize: 4, options: { steps: 2, queries: 3 } });
    const clean = res[0].correct.reduce((a, b) => a + b, 0);
    expect(res[0].stages).toBeUndefined();
    for (const r of res.slice(1)) {
      expect(Object.keys(r.stages!)[0]).toBe('apgd-ce');
      expect(Object.values(r.stages!).reduce((a, b) => a + b, 0) + r.correct.reduce((a, b) => a + b, 0)).toBe(clean);
    }
    expect(res[2].stages!['apgd-ce']).toBeGreaterThan(0);
    expect(evaluateAttackOnDataset('fgsm', model, d, eps, { batchSize: 4 })[2].stages).toBeUndefined();
  });
});

describe('minimal-norm evaluation', () => {
  it('accuracyFromMinimalNorms: correct at eps iff no adversarial example within eps; eps 0 is clean accuracy', () => {
    const eps = parseEpsilonList('0,0.1,0.2');
    const res = accuracyFromMinimalNorms([0, 0.1, 0.15, Infinity], eps, 'linf');
    expect(res.map((r) => Array.from(r.correct))).toEqual([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]]);
    expect(res.map((r) => r.accuracy)).toEqual([0.75, 0.5, 0.25]);
    expect(res[1].threat).toEqual({ norm: 'linf', eps: 0.1, epsLabel: '0.1', bounds: [0, 1] });
    expect(() => accuracyFromMinimalNorms([0.1, NaN], eps, 'l2')).toThrow(/norms: entry 1 is NaN/);
    expect(() => accuracyFromMinimalNorms([], eps, 'l2')).toThrow(/norms: empty/);
  });

  it('minimalNormsOnDataset: per-batch FAB runs; the curve bounds the budgeted FAB at every eps; leaks nothing', async () => {
    const d = data(10, 4);
    const minimal = fabMinimal as unknown as MinimalNormAttack;
    const norms = minimalNormsOnDataset(minimal, model, d, { batchSize: 4, options: { eps: 0.3, steps: 5 } });
    const eps = parseEpsilonList('0,0.02,0.05,0.3');
    const curve = accuracyFromMinimalNorms(norms, eps, 'linf');
    // Same runs (one per batch, seed + b): the budgeted attack fools at least the images found within eps.
    const budgeted = evaluateAttackOnDataset({ name: 'fab', run: fab as never, norm: 'linf', defaults: {}, description: '', paper: '' }, model, d, eps, { batchSize: 4, options: { steps: 5 } });
    curve.forEach((c, i) => {
      for (let j = 0; j < 10; j++) if (budgeted[i].correct[j]) expect(c.correct[j]).toBe(1);
    });
    expect(curve[0].accuracy).toBe(budgeted[0].accuracy);
    expect(curve.at(-1)!.accuracy).toBeLessThan(curve[0].accuracy);
    const x = tf.tensor4d(d.images, [10, 2, 2, 3]);
    const y = tf.tensor1d(d.labels, 'int32');
    expect(Array.from(norms).map((v) => v === 0)).toEqual(correctness(model, x, y).map((c) => !c));
    tf.dispose([x, y]);
    await assertNoTensorLeak(() => {
      minimalNormsOnDataset(minimal, model, d, { batchSize: 3, options: { eps: 0.1, steps: 2 } });
      return tf.scalar(0);
    }, { label: 'minimalNormsOnDataset' });
  });
});

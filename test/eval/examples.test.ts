// Evaluation pictures: which attack is drawn, what the pictures hold (budget, predictions, layout), the
// JPEG mode restored, determinism, leaks and bad input.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fgsm } from '../../attacks/fgsm.ts';
import { pgd } from '../../attacks/pgd.ts';
import { buildModel } from '../../models/registry.ts';
import { seriesSlug, strongestAttackRecord, writeEvaluationExamples, type ExampleAttack } from '../../src/eval/examples.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { fakeRecord } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const threat = (eps: number, epsLabel: string) => ({ norm: 'linf' as const, eps, epsLabel, bounds: [0, 1] as [number, number] });

describe('strongestAttackRecord', () => {
  const attacks = [{ name: 'fgsm', params: {} }, { name: 'pgd', params: { steps: 10 } }, { name: 'square', params: { queries: 100 } }];
  const s = { name: 'baseline', modelSeed: 0, jpegMode: null };
  it('picks the lowest accuracy at the largest eps, the first attack on ties, and only this series\' own attacks', () => {
    const recs = [
      fakeRecord({ attack: 'clean', threat: threat(0, '0'), accuracy: 0.9 }),
      fakeRecord({ attack: 'fgsm', threat: threat(4 / 255, '4/255'), accuracy: 0.1 }),
      fakeRecord({ attack: 'fgsm', threat: threat(8 / 255, '8/255'), accuracy: 0.5 }),
      fakeRecord({ attack: 'pgd', attackParams: { steps: 10 }, threat: threat(8 / 255, '8/255'), accuracy: 0.3 }),
      fakeRecord({ attack: 'square', attackParams: { queries: 100 }, threat: threat(8 / 255, '8/255'), accuracy: 0.3 }),
      // Another model, a transfer cell and another seed are not this series.
      fakeRecord({ model: 'jpeg-dl', attack: 'fgsm', threat: threat(8 / 255, '8/255'), accuracy: 0 }),
      fakeRecord({ attack: 'fgsm', attackParams: { surrogate: 'jpeg-dl' }, threat: threat(8 / 255, '8/255'), accuracy: 0 }),
      fakeRecord({ modelSeed: 1, attack: 'fgsm', threat: threat(8 / 255, '8/255'), accuracy: 0 }),
    ];
    const r = strongestAttackRecord(recs, s, attacks);
    expect([r?.attack, r?.attackParams]).toEqual(['pgd', { steps: 10 }]);
    // Ties go to the attack listed first.
    expect(strongestAttackRecord(recs, s, [attacks[2], attacks[1]])?.attack).toBe('square');
    // Parameters are part of the attack's identity.
    expect(strongestAttackRecord(recs, s, [attacks[0], { name: 'pgd', params: { steps: 5 } }])?.attack).toBe('fgsm');
    expect(strongestAttackRecord(recs.slice(0, 1), s, attacks)).toBeNull();
  });

  it('in an evaluation mixing norms, compares only the budgets of the first attack\'s norm', () => {
    const l2 = (eps: number, epsLabel: string) => ({ ...threat(eps, epsLabel), norm: 'l2' as const });
    const recs = [
      fakeRecord({ attack: 'fgsm', threat: threat(8 / 255, '8/255'), accuracy: 0.4 }),
      fakeRecord({ attack: 'pgd', attackParams: { steps: 10 }, threat: threat(8 / 255, '8/255'), accuracy: 0.3 }),
      // An L2 size of 1 is not "larger" than 8/255 in any useful sense, however low its accuracy.
      fakeRecord({ attack: 'pgd-l2', threat: l2(1, '1'), accuracy: 0 }),
    ];
    const withL2 = [...attacks.slice(0, 2), { name: 'pgd-l2', params: {} }];
    expect(strongestAttackRecord(recs, s, withL2)?.attack).toBe('pgd');
    expect(strongestAttackRecord(recs, s, [withL2[2], ...withL2.slice(0, 2)])?.attack).toBe('pgd-l2');
  });

  it('names series as files', () => {
    expect(seriesSlug('jpeg-dl [soft]')).toBe('jpeg-dl-soft');
    expect(seriesSlug('median-2x2')).toBe('median-2x2');
    expect(seriesSlug('[]')).toBe('model');
  });
});

describe('writeEvaluationExamples', () => {
  // A linear head on 8x8x3 images (an untrained CNN answers one class, which fools nothing).
  const linear = () => tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 3] }), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.randomNormal({ seed: 4, stddev: 0.3 }) })] });
  const eps = [{ value: 0, label: '0' }, { value: 4 / 255, label: '4/255' }, { value: 16 / 255, label: '16/255' }];
  const fgsmAttack: ExampleAttack = { name: 'fgsm', params: {}, fn: fgsm as never, norm: 'linf', seeded: false };

  it('draws the chosen attack on the first k images within each eps, with the model\'s predictions on them', () => {
    const model = linear();
    const x = tf.randomUniform([10, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const recs = [fakeRecord({ attack: 'fgsm', threat: threat(16 / 255, '16/255'), accuracy: 0.2 })];
    const out = writeEvaluationExamples({ outDir: join(dir, 'a'), k: 4, series: [{ label: 'baseline', model, jpegMode: null, name: 'baseline', modelSeed: 0 }], attacks: [fgsmAttack], epsilons: eps, records: recs, images: x, labels: y, seed: 0, classNames: ['a', 'b', 'c'] });
    expect(out).toEqual([{ series: 'baseline', attack: 'fgsm', attackParams: {}, png: join('examples', 'baseline', 'examples.png'), json: join('examples', 'baseline', 'examples.json') }]);
    const meta = JSON.parse(readFileSync(join(dir, 'a', out[0].json), 'utf8'));
    expect(meta.rows.map((r: { kind: string; epsLabel?: string }) => `${r.kind}${r.epsLabel ? ` ${r.epsLabel}` : ''}`)).toEqual(['clean', 'adversarial 4/255', 'perturbation 4/255', 'adversarial 16/255', 'perturbation 16/255']);
    expect(meta.examples).toHaveLength(4);
    // Exactly what FGSM gives on those four images: same budget, same predictions.
    const x4 = x.slice(0, 4), y4 = y.slice(0, 4);
    for (const [j, e] of [4 / 255, 16 / 255].entries()) {
      const adv = fgsm(model, x4, y4, { eps: e });
      const pred = tf.tidy(() => Array.from(tf.argMax(model.predict(adv) as tf.Tensor, 1).dataSync()));
      meta.examples.forEach((ex: { perEps: { linf: number; prediction: number; fooled: boolean }[]; label: number }, i: number) => {
        expect(ex.perEps[j].linf).toBeLessThanOrEqual(e + 1e-6);
        expect(ex.perEps[j].prediction).toBe(pred[i]);
        expect(ex.perEps[j].fooled).toBe(pred[i] !== ex.label);
      });
      adv.dispose();
    }
    // A larger budget fools at least one of them here (the picture is not of a model nothing fools).
    expect(meta.examples.some((ex: { perEps: { fooled: boolean }[] }) => ex.perEps[1].fooled)).toBe(true);
    expect(meta.chosenBecause).toMatch(/16\/255: 20\.0%/);
    tf.dispose([x, y, x4, y4]);
    model.dispose();
  });

  it('draws a JPEG-DL model in the mode of its records and restores its mode; the same seed draws the same bytes; no leaks', async () => {
    const model = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 3, seed: 1, jpeg: { quality: 50 } });
    const layer = model.layers.find((l) => l instanceof JpegLayer) as JpegLayer;
    expect(layer.mode).toBe('soft');
    const x = tf.randomUniform([5, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 0, 1], 'int32');
    const pgdAttack: ExampleAttack = { name: 'pgd', params: { steps: 2 }, fn: pgd as never, norm: 'linf', seeded: true };
    const recs = [fakeRecord({ model: 'jpeg-dl', variant: 'jpeg-dl', jpegMode: 'hard', attack: 'pgd', attackParams: { steps: 2 }, threat: threat(16 / 255, '16/255') })];
    let seen: string | undefined;
    const spy: ExampleAttack = { ...pgdAttack, fn: ((m: tf.LayersModel, a: tf.Tensor4D, b: tf.Tensor1D, o: Record<string, unknown>) => { seen = layer.mode; return pgd(m, a, b, o as never); }) as never };
    const opts = (out: string, attack: ExampleAttack) => ({ outDir: join(dir, out), k: 3, series: [{ label: 'jpeg-dl [hard]', model, jpegMode: 'hard', name: 'jpeg-dl', modelSeed: 0 }], attacks: [attack], epsilons: eps, records: recs, images: x, labels: y, seed: 7 });
    const first = writeEvaluationExamples(opts('b1', spy));
    expect(seen).toBe('hard');
    expect(layer.mode).toBe('soft');
    expect(first[0].png).toBe(join('examples', 'jpeg-dl-hard', 'examples.png'));
    writeEvaluationExamples(opts('b2', pgdAttack));
    expect(readFileSync(join(dir, 'b2', first[0].png)).equals(readFileSync(join(dir, 'b1', first[0].png)))).toBe(true);
    await assertNoTensorLeak(() => writeEvaluationExamples(opts('b3', pgdAttack)), { label: 'writeEvaluationExamples' });
    expect(() => writeEvaluationExamples({ ...opts('b4', pgdAttack), k: 0 })).toThrow('examples: k must be a positive integer, got 0');
    tf.dispose([x, y]);
    model.dispose();
  });
});

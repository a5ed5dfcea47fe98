// Randomised JPEG as an input defence: exactly random JPEG then the model; hard rounding hides the
// gradient from PGD, BPDA with EOT breaks it within the budget; the EOT gradient is the mean of the
// single-draw gradients the same stream gives; a sweep's numbers do not depend on which cells ran
// before in the process (resume) nor on the process (worker job); spec parsing; errors; leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bpdaModel, hasBpdaLayers } from '../../attacks/bpda.ts';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import { pgd } from '../../attacks/pgd.ts';
import { buildModel } from '../../models/registry.ts';
import { defenceName, defenceVariant, defended, parseDefenceList, parseDefenceSpec } from '../../src/defences/index.ts';
import { randomJpegDefended } from '../../src/defences/random-jpeg.ts';
import { findNamedAttack } from '../../src/eval/named-attacks.ts';
import type { SweepAttack } from '../../src/eval/sweep.ts';
import { jpegForward } from '../../src/jpeg/forward.ts';
import { RandomJpegLayer } from '../../src/jpeg/random.ts';
import { standardTables } from '../../src/jpeg/tables.ts';
import { reseedRandomLayers } from '../../src/layers/random.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { expectEotIsMeanOfSingles, expectSweepResumeSame, expectWorkerDrawsSame, images, linear, linf } from './randomised-checks.ts';

const fooledCount = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(m.predict(x) as tf.Tensor, 1), y).toInt()).dataSync()[0]);
const layerOf = (d: tf.LayersModel) => d.layers.find((l) => l instanceof RandomJpegLayer) as RandomJpegLayer;

describe('randomJpegDefended', () => {
  it('is JPEG at each image\'s drawn quality, then the model; the weights are the model\'s', () => {
    const model = linear();
    const d = randomJpegDefended(model, { minQuality: 20, maxQuality: 95, seed: 4 });
    const x = images();
    const out = d.predict(x) as tf.Tensor;
    const qs = layerOf(d).lastQualities();
    const want = tf.concat(Array.from(qs, (q, i) => tf.tidy(() => model.predict(jpegForward(x.slice([i, 0, 0, 0], [1, -1, -1, -1]), [standardTables(q)], { mode: 'hard' })) as tf.Tensor)));
    expect(linf(out, want)).toBeLessThan(1e-5);
    expect(d.trainableWeights.map((w) => w.name)).toEqual(model.trainableWeights.map((w) => w.name));
    expect(defenceName({ kind: 'rjpeg', minQuality: 20, maxQuality: 95, per: 'image' })).toBe('rjpeg-q20-95');
    tf.dispose([x, out, want]);
    d.dispose();
    model.dispose();
  });

  it('hard rounding gives PGD a zero gradient; BPDA-PGD with EOT breaks it within the L-inf budget and the pixel range', () => {
    const model = linear();
    const d = randomJpegDefended(model, { minQuality: 40, maxQuality: 80 });
    const x = images();
    reseedRandomLayers(d, 1);
    const y = tf.tidy(() => tf.argMax(d.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const eps = 24 / 255;
    const stuck = pgd(d, x, y, { eps, steps: 5, randomStart: false });
    expect(Array.from(stuck.dataSync())).toEqual(Array.from(x.dataSync()));
    expect(hasBpdaLayers(d)).toBe(true);
    const adv = bpdaPgd(d, x, y, { eps, steps: 10, randomStart: false, eotSamples: 4 });
    expect(linf(adv, x)).toBeLessThanOrEqual(eps + 1e-6);
    expect(tf.tidy(() => tf.min(adv).dataSync()[0])).toBeGreaterThanOrEqual(0);
    expect(tf.tidy(() => tf.max(adv).dataSync()[0])).toBeLessThanOrEqual(1);
    expect(fooledCount(d, adv, y)).toBeGreaterThan(0);
    expect(layerOf(d).mode).toBe('hard'); // bpdaModel restored it
    tf.dispose([x, y, stuck, adv]);
    model.dispose();
  });

  it('the EOT gradient is the mean of the single-draw gradients the same stream gives, which differ from draw to draw', () => {
    const model = linear();
    const d = randomJpegDefended(model, { minQuality: 10, maxQuality: 90, per: 'block' });
    expectEotIsMeanOfSingles(d, bpdaModel(d, { backward: 'identity' }));
    model.dispose();
  });

  it('with draws=k averages k draws, and BPDA with EOT still reaches the rounding inside (within budget)', () => {
    const model = linear();
    const d = randomJpegDefended(model, { minQuality: 40, maxQuality: 80, draws: 3 });
    expect(d.name).toMatch(/_rjpeg40_80_avg3$/);
    expect(hasBpdaLayers(d)).toBe(true);
    const x = images();
    const y = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const out = d.predict(x) as tf.Tensor;
    expect(out.shape).toEqual([6, 4]);
    expect(Array.from(tf.tidy(() => tf.sum(tf.exp(out), 1)).dataSync()).every((v) => Math.abs(v - 1) < 1e-5)).toBe(true);
    expect(layerOf(d).lastQualities()).toHaveLength(18); // 3 draws x 6 images
    const eps = 24 / 255;
    const adv = bpdaPgd(d, x, y, { eps, steps: 5, randomStart: false, eotSamples: 2 });
    expect(linf(adv, x)).toBeLessThanOrEqual(eps + 1e-6);
    expect(linf(adv, x)).toBeGreaterThan(eps / 2);
    tf.dispose([x, y, out, adv]);
    d.dispose();
    model.dispose();
  });

  it('refuses what it cannot defend, naming the problem, and leaks nothing', async () => {
    const model = linear();
    expect(() => randomJpegDefended(model, { minQuality: 80, maxQuality: 40 })).toThrow(/maxQuality \(40\) must be at least minQuality \(80\)/);
    const jpegDl = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 4, seed: 1, jpeg: {} });
    expect(() => randomJpegDefended(jpegDl, { minQuality: 40, maxQuality: 80 })).toThrow(/already has a JPEG layer/);
    jpegDl.dispose();
    const x = images();
    await assertNoTensorLeak(() => {
      const d = randomJpegDefended(model, { minQuality: 40, maxQuality: 80, per: 'block' });
      tf.dispose(d.predict(x) as tf.Tensor);
      d.dispose();
    }, { label: 'randomJpegDefended' });
    x.dispose();
    model.dispose();
  });
});

describe('rjpeg specs', () => {
  it('parse a quality range and a unit, name each model and variant, and refuse bad ones', () => {
    expect(parseDefenceList('rjpeg:50-90, rjpeg: 20 - 80 :block,jpeg:75')).toEqual([
      { kind: 'rjpeg', minQuality: 50, maxQuality: 90, per: 'image' },
      { kind: 'rjpeg', minQuality: 20, maxQuality: 80, per: 'block' },
      { kind: 'jpeg', quality: 75 },
    ]);
    expect(parseDefenceList('rjpeg:50-90,rjpeg:50-90:block').map(defenceName)).toEqual(['rjpeg-q50-90', 'rjpeg-q50-90-block']);
    expect(defenceVariant(parseDefenceSpec('rjpeg:50-90'))).toBe('random-jpeg');
    expect(parseDefenceSpec('rjpeg:50-90:image')).toEqual({ kind: 'rjpeg', minQuality: 50, maxQuality: 90, per: 'image' });
    expect(() => parseDefenceSpec('rjpeg:90-50')).toThrow('--defence: rjpeg:90-50 has its highest quality below its lowest; give rjpeg:<lo>-<hi>');
    expect(() => parseDefenceSpec('rjpeg:0-50')).toThrow('--defence: rjpeg needs integer qualities in 1..100, got "0"');
    expect(() => parseDefenceSpec('rjpeg:50-90.5')).toThrow('--defence: rjpeg needs integer qualities in 1..100, got "90.5"');
    expect(() => parseDefenceSpec('rjpeg:50-90:pixel')).toThrow('--defence: rjpeg\'s unit must be "image" (default) or "block", got "pixel"');
    expect(() => parseDefenceSpec('rjpeg:75', '--defence')).toThrow(/"rjpeg:75" is not a randomised JPEG defence; give rjpeg:<lo>-<hi>/);
    expect(() => parseDefenceList('rjpeg:50-90,rjpeg:50-90')).toThrow('--defence: rjpeg-q50-90 is listed twice');
    const model = linear();
    const d = defended(model, parseDefenceSpec('rjpeg:30-60:block'));
    expect(layerOf(d).per).toBe('block');
    expect([layerOf(d).minQuality, layerOf(d).maxQuality]).toEqual([30, 60]);
    d.dispose();
    model.dispose();
  });
});

describe('a sweep over a randomised defence', () => {
  const attack: SweepAttack = { name: 'bpda-pgd', params: { steps: 3, eotSamples: 2 }, fn: findNamedAttack('bpda-pgd')!.run, seeded: true };

  it('gives the same records run whole or resumed after other cells (each batch restarts the draws from its seed), in both JPEG modes', async () => {
    const whole = await expectSweepResumeSame((m) => ({ name: 'rjpeg-q30-90', variant: 'random-jpeg', model: randomJpegDefended(m, { minQuality: 30, maxQuality: 90 }), jpegModes: ['soft', 'hard'] }), attack);
    expect(new Set(whole.map((r) => r.jpegMode))).toEqual(new Set(['soft', 'hard']));
    // The attack does something: at 16/255 BPDA-PGD with EOT leaves fewer correct than clean, in hard mode.
    const hardClean = whole.find((r) => r.jpegMode === 'hard' && r.attack === 'clean')!;
    const hardBpda = whole.find((r) => r.jpegMode === 'hard' && r.attack === 'bpda-pgd' && r.threat.epsLabel === '16/255')!;
    expect(hardBpda.correct).toBeLessThan(hardClean.correct);
  });

  it('a worker process draws what the sweep process draws for the same batch seed', async () => {
    const model = linear();
    const d = randomJpegDefended(model, { minQuality: 30, maxQuality: 90, per: 'block' });
    try {
      await expectWorkerDrawsSame(d, 'bpda-pgd', 'hard', (a, b, options) => bpdaPgd(d, a, b, options));
    } finally {
      d.dispose();
      model.dispose();
    }
  });
});

// Random resizing and padding as an input defence: exactly the layer then the model; differentiable, so
// PGD gets a gradient and stays within its budget; the EOT gradient is the mean of the single-draw
// gradients of the same stream; a sweep's numbers do not depend on resume or worker process; specs,
// names, variant, errors, leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { hasBpdaLayers } from '../../attacks/bpda.ts';
import { pgd } from '../../attacks/pgd.ts';
import { defenceName, defenceVariant, defended, parseDefenceList, parseDefenceSpec, resizePadDefended } from '../../src/defences/index.ts';
import { findNamedAttack } from '../../src/eval/named-attacks.ts';
import type { SweepAttack } from '../../src/eval/sweep.ts';
import { isRandomised, reseedRandomLayers } from '../../src/layers/random.ts';
import { RandomResizePad } from '../../src/layers/resize-pad.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { expectAveragedLayout, expectEotIsMeanOfSingles, expectSweepResumeSame, expectWorkerDrawsSame, images, linear, linf } from './randomised-checks.ts';

const layerOf = (d: tf.LayersModel) => d.layers.find((l) => l instanceof RandomResizePad) as RandomResizePad;

describe('resizePadDefended', () => {
  it('is the random resize and pad, then the model; the weights are the model\'s; it is randomised and has nothing for BPDA', () => {
    const model = linear();
    const d = resizePadDefended(model, { minSize: 5, maxSize: 10, seed: 4 });
    const x = images();
    reseedRandomLayers(d, 12);
    const out = d.predict(x) as tf.Tensor;
    const alone = new RandomResizePad({ minSize: 5, maxSize: 10, seed: 12 });
    const want = tf.tidy(() => model.predict(alone.apply(x) as tf.Tensor) as tf.Tensor);
    expect(linf(out, want)).toBeLessThan(1e-5);
    expect(d.trainableWeights.map((w) => w.name)).toEqual(model.trainableWeights.map((w) => w.name));
    expect(isRandomised(d)).toBe(true);
    expect(hasBpdaLayers(d)).toBe(false);
    tf.dispose([x, out, want]);
    d.dispose();
    // The wrapper's dispose leaves the caller's model usable.
    const y = model.predict(images(1)) as tf.Tensor;
    expect(y.shape).toEqual([1, 4]);
    y.dispose();
    model.dispose();
  });

  it('passes a true gradient: PGD moves the images, within the L-inf budget and the pixel range, and fools some', () => {
    const model = linear();
    const d = resizePadDefended(model, { minSize: 6, maxSize: 9, interpolation: 'bilinear' });
    const x = images(8, 5);
    reseedRandomLayers(d, 1);
    const y = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const eps = 24 / 255;
    const adv = pgd(d, x, y, { eps, steps: 10, randomStart: false, eotSamples: 4 });
    expect(linf(adv, x)).toBeGreaterThan(eps / 2);
    expect(linf(adv, x)).toBeLessThanOrEqual(eps + 1e-6);
    expect(tf.tidy(() => tf.min(adv).dataSync()[0])).toBeGreaterThanOrEqual(0);
    expect(tf.tidy(() => tf.max(adv).dataSync()[0])).toBeLessThanOrEqual(1);
    const wrong = tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(d.predict(adv) as tf.Tensor, 1), y).toInt()).dataSync()[0]);
    expect(wrong).toBeGreaterThan(0);
    tf.dispose([x, y, adv]);
    model.dispose();
  });

  it('the EOT gradient is the mean of the single-draw gradients the same stream gives, which differ from draw to draw', () => {
    const model = linear();
    const d = resizePadDefended(model, { minSize: 4, maxSize: 10 });
    expectEotIsMeanOfSingles(d, d);
    model.dispose();
  });

  it('refuses models it cannot wrap, naming the problem, and leaks nothing', async () => {
    const wide = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 10, 3] }), tf.layers.dense({ units: 2 })] });
    expect(() => resizePadDefended(wide, { minSize: 4, maxSize: 8 })).toThrow('resize-pad defence: the model must take square [s, s, c] images, it takes [8,10,3]');
    wide.dispose();
    const model = linear();
    expect(() => resizePadDefended(model, { minSize: 9, maxSize: 8 })).toThrow('RandomResizePad: maxSize must be an integer >= minSize (9), got 8');
    const x = images();
    await assertNoTensorLeak(() => {
      const d = resizePadDefended(model, { minSize: 4, maxSize: 10, interpolation: 'bilinear', fill: 0.5 });
      tf.dispose(d.predict(x) as tf.Tensor);
      d.dispose();
    }, { label: 'resizePadDefended' });
    x.dispose();
    model.dispose();
  });
});

describe('resizePadDefended with draws=k (the prediction averaged over k draws)', () => {
  it('is log of the mean softmax over k draws of the one-draw defence, on the same stream', () => {
    const model = linear();
    const k = 5;
    const avg = resizePadDefended(model, { minSize: 4, maxSize: 10, draws: k });
    const one = resizePadDefended(model, { minSize: 4, maxSize: 10 });
    expect(avg.name).toMatch(/_rrp4_10_avg5$/);
    const x = images(3, 8);
    reseedRandomLayers(avg, 31);
    const got = avg.predict(x) as tf.Tensor;
    expect(got.shape).toEqual([3, 4]);
    // The averaged model's layer draws for the k·N stacked rows in row order: the one-draw model on that stack, same seed.
    reseedRandomLayers(one, 31);
    const stacked = tf.concat(Array<tf.Tensor>(k).fill(x), 0);
    const perDraw = one.predict(stacked) as tf.Tensor2D;
    const want = tf.tidy(() => tf.sub(tf.logSumExp(tf.reshape(tf.logSoftmax(perDraw), [k, 3, 4]), 0), Math.log(k)));
    expect(linf(got, want)).toBeLessThan(1e-5);
    tf.dispose([x, got, stacked, perDraw, want]);
    avg.dispose();
    one.dispose();
    model.dispose();
  });

  it('changes its answers between calls less often than one draw does, and PGD through it stays within budget', () => {
    const model = linear();
    const x = images(60, 21);
    const flips = (d: tf.LayersModel) => tf.tidy(() => {
      const a = tf.argMax(d.predict(x) as tf.Tensor, 1);
      const b = tf.argMax(d.predict(x) as tf.Tensor, 1);
      return tf.sum(tf.notEqual(a, b).toInt()).dataSync()[0];
    });
    const one = resizePadDefended(model, { minSize: 4, maxSize: 10 });
    const avg = resizePadDefended(model, { minSize: 4, maxSize: 10, draws: 20 });
    const [f1, f20] = [flips(one), flips(avg)];
    expect(f1).toBeGreaterThan(5);
    expect(f20).toBeLessThan(f1 / 2);
    const y = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const adv = pgd(avg, x, y, { eps: 8 / 255, steps: 3 });
    expect(linf(adv, x)).toBeLessThanOrEqual(8 / 255 + 1e-6);
    tf.dispose([x, y, adv]);
    one.dispose();
    avg.dispose();
    model.dispose();
  });
});

describe('rrp specs', () => {
  it('parse a side range and a resampling, name each model and variant, and refuse bad ones', () => {
    expect(parseDefenceList('rrp:28-32, rrp: 32 - 36 :bilinear,rjpeg:50-90')).toEqual([
      { kind: 'rrp', minSize: 28, maxSize: 32, interpolation: 'nearest' },
      { kind: 'rrp', minSize: 32, maxSize: 36, interpolation: 'bilinear' },
      { kind: 'rjpeg', minQuality: 50, maxQuality: 90, per: 'image' },
    ]);
    expect(parseDefenceList('rrp:28-32,rrp:28-32:bilinear').map(defenceName)).toEqual(['rrp-28-32', 'rrp-28-32-bilinear']);
    expect(defenceVariant(parseDefenceSpec('rrp:28-32'))).toBe('random-resize-pad');
    expect(parseDefenceSpec('rrp:28-32:nearest')).toEqual({ kind: 'rrp', minSize: 28, maxSize: 32, interpolation: 'nearest' });
    expect(() => parseDefenceSpec('rrp:32-28')).toThrow('--defence: rrp:32-28 has its largest side below its smallest; give rrp:<lo>-<hi>');
    expect(() => parseDefenceSpec('rrp:0-28')).toThrow('--defence: rrp needs integer sides in 1..1024 pixels, got "0"');
    expect(() => parseDefenceSpec('rrp:28-32.5')).toThrow('--defence: rrp needs integer sides in 1..1024 pixels, got "32.5"');
    expect(() => parseDefenceSpec('rrp:28-32:cubic')).toThrow('--defence: rrp\'s resampling must be "nearest" (default) or "bilinear", got "cubic"');
    expect(() => parseDefenceSpec('rrp:30')).toThrow(/"rrp:30" is not a random resize-and-pad defence; give rrp:<lo>-<hi>/);
    expect(() => parseDefenceList('rrp:28-32,rrp:28-32:nearest')).toThrow('--defence: rrp-28-32 is listed twice');
    expect(() => parseDefenceSpec('blur:3')).toThrow(/rrp:<lo>-<hi>\[:bilinear\]/);
    expect(parseDefenceList('rrp:24-28:draws=10,rrp:24-28:bilinear:draws=30,rjpeg:50-90:block:draws=5')).toEqual([
      { kind: 'rrp', minSize: 24, maxSize: 28, interpolation: 'nearest', draws: 10 },
      { kind: 'rrp', minSize: 24, maxSize: 28, interpolation: 'bilinear', draws: 30 },
      { kind: 'rjpeg', minQuality: 50, maxQuality: 90, per: 'block', draws: 5 },
    ]);
    expect(parseDefenceList('rrp:24-28:draws=10,rrp:24-28,rjpeg:50-90:block:draws=5').map(defenceName)).toEqual(['rrp-24-28-avg10', 'rrp-24-28', 'rjpeg-q50-90-block-avg5']);
    expect(defenceVariant(parseDefenceSpec('rrp:24-28:draws=10'))).toBe('random-resize-pad');
    expect(() => parseDefenceSpec('rrp:24-28:draws=1')).toThrow('--defence: draws needs an integer in 2..1000 (draws averaged per prediction), got "1" in "rrp:24-28:draws=1"');
    expect(() => parseDefenceSpec('rrp:24-28:draws=ten')).toThrow(/draws needs an integer in 2\.\.1000 .*got "ten"/);
    expect(() => parseDefenceSpec('jpeg:75:draws=5')).toThrow('--defence: "jpeg:75:draws=5": draws=k averages a randomised defence over its draws, and jpeg-q75 draws nothing at random; give it to rjpeg, rrp or tvm');
    const model = linear();
    const d = defended(model, parseDefenceSpec('rrp:6-10:bilinear'));
    expect([layerOf(d).minSize, layerOf(d).maxSize, layerOf(d).interpolation]).toEqual([6, 10, 'bilinear']);
    d.dispose();
    model.dispose();
    expectAveragedLayout('rrp:6-10:draws=4', 'RandomResizePad');
  });
});

describe('a sweep over the resize-and-pad defence', () => {
  const attack: SweepAttack = { name: 'pgd', params: { steps: 3, eotSamples: 2 }, fn: findNamedAttack('pgd')!.run, seeded: true };

  it('gives the same records run whole or resumed after other cells (each batch restarts the draws from its seed)', async () => {
    const whole = await expectSweepResumeSame((m) => ({ name: 'rrp-5-10', variant: 'random-resize-pad', model: resizePadDefended(m, { minSize: 5, maxSize: 10 }) }), attack);
    expect(new Set(whole.map((r) => r.variant))).toEqual(new Set(['random-resize-pad']));
  });

  it('a worker process draws what the sweep process draws for the same batch seed', async () => {
    const model = linear();
    const d = resizePadDefended(model, { minSize: 5, maxSize: 10, interpolation: 'bilinear' });
    try {
      await expectWorkerDrawsSame(d, 'pgd', null, (a, b, options) => pgd(d, a, b, options));
    } finally {
      d.dispose();
      model.dispose();
    }
  });
});

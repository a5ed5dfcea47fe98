// Total variation minimisation as an input defence: exactly the layer then the model; PGD through the
// unrolled solver and BPDA-PGD (identity backward, Athalye et al.'s attack) both stay within budget and
// fool it; BPDA's gradient is the model's gradient at the reconstruction; EOT is the mean of single
// draws; sweeps resume and workers draw the same; specs, names, variant, errors, leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bpdaModel, hasBpdaLayers } from '../../attacks/bpda.ts';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import { pgd } from '../../attacks/pgd.ts';
import { defenceName, defenceVariant, defended, parseDefenceList, parseDefenceSpec, tvMinDefended } from '../../src/defences/index.ts';
import { findNamedAttack } from '../../src/eval/named-attacks.ts';
import type { SweepAttack } from '../../src/eval/sweep.ts';
import { isRandomised, reseedRandomLayers } from '../../src/layers/random.ts';
import { TotalVariationMin } from '../../src/layers/tv-min.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { expectAveragedLayout, expectEotIsMeanOfSingles, expectSweepResumeSame, expectWorkerDrawsSame, images, linear, linf } from './randomised-checks.ts';

const layerOf = (d: tf.LayersModel) => d.layers.find((l) => l instanceof TotalVariationMin) as TotalVariationMin;
const FAST = { iterations: 20 };

describe('tvMinDefended', () => {
  it('is dropout + TV reconstruction, then the model; the weights are the model\'s; it is randomised and BPDA finds its layer', () => {
    const model = linear();
    const d = tvMinDefended(model, { dropRate: 0.4, weight: 0.05, ...FAST, seed: 3 });
    const x = images();
    reseedRandomLayers(d, 12);
    const out = d.predict(x) as tf.Tensor;
    const alone = new TotalVariationMin({ dropRate: 0.4, weight: 0.05, ...FAST, seed: 12 });
    const want = tf.tidy(() => model.predict(alone.apply(x) as tf.Tensor) as tf.Tensor);
    expect(linf(out, want)).toBeLessThan(1e-5);
    expect(d.trainableWeights.map((w) => w.name)).toEqual(model.trainableWeights.map((w) => w.name));
    expect(isRandomised(d)).toBe(true);
    expect(hasBpdaLayers(d)).toBe(true);
    expect(d.name).toMatch(/_tvm0\.4_0\.05$/);
    tf.dispose([x, out, want]);
    d.dispose();
    const y = model.predict(images(1)) as tf.Tensor;
    expect(y.shape).toEqual([1, 4]);
    y.dispose();
    model.dispose();
  });

  it('BPDA (identity backward) gives the model\'s own gradient at the reconstruction, and leaves the layer\'s mode as it was', () => {
    const model = linear();
    const d = tvMinDefended(model, { ...FAST });
    const x = images(2, 4);
    const w = tf.randomNormal([2, 4], 0, 1, 'float32', 6);
    const f = bpdaModel(d, { backward: 'identity' });
    reseedRandomLayers(d, 5);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor4D), w)))(x);
    reseedRandomLayers(d, 5);
    const z = layerOf(d).apply(x) as tf.Tensor4D;
    const want = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.apply(v) as tf.Tensor, w)))(z);
    expect(linf(g, want)).toBeLessThan(1e-6);
    expect(layerOf(d).mode).toBe('hard');
    tf.dispose([x, w, g, z, want]);
    d.dispose();
    model.dispose();
  });

  it('PGD through the unrolled solver and BPDA-PGD both stay within the L-inf budget and the pixel range, and fool some images', () => {
    const model = linear();
    const d = tvMinDefended(model, { dropRate: 0.3, weight: 0.03, ...FAST });
    const x = images(8, 5);
    const y = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const eps = 24 / 255;
    for (const [name, attack] of [['pgd', () => pgd(d, x, y, { eps, steps: 8, randomStart: false, eotSamples: 2 })], ['bpda-pgd', () => bpdaPgd(d, x, y, { eps, steps: 8, randomStart: false, eotSamples: 2 })]] as const) {
      reseedRandomLayers(d, 1);
      const adv = attack();
      expect(linf(adv, x), name).toBeGreaterThan(eps / 2);
      expect(linf(adv, x), name).toBeLessThanOrEqual(eps + 1e-6);
      expect(tf.tidy(() => tf.min(adv).dataSync()[0])).toBeGreaterThanOrEqual(0);
      expect(tf.tidy(() => tf.max(adv).dataSync()[0])).toBeLessThanOrEqual(1);
      const wrong = tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(d.predict(adv) as tf.Tensor, 1), y).toInt()).dataSync()[0]);
      expect(wrong, name).toBeGreaterThan(0);
      adv.dispose();
    }
    tf.dispose([x, y]);
    d.dispose();
    model.dispose();
  });

  it('the EOT gradient is the mean of the single-draw gradients the same stream gives, which differ from draw to draw', () => {
    const model = linear();
    const d = tvMinDefended(model, { dropRate: 0.5, ...FAST });
    expectEotIsMeanOfSingles(d, bpdaModel(d, { backward: 'identity' }));
    model.dispose();
  });

  it('refuses models it cannot wrap and bad options, naming the problem, and leaks nothing', async () => {
    const flat = tf.sequential({ layers: [tf.layers.dense({ inputShape: [5], units: 2 })] });
    expect(() => tvMinDefended(flat)).toThrow('tv-min defence: the model must take [h, w, c] images, it takes [5]');
    flat.dispose();
    const model = linear();
    expect(() => tvMinDefended(model, { dropRate: 1 })).toThrow('TotalVariationMin: dropRate must be a share in [0, 1), got 1');
    const x = images();
    await assertNoTensorLeak(() => {
      const d = tvMinDefended(model, { ...FAST, draws: 2 });
      tf.dispose(d.predict(x) as tf.Tensor);
      d.dispose();
    }, { label: 'tvMinDefended' });
    x.dispose();
    model.dispose();
  });
});

describe('tvm specs', () => {
  it('parse a drop share and a weight (default the reference\'s 0.03), name each model and variant, and refuse bad ones', () => {
    expect(parseDefenceList('tvm:0.5, tvm: 0.3 : 0.1 ,tvm:0.5:draws=4')).toEqual([
      { kind: 'tvm', dropRate: 0.5, weight: 0.03 },
      { kind: 'tvm', dropRate: 0.3, weight: 0.1 },
      { kind: 'tvm', dropRate: 0.5, weight: 0.03, draws: 4 },
    ]);
    expect(parseDefenceList('tvm:0.5,tvm:0.3:0.1,tvm:0.5:draws=4').map(defenceName)).toEqual(['tvm-0.5-0.03', 'tvm-0.3-0.1', 'tvm-0.5-0.03-avg4']);
    expect(defenceVariant(parseDefenceSpec('tvm:0.5'))).toBe('tv-minimisation');
    expect(parseDefenceSpec('tvm:0')).toEqual({ kind: 'tvm', dropRate: 0, weight: 0.03 });
    expect(() => parseDefenceSpec('tvm:0.99')).toThrow('--defence: tvm\'s drop share must be a number in 0..0.95 (the share of values dropped before the reconstruction), got "0.99"');
    expect(() => parseDefenceSpec('tvm:half')).toThrow(/tvm's drop share must be a number in 0\.\.0\.95 .*got "half"/);
    expect(() => parseDefenceSpec('tvm:0.5:0')).toThrow('--defence: tvm\'s weight must be a number in (0, 10] (total variation weight on pixels 0-1; the reference\'s is 0.03), got "0"');
    expect(() => parseDefenceSpec('tvm')).toThrow(/"tvm" is not a total variation minimisation defence; give tvm:<drop share>\[:<weight>\]/);
    expect(() => parseDefenceList('tvm:0.5,tvm:0.5:0.03')).toThrow('--defence: tvm-0.5-0.03 is listed twice');
    expect(() => parseDefenceSpec('blur:3')).toThrow(/tvm:<drop share>\[:<weight>\]/);
    const model = linear();
    const d = defended(model, parseDefenceSpec('tvm:0.2:0.07'));
    expect([layerOf(d).dropRate, layerOf(d).weight, layerOf(d).iterations]).toEqual([0.2, 0.07, 100]);
    d.dispose();
    model.dispose();
    expectAveragedLayout('tvm:0.2:draws=3', 'TotalVariationMin');
  });
});

describe('a sweep over the TV-minimisation defence', () => {
  const attack: SweepAttack = { name: 'bpda-pgd', params: { steps: 3, eotSamples: 2 }, fn: findNamedAttack('bpda-pgd')!.run, seeded: true };

  it('gives the same records run whole or resumed after other cells (each batch restarts the masks from its seed)', async () => {
    const whole = await expectSweepResumeSame((m) => ({ name: 'tvm-0.5-0.03', variant: 'tv-minimisation', model: tvMinDefended(m, FAST) }), attack);
    expect(new Set(whole.map((r) => r.variant))).toEqual(new Set(['tv-minimisation']));
  });

  it('a worker process draws what the sweep process draws for the same batch seed', async () => {
    const model = linear();
    const d = tvMinDefended(model, FAST);
    try {
      await expectWorkerDrawsSame(d, 'bpda-pgd', null, (a, b, options) => bpdaPgd(d, a, b, options));
    } finally {
      d.dispose();
      model.dispose();
    }
  });
});

// Feature squeezing as an input defence: exactly the squeezer then the model; bit-depth reduction masks
// the gradient (PGD cannot move without a random start) and BPDA-PGD breaks it within the budget; the
// median filter keeps a true gradient; spec parsing; worker serialisation; errors; leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { bpdaModel, hasBpdaLayers } from '../../attacks/bpda.ts';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import { pgd } from '../../attacks/pgd.ts';
import { buildModel } from '../../models/registry.ts';
import { defenceName, defenceVariant, defended, parseDefenceList, parseDefenceSpec } from '../../src/defences/index.ts';
import { squeezeDefended } from '../../src/defences/squeeze.ts';
import { modelFromMemory, modelToMemory } from '../../src/io/model-io.ts';
import { BitDepthReduction, MedianSmoothing, medianFilter } from '../../src/layers/squeeze.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const images = () => tf.randomUniform([6, 8, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
/** A linear head: an untrained CNN answers one class for every image, which nothing can fool. */
const linear = () => tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 3] }), tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomNormal({ seed: 2, stddev: 0.2 }) })] });
const predict = (m: tf.LayersModel, x: tf.Tensor) => tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync());
const linf = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const fooledCount = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(m.predict(x) as tf.Tensor, 1), y).toInt()).dataSync()[0]);

describe('squeezeDefended', () => {
  it('is the squeezer then the model, bit for bit; the weights are the model\'s; disposing it leaves the model whole', () => {
    const model = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 4, seed: 1 });
    const x = images();
    for (const [spec, layer] of [
      [{ kind: 'bits', bits: 3 }, new BitDepthReduction({ bits: 3 })],
      [{ kind: 'median', window: 2 }, new MedianSmoothing({ window: 2 })],
    ] as const) {
      const d = squeezeDefended(model, spec);
      const want = tf.tidy(() => (model.predict(layer.apply(x) as tf.Tensor4D) as tf.Tensor).dataSync());
      expect(Array.from(predict(d, x))).toEqual(Array.from(want));
      expect(Array.from(predict(d, x))).not.toEqual(Array.from(predict(model, x)));
      expect(d.trainableWeights.map((w) => w.name)).toEqual(model.trainableWeights.map((w) => w.name));
      d.dispose();
    }
    expect(predict(model, x)).toHaveLength(24);
    x.dispose();
    model.dispose();
  });

  it('bit depth hides the gradient from PGD; BPDA-PGD restores it and fools the defended model within the L-inf budget', () => {
    const model = linear();
    const d = squeezeDefended(model, { kind: 'bits', bits: 3 });
    const x = images();
    const y = tf.tidy(() => tf.argMax(d.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const eps = 24 / 255;
    // Zero gradient everywhere: PGD without a random start returns the images unchanged.
    const stuck = pgd(d, x, y, { eps, steps: 5, randomStart: false });
    expect(Array.from(stuck.dataSync())).toEqual(Array.from(x.dataSync()));
    expect(hasBpdaLayers(d)).toBe(true);
    const adv = bpdaPgd(d, x, y, { eps, steps: 10, randomStart: false });
    expect(linf(adv, x)).toBeLessThanOrEqual(eps + 1e-6);
    expect(tf.tidy(() => tf.min(adv).dataSync()[0])).toBeGreaterThanOrEqual(0);
    expect(tf.tidy(() => tf.max(adv).dataSync()[0])).toBeLessThanOrEqual(1);
    expect(fooledCount(d, adv, y)).toBeGreaterThan(0);
    // bpdaModel sets the layer's mode for the call (soft backward: the staircase) and restores it after.
    const layer = d.layers.find((l) => l instanceof BitDepthReduction) as BitDepthReduction;
    let seen = '';
    for (const backward of ['identity', 'soft'] as const) {
      const logits = bpdaModel(d, { backward });
      const apply = layer.call.bind(layer);
      layer.call = (inputs) => ((seen = layer.mode), apply(inputs));
      tf.dispose(logits(x));
      layer.call = apply;
      expect(seen).toBe(`bpda-${backward}`);
      expect(layer.mode).toBe('hard');
    }
    // The soft backward breaks it too.
    const soft = bpdaPgd(d, x, y, { eps, steps: 10, randomStart: false, backward: 'soft' });
    expect(linf(soft, x)).toBeLessThanOrEqual(eps + 1e-6);
    expect(fooledCount(d, soft, y)).toBeGreaterThan(0);
    soft.dispose();
    tf.dispose([x, y, stuck, adv]);
    model.dispose();
  });

  it("the median filter keeps the model's true gradient: PGD needs no BPDA, and its gradient is the chain rule through the chosen pixels", () => {
    const model = linear();
    const d = squeezeDefended(model, { kind: 'median', window: 3 });
    const x = images();
    const y = tf.tidy(() => tf.argMax(d.predict(x) as tf.Tensor, 1).toInt()) as tf.Tensor1D;
    const obj = (f: (v: tf.Tensor4D) => tf.Tensor) => (v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor4D), tf.oneHot(y, 4)));
    const g = tf.tidy(() => tf.grad(obj((v) => d.apply(v) as tf.Tensor))(x).dataSync());
    const chain = tf.tidy(() => tf.grad(obj((v) => model.apply(medianFilter(v, 3)) as tf.Tensor))(x).dataSync());
    expect(Array.from(g)).toEqual(Array.from(chain));
    expect(g.some((v) => v !== 0)).toBe(true);
    const adv = pgd(d, x, y, { eps: 24 / 255, steps: 10, randomStart: false });
    expect(linf(adv, x)).toBeLessThanOrEqual(24 / 255 + 1e-6);
    expect(fooledCount(d, adv, y)).toBeGreaterThan(0);
    tf.dispose([x, y, adv]);
    model.dispose();
  });

  it('serialises (what a sweep worker rebuilds) with the same answers', async () => {
    const model = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 4, seed: 1 });
    const d = squeezeDefended(model, { kind: 'median', window: 2 });
    const copy = await modelFromMemory(await modelToMemory(d));
    const x = images();
    expect(Array.from(predict(copy, x))).toEqual(Array.from(predict(d, x)));
    tf.dispose(x);
    copy.dispose();
    model.dispose();
  });

  it('refuses bad squeezers and leaks nothing', async () => {
    const model = linear();
    expect(() => squeezeDefended(model, { kind: 'bits', bits: 0 })).toThrow('BitDepthReduction: bits must be an integer in 1..8, got 0');
    expect(() => squeezeDefended(model, { kind: 'blur' } as never)).toThrow(/squeeze defence: squeezer must be/);
    const x = images();
    await assertNoTensorLeak(() => {
      const d = squeezeDefended(model, { kind: 'median', window: 3 });
      tf.dispose(d.predict(x) as tf.Tensor);
      d.dispose();
    }, { label: 'squeezeDefended' });
    tf.dispose(x);
    model.dispose();
  });
});

describe('defence wrappers and the model they wrap', () => {
  it("disposing the wrapper (twice even) and then the model frees every tensor: the wrapper gives back its reference", () => {
    const before = tf.memory().numTensors;
    const model = buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 4, seed: 1 });
    for (const spec of parseDefenceList('jpeg:75,rjpeg:50-90,bits:4,median:2')) {
      const d = defended(model, spec);
      d.dispose();
      d.dispose();
    }
    // Still whole after its wrappers are gone.
    const z = tf.zeros([1, 8, 8, 3]);
    expect(predict(model, z)).toHaveLength(4);
    z.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('defence specs', () => {
  it('parse jpeg, bits and median with their ranges, name each model and variant', () => {
    expect(parseDefenceList('jpeg:75, bits:5 ,median:2')).toEqual([{ kind: 'jpeg', quality: 75 }, { kind: 'bits', bits: 5 }, { kind: 'median', window: 2 }]);
    expect(parseDefenceList('jpeg:75,bits:5,median:2').map(defenceName)).toEqual(['jpeg-q75', 'bits-5', 'median-2x2']);
    expect(parseDefenceList('jpeg:75,bits:5').map(defenceVariant)).toEqual(['jpeg-defence', 'feature-squeezing']);
    expect(() => parseDefenceSpec('bits:9')).toThrow('--defence: bits needs an integer in 1..8, got "9"');
    expect(() => parseDefenceSpec('median:1')).toThrow('--defence: median needs an integer in 2..5, got "1"');
    expect(() => parseDefenceSpec('jpeg:7.5')).toThrow(/jpeg needs an integer in 1\.\.100, got "7\.5"/);
    expect(() => parseDefenceSpec('blur:3')).toThrow(/--defence: "blur:3" is not a defence; give jpeg:<quality 1-100>, rjpeg:<lo>-<hi>\[:block\]\[:draws=k\], rrp:<lo>-<hi>\[:bilinear\]\[:draws=k\], tvm:<drop share>\[:<weight>\]\[:draws=k\], bits:<1-8> or median:<window 2-5>/);
    expect(() => parseDefenceList('bits:4,bits:4')).toThrow('--defence: bits-4 is listed twice');
  });

  it('defended() builds each kind', () => {
    const model = linear();
    for (const spec of parseDefenceList('jpeg:50,bits:2,median:3')) {
      const d = defended(model, spec);
      expect(d.layers.map((l) => l.getClassName())).toContain(spec.kind === 'jpeg' ? 'JpegLayer' : spec.kind === 'bits' ? 'BitDepthReduction' : 'MedianSmoothing');
      d.dispose();
    }
    model.dispose();
  });
});

import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { jpegForward } from '../../src/jpeg/forward.ts';
import { JpegLayer, findJpegLayers } from '../../src/jpeg/layer.ts';
import { standardTables } from '../../src/jpeg/tables.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32);
}
const images = (shape: number[], seed: number) => {
  const r = lcg(seed);
  return tf.tensor4d(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => r()), shape as [number, number, number, number]);
};
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function classifier(inputShape: [number, number, number], jpeg: ConstructorParameters<typeof JpegLayer>[0]) {
  return tf.sequential({
    layers: [
      tf.layers.inputLayer({ inputShape }),
      new JpegLayer({ name: 'jpeg', ...jpeg }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    ],
  });
}

async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

describe('JpegLayer weights and forward pass', () => {
  it('has 128 trainable steps for RGB (luma_q, chroma_q) and 64 for grey, initialised to the tables', () => {
    const rgb = classifier([16, 16, 3], { quality: 75 });
    const layer = findJpegLayers(rgb)[0];
    expect(layer.trainableWeights.map((w) => w.originalName.split('/').pop())).toEqual(['luma_q', 'chroma_q']);
    expect(layer.countParams()).toBe(128);
    expect(layer.getTables()).toEqual([standardTables(75)]);
    const grey = classifier([8, 8, 1], { quality: 75, rounds: 3 });
    const gl = findJpegLayers(grey)[0];
    expect(gl.countParams()).toBe(3 * 64);
    expect(gl.trainableWeights.map((w) => w.originalName.split('/').pop())).toEqual(['luma_q', 'luma_q_r1', 'luma_q_r2']);
    expect(gl.getTables()).toEqual(Array(3).fill({ luma: standardTables(75).luma }));
  });

  it('computes jpegForward with its tables; `mode` switches the quantiser at run time without touching weights', () => {
    const tables = { luma: standardTables(60).luma.map((v) => v / 7), chroma: standardTables(60).chroma.map((v) => v / 3) };
    const layer = new JpegLayer({ tables, alpha: 2 });
    const x = images([2, 12, 10, 3], 1);
    for (const mode of ['soft', 'hard', 'bpda-identity', 'bpda-soft'] as const) {
      layer.mode = mode;
      const y = layer.apply(x) as tf.Tensor;
      const want = jpegForward(x, [tables], { mode, alpha: 2 });
      expect(maxDiff(y, want), mode).toBeLessThan(1e-6);
      tf.dispose([y, want]);
    }
    expect(layer.getTables()[0].luma.every((v, k) => Math.abs(v - tables.luma[k]) < 1e-5)).toBe(true);
    layer.mode = 'soft';
    const soft = layer.apply(x) as tf.Tensor;
    layer.mode = 'hard';
    const hard = layer.apply(x) as tf.Tensor;
    expect(maxDiff(soft, hard)).toBeGreaterThan(1e-3);
    expect(() => (layer.mode = 'fuzzy' as never)).toThrow(/mode must be one of soft, hard, bpda-identity, bpda-soft, got "fuzzy"/);
  });

  it('clamps the stored steps to [1e-5, 255] before every forward pass, as the reference', () => {
    const layer = new JpegLayer({ quality: 50 });
    const x = images([1, 8, 8, 3], 2);
    tf.dispose(layer.apply(x) as tf.Tensor);
    layer.setTables({ luma: Array.from({ length: 64 }, (_, k) => (k % 2 ? -4 : 400)), chroma: standardTables(50).chroma });
    tf.dispose(layer.apply(x) as tf.Tensor);
    const t = layer.getTables()[0];
    expect(t.luma.slice(0, 4)).toEqual([255, 1e-5, 255, 1e-5].map((v) => Math.fround(v)));
  });

  it('trains: one Adam step on a cross-entropy loss moves both tables, input gradient is non-zero', () => {
    const model = classifier([8, 8, 3], { quality: 90, alpha: 1 });
    const layer = findJpegLayers(model)[0];
    const before = layer.getTables()[0];
    const x = images([4, 8, 8, 3], 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const opt = tf.train.adam(0.01);
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, false, layer.trainableWeights.map((w) => w.read() as tf.Variable));
    const after = layer.getTables()[0];
    expect(after.luma.filter((v, k) => Math.abs(v - before.luma[k]) > 1e-4).length).toBeGreaterThan(32);
    expect(after.chroma!.filter((v, k) => Math.abs(v - before.chroma![k]) > 1e-4).length).toBeGreaterThan(32);
    const gx = tf.grad((xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xx) as tf.Tensor) as tf.Scalar)(x);
    expect(tf.abs(gx).max().dataSync()[0]).toBeGreaterThan(0);
  });

  it('works inside model.fit', async () => {
    const model = classifier([8, 8, 1], { quality: 80, alpha: 1 });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const before = findJpegLayers(model)[0].getTables()[0].luma;
    const h = await model.fit(images([6, 8, 8, 1], 4), tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3), { epochs: 1, batchSize: 3, verbose: 0 });
    expect(Number.isFinite(h.history.loss[0] as number)).toBe(true);
    expect(findJpegLayers(model)[0].getTables()[0].luma).not.toEqual(before);
  });
});

describe('JpegLayer serialisation', () => {
  const options = { quality: 75, alpha: 2.5, hardness: 0.9, rounds: 2, mode: 'bpda-soft' as const, clamp: true, levels: 5, bits: 8, softGradient: 'analytic' as const };

  it('getConfig round-trips every option through fromConfig', () => {
    const layer = new JpegLayer({ ...options, name: 'j' });
    const copy = tf.serialization.SerializationMap.getMap().classNameMap.JpegLayer[1](JpegLayer, layer.getConfig()) as JpegLayer;
    expect(copy.getConfig()).toEqual(layer.getConfig());
    expect(copy.mode).toBe('bpda-soft');
    expect(copy.hardness).toBe(0.9);
    expect(copy.softGradient).toBe('analytic');
    const withTables = new JpegLayer({ tables: [{ luma: Array(64).fill(3) }, { luma: Array(64).fill(4) }], rounds: 2 });
    const c2 = new JpegLayer(withTables.getConfig());
    expect(c2.getTables()).toEqual([{ luma: Array(64).fill(3) }, { luma: Array(64).fill(4) }]);
  });

  it('saves and loads inside a sequential model (tables, options and outputs preserved)', async () => {
    const model = classifier([8, 16, 3], options);
    const layer = findJpegLayers(model)[0];
    const moved = layer.getTables().map((t) => ({ luma: t.luma.map((v) => v * 0.9), chroma: t.chroma!.map((v) => v * 1.1) }));
    layer.setTables(moved);
    const loaded = await roundTrip(model);
    const l2 = findJpegLayers(loaded)[0];
    expect(l2).toBeInstanceOf(JpegLayer);
    expect(l2.getConfig()).toEqual(layer.getConfig());
    l2.getTables().forEach((t, r) => t.luma.forEach((v, k) => expect(v).toBeCloseTo(moved[r].luma[k], 4)));
    const x = images([2, 8, 16, 3], 5);
    expect(maxDiff(model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
  });

  it('saves and loads inside a functional model; findJpegLayers finds layers in nested models', async () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const j = new JpegLayer({ quality: 30, name: 'jpeg' }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2 }).apply(tf.layers.flatten().apply(j)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const loaded = await roundTrip(model);
    const x = images([3, 8, 8, 1], 6);
    expect(maxDiff(model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    expect(findJpegLayers(loaded).map((l) => l.name)).toEqual(['jpeg']);
    const outer = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [8, 8, 1] }), model] });
    expect(findJpegLayers(outer).length).toBe(1);
  });
});

describe('JpegLayer memory and arguments', () => {
  it('leaks no tensors in forward or forward+backward through a model, in every mode', async () => {
    const model = classifier([8, 8, 3], { quality: 50 });
    const layer = findJpegLayers(model)[0];
    const x = images([2, 8, 8, 3], 7);
    const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    for (const mode of ['soft', 'hard', 'bpda-identity', 'bpda-soft'] as const) {
      layer.mode = mode;
      await assertNoTensorLeak(() => model.predict(x), { label: `${mode} predict` });
      await assertNoTensorLeak(
        () => {
          const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar);
          const gx = tf.grad((xx: tf.Tensor) => tf.sum(model.apply(xx) as tf.Tensor))(x);
          return [value, gx, ...Object.values(grads)];
        },
        { label: `${mode} forward+backward` },
      );
    }
  });

  it('rejects bad arguments before any work, naming the problem', () => {
    expect(() => new JpegLayer({ alpha: 0 })).toThrow(/JpegLayer: alpha must be a finite number > 0, got 0/);
    expect(() => new JpegLayer({ alpha: -2 })).toThrow(/alpha/);
    expect(() => new JpegLayer({ hardness: -1 })).toThrow(/JpegLayer: hardness must be a finite number > 0/);
    expect(() => new JpegLayer({ rounds: 0 })).toThrow(/JpegLayer: rounds must be an integer >= 1, got 0/);
    expect(() => new JpegLayer({ rounds: 1.5 })).toThrow(/rounds/);
    expect(() => new JpegLayer({ quality: 0 })).toThrow(/JpegLayer: quality: must be an integer from 1 to 100, got 0/);
    expect(() => new JpegLayer({ quality: 101 })).toThrow(/got 101/);
    expect(() => new JpegLayer({ mode: 'round' as never })).toThrow(/mode must be one of/);
    expect(() => new JpegLayer({ tables: { luma: [1, 2, 3] } })).toThrow(/tables\[0\]\.luma: expected 64 values \(an 8x8 table\), got 3/);
    expect(() => new JpegLayer({ tables: { luma: Array(64).fill(1), chroma: Array(63).fill(1) } })).toThrow(/tables\[0\]\.chroma: expected 64 values/);
    expect(() => new JpegLayer({ tables: [{ luma: Array(64).fill(1) }, { luma: Array(64).fill(1) }], rounds: 3 })).toThrow(/1 set or one per round \(3\), got 2/);
    expect(() => classifier([8, 8, 4], {})).toThrow(/JpegLayer: input must have 1 \(grayscale\) or 3 \(RGB\) channels, got 4/);
    expect(() => classifier([8, 8, 3], { tables: { luma: Array(64).fill(1) } })).toThrow(/tables\[0\]\.chroma is required for 3-channel input/);
    const layer = new JpegLayer({});
    expect(() => layer.setTables({ luma: Array(64).fill(1) })).toThrow(/not built yet/);
  });
});

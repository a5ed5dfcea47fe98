// loadOnnxModel: PyTorch models exported to ONNX, read into tfjs layers models on NHWC input. The three
// fixtures were exported by PyTorch itself (scripts/make_onnx_fixtures.py, both of its exporters) with
// PyTorch's outputs and input gradients; the converted models must reproduce both. Single-op graphs
// written by the tests check each op's padding and layout rules against plain tfjs references.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importModel, outputsLookLikeProbabilities } from '../../src/io/import-model.ts';
import { loadModel, saveModel } from '../../src/io/model-io.ts';
import { inspectOnnxModel, loadOnnxModel } from '../../src/io/onnx.ts';
import { encodeOnnxModel, ONNX_DTYPE, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../src/io/onnx-proto.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { asLogitsFn } from '../../src/types.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'onnx');
interface Expected {
  input_nhwc_shape: [number, number, number, number];
  input_nhwc_255: number[];
  output: number[][];
  readout: number[][];
  grad_nhwc: number[];
  exporter: string;
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, Expected>;
const root = mkdtempSync(join(tmpdir(), 'onnx-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fixtureInput(e: Expected): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(e.input_nhwc_255, (v) => v / 255), e.input_nhwc_shape);
}

function maxAbs(a: tf.Tensor, b: tf.Tensor | number[] | number[][]): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b instanceof tf.Tensor ? b : tf.tensor(b)))).dataSync()[0]!);
}

// ---------- small ONNX graphs written by the tests ----------

const floatTensor = (name: string, dims: number[], values: ArrayLike<number>): OnnxTensor => ({ name, dims, dataType: ONNX_DTYPE.FLOAT, floatData: Array.from(values) });
const intTensor = (name: string, values: number[]): OnnxTensor => ({ name, dims: [values.length], dataType: ONNX_DTYPE.INT64, int64Data: values });
const ints = (name: string, values: number[]): OnnxAttribute => ({ name, ints: values, type: 7 });
const int = (name: string, i: number): OnnxAttribute => ({ name, i, type: 2 });
const float = (name: string, f: number): OnnxAttribute => ({ name, f, type: 1 });
const str = (name: string, s: string): OnnxAttribute => ({ name, s: new TextEncoder().encode(s), type: 3 });
const node = (opType: string, input: string[], output: string[], attribute: OnnxAttribute[] = []): OnnxNode => ({ opType, input, output, attribute, name: `${opType}_${output[0]}` });

function graphModel(opts: { nodes: OnnxNode[]; initializers?: OnnxTensor[]; input: number[]; output?: string; opset?: number; inputs?: { name: string; dims: number[] }[] }): OnnxModel {
  const info = (name: string, dims: number[], elemType = ONNX_DTYPE.FLOAT) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (d > 0 ? { dimValue: d } : { dimParam: 'N' })) } } },
  });
  return {
    irVersion: 8,
    producerName: 'jpegdl-robust test',
    opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
    graph: {
      name: 'test',
      node: opts.nodes,
      initializer: opts.initializers ?? [],
      input: (opts.inputs ?? [{ name: 'x', dims: opts.input }]).map((i) => info(i.name, i.dims)),
      output: [info(opts.output ?? 'y', [-1, 1])],
    },
  };
}

let fileCount = 0;
function writeOnnx(model: OnnxModel): string {
  const path = join(root, `m${fileCount++}.onnx`);
  writeFileSync(path, encodeOnnxModel(model));
  return path;
}

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Run a converted single-op model on NHWC input and return its output (NHWC for images). */
async function runOnnx(model: OnnxModel, x: tf.Tensor): Promise<tf.Tensor> {
  const m = await loadOnnxModel(writeOnnx(model));
  const y = m.predict(x) as tf.Tensor;
  m.dispose();
  return y;
}

/**
 * Graph wrapper: the op under test followed by a flatten in NCHW order, so every test model has a
 * [batch, features] output; the reference does the same flatten with a transpose.
 */
function flattenedModel(nodes: OnnxNode[], initializers: OnnxTensor[], input: number[], opset = 17): OnnxModel {
  return graphModel({ nodes: [...nodes, node('Flatten', ['z'], ['y'], [int('axis', 1)])], initializers, input: [-1, ...input.slice(1)], opset });
}
const nchwFlat = (nhwc: tf.Tensor4D) => tf.tidy(() => tf.reshape(tf.transpose(nhwc, [0, 3, 1, 2]), [nhwc.shape[0], -1]));

describe('loadOnnxModel on models PyTorch exported', () => {
  it.each(Object.keys(expected))('%s gives the outputs and input gradients PyTorch gave', async (name) => {
    const e = expected[name]!;
    const model = await loadOnnxModel(join(FIXTURES, name));
    const x = fixtureInput(e);
    const y = model.predict(x) as tf.Tensor;
    expect(maxAbs(y, e.output)).toBeLessThan(1e-5);
    // Backward pass: d/dx sum(outputs * readout), as PyTorch computed it.
    const readout = tf.tensor2d(e.readout);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(model.apply(xx) as tf.Tensor, readout)))(x);
    const scale = Math.max(...e.grad_nhwc.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    expect(maxAbs(g, tf.tensor(e.grad_nhwc, g.shape).arraySync() as number[][])).toBeLessThan(1e-4 * scale + 1e-7);
    tf.dispose([x, y, readout, g]);
    model.dispose();
  });

  it('the attacks\' inference copy (batch norm folded) gives the same logits', async () => {
    const e = expected['preact.onnx']!;
    const model = await loadOnnxModel(join(FIXTURES, 'preact.onnx'));
    const x = fixtureInput(e);
    const logits = asLogitsFn(model)(x);
    expect(maxAbs(logits, e.output)).toBeLessThan(1e-5);
    tf.dispose([x, logits]);
    model.dispose();
  });

  it('saves and loads as a tfjs layers model with its custom layers', async () => {
    const e = expected['mixed.onnx']!;
    const model = await loadOnnxModel(join(FIXTURES, 'mixed.onnx'));
    const classes = model.layers.map((l) => l.getClassName());
    expect(classes).toEqual(expect.arrayContaining(['ConstantPad2D', 'ChannelSlice', 'DepthwiseConv2D', 'Permute', 'ZeroPadding2D']));
    const dir = join(root, 'saved-mixed');
    await saveModel(model, dir);
    model.dispose();
    const back = await loadModel(dir);
    const x = fixtureInput(e);
    const y = back.predict(x) as tf.Tensor;
    expect(maxAbs(y, e.output)).toBeLessThan(1e-5);
    tf.dispose([x, y]);
    back.dispose();
    // Erf (nn.GELU) and ChannelShuffle round-trip too.
    const e2 = expected['shuffle_unit.onnx']!;
    const m2 = await loadOnnxModel(join(FIXTURES, 'shuffle_unit.onnx'));
    expect(m2.layers.map((l) => l.getClassName())).toEqual(expect.arrayContaining(['Erf', 'ChannelShuffle', 'ChannelSlice']));
    await saveModel(m2, join(root, 'saved-shuffle'));
    m2.dispose();
    const back2 = await loadModel(join(root, 'saved-shuffle'));
    const x2 = fixtureInput(e2);
    const y2 = back2.predict(x2) as tf.Tensor;
    expect(maxAbs(y2, e2.output)).toBeLessThan(1e-5);
    tf.dispose([x2, y2]);
    back2.dispose();
  });

  it('describes the file: producer, opset, input in NCHW order, ops', () => {
    const info = inspectOnnxModel(join(FIXTURES, 'mixed.onnx'));
    expect(info.producer).toMatch(/^pytorch 2\./);
    expect(info.opset).toBeGreaterThanOrEqual(18);
    expect(info.inputName).toBe('pixels');
    expect(info.inputShape.slice(1)).toEqual([3, 20, 20]);
    expect(Number.isNaN(info.inputShape[0])).toBe(true);
    expect(info.ops).toEqual(expect.arrayContaining(['Conv', 'MaxPool', 'Clip', 'Concat', 'Gemm']));
  });

  it('importModel removes a softmax output (softmax of the logits = PyTorch\'s probabilities) and keeps logits outputs', async () => {
    const e = expected['squeeze_excite.onnx']!;
    const { model, summary } = await importModel(await loadOnnxModel(join(FIXTURES, 'squeeze_excite.onnx')));
    expect(summary.strippedSoftmax).toBeTruthy();
    const x = fixtureInput(e);
    expect(maxAbs(tf.softmax(model.predict(x) as tf.Tensor), e.output)).toBeLessThan(1e-5);
    expect(outputsLookLikeProbabilities(model)).toBe(false);
    model.dispose();
    const plain = await importModel(await loadOnnxModel(join(FIXTURES, 'preact.onnx')));
    expect(plain.summary.strippedSoftmax).toBeNull();
    const e2 = expected['preact.onnx']!;
    const x2 = fixtureInput(e2);
    expect(maxAbs(plain.model.predict(x2) as tf.Tensor, e2.output)).toBeLessThan(1e-5);
    plain.model.dispose();
    tf.dispose([x, x2]);
  });

  it('loading and disposing leaks no tensors', async () => {
    await assertNoTensorLeak(async () => {
      const m = await loadOnnxModel(join(FIXTURES, 'mixed.onnx'));
      m.dispose();
    }, { label: 'loadOnnxModel' });
  });
});

describe('ONNX ops against plain tfjs references', () => {
  it('Conv: every padding, stride, dilation and group layout equals an explicitly padded tfjs convolution (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          k: fc.integer({ min: 1, max: 4 }),
          stride: fc.integer({ min: 1, max: 3 }),
          dilation: fc.integer({ min: 1, max: 2 }),
          pads: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)),
          size: fc.tuple(fc.integer({ min: 6, max: 9 }), fc.integer({ min: 6, max: 9 })),
          layout: fc.constantFrom('plain', 'depthwise', 'grouped'),
          multiplier: fc.integer({ min: 1, max: 2 }),
          bias: fc.boolean(),
          auto: fc.constantFrom('NOTSET', 'NOTSET', 'SAME_UPPER', 'VALID'),
          seed: fc.nat(1000),
        }),
        async (p) => {
          const dilation = p.stride > 1 ? 1 : p.dilation;
          const pads = p.pads.map((v) => Math.min(v, p.k - 1)) as [number, number, number, number];
          const inC = p.layout === 'plain' ? 3 : 4;
          const group = p.layout === 'plain' ? 1 : p.layout === 'depthwise' ? inC : 2;
          const outC = p.layout === 'depthwise' ? inC * p.multiplier : p.layout === 'grouped' ? 2 * (p.multiplier + 1) : 5;
          const [h, w] = p.size;
          const inPer = inC / group;
          const wv = values(outC * inPer * p.k * p.k, p.seed + 1);
          const bv = values(outC, p.seed + 2);
          const attrs = [ints('strides', [p.stride, p.stride]), ints('dilations', [dilation, dilation]), int('group', group), ints('kernel_shape', [p.k, p.k])];
          if (p.auto === 'NOTSET') attrs.push(ints('pads', pads));
          else attrs.push(str('auto_pad', p.auto));
          const model = flattenedModel(
            [node('Conv', ['x', 'W', ...(p.bias ? ['B'] : [])], ['z'], attrs)],
            [floatTensor('W', [outC, inPer, p.k, p.k], wv), ...(p.bias ? [floatTensor('B', [outC], bv)] : [])],
            [2, inC, h, w],
          );
          // Reference: pad explicitly (SAME_UPPER: TensorFlow's own placement), then per group a 'valid' conv.
          let [pt, pl, pb, pr] = p.auto === 'NOTSET' ? pads : [0, 0, 0, 0];
          if (p.auto === 'SAME_UPPER') {
            const eff = (p.k - 1) * dilation + 1;
            const tot = (n: number) => Math.max((Math.ceil(n / p.stride) - 1) * p.stride + eff - n, 0);
            [pt, pb] = [Math.floor(tot(h) / 2), tot(h) - Math.floor(tot(h) / 2)];
            [pl, pr] = [Math.floor(tot(w) / 2), tot(w) - Math.floor(tot(w) / 2)];
          }
          const x = tf.tensor4d(values(2 * h * w * inC, p.seed), [2, h, w, inC]);
          const ref = tf.tidy(() => {
            const xp = tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
            const kernel = tf.transpose(tf.tensor4d(wv, [outC, inPer, p.k, p.k]), [2, 3, 1, 0]) as tf.Tensor4D; // [k, k, inPer, outC]
            const perOut = outC / group;
            const parts = [...Array(group).keys()].map((g) =>
              tf.conv2d(tf.slice(xp, [0, 0, 0, g * inPer], [-1, -1, -1, inPer]), tf.slice(kernel, [0, 0, 0, g * perOut], [-1, -1, -1, perOut]), p.stride, 'valid', 'NHWC', dilation),
            );
            const out = parts.length === 1 ? parts[0]! : tf.concat(parts, 3);
            return nchwFlat(p.bias ? tf.add(out, tf.tensor1d(bv)) : out);
          });
          const effK = (p.k - 1) * dilation + 1;
          if (h + pt + pb < effK || w + pl + pr < effK) {
            tf.dispose([x, ref]);
            return;
          }
          const y = await runOnnx(model, x);
          expect(y.shape).toEqual(ref.shape);
          expect(maxAbs(y, ref)).toBeLessThan(1e-5);
          tf.dispose([x, ref, y]);
        },
      ),
      { numRuns: 60, seed: 20261128 },
    );
  });

  it('MaxPool pads with -inf (ceil_mode as PyTorch rounds) and AveragePool counts padding as ONNX says (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          op: fc.constantFrom('MaxPool', 'AveragePool'),
          k: fc.integer({ min: 2, max: 3 }),
          stride: fc.integer({ min: 1, max: 2 }),
          // Often [1, 1, 1, 1]: with k = 3, s = 1 that is TensorFlow's 'same' placement too, where only the count differs.
          pads: fc.oneof(fc.constant([1, 1, 1, 1] as [number, number, number, number]), fc.tuple(fc.nat(1), fc.nat(1), fc.nat(1), fc.nat(1))),
          includePad: fc.integer({ min: 0, max: 1 }),
          ceil: fc.boolean(),
          size: fc.integer({ min: 5, max: 8 }),
          seed: fc.nat(1000),
        }),
        async (p) => {
          const [pt, pl, pb, pr] = p.pads;
          const attrs = [ints('kernel_shape', [p.k, p.k]), ints('strides', [p.stride, p.stride]), ints('pads', p.pads)];
          if (p.op === 'AveragePool') attrs.push(int('count_include_pad', p.includePad));
          const ceil = p.op === 'MaxPool' && p.ceil;
          if (ceil) attrs.push(int('ceil_mode', 1));
          const model = flattenedModel([node(p.op, ['x'], ['z'], attrs)], [], [1, 2, p.size, p.size]);
          const x = tf.tensor4d(values(p.size * p.size * 2, p.seed), [1, p.size, p.size, 2]);
          const padding: [number, number][] = [[0, 0], [pt, pb], [pl, pr], [0, 0]];
          // Max pooling by hand: each window clipped to the image; output size by PyTorch's rule (a
          // ceil-mode window must start inside the image or its begin padding).
          const naiveMax = (): tf.Tensor4D => {
            const size = (n: number, b: number, e: number) => {
              const span = n + b + e - p.k;
              let o = (ceil ? Math.ceil(span / p.stride) : Math.floor(span / p.stride)) + 1;
              if (ceil && (o - 1) * p.stride >= n + b) o--;
              return o;
            };
            const [oh, ow] = [size(p.size, pt, pb), size(p.size, pl, pr)];
            const xv = x.dataSync();
            const out = new Float32Array(oh * ow * 2);
            for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let c = 0; c < 2; c++) {
              let m = -Infinity;
              for (let r = i * p.stride - pt; r < i * p.stride - pt + p.k; r++) for (let q = j * p.stride - pl; q < j * p.stride - pl + p.k; q++) {
                if (r >= 0 && r < p.size && q >= 0 && q < p.size) m = Math.max(m, xv[(r * p.size + q) * 2 + c]!);
              }
              out[(i * ow + j) * 2 + c] = m;
            }
            return tf.tensor4d(out, [1, oh, ow, 2]);
          };
          const ref = tf.tidy(() => {
            if (p.op === 'MaxPool') return nchwFlat(naiveMax());
            const sums = tf.mul(tf.avgPool(tf.pad(x, padding), p.k, p.stride, 'valid'), p.k * p.k);
            const counts = p.includePad ? tf.scalar(p.k * p.k) : tf.mul(tf.avgPool(tf.pad(tf.onesLike(x), padding), p.k, p.stride, 'valid'), p.k * p.k);
            return nchwFlat(tf.div(sums, counts) as tf.Tensor4D);
          });
          try {
            const y = await runOnnx(model, x);
            expect(maxAbs(y, ref)).toBeLessThan(1e-5);
            tf.dispose(y);
          } catch (err) {
            // Only average pooling that leaves its padding out, placed where TensorFlow would not put it.
            expect(p.op === 'AveragePool' && p.includePad === 0 && pt + pl + pb + pr > 0).toBe(true);
            expect((err as Error).message).toMatch(/count_include_pad=0 differs from TensorFlow's 'same' placement/);
          }
          tf.dispose([x, ref]);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });

  it('Flatten over several positions follows NCHW order, as Gemm\'s weights expect', async () => {
    const wv = values(5 * 24, 3);
    const bv = values(5, 4);
    const model = graphModel({
      nodes: [node('Flatten', ['x'], ['f']), node('Gemm', ['f', 'W', 'B'], ['y'], [int('transB', 1), float('alpha', 0.5), float('beta', 2)])],
      initializers: [floatTensor('W', [5, 24], wv), floatTensor('B', [5], bv)],
      input: [-1, 4, 2, 3],
    });
    const x = tf.tensor4d(values(2 * 24, 5), [2, 2, 3, 4]);
    const ref = tf.tidy(() => tf.add(tf.mul(tf.matMul(nchwFlat(x), tf.tensor2d(wv, [5, 24]), false, true), 0.5), tf.mul(tf.tensor1d(bv), 2)));
    const y = await runOnnx(model, x);
    expect(maxAbs(y, ref)).toBeLessThan(1e-5);
    tf.dispose([x, ref, y]);
  });

  it('element-wise ops: Clip (inputs and old attributes), constants per channel on either side, difference of two tensors, hard sigmoid and swish', async () => {
    const x = tf.tensor4d(values(2 * 3 * 3 * 2, 9), [2, 3, 3, 2]);
    const c = [0.25, -2];
    const cases: { nodes: OnnxNode[]; inits: OnnxTensor[]; opset?: number; ref: () => tf.Tensor }[] = [
      { nodes: [node('Clip', ['x', 'lo', 'hi'], ['z'])], inits: [floatTensor('lo', [], [-0.5]), floatTensor('hi', [], [0.25])], ref: () => tf.clipByValue(x, -0.5, 0.25) },
      { nodes: [node('Clip', ['x'], ['z'], [float('min', 0), float('max', 6)])], inits: [], opset: 9, ref: () => tf.clipByValue(x, 0, 6) },
      { nodes: [node('Sub', ['C', 'x'], ['z'])], inits: [floatTensor('C', [1, 2, 1, 1], c)], ref: () => tf.sub(tf.tensor1d(c), x) },
      { nodes: [node('Div', ['x', 'C'], ['z'])], inits: [floatTensor('C', [2, 1, 1], c)], ref: () => tf.div(x, tf.tensor1d(c)) },
      { nodes: [node('Mul', ['x', 'C'], ['t']), node('Sub', ['x', 't'], ['z'])], inits: [floatTensor('C', [], [3])], ref: () => tf.sub(x, tf.mul(x, 3)) },
      { nodes: [node('HardSigmoid', ['x'], ['z'], [float('alpha', 2), float('beta', 0.25)])], inits: [], ref: () => tf.clipByValue(tf.add(tf.mul(x, 2), 0.25), 0, 1) },
      { nodes: [node('HardSwish', ['x'], ['z'])], inits: [], opset: 14, ref: () => tf.mul(x, tf.clipByValue(tf.add(tf.mul(x, Math.fround(1 / 6)), 0.5), 0, 1)) },
    ];
    for (const k of cases) {
      const ref = tf.tidy(() => nchwFlat(k.ref() as tf.Tensor4D));
      const y = await runOnnx(flattenedModel(k.nodes, k.inits, [-1, 2, 3, 3], k.opset), x);
      expect(maxAbs(y, ref)).toBe(0);
      tf.dispose([ref, y]);
    }
    tf.dispose(x);
  });

  it('LogSoftmax outputs are log-probabilities, which import takes as logits', async () => {
    const model = graphModel({ nodes: [node('Flatten', ['x'], ['f']), node('LogSoftmax', ['f'], ['y'], [int('axis', 1)])], input: [-1, 1, 2, 2] });
    const x = tf.tensor4d(values(8, 2), [2, 2, 2, 1]);
    const m = await loadOnnxModel(writeOnnx(model));
    const y = m.predict(x) as tf.Tensor;
    expect(maxAbs(y, tf.logSoftmax(tf.reshape(x, [2, 4])))).toBeLessThan(1e-6);
    expect(outputsLookLikeProbabilities(m)).toBe(false);
    await saveModel(m, join(root, 'saved-logsoftmax'));
    const back = await loadModel(join(root, 'saved-logsoftmax'));
    expect(tf.tidy(() => maxAbs(back.predict(x) as tf.Tensor, y))).toBe(0);
    back.dispose();
    tf.dispose([x, y]);
    m.dispose();
  });

  it('reads weights stored as external data next to the model, as the exporter writes large models', async () => {
    const wv = values(6 * 4, 11);
    const bytes = new Uint8Array(new Float32Array([0, 0, ...wv]).buffer); // two floats of padding before the weights
    writeFileSync(join(root, 'weights.bin'), bytes);
    const external = (location: string): OnnxTensor => ({
      name: 'W', dims: [6, 4], dataType: ONNX_DTYPE.FLOAT, dataLocation: 1,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: '8' }, { key: 'length', value: String(24 * 4) }],
    });
    const model = (t: OnnxTensor) => graphModel({ nodes: [node('Flatten', ['x'], ['f']), node('Gemm', ['f', 'W'], ['y'])], initializers: [t], input: [-1, 6, 1, 1] });
    const x = tf.tensor4d(values(12, 12), [2, 1, 1, 6]);
    const y = await runOnnx(model(external('weights.bin')), x);
    expect(maxAbs(y, tf.matMul(tf.reshape(x, [2, 6]), tf.tensor2d(wv, [6, 4])))).toBeLessThan(1e-6);
    tf.dispose([x, y]);
    await expect(loadOnnxModel(writeOnnx(model(external('../weights.bin'))))).rejects.toThrow(/external data location "\.\.\/weights\.bin" must be a path inside the model's directory/);
    await expect(loadOnnxModel(writeOnnx(model(external('missing.bin'))))).rejects.toThrow(/missing\.bin does not exist \(keep it next to the \.onnx file\)/);
  });
});

describe('loadOnnxModel refuses what it cannot reproduce, naming the file and the node', () => {
  const conv = (attrs: OnnxAttribute[] = []) => node('Conv', ['x', 'W'], ['z'], [ints('kernel_shape', [1, 1]), ...attrs]);
  const w = floatTensor('W', [2, 3, 1, 1], values(6, 1));

  it.each([
    ['an op it does not convert', flattenedModel([node('Resize', ['x'], ['z'])], [], [-1, 3, 4, 4]), /m\d+\.onnx: node 0 \(Resize "Resize_z"\): ONNX op Resize is not supported by the importer \(supported: Add, /],
    ['batch norm in training mode', flattenedModel([node('BatchNormalization', ['x', 's', 's', 's', 's'], ['z', 'rm', 'rv'], [int('training_mode', 1)])], [floatTensor('s', [3], [1, 1, 1])], [-1, 3, 4, 4]), /BatchNormalization.*training mode \(export the model in eval mode: model\.eval\(\)\)/],
    ['average pooling with ceil_mode adding a window', flattenedModel([node('AveragePool', ['x'], ['z'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2]), int('ceil_mode', 1)])], [], [-1, 3, 5, 5]), /ceil_mode=1 adds a partial window here; average pooling with it is not supported/],
    ['a transpose of the image', flattenedModel([node('Transpose', ['x'], ['z'], [ints('perm', [0, 1, 3, 2])])], [], [-1, 3, 4, 4]), /transposing a tensor computed from the image \(perm \[0,1,3,2\]\) is not supported/],
    ['reflection padding', flattenedModel([node('Pad', ['x', 'p'], ['z'], [str('mode', 'reflect')])], [intTensor('p', [0, 0, 1, 1, 0, 0, 1, 1])], [-1, 3, 4, 4]), /pad mode "reflect" is not supported/],
    ['float16 weights', flattenedModel([conv()], [{ ...w, dataType: ONNX_DTYPE.FLOAT16, floatData: [], rawData: new Uint8Array(12) }], [-1, 3, 4, 4]), /initializer "W": data type FLOAT16 is not supported \(float32 models only/],
    ['a convolution weight computed from the image', flattenedModel([node('Conv', ['x', 'x'], ['z'])], [], [-1, 3, 4, 4]), /W \(weights\) must be a constant/],
    ['two inputs', graphModel({ nodes: [node('Add', ['x', 'x2'], ['y'])], input: [], inputs: [{ name: 'x', dims: [-1, 3, 4, 4] }, { name: 'x2', dims: [-1, 3, 4, 4] }] }), /the model has 2 inputs \(x, x2\)/],
    ['channels-last input', flattenedModel([conv()], [w], [-1, 32, 32, 3]), /input x of shape \[NaN,32,32,3\] looks channels-last \(NHWC\)/],
    ['flattened pixels as input', graphModel({ nodes: [node('Gemm', ['x', 'W'], ['y'])], initializers: [floatTensor('W', [4, 2], values(8, 3))], input: [-1, 4] }), /input x has rank 2; .*export nn\.Sequential\(nn\.Flatten\(\), model\) with a \(1, C, H, W\) example input/],
    ['a symbolic image size', flattenedModel([conv()], [w], [-1, 3, -1, -1]), /symbolic channel, height or width/],
    ['a 4-D output', graphModel({ nodes: [conv()], initializers: [w], input: [-1, 3, 4, 4], output: 'z' }), /output z has shape \[N,2,4,4\]; a \[batch, classes\] output is expected/],
    ['an opset beyond the supported ones', flattenedModel([conv()], [w], [-1, 3, 4, 4], 30), /opset 30 is outside the supported 7-22/],
  ])('%s', async (_what, model, message) => {
    const before = tf.memory().numTensors;
    await expect(loadOnnxModel(writeOnnx(model as OnnxModel))).rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('files that are not ONNX models', async () => {
    const junk = join(root, 'junk.onnx');
    writeFileSync(junk, Buffer.from('this is not a protocol buffer \u00ff\u00fe'));
    await expect(loadOnnxModel(junk)).rejects.toThrow(/junk\.onnx: (not a readable ONNX model|not an ONNX model)/);
    await expect(loadOnnxModel(join(import.meta.dirname, '..', 'fixtures', 'keras', 'functional.keras'))).rejects.toThrow(/functional\.keras: (not a readable ONNX model|not an ONNX model)/);
    await expect(loadOnnxModel(join(root, 'absent.onnx'))).rejects.toThrow(/absent\.onnx: no such file/);
    await expect(loadOnnxModel(root)).rejects.toThrow(/not a file/);
  });
});

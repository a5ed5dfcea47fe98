/**
 * Read an ONNX image classifier (as PyTorch's `torch.onnx.export` writes it) into a tfjs layers
 * model on NHWC input, so models trained in PyTorch can be attacked here. The graph is NCHW; each
 * node becomes Keras-style layers on NHWC tensors (weights transposed, axes mapped, a flatten of
 * spatial positions done in NCHW order). Shape arithmetic on constants (the batch size taken from
 * `Shape`, pads built by `Concat`/`Slice`, ...) is evaluated here, with the unknown batch size kept
 * as NaN. What tfjs cannot compute the same way is refused by name before any layer is built.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, normalize, resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ChannelShuffle, ChannelSlice } from '../layers/channel-ops.ts';
import { ConstantArithmetic, ConstantPad2D, Erf, LogSoftmax, type ConstantOp } from '../layers/onnx-ops.ts';
import {
  decodeOnnxModel,
  ONNX_DTYPE,
  ONNX_DTYPE_NAMES,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from './onnx-proto.ts';

/** A constant: row-major values (NaN = the unknown batch size) with its ONNX dims. */
interface Const {
  kind: 'const';
  dims: number[];
  data: Float64Array;
  integer: boolean;
}

/** A tensor computed by the model: NHWC for rank 4, [batch, features] for rank 2; `shape` in ONNX (NCHW) order, batch NaN. */
interface Sym {
  kind: 'sym';
  t: tf.SymbolicTensor;
  shape: number[];
}

/**
 * A channel shuffle in progress (ShuffleNet's view -> transpose -> view): the 4-D tensor viewed as
 * [N, groups, C/groups, H, W], then with the two group axes swapped. Only the final view may use it.
 */
interface Shuffle {
  kind: 'shuffle';
  src: Sym;
  groups: number;
  transposed: boolean;
}

type Value = Const | Sym | Shuffle;

/** What {@link loadOnnxModel} found in the file, for metadata and messages. */
export interface OnnxModelInfo {
  producer: string;
  opset: number;
  inputName: string;
  /** Input shape in ONNX order, [batch, C, H, W] (batch NaN when symbolic). */
  inputShape: number[];
  outputName: string;
  nodes: number;
  ops: string[];
}

const SUPPORTED_OPSET_MAX = 22;

class OnnxError extends Error {}

function numel(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function constOf(dims: number[], values: ArrayLike<number>, integer: boolean): Const {
  if (values.length !== numel(dims)) throw new OnnxError(`constant with dims [${dims}] has ${values.length} values`);
  return { kind: 'const', dims: [...dims], data: Float64Array.from(values), integer };
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new OnnxError(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

function stridesOf(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

/** Where a model's tensors live: its directory, and the external data files read so far (each read once). */
interface TensorSource {
  dir: string;
  files: Map<string, Buffer>;
}

/** Read a TensorProto's values (raw little-endian bytes, typed fields, or external data). */
function tensorValues(t: OnnxTensor, src: TensorSource, what: string): Const {
  const dims = (t.dims ?? []).map(Number);
  const dt = t.dataType ?? 0;
  const n = numel(dims);
  let raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataLocation === 1) {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw new OnnxError(`${what}: external data without a location`);
    if (isAbsolute(location) || normalize(location).split(sep).includes('..')) {
      throw new OnnxError(`${what}: external data location ${JSON.stringify(location)} must be a path inside the model's directory`);
    }
    const path = resolve(src.dir, location);
    if (!existsSync(path)) throw new OnnxError(`${what}: its external data file ${path} does not exist (keep it next to the .onnx file)`);
    // The exporter puts every tensor in one file: read it once, not once per tensor.
    let buf = src.files.get(path);
    if (!buf) {
      buf = readFileSync(path);
      src.files.set(path, buf);
    }
    const offset = Number(entries.get('offset') ?? 0);
    const size = buf.byteLength;
    const length = entries.has('length') ? Number(entries.get('length')) : size - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
      throw new OnnxError(`${what}: external data [${offset}, ${offset + length}) lies outside ${path} (${size} bytes)`);
    }
    raw = new Uint8Array(buf.buffer, buf.byteOffset + offset, length);
  }
  const integer = dt !== ONNX_DTYPE.FLOAT && dt !== ONNX_DTYPE.DOUBLE;
  let values: ArrayLike<number>;
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const width = { [ONNX_DTYPE.FLOAT]: 4, [ONNX_DTYPE.DOUBLE]: 8, [ONNX_DTYPE.INT64]: 8, [ONNX_DTYPE.INT32]: 4, [ONNX_DTYPE.BOOL]: 1, [ONNX_DTYPE.UINT8]: 1, [ONNX_DTYPE.INT8]: 1 }[dt];
    if (width === undefined) throw new OnnxError(`${what}: data type ${ONNX_DTYPE_NAMES[dt] ?? dt} is not supported (float32 models only; export in float32)`);
    if (raw.byteLength !== n * width) throw new OnnxError(`${what}: ${raw.byteLength} bytes of data for dims [${dims}] of ${ONNX_DTYPE_NAMES[dt]}`);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * width;
      switch (dt) {
        case ONNX_DTYPE.FLOAT: out[i] = view.getFloat32(o, true); break;
        case ONNX_DTYPE.DOUBLE: out[i] = view.getFloat64(o, true); break;
        case ONNX_DTYPE.INT64: out[i] = Number(view.getBigInt64(o, true)); break;
        case ONNX_DTYPE.INT32: out[i] = view.getInt32(o, true); break;
        case ONNX_DTYPE.INT8: out[i] = view.getInt8(o); break;
        default: out[i] = view.getUint8(o);
      }
    }
    values = out;
  } else if (dt === ONNX_DTYPE.FLOAT) values = t.floatData ?? [];
  else if (dt === ONNX_DTYPE.DOUBLE) values = t.doubleData ?? [];
  else if (dt === ONNX_DTYPE.INT64) values = t.int64Data ?? [];
  else if (dt === ONNX_DTYPE.INT32 || dt === ONNX_DTYPE.BOOL || dt === ONNX_DTYPE.UINT8 || dt === ONNX_DTYPE.INT8) values = t.int32Data ?? [];
  else throw new OnnxError(`${what}: data type ${ONNX_DTYPE_NAMES[dt] ?? dt} is not supported (float32 models only; export in float32)`);
  if (values.length !== n) throw new OnnxError(`${what}: ${values.length} values for dims [${dims}]`);
  return constOf(dims, values, integer);
}

/** Attribute access for one node, with defaults. */
class Attrs {
  private readonly map: Map<string, OnnxAttribute>;
  constructor(private readonly node: string, attrs: OnnxAttribute[] | undefined) {
    this.map = new Map((attrs ?? []).map((a) => [a.name ?? '', a]));
    for (const a of attrs ?? []) {
      if (a.refAttrName) throw new OnnxError(`${node}: attribute ${a.name} refers to a function attribute (model-local functions are not supported)`);
    }
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  int(name: string, dflt: number): number {
    const a = this.map.get(name);
    return a === undefined ? dflt : Number(a.i ?? 0);
  }
  float(name: string, dflt: number): number {
    const a = this.map.get(name);
    return a === undefined ? dflt : Number(a.f ?? 0);
  }
  ints(name: string, dflt: number[] | undefined): number[] | undefined {
    const a = this.map.get(name);
    return a === undefined ? dflt : (a.ints ?? []).map(Number);
  }
  floats(name: string): number[] | undefined {
    const a = this.map.get(name);
    return a === undefined ? undefined : (a.floats ?? []).map(Number);
  }
  str(name: string, dflt: string): string {
    const a = this.map.get(name);
    return a === undefined ? dflt : new TextDecoder().decode(a.s ?? new Uint8Array());
  }
  tensor(name: string): OnnxTensor | undefined {
    return this.map.get(name)?.t;
  }
}

/** Padding of one spatial axis the way TensorFlow's 'same' places it. */
function tfSamePads(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const eff = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + eff - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Converts one graph; values by ONNX name, layers named after the ONNX nodes. */
class Converter {
  private readonly values = new Map<string, Value>();
  private readonly names = new Set<string>();
  private readonly pendingWeights: { layer: tf.layers.Layer; weights: tf.Tensor[] }[] = [];
  private readonly built: tf.layers.Layer[] = [];
  private node = '';

  constructor(private readonly opset: number, private readonly tensors: TensorSource) {}

  fail(msg: string): never {
    throw new OnnxError(`${this.node}: ${msg}`);
  }

  set(name: string, v: Value): void {
    if (name) this.values.set(name, v);
  }

  get(name: string | undefined): Value {
    const v = name ? this.values.get(name) : undefined;
    if (!v) this.fail(`input ${JSON.stringify(name)} is not produced by any earlier node or initializer`);
    return v;
  }

  sym(name: string | undefined, what: string): Sym {
    const v = this.get(name);
    if (v.kind === 'shuffle') this.fail(`${what} is a 5-D view of the image's channels; only a channel shuffle (view, transpose(1, 2), view back) is supported`);
    if (v.kind !== 'sym') this.fail(`${what} must be computed from the image, got a constant`);
    return v;
  }

  constant(name: string | undefined, what: string): Const {
    const v = this.get(name);
    if (v.kind !== 'const') this.fail(`${what} must be a constant (an initializer or constant-foldable), got a tensor computed from the image`);
    return v;
  }

  layerName(base: string): string {
    let name = base.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'node';
    if (!/^[A-Za-z]/.test(name)) name = `onnx_${name}`;
    let candidate = name;
    for (let k = 2; this.names.has(candidate); k++) candidate = `${name}_${k}`;
    this.names.add(candidate);
    return candidate;
  }

  apply(layer: tf.layers.Layer, inputs: tf.SymbolicTensor | tf.SymbolicTensor[], weights?: tf.Tensor[]): tf.SymbolicTensor {
    const out = layer.apply(inputs) as tf.SymbolicTensor;
    this.built.push(layer);
    if (weights) this.pendingWeights.push({ layer, weights });
    return out;
  }

  setWeights(): void {
    for (const { layer, weights } of this.pendingWeights) {
      layer.setWeights(weights);
      tf.dispose(weights);
    }
  }

  /** After a failed conversion: free the weights waiting to be set and the variables of the layers already built. */
  disposePending(): void {
    for (const { weights } of this.pendingWeights) tf.dispose(weights);
    for (const layer of this.built) {
      try {
        layer.dispose();
      } catch {
        // A layer with nothing to dispose.
      }
    }
  }

  /** Make a Sym from a layer output with the given ONNX-order shape. */
  out(t: tf.SymbolicTensor, shape: number[]): Sym {
    return { kind: 'sym', t, shape };
  }

  /** Per-channel (or scalar) values of a constant broadcast against a rank-2/4 tensor; undefined if it varies elsewhere. */
  channelValues(c: Const, s: Sym): number[] | undefined {
    const rank = s.shape.length;
    if (c.dims.length > rank) return undefined;
    const dims = [...new Array<number>(rank - c.dims.length).fill(1), ...c.dims];
    const channels = s.shape[1]!;
    for (let a = 0; a < rank; a++) {
      if (a === 1) continue;
      if (dims[a] !== 1) return undefined;
    }
    if (dims[1] !== 1 && dims[1] !== channels) return undefined;
    return Array.from(c.data);
  }

  convert(node: OnnxNode, index: number): void {
    const op = node.opType ?? '';
    this.node = `node ${index} (${op}${node.name ? ` ${JSON.stringify(node.name)}` : ''})`;
    if (node.domain && node.domain !== 'ai.onnx') this.fail(`operators of domain ${JSON.stringify(node.domain)} are not supported`);
    const ins = node.input ?? [];
    const outs = node.output ?? [];
    const attrs = new Attrs(this.node, node.attribute);
    const present = ins.filter((n) => n !== '').map((n) => this.get(n));
    if (op !== 'Shape' && present.length > 0 && present.every((v) => v.kind === 'const')) {
      this.set(outs[0]!, this.fold(op, ins, attrs));
      return;
    }
    if (op === 'Constant') {
      this.set(outs[0]!, this.fold(op, ins, attrs));
      return;
    }
    const base = node.name || `${op}_${index}`;
    if (op === 'Split') {
      this.split(ins, outs, attrs, base).forEach((v, i) => this.set(outs[i]!, v));
      return;
    }
    this.set(outs[0]!, this.layerOp(op, ins, outs, attrs, base));
  }

  // ---------- constant folding ----------

  fold(op: string, ins: string[], a: Attrs): Const {
    const c = (i: number, what: string) => this.constant(ins[i], what);
    switch (op) {
      case 'Constant': {
        const t = a.tensor('value');
        if (t) return tensorValues(t, this.tensors, this.node);
        if (a.has('value_float')) return constOf([], [a.float('value_float', 0)], false);
        if (a.has('value_int')) return constOf([], [a.int('value_int', 0)], true);
        const fl = a.floats('value_floats');
        if (fl) return constOf([fl.length], fl, false);
        const il = a.ints('value_ints', undefined);
        if (il) return constOf([il.length], il, true);
        return this.fail('Constant without a value, value_float(s) or value_int(s) attribute');
      }
      case 'Identity':
      case 'Cast':
        return c(0, 'input');
      case 'ConstantOfShape': {
        const shape = c(0, 'shape');
        if (Array.from(shape.data).some((d) => !Number.isInteger(d) || d < 0)) this.fail(`shape [${Array.from(shape.data)}] depends on the batch size`);
        const t = a.tensor('value');
        const v = t ? tensorValues(t, this.tensors, this.node) : constOf([1], [0], false);
        const dims = Array.from(shape.data);
        return constOf(dims, new Float64Array(numel(dims)).fill(v.data[0] ?? 0), v.integer);
      }
      case 'Gather': {
        const x = c(0, 'data');
        const idx = c(1, 'indices');
        const axis = normAxis(a.int('axis', 0), x.dims.length, 'Gather');
        const outer = numel(x.dims.slice(0, axis));
        const inner = numel(x.dims.slice(axis + 1));
        const n = x.dims[axis]!;
        const out: number[] = [];
        for (let o = 0; o < outer; o++) {
          for (const raw of idx.data) {
            const i = raw < 0 ? raw + n : raw;
            if (!(i >= 0 && i < n)) this.fail(`index ${raw} out of range for size ${n}`);
            for (let k = 0; k < inner; k++) out.push(x.data[(o * n + i) * inner + k]!);
          }
        }
        return constOf([...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)], out, x.integer);
      }
      case 'Unsqueeze': {
        const x = c(0, 'data');
        const axes = this.opset >= 13 ? Array.from(c(1, 'axes').data) : a.ints('axes', [])!;
        const rank = x.dims.length + axes.length;
        const norm = axes.map((ax) => normAxis(ax, rank, 'Unsqueeze'));
        const dims: number[] = [];
        let k = 0;
        for (let i = 0; i < rank; i++) dims.push(norm.includes(i) ? 1 : x.dims[k++]!);
        return constOf(dims, x.data, x.integer);
      }
      case 'Squeeze': {
        const x = c(0, 'data');
        const axesArg = this.opset >= 13 ? (ins[1] ? Array.from(c(1, 'axes').data) : undefined) : a.ints('axes', undefined);
        const axes = (axesArg ?? x.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((ax) => normAxis(ax, x.dims.length, 'Squeeze'));
        return constOf(x.dims.filter((_, i) => !axes.includes(i)), x.data, x.integer);
      }
      case 'Concat': {
        const parts = ins.filter((n) => n !== '').map((_, i) => c(i, `input ${i}`));
        const rank = parts[0]!.dims.length;
        const axis = normAxis(a.int('axis', 0), rank, 'Concat');
        const outer = numel(parts[0]!.dims.slice(0, axis));
        const out: number[] = [];
        for (let o = 0; o < outer; o++) {
          for (const p of parts) {
            const inner = numel(p.dims.slice(axis));
            for (let k = 0; k < inner; k++) out.push(p.data[o * inner + k]!);
          }
        }
        const dims = [...parts[0]!.dims];
        dims[axis] = parts.reduce((s, p) => s + p.dims[axis]!, 0);
        return constOf(dims, out, parts.every((p) => p.integer));
      }
      case 'Reshape': {
        const x = c(0, 'data');
        const target = Array.from(c(1, 'shape').data);
        const dims = target.map((d, i) => (d === 0 && a.int('allowzero', 0) === 0 ? x.dims[i]! : d));
        const known = numel(dims.filter((d) => d !== -1));
        const infer = dims.indexOf(-1);
        if (infer >= 0) dims[infer] = x.data.length / known;
        return constOf(dims, x.data, x.integer);
      }
      case 'Transpose': {
        const x = c(0, 'data');
        const rank = x.dims.length;
        const perm = a.ints('perm', undefined) ?? [...Array(rank).keys()].reverse();
        const dims = perm.map((p) => x.dims[p]!);
        const inStrides = stridesOf(x.dims);
        const outStrides = stridesOf(dims);
        const out = new Float64Array(x.data.length);
        for (let i = 0; i < out.length; i++) {
          let src = 0;
          for (let d = 0; d < rank; d++) src += Math.floor(i / outStrides[d]!) % dims[d]! * inStrides[perm[d]!]!;
          out[i] = x.data[src]!;
        }
        return constOf(dims, out, x.integer);
      }
      case 'Slice': {
        const x = c(0, 'data');
        const rank = x.dims.length;
        const starts = this.opset >= 10 ? Array.from(c(1, 'starts').data) : a.ints('starts', [])!;
        const ends = this.opset >= 10 ? Array.from(c(2, 'ends').data) : a.ints('ends', [])!;
        const axes = (this.opset >= 10 ? (ins[3] ? Array.from(c(3, 'axes').data) : undefined) : a.ints('axes', undefined)) ?? starts.map((_, i) => i);
        const steps = this.opset >= 10 && ins[4] ? Array.from(c(4, 'steps').data) : starts.map(() => 1);
        const ranges = x.dims.map((d) => ({ start: 0, step: 1, count: d }));
        axes.forEach((ax, i) => {
          const axis = normAxis(ax, rank, 'Slice');
          const d = x.dims[axis]!;
          const step = steps[i]!;
          if (step === 0) this.fail('Slice step 0');
          let s = starts[i]!;
          let e = ends[i]!;
          s = s < 0 ? s + d : s;
          e = e < 0 ? e + d : e;
          if (step > 0) {
            s = Math.min(Math.max(s, 0), d);
            e = Math.min(Math.max(e, 0), d);
            ranges[axis] = { start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
          } else {
            s = Math.min(Math.max(s, -1), d - 1);
            e = Math.min(Math.max(e, -1), d - 1);
            ranges[axis] = { start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
          }
        });
        const dims = ranges.map((r) => r.count);
        const inStrides = stridesOf(x.dims);
        const outStrides = stridesOf(dims);
        const out = new Float64Array(numel(dims));
        for (let i = 0; i < out.length; i++) {
          let src = 0;
          for (let d = 0; d < rank; d++) {
            const k = Math.floor(i / outStrides[d]!) % dims[d]!;
            src += (ranges[d]!.start + k * ranges[d]!.step) * inStrides[d]!;
          }
          out[i] = x.data[src]!;
        }
        return constOf(dims, out, x.integer);
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const x = c(0, 'A');
        const y = c(1, 'B');
        const rank = Math.max(x.dims.length, y.dims.length);
        const xd = [...new Array<number>(rank - x.dims.length).fill(1), ...x.dims];
        const yd = [...new Array<number>(rank - y.dims.length).fill(1), ...y.dims];
        const dims = xd.map((d, i) => {
          if (d !== yd[i] && d !== 1 && yd[i] !== 1) this.fail(`cannot broadcast [${x.dims}] with [${y.dims}]`);
          return Math.max(d, yd[i]!);
        });
        const xs = stridesOf(xd);
        const ys = stridesOf(yd);
        const os = stridesOf(dims);
        const integer = x.integer && y.integer;
        const out = new Float64Array(numel(dims));
        for (let i = 0; i < out.length; i++) {
          let xi = 0;
          let yi = 0;
          for (let d = 0; d < rank; d++) {
            const k = Math.floor(i / os[d]!) % dims[d]!;
            if (xd[d] !== 1) xi += k * xs[d]!;
            if (yd[d] !== 1) yi += k * ys[d]!;
          }
          const p = x.data[xi]!;
          const q = y.data[yi]!;
          const r = op === 'Add' ? p + q : op === 'Sub' ? p - q : op === 'Mul' ? p * q : integer ? Math.trunc(p / q) : p / q;
          out[i] = integer ? r : Math.fround(r);
        }
        return constOf(dims, out, integer);
      }
      default:
        return this.fail(`ONNX op ${op} on constant inputs is not supported`);
    }
  }

  // ---------- ops on the image's tensors ----------

  /** Explicit [begin_h, begin_w, end_h, end_w] pads from `pads`/`auto_pad`. */
  spatialPads(a: Attrs, size: [number, number], kernel: number[], strides: number[], dilations: number[]): [number, number, number, number] {
    const auto = a.str('auto_pad', 'NOTSET');
    if (auto === 'VALID') return [0, 0, 0, 0];
    if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
      const [th, bh] = tfSamePads(size[0], kernel[0]!, strides[0]!, dilations[0]!);
      const [tw, bw] = tfSamePads(size[1], kernel[1]!, strides[1]!, dilations[1]!);
      return auto === 'SAME_UPPER' ? [th, tw, bh, bw] : [bh, bw, th, tw];
    }
    if (auto !== 'NOTSET') this.fail(`auto_pad ${JSON.stringify(auto)} is not supported`);
    const pads = a.ints('pads', [0, 0, 0, 0])!;
    if (pads.length !== 4 || pads.some((p) => p < 0)) this.fail(`pads [${pads}]: expected 4 values >= 0 for a 2-D op`);
    return pads as [number, number, number, number];
  }

  /**
   * Pad `x` so a 'valid' op gives ONNX's result, or say 'same' when TensorFlow's own 'same' padding
   * is the same padding (and, for pooling, pads the same way: -inf for max, excluded for average).
   */
  padFor(
    x: Sym,
    pads: [number, number, number, number],
    kernel: number[],
    strides: number[],
    dilations: number[],
    base: string,
    fill: 'zero' | 'lowest' | 'none',
    countsPadding = false,
  ): { t: tf.SymbolicTensor; padding: 'same' | 'valid'; h: number; w: number } {
    const [h, w] = [x.shape[2]!, x.shape[3]!];
    const [pt, pl, pb, pr] = pads;
    if (pt + pl + pb + pr === 0) return { t: x.t, padding: 'valid', h, w };
    const [sh, bh] = tfSamePads(h, kernel[0]!, strides[0]!, dilations[0]!);
    const [sw, bw] = tfSamePads(w, kernel[1]!, strides[1]!, dilations[1]!);
    // TensorFlow's 'same' average pooling leaves the padding out of the count, so count_include_pad=1 pads explicitly.
    if (pt === sh && pb === bh && pl === sw && pr === bw && !countsPadding) return { t: x.t, padding: 'same', h, w };
    if (fill === 'none') this.fail(`padding [${pads}] with count_include_pad=0 differs from TensorFlow's 'same' placement; not supported`);
    const layer = fill === 'zero'
      ? tf.layers.zeroPadding2d({ padding: [[pt, pb], [pl, pr]], name: this.layerName(`${base}_pad`) })
      : new ConstantPad2D({ padding: [[pt, pb], [pl, pr]], fill, name: this.layerName(`${base}_pad`) });
    return { t: this.apply(layer, x.t), padding: 'valid', h: h + pt + pb, w: w + pl + pr };
  }

  outSize(size: number, kernel: number, stride: number, dilation: number, ceil: boolean): number {
    const eff = (kernel - 1) * dilation + 1;
    return (ceil ? Math.ceil : Math.floor)((size - eff) / stride) + 1;
  }

  rank4(x: Sym, what: string): void {
    if (x.shape.length !== 4) this.fail(`${what} needs a 4-D [N, C, H, W] tensor, got rank ${x.shape.length}`);
  }

  layerOp(op: string, ins: string[], outs: string[], a: Attrs, base: string): Value {
    const extraOutputsUsed = () => outs.slice(1).some((o) => o !== '');
    switch (op) {
      case 'Identity':
      case 'Dropout':
        if (op === 'Dropout' && outs.length > 1 && outs[1] !== '') {
          // The mask output is only meaningful in training; nothing downstream may read it.
          this.set(outs[1]!, { kind: 'const', dims: [], data: Float64Array.of(1), integer: true });
        }
        return this.sym(ins[0], 'input');
      case 'Cast': {
        const to = a.int('to', ONNX_DTYPE.FLOAT);
        if (to !== ONNX_DTYPE.FLOAT) this.fail(`cast of an image tensor to ${ONNX_DTYPE_NAMES[to] ?? to} is not supported`);
        return this.sym(ins[0], 'input');
      }
      case 'Shape': {
        const v = this.get(ins[0]);
        if (v.kind === 'shuffle') this.fail('the shape of a 5-D channel view is not supported');
        const dims = v.kind === 'sym' ? v.shape : v.dims;
        let start = a.int('start', 0);
        let end = a.int('end', dims.length);
        start = start < 0 ? start + dims.length : start;
        end = end < 0 ? end + dims.length : end;
        const picked = dims.slice(Math.max(0, start), Math.min(dims.length, end));
        return constOf([picked.length], picked, true);
      }
      case 'Conv':
        return this.conv(ins, a, base);
      case 'BatchNormalization': {
        if (a.int('training_mode', 0) !== 0 || extraOutputsUsed()) this.fail('batch norm in training mode (export the model in eval mode: model.eval())');
        if (this.opset < 9 && a.int('spatial', 1) !== 1) this.fail('batch norm with spatial=0 is not supported');
        const x = this.sym(ins[0], 'X');
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => this.constant(ins[i], ['scale', 'B', 'mean', 'var'][i - 1]!));
        const channels = x.shape[1]!;
        for (const p of [scale, bias, mean, variance]) if (p!.data.length !== channels) this.fail(`parameter of ${p!.data.length} values for ${channels} channels`);
        const layer = tf.layers.batchNormalization({ axis: -1, epsilon: a.float('epsilon', 1e-5), name: this.layerName(base) });
        const t = this.apply(layer, x.t, [scale, bias, mean, variance].map((p) => tf.tensor1d(Float32Array.from(p!.data))));
        return this.out(t, x.shape);
      }
      case 'Relu':
      case 'Sigmoid':
      case 'Tanh':
      case 'Softplus': {
        const x = this.sym(ins[0], 'X');
        const activation = ({ Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh', Softplus: 'softplus' } as const)[op];
        return this.out(this.apply(tf.layers.activation({ activation, name: this.layerName(base) }), x.t), x.shape);
      }
      case 'HardSigmoid':
      case 'HardSwish': {
        // max(0, min(1, alpha x + beta)), times x for HardSwish (MobileNetV3's nn.Hardswish: alpha 1/6, beta 1/2).
        const x = this.sym(ins[0], 'X');
        const alpha = op === 'HardSigmoid' ? a.float('alpha', 0.2) : 1 / 6;
        const beta = op === 'HardSigmoid' ? a.float('beta', 0.5) : 0.5;
        let t = this.apply(new ConstantArithmetic({ op: 'mul', values: [Math.fround(alpha)], name: this.layerName(`${base}_scale`) }), x.t);
        t = this.apply(new ConstantArithmetic({ op: 'add', values: [Math.fround(beta)], name: this.layerName(`${base}_shift`) }), t);
        t = this.apply(new ConstantArithmetic({ op: 'clip', values: [0, 1], name: this.layerName(op === 'HardSigmoid' ? base : `${base}_gate`) }), t);
        if (op === 'HardSwish') t = this.apply(tf.layers.multiply({ name: this.layerName(base) }), [x.t, t]);
        return this.out(t, x.shape);
      }
      case 'Gelu': {
        const x = this.sym(ins[0], 'X');
        const approximate = a.str('approximate', 'none');
        if (approximate !== 'none' && approximate !== 'tanh') this.fail(`approximate=${JSON.stringify(approximate)} is not supported`);
        const layer = tf.layers.activation({ activation: approximate === 'tanh' ? 'gelu_new' : 'gelu', name: this.layerName(base) });
        return this.out(this.apply(layer, x.t), x.shape);
      }
      case 'Erf': {
        // nn.GELU exported by the TorchScript exporter: x * 0.5 * (1 + erf(x / sqrt 2)).
        const x = this.sym(ins[0], 'X');
        return this.out(this.apply(new Erf({ name: this.layerName(base) }), x.t), x.shape);
      }
      case 'Transpose': {
        const v = this.get(ins[0]);
        const perm = a.ints('perm', undefined);
        if (v.kind === 'shuffle' && !v.transposed && perm?.join(',') === '0,2,1,3,4') return { ...v, transposed: true };
        return this.fail(`transposing a tensor computed from the image (perm [${perm}]) is not supported (only the channel shuffle of ShuffleNet)`);
      }
      case 'LeakyRelu': {
        const x = this.sym(ins[0], 'X');
        return this.out(this.apply(tf.layers.leakyReLU({ alpha: a.float('alpha', 0.01), name: this.layerName(base) }), x.t), x.shape);
      }
      case 'Elu': {
        const x = this.sym(ins[0], 'X');
        return this.out(this.apply(tf.layers.elu({ alpha: a.float('alpha', 1), name: this.layerName(base) }), x.t), x.shape);
      }
      case 'Clip': {
        const x = this.sym(ins[0], 'input');
        let lo = -Infinity;
        let hi = Infinity;
        if (this.opset < 11) {
          lo = a.float('min', -Infinity);
          hi = a.float('max', Infinity);
        } else {
          if (ins[1]) lo = this.constant(ins[1], 'min').data[0]!;
          if (ins[2]) hi = this.constant(ins[2], 'max').data[0]!;
        }
        const name = this.layerName(base);
        if (lo === 0 && (hi === Infinity || hi > 0)) {
          const layer = tf.layers.reLU(hi === Infinity ? { name } : { maxValue: hi, name });
          return this.out(this.apply(layer, x.t), x.shape);
        }
        return this.out(this.apply(new ConstantArithmetic({ op: 'clip', values: [lo, hi], name }), x.t), x.shape);
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        return this.arithmetic(op, ins, base);
      case 'MaxPool':
      case 'AveragePool':
        return this.pool(op, ins, outs, a, base);
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
      case 'ReduceMean':
      case 'ReduceMax':
        return this.globalPool(op, ins, a, base);
      case 'Split':
        return this.fail('internal: Split is converted by split()');
      case 'Slice': {
        // torch.chunk / x[:, a:b] as the TorchScript exporter writes them: a slice of the channels.
        const x = this.sym(ins[0], 'data');
        const rank = x.shape.length;
        const starts = this.opset >= 10 ? Array.from(this.constant(ins[1], 'starts').data) : a.ints('starts', [])!;
        const ends = this.opset >= 10 ? Array.from(this.constant(ins[2], 'ends').data) : a.ints('ends', [])!;
        const axes = (this.opset >= 10 ? (ins[3] ? Array.from(this.constant(ins[3], 'axes').data) : undefined) : a.ints('axes', undefined)) ?? starts.map((_, i) => i);
        const steps = this.opset >= 10 && ins[4] ? Array.from(this.constant(ins[4], 'steps').data) : starts.map(() => 1);
        let channels: [number, number] | undefined;
        axes.forEach((ax, i) => {
          const axis = normAxis(ax, rank, 'Slice');
          const d = x.shape[axis]!;
          const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
          const [b, e] = [clamp(starts[i]!), clamp(ends[i]!)];
          if (axis === 0 && b === 0 && (ends[i]! >= 2 ** 31 - 1 || ends[i] === -1 + 2 ** 63)) return;
          if (steps[i] !== 1) this.fail(`slices with step ${steps[i]} are not supported`);
          if (axis === 1 && rank === 4) channels = [b, e];
          else if (!(b === 0 && e === d)) this.fail(`slicing axis ${axis} of [${x.shape.map((v) => (Number.isNaN(v) ? 'N' : v))}] is not supported (only the channels of a 4-D tensor)`);
        });
        if (!channels || (channels[0] === 0 && channels[1] === x.shape[1])) return x;
        const [b, e] = channels;
        if (e <= b) this.fail('an empty channel slice');
        const t = this.apply(new ChannelSlice({ start: b, size: e - b, name: this.layerName(base) }), x.t);
        return this.out(t, [x.shape[0]!, e - b, x.shape[2]!, x.shape[3]!]);
      }
      case 'Flatten': {
        const x = this.sym(ins[0], 'input');
        const axis = normAxis(a.int('axis', 1), x.shape.length, 'Flatten');
        if (axis !== 1) this.fail(`flatten from axis ${axis} is not supported (only axis 1, keeping the batch)`);
        return this.flatten(x, base);
      }
      case 'Reshape':
        return this.reshape(ins, a, base);
      case 'Squeeze':
      case 'Unsqueeze':
        return this.squeeze(op, ins, a, base);
      case 'Gemm':
      case 'MatMul':
        return this.dense(op, ins, a, base);
      case 'Concat': {
        const parts = ins.filter((n) => n !== '').map((n, i) => this.sym(n, `input ${i}`));
        const rank = parts[0]!.shape.length;
        const axis = normAxis(a.int('axis', 1), rank, 'Concat');
        if (axis !== 1) this.fail(`concatenation along axis ${axis} is not supported (only channels, axis 1)`);
        if (parts.some((p) => p.shape.length !== rank)) this.fail('inputs of different ranks');
        const shape = [...parts[0]!.shape];
        shape[1] = parts.reduce((s, p) => s + p.shape[1]!, 0);
        if (parts.length === 1) return parts[0]!;
        const t = this.apply(tf.layers.concatenate({ axis: -1, name: this.layerName(base) }), parts.map((p) => p.t));
        return this.out(t, shape);
      }
      case 'Pad': {
        const x = this.sym(ins[0], 'data');
        this.rank4(x, 'Pad');
        const mode = a.str('mode', 'constant');
        if (mode !== 'constant') this.fail(`pad mode ${JSON.stringify(mode)} is not supported (only constant)`);
        const pads = this.opset >= 11 ? Array.from(this.constant(ins[1], 'pads').data) : a.ints('pads', [])!;
        const value = this.opset >= 11 ? (ins[2] ? this.constant(ins[2], 'constant_value').data[0]! : 0) : a.float('value', 0);
        if (this.opset >= 18 && ins[3]) this.fail('Pad with an axes input is not supported');
        if (pads.length !== 8) this.fail(`pads [${pads}]: expected 8 values for a 4-D tensor`);
        const [n0, c0, t, l, n1, c1, b, r] = pads as [number, number, number, number, number, number, number, number];
        if (n0 || c0 || n1 || c1) this.fail('padding of the batch or channel axis is not supported');
        if ([t, l, b, r].some((p) => p < 0)) this.fail(`negative pads [${pads}] (cropping) are not supported`);
        if (value !== 0) this.fail(`padding with ${value} is not supported (only 0)`);
        const layer = tf.layers.zeroPadding2d({ padding: [[t, b], [l, r]], name: this.layerName(base) });
        return this.out(this.apply(layer, x.t), [x.shape[0]!, x.shape[1]!, x.shape[2]! + t + b, x.shape[3]! + l + r]);
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const x = this.sym(ins[0], 'input');
        const axis = normAxis(a.int('axis', this.opset >= 13 ? -1 : 1), x.shape.length, op);
        if (x.shape.length !== 2 || axis !== 1) this.fail(`${op} is supported only over the classes of a [batch, classes] tensor`);
        // Log-probabilities differ from the logits by one constant per row: same predictions, losses and margins.
        const layer = op === 'Softmax' ? tf.layers.softmax({ axis: -1, name: this.layerName(base) }) : new LogSoftmax({ name: this.layerName(base) });
        return this.out(this.apply(layer, x.t), x.shape);
      }
      default:
        return this.fail(`ONNX op ${op} is not supported by the importer (supported: ${SUPPORTED_OPS.join(', ')})`);
    }
  }

  conv(ins: string[], a: Attrs, base: string): Sym {
    const x = this.sym(ins[0], 'X');
    this.rank4(x, 'Conv');
    const w = this.constant(ins[1], 'W (weights)');
    const bias = ins[2] ? this.constant(ins[2], 'B (bias)') : undefined;
    if (w.dims.length !== 4) this.fail(`weights of rank ${w.dims.length}: only 2-D convolutions are supported`);
    const [outC, inPerGroup, kh, kw] = w.dims as [number, number, number, number];
    const group = a.int('group', 1);
    const inC = x.shape[1]!;
    if (inPerGroup * group !== inC || outC % group !== 0) this.fail(`weights [${w.dims}] with group ${group} do not fit ${inC} input channels`);
    const kernel = a.ints('kernel_shape', [kh, kw])!;
    if (kernel[0] !== kh || kernel[1] !== kw) this.fail(`kernel_shape [${kernel}] differs from the weights' [${kh}, ${kw}]`);
    const strides = a.ints('strides', [1, 1])!;
    const dilations = a.ints('dilations', [1, 1])!;
    if (strides.some((s) => s > 1) && dilations.some((d) => d > 1)) this.fail('strides and dilations both above 1 are not supported by TensorFlow.js');
    const pads = this.spatialPads(a, [x.shape[2]!, x.shape[3]!], [kh, kw], strides, dilations);
    const padded = this.padFor(x, pads, [kh, kw], strides, dilations, base, 'zero');
    const outH = padded.padding === 'same' ? Math.ceil(x.shape[2]! / strides[0]!) : this.outSize(padded.h, kh, strides[0]!, dilations[0]!, false);
    const outW = padded.padding === 'same' ? Math.ceil(x.shape[3]! / strides[1]!) : this.outSize(padded.w, kw, strides[1]!, dilations[1]!, false);
    if (outH < 1 || outW < 1) this.fail(`output of ${outH}x${outW} positions`);
    const shape = [x.shape[0]!, outC, outH, outW];
    const common = { kernelSize: [kh, kw] as [number, number], strides: strides as [number, number], dilationRate: dilations as [number, number], padding: padded.padding, useBias: bias !== undefined };
    const biasT = () => (bias ? [tf.tensor1d(Float32Array.from(bias.data))] : []);
    // ONNX [O, I/g, kh, kw] -> tfjs [kh, kw, I, O] for the input channels [i0, i0+ni) and outputs [o0, o0+no).
    const kernelOf = (o0: number, no: number): tf.Tensor => {
      const out = new Float32Array(kh * kw * inPerGroup * no);
      for (let o = 0; o < no; o++) {
        for (let i = 0; i < inPerGroup; i++) {
          for (let r = 0; r < kh; r++) {
            for (let s = 0; s < kw; s++) out[((r * kw + s) * inPerGroup + i) * no + o] = w.data[(((o0 + o) * inPerGroup + i) * kh + r) * kw + s]!;
          }
        }
      }
      return tf.tensor4d(out, [kh, kw, inPerGroup, no]);
    };
    if (group === 1) {
      const layer = tf.layers.conv2d({ ...common, filters: outC, name: this.layerName(base) });
      return this.out(this.apply(layer, padded.t, [kernelOf(0, outC), ...biasT()]), shape);
    }
    // tfjs's DepthwiseConv2D layer ignores dilationRate, so dilated depthwise convs take the grouped path below.
    if (inPerGroup === 1 && dilations.every((d) => d === 1)) {
      // Depthwise: output channel c*m + j reads input channel c, as tfjs's depthwise layout does.
      const m = outC / inC;
      const dk = new Float32Array(kh * kw * inC * m);
      for (let c = 0; c < inC; c++) {
        for (let j = 0; j < m; j++) {
          for (let r = 0; r < kh; r++) for (let s = 0; s < kw; s++) dk[((r * kw + s) * inC + c) * m + j] = w.data[((c * m + j) * kh + r) * kw + s]!;
        }
      }
      const layer = tf.layers.depthwiseConv2d({ ...common, depthMultiplier: m, name: this.layerName(base) });
      return this.out(this.apply(layer, padded.t, [tf.tensor4d(dk, [kh, kw, inC, m]), ...biasT()]), shape);
    }
    // Grouped: one convolution per group on its slice of channels, outputs concatenated in group order.
    const perOut = outC / group;
    const parts = [...Array(group).keys()].map((g) => {
      const slice = this.apply(new ChannelSlice({ start: g * inPerGroup, size: inPerGroup, name: this.layerName(`${base}_g${g}_in`) }), padded.t);
      const b = bias ? [tf.tensor1d(Float32Array.from(bias.data.subarray(g * perOut, (g + 1) * perOut)))] : [];
      const layer = tf.layers.conv2d({ ...common, filters: perOut, name: this.layerName(`${base}_g${g}`) });
      return this.apply(layer, slice, [kernelOf(g * perOut, perOut), ...b]);
    });
    return this.out(this.apply(tf.layers.concatenate({ axis: -1, name: this.layerName(base) }), parts), shape);
  }

  arithmetic(op: 'Add' | 'Sub' | 'Mul' | 'Div', ins: string[], base: string): Sym {
    const p = this.get(ins[0]);
    const q = this.get(ins[1]);
    if (p.kind === 'sym' && q.kind === 'sym') {
      if (p.shape.length !== q.shape.length) this.fail(`inputs of ranks ${p.shape.length} and ${q.shape.length}`);
      const shape = p.shape.map((d, i) => {
        const e = q.shape[i]!;
        if (i > 0 && d !== e && d !== 1 && e !== 1) this.fail(`cannot broadcast [${p.shape}] with [${q.shape}]`);
        return i === 0 ? d : Math.max(d, e);
      });
      if (op === 'Div') this.fail('division of two image tensors is not supported');
      if (op === 'Mul') return this.out(this.apply(tf.layers.multiply({ name: this.layerName(base) }), [p.t, q.t]), shape);
      // tfjs has no Subtract layer; p + (-q) is exactly p - q in floating point.
      const second = op === 'Add' ? q.t : this.apply(new ConstantArithmetic({ op: 'mul', values: [-1], name: this.layerName(`${base}_negate`) }), q.t);
      return this.out(this.apply(tf.layers.add({ name: this.layerName(base) }), [p.t, second]), shape);
    }
    const [s, c, reversed] = p.kind === 'sym' ? [p, q as Const, false] : [q as Sym, p as Const, true];
    const values = this.channelValues(c, s);
    if (!values) this.fail(`constant of dims [${c.dims}] varies over more than the channels of a [${s.shape}] tensor; not supported`);
    const opName: ConstantOp = op === 'Add' ? 'add' : op === 'Mul' ? 'mul' : op === 'Sub' ? (reversed ? 'rsub' : 'sub') : reversed ? 'rdiv' : 'div';
    const layer = new ConstantArithmetic({ op: opName, values: values.map((v) => Math.fround(v)), name: this.layerName(base) });
    return this.out(this.apply(layer, s.t), s.shape);
  }

  pool(op: 'MaxPool' | 'AveragePool', ins: string[], outs: string[], a: Attrs, base: string): Sym {
    const x = this.sym(ins[0], 'X');
    this.rank4(x, op);
    if (outs.length > 1 && outs[1]) this.fail('the Indices output of MaxPool is not supported');
    const kernel = a.ints('kernel_shape', undefined);
    if (!kernel || kernel.length !== 2) this.fail('kernel_shape must have 2 entries');
    const strides = a.ints('strides', [1, 1])!;
    const dilations = a.ints('dilations', [1, 1])!;
    if (dilations.some((d) => d !== 1)) this.fail('dilated pooling is not supported');
    const pads = this.spatialPads(a, [x.shape[2]!, x.shape[3]!], kernel, strides, dilations);
    const ceil = a.int('ceil_mode', 0) === 1;
    const [h, w] = [x.shape[2]! + pads[0] + pads[2], x.shape[3]! + pads[1] + pads[3]];
    let outH = this.outSize(h, kernel[0]!, strides[0]!, 1, false);
    let outW = this.outSize(w, kernel[1]!, strides[1]!, 1, false);
    if (ceil) {
      // PyTorch's rule: round up, but drop a last window that would start in the end padding.
      const up = (padded: number, inSize: number, begin: number, k: number, st: number) => {
        const o = this.outSize(padded, k, st, 1, true);
        return (o - 1) * st >= inSize + begin ? o - 1 : o;
      };
      const [ch, cw] = [up(h, x.shape[2]!, pads[0], kernel[0]!, strides[0]!), up(w, x.shape[3]!, pads[1], kernel[1]!, strides[1]!)];
      if (ch !== outH || cw !== outW) {
        if (op === 'AveragePool') this.fail('ceil_mode=1 adds a partial window here; average pooling with it is not supported (use ceil_mode=False)');
        // Max pooling: pad the end with -inf so the partial window exists and ignores the padding.
        pads[2] += Math.max(0, (ch - 1) * strides[0]! + kernel[0]! - h);
        pads[3] += Math.max(0, (cw - 1) * strides[1]! + kernel[1]! - w);
        [outH, outW] = [ch, cw];
      }
    }
    const includePad = op === 'AveragePool' && a.int('count_include_pad', 0) === 1;
    const fill = op === 'MaxPool' ? 'lowest' : includePad ? 'zero' : 'none';
    const padded = this.padFor(x, pads, kernel, strides, dilations, base, fill, includePad);
    const args = { poolSize: kernel as [number, number], strides: strides as [number, number], padding: padded.padding, name: this.layerName(base) };
    const layer = op === 'MaxPool' ? tf.layers.maxPooling2d(args) : tf.layers.averagePooling2d(args);
    return this.out(this.apply(layer, padded.t), [x.shape[0]!, x.shape[1]!, outH, outW]);
  }

  /** Split along the channels (torch.chunk / torch.split on dim 1) into ChannelSlice layers. */
  split(ins: string[], outs: string[], a: Attrs, base: string): Sym[] {
    const x = this.sym(ins[0], 'input');
    this.rank4(x, 'Split');
    const axis = normAxis(a.int('axis', 0), 4, 'Split');
    if (axis !== 1) this.fail(`split along axis ${axis} is not supported (only channels, axis 1)`);
    const c = x.shape[1]!;
    const sizesArg = this.opset >= 13 ? (ins[1] ? Array.from(this.constant(ins[1], 'split').data) : undefined) : a.ints('split', undefined);
    let sizes: number[];
    if (sizesArg) sizes = sizesArg;
    else {
      const parts = a.int('num_outputs', outs.length);
      const each = Math.ceil(c / parts);
      sizes = [...Array(parts).keys()].map((i) => Math.max(0, Math.min(each, c - i * each)));
    }
    if (sizes.length !== outs.length || sizes.some((v) => !Number.isInteger(v) || v < 1) || sizes.reduce((t, v) => t + v, 0) !== c) {
      this.fail(`split sizes [${sizes}] do not cut ${c} channels into ${outs.length} outputs`);
    }
    let start = 0;
    return sizes.map((size, i) => {
      const t = this.apply(new ChannelSlice({ start, size, name: this.layerName(`${base}_${i}`) }), x.t);
      start += size;
      return this.out(t, [x.shape[0]!, size, x.shape[2]!, x.shape[3]!]);
    });
  }

  globalPool(op: string, ins: string[], a: Attrs, base: string): Sym {
    const x = this.sym(ins[0], 'X');
    this.rank4(x, op);
    let keep = true;
    if (op === 'ReduceMean' || op === 'ReduceMax') {
      const axesArg = this.opset >= 18 ? (ins[1] ? Array.from(this.constant(ins[1], 'axes').data) : undefined) : a.ints('axes', undefined);
      const axes = (axesArg ?? []).map((ax) => normAxis(ax, 4, op)).sort();
      if (axes.length !== 2 || axes[0] !== 2 || axes[1] !== 3) this.fail(`${op} over axes [${axesArg ?? 'all'}] is not supported (only the spatial axes 2 and 3)`);
      keep = a.int('keepdims', 1) === 1;
    }
    const avg = op === 'GlobalAveragePool' || op === 'ReduceMean';
    const name = this.layerName(base);
    const pooled = this.apply(avg ? tf.layers.globalAveragePooling2d({ name }) : tf.layers.globalMaxPooling2d({ name }), x.t);
    const c = x.shape[1]!;
    if (!keep) return this.out(pooled, [x.shape[0]!, c]);
    return this.out(this.apply(tf.layers.reshape({ targetShape: [1, 1, c], name: this.layerName(`${base}_keepdims`) }), pooled), [x.shape[0]!, c, 1, 1]);
  }

  /** [N, C, H, W] -> [N, C*H*W] in ONNX's (channel-major) order. */
  flatten(x: Sym, base: string): Sym {
    if (x.shape.length === 2) return x;
    this.rank4(x, 'Flatten');
    const [n, c, h, w] = x.shape as [number, number, number, number];
    let t = x.t;
    if (h * w > 1) t = this.apply(tf.layers.permute({ dims: [3, 1, 2], name: this.layerName(`${base}_to_nchw`) }), t);
    return this.out(this.apply(tf.layers.flatten({ name: this.layerName(base) }), t), [n, c * h * w]);
  }

  reshape(ins: string[], a: Attrs, base: string): Value {
    const v = this.get(ins[0]);
    const target = Array.from(this.constant(ins[1], 'shape').data);
    const zeroCopies = a.int('allowzero', 0) === 0;
    if (v.kind === 'shuffle') {
      const [n, c, h, w] = v.src.shape as [number, number, number, number];
      const fits = (d: number, want: number, i: number) => d === want || (d === 0 && zeroCopies) || (d === -1 && i === 1);
      const batch = target[0]!;
      if (v.transposed && target.length === 4 && (Number.isNaN(batch) || batch === -1 || (batch === 0 && zeroCopies) || batch === n) && fits(target[1]!, c, 1) && target[2] === h && target[3] === w) {
        return this.out(this.apply(new ChannelShuffle({ groups: v.groups, name: this.layerName(base) }), v.src.t), v.src.shape);
      }
      return this.fail('a 5-D view of the channels must be transposed (1, 2) and viewed back to [N, C, H, W] (a channel shuffle)');
    }
    const x = this.sym(ins[0], 'data');
    if (target.length === 5 && x.shape.length === 4) {
      const [, c, h, w] = x.shape as [number, number, number, number];
      const [b, g, per, th, tw] = target as [number, number, number, number, number];
      const batchOk5 = Number.isNaN(b) || b === -1 || (b === 0 && zeroCopies) || b === x.shape[0];
      if (batchOk5 && Number.isInteger(g) && g > 0 && c % g === 0 && (per === c / g || per === -1) && th === h && tw === w) {
        return { kind: 'shuffle', src: x, groups: g, transposed: false };
      }
    }
    const total = numel(x.shape.slice(1));
    const batchOk = (d: number) => Number.isNaN(d) || d === -1 || (d === 0 && zeroCopies) || d === x.shape[0];
    const rest = target.slice(1);
    if (target.length === 2 && batchOk(target[0]!) && (rest[0] === total || (rest[0] === -1 && target[0] !== -1))) return this.flatten(x, base);
    if (target.length === 4 && x.shape.length === 2 && batchOk(target[0]!) && target[1] === x.shape[1] && target[2] === 1 && target[3] === 1) {
      const t = this.apply(tf.layers.reshape({ targetShape: [1, 1, x.shape[1]!], name: this.layerName(base) }), x.t);
      return this.out(t, [x.shape[0]!, x.shape[1]!, 1, 1]);
    }
    if (target.length === x.shape.length && target.every((d, i) => (i === 0 ? batchOk(d) : d === x.shape[i] || (d === 0 && a.int('allowzero', 0) === 0)))) return x;
    return this.fail(`reshape of [${x.shape.map((d) => (Number.isNaN(d) ? 'N' : d))}] to [${target.map((d) => (Number.isNaN(d) ? 'N' : d))}] is not supported (only flattening to [N, features] and [N, C] <-> [N, C, 1, 1])`);
  }

  squeeze(op: 'Squeeze' | 'Unsqueeze', ins: string[], a: Attrs, base: string): Sym {
    const x = this.sym(ins[0], 'data');
    const axesArg = this.opset >= 13 ? (ins[1] ? Array.from(this.constant(ins[1], 'axes').data) : undefined) : a.ints('axes', undefined);
    if (op === 'Squeeze') {
      const axes = (axesArg ?? [2, 3]).map((ax) => normAxis(ax, x.shape.length, 'Squeeze')).sort();
      if (x.shape.length === 4 && axes.length === 2 && axes[0] === 2 && axes[1] === 3 && x.shape[2] === 1 && x.shape[3] === 1) return this.flatten(x, base);
      return this.fail(`squeezing axes [${axesArg ?? 'all'}] of [${x.shape}] is not supported (only [N, C, 1, 1] -> [N, C])`);
    }
    const axes = (axesArg ?? []).map((ax) => normAxis(ax, x.shape.length + (axesArg?.length ?? 0), 'Unsqueeze')).sort();
    if (x.shape.length === 2 && axes.length === 2 && axes[0] === 2 && axes[1] === 3) {
      const t = this.apply(tf.layers.reshape({ targetShape: [1, 1, x.shape[1]!], name: this.layerName(base) }), x.t);
      return this.out(t, [x.shape[0]!, x.shape[1]!, 1, 1]);
    }
    return this.fail(`unsqueezing [${x.shape}] at axes [${axesArg}] is not supported (only [N, C] -> [N, C, 1, 1])`);
  }

  dense(op: 'Gemm' | 'MatMul', ins: string[], a: Attrs, base: string): Sym {
    const x = this.sym(ins[0], 'A');
    if (x.shape.length !== 2) this.fail(`${op} on a rank-${x.shape.length} tensor is not supported (flatten first)`);
    const b = this.constant(ins[1], 'B (weights)');
    if (b.dims.length !== 2) this.fail(`weights of rank ${b.dims.length}`);
    const transB = op === 'Gemm' && a.int('transB', 0) === 1;
    if (op === 'Gemm' && a.int('transA', 0) !== 0) this.fail('transA=1 is not supported');
    const alpha = op === 'Gemm' ? a.float('alpha', 1) : 1;
    const beta = op === 'Gemm' ? a.float('beta', 1) : 1;
    const [k, units] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
    if (k !== x.shape[1]) this.fail(`weights [${b.dims}]${transB ? ' (transposed)' : ''} do not fit ${x.shape[1]} input features`);
    const kernel = new Float32Array(k * units);
    for (let i = 0; i < k; i++) for (let j = 0; j < units; j++) kernel[i * units + j] = alpha * b.data[transB ? j * k + i : i * units + j]!;
    let biasValues: Float32Array | undefined;
    if (op === 'Gemm' && ins[2]) {
      const c = this.constant(ins[2], 'C (bias)');
      if (!(c.data.length === units || c.data.length === 1) || c.dims.some((d, i) => i < c.dims.length - 1 && d !== 1)) {
        this.fail(`bias of dims [${c.dims}] is not one value per output`);
      }
      biasValues = Float32Array.from({ length: units }, (_, j) => beta * c.data[c.data.length === 1 ? 0 : j]!);
    }
    const layer = tf.layers.dense({ units, useBias: biasValues !== undefined, name: this.layerName(base) });
    const weights = [tf.tensor2d(kernel, [k, units]), ...(biasValues ? [tf.tensor1d(biasValues)] : [])];
    return this.out(this.apply(layer, x.t, weights), [x.shape[0]!, units]);
  }
}

/** ONNX ops the importer converts (others are refused by name). */
export const SUPPORTED_OPS = [
  'Add', 'AveragePool', 'BatchNormalization', 'Cast', 'Clip', 'Concat', 'Constant', 'ConstantOfShape', 'Conv', 'Div', 'Dropout',
  'Elu', 'Erf', 'Flatten', 'Gather', 'Gelu', 'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'LogSoftmax', 'MatMul', 'MaxPool', 'Mul',
  'Pad', 'ReduceMax', 'ReduceMean', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Slice', 'Softmax', 'Softplus', 'Split', 'Squeeze', 'Sub', 'Tanh',
  'Transpose', 'Unsqueeze',
];

function fail(file: string, msg: string): never {
  throw new Error(`loadOnnxModel: ${file}: ${msg}`);
}

/** Describe an .onnx file without converting it: producer, opset, input and output, op types. */
export function inspectOnnxModel(file: string): OnnxModelInfo {
  return readOnnx(file).info;
}

function readOnnx(file: string): { model: OnnxModel; info: OnnxModelInfo } {
  if (!existsSync(file)) fail(file, 'no such file');
  if (!statSync(file).isFile()) fail(file, 'not a file (expected an .onnx model file)');
  let model: OnnxModel;
  try {
    model = decodeOnnxModel(readFileSync(file));
  } catch (err) {
    fail(file, `not a readable ONNX model (${(err as Error).message})`);
  }
  const graph = model.graph;
  if (!graph || !(graph.node ?? []).length) fail(file, 'not an ONNX model (no graph nodes)');
  const defaultOpset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!defaultOpset) fail(file, 'the model imports no default (ai.onnx) opset');
  const opset = Number(defaultOpset.version);
  if (opset < 7 || opset > SUPPORTED_OPSET_MAX) fail(file, `opset ${opset} is outside the supported 7-${SUPPORTED_OPSET_MAX}`);
  if ((model.functions ?? []).length) fail(file, 'model-local functions are not supported (export without custom functions)');
  if ((graph.sparseInitializer ?? []).length) fail(file, 'sparse initializers are not supported');
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name ?? ''));
  if (inputs.length !== 1) fail(file, `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); an image classifier with one input is expected`);
  const input = inputs[0]!;
  const tt = input.type?.tensorType;
  if (!tt || tt.elemType !== ONNX_DTYPE.FLOAT) fail(file, `input ${input.name} is not a float32 tensor (elem type ${ONNX_DTYPE_NAMES[tt?.elemType ?? 0] ?? tt?.elemType})`);
  const dims = (tt.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && Number(d.dimValue) > 0 ? Number(d.dimValue) : Number.NaN));
  if (dims.length !== 4) {
    fail(file, `input ${input.name} has rank ${dims.length}; an NCHW image batch [N, C, H, W] is expected${dims.length === 2 ? ' (for a model on flattened pixels, export nn.Sequential(nn.Flatten(), model) with a (1, C, H, W) example input)' : ''}`);
  }
  if (dims.slice(1).some((d) => Number.isNaN(d))) fail(file, `input ${input.name} has a symbolic channel, height or width (${JSON.stringify(tt.shape?.dim)}); export with a fixed image size`);
  if (dims[3]! <= 4 && dims[1]! > 4 && dims[2]! > 4) fail(file, `input ${input.name} of shape [${dims}] looks channels-last (NHWC); the importer reads NCHW models as PyTorch exports them`);
  const outputs = graph.output ?? [];
  if (outputs.length !== 1) fail(file, `the model has ${outputs.length} outputs; a classifier with one output is expected`);
  const nodes = graph.node ?? [];
  return {
    model,
    info: {
      producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim() || 'unknown',
      opset,
      inputName: input.name ?? '',
      inputShape: dims,
      outputName: outputs[0]!.name ?? '',
      nodes: nodes.length,
      ops: [...new Set(nodes.map((n) => n.opType ?? ''))].sort(),
    },
  };
}

/**
 * Convert an ONNX image classifier (NCHW float32, as `torch.onnx.export` writes it, eval mode) into
 * a tfjs layers model taking NHWC input of the same pixel scale and giving the same output.
 */
export async function loadOnnxModel(file: string): Promise<tf.LayersModel> {
  return (await loadOnnxModelWithInfo(file)).model;
}

/** {@link loadOnnxModel} and {@link inspectOnnxModel} in one read of the file. */
export async function loadOnnxModelWithInfo(file: string): Promise<{ model: tf.LayersModel; info: OnnxModelInfo }> {
  const { model, info } = readOnnx(file);
  const graph = model.graph!;
  const tensors: TensorSource = { dir: dirname(resolve(file)), files: new Map() };
  const conv = new Converter(info.opset, tensors);
  const [, c, h, w] = info.inputShape as [number, number, number, number];
  try {
    for (const t of graph.initializer ?? []) conv.set(t.name ?? '', tensorValues(t, tensors, `initializer ${JSON.stringify(t.name)}`));
    const input = tf.input({ shape: [h, w, c], name: conv.layerName(info.inputName || 'input') });
    conv.set(info.inputName, { kind: 'sym', t: input, shape: [Number.NaN, c, h, w] });
    (graph.node ?? []).forEach((node, i) => conv.convert(node, i));
    const out = conv.get(info.outputName);
    if (out.kind !== 'sym') fail(file, `output ${info.outputName} does not depend on the input`);
    if (out.shape.length !== 2) fail(file, `output ${info.outputName} has shape [${out.shape.map((d) => (Number.isNaN(d) ? 'N' : d))}]; a [batch, classes] output is expected`);
    const result = tf.model({ inputs: input, outputs: out.t, name: conv.layerName(basename(file).replace(/\.onnx$/i, '') || 'onnx_model') });
    conv.setWeights();
    return { model: result, info };
  } catch (err) {
    conv.disposePending();
    if (err instanceof OnnxError) fail(file, err.message);
    throw err;
  }
}

/**
 * The wasm backend's float32 binary kernels (Add, Sub, Multiply, RealDiv, ...) and
 * PadV2 go through XNNPACK, which takes at most 6 dimensions: on rank-7 inputs it
 * reports "XNN status ... 4" and leaves the output buffer unwritten (garbage,
 * silently). Neither op needs that many axes: adjacent axes that broadcast alike, or
 * an axis that is not padded and its outer neighbour, merge into one. The wrappers
 * here reshape rank > 6 inputs (free: buffers are shared) to the merged axes, run
 * the original kernel, and reshape back.
 */
import * as tf from '@tensorflow/tfjs';
import { compose } from './compose.ts';

/** Most axes XNNPACK (inside the wasm backend) handles. */
export const WASM_MAX_BINARY_RANK = 6;

/** Binary kernels of tfjs-backend-wasm 4.22 (all share the {a, b} -> broadcast interface). */
export const WASM_BINARY_KERNELS = [
  'Add', 'Atan2', 'BitwiseAnd', 'Equal', 'FloorDiv', 'Greater', 'GreaterEqual', 'Less', 'LessEqual',
  'LogicalAnd', 'LogicalOr', 'LogicalXor', 'Maximum', 'Minimum', 'Mod', 'Multiply', 'NotEqual', 'Pow',
  'RealDiv', 'SquaredDifference', 'Sub',
] as const;

/**
 * Shapes of `a` and `b` with adjacent axes merged where they broadcast alike
 * (both full, or only one full) and size-1 output axes dropped; same element order.
 */
export function mergeBroadcastAxes(aShape: number[], bShape: number[]): { a: number[]; b: number[] } {
  const out = tf.backend_util.assertAndGetBroadcastShape(aShape, bShape);
  const r = out.length;
  const pa = [...new Array(r - aShape.length).fill(1), ...aShape];
  const pb = [...new Array(r - bShape.length).fill(1), ...bShape];
  const merged: { kind: number; a: number; b: number }[] = [];
  for (let d = 0; d < r; d++) {
    if (out[d] === 1) continue;
    const kind = (pa[d] === 1 ? 0 : 1) | (pb[d] === 1 ? 0 : 2);
    const last = merged[merged.length - 1];
    if (last && last.kind === kind) {
      last.a *= pa[d];
      last.b *= pb[d];
    } else merged.push({ kind, a: pa[d], b: pb[d] });
  }
  if (merged.length === 0) return { a: [1], b: [1] };
  return { a: merged.map((m) => m.a), b: merged.map((m) => m.b) };
}

/**
 * Shape and paddings of a pad with every unpadded axis merged into its outer
 * neighbour (the neighbour's padding scales by the merged size); same element order.
 */
export function mergePadAxes(shape: number[], paddings: [number, number][]): { shape: number[]; paddings: [number, number][] } {
  const outShape: number[] = [];
  const outPad: [number, number][] = [];
  shape.forEach((size, d) => {
    const [before, after] = paddings[d];
    const last = outShape.length - 1;
    if (before === 0 && after === 0 && last >= 0) {
      outShape[last] *= size;
      outPad[last] = [outPad[last][0] * size, outPad[last][1] * size];
    } else {
      outShape.push(size);
      outPad.push([before, after]);
    }
  });
  return { shape: outShape, paddings: outPad };
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

/** Replace kernel `name`'s function by `make(original)`, keeping its setup/dispose; once only. */
function wrapKernel(name: string, backendName: string, make: (inner: tf.KernelFunc) => (args: Args) => tf.TensorInfo): boolean {
  const original = tf.getKernel(name, backendName);
  if (!original || (original.kernelFunc as { rankSafe?: boolean }).rankSafe) return false;
  const kernelFunc = make(original.kernelFunc) as unknown as tf.KernelFunc & { rankSafe?: boolean };
  kernelFunc.rankSafe = true;
  tf.unregisterKernel(name, backendName);
  // Keep the original setup/dispose: its kernel function needs the wasm bindings they make.
  tf.registerKernel({ ...original, kernelFunc });
  return true;
}

/** Wrap the registered wasm binary kernels and PadV2 so rank > 6 works; idempotent. Returns the names wrapped. */
export function wrapWasmRankLimitedKernels(backendName = 'wasm'): string[] {
  const wrapped: string[] = [];
  const padded = wrapKernel('PadV2', backendName, (inner) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const attrs = args.attrs as unknown as { paddings: [number, number][]; constantValue: number };
    if (x.shape.length <= WASM_MAX_BINARY_RANK) return inner(args) as tf.TensorInfo;
    const m = mergePadAxes(x.shape, attrs.paddings);
    if (m.shape.length > WASM_MAX_BINARY_RANK) {
      throw new Error(`PadV2 (wasm): padding [${JSON.stringify(attrs.paddings)}] of shape [${x.shape}] needs ${m.shape.length} axes; the wasm backend supports at most ${WASM_MAX_BINARY_RANK}`);
    }
    const outShape = x.shape.map((s, d) => s + attrs.paddings[d][0] + attrs.paddings[d][1]);
    return compose(args.backend, backendName, (k) => {
      const out = k.runFunc('PadV2', inner, { x: k.reshape(x, m.shape) }, { ...attrs, paddings: m.paddings });
      return k.reshape(out, outShape);
    });
  });
  if (padded) wrapped.push('PadV2');
  for (const name of WASM_BINARY_KERNELS) {
    const done = wrapKernel(name, backendName, (inner) => (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      if (Math.max(a.shape.length, b.shape.length) <= WASM_MAX_BINARY_RANK) return inner(args) as tf.TensorInfo;
      const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const m = mergeBroadcastAxes(a.shape, b.shape);
      if (m.a.length > WASM_MAX_BINARY_RANK) {
        throw new Error(`${name} (wasm): shapes [${a.shape}] and [${b.shape}] need ${m.a.length} broadcast axes; the wasm backend supports at most ${WASM_MAX_BINARY_RANK}`);
      }
      return compose(args.backend, backendName, (k) => {
        const out = k.runFunc(name, inner, { a: k.reshape(a, m.a), b: k.reshape(b, m.b) }, args.attrs as Record<string, unknown>);
        return k.reshape(out, outShape);
      });
    });
    if (done) wrapped.push(name);
  }
  return wrapped;
}

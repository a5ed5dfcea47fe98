/**
 * Native-only fast paths for the 'tensorflow' (tfjs-node) backend. Stock tfjs builds some
 * hot gradients from many small element-wise kernels, and every kernel is a separate eager
 * TensorFlow call with its own output allocation; TensorFlow has single fused ops for them:
 *
 * - ReLU gradient: stock is dy * cast(step(x)) (3 kernels); here TF's `ReluGrad` (1).
 * - BatchNorm in training mode (tfjs-layers): stock is moments + batchNorm forward (~6
 *   kernels) and ~15 element-wise kernels backward per layer; here TF's `FusedBatchNormV3`
 *   (is_training) forward and `FusedBatchNormGradV3` backward.
 * - BatchNorm in inference mode, gradient w.r.t. x (every attack step): stock computes
 *   x - mean, dy * scale and a full-size tile eagerly; here one lazy broadcast multiply.
 * - Conv2D and Dense layers: stock tf.fused.conv2d / tf.fused.matMul compute the weight gradient
 *   even when only the input gradient is wanted (attacks); here plain kernels with lazy gradients.
 *
 * Every override checks at call time that the active backend is 'tensorflow' and that the
 * fast paths are enabled, and otherwise runs the stock code, so wasm/cpu are untouched.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchNormLayerInternals } from '../layers/internals.ts';
import type { NativeBackend, OpAttr } from './binding.ts';
import { oneDnnAvailable, oneDnnConv2DBias, oneDnnMaxPool, registerOneDnnKernels } from './onednn.ts';

/** Kernel names of the custom native kernels registered for the 'tensorflow' backend. */
export const RELU_GRAD_KERNEL = 'JpegdlNativeReluGrad';
export const BN_TRAIN_KERNEL = 'JpegdlNativeFusedBatchNormTrain';

const BACKEND = 'tensorflow';

let registered = false;
let enabled = true;
/** Registered for TensorFlow on CPU (tfjs-node), not the CUDA build. */
let onCpu = false;

/** True when the overrides are registered, enabled and the active backend is native TensorFlow. */
export function nativeFastPathsActive(): boolean {
  return registered && enabled && tf.getBackend() === BACKEND;
}

/**
 * True when the CPU-only fast paths apply as well: host-side updates of small tensors (reading a
 * tensor is a cheap copy on CPU, a device transfer on a GPU) and the oneDNN kernels.
 */
export function nativeCpuPathsActive(): boolean {
  return onCpu && nativeFastPathsActive();
}

/** Switch the fast paths on or off at run time (tests compare against the stock path); returns the previous state. */
export function setNativeFastPathsEnabled(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

/** Run `fn` with the fast paths switched to `on`, restoring the previous state afterwards. */
export function withNativeFastPaths<T>(on: boolean, fn: () => T): T {
  const prev = setNativeFastPathsEnabled(on);
  try {
    return fn();
  } finally {
    setNativeFastPathsEnabled(prev);
  }
}

function floatAttrs(b: NativeBackend['binding'], names: string[]): OpAttr[] {
  return names.map((name) => ({ name, type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }));
}

function bnAttrs(b: NativeBackend['binding'], epsilon: number, isTraining: boolean): OpAttr[] {
  return [
    ...floatAttrs(b, ['T', 'U']),
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.TF_ATTR_BOOL, value: isTraining },
  ];
}

function requireFloat4d(x: tf.Tensor, what: string): void {
  if (x.dtype !== 'float32' || x.rank !== 4) throw new Error(`${what}: expected a float32 rank-4 NHWC tensor, got ${x.dtype} rank ${x.rank}`);
}

/**
 * Training-mode batch norm on NHWC float32 `x` [N,H,W,C] with per-channel `scale`/`offset` [C]
 * through the native kernel. Returns [y, batch mean, biased batch variance]; differentiable in
 * x, scale and offset (gradient by FusedBatchNormGradV3). Native backend only.
 */
export function nativeBatchNormTrain(x: tf.Tensor4D, scale: tf.Tensor1D, offset: tf.Tensor1D, epsilon: number): [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D] {
  requireFloat4d(x, 'nativeBatchNormTrain x');
  const c = x.shape[3];
  if (scale.shape.length !== 1 || scale.shape[0] !== c || offset.shape.length !== 1 || offset.shape[0] !== c) {
    throw new Error(`nativeBatchNormTrain: scale and offset must have shape [${c}], got [${scale.shape}] and [${offset.shape}]`);
  }
  if (!(epsilon > 0)) throw new Error(`nativeBatchNormTrain: epsilon must be > 0, got ${epsilon}`);
  const outs = tf.engine().runKernel(BN_TRAIN_KERNEL, { x, scale, offset } as unknown as tf.NamedTensorMap, { epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  // outs[3] (reserve space 3) only feeds the gradient; the tape keeps its own reference.
  outs[3].dispose();
  return [outs[0] as tf.Tensor4D, outs[1] as tf.Tensor1D, outs[2] as tf.Tensor1D];
}

function registerKernels(): void {
  tf.registerKernel({
    kernelName: RELU_GRAD_KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend }) => {
      const b = backend as unknown as NativeBackend;
      const { dy, x } = inputs as { dy: tf.Tensor; x: tf.Tensor };
      // TF ReluGrad(gradients, features) = gradients * (features > 0), as tfjs' step(x) gives.
      return b.executeSingleOutput('ReluGrad', floatAttrs(b.binding, ['T']), [dy, x]) as unknown as tf.TensorInfo;
    },
  });
  tf.registerKernel({
    kernelName: BN_TRAIN_KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as NativeBackend;
      const { x, scale, offset } = inputs as { x: tf.Tensor; scale: tf.Tensor; offset: tf.Tensor };
      const empty = tf.tensor1d([], 'float32');
      // Outputs: y, batch_mean, batch_variance (Bessel-corrected), reserve_space_1 (mean),
      // reserve_space_2 (biased variance on CPU), reserve_space_3.
      const outs = b.executeMultipleOutputs('FusedBatchNormV3', bnAttrs(b.binding, (attrs as { epsilon: number }).epsilon, true), [x, scale, offset, empty, empty], 6);
      empty.dispose();
      outs[1].dispose();
      outs[2].dispose();
      return [outs[0], outs[3], outs[4], outs[5]] as unknown as tf.TensorInfo[];
    },
  });
}

function registerGradients(): void {
  tf.registerGradient({
    kernelName: BN_TRAIN_KERNEL,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, scale, mean, variance, reserve3] = saved;
      const b = tf.backend() as unknown as NativeBackend;
      // One native call gives all three gradients; unused ones are freed with the backward scope.
      const outs = b.executeMultipleOutputs('FusedBatchNormGradV3', bnAttrs(b.binding, (attrs as unknown as { epsilon: number }).epsilon, true), [dy, x, scale, mean, variance, reserve3], 5);
      outs[3].dispose();
      outs[4].dispose();
      const [dx, dscale, doffset] = outs;
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  });

  // Gradients are registered per kernel name for all backends: keep the stock function and
  // delegate to it whenever the fast path does not apply. Mutating the registry entry in place
  // avoids tfjs' "overriding gradient" warning and keeps one entry per kernel.
  const relu = tf.getGradient('Relu');
  if (!relu) throw new Error('native fast paths: tfjs has no gradient registered for Relu');
  const stockRelu = relu.gradFunc;
  relu.gradFunc = (dy, saved, attrs) => {
    if (!nativeFastPathsActive() || (dy as tf.Tensor).dtype !== 'float32') return stockRelu(dy, saved, attrs);
    const [x] = saved;
    return { x: () => tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: dy as tf.Tensor, x } as unknown as tf.NamedTensorMap) as tf.Tensor };
  };

  const bn = tf.getGradient('FusedBatchNorm');
  if (!bn) throw new Error('native fast paths: tfjs has no gradient registered for FusedBatchNorm');
  const stockBn = bn.gradFunc;
  bn.gradFunc = (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    if (!nativeFastPathsActive() || x.rank !== 4 || mean.rank !== 1 || variance.rank !== 1 || (scale != null && scale.rank !== 1)) {
      return stockBn(dy, saved, attrs);
    }
    // The stock function computes full-size x - mean and dy * scale before any derivative is
    // asked for; here every derivative is lazy, so an attack (d/dx only) pays for d/dx only.
    // Each lambda runs in its own tidy, so the stock map (with its eager intermediates) cannot be
    // shared between them: rebuild it per derivative (only the rare non-x derivatives pay).
    const lazyStock = (name: string) => () => stockBn(dy, saved, attrs)[name]();
    const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    return {
      // d/dx of (x - mean) * scale / sqrt(var + eps) + offset: a per-channel factor, broadcast.
      x: () =>
        tf.tidy(() => {
          const inv = tf.rsqrt(tf.add(variance, eps));
          return tf.mul(dy as tf.Tensor, scale != null ? tf.mul(inv, scale) : inv);
        }),
      mean: lazyStock('mean'),
      variance: lazyStock('variance'),
      scale: lazyStock('scale'),
      offset: lazyStock('offset'),
    };
  };
}

/** Read a LayerVariable's tensor (tfjs-layers' public read()). */
function readVar(v: tf.LayerVariable): tf.Tensor {
  return (v as unknown as { read(): tf.Tensor }).read();
}

/**
 * Route tfjs-layers BatchNormalization's training-mode call through the native kernel for
 * rank-4 inputs normalised over the last axis (what every model here uses); everything else
 * (inference, other axes/ranks, other backends) runs the stock call. The moving-average update
 * is tfjs-layers' own: v - (v - batchStat) * (1 - momentum), with the biased batch variance.
 */
function patchBatchNormalizationLayer(): void {
  const probe = tf.layers.batchNormalization({});
  const proto = Object.getPrototypeOf(probe) as { call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor };
  const stockCall = proto.call;
  proto.call = function (this: BatchNormLayerInternals, inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const training = kwargs?.['training'] === true;
    if (
      !training || !input || !nativeFastPathsActive() || input.rank !== 4 || input.dtype !== 'float32' ||
      !(this.axis === -1 || this.axis === 3) || !this.scale || !this.center || !this.gamma || !this.beta
    ) {
      return stockCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const [y, mean, variance] = nativeBatchNormTrain(input as tf.Tensor4D, readVar(this.gamma!) as tf.Tensor1D, readVar(this.beta!) as tf.Tensor1D, this.epsilon);
      const decay = 1 - this.momentum;
      const f = Math.fround;
      const d = f(decay);
      for (const [v, stat] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        if (!nativeCpuPathsActive()) {
          tf.tidy(() => {
            const orig = readVar(v);
            v.write(tf.sub(orig, tf.mul(tf.sub(orig, stat), decay)));
          });
          continue;
        }
        // The same orig - (orig - stat) * decay on the host: per channel these are tiny tensors,
        // where three eager TensorFlow ops cost far more dispatch than arithmetic. Each step is
        // rounded to float32 as the ops round it (decay too: tfjs makes it a float32 scalar), so
        // the result is bit-identical to tfjs-layers' update.
        const o = readVar(v).dataSync() as Float32Array;
        const st = stat.dataSync() as Float32Array;
        const next = new Float32Array(o.length);
        for (let k = 0; k < o.length; k++) next[k] = f(o[k] - f(f(o[k] - st[k]) * d));
        v.write(tf.tensor1d(next, 'float32'));
      }
      return y;
    });
  };
}

interface Conv2DLayerInternals {
  rank: number;
  dataFormat: string;
  padding: string;
  strides: number | number[];
  dilationRate: number | number[];
  activation: { getClassName(): string } | null;
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

/**
 * Route tfjs-layers Conv2D (linear or ReLU activation, NHWC) through the plain Conv2D kernel instead of
 * tf.fused.conv2d. The fused op's custom gradient computes the input AND filter gradients
 * eagerly, so an attack step (input gradient only) paid a Conv2DBackpropFilter per layer; the
 * plain kernel's registered gradient is lazy. Forward values are the same convolution.
 */
function patchConv2DLayer(): void {
  const probe = tf.layers.conv2d({ filters: 1, kernelSize: 1 });
  const proto = Object.getPrototypeOf(probe) as { call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor };
  const stockCall = proto.call;
  proto.call = function (this: Conv2DLayerInternals, inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    if (
      !input || !nativeFastPathsActive() || input.rank !== 4 || input.dtype !== 'float32' || this.rank !== 2 ||
      this.dataFormat !== 'channelsLast' || (this.padding !== 'same' && this.padding !== 'valid') ||
      (this.activation != null && !['linear', 'relu'].includes(this.activation.getClassName())) ||
      // tfjs' Conv2D gradient supports no dilation; leave dilated convs to the stock path.
      [this.dilationRate].flat().some((d) => d !== 1)
    ) {
      return stockCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const strides = [this.strides].flat() as number[];
      const s: [number, number] = [strides[0], strides[1] ?? strides[0]];
      const pad = this.padding as 'same' | 'valid';
      const z =
        this.bias && oneDnnAvailable.convBias
          ? oneDnnConv2DBias(input as tf.Tensor4D, readVar(this.kernel) as tf.Tensor4D, readVar(this.bias) as tf.Tensor1D, s, pad)
          : (() => {
              const y = tf.conv2d(input as tf.Tensor4D, readVar(this.kernel) as tf.Tensor4D, s, pad, 'NHWC');
              return this.bias ? tf.add(y, readVar(this.bias)) : y;
            })();
      // ReLU as its own kernel: its gradient is the native ReluGrad, and the conv's stays lazy.
      return this.activation?.getClassName() === 'relu' ? tf.relu(z) : z;
    });
  };
}

interface DenseLayerInternals {
  activation: { getClassName(): string } | null;
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

/**
 * Route tfjs-layers Dense on rank-2 input (linear or ReLU activation) through plain MatMul + Add
 * (+ Relu) instead of tf.fused.matMul, whose custom gradient computes the weight gradient even when
 * only the input gradient is wanted (every attack step); the plain kernels' gradients are lazy.
 */
function patchDenseLayer(): void {
  const probe = tf.layers.dense({ units: 1 });
  const proto = Object.getPrototypeOf(probe) as { call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor };
  const stockCall = proto.call;
  proto.call = function (this: DenseLayerInternals, inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const act = this.activation == null ? 'linear' : this.activation.getClassName();
    if (!input || !nativeFastPathsActive() || input.rank !== 2 || input.dtype !== 'float32' || (act !== 'linear' && act !== 'relu')) {
      return stockCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const y = tf.matMul(input as tf.Tensor2D, readVar(this.kernel) as tf.Tensor2D);
      const z = this.bias ? tf.add(y, readVar(this.bias)) : y;
      return act === 'relu' ? tf.relu(z) : z;
    });
  };
}

interface PoolingLayerInternals {
  poolingFunction(inputs: tf.Tensor, poolSize: [number, number], strides: [number, number], padding: string, dataFormat: string): tf.Tensor;
}

/**
 * Route tfjs-layers MaxPooling2D (NHWC) through oneDNN max pooling with a workspace, whose gradient
 * reads the stored argmax instead of recomputing the pooling (see onednn.ts).
 */
function patchMaxPooling2DLayer(): void {
  const probe = tf.layers.maxPooling2d({ poolSize: 2 });
  const proto = Object.getPrototypeOf(probe) as PoolingLayerInternals;
  const stock = proto.poolingFunction;
  proto.poolingFunction = function (this: PoolingLayerInternals, inputs, poolSize, strides, padding, dataFormat) {
    if (
      !nativeFastPathsActive() || !oneDnnAvailable.maxPool || inputs.rank !== 4 || inputs.dtype !== 'float32' ||
      dataFormat !== 'channelsLast' || (padding !== 'same' && padding !== 'valid')
    ) {
      return stock.call(this, inputs, poolSize, strides, padding, dataFormat);
    }
    return oneDnnMaxPool(inputs as tf.Tensor4D, poolSize, strides ?? poolSize, padding);
  };
}

/**
 * Register the native fast paths (idempotent). Call once after the 'tensorflow' backend is
 * initialised; harmless on other backends (the overrides check the backend at call time).
 * `cpu: false` (the CUDA build) leaves out the host-side updates and the oneDNN kernels.
 */
export function registerNativeFastPaths({ cpu = true }: { cpu?: boolean } = {}): void {
  if (registered) return;
  onCpu = cpu;
  if (process.env.JPEGDL_NATIVE_FAST_PATHS === '0') return;
  registerKernels();
  registerGradients();
  patchBatchNormalizationLayer();
  patchConv2DLayer();
  patchDenseLayer();
  patchMaxPooling2DLayer();
  if (cpu) registerOneDnnKernels();
  registered = true;
}

/**
 * oneDNN kernels of the native TensorFlow backend that TensorFlow's eager op rewrite does not pick:
 *
 * - Max pooling with a workspace (`_MklNativeMaxPool` + `_MklNativeMaxPoolGrad`): the backward pass
 *   reads the argmax the forward stored, instead of TensorFlow's CPU `MaxPoolGrad`, which recomputes
 *   the pooling (17 ms instead of 3.8 ms for a 64x32x32x32 input, 2x2 pool, 1 thread, here).
 * - Convolution with its bias in one kernel (`_MklNativeConv2DWithBias`): saves the separate
 *   broadcast add, which costs 15-20% of a small convolution (BN-folded convs always have a bias).
 *
 * They are TensorFlow-internal kernels (selected with the `_kernel` label attribute), so each is
 * probed once on a small input against the stock kernels and used only if it runs and agrees
 * exactly; otherwise the stock path stays. Results are bit-identical to the stock kernels in the
 * probes (same oneDNN primitives), and the tests compare values and gradients on random inputs.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeBackend, OpAttr } from './binding.ts';

const BACKEND = 'tensorflow';
export const ONEDNN_MAXPOOL_KERNEL = 'JpegdlOneDnnMaxPool';
export const ONEDNN_CONV_BIAS_KERNEL = 'JpegdlOneDnnConv2DBias';

type Padding = 'same' | 'valid';

/** Which oneDNN paths passed their probe (all false until `registerOneDnnKernels` ran on the native backend). */
export const oneDnnAvailable = { maxPool: false, convBias: false };

function nativeBackend(): NativeBackend {
  return tf.backend() as unknown as NativeBackend;
}

function poolAttrs(b: NativeBackend['binding'], size: [number, number], strides: [number, number], padding: Padding): OpAttr[] {
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'ksize', type: b.TF_ATTR_INT, value: [1, size[0], size[1], 1] },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, strides[0], strides[1], 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: padding.toUpperCase() },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'workspace_enabled', type: b.TF_ATTR_BOOL, value: true },
    // The label that selects TensorFlow's oneDNN kernel registration for this op name.
    { name: '_kernel', type: b.TF_ATTR_STRING, value: 'MklNameChangeOp' },
  ];
}

function convAttrs(b: NativeBackend['binding'], strides: [number, number], padding: Padding): OpAttr[] {
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, strides[0], strides[1], 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: padding.toUpperCase() },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, 1, 1, 1] },
    { name: '_kernel', type: b.TF_ATTR_STRING, value: 'MklNameChangeOp' },
  ];
}

interface PoolKernelAttrs {
  filterSize: [number, number];
  strides: [number, number];
  pad: Padding;
}
interface ConvKernelAttrs {
  strides: [number, number];
  pad: Padding;
}

function registerKernels(): void {
  tf.registerKernel({
    kernelName: ONEDNN_MAXPOOL_KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as NativeBackend;
      const a = attrs as unknown as PoolKernelAttrs;
      // Outputs: pooled values and the oneDNN workspace (argmax) the gradient reads.
      return b.executeMultipleOutputs('_MklNativeMaxPool', poolAttrs(b.binding, a.filterSize, a.strides, a.pad), [(inputs as { x: tf.Tensor }).x], 2) as unknown as tf.TensorInfo[];
    },
  });
  tf.registerGradient({
    kernelName: ONEDNN_MAXPOOL_KERNEL,
    inputsToSave: ['x'],
    outputsToSave: [true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, y, workspace] = saved;
      const a = attrs as unknown as PoolKernelAttrs;
      return {
        x: () => {
          const b = nativeBackend();
          return b.executeSingleOutput('_MklNativeMaxPoolGrad', poolAttrs(b.binding, a.filterSize, a.strides, a.pad), [x, y, dy, workspace]);
        },
      };
    },
  });
  tf.registerKernel({
    kernelName: ONEDNN_CONV_BIAS_KERNEL,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as NativeBackend;
      const a = attrs as unknown as ConvKernelAttrs;
      const { x, filter, bias } = inputs as { x: tf.Tensor; filter: tf.Tensor; bias: tf.Tensor };
      return b.executeSingleOutput('_MklNativeConv2DWithBias', convAttrs(b.binding, a.strides, a.pad), [x, filter, bias]) as unknown as tf.TensorInfo;
    },
  });
  tf.registerGradient({
    kernelName: ONEDNN_CONV_BIAS_KERNEL,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as ConvKernelAttrs;
      const g = dy as tf.Tensor4D;
      // Each derivative is lazy: an attack asks for d/dx only and pays for nothing else.
      return {
        x: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: g, filter }, { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        bias: () => tf.sum(g, [0, 1, 2]),
      };
    },
  });
}

/** Max pooling (NHWC float32, pixels' units unchanged) through oneDNN with a workspace; differentiable in x. */
export function oneDnnMaxPool(x: tf.Tensor4D, filterSize: [number, number], strides: [number, number], pad: Padding): tf.Tensor4D {
  const [y, workspace] = tf.engine().runKernel(ONEDNN_MAXPOOL_KERNEL, { x } as unknown as tf.NamedTensorMap, { filterSize, strides, pad } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  // The gradient keeps its own reference to the workspace.
  workspace.dispose();
  return y as tf.Tensor4D;
}

/** conv2d(x, filter) + bias in one oneDNN kernel (NHWC, no dilation); differentiable in x, filter and bias. */
export function oneDnnConv2DBias(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: [number, number], pad: Padding): tf.Tensor4D {
  return tf.engine().runKernel(ONEDNN_CONV_BIAS_KERNEL, { x, filter, bias } as unknown as tf.NamedTensorMap, { strides, pad } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

function agrees(run: () => [tf.Tensor, tf.Tensor]): boolean {
  try {
    return tf.tidy(() => {
      const [a, b] = run();
      return a.shape.join() === b.shape.join() && tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] <= 1e-5;
    });
  } catch {
    return false;
  }
}

/** Probe both paths on small seeded inputs (values and gradients against the stock kernels). */
function probe(): void {
  oneDnnAvailable.maxPool = agrees(() => {
    // Ties (ReLU zeros) included: both must send the gradient to the same element of each window.
    const x = tf.relu(tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 7)) as tf.Tensor4D;
    const stock = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'), tf.range(1, 28).reshape([1, 3, 3, 3]))))(x);
    const fast = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(oneDnnMaxPool(t as tf.Tensor4D, [2, 2], [2, 2], 'valid'), tf.range(1, 28).reshape([1, 3, 3, 3]))))(x);
    return [tf.concat([tf.maxPool(x, 2, 2, 'valid').flatten(), stock.flatten()]), tf.concat([oneDnnMaxPool(x, [2, 2], [2, 2], 'valid').flatten(), fast.flatten()])];
  });
  oneDnnAvailable.convBias = agrees(() => {
    const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 9) as tf.Tensor4D;
    const bias = tf.randomNormal([4], 0, 1, 'float32', 10) as tf.Tensor1D;
    return [tf.add(tf.conv2d(x, w, 1, 'same'), bias), oneDnnConv2DBias(x, w, bias, [1, 1], 'same')];
  });
}

let registered = false;

/** Register the kernels and probe them (idempotent); call with the native backend active. */
export function registerOneDnnKernels(): void {
  if (registered || tf.getBackend() !== BACKEND) return;
  registerKernels();
  registered = true;
  probe();
}

/**
 * Work around a wrong result of TensorFlow 2.21's oneDNN `Conv2DBackpropFilter` for 1x1 kernels with
 * stride > 1 (ResNet projection shortcuts): found by this project's property tests, where a run of
 * such calls returns filter gradients off by O(1) depending on earlier calls (primitive reuse); the
 * forward and input-gradient kernels and every other geometry agree with the reference. For a 1x1
 * kernel the filter gradient is a plain product: the strided input pixels (both 'same' and 'valid'
 * start at pixel 0 for k = 1) transposed, times dy. Registered for the native CPU backend whether or
 * not the fast paths are on, since it fixes the stock path too.
 */
export function registerOneDnnWorkarounds(): void {
  if (workaroundsRegistered || tf.getBackend() !== BACKEND) return;
  // Conv2D: dW[0,0,c,o] = sum over pixels of xs[c] * dy[o], a [pixels, C]^T x [pixels, O] product.
  wrapOneByOneStrided('Conv2DBackpropFilter', (xs, dy, [n, oh, ow, c], co) =>
    tf.reshape(tf.matMul(tf.reshape(xs, [n * oh * ow, c]), tf.reshape(dy, [n * oh * ow, co]), true, false), [1, 1, c, co]));
  // Depthwise (the same fault): dW[0,0,c,m] = sum over pixels of xs[c] * dy[c * mult + m].
  wrapOneByOneStrided('DepthwiseConv2dNativeBackpropFilter', (xs, dy, [n, oh, ow, c], co) => {
    const mult = co / c;
    return tf.reshape(tf.sum(tf.mul(tf.reshape(dy, [n, oh, ow, c, mult]), tf.reshape(xs, [n, oh, ow, c, 1])), [0, 1, 2]), [1, 1, c, mult]);
  });
  workaroundsRegistered = true;
}
let workaroundsRegistered = false;

/** Replace `kernelName` on the native backend by `oneByOne` for 1x1 filters with stride > 1 (NHWC, 'same'/'valid'); stock otherwise. */
function wrapOneByOneStrided(kernelName: string, oneByOne: (xs: tf.Tensor4D, dy: tf.Tensor4D, xsShape: [number, number, number, number], dyChannels: number) => tf.Tensor): void {
  const stock = tf.getKernel(kernelName, BACKEND);
  if (!stock) return;
  const stockFunc = stock.kernelFunc;
  tf.unregisterKernel(kernelName, BACKEND);
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = args.attrs as unknown as { strides: number | [number, number]; pad: unknown; dataFormat?: string; filterShape: number[]; dilations?: number | [number, number] };
      const [sh, sw] = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      const dil = a.dilations == null ? [1] : [a.dilations].flat();
      if (
        a.filterShape[0] !== 1 || a.filterShape[1] !== 1 || (sh === 1 && sw === 1) || dil.some((d) => d !== 1) ||
        (a.pad !== 'same' && a.pad !== 'valid') || (a.dataFormat ?? 'NHWC') !== 'NHWC' || x.dtype !== 'float32'
      ) {
        return stockFunc(args);
      }
      return tf.tidy(() => {
        const [n, , , c] = x.shape;
        const [, oh, ow, co] = dy.shape;
        // For a 1x1 kernel both 'same' and 'valid' read pixels 0, s, 2s, ... When the strides divide
        // the image, a reshape + contiguous slice picks them about 9x faster than TensorFlow's
        // StridedSlice (0.46 vs 4.2 ms on 64x32x32x16); same values.
        const [, h, w] = x.shape;
        const xs = (h === oh * sh && w === ow * sw
          ? tf.reshape(tf.slice(tf.reshape(x, [n, oh, sh, ow, sw * c]), [0, 0, 0, 0, 0], [n, oh, 1, ow, c]), [n, oh, ow, c])
          : tf.stridedSlice(x, [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c], [1, sh, sw, 1])) as tf.Tensor4D;
        return oneByOne(xs, dy, [n, oh, ow, c], co);
      }) as unknown as tf.TensorInfo;
    },
  });
}

/**
 * Convolution gradients the wasm backend lacks, composed from kernels it has
 * (Conv2D, DepthwiseConv2dNative, Transpose, Reshape, Slice, PadV2, Reverse, Sum).
 *
 * Filter gradient. With padding (pt, pl), strides (sh, sw) and dilations (dh, dw):
 *   dW[i,j,c,o] = sum_{n,y,x} X[n, i*dh + y*sh - pt, j*dw + x*sw - pl, c] * dY[n,y,x,o].
 * Read as a convolution over (i, j) it has stride dh (the forward dilation) and
 * dilation sh (the forward stride): the "image" is X with channels moved to the
 * batch axis and the batch moved to the channel axis (summed over, like channels
 * are), the "filter" is dY with its batch axis as the input-channel axis. The
 * forward padding becomes explicit padding; the far side gets just enough
 * padding for fh x fw outputs (rows the forward pass never read get weight 0).
 *
 * Input gradients: the adjoint of a convolution is a convolution of dY, with zeros
 * inserted between its pixels (the stride), with the spatially flipped filter (for
 * Conv2D also with its channel axes swapped) at the forward dilation; for depthwise,
 * then summed over the channel multiplier.
 */
import * as tf from '@tensorflow/tfjs';
import { compose, type KernelComposer } from './compose.ts';

type Pair = [number, number];
type ConvPad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** Geometry shared by the compositions, read from the forward convolution's attributes. */
interface Geometry {
  fh: number;
  fw: number;
  stride: Pair;
  dilation: Pair;
  /** Forward padding before the first row / column, in pixels. */
  padTop: number;
  padLeft: number;
}

function pair(v: number | number[] | undefined, fallback: number): Pair {
  if (v == null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function geometry(
  kernel: string,
  xShape: number[],
  filterShape: number[],
  dyShape: number[],
  attrs: { strides: number | number[]; dilations?: number | number[]; pad: ConvPad; dimRoundingMode?: Rounding },
  depthwise: boolean,
): Geometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number],
    pair(attrs.dilations, 1),
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
  const want = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dyShape.length !== 4 || want.some((d, i) => d !== dyShape[i])) {
    throw new Error(`${kernel} (wasm): dy has shape [${dyShape}], expected [${want}] for input [${xShape}] and filter [${filterShape}]`);
  }
  return {
    fh: info.filterHeight,
    fw: info.filterWidth,
    stride: [info.strideHeight, info.strideWidth],
    dilation: [info.dilationHeight, info.dilationWidth],
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * Explicit padding (before, after) so that a convolution with stride `g.dilation`,
 * dilation `g.stride` and kernel size = dy's size produces at least fh x fw outputs
 * over an input of size (h, w).
 */
function filterGradPadding(g: Geometry, h: number, w: number, oh: number, ow: number): [Pair, Pair] {
  const needH = (g.fh - 1) * g.dilation[0] + (oh - 1) * g.stride[0] + 1;
  const needW = (g.fw - 1) * g.dilation[1] + (ow - 1) * g.stride[1] + 1;
  return [
    [g.padTop, Math.max(0, needH - h - g.padTop)],
    [g.padLeft, Math.max(0, needW - w - g.padLeft)],
  ];
}

/** dW for a regular convolution; x and dy are NHWC. Returns [fh, fw, inC, outC]. */
function conv2dFilterGrad(k: KernelComposer, x: tf.TensorInfo, dy: tf.TensorInfo, g: Geometry): tf.TensorInfo {
  const [, h, w, inC] = x.shape;
  const [, oh, ow, outC] = dy.shape;
  const [ph, pw] = filterGradPadding(g, h, w, oh, ow);
  const xT = k.transpose(x, [3, 1, 2, 0]); // [inC, H, W, N]
  const dyT = k.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, outC]
  const conv = k.run('Conv2D', { x: xT, filter: dyT }, {
    strides: g.dilation,
    dilations: g.stride,
    pad: [[0, 0], ph, pw, [0, 0]],
    dataFormat: 'NHWC',
  }); // [inC, >=fh, >=fw, outC]
  const cut = k.slice(conv, [0, 0, 0, 0], [inC, g.fh, g.fw, outC]);
  return k.transpose(cut, [1, 2, 0, 3]);
}

/** dW for a depthwise convolution with channel multiplier m. Returns [fh, fw, inC, m]. */
function depthwiseFilterGrad(k: KernelComposer, x: tf.TensorInfo, dy: tf.TensorInfo, g: Geometry, m: number): tf.TensorInfo {
  const [n, h, w, inC] = x.shape;
  const [, oh, ow] = dy.shape;
  const [ph, pw] = filterGradPadding(g, h, w, oh, ow);
  // Batch and channels side by side in the channel axis: channel n*inC + c.
  const xT = k.reshape(k.transpose(x, [1, 2, 0, 3]), [1, h, w, n * inC]);
  // dY's channel c*m + q becomes input channel n*inC + c, multiplier q.
  const dyT = k.reshape(k.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * inC, m]);
  const conv = k.run('DepthwiseConv2dNative', { x: xT, filter: dyT }, {
    strides: g.dilation,
    dilations: g.stride,
    pad: [[0, 0], ph, pw, [0, 0]],
  }); // [1, >=fh, >=fw, n*inC*m]
  const cut = k.slice(conv, [0, 0, 0, 0], [1, g.fh, g.fw, n * inC * m]);
  const perImage = k.reshape(cut, [g.fh * g.fw, n, inC * m]);
  const summed = k.run('Sum', { x: perImage }, { axis: [1], keepDims: false });
  return k.reshape(summed, [g.fh, g.fw, inC, m]);
}

/**
 * The adjoint of a convolution applied to dY: insert stride-1 zeros between dY's
 * pixels, then correlate with the spatially flipped filter `flipped` (prepared by the
 * caller for `conv`) at the forward dilation. Output [N, H, W, channels of conv].
 */
function transposedConv(
  k: KernelComposer, dy: tf.TensorInfo, inputShape: number[], g: Geometry,
  conv: 'Conv2D' | 'DepthwiseConv2dNative', flipped: tf.TensorInfo, outChannels: number,
): tf.TensorInfo {
  const [n, h, w] = inputShape;
  const [, oh, ow, ch] = dy.shape;
  const [sh, sw] = g.stride;
  const [dh, dw] = g.dilation;
  // Insert stride-1 zeros after every pixel of dY: [N, OH*sh, OW*sw, ch].
  let up = dy;
  if (sh > 1 || sw > 1) {
    const r = k.reshape(dy, [n * oh, 1, ow, 1, ch]);
    const p = k.run('PadV2', { x: r }, { paddings: [[0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
    up = k.reshape(p, [n, oh * sh, ow * sw, ch]);
  }
  // dX[h] = sum_i up[h + pt - i*dh] W[i]: a correlation with the flipped filter, padded
  // before by (fh-1)*dh - pt and after by whatever makes H outputs. Negative padding
  // means rows dY never reached: crop them instead.
  const before = [(g.fh - 1) * dh - g.padTop, (g.fw - 1) * dw - g.padLeft];
  const upH = up.shape[1];
  const upW = up.shape[2];
  const after = [h - upH + g.padTop, w - upW + g.padLeft];
  const cropTop = Math.max(0, -before[0]);
  const cropLeft = Math.max(0, -before[1]);
  const keepH = upH - cropTop - Math.max(0, -after[0]);
  const keepW = upW - cropLeft - Math.max(0, -after[1]);
  if (keepH <= 0 || keepW <= 0) {
    // No output pixel of the forward pass depends on any input pixel: dX = 0.
    return k.run('Fill', {}, { shape: [n, h, w, outChannels], value: 0, dtype: 'float32' });
  }
  const src = k.slice(up, [0, cropTop, cropLeft, 0], [n, keepH, keepW, ch]);
  return k.run(conv, { x: src, filter: flipped }, {
    strides: [1, 1],
    dilations: [dh, dw],
    pad: [[0, 0], [Math.max(0, before[0]), Math.max(0, after[0])], [Math.max(0, before[1]), Math.max(0, after[1])], [0, 0]],
    dataFormat: 'NHWC',
  });
}

/** dX for a depthwise convolution; dy is [N, OH, OW, inC*m], filter [fh, fw, inC, m]. */
function depthwiseInputGrad(k: KernelComposer, dy: tf.TensorInfo, filter: tf.TensorInfo, inputShape: number[], g: Geometry): tf.TensorInfo {
  const [n, h, w, inC] = inputShape;
  const m = dy.shape[3] / inC;
  // Channel c*m + q of dY meets filter tap [.., c, q]; multiplier 1, then sum over q.
  const flipped = k.reshape(k.run('Reverse', { x: filter }, { dims: [0, 1] }), [g.fh, g.fw, inC * m, 1]);
  const conv = transposedConv(k, dy, inputShape, g, 'DepthwiseConv2dNative', flipped, inC * m);
  if (m === 1) return conv;
  return k.run('Sum', { x: k.reshape(conv, [n, h, w, inC, m]) }, { axis: [4], keepDims: false });
}

/** dX for a regular convolution; dy is [N, OH, OW, outC], filter [fh, fw, inC, outC]. */
function conv2dInputGrad(k: KernelComposer, dy: tf.TensorInfo, filter: tf.TensorInfo, inputShape: number[], g: Geometry): tf.TensorInfo {
  // Flip spatially and swap the channel axes: [fh, fw, outC, inC].
  const flipped = k.transpose(k.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
  return transposedConv(k, dy, inputShape, g, 'Conv2D', flipped, inputShape[3]);
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/** Conv2DBackpropFilter for `backendName` (NHWC or NCHW; tfjs passes no dilations here). */
export function conv2DBackpropFilterKernel(backendName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as { strides: number | number[]; pad: ConvPad; dataFormat?: 'NHWC' | 'NCHW'; dimRoundingMode?: Rounding; filterShape: number[] };
    return compose(backend, backendName, (k) => {
      const nchw = a.dataFormat === 'NCHW';
      const xs = nchw ? k.transpose(x, [0, 2, 3, 1]) : x;
      const dys = nchw ? k.transpose(dy, [0, 2, 3, 1]) : dy;
      // Explicit NCHW padding lists (batch, channel, height, width): reorder to NHWC.
      const pad = nchw && Array.isArray(a.pad) ? [[0, 0], a.pad[2], a.pad[3], [0, 0]] as tf.backend_util.ExplicitPadding : a.pad;
      const g = geometry('Conv2DBackpropFilter', xs.shape, a.filterShape, dys.shape, { ...a, pad, dilations: 1 }, false);
      return conv2dFilterGrad(k, xs, dys, g);
    });
  };
}

/** DepthwiseConv2dNativeBackpropFilter for `backendName` (NHWC). */
export function depthwiseBackpropFilterKernel(backendName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as { strides: number | number[]; dilations?: number | number[]; pad: ConvPad; dimRoundingMode?: Rounding; filterShape: number[] };
    return compose(backend, backendName, (k) => {
      const g = geometry('DepthwiseConv2dNativeBackpropFilter', x.shape, a.filterShape, dy.shape, a, true);
      return depthwiseFilterGrad(k, x, dy, g, a.filterShape[3]);
    });
  };
}

/** DepthwiseConv2dNativeBackpropInput for `backendName` (NHWC). */
export function depthwiseBackpropInputKernel(backendName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as unknown as { strides: number | number[]; dilations?: number | number[]; pad: ConvPad; dimRoundingMode?: Rounding; inputShape: number[] };
    return compose(backend, backendName, (k) => {
      const g = geometry('DepthwiseConv2dNativeBackpropInput', a.inputShape, filter.shape, dy.shape, a, true);
      return depthwiseInputGrad(k, dy, filter, a.inputShape, g);
    });
  };
}

/**
 * Conv2DBackpropInput for `backendName` (NHWC or NCHW) as a transposed convolution
 * run by the backend's Conv2D. Replaces wasm's own kernel, a plain loop about 10x
 * slower than its XNNPACK Conv2D (the largest cost of a wasm training step).
 */
export function conv2DBackpropInputKernel(backendName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = attrs as unknown as { strides: number | number[]; pad: ConvPad; dataFormat?: 'NHWC' | 'NCHW'; dimRoundingMode?: Rounding; inputShape: number[] };
    return compose(backend, backendName, (k) => {
      const nchw = a.dataFormat === 'NCHW';
      const dys = nchw ? k.transpose(dy, [0, 2, 3, 1]) : dy;
      const shape = nchw ? [a.inputShape[0], a.inputShape[2], a.inputShape[3], a.inputShape[1]] : a.inputShape;
      const pad = nchw && Array.isArray(a.pad) ? [[0, 0], a.pad[2], a.pad[3], [0, 0]] as tf.backend_util.ExplicitPadding : a.pad;
      const g = geometry('Conv2DBackpropInput', shape, filter.shape, dys.shape, { ...a, pad, dilations: 1 }, false);
      const dx = conv2dInputGrad(k, dys, filter, shape, g);
      return nchw ? k.transpose(dx, [0, 3, 1, 2]) : dx;
    });
  };
}

/**
 * Building blocks shared by every architecture file: a layer factory that names layers, hands out
 * deterministic per-layer seeds, and reproduces PyTorch padding / pooling / initialisation rules
 * in NHWC tfjs layers.
 */
import * as tf from '@tensorflow/tfjs';

type Initializer = ReturnType<typeof tf.initializers.zeros>;
import { ChannelShuffle, ChannelSlice } from '../src/layers/channel-ops.ts';

export type SymbolicTensor = tf.SymbolicTensor;

/** Weight initialiser description; each family picks the one its reference code uses. */
export type Init =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

/** How a family initialises its weights (mirrors the reference implementation's init code). */
export interface InitScheme {
  /** Conv kernel initialiser from (kernel height, kernel width, in channels per group, out channels). */
  conv(kh: number, kw: number, inPerGroup: number, outChannels: number, depthwise: boolean): Init;
  /** Conv bias initialiser (only used by convs with bias). */
  convBias(kh: number, kw: number, inPerGroup: number): Init;
  /** Dense weight initialiser from (fan in, units). */
  dense(fanIn: number, units: number): Init;
  /** Dense bias initialiser from fan in. */
  denseBias(fanIn: number): Init;
}

/**
 * PyTorch's default Conv/Linear init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for weights
 * and U(+-1/sqrt(fan_in)) for biases, fan_in = in_channels/groups * kh * kw.
 */
export const TORCH_DEFAULT_INIT: InitScheme = {
  conv: (kh, kw, inPerGroup) => ({ kind: 'uniform', bound: 1 / Math.sqrt(kh * kw * inPerGroup) }),
  convBias: (kh, kw, inPerGroup) => ({ kind: 'uniform', bound: 1 / Math.sqrt(kh * kw * inPerGroup) }),
  dense: (fanIn) => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }),
  denseBias: (fanIn) => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }),
};

/** kaiming_normal(mode='fan_out', relu) convs (fan_out = out_channels*kh*kw, as torch counts it even for depthwise), torch-default Linear. */
export const KAIMING_FAN_OUT_INIT: InitScheme = {
  ...TORCH_DEFAULT_INIT,
  conv: (kh, kw, _in, out) => ({ kind: 'normal', std: Math.sqrt(2 / (kh * kw * out)) }),
};

/** Convs N(0, sqrt(2/(kh*kw*out))) with zero bias, Linear N(0, 0.01) with zero bias (CRD VGG / MobileNetV2). */
export const CRD_NORMAL_INIT: InitScheme = {
  conv: (kh, kw, _in, out) => ({ kind: 'normal', std: Math.sqrt(2 / (kh * kw * out)) }),
  convBias: () => ({ kind: 'zeros' }),
  dense: () => ({ kind: 'normal', std: 0.01 }),
  denseBias: () => ({ kind: 'zeros' }),
};

/** Deterministic seed stream: layer i of a model built with seed s always gets the same seed. */
export class SeedStream {
  private i = 0;
  constructor(private readonly base: number) {}
  /** Next per-weight seed (a non-negative integer). */
  next(): number {
    this.i += 1;
    // Mix base and index so that neighbouring base seeds do not share streams shifted by one.
    // Never 0: tfjs' normal initialisers treat seed 0 as "unseeded".
    return ((Math.imul(this.base ^ 0x5bd1e995, 0x01000193) + Math.imul(this.i, 0x9e3779b1)) >>> 0) || 1;
  }
}

function makeInitializer(init: Init, seed: number): Initializer {
  switch (init.kind) {
    case 'normal':
      return tf.initializers.randomNormal({ mean: 0, stddev: init.std, seed });
    case 'uniform':
      return tf.initializers.randomUniform({ minval: -init.bound, maxval: init.bound, seed });
    case 'zeros':
      return tf.initializers.zeros();
    case 'ones':
      return tf.initializers.ones();
  }
}

/** Channels (last axis) of a symbolic NHWC tensor. */
export function channelsOf(x: SymbolicTensor): number {
  const c = x.shape[x.shape.length - 1];
  if (c === null) throw new Error('internal: channel count unknown');
  return c;
}

/** Height and width of a symbolic NHWC tensor. */
export function spatialOf(x: SymbolicTensor): [number, number] {
  const [, h, w] = x.shape;
  if (h === null || w === null) throw new Error('internal: spatial size unknown');
  return [h, w];
}

/** PyTorch output size of a k/s/p window over n pixels (floor or ceil mode). */
export function torchOutSize(n: number, k: number, s: number, p: number, ceil = false): number {
  const span = n + 2 * p - k;
  if (span < 0) return 0;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // torch drops a last ceil-mode window that would start in the right padding.
  if (ceil && (out - 1) * s >= n + p) out -= 1;
  return out;
}

export interface ConvOpts {
  filters: number;
  kernel: number;
  stride?: number;
  /** Symmetric zero padding as in torch's Conv2d(padding=...); default (kernel-1)/2. */
  pad?: number;
  bias?: boolean;
  /** Channel groups (torch `groups`); implemented as channel slices + one conv per group + concat. */
  groups?: number;
  /** Kernel initialiser overriding the family scheme (e.g. SqueezeNet's classifier conv). */
  kernelInit?: Init;
}

/** Creates named tfjs layers with PyTorch semantics and seeded initialisers. */
export class LayerFactory {
  private readonly seeds: SeedStream;
  /** Layers with weights, in creation order (= the reference module order; used to check against it). */
  readonly weighted: tf.layers.Layer[] = [];
  constructor(seed: number, readonly init: InitScheme) {
    this.seeds = new SeedStream(seed);
  }

  private initializer(init: Init): Initializer {
    // Consume one seed per weight even for constant inits so that seeds do not depend on init kinds.
    return makeInitializer(init, this.seeds.next());
  }

  /** Symmetric zero padding of p pixels (skipped when p = 0). */
  pad(x: SymbolicTensor, p: number | [[number, number], [number, number]], name: string): SymbolicTensor {
    const padding: [[number, number], [number, number]] = typeof p === 'number' ? [[p, p], [p, p]] : p;
    if (padding.flat().every((v) => v === 0)) return x;
    return tf.layers.zeroPadding2d({ padding, name }).apply(x) as SymbolicTensor;
  }

  /** Conv2d with torch padding semantics (symmetric), optional bias and groups. */
  conv(x: SymbolicTensor, o: ConvOpts, name: string): SymbolicTensor {
    const { filters, kernel, stride = 1, bias = false, groups = 1, kernelInit } = o;
    const pad = o.pad ?? (kernel - 1) / 2;
    const cin = channelsOf(x);
    if (groups > 1) {
      if (cin % groups !== 0 || filters % groups !== 0) throw new Error(`internal: ${name}: ${cin}->${filters} channels not divisible by ${groups} groups`);
      const ci = cin / groups;
      const co = filters / groups;
      const parts: SymbolicTensor[] = [];
      for (let g = 0; g < groups; g++) {
        const part = new ChannelSlice({ start: g * ci, size: ci, name: `${name}_g${g}_in` }).apply(x) as SymbolicTensor;
        parts.push(this.conv(part, { filters: co, kernel, stride, pad, bias, kernelInit }, `${name}_g${g}`));
      }
      return tf.layers.concatenate({ axis: -1, name }).apply(parts) as SymbolicTensor;
    }
    // Stride-1 odd kernels with pad (k-1)/2 are 'same' in both frameworks; otherwise pad explicitly,
    // because TF's 'same' pads bottom/right only and would shift every strided window by one pixel.
    const same = stride === 1 && 2 * pad === kernel - 1;
    const input = same ? x : this.pad(x, pad, `${name}_pad`);
    return this.track(tf.layers
      .conv2d({
        filters,
        kernelSize: kernel,
        strides: stride,
        padding: same ? 'same' : 'valid',
        useBias: bias,
        kernelInitializer: this.initializer(kernelInit ?? this.init.conv(kernel, kernel, cin, filters, false)),
        biasInitializer: bias ? this.initializer(this.init.convBias(kernel, kernel, cin)) : undefined,
        name,
      }))
      .apply(input) as SymbolicTensor;
  }

  private track<L extends tf.layers.Layer>(layer: L): L {
    this.weighted.push(layer);
    return layer;
  }

  /** Depthwise 3x3-style conv (torch groups = channels, multiplier 1), no bias. */
  depthwise(x: SymbolicTensor, o: { kernel: number; stride?: number; pad?: number }, name: string): SymbolicTensor {
    const { kernel, stride = 1 } = o;
    const pad = o.pad ?? (kernel - 1) / 2;
    const c = channelsOf(x);
    const same = stride === 1 && 2 * pad === kernel - 1;
    const input = same ? x : this.pad(x, pad, `${name}_pad`);
    return this.track(tf.layers
      .depthwiseConv2d({
        kernelSize: kernel,
        strides: stride,
        depthMultiplier: 1,
        padding: same ? 'same' : 'valid',
        useBias: false,
        depthwiseInitializer: this.initializer(this.init.conv(kernel, kernel, 1, c, true)),
        name,
      }))
      .apply(input) as SymbolicTensor;
  }

  /** BatchNorm with PyTorch defaults (momentum 0.1 = tf 0.9, eps 1e-5, gamma 1, beta 0). */
  bn(x: SymbolicTensor, name: string): SymbolicTensor {
    return this.track(tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name })).apply(x) as SymbolicTensor;
  }

  relu(x: SymbolicTensor, name: string): SymbolicTensor {
    return tf.layers.reLU({ name }).apply(x) as SymbolicTensor;
  }

  add(xs: SymbolicTensor[], name: string): SymbolicTensor {
    return tf.layers.add({ name }).apply(xs) as SymbolicTensor;
  }

  concat(xs: SymbolicTensor[], name: string): SymbolicTensor {
    return tf.layers.concatenate({ axis: -1, name }).apply(xs) as SymbolicTensor;
  }

  /**
   * Max pooling with torch semantics (symmetric padding p, optional ceil mode). Zero padding stands
   * in for torch's -inf padding, which is exact because every pooled input here follows a ReLU (>= 0).
   */
  maxPool(x: SymbolicTensor, o: { size: number; stride: number; pad?: number; ceil?: boolean }, name: string): SymbolicTensor {
    const { size, stride, pad = 0, ceil = false } = o;
    const [h, w] = spatialOf(x);
    const extra = (n: number) => {
      if (!ceil) return 0;
      const out = torchOutSize(n, size, stride, pad, true);
      return Math.max(0, (out - 1) * stride + size - (n + 2 * pad));
    };
    const padded = this.pad(x, [[pad, pad + extra(h)], [pad, pad + extra(w)]], `${name}_pad`);
    return tf.layers.maxPooling2d({ poolSize: size, strides: stride, padding: 'valid', name }).apply(padded) as SymbolicTensor;
  }

  /** Average pooling with torch semantics: symmetric zero padding counted in the mean (count_include_pad=True). */
  avgPool(x: SymbolicTensor, o: { size: number; stride: number; pad?: number }, name: string): SymbolicTensor {
    const padded = this.pad(x, o.pad ?? 0, `${name}_pad`);
    return tf.layers.averagePooling2d({ poolSize: o.size, strides: o.stride, padding: 'valid', name }).apply(padded) as SymbolicTensor;
  }

  /** Global average pooling to [N, C] (torch AdaptiveAvgPool2d(1) + flatten). */
  gap(x: SymbolicTensor, name: string): SymbolicTensor {
    return tf.layers.globalAveragePooling2d({ name }).apply(x) as SymbolicTensor;
  }

  /** Fully connected layer producing logits or features (no activation). */
  dense(x: SymbolicTensor, units: number, name: string, bias = true): SymbolicTensor {
    const fanIn = x.shape[x.shape.length - 1] as number;
    return this.track(tf.layers
      .dense({
        units,
        useBias: bias,
        kernelInitializer: this.initializer(this.init.dense(fanIn, units)),
        biasInitializer: bias ? this.initializer(this.init.denseBias(fanIn)) : undefined,
        name,
      }))
      .apply(x) as SymbolicTensor;
  }

  /** Channels [start, start+size). */
  slice(x: SymbolicTensor, start: number, size: number, name: string): SymbolicTensor {
    return new ChannelSlice({ start, size, name }).apply(x) as SymbolicTensor;
  }

  /** ShuffleNet channel shuffle. */
  shuffle(x: SymbolicTensor, groups: number, name: string): SymbolicTensor {
    return new ChannelShuffle({ groups, name }).apply(x) as SymbolicTensor;
  }

  flatten(x: SymbolicTensor, name: string): SymbolicTensor {
    return tf.layers.flatten({ name }).apply(x) as SymbolicTensor;
  }

  dropout(x: SymbolicTensor, rate: number, name: string): SymbolicTensor {
    return tf.layers.dropout({ rate, seed: this.seeds.next(), name }).apply(x) as SymbolicTensor;
  }
}

/** One architecture as the registry sees it. */
export interface ArchitectureSpec {
  name: string;
  family: string;
  paperSet: 'cifar100' | 'fine-grained' | 'imagenet' | 'small';
  description: string;
  /** Where the layer layout comes from (reference implementation). */
  reference: string;
  /** Input shape the paper uses [h, w, c]. */
  defaultInputShape: [number, number, number];
  /** Smallest height/width for which no feature map collapses to 0 pixels. */
  minInputSize: number;
  /** Initialisation scheme of the reference code. */
  init: InitScheme;
  /** Backbone from the normalised input to the logits. */
  build(x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor;
}

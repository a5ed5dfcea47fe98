/**
 * Inference-time BatchNorm folding. In inference mode a BatchNormalization that directly follows a
 * convolution is a per-channel affine map, so it can be folded into the convolution's kernel and bias
 * (W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)), and a ReLU that directly
 * follows can run as the convolution's activation. The folded model computes the same function (up to
 * float32 rounding) with 2-3 fewer kernels per conv block forward and backward; attacks call it many
 * times per image, so they use it (see `inferenceModel`). Training never does: BN then uses batch
 * statistics. The folded model shares every other layer object (and so its weights, and run-time
 * switches such as JpegLayer.mode) with the original.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchNormLayerInternals } from '../layers/internals.ts';

type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;

/** The parts of a tfjs-layers Node used here (tfjs does not export the class's type). */
interface GraphNode {
  outboundLayer: Layer;
  inputTensors: SymbolicTensor[];
  outputTensors: SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}

interface ConvInternals {
  filters?: number;
  kernelSize: number[];
  strides: number[];
  padding: 'same' | 'valid';
  dataFormat: string;
  dilationRate: number | number[];
  depthMultiplier?: number;
  activation: { getClassName(): string } | null;
  useBias: boolean;
  kernel?: tf.LayerVariable;
  depthwiseKernel?: tf.LayerVariable;
  bias: tf.LayerVariable | null;
}

/** What a fold did: how many conv + BN pairs were merged and how many ReLUs became conv activations. */
export interface FoldSummary {
  foldedBatchNorms: number;
  fusedRelus: number;
}

/** A folded model with the layers it created (the only ones it owns: dispose them, not the shared ones). */
export interface FoldedModel {
  model: tf.LayersModel;
  ownLayers: Layer[];
  summary: FoldSummary;
}

function nodesOf(model: tf.LayersModel): GraphNode[] {
  const keys = (model as unknown as { containerNodes: Set<string> }).containerNodes;
  const nodes: GraphNode[] = [];
  for (const layer of model.layers) {
    const inbound = (layer as unknown as { inboundNodes: GraphNode[] }).inboundNodes;
    inbound.forEach((node, i) => {
      if (keys.has(`${layer.name}_ib-${i}`)) nodes.push(node);
    });
  }
  return nodes;
}

function readVar(v: tf.LayerVariable): Float32Array {
  return v.read().dataSync() as Float32Array;
}

function isFoldableConv(layer: Layer): boolean {
  const cls = layer.getClassName();
  if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') return false;
  const c = layer as unknown as ConvInternals;
  return c.dataFormat === 'channelsLast' && (c.activation == null || c.activation.getClassName() === 'linear');
}

function isFoldableBatchNorm(layer: Layer): boolean {
  if (layer.getClassName() !== 'BatchNormalization') return false;
  const bn = layer as unknown as BatchNormLayerInternals;
  const axis = Array.isArray(bn.axis) ? (bn.axis.length === 1 ? bn.axis[0] : NaN) : bn.axis;
  return axis === -1 || axis === 3;
}

function isPlainRelu(layer: Layer): boolean {
  const cls = layer.getClassName();
  if (cls === 'ReLU') return (layer as unknown as { maxValue?: number | null }).maxValue == null;
  if (cls === 'Activation') return (layer.getConfig() as { activation?: string }).activation === 'relu';
  return false;
}

/** Folded kernel and bias (float64 arithmetic, stored float32) for a conv followed by BN. */
function foldedWeights(conv: ConvInternals, bn: BatchNormLayerInternals): { kernel: tf.Tensor; bias: tf.Tensor1D } {
  const kernelVar = (conv.kernel ?? conv.depthwiseKernel)!;
  const w = readVar(kernelVar);
  const mean = readVar(bn.movingMean);
  const variance = readVar(bn.movingVariance);
  const out = mean.length;
  const gamma = bn.scale && bn.gamma ? readVar(bn.gamma) : null;
  const beta = bn.center && bn.beta ? readVar(bn.beta) : null;
  const b = conv.useBias && conv.bias ? readVar(conv.bias) : null;
  const s = new Float64Array(out);
  const bias = new Float32Array(out);
  for (let c = 0; c < out; c++) {
    s[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + bn.epsilon);
    bias[c] = ((b ? b[c] : 0) - mean[c]) * s[c] + (beta ? beta[c] : 0);
  }
  // Conv2D kernels are [kh, kw, in, out] and depthwise kernels [kh, kw, C, mult]: either way the
  // output channel of a flat index is index % out (depthwise output channel = c * mult + m).
  if (w.length % out !== 0) throw new Error(`foldBatchNorm: kernel of ${w.length} values does not match ${out} BN channels`);
  const kernel = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) kernel[i] = w[i] * s[i % out];
  return { kernel: tf.tensor(kernel, kernelVar.shape as number[]), bias: tf.tensor1d(bias) };
}

function makeFoldedConv(conv: Layer, relu: boolean): Layer {
  const c = conv as unknown as ConvInternals;
  const common = {
    kernelSize: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    dataFormat: 'channelsLast' as const,
    dilationRate: c.dilationRate as number | [number, number],
    useBias: true,
    activation: relu ? ('relu' as const) : ('linear' as const),
    trainable: false,
    // Overwritten by the folded weights; zeros keeps random kernels out of any enclosing tape.
    kernelInitializer: 'zeros' as const,
    depthwiseInitializer: 'zeros' as const,
    biasInitializer: 'zeros' as const,
    name: `${conv.name}_bnfold`,
  };
  return conv.getClassName() === 'DepthwiseConv2D'
    ? tf.layers.depthwiseConv2d({ ...common, kernelSize: c.kernelSize as [number, number], depthMultiplier: c.depthMultiplier ?? 1 })
    : tf.layers.conv2d({ ...common, depthwiseInitializer: undefined, filters: c.filters! } as Parameters<typeof tf.layers.conv2d>[0]);
}

/**
 * Fold every inference-mode BatchNormalization that is the only consumer of a (depthwise) conv's
 * output into that conv, and a plain ReLU that is the only consumer of the BN output into the conv's
 * activation, in nested models too (each folded by its own walk). Returns null when the model has
 * nothing to fold, so callers keep the original. Weights are read now: refold after they change.
 */
export function foldBatchNorm(model: tf.LayersModel): FoldedModel | null {
  const nodes = nodesOf(model);
  const outputIds = new Set(model.outputs.map((t) => t.id));
  const consumers = new Map<number, GraphNode[]>();
  // Nested models (a classifier inside an input-defence wrapper) are folded by their own walk and
  // applied in their place; their BN layers are never the sole consumer of an outer conv.
  const nested = new Map<Layer, FoldedModel | null>();
  try {
    for (const node of nodes) {
      if (node.outboundLayer.getClassName() === 'InputLayer') continue;
      if (node.outboundLayer instanceof tf.LayersModel && !nested.has(node.outboundLayer)) nested.set(node.outboundLayer, foldBatchNorm(node.outboundLayer));
      for (const t of node.inputTensors) consumers.set(t.id, [...(consumers.get(t.id) ?? []), node]);
    }
  } catch (err) {
    for (const f of nested.values()) for (const l of f?.ownLayers ?? []) if (l.built) l.dispose();
    throw err;
  }
  const soleConsumer = (t: SymbolicTensor): GraphNode | undefined => {
    const list = consumers.get(t.id);
    return list && list.length === 1 && !outputIds.has(t.id) ? list[0] : undefined;
  };

  // Plan: conv node -> [bn node, relu node?]; nodes absorbed into a fold are skipped in the replay.
  const plan = new Map<GraphNode, { bn: GraphNode; relu?: GraphNode }>();
  const absorbed = new Set<GraphNode>();
  for (const node of nodes) {
    if (!isFoldableConv(node.outboundLayer) || node.inputTensors.length !== 1 || node.outputTensors.length !== 1) continue;
    const bn = soleConsumer(node.outputTensors[0]);
    if (!bn || !isFoldableBatchNorm(bn.outboundLayer) || bn.inputTensors.length !== 1) continue;
    const next = soleConsumer(bn.outputTensors[0]);
    const relu = next && isPlainRelu(next.outboundLayer) ? next : undefined;
    plan.set(node, { bn, relu });
    absorbed.add(bn);
    if (relu) absorbed.add(relu);
  }
  const innerFolds = [...nested.values()].filter((f): f is FoldedModel => f !== null);
  if (plan.size === 0 && innerFolds.length === 0) return null;

  const mapped = new Map<number, SymbolicTensor>();
  for (const input of model.inputs) mapped.set(input.id, input);
  // The nested folds' layers are this fold's to free.
  const ownLayers: Layer[] = innerFolds.flatMap((f) => f.ownLayers);
  const summary: FoldSummary = {
    foldedBatchNorms: innerFolds.reduce((a, f) => a + f.summary.foldedBatchNorms, 0),
    fusedRelus: innerFolds.reduce((a, f) => a + f.summary.fusedRelus, 0),
  };
  const pending: Array<{ layer: Layer; weights: tf.Tensor[] }> = [];
  // Layers of the original reused here: each symbolic apply raises a layer's dispose ref count,
  // which is undone below so that the original model alone still owns (and frees) them.
  const shared: Layer[] = [];
  try {
    for (const node of nodes) {
      if (node.outboundLayer.getClassName() === 'InputLayer' || absorbed.has(node)) continue;
      const inputs = node.inputTensors.map((t) => {
        const m = mapped.get(t.id);
        if (!m) throw new Error(`foldBatchNorm: internal: input ${t.name} of ${node.outboundLayer.name} not computed yet`);
        return m;
      });
      const fold = plan.get(node);
      if (fold) {
        const layer = makeFoldedConv(node.outboundLayer, fold.relu !== undefined);
        ownLayers.push(layer);
        const out = layer.apply(inputs[0]) as SymbolicTensor;
        const { kernel, bias } = foldedWeights(node.outboundLayer as unknown as ConvInternals, fold.bn.outboundLayer as unknown as BatchNormLayerInternals);
        pending.push({ layer, weights: [kernel, bias] });
        mapped.set(fold.bn.outputTensors[0].id, out);
        summary.foldedBatchNorms += 1;
        if (fold.relu) {
          mapped.set(fold.relu.outputTensors[0].id, out);
          summary.fusedRelus += 1;
        }
        continue;
      }
      const inner = nested.get(node.outboundLayer);
      if (inner) {
        // The folded copy is a container of shared and own layers: never disposed as a whole.
        const out = inner.model.apply(inputs.length === 1 ? inputs[0] : inputs, node.callArgs ?? {}) as SymbolicTensor | SymbolicTensor[];
        const outs = Array.isArray(out) ? out : [out];
        node.outputTensors.forEach((t, i) => mapped.set(t.id, outs[i]));
        continue;
      }
      const out = node.outboundLayer.apply(inputs.length === 1 ? inputs[0] : inputs, node.callArgs ?? {}) as SymbolicTensor | SymbolicTensor[];
      shared.push(node.outboundLayer);
      const outs = Array.isArray(out) ? out : [out];
      node.outputTensors.forEach((t, i) => mapped.set(t.id, outs[i]));
    }
    const outputs = model.outputs.map((t) => {
      const m = mapped.get(t.id);
      if (!m) throw new Error(`foldBatchNorm: internal: output ${t.name} not computed`);
      return m;
    });
    const folded = tf.model({ inputs: model.inputs, outputs: outputs.length === 1 ? outputs[0] : outputs, name: `${model.name}_bnfold` });
    for (const { layer, weights } of pending) layer.setWeights(weights);
    return { model: folded, ownLayers, summary };
  } catch (err) {
    for (const l of ownLayers) if (l.built) l.dispose();
    throw err;
  } finally {
    for (const { weights } of pending) tf.dispose(weights);
    for (const layer of shared) (layer as unknown as { _refCount: number })._refCount -= 1;
  }
}

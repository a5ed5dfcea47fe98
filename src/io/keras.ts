/**
 * Read a Keras 3 `.keras` file (a zip of config.json + model.weights.h5) as a tfjs LayersModel, without
 * Python or tensorflowjs_converter: the config is translated to the tfjs layers format and the weights
 * are read from the HDF5 file (jsfive) by the paths Keras 3 writes them under. Covers Sequential and
 * functional models (nested ones too) built from the layers tfjs has; anything whose meaning tfjs
 * cannot reproduce (grouped convolutions, channels-first, batch renormalisation, mixed precision,
 * LoRA or quantised layers) is refused by name rather than approximated.
 */
import * as tf from '@tensorflow/tfjs';
import { strFromU8, unzipSync } from 'fflate';
import { File as H5File, type Dataset, type Group } from 'jsfive';
import { existsSync, readFileSync, statSync } from 'node:fs';

type Json = Record<string, unknown>;
interface KerasEntry {
  class_name: string;
  config: Json;
  name?: string;
  inbound_nodes?: unknown[];
  module?: unknown;
  registered_name?: unknown;
  build_config?: unknown;
}

const CONTAINERS = new Set(['Functional', 'Model', 'Sequential']);
/** Keys of Keras 3 configs that tfjs does not take and that change nothing here (checked before dropping where they could). */
const DROP_KEYS = new Set(['groups', 'lora_rank', 'lora_alpha', 'quantization_config', 'synchronized', 'renorm', 'renorm_clipping', 'renorm_momentum', 'keepdims', 'optional', 'ragged', 'sparse']);
/** Keras 3 activation names that tfjs spells differently. */
const ACTIVATIONS: Record<string, string> = { silu: 'swish', hard_sigmoid: 'hardSigmoid', log_softmax: 'logSoftmax' };

/** Keras's own naming rule for weight paths (keras.src.utils.naming.to_snake_case). */
export function kerasSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function fail(file: string, msg: string): never {
  throw new Error(`loadKerasModel: ${file}: ${msg}`);
}

function policyName(v: unknown): unknown {
  if (v && typeof v === 'object' && (v as Json).class_name !== undefined) return ((v as Json).config as Json | undefined)?.name;
  return v;
}

/** One layer's config in the tfjs (Keras 2 style) form, refusing what tfjs would compute differently. */
function layerConfig(file: string, cls: string, cfg: Json): Json {
  const name = String(cfg.name ?? cls);
  const refuse = (why: string): never => fail(file, `layer ${name} (${cls}): ${why}; tfjs cannot compute it the same way`);
  const dtype = policyName(cfg.dtype);
  if (dtype !== undefined && dtype !== 'float32') refuse(`dtype policy ${String(dtype)} (only float32 models are read)`);
  if (cfg.data_format === 'channels_first') refuse('channels_first data format');
  if (cfg.groups !== undefined && cfg.groups !== 1) refuse(`grouped convolution (groups=${String(cfg.groups)})`);
  if (cfg.renorm === true) refuse('batch renormalisation');
  if (cls === 'BatchNormalization' && cfg.axis !== -1 && cfg.axis !== 3) refuse(`normalisation over axis ${JSON.stringify(cfg.axis)} (only the channel axis)`);
  if (cfg.keepdims === true) refuse('keepdims=True pooling');
  if (cfg.lora_rank != null) refuse('LoRA-enabled layer');
  // A quantised dtype policy is refused above (its name is not float32).
  if (cfg.quantization_config != null) refuse('quantised layer');
  if (cls === 'ReLU' && ((cfg.negative_slope ?? 0) !== 0 || (cfg.threshold ?? 0) !== 0)) refuse('ReLU with negative_slope or threshold');
  const out: Json = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (DROP_KEYS.has(k)) continue;
    if (k === 'dtype') out.dtype = 'float32';
    // The weights are read from the file, so initialisers only need to build; regularisers and constraints act in training only.
    else if (k.endsWith('_initializer')) out[k] = { class_name: 'Zeros', config: {} };
    else if (k.endsWith('_regularizer') || k.endsWith('_constraint')) out[k] = null;
    else if (k === 'activation' && typeof v === 'string') out[k] = ACTIVATIONS[v] ?? v;
    else out[k] = v;
  }
  if (cls === 'InputLayer') {
    out.batch_input_shape = cfg.batch_shape ?? cfg.batch_input_shape;
    delete out.batch_shape;
  }
  return out;
}

/** Keras 3 `{args, kwargs}` nodes -> tfjs `[[name, node, tensor, {}], ...]` per call. */
function inboundNodes(file: string, layer: string, nodes: unknown[] | undefined, containers: Set<string>): unknown[] {
  return (nodes ?? []).map((node) => {
    const refs: unknown[] = [];
    const visit = (a: unknown, depth: number): void => {
      if (Array.isArray(a) && depth < 2) for (const x of a) visit(x, depth + 1);
      else if (a && typeof a === 'object' && (a as Json).class_name === '__keras_tensor__') {
        const h = ((a as Json).config as Json).keras_history as [string, number, number];
        // A nested model's node 0 is its own construction in the tfjs (Keras 2) numbering; Keras 3 counts calls only.
        refs.push([h[0], containers.has(h[0]) ? h[1] + 1 : h[1], h[2], {}]);
      }
    };
    const n = node as { args?: unknown[]; kwargs?: Json };
    if (!Array.isArray(n.args)) fail(file, `layer ${layer}: inbound node without args (not a Keras 3 file?)`);
    visit(n.args, 0);
    for (const [k, v] of Object.entries(n.kwargs ?? {})) {
      if (v && typeof v === 'object') fail(file, `layer ${layer}: called with a tensor argument ${k}, which the tfjs format cannot express`);
    }
    return refs;
  });
}

/** [name, node, tensor] or a list of them -> a list of them. */
function refList(v: unknown): unknown[] {
  return Array.isArray(v) && v.length > 0 && !Array.isArray(v[0]) ? [v] : (v as unknown[]) ?? [];
}

/** Where each layer's variables live in model.weights.h5, by tfjs layer path (names joined by '/'). */
type WeightPaths = Map<string, string>;

/** Translate a container (Sequential / Functional) config; records its layers' weight paths under `h5Prefix`. */
function containerConfig(file: string, entry: KerasEntry, h5Prefix: string, scope: string, paths: WeightPaths): { class_name: string; config: Json } {
  const cfg = entry.config;
  const layers = cfg.layers as KerasEntry[] | undefined;
  if (!Array.isArray(layers)) fail(file, `model ${String(cfg.name)} has no layer list`);
  const seen = new Map<string, number>();
  const converted: Json[] = [];
  const nested = new Set(layers.filter((l) => CONTAINERS.has(l?.class_name)).map((l) => String(l.config?.name ?? l.name)));
  for (const l of layers) {
    if (!l || typeof l.class_name !== 'string' || !l.config) fail(file, `model ${String(cfg.name)}: malformed layer entry`);
    const name = String(l.config.name ?? l.name);
    // Keras 3 stores each layer's variables under layers/<snake class name>[_k], counted per container in order.
    const base = kerasSnakeCase(l.class_name);
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    const h5 = `${h5Prefix}/${k === 0 ? base : `${base}_${k}`}`;
    const path = scope ? `${scope}/${name}` : name;
    let out: Json;
    if (CONTAINERS.has(l.class_name)) {
      const inner = containerConfig(file, l, `${h5}/layers`, path, paths);
      out = { ...inner };
    } else {
      if (l.class_name !== 'InputLayer') paths.set(path, h5);
      out = { class_name: l.class_name, config: layerConfig(file, l.class_name, l.config) };
    }
    if (entry.class_name !== 'Sequential') {
      out.name = name;
      out.inbound_nodes = inboundNodes(file, name, l.inbound_nodes, nested);
    }
    converted.push(out);
  }
  if (entry.class_name === 'Sequential') {
    // tfjs's Sequential takes its input shape on the first layer, not as an InputLayer entry.
    let shape = cfg.build_input_shape;
    if (converted[0]?.class_name === 'InputLayer') {
      shape = (converted[0].config as Json).batch_input_shape;
      converted.shift();
    }
    if (converted.length === 0) fail(file, `Sequential model ${String(cfg.name)} has no layers`);
    if (shape != null) (converted[0].config as Json).batch_input_shape = shape;
    return { class_name: 'Sequential', config: { name: cfg.name, layers: converted } };
  }
  return { class_name: 'Model', config: { name: cfg.name, layers: converted, input_layers: refList(cfg.input_layers), output_layers: refList(cfg.output_layers).map((r) => (Array.isArray(r) && nested.has(String(r[0])) ? [r[0], Number(r[1]) + 1, r[2]] : r)) } };
}

function datasetsUnder(group: Group, prefix: string, out: string[]): void {
  for (const key of Array.isArray(group.keys) ? group.keys : []) {
    const child = group.get(key);
    const p = `${prefix}/${key}`;
    if (child && 'keys' in child) datasetsUnder(child as Group, p, out);
    else out.push(p);
  }
}

/** The layer at a '/'-joined path of names through nested models. */
function layerAt(model: tf.LayersModel, path: string): tf.layers.Layer {
  let layer: tf.layers.Layer = model;
  for (const part of path.split('/')) layer = (layer as tf.LayersModel).getLayer(part);
  return layer;
}

/**
 * Load a Keras 3 `.keras` file as a tfjs LayersModel with Keras's weights (inference as Keras computes
 * it; BatchNorm moving statistics included). Throws naming the file and the layer on anything it
 * cannot read or reproduce.
 */
export async function loadKerasModel(file: string): Promise<tf.LayersModel> {
  if (!existsSync(file) || !statSync(file).isFile()) fail(file, 'no such file');
  const bytes = new Uint8Array(readFileSync(file));
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) fail(file, 'not a zip archive (a Keras 3 .keras file is one; legacy .h5 files are not read: re-save the model with model.save("model.keras"))');
  let parts: Record<string, Uint8Array>;
  try {
    parts = unzipSync(bytes);
  } catch (err) {
    fail(file, `cannot unzip (${(err as Error).message})`);
  }
  for (const need of ['config.json', 'model.weights.h5']) if (!parts[need]) fail(file, `${need} is missing from the archive`);
  let config: KerasEntry;
  try {
    config = JSON.parse(strFromU8(parts['config.json'])) as KerasEntry;
  } catch (err) {
    fail(file, `config.json is not valid JSON (${(err as Error).message})`);
  }
  if (!config || !CONTAINERS.has(config.class_name)) {
    fail(file, `the model is a ${String(config?.class_name)}; only Sequential and functional models are read (a subclassed model's code is not in the file)`);
  }
  const paths: WeightPaths = new Map();
  const topology = containerConfig(file, config, 'layers', '', paths);

  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  } catch (err) {
    fail(file, `tfjs cannot build the model (${(err as Error).message})`);
  }
  try {
    const h5bytes = parts['model.weights.h5'];
    const h5 = new H5File(h5bytes.buffer.slice(h5bytes.byteOffset, h5bytes.byteOffset + h5bytes.byteLength) as ArrayBuffer, 'model.weights.h5');
    const used = new Set<string>();
    for (const [path, h5path] of paths) {
      const layer = layerAt(model, path);
      const group = h5.get(`${h5path}/vars`) as Group | undefined;
      const keys = group && Array.isArray(group.keys) ? [...group.keys].sort((a, b) => Number(a) - Number(b)) : [];
      if (keys.length !== layer.weights.length) fail(file, `layer ${path}: the file holds ${keys.length} variables under ${h5path}/vars but the layer has ${layer.weights.length}`);
      if (keys.length === 0) continue;
      const values = keys.map((k, i) => {
        const ds = group!.get(k) as Dataset;
        const want = layer.weights[i].shape;
        if (ds.shape.join() !== want.join()) fail(file, `layer ${path}: variable ${k} has shape [${ds.shape}] but ${layer.weights[i].name} is [${want}]`);
        if (ds.dtype !== '<f4') fail(file, `layer ${path}: variable ${k} is ${String(ds.dtype)}, not float32`);
        used.add(`${h5path}/vars/${k}`);
        return tf.tensor(Float32Array.from(ds.value), want as number[], 'float32');
      });
      try {
        layer.setWeights(values);
      } finally {
        tf.dispose(values);
      }
    }
    const all: string[] = [];
    const root = h5.get('layers') as Group | undefined;
    if (root) datasetsUnder(root, 'layers', all);
    const left = all.filter((p) => !used.has(p));
    if (left.length > 0) fail(file, `variables not matched to any layer: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', ...' : ''}`);
    return model;
  } catch (err) {
    model.dispose();
    throw err;
  }
}

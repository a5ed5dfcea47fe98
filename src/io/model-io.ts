/**
 * Save / load LayersModels in tfjs's own format (model.json + weights.bin) with plain node fs, so it
 * works on every backend (native, wasm, cpu) and a killed save never leaves a half-written model.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { replaceDirAtomic, writeFileAtomic } from './atomic.ts';
// Registers every custom layer a saved model may contain, before any load.
import '../layers/index.ts';
import '../jpeg/layer.ts';
import '../jpeg/random.ts';

/** File names inside a saved-model directory. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

function toArrayBuffer(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

/**
 * Write `model` to directory `dir` (replaced atomically) as model.json + weights.bin.
 * `extra` (JSON-serialisable) is stored as the model's userDefinedMetadata; read it back with
 * {@link loadModelMetadata}. The training config / optimizer state is not stored.
 */
export async function saveModel(model: tf.LayersModel, dir: string, extra?: Record<string, unknown>): Promise<void> {
  if (!model || typeof (model as tf.LayersModel).save !== 'function') throw new Error('saveModel: model must be a tf.LayersModel');
  if (typeof dir !== 'string' || dir.length === 0) throw new Error('saveModel: dir must be a non-empty path');
  if (extra !== undefined && (extra === null || typeof extra !== 'object' || Array.isArray(extra))) {
    throw new Error('saveModel: extra must be a plain object');
  }
  await replaceDirAtomic(dir, async (tmp) => {
    const handler: tf.io.IOHandler = {
      save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
        if (artifacts.modelTopology == null || artifacts.modelTopology instanceof ArrayBuffer) {
          throw new Error('saveModel: the model produced no JSON topology');
        }
        const weights = artifacts.weightData ? new Uint8Array(toArrayBuffer(artifacts.weightData)) : new Uint8Array(0);
        const modelJson = {
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
          ...(extra ? { userDefinedMetadata: extra } : {}),
        };
        // fsynced writes inside the temporary directory; the directory becomes visible by one rename.
        writeFileAtomic(join(tmp, WEIGHTS_BIN), weights);
        writeFileAtomic(join(tmp, MODEL_JSON), JSON.stringify(modelJson));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      },
    };
    await model.save(handler);
  });
}

/** A model's topology and weights in memory (what a worker thread needs to rebuild it with tf.io.fromMemory). */
export interface ModelInMemory {
  topology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/** Serialise `model` to memory (topology JSON + one weights buffer), as saveModel would write it. */
export async function modelToMemory(model: tf.LayersModel): Promise<ModelInMemory> {
  let out: ModelInMemory | undefined;
  await model.save(tf.io.withSaveHandler(async (a: tf.io.ModelArtifacts) => {
    if (a.modelTopology == null || a.modelTopology instanceof ArrayBuffer) throw new Error('modelToMemory: the model produced no JSON topology');
    out = { topology: a.modelTopology, weightSpecs: a.weightSpecs ?? [], weightData: a.weightData ? toArrayBuffer(a.weightData) : new ArrayBuffer(0) };
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
  }));
  return out!;
}

/** Rebuild a model serialised by {@link modelToMemory}. */
export async function modelFromMemory(m: ModelInMemory): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: m.topology, weightSpecs: m.weightSpecs, weightData: m.weightData }));
}

interface SavedModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: Record<string, unknown>;
}

function readModelJson(dir: string): SavedModelJson {
  if (typeof dir !== 'string' || dir.length === 0) throw new Error('loadModel: dir must be a non-empty path');
  if (existsSync(dir) && statSync(dir).isFile()) {
    // A model file from another framework: say how to bring it in rather than that nothing is there.
    const hint = /\.(onnx|keras)$/i.test(dir)
      ? `; convert it first: jpegdl-robust import --model ${dir} --out <dir> (with --mean/--std for normalisation done outside the model)`
      : /\.(h5|hdf5|pt|pth|pb)$/i.test(dir)
        ? '; export it to ONNX (PyTorch) or save it as .keras (Keras 3), then use jpegdl-robust import'
        : '';
    throw new Error(`loadModel: ${dir} is a file, not a model directory (model.json and weights)${hint}`);
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`loadModel: model directory ${dir} does not exist`);
  const jsonPath = join(dir, MODEL_JSON);
  if (!existsSync(jsonPath)) throw new Error(`loadModel: ${jsonPath} is missing`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    throw new Error(`loadModel: ${jsonPath} is not valid JSON (${(err as Error).message})`);
  }
  const json = parsed as Partial<SavedModelJson> | null;
  const format = (json as { format?: unknown } | null)?.format;
  const topology = json?.modelTopology as { node?: unknown } | undefined;
  if (format === 'graph-model' || Array.isArray(topology?.node)) {
    throw new Error(
      `loadModel: ${jsonPath} is a tfjs graph model (a converted TensorFlow SavedModel or frozen graph); the suite attacks layers models: give the Keras model itself (import --model model.keras) or convert it with tensorflowjs_converter --input_format keras`,
    );
  }
  if (json == null || typeof json !== 'object' || json.modelTopology == null || typeof json.modelTopology !== 'object') {
    throw new Error(`loadModel: ${jsonPath} has no modelTopology (not a tfjs layers model)`);
  }
  if (!Array.isArray(json.weightsManifest)) throw new Error(`loadModel: ${jsonPath} has no weightsManifest`);
  return json as SavedModelJson;
}

/** The `extra` object stored by {@link saveModel} (empty object when none), without loading weights. */
export function loadModelMetadata(dir: string): Record<string, unknown> {
  return readModelJson(dir).userDefinedMetadata ?? {};
}

/**
 * Load a model saved by {@link saveModel} (or any single-shard tfjs layers model). Throws naming the
 * file when model.json or a weights file is missing, unreadable, or of the wrong size.
 */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const json = readModelJson(dir);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new Error(`loadModel: ${join(dir, MODEL_JSON)} has a malformed weightsManifest entry`);
    }
    specs.push(...group.weights);
    for (const p of group.paths) {
      const path = join(dir, p);
      if (!existsSync(path)) throw new Error(`loadModel: weights file ${path} is missing`);
      buffers.push(readFileSync(path));
    }
  }
  let expected = 0;
  for (const s of specs) {
    const per = BYTES_PER_ELEMENT[s.dtype];
    if (per === undefined || s.quantization) throw new Error(`loadModel: weight ${s.name} has unsupported dtype/quantisation (${s.dtype})`);
    expected += s.shape.reduce((a, b) => a * b, 1) * per;
  }
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  if (total !== expected) {
    const files = json.weightsManifest.flatMap((g) => g.paths.map((p) => join(dir, p))).join(', ');
    throw new Error(`loadModel: ${files} holds ${total} bytes but model.json describes ${expected} bytes of weights (corrupt or truncated)`);
  }
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    joined.set(b, offset);
    offset += b.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: joined.buffer,
    format: 'layers-model',
    userDefinedMetadata: json.userDefinedMetadata as { [key: string]: {} } | undefined,
  };
  try {
    return await tf.loadLayersModel({ load: async () => artifacts });
  } catch (err) {
    throw new Error(`loadModel: could not rebuild the model from ${join(dir, MODEL_JSON)}: ${(err as Error).message}`);
  }
}

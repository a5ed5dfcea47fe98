/**
 * Compute-backend selection. Best first: native TensorFlow with CUDA
 * (@tensorflow/tfjs-node-gpu), native TensorFlow on CPU (@tensorflow/tfjs-node),
 * WebAssembly, pure JS. All library code imports `@tensorflow/tfjs`; the native
 * packages re-export that same engine and register their backend into it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
// oneDNN kernels (off by default on CPUs without AVX512-VNNI): 1.5-3x faster convolutions here; read once at library load (docs/bench.md).
process.env.TF_ENABLE_ONEDNN_OPTS ??= '1';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What ran: recorded in every report so numbers can be traced to a backend. */
export interface BackendInfo {
  /** Our name for it (one of BACKEND_NAMES). */
  name: BackendName;
  /** tf.getBackend() after initialisation ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string;
  /** npm package that provided it. */
  package: string;
  /** @tensorflow/tfjs version. */
  tfjsVersion: string;
  /** Version of the TensorFlow C library behind the native backend, if any. */
  tensorflowVersion?: string;
  /** Why better backends were skipped, when they were. */
  fallbacks: string[];
}

const require = createRequire(import.meta.url);
let current: BackendInfo | undefined;

function hasGpu(): boolean {
  try {
    require('node:child_process').execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function tryNative(pkg: string): Promise<string | undefined> {
  // The packages throw at import when their addon is missing or cannot load.
  const mod = await import(pkg);
  await tf.setBackend('tensorflow');
  await tf.ready();
  // Host-side updates and the oneDNN kernels are for TensorFlow on CPU only (a GPU would pay copies).
  const cpu = pkg === '@tensorflow/tfjs-node';
  // A correctness fix for TensorFlow's oneDNN kernels (see onednn.ts), independent of the fast paths.
  if (cpu && process.env.JPEGDL_ONEDNN_WORKAROUNDS !== '0') (await import('./native/onednn.ts')).registerOneDnnWorkarounds();
  (await import('./native/fast-grads.ts')).registerNativeFastPaths({ cpu });
  const binding = (mod.backend?.() ?? tf.backend()) as { binding?: { TF_Version?: string } };
  return binding.binding?.TF_Version;
}

async function tryWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Point the loader at the package's own .wasm files (no network fetch).
  const dir = require.resolve('@tensorflow/tfjs-backend-wasm/package.json').replace(/package\.json$/, 'dist/');
  wasm.setWasmPaths(dir);
  (await import('./wasm/kernels.ts')).registerWasmTrainingKernels();
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
}

function parseBackend(name: string): BackendName | 'auto' {
  if (name === 'auto' || (BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName | 'auto';
  throw new Error(`--backend: unknown backend "${name}"; expected one of auto, ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Initialise the best available backend, or exactly `requested` (which must then work).
 * Idempotent: a second call with the same request returns the first result.
 */
export async function initBackend(requested: string = process.env.JPEGDL_BACKEND ?? 'auto'): Promise<BackendInfo> {
  const want = parseBackend(requested);
  if (current && (want === 'auto' || want === current.name)) return current;
  const order: BackendName[] = want === 'auto' ? [...BACKEND_NAMES] : [want];
  const fallbacks: string[] = [];
  for (const name of order) {
    try {
      let tensorflowVersion: string | undefined;
      let pkg: string;
      if (name === 'tensorflow-gpu') {
        if (want === 'auto' && !hasGpu()) throw new Error('no CUDA GPU (nvidia-smi not found or found no device)');
        pkg = '@tensorflow/tfjs-node-gpu';
        tensorflowVersion = await tryNative(pkg);
      } else if (name === 'tensorflow') {
        pkg = '@tensorflow/tfjs-node';
        tensorflowVersion = await tryNative(pkg);
      } else if (name === 'wasm') {
        pkg = '@tensorflow/tfjs-backend-wasm';
        await tryWasm();
      } else {
        pkg = '@tensorflow/tfjs-backend-cpu';
        await tf.setBackend('cpu');
        await tf.ready();
      }
      current = { name, tfBackend: tf.getBackend(), package: pkg, tfjsVersion: tf.version_core, tensorflowVersion, fallbacks };
      return current;
    } catch (err) {
      const msg = `${name}: ${(err as Error).message.split('\n')[0]}`;
      if (want !== 'auto') throw new Error(`backend ${msg}${name.startsWith('tensorflow') ? ' (run `npm run setup:native`)' : ''}`);
      fallbacks.push(msg);
    }
  }
  throw new Error(`no TensorFlow.js backend could be initialised: ${fallbacks.join('; ')}`);
}

/** The backend initialised by initBackend, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/** One line for logs and reports, e.g. "tensorflow (TensorFlow 2.21.0, tfjs 4.22.0)". */
export function describeBackend(info: BackendInfo): string {
  const tfv = info.tensorflowVersion ? `TensorFlow ${info.tensorflowVersion}, ` : '';
  return `${info.name} (${tfv}tfjs ${info.tfjsVersion}, ${info.package})`;
}

/**
 * Running one backend's kernels from inside another kernel. Kernels composed of
 * kernels call the registered kernel functions directly (not tf ops: the engine
 * would track, tape and scope those) and free every intermediate buffer with
 * `backend.disposeData`, so the only buffer that survives is the returned output.
 */
import * as tf from '@tensorflow/tfjs';

type Attrs = Record<string, unknown>;

/** Runs kernels of `backendName` on `backend`, remembering each output so it can be freed. */
export class KernelComposer {
  private readonly temps: tf.TensorInfo[] = [];

  constructor(
    private readonly backend: tf.KernelBackend,
    private readonly backendName: string,
  ) {}

  /** Run kernel `name`; its output is an intermediate until `keep` is called on it. */
  run(name: string, inputs: Record<string, tf.TensorInfo>, attrs: Attrs = {}): tf.TensorInfo {
    const kernel = tf.getKernel(name, this.backendName);
    if (!kernel) throw new Error(`kernel ${name} is not registered for backend "${this.backendName}"`);
    return this.runFunc(name, kernel.kernelFunc, inputs, attrs);
  }

  /** Run a kernel function directly (e.g. the original of a kernel being wrapped). */
  runFunc(name: string, fn: tf.KernelFunc, inputs: Record<string, tf.TensorInfo>, attrs: Attrs = {}): tf.TensorInfo {
    const out = fn({ inputs: inputs as tf.NamedTensorInfoMap, attrs: attrs as tf.NamedAttrMap, backend: this.backend });
    if (Array.isArray(out)) throw new Error(`kernel ${name} returned ${out.length} outputs; expected one`);
    this.temps.push(out);
    return out;
  }

  /** Reshape without copying (the backend shares the buffer and counts the reference). */
  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /** Slice only when the region is smaller than `x`, otherwise return `x` itself. */
  slice(x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  /** Free every intermediate except `result`, and return `result` for the engine to own. */
  finish(result: tf.TensorInfo): tf.TensorInfo {
    const idx = this.temps.lastIndexOf(result);
    if (idx < 0) throw new Error('KernelComposer.finish: result was not produced by this composer');
    this.temps.splice(idx, 1);
    this.disposeAll();
    return result;
  }

  /** Free every intermediate (after an error, or when the result was kept). */
  disposeAll(): void {
    for (const t of this.temps.splice(0)) this.backend.disposeData(t.dataId);
  }
}

/** Run `body` with a composer; intermediates are freed even when `body` throws. */
export function compose(
  backend: tf.KernelBackend,
  backendName: string,
  body: (k: KernelComposer) => tf.TensorInfo,
): tf.TensorInfo {
  const k = new KernelComposer(backend, backendName);
  try {
    return k.finish(body(k));
  } catch (err) {
    k.disposeAll();
    throw err;
  }
}

/**
 * UnsortedSegmentSum (the gradient of tf.gather) for backends without it, as a
 * matrix product: out[s, :] = sum_i [ids_i == s] * x[i, :] = oneHot(ids)^T x.
 * Ids outside [0, numSegments) contribute nothing (their one-hot row is zero).
 */
import * as tf from '@tensorflow/tfjs';
import { compose } from './compose.ts';

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/** UnsortedSegmentSum for `backendName`, composed from OneHot, Cast and BatchMatMul. */
export function unsortedSegmentSumKernel(backendName: string) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
    const idRank = segmentIds.shape.length;
    if (segmentIds.shape.some((d, i) => d !== x.shape[i])) {
      throw new Error(`UnsortedSegmentSum (${backendName}): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
    }
    const n = tf.util.sizeFromShape(segmentIds.shape);
    const rest = x.shape.slice(idRank);
    const r = tf.util.sizeFromShape(rest);
    return compose(backend, backendName, (k) => {
      const ids = segmentIds.dtype === 'int32' ? segmentIds : k.run('Cast', { x: segmentIds }, { dtype: 'int32' });
      // wasm's OneHot writes int32 whatever dtype it is given: ask for int32 and cast.
      const hotInt = k.run('OneHot', { indices: k.reshape(ids, [n]) }, { depth: numSegments, onValue: 1, offValue: 0, dtype: 'int32' });
      const hot = k.run('Cast', { x: hotInt }, { dtype: 'float32' });
      const xf = x.dtype === 'float32' ? x : k.run('Cast', { x }, { dtype: 'float32' });
      const prod = k.run('BatchMatMul', { a: k.reshape(hot, [1, n, numSegments]), b: k.reshape(xf, [1, n, r]) }, { transposeA: true, transposeB: false });
      const out = k.reshape(prod, [numSegments, ...rest]);
      return x.dtype === 'float32' ? out : k.run('Cast', { x: out }, { dtype: x.dtype });
    });
  };
}

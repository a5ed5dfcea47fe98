/** Per-image correctness of a model on a dataset's images, batch by batch (forward-only jobs). */
import * as tf from '@tensorflow/tfjs';

/**
 * Per image: is the model right (inference mode) on the images `batchOf(start, count)` gives (pixels
 * 0-1; built inside a tidy, so intermediates are freed), in batches of `batchSize`.
 */
export function correctnessInBatches(model: tf.LayersModel, labels: Int32Array, batchSize: number, batchOf: (start: number, count: number) => tf.Tensor4D): Uint8Array {
  const n = labels.length;
  const out = new Uint8Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const eq = tf.tidy(() => {
      const logits = model.apply(batchOf(s, m), { training: false }) as tf.Tensor2D;
      return tf.equal(tf.argMax(logits, 1), tf.tensor1d(labels.subarray(s, s + m), 'int32'));
    });
    out.set(eq.dataSync(), s);
    eq.dispose();
  }
  return out;
}

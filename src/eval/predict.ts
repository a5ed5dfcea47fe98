/** Predicted classes of a Layers model over many images, and how concentrated they are. */
import * as tf from '@tensorflow/tfjs';

/** Per image: the class the model predicts (inference mode) on `batchOf(start, count)` (pixels 0-1), `batchSize` images at a time. */
export function predictClasses(model: tf.LayersModel, n: number, batchSize: number, batchOf: (start: number, count: number) => tf.Tensor4D): Int32Array {
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const pred = tf.tidy(() => tf.argMax(model.apply(batchOf(s, m), { training: false }) as tf.Tensor2D, 1));
    out.set(pred.dataSync() as Int32Array, s);
    pred.dispose();
  }
  return out;
}

/** Share of the predictions given to the most common class (1: one class for everything). */
export function topClassShare(pred: Int32Array): number {
  const counts = new Map<number, number>();
  for (const p of pred) counts.set(p, (counts.get(p) ?? 0) + 1);
  return pred.length ? Math.max(...counts.values()) / pred.length : 0;
}

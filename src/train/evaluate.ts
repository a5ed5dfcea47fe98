/** Clean accuracy of a classifier over batches, optionally with the JPEG layer in a given mode. */
import * as tf from '@tensorflow/tfjs';
import { jpegLayersOf, withJpegMode, type JpegMode } from './jpeg-params.ts';

/** A mini-batch: images [N,H,W,C] in [0,1] and integer labels [N] (the data layer's type). The consumer disposes both. */
import type { Batch } from '../data/batches.ts';
export type { Batch };

/** Accuracy result: fraction in [0,1] and the counts behind it. */
export interface Accuracy {
  accuracy: number;
  correct: number;
  total: number;
}

/** Number of correct top-1 predictions in a batch (inference mode), as a scalar tensor. */
export function countCorrect(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logits = model.apply(x, { training: false }) as tf.Tensor2D;
    return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32')) as tf.Scalar;
  });
}

/** Top-1 accuracy over `batches` (disposed here); one device read at the end. */
export async function evaluateAccuracy(model: tf.LayersModel, batches: Iterable<Batch>, mode?: JpegMode): Promise<Accuracy> {
  const run = async (): Promise<Accuracy> => {
    let sum: tf.Scalar = tf.scalar(0);
    let total = 0;
    for (const { x, y } of batches) {
      const c = countCorrect(model, x, y);
      const next = tf.add(sum, c) as tf.Scalar;
      tf.dispose([sum, c, x, y]);
      sum = next;
      total += y.shape[0];
    }
    const correct = (await sum.data())[0];
    sum.dispose();
    if (total === 0) throw new Error('evaluateAccuracy: the evaluation data yielded no images');
    return { accuracy: correct / total, correct, total };
  };
  if (mode === undefined || jpegLayersOf(model).length === 0) return run();
  return withJpegMode(model, mode, run);
}

/** Clean accuracy in every mode that applies: 'plain' for a model without JPEG layer, else 'soft' and 'hard'. */
export async function evaluateCleanModes(
  model: tf.LayersModel,
  batches: () => Iterable<Batch>,
): Promise<Partial<Record<'plain' | 'soft' | 'hard', number>>> {
  if (jpegLayersOf(model).length === 0) return { plain: (await evaluateAccuracy(model, batches())).accuracy };
  return {
    soft: (await evaluateAccuracy(model, batches(), 'soft')).accuracy,
    hard: (await evaluateAccuracy(model, batches(), 'hard')).accuracy,
  };
}

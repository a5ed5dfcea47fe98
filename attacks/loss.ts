/** Per-example attack objectives on logits (never on softmax outputs). Attacks always ASCEND these. */
import * as tf from '@tensorflow/tfjs';

/** Which loss an attack ascends: cross-entropy, or the logit margin (CW-style, scale-dependent but unsaturated). */
export type LossName = 'ce' | 'margin';

/** Cross-entropy of `labels` under `logits`, one value per example (nats); stable via logSoftmax. */
export function crossEntropyPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]).toFloat();
    return tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/** max_{j != label} logit_j - logit_label, one value per example (logit units); > 0 means misclassified. */
export function marginPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]).toFloat();
    const own = tf.sum(tf.mul(onehot, logits), 1);
    // Push the true class far down so max picks the best other class.
    const others = tf.max(tf.sub(logits, tf.mul(onehot, 1e9)), 1);
    return tf.sub(others, own) as tf.Tensor1D;
  });
}

/**
 * The objective an attack maximises, per example. Untargeted: loss of the true label (CE) or the
 * margin of the best wrong class. Targeted: minus the CE of the target, or the margin of the target
 * over the best other class, so that ascending it moves towards the target.
 */
export function attackObjective(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  { loss = 'ce', targets }: { loss?: LossName; targets?: tf.Tensor1D } = {},
): tf.Tensor1D {
  return tf.tidy(() => {
    if (targets) {
      return (loss === 'ce' ? tf.neg(crossEntropyPerExample(logits, targets)) : tf.neg(marginPerExample(logits, targets))) as tf.Tensor1D;
    }
    return loss === 'ce' ? crossEntropyPerExample(logits, labels) : marginPerExample(logits, labels);
  });
}

/** Per-example attack success as a bool tensor: misclassified (untargeted) or predicted as the target (targeted). */
export function attackSuccess(logits: tf.Tensor2D, labels: tf.Tensor1D, targets?: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const pred = tf.argMax(logits, 1);
    return (targets ? tf.equal(pred, tf.cast(targets, 'int32')) : tf.notEqual(pred, tf.cast(labels, 'int32'))) as tf.Tensor1D;
  });
}

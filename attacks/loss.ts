/** Per-example attack objectives on logits (never on softmax outputs). Attacks always ASCEND these. */
import * as tf from '@tensorflow/tfjs';

/**
 * Which loss an attack ascends: cross-entropy, the logit margin (CW-style, scale-dependent but
 * unsaturated), or DLR (the margin divided by a logit spread: invariant to shifting and scaling the
 * logits, AutoAttack's second loss).
 */
export type LossName = 'ce' | 'margin' | 'dlr';

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
 * The k largest logits per example, largest first, differentiable in the logits they pick: each pick
 * is a one-hot mask from argMax (no gradient), so each value is an ordinary masked sum. One pass of
 * k argMax rounds serves every rank a loss needs.
 */
function largestLogits(logits: tf.Tensor2D, k: number): tf.Tensor1D[] {
  return tf.tidy(() => {
    let rest: tf.Tensor2D = logits;
    const values: tf.Tensor1D[] = [];
    for (let i = 0; i < k; i++) {
      const pick = tf.oneHot(tf.argMax(rest, 1), logits.shape[1]).toFloat();
      values.push(tf.sum(tf.mul(pick, logits), 1) as tf.Tensor1D);
      rest = tf.sub(rest, tf.mul(pick, 1e9)) as tf.Tensor2D;
    }
    return values;
  });
}

/** Logit of class `labels` per example. */
function logitOf(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]).toFloat(), logits), 1) as tf.Tensor1D);
}

/**
 * DLR (Croce & Hein 2020): (max_{j != y} z_j - z_y) / (z_pi1 - z_pi3 + 1e-12), pi sorting the logits
 * in decreasing order; > 0 means misclassified. Needs at least 3 classes.
 */
export function dlrPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [z1, , z3] = largestLogits(logits, 3);
    return tf.div(marginPerExample(logits, labels), tf.add(tf.sub(z1, z3), 1e-12)) as tf.Tensor1D;
  });
}

/**
 * Targeted DLR (APGD-T): (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12), ascended to move from
 * label y to target t. Needs at least 4 classes.
 */
export function targetedDlrPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [z1, , z3, z4] = largestLogits(logits, 4);
    const spread = tf.sub(z1, tf.mul(tf.add(z3, z4), 0.5));
    return tf.div(tf.sub(logitOf(logits, targets), logitOf(logits, labels)), tf.add(spread, 1e-12)) as tf.Tensor1D;
  });
}

/**
 * The objective an attack maximises, per example. Untargeted: loss of the true label (CE) or the
 * margin of the best wrong class, or DLR. Targeted: minus the CE of the target, or the margin of the target
 * over the best other class, or targeted DLR, so that ascending it moves towards the target.
 */
export function attackObjective(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  { loss = 'ce', targets }: { loss?: LossName; targets?: tf.Tensor1D } = {},
): tf.Tensor1D {
  return tf.tidy(() => {
    if (loss === 'dlr') return targets ? targetedDlrPerExample(logits, labels, targets) : dlrPerExample(logits, labels);
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

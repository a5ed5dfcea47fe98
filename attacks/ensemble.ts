/**
 * A logit ensemble of classifiers (Liu, Chen, Liu, Song 2017; Dong et al. 2018 found averaging logits
 * best for crafting): any attack run on it crafts against all members at once, so a transfer attack can
 * use several surrogates (e.g. the baseline and a JPEG-DL model in its soft mode).
 */
import * as tf from '@tensorflow/tfjs';
import { asLogitsFn, type Classifier } from '../src/types.ts';

/** A Classifier whose logits are the weighted mean of the members' logits (weights default equal, normalised to sum 1). */
export function ensembleModel(members: Classifier[], weights?: number[]): Classifier {
  if (!Array.isArray(members) || members.length === 0) throw new Error('ensembleModel: members must be a non-empty list of classifiers');
  if (weights !== undefined) {
    if (!Array.isArray(weights) || weights.length !== members.length) throw new Error(`ensembleModel: weights must have one entry per member (${members.length}), got ${Array.isArray(weights) ? weights.length : String(weights)}`);
    weights.forEach((w, i) => {
      if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0) throw new Error(`ensembleModel: weights[${i}] must be a finite number > 0, got ${String(w)}`);
    });
  }
  const total = weights ? weights.reduce((a, b) => a + b, 0) : members.length;
  const share = members.map((_, i) => (weights ? weights[i] : 1) / total);
  const fns = members.map((m) => asLogitsFn(m));
  if (fns.length === 1) return fns[0];
  return (x: tf.Tensor4D) => tf.tidy(() => {
    let sum: tf.Tensor2D | undefined;
    fns.forEach((fn, i) => {
      const z = fn(x);
      if (sum && (z.rank !== 2 || z.shape[1] !== sum.shape[1])) throw new Error(`ensembleModel: member ${i} returns logits [${z.shape}] but member 0 returns [${sum.shape}]`);
      const part = tf.mul(z, share[i]) as tf.Tensor2D;
      sum = sum ? (tf.add(sum, part) as tf.Tensor2D) : part;
    });
    return sum!;
  });
}

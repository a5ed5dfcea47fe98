/**
 * What C&W L2 (cw.ts) and EAD (ead.ts) share: the attacker's gain on logits, the success test at a
 * confidence κ, the per-image binary search over the constant c that weighs the hinge against the
 * distance, and the budgeted form of the examples found.
 */
import * as tf from '@tensorflow/tfjs';
import { marginPerExample } from './loss.ts';
import { project, projectOrClean, type Budget } from './project.ts';

/** How far each example is on the attacker's side: margin past the label (untargeted) or of the target over the rest; > 0 is a success at κ = 0. */
export function gain(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D | undefined): tf.Tensor1D {
  return tf.tidy(() => (targets ? tf.neg(marginPerExample(logits, targets)) : marginPerExample(logits, labels)) as tf.Tensor1D);
}

/** Success at confidence κ: gain > 0 when κ = 0 (misclassified, or the target wins), else gain ≥ κ. */
export function succeeded(g: number, kappa: number): boolean {
  return kappa > 0 ? g >= kappa : g > 0;
}

/** The C&W hinge max(-gain, -κ) per example (logits scale): falls as the attack gains, flat once the gain reaches κ. */
export function hinge(g: tf.Tensor1D, kappa: number): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.minimum(g, kappa)) as tf.Tensor1D);
}

/**
 * Per-image binary search over the constant c (the papers' rule): after a constant that found an
 * example, c moves halfway down to the largest constant known to fail; after one that found none, halfway
 * up to the smallest known to succeed, or x10 while none has.
 */
class ConstantSearch {
  readonly consts: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;

  constructor(n: number, initial: number) {
    this.consts = new Float64Array(n).fill(initial);
    this.lower = new Float64Array(n);
    this.upper = new Float64Array(n).fill(Infinity);
  }

  /** Move image i's constant after a run with it that did (true) or did not find an example. */
  update(i: number, found: boolean): void {
    if (found) {
      this.upper[i] = Math.min(this.upper[i], this.consts[i]);
      this.consts[i] = (this.lower[i] + this.upper[i]) / 2;
    } else {
      this.lower[i] = Math.max(this.lower[i], this.consts[i]);
      this.consts[i] = Number.isFinite(this.upper[i]) ? (this.lower[i] + this.upper[i]) / 2 : this.consts[i] * 10;
    }
  }
}

/** One constant's run: the batch positions still searched, their clean images, labels, targets and constants; set found[i] for each image its constant fooled. */
export interface ConstantRun {
  todo: number[];
  /** `todo` as an int32 tensor, for gathering more per-image tensors. */
  at: tf.Tensor1D;
  x0: tf.Tensor4D;
  y: tf.Tensor1D;
  t: tf.Tensor1D | undefined;
  cs: tf.Tensor1D;
  found: Uint8Array;
}

/**
 * Run `searchSteps` constants per image, from `initial`, on the images not `settled` (those
 * misclassified clean): `run` (inside tf.tidy) optimises for its constants and marks what it fooled.
 */
export function searchConstants(
  images: tf.Tensor4D, labels: tf.Tensor1D, targets: tf.Tensor1D | undefined,
  searchSteps: number, initial: number, settled: (i: number) => boolean, run: (r: ConstantRun) => void,
): void {
  const n = images.shape[0];
  const constants = new ConstantSearch(n, initial);
  for (let s = 0; s < searchSteps; s++) {
    const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !settled(i));
    if (todo.length === 0) break;
    const found = new Uint8Array(n);
    tf.tidy(() => {
      const at = tf.tensor1d(todo, 'int32');
      run({
        todo, found, at,
        x0: tf.gather(images, at) as tf.Tensor4D,
        y: tf.gather(labels, at) as tf.Tensor1D,
        t: targets ? (tf.gather(targets, at) as tf.Tensor1D) : undefined,
        cs: tf.tensor1d(todo.map((i) => constants.consts[i])),
      });
    });
    for (const i of todo) constants.update(i, found[i] === 1);
  }
}

/**
 * The budgeted form of a least-norm search (pixels 0-1): each found point projected onto the budget
 * ball, kept where it still fools the model, else the clean image. Untargeted it is `projectOrClean`
 * itself, so a sweep's one shared search gives these images bit for bit; targeted, the target must win.
 */
export function budgeted(fn: (x: tf.Tensor4D) => tf.Tensor2D, found: tf.Tensor4D, images: tf.Tensor4D, labels: tf.Tensor1D, budget: Budget, targets: tf.Tensor1D | undefined): tf.Tensor4D {
  if (!targets) return projectOrClean(fn, found, images, labels, budget);
  return tf.tidy(() => {
    const inBall = project(found, images, budget);
    const ok = tf.reshape(tf.greater(gain(fn(inBall), labels, targets), 0), [-1, 1, 1, 1]);
    return tf.where(tf.broadcastTo(ok, images.shape), inBall, images) as tf.Tensor4D;
  });
}

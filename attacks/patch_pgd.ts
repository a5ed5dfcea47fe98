/**
 * Per-image adversarial patches (white-box): every image gets a square of free pixel values of its own,
 * at a place of its own (the localized threat of Karmon, Zoran & Goldberg 2018, "LaVAN", and of Croce et
 * al. 2022's image-specific Sparse-RS patches, here with gradients). Per restart, each image not yet
 * fooled gets a seeded uniform position and a uniform-noise start, then `steps` sign steps of `stepSize`
 * ascending its cross-entropy (targeted: descending the target's) with respect to the patch values, the
 * patch clipped to [0,1]; an image keeps the first patched version that fools it. It is the strongest
 * patch threat the suite measures: the universal patch of attacks/patch.ts must work on every image and
 * anywhere, this one only on its image and where the attacker puts it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../src/data/rng.ts';
import { asLogitsFn, type Classifier } from '../src/types.ts';
import { crossEntropyPerExample } from './loss.ts';
import { applyPatch, drawPlacements } from './patch.ts';
import { subSeed } from './project.ts';
import { checkImages, checkInteger, checkKnownOptions, checkLabels, checkModelOutput, checkPositive } from './validate.ts';

/** Options of the per-image patch attack. */
export interface PatchPgdOptions {
  /** Side of the square patch in pixels, 1 to the image's smaller side. */
  size: number;
  /** Sign steps per restart (default 20). */
  steps?: number;
  /** Step on the 0-1 pixel scale (default 0.1). */
  stepSize?: number;
  /** Random positions tried per image, each from a fresh noise start (default 4). */
  restarts?: number;
  /** Targeted: the class each image should be sent to (default: untargeted). */
  target?: number;
  /** Seed of the positions and starts (default 0). */
  seed?: number;
}

export const PATCH_PGD_OPTIONS = ['size', 'steps', 'stepSize', 'restarts', 'target', 'seed'] as const;

/** What the attack found. */
export interface PatchPgdResult {
  /** The images [n,h,w,c] in [0,1]: patched where the attack succeeded, the clean image elsewhere. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** Per image: 1 = fooled (untargeted: misclassified, the clean misclassified included; targeted: predicted as the target). */
  success: Uint8Array;
  /** Per image the patch's top-left corner, -1 where no patch was kept. */
  rows: Int32Array;
  cols: Int32Array;
}

/** Per-image patches (pixels 0-1) for images [n,h,w,c] with their labels; see the file's comment for the algorithm. */
export function patchPgd(model: Classifier, images: tf.Tensor4D, labels: tf.Tensor1D, options: PatchPgdOptions): PatchPgdResult {
  const name = 'patch-pgd';
  if (options === null || typeof options !== 'object') throw new Error(`${name}: options must be an object with at least size`);
  const o = options;
  checkKnownOptions(o, PATCH_PGD_OPTIONS, name);
  checkInteger(o.size, `${name}: size`, 1);
  if (o.steps !== undefined) checkInteger(o.steps, `${name}: steps`, 1);
  if (o.stepSize !== undefined) checkPositive(o.stepSize, `${name}: stepSize`);
  if (o.restarts !== undefined) checkInteger(o.restarts, `${name}: restarts`, 1);
  if (o.target !== undefined) checkInteger(o.target, `${name}: target`, 0);
  if (o.seed !== undefined) checkInteger(o.seed, `${name}: seed`, 0);
  const n = checkImages(images, `${name}: images`);
  const [, h, w, c] = images.shape;
  if (o.size > Math.min(h, w)) throw new Error(`${name}: size ${o.size} does not fit in ${h}x${w} images`);
  const classes = checkModelOutput(model, images, `${name}: model`);
  checkLabels(labels, n, classes, `${name}: labels`);
  if (o.target !== undefined && o.target >= classes) throw new Error(`${name}: target ${o.target} is not a class of the model (${classes} classes)`);
  const [s, steps, stepSize, restarts, target, seed] = [o.size, o.steps ?? 20, o.stepSize ?? 0.1, o.restarts ?? 4, o.target ?? null, o.seed ?? 0];
  const fn = asLogitsFn(model);
  const y = labels.dataSync();
  const pixels = h * w * c;
  const adv = Float32Array.from(images.dataSync());
  const rows = new Int32Array(n).fill(-1);
  const cols = new Int32Array(n).fill(-1);
  const fooled = (pred: ArrayLike<number>, i: number, k: number) => (target === null ? pred[k] !== y[i] : pred[k] === target);
  const success = new Uint8Array(n);
  const clean = tf.tidy(() => tf.argMax(fn(images), 1).dataSync());
  for (let i = 0; i < n; i++) success[i] = Number(fooled(clean, i, i));
  for (let r = 0; r < restarts; r++) {
    const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !success[i]);
    if (todo.length === 0) break;
    const rng = createRng(subSeed(seed, r));
    const at = drawPlacements(todo.length, h, w, s, rng);
    const m = todo.length;
    const x = tf.tidy(() => tf.gather(images, tf.tensor1d(todo, 'int32')) as tf.Tensor4D);
    const yb = tf.tensor1d(todo.map((i) => (target === null ? y[i] : target)), 'int32');
    let p = tf.tensor4d(Float32Array.from({ length: m * s * s * c }, () => rng.next()), [m, s, s, c]);
    // Keep the patched images that fool their model the first time they do (`pred`: the predictions at the
    // current patches, read off each step's own forward pass, and once more after the last step).
    const keep = (pred: ArrayLike<number>) => {
      const hits = todo.flatMap((i, k) => (!success[i] && fooled(pred, i, k) ? [k] : []));
      if (hits.length === 0) return;
      const made = tf.tidy(() => {
        const pick = tf.tensor1d(hits, 'int32');
        const place = { rows: Int32Array.from(hits, (k) => at.rows[k]), cols: Int32Array.from(hits, (k) => at.cols[k]) };
        return applyPatch(tf.gather(x, pick) as tf.Tensor4D, tf.gather(p, pick) as tf.Tensor4D, place).dataSync();
      });
      hits.forEach((k, j) => {
        const i = todo[k];
        success[i] = 1;
        adv.set(made.subarray(j * pixels, (j + 1) * pixels), i * pixels);
        [rows[i], cols[i]] = [at.rows[k], at.cols[k]];
      });
    };
    try {
      for (let t = 0; t < steps; t++) {
        let pred: ArrayLike<number> = [];
        const next = tf.tidy(() => {
          const g = tf.grad((q: tf.Tensor) => {
            const logits = fn(applyPatch(x, q as tf.Tensor4D, at));
            // The success check at p needs these very logits: no second forward pass.
            pred = tf.argMax(logits, 1).dataSync();
            const ce = tf.sum(crossEntropyPerExample(logits, yb));
            return (target === null ? ce : tf.neg(ce)) as tf.Scalar;
          })(p);
          return tf.clipByValue(tf.add(p, tf.mul(tf.sign(g), stepSize)), 0, 1) as tf.Tensor4D;
        });
        keep(pred);
        p.dispose();
        p = next;
      }
      keep(tf.tidy(() => tf.argMax(fn(applyPatch(x, p, at)), 1).dataSync()));
    } finally {
      tf.dispose([x, yb, p]);
    }
  }
  return { adversarial: tf.tensor4d(adv, images.shape), success, rows, cols };
}

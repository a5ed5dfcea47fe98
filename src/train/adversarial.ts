/**
 * Adversarial training: the inner maximisation of each training step. PGD adversarial training
 * (Madry et al. 2018), its one-step form FGSM with random start (Wong, Rice, Kolter 2020, "Fast is
 * better than free"), each optionally on a fraction of the batch (Goodfellow et al. 2015's mixed
 * batches, as ART's AdversarialTrainer `ratio`), and TRADES (Zhang et al. 2019). The adversarial
 * images are crafted with BatchNorm in inference mode (moving statistics), as the TRADES reference
 * does, so crafting never moves the running statistics; the training loss then runs in training mode.
 * In L1 (`norm=l1`) the PGD steps are SLIDE's (Tramèr & Boneh 2019, who trained against L1 with it).
 * Every iterate goes through attacks/project.ts, the one place the budget is enforced.
 */
import * as tf from '@tensorflow/tfjs';
import { normalSeed } from '../data/rng.ts';
import { l1Direction, l2Direction, linfDirection } from '../../attacks/gradient.ts';
import { runPgd } from '../../attacks/pgd_core.ts';
import { project, subSeed, type Budget } from '../../attacks/project.ts';
import { parseEpsilon } from '../eps.ts';
import type { Norm } from '../types.ts';

/** Inner maximisation: 'pgd' (Madry), 'fgsm-rs' (one random-start step of 1.25·eps), 'trades'. */
export type AdversarialMethod = 'pgd' | 'fgsm-rs' | 'trades';

export const ADVERSARIAL_METHODS: readonly AdversarialMethod[] = ['pgd', 'fgsm-rs', 'trades'];

/** How each training batch is made adversarial (saved in checkpoints and run configs). */
export interface AdversarialTrainingConfig {
  method: AdversarialMethod;
  /** Threat model of the inner maximisation. */
  norm: Norm;
  /** Budget on the 0-1 pixel scale, and the text it was given as ("8/255"). */
  eps: number;
  epsLabel: string;
  /** Gradient steps of the inner maximisation. */
  steps: number;
  /** Step length on the 0-1 scale, in `norm`. */
  stepSize: number;
  /** pgd / fgsm-rs: fraction of each batch replaced by its adversarial images, in (0, 1] (1 = Madry). */
  ratio: number;
  /** trades: weight of the KL term (TRADES' 1/lambda). */
  beta: number;
}

/** Keys accepted in an adversarial-training spec ("pgd:eps=8/255,steps=7"). */
const SPEC_KEYS = ['eps', 'norm', 'steps', 'stepSize', 'ratio', 'beta'] as const;

/**
 * Defaults per method. pgd: 10 steps of 2.5·eps/steps (Madry's rule, as the pgd attack); fgsm-rs: one
 * step of 1.25·eps from a uniform start (Wong et al.); trades: 10 steps of eps/4, beta 6 (TRADES' CIFAR
 * settings: 0.007 for 0.031).
 */
export function adversarialDefaults(method: AdversarialMethod, eps: number): { steps: number; stepSize: number; ratio: number; beta: number } {
  if (method === 'fgsm-rs') return { steps: 1, stepSize: 1.25 * eps, ratio: 1, beta: 6 };
  if (method === 'trades') return { steps: 10, stepSize: eps / 4, ratio: 1, beta: 6 };
  return { steps: 10, stepSize: (2.5 * eps) / 10, ratio: 1, beta: 6 };
}

/** Parse "pgd:eps=8/255,steps=7,stepSize=2/255" (what = the argument's name in errors); eps is required. */
export function parseAdversarialSpec(spec: string, what = '--adversarial'): AdversarialTrainingConfig {
  const s = String(spec ?? '').trim();
  if (!s) throw new Error(`${what}: empty spec; expected e.g. pgd:eps=8/255`);
  const colon = s.indexOf(':');
  const method = (colon >= 0 ? s.slice(0, colon) : s).trim();
  if (!(ADVERSARIAL_METHODS as readonly string[]).includes(method)) {
    throw new Error(`${what}: unknown method "${method}"; expected one of ${ADVERSARIAL_METHODS.join(', ')}`);
  }
  const raw: Record<string, string> = {};
  for (const kv of (colon >= 0 ? s.slice(colon + 1) : '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: "${kv}" is not key=value`);
    const k = kv.slice(0, eq).trim();
    if (!(SPEC_KEYS as readonly string[]).includes(k)) throw new Error(`${what}: unknown option "${k}"; options: ${SPEC_KEYS.join(', ')}`);
    raw[k] = kv.slice(eq + 1).trim();
  }
  if (raw.eps === undefined) throw new Error(`${what}: eps is required (e.g. ${method}:eps=8/255)`);
  const norm = (raw.norm ?? 'linf') as Norm;
  if (norm !== 'linf' && norm !== 'l2' && norm !== 'l1') throw new Error(`${what}: norm must be linf, l2 or l1, got "${raw.norm}"`);
  const eps = parseEpsilon(raw.eps, `${what} eps`, norm);
  const num = (k: string): number | undefined => {
    if (raw[k] === undefined) return undefined;
    // Step sizes may be written like budgets ("2/255").
    if (k === 'stepSize') return parseEpsilon(raw[k], `${what} stepSize`, 'l2').value;
    const v = Number(raw[k]);
    if (raw[k] === '' || !Number.isFinite(v)) throw new Error(`${what}: ${k} is not a number: "${raw[k]}"`);
    return v;
  };
  const steps = num('steps');
  const d = adversarialDefaults(method as AdversarialMethod, eps.value);
  const stepsUsed = steps ?? d.steps;
  const cfg: AdversarialTrainingConfig = {
    method: method as AdversarialMethod,
    norm,
    eps: eps.value,
    epsLabel: eps.label,
    steps: stepsUsed,
    // Madry's rule follows the step count when only the steps are given.
    stepSize: num('stepSize') ?? (method === 'pgd' ? (2.5 * eps.value) / stepsUsed : d.stepSize),
    ratio: num('ratio') ?? d.ratio,
    beta: num('beta') ?? d.beta,
  };
  validateAdversarialConfig(cfg, what);
  return cfg;
}

/** Throw a clear error naming the first bad field of an adversarial-training config. */
export function validateAdversarialConfig(c: AdversarialTrainingConfig, what = 'adversarial'): void {
  if (!(ADVERSARIAL_METHODS as readonly string[]).includes(c.method)) throw new Error(`${what}: unknown method "${c.method}"; expected one of ${ADVERSARIAL_METHODS.join(', ')}`);
  if (c.norm !== 'linf' && c.norm !== 'l2' && c.norm !== 'l1') throw new Error(`${what}: norm must be linf, l2 or l1, got "${c.norm}"`);
  if (!(Number.isFinite(c.eps) && c.eps > 0)) throw new Error(`${what}: eps must be > 0, got ${c.eps}`);
  if (c.norm === 'linf' && c.eps > 1) throw new Error(`${what}: eps ${c.eps} is above 1 on the 0-1 pixel scale`);
  if (!(Number.isInteger(c.steps) && c.steps >= 1)) throw new Error(`${what}: steps must be an integer >= 1, got ${c.steps}`);
  if (c.method === 'fgsm-rs' && c.steps !== 1) throw new Error(`${what}: fgsm-rs takes exactly one step, got steps=${c.steps} (use pgd for more)`);
  if (!(Number.isFinite(c.stepSize) && c.stepSize > 0)) throw new Error(`${what}: stepSize must be > 0, got ${c.stepSize}`);
  if (!(Number.isFinite(c.ratio) && c.ratio > 0 && c.ratio <= 1)) throw new Error(`${what}: ratio must be in (0, 1], got ${c.ratio}`);
  if (c.method === 'trades' && c.ratio !== 1) throw new Error(`${what}: ratio applies to pgd and fgsm-rs only (TRADES uses every image twice)`);
  if (!(Number.isFinite(c.beta) && c.beta >= 0)) throw new Error(`${what}: beta must be >= 0, got ${c.beta}`);
}

/** One line for logs and reports, e.g. "PGD-10 adversarial training, L-inf eps 8/255 (step 0.00784)". */
export function describeAdversarial(c: AdversarialTrainingConfig): string {
  const norm = c.norm === 'linf' ? 'L-inf' : c.norm === 'l2' ? 'L2' : 'L1';
  const step = `step ${Number(c.stepSize.toPrecision(3))}`;
  if (c.method === 'trades') return `TRADES (beta ${c.beta}, ${c.steps} KL-ascent steps, ${step}), ${norm} eps ${c.epsLabel}`;
  const name = c.method === 'fgsm-rs' ? 'FGSM-RS' : `PGD-${c.steps}`;
  const mix = c.ratio < 1 ? `, ${Math.round(c.ratio * 100)}% of each batch adversarial` : '';
  return `${name} adversarial training, ${norm} eps ${c.epsLabel} (${step}${mix})`;
}

/**
 * Metadata saved with a trained model: what its training did (for reports and the paper comparison),
 * adversarial training or Gaussian noise augmentation of standard deviation noiseSd (0-1 scale).
 */
export function trainingMetadata(c: AdversarialTrainingConfig | undefined | null, noiseSd?: number | null): { training: string; adversarial?: AdversarialTrainingConfig; noiseSd?: number } {
  if (c) return { training: describeAdversarial(c), adversarial: c };
  if (noiseSd) return { training: `Gaussian noise augmentation (sigma ${noiseSd})`, noiseSd };
  return { training: 'standard training' };
}

/** Images of a batch that get adversarial: the first round(ratio·n), at least one (batches are shuffled). */
export function adversarialCount(c: AdversarialTrainingConfig, n: number): number {
  return c.method === 'trades' ? n : Math.max(1, Math.min(n, Math.round(c.ratio * n)));
}

/**
 * pgd / fgsm-rs: the batch with its first adversarialCount images replaced by PGD images (uniform
 * random start, seeded), crafted on `logitsFn` with the cross-entropy on logits. Pixels 0-1; new tensor.
 */
export function craftPgdBatch(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  c: AdversarialTrainingConfig,
  seed: number,
): tf.Tensor4D {
  const n = x.shape[0];
  const k = adversarialCount(c, n);
  const opts = { eps: c.eps, steps: c.steps, stepSize: c.stepSize, randomStart: true, seed };
  if (k === n) return runPgd(c.norm, logitsFn, x, y, opts);
  return tf.tidy(() => {
    const adv = runPgd(c.norm, logitsFn, x.slice(0, k), y.slice(0, k), opts);
    return tf.concat([adv, x.slice(k)]) as tf.Tensor4D;
  });
}

/** Per-example KL(softmax(p) || softmax(q)) of two logit batches, shape [batch] (nats, >= 0). */
export function klDivergence(logitsP: tf.Tensor2D, logitsQ: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(logitsP);
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, tf.logSoftmax(logitsQ))), 1) as tf.Tensor1D;
  });
}

/**
 * TRADES' inner maximisation: from x + 0.001·N(0,1) (the KL gradient vanishes at x), `steps` ascent
 * steps on KL(f(x) || f(x')) in `norm` (sign steps for L-inf, normalised gradient for L2, SLIDE's
 * top-1% sparse steps for L1), each projected onto the budget. f(x) is held fixed. Pixels 0-1; new tensor.
 */
export function craftTrades(
  logitsFn: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  c: AdversarialTrainingConfig,
  seed: number,
): tf.Tensor4D {
  const budget: Budget = { norm: c.norm, eps: c.eps };
  const clean = tf.tidy(() => logitsFn(x));
  const direction = (g: tf.Tensor4D, at: tf.Tensor4D) => (c.norm === 'linf' ? linfDirection(g) : c.norm === 'l2' ? l2Direction(g) : l1Direction(g, at, 0.01, true));
  // tfjs' randomNormal treats seed 0 as unseeded: never pass it 0.
  let adv = tf.tidy(() => project(tf.add(x, tf.mul(tf.randomNormal(x.shape, 0, 1, 'float32', normalSeed(seed)), 0.001)) as tf.Tensor4D, x, budget));
  try {
    for (let s = 0; s < c.steps; s++) {
      const next = tf.tidy(() => {
        const grad = tf.grad((xa: tf.Tensor) => tf.sum(klDivergence(clean, logitsFn(xa as tf.Tensor4D))))(adv) as tf.Tensor4D;
        return project(tf.add(adv, tf.mul(direction(grad, adv), c.stepSize)) as tf.Tensor4D, x, budget);
      });
      adv.dispose();
      adv = next;
    }
  } finally {
    clean.dispose();
  }
  return adv;
}

/**
 * TRADES' training objective on logits: mean cross-entropy of the clean logits plus beta times the mean
 * KL(f(x) || f(x')) (nats). Both sides carry gradients, as in the reference.
 */
export function tradesLoss(cleanLogits: tf.Tensor2D, advLogits: tf.Tensor2D, labels: tf.Tensor1D, beta: number): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), cleanLogits.shape[1]);
    const ce = tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(cleanLogits)), 1)));
    return tf.add(ce, tf.mul(tf.mean(klDivergence(cleanLogits, advLogits)), beta)) as tf.Scalar;
  });
}

/**
 * Robust accuracy in [0,1] of `model` (inference mode) over `batches` under PGD in the config's threat
 * model: `steps` steps of 2.5·eps/steps from a random start seeded by (seed, batch), so every epoch is
 * judged on the same starts. What adversarial training is watched by (robust overfitting, Rice et al. 2020).
 */
export async function robustAccuracy(
  model: tf.LayersModel,
  batches: Iterable<{ x: tf.Tensor4D; y: tf.Tensor1D }>,
  c: AdversarialTrainingConfig,
  { steps = 10, seed = 0 }: { steps?: number; seed?: number } = {},
): Promise<{ accuracy: number; correct: number; total: number }> {
  const fn = (t: tf.Tensor4D) => model.apply(t, { training: false }) as tf.Tensor2D;
  let correct = 0;
  let total = 0;
  let b = 0;
  for (const { x, y } of batches) {
    try {
      const adv = runPgd(c.norm, fn, x, y, { eps: c.eps, steps, stepSize: (2.5 * c.eps) / steps, randomStart: true, seed: subSeed(seed, b++) });
      const hit = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(fn(adv), 1), tf.cast(y, 'int32')), 'int32')));
      correct += (await hit.data())[0];
      total += y.shape[0];
      tf.dispose([adv, hit]);
    } finally {
      tf.dispose([x, y]);
    }
  }
  if (total === 0) throw new Error('robustAccuracy: the evaluation data yielded no images');
  return { accuracy: correct / total, correct, total };
}

/** Test images adversarial training is watched on after every epoch (a seeded class-balanced subset). */
export const ROBUST_EVAL_IMAGES = 500;

/** Seed of the inner maximisation for batch `batch` of 0-based `epoch`: a pure function, so resumed runs match. */
export function adversarialSeed(seed: number, epoch: number, batch: number): number {
  return subSeed(subSeed(seed, epoch), batch);
}

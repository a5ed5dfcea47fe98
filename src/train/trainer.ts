/**
 * Joint training of a backbone and its JPEG layer with two optimisers on ONE loss:
 * SGD + momentum + coupled L2 weight decay for the backbone, Adam for the quantisation tables
 * (the reference's train_teacher_cifar_JPEG.py recipe). Seeded, resumable, leak-free.
 */
import * as tf from '@tensorflow/tfjs';
import { SingleBar } from 'cli-progress';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.ts';
import { saveModel } from '../io/model-io.ts';
import { hasCheckpoint, readCheckpoint, saveCheckpoint, setModelWeightArrays } from './checkpoint.ts';
import { deriveSeed, normalSeed } from '../data/rng.ts';
import { adversarialSeed, craftPgdBatch, craftTrades, robustAccuracy, tradesLoss } from './adversarial.ts';
import { describeTraining, stepLr, validateTrainConfig, type TrainConfig } from './config.ts';
import { evaluateCleanModes, type Batch } from './evaluate.ts';
import type { EpochRecord } from './history.ts';
import { clampTables, readTables, splitTrainableVariables } from './jpeg-params.ts';
import { Adam, SgdMomentum } from './optimizers.ts';

/** Training data: the batches of each epoch must be a pure function of (config.seed, epoch). */
export interface TrainData {
  /** Images per epoch. */
  size: number;
  /** Batches for 0-based `epoch`; the trainer disposes each batch. */
  batches(epoch: number, opts: { batchSize: number; seed: number; augment: boolean }): Iterable<Batch>;
}

/** Mean softmax cross-entropy of integer labels on logits (nats). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

/** One model's two optimisers and its training step. */
/** Stream tag of the training noise in deriveSeed (apart from the adversarial start's stream). */
const NOISE_STREAM = 0x6e6f6973;

export class JointTrainer {
  readonly sgd: SgdMomentum;
  readonly adam: Adam | null;
  private readonly backbone: tf.Variable[];
  private readonly jpeg: tf.Variable[];
  /** Seed stream of the adversarial inner maximisation: (config.seed, epoch, batch within the epoch). */
  private epoch = 0;
  private batch = 0;

  constructor(
    readonly model: tf.LayersModel,
    readonly config: TrainConfig,
  ) {
    validateTrainConfig(config);
    const split = splitTrainableVariables(model);
    if (split.backbone.length === 0) throw new Error('JointTrainer: the model has no trainable backbone weights');
    this.backbone = split.backbone;
    this.jpeg = split.jpeg;
    // Weight decay on every backbone parameter (as torch SGD(weight_decay) over the backbone in the reference), none on tables.
    this.sgd = new SgdMomentum(this.backbone, config.lr, config.momentum, this.backbone.map(() => config.weightDecay));
    this.adam = this.jpeg.length > 0 ? new Adam(this.jpeg, config.jpegLr, config.adamBeta1, config.adamBeta2, config.adamEpsilon) : null;
    // The reference clamps q before every forward pass; clamp the initial tables too.
    if (this.jpeg.length > 0) clampTables(this.jpeg);
  }

  /** Learning rates in effect during 0-based `epoch`. */
  ratesAt(epoch: number): { lr: number; jpegLr: number | null } {
    const c = this.config;
    const lr = stepLr(c.lr, epoch, c.milestones, c.gamma);
    const jpegLr = this.adam ? (c.jpegSchedule === 'step' ? stepLr(c.jpegLr, epoch, c.milestones, c.gamma) : c.jpegLr) : null;
    return { lr, jpegLr };
  }

  /** Set both optimisers' learning rates for 0-based `epoch`. */
  setEpoch(epoch: number): void {
    this.epoch = epoch;
    this.batch = 0;
    const r = this.ratesAt(epoch);
    this.sgd.lr = r.lr;
    if (this.adam && r.jpegLr !== null) this.adam.lr = r.jpegLr;
  }

  /**
   * One step on a batch (BatchNorm in training mode): gradients of the mean cross-entropy for all
   * trainable variables at once, then SGD on the backbone, Adam on the tables, tables clamped to
   * [1e-5, 255]. With config.adversarial the batch is first made adversarial (inference mode, seeded by
   * epoch and batch; src/train/adversarial.ts) and the loss is taken on it (TRADES: clean cross-entropy
   * plus beta times the KL to the adversarial logits). Returns the batch loss and number correct (on the
   * images trained on; TRADES: the clean ones); caller disposes; no device read.
   */
  step(x: tf.Tensor4D, y: tf.Tensor1D): { loss: tf.Scalar; correct: tf.Scalar } {
    const adv = this.config.adversarial;
    let input = x;
    let tradesAdv: tf.Tensor4D | null = null;
    if (this.config.noiseSd) {
      // Cohen et al.'s training for randomised smoothing: fresh noise per batch, seeded by (seed, epoch, batch).
      const seed = deriveSeed(this.config.seed, this.epoch, this.batch, NOISE_STREAM);
      input = tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, this.config.noiseSd!, 'float32', normalSeed(seed))) as tf.Tensor4D);
    }
    if (adv) {
      // Crafting runs the live model in inference mode: tfjs BatchNorm updates its moving statistics
      // in training mode, which the attack's forward passes must not do.
      const logitsFn = (t: tf.Tensor4D) => this.model.apply(t, { training: false }) as tf.Tensor2D;
      const seed = adversarialSeed(this.config.seed, this.epoch, this.batch);
      if (adv.method === 'trades') tradesAdv = craftTrades(logitsFn, x, adv, seed);
      else input = craftPgdBatch(logitsFn, x, y, adv, seed);
    }
    this.batch++;
    let correct: tf.Scalar | undefined;
    const vars = [...this.backbone, ...this.jpeg];
    let value: tf.Scalar;
    let grads: tf.NamedTensorMap;
    try {
      ({ value, grads } = tf.variableGrads(() => {
        const logits = this.model.apply(input, { training: true }) as tf.Tensor2D;
        correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32')) as tf.Scalar);
        if (tradesAdv && adv) return tradesLoss(logits, this.model.apply(tradesAdv, { training: true }) as tf.Tensor2D, y, adv.beta);
        return crossEntropy(logits, y);
      }, vars));
    } finally {
      if (input !== x) input.dispose();
      tradesAdv?.dispose();
    }
    const g = (v: tf.Variable) => {
      const t = grads[v.name];
      if (!t) throw new Error(`JointTrainer: no gradient for ${v.name} (is it connected to the loss?)`);
      return t;
    };
    this.sgd.apply(this.backbone.map(g));
    if (this.adam) {
      this.adam.apply(this.jpeg.map(g));
      clampTables(this.jpeg);
    }
    tf.dispose(grads);
    return { loss: value, correct: correct! };
  }

  /** What the step does, for logs: "standard training", the noise or the adversarial recipe. */
  describe(): string {
    return describeTraining(this.config);
  }

  dispose(): void {
    this.sgd.dispose();
    this.adam?.dispose();
  }
}

/** Options of trainModel. */
export interface TrainOptions {
  model: tf.LayersModel;
  data: TrainData;
  config: TrainConfig;
  /** Name shown in the progress bar and logs, e.g. 'baseline' or 'jpeg-dl'. */
  label?: string;
  /** Checkpoint directory, replaced atomically after every epoch. */
  checkpointDir?: string;
  /** history.json path, rewritten atomically after every epoch. */
  historyPath?: string;
  /** Continue from checkpointDir if it holds a checkpoint (config must match). */
  resume?: boolean;
  /** Test batches for the clean accuracy after each epoch (soft and hard for JPEG-DL models). */
  evalData?: () => Iterable<Batch>;
  /**
   * Adversarial training only: test batches on which to measure robust accuracy after every epoch, under
   * PGD-`steps` (default 10) at the training budget, with fixed random starts.
   */
  robustEvalData?: () => Iterable<Batch>;
  robustEvalSteps?: number;
  /**
   * With robustEvalData: save the model here (tfjs format, atomically) whenever an epoch sets a new best
   * robust accuracy, the early stopping against robust overfitting of Rice et al. 2020. `bestModelMeta`
   * goes into its metadata next to the epoch and the accuracy.
   */
  bestModelDir?: string;
  bestModelMeta?: Record<string, unknown>;
  /** Show a cli-progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  /** One line per epoch (used when there is no progress bar). */
  log?: (line: string) => void;
  /** Stop after this many completed epochs without finishing (simulates a kill; for tests). */
  stopAfterEpochs?: number;
}

/** What trainModel did. */
export interface TrainResult {
  history: EpochRecord[];
  /** Epoch the run started from (0 unless resumed). */
  startEpoch: number;
  /** Epochs completed in total. */
  epochsCompleted: number;
  /** True when all config.epochs are done. */
  finished: boolean;
  /** Wall time of this call in seconds. */
  seconds: number;
}

/** Fields whose change makes a checkpoint incompatible with a resumed run. */
const RESUME_KEYS: (keyof TrainConfig)[] = ['epochs', 'batchSize', 'lr', 'momentum', 'weightDecay', 'milestones', 'gamma', 'jpegLr', 'jpegSchedule', 'seed', 'augment', 'adversarial', 'noiseSd'];

function fmt(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

/** Train `model` in place for config.epochs (or resume), checkpointing every epoch. */
export async function trainModel(opts: TrainOptions): Promise<TrainResult> {
  const { model, data, config } = opts;
  validateTrainConfig(config);
  if (!Number.isInteger(data.size) || data.size < 1) throw new Error(`training data: size must be >= 1 image, got ${data.size}`);
  if (opts.resume && !opts.checkpointDir) throw new Error('resume: needs a checkpointDir');
  if (opts.bestModelDir && !opts.robustEvalData) throw new Error('bestModelDir: needs robustEvalData (the best epoch is the one with the highest robust test accuracy)');
  if (opts.robustEvalData && !config.adversarial) throw new Error('robustEvalData: robust accuracy during training needs config.adversarial (its threat model)');
  if (opts.robustEvalSteps !== undefined && !(Number.isInteger(opts.robustEvalSteps) && opts.robustEvalSteps >= 1)) throw new Error(`robustEvalSteps: must be an integer >= 1, got ${opts.robustEvalSteps}`);
  const label = opts.label ?? 'train';
  const t0 = Date.now();
  const trainer = new JointTrainer(model, config);
  let history: EpochRecord[] = [];
  let startEpoch = 0;
  try {
    if (opts.resume && opts.checkpointDir && hasCheckpoint(opts.checkpointDir)) {
      const ck = readCheckpoint(opts.checkpointDir);
      for (const k of RESUME_KEYS) {
        // Absent and null mean the same (checkpoints from before a key existed).
        const was = JSON.stringify(ck.state.config[k] ?? null);
        const now = JSON.stringify(config[k] ?? null);
        if (was !== now) {
          throw new Error(`resume: checkpoint ${opts.checkpointDir} was made with ${k}=${was}, this run has ${now}`);
        }
      }
      setModelWeightArrays(model, ck.weights, `checkpoint ${opts.checkpointDir}`);
      const sgdState = ck.optimizers.get('backbone-sgd');
      if (!sgdState) throw new Error(`checkpoint ${opts.checkpointDir}: no backbone-sgd state`);
      trainer.sgd.setState(sgdState);
      if (trainer.adam) {
        const adamState = ck.optimizers.get('jpeg-adam');
        if (!adamState) throw new Error(`checkpoint ${opts.checkpointDir}: no jpeg-adam state (was it made for a model without a JPEG layer?)`);
        trainer.adam.setState(adamState);
      }
      history = ck.state.history;
      startEpoch = ck.state.epoch;
      opts.log?.(`${label}: resumed from ${opts.checkpointDir} at epoch ${startEpoch}/${config.epochs}`);
    }
    if (config.adversarial || config.noiseSd) opts.log?.(`${label}: ${trainer.describe()}`);
    const batchesPerEpoch = Math.ceil(data.size / config.batchSize);
    const showBar = opts.progress ?? Boolean(process.stderr.isTTY);
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      if (opts.stopAfterEpochs !== undefined && epoch >= opts.stopAfterEpochs) break;
      trainer.setEpoch(epoch);
      const rates = trainer.ratesAt(epoch);
      const bar = showBar
        ? new SingleBar(
            {
              format: `${label} epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {ips} img/s`,
              stream: process.stderr,
              hideCursor: true,
              clearOnComplete: false,
            },
          )
        : null;
      bar?.start(batchesPerEpoch, 0, { epoch: epoch + 1, epochs: config.epochs, loss: '-', acc: '-', ips: '-' });
      let pending: tf.Scalar[] = [];
      let pendingCorrect: tf.Scalar[] = [];
      let lossSum = 0;
      let correctSum = 0;
      let images = 0;
      let imagesRead = 0;
      let batchIndex = 0;
      const te = Date.now();
      const flush = async () => {
        if (pending.length === 0) return;
        const stacked = tf.tidy(() => tf.stack([tf.stack(pending), tf.stack(pendingCorrect)]));
        const vals = (await stacked.data()) as Float32Array;
        const n = pending.length;
        for (let i = 0; i < n; i++) {
          lossSum += vals[i];
          correctSum += vals[n + i];
        }
        tf.dispose([stacked, ...pending, ...pendingCorrect]);
        pending = [];
        pendingCorrect = [];
        imagesRead = images;
      };
      for (const { x, y } of data.batches(epoch, { batchSize: config.batchSize, seed: config.seed, augment: config.augment })) {
        const { loss, correct } = trainer.step(x, y);
        const n = y.shape[0];
        tf.dispose([x, y]);
        // Weight each batch loss by its size so the epoch mean is per image.
        const weighted = tf.mul(loss, n) as tf.Scalar;
        loss.dispose();
        pending.push(weighted);
        pendingCorrect.push(correct);
        images += n;
        batchIndex++;
        if (batchIndex % config.metricsEvery === 0) {
          await flush();
          const secs = (Date.now() - te) / 1000;
          bar?.update(batchIndex, { loss: fmt(lossSum / imagesRead), acc: fmt(correctSum / imagesRead), ips: (images / Math.max(secs, 1e-9)).toFixed(0) });
        } else bar?.update(batchIndex);
      }
      await flush();
      const seconds = (Date.now() - te) / 1000;
      if (images === 0) throw new Error(`training data: epoch ${epoch} yielded no batches`);
      const rec: EpochRecord = {
        epoch: epoch + 1,
        lr: rates.lr,
        jpegLr: rates.jpegLr,
        trainLoss: lossSum / images,
        trainAcc: correctSum / images,
        images,
        seconds,
        imagesPerSec: images / Math.max(seconds, 1e-9),
        tables: readTables(model),
      };
      if (!Number.isFinite(rec.trainLoss)) throw new Error(`${label}: training diverged at epoch ${epoch + 1} (loss ${rec.trainLoss}); lower the learning rate`);
      if (opts.evalData) rec.testAcc = await evaluateCleanModes(model, opts.evalData);
      if (opts.robustEvalData && config.adversarial) {
        const steps = opts.robustEvalSteps ?? 10;
        const r = await robustAccuracy(model, opts.robustEvalData(), config.adversarial, { steps, seed: config.seed });
        rec.testRobustAcc = { attack: `pgd-${steps}`, epsLabel: config.adversarial.epsLabel, n: r.total, accuracy: r.accuracy };
        // Best so far over the history (a resumed run included); ties keep the earlier epoch.
        const best = Math.max(-1, ...history.map((h) => h.testRobustAcc?.accuracy ?? -1));
        if (opts.bestModelDir && r.accuracy > best) {
          await saveModel(model, opts.bestModelDir, { ...opts.bestModelMeta, bestEpoch: rec.epoch, testRobustAcc: rec.testRobustAcc });
          opts.log?.(`${label}: new best robust accuracy ${fmt(r.accuracy)} at epoch ${rec.epoch}, saved to ${opts.bestModelDir}`);
        }
      }
      bar?.update(batchIndex, { loss: fmt(rec.trainLoss), acc: fmt(rec.trainAcc), ips: rec.imagesPerSec.toFixed(0) });
      bar?.stop();
      const testStr = (rec.testAcc ? ' | test ' + Object.entries(rec.testAcc).map(([k, v]) => `${k} ${fmt(v!)}`).join(' ') : '') +
        (rec.testRobustAcc ? ` | robust (${rec.testRobustAcc.attack} at ${rec.testRobustAcc.epsLabel}) ${fmt(rec.testRobustAcc.accuracy)}` : '');
      if (!bar) opts.log?.(`${label} epoch ${epoch + 1}/${config.epochs} | lr ${rates.lr.toExponential(2)} | loss ${fmt(rec.trainLoss)} | acc ${fmt(rec.trainAcc)} | ${rec.imagesPerSec.toFixed(0)} img/s${testStr}`);
      else if (testStr) opts.log?.(`${label} epoch ${epoch + 1}${testStr}`);
      history = [...history, rec];
      if (opts.checkpointDir) {
        const optimizers = [{ name: 'backbone-sgd', state: await trainer.sgd.getState() }];
        if (trainer.adam) optimizers.push({ name: 'jpeg-adam', state: await trainer.adam.getState() });
        await saveCheckpoint(opts.checkpointDir, model, optimizers, {
          epoch: epoch + 1,
          rng: { seed: config.seed, nextEpoch: epoch + 1 },
          config,
          history,
          tables: rec.tables,
        });
      }
      if (opts.historyPath) writeJsonAtomic(opts.historyPath, history);
    }
  } finally {
    trainer.dispose();
  }
  const epochsCompleted = history.length;
  return { history, startEpoch, epochsCompleted, finished: epochsCompleted >= config.epochs, seconds: (Date.now() - t0) / 1000 };
}

/** Conventional layout: <dir>/checkpoint and <dir>/history.json. */
export function trainPaths(dir: string): { checkpointDir: string; historyPath: string } {
  return { checkpointDir: join(dir, 'checkpoint'), historyPath: join(dir, 'history.json') };
}

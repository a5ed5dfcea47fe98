import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { initBackend } from '../../backend.ts';
import { DATASET_NAMES, type DatasetName } from '../../data/types.ts';
import type { JpegLayerArgs } from '../../jpeg/layer.ts';
import { parseAdversarialSpec } from '../../train/adversarial.ts';
import { parseEpsilon } from '../../eps.ts';
import { defaultTrainConfig, referenceLr, scaledMilestones } from '../../train/config.ts';
import { runTrainingJob, type TrainJobSpec } from '../../train/job.ts';

interface TrainCliOptions {
  model: string;
  dataset: string;
  dataDir?: string;
  trainSize?: string;
  testSize?: string;
  imageSize?: string;
  jpeg?: boolean;
  quality?: string;
  tables?: string;
  alpha: string;
  epochs: string;
  batchSize: string;
  lr?: string;
  jpegLr: string;
  jpegSchedule: string;
  weightDecay: string;
  momentum: string;
  seed: string;
  augment: boolean;
  out: string;
  resume?: boolean;
  backend: string;
  progress: boolean;
  adversarial?: string;
  noiseSd?: string;
}

function num(name: string, v: string): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n)) throw new Error(`--${name}: not a number: "${v}"`);
  return n;
}

/** `jpegdl-robust train`: train one baseline or JPEG-DL model with the joint recipe (resumable). */
export function register(program: Command): void {
  program
    .command('train')
    .description('train one model (baseline, or JPEG-DL with --jpeg) with the reference recipe; checkpoints every epoch, --resume continues')
    .requiredOption('--out <dir>', 'output directory (checkpoint/, history.json, model/)')
    .option('--model <name>', 'architecture from the model registry', 'small_cnn')
    .option('--dataset <name>', DATASET_NAMES.join(' | '), 'fashion-mnist-embedded')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--train-size <n>', 'class-balanced training subset size')
    .option('--test-size <n>', 'class-balanced test subset size')
    .option('--image-size <px>', 'resize images to this square size')
    .option('--jpeg', 'prepend the JPEG layer (JPEG-DL variant)')
    .option('--quality <q>', 'initial tables: standard JPEG at this IJG quality (default 50)')
    .option('--tables <file>', 'initial tables: JSON {luma, chroma?} or a run\'s jpeg-init.json')
    .option('--alpha <x>', 'soft-quantiser temperature (fixed)', '5')
    .option('--epochs <n>', 'epochs (milestones at 150/180/210 of 240, scaled)', '240')
    .option('--batch-size <n>', 'batch size', '64')
    .option('--lr <x>', 'backbone SGD learning rate (default 0.05; 0.01 for MobileNetV2/ShuffleNet)')
    .option('--jpeg-lr <x>', 'JPEG-table Adam learning rate', '0.003')
    .option('--jpeg-schedule <s>', 'constant | step', 'constant')
    .option('--weight-decay <x>', 'L2 weight decay on backbone weights', '5e-4')
    .option('--momentum <x>', 'SGD momentum', '0.9')
    .option('--seed <n>', 'seed of init, data order and augmentation', '0')
    .option('--no-augment', 'no random crop / flip')
    .option('--adversarial <spec>', 'adversarial training: pgd | fgsm-rs | trades, then :eps=8/255[,norm=l2|l1][,steps=n][,stepSize=a][,ratio=r][,beta=b] (e.g. pgd:eps=8/255,steps=7)')
    .option('--noise-sd <sigma>', 'Gaussian noise augmentation of this standard deviation (0-1 scale, e.g. 0.25): the base classifier randomised smoothing needs (`certify`)')
    .option('--resume', 'continue from --out/checkpoint')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar (one log line per epoch)')
    .action(async (o: TrainCliOptions) => {
      if (!(DATASET_NAMES as readonly string[]).includes(o.dataset)) throw new Error(`--dataset: unknown dataset "${o.dataset}"; expected one of ${DATASET_NAMES.join(', ')}`);
      const epochs = num('epochs', o.epochs);
      const train = defaultTrainConfig({
        epochs,
        milestones: Number.isInteger(epochs) && epochs >= 1 ? scaledMilestones(epochs) : [],
        batchSize: num('batch-size', o.batchSize),
        lr: o.lr !== undefined ? num('lr', o.lr) : referenceLr(o.model),
        jpegLr: num('jpeg-lr', o.jpegLr),
        jpegSchedule: o.jpegSchedule as 'constant' | 'step',
        weightDecay: num('weight-decay', o.weightDecay),
        momentum: num('momentum', o.momentum),
        seed: num('seed', o.seed),
        augment: o.augment,
        ...(o.adversarial !== undefined ? { adversarial: parseAdversarialSpec(o.adversarial, '--adversarial') } : {}),
        ...(o.noiseSd !== undefined ? { noiseSd: parseEpsilon(o.noiseSd, '--noise-sd', 'l2').value } : {}),
      });
      let jpeg: false | JpegLayerArgs = false;
      if (o.jpeg) {
        jpeg = { alpha: num('alpha', o.alpha) };
        if (o.tables) {
          let parsed: { luma?: number[]; chroma?: number[]; tables?: { luma: number[]; chroma?: number[] } };
          try {
            parsed = JSON.parse(readFileSync(o.tables, 'utf8'));
          } catch (err) {
            throw new Error(`--tables: cannot read ${o.tables}: ${(err as Error).message}`);
          }
          const t = parsed.tables ?? parsed;
          if (!Array.isArray(t.luma)) throw new Error(`--tables: ${o.tables} has no "luma" array (expected {luma, chroma?} or {tables: {...}})`);
          jpeg.tables = { luma: t.luma, ...(t.chroma ? { chroma: t.chroma } : {}) };
        } else jpeg.quality = o.quality !== undefined ? num('quality', o.quality) : 50;
      } else if (o.tables || o.quality) throw new Error('--tables/--quality: only with --jpeg');
      const dataset = {
        name: o.dataset as DatasetName,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
        ...(o.trainSize ? { trainSize: num('train-size', o.trainSize) } : {}),
        ...(o.testSize ? { testSize: num('test-size', o.testSize) } : {}),
        ...(o.imageSize ? { imageSize: num('image-size', o.imageSize) } : {}),
      };
      const spec: TrainJobSpec = { dataset, model: o.model, jpeg: jpeg as false | JpegLayerArgs, modelSeed: train.seed, train, evalBatchSize: 256 };
      // Check everything before loading the backend.
      const { validateTrainConfig } = await import('../../train/config.ts');
      validateTrainConfig(train);
      await initBackend(o.backend);
      const res = await runTrainingJob(spec, o.out, { resume: o.resume, progress: o.progress === false ? false : undefined, log: (l) => console.log(l) });
      const last = res.history[res.history.length - 1];
      console.log(`${res.finished ? 'finished' : 'stopped'}: ${res.epochsCompleted}/${train.epochs} epochs in ${res.outDir}` + (last?.testAcc ? ` | test ${Object.entries(last.testAcc).map(([k, v]) => `${k} ${(100 * v!).toFixed(2)}%`).join(' ')}` : ''));
    });
}

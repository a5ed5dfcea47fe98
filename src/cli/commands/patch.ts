import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { initBackend } from '../../backend.ts';
import type { DatasetName } from '../../data/types.ts';
import { parseDefenceList } from '../../defences/index.ts';
import { runPatchJob } from '../../patch/job.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';
import { collect, intOption, list, numberOption } from '../options.ts';

/** `jpegdl-robust patch`: adversarial patches, each model's own and transferred, at random and worst positions (resumable). */
export function register(program: Command): void {
  program
    .command('patch')
    .description('adversarial patches (one square of free pixels pasted anywhere on every image; Brown et al. 2017): fitted per model and size on training images, scored on held-out test images for every model (own and transfer) at a random position and at the worst position of a grid; writes patch.{md,html,json,txt} and a picture of the patches (resumable)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--defence <list>', 'also evaluate each baseline behind input defences (as evaluate --defence), comma-separated')
    .option('--sizes <list>', 'patch sides in pixels, comma-separated', '4,6,8')
    .option('--epochs <n>', 'passes over the fit images', '10')
    .option('--fit-batch-size <n>', 'images per gradient step', '32')
    .option('--step-size <x>', 'first sign step on the 0-1 pixel scale', '0.05')
    .option('--step-decay <x>', 'step factor per pass, in (0, 1]', '0.8')
    .option('--beta <x>', 'cross-entropy clamp per image (nats)', '10')
    .option('--target <class>', 'targeted patch towards this class index')
    .option('--grid-stride <n>', 'worst position over a grid of corners this many pixels apart (default: the patch side; 0: no grid)')
    .option('--per-image', 'also attack every test image with a patch of its own at a place of its own (white-box; hard JPEG through BPDA)')
    .option('--per-image-steps <n>', 'per-image attack: sign steps per place', '20')
    .option('--per-image-restarts <n>', 'per-image attack: random places tried per image', '4')
    .option('--per-image-step-size <x>', 'per-image attack: step on the 0-1 pixel scale', '0.1')
    .option('--no-noise', 'do not also score a patch of uniform noise of each size (the occlusion control)')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('-n, --n <n>', 'held-out test images (class-balanced seeded subset)', '500')
    .option('--fit-n <n>', 'training images the patches are fitted on (class-balanced seeded subset)', '1000')
    .option('--jpeg-modes <list>', 'modes JPEG-DL models are evaluated in: soft, hard', 'soft,hard')
    .option('--craft-modes <list>', 'modes JPEG-DL models are fitted through: soft, bpda-identity, bpda-soft, hard', 'soft')
    .option('--batch-size <n>', 'images per forward pass when scoring', '100')
    .option('--seed <n>', 'seed of the subsets, the fitting and the positions', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl, patches/, patch.{md,html,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; noise: boolean; perImage?: boolean; perImageSteps: string; perImageRestarts: string; perImageStepSize: string; run?: string; baseline?: string[]; jpegDl?: string[]; defence?: string; sizes: string; epochs: string; fitBatchSize: string; stepSize: string; stepDecay: string; beta: string; target?: string; gridStride?: string; dataset?: string; dataDir?: string; n: string; fitN: string; jpegModes: string; craftModes: string; batchSize: string; seed: string; out: string; backend: string }) => {
      const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        sizes: list(o.sizes).map((s) => intOption(s, '--sizes') as number),
        epochs: intOption(o.epochs, '--epochs'),
        batchSize: intOption(o.fitBatchSize, '--fit-batch-size'),
        stepSize: numberOption(o.stepSize, '--step-size'),
        stepDecay: numberOption(o.stepDecay, '--step-decay'),
        beta: numberOption(o.beta, '--beta'),
        ...(o.target === undefined ? {} : { target: intOption(o.target, '--target') }),
        ...(o.gridStride === undefined ? {} : { gridStride: intOption(o.gridStride, '--grid-stride') }),
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        n: intOption(o.n, '-n'),
        fitN: intOption(o.fitN, '--fit-n'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        craftModes: list(o.craftModes) as JpegMode[],
        evalBatchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        noise: o.noise !== false,
        ...(o.perImage ? { perImage: { steps: intOption(o.perImageSteps, '--per-image-steps'), restarts: intOption(o.perImageRestarts, '--per-image-restarts'), stepSize: numberOption(o.perImageStepSize, '--per-image-step-size') } } : {}),
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'patch [{bar}] {value}/{total} cells', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runPatchJob({ ...opts, onCell: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}${res.files.picture ? `\npicture: ${res.files.picture}` : ''}\nrecords: ${res.files.records}\npatches: ${res.files.patches}`);
    });
}

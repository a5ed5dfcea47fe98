import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { UniversalMethod } from '../../../attacks/universal.ts';
import { initBackend } from '../../backend.ts';
import type { DatasetName } from '../../data/types.ts';
import { parseDefenceList } from '../../defences/index.ts';
import { parseEpsilonList } from '../../eps.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';
import type { Norm } from '../../types.ts';
import { runUniversalJob } from '../../universal/job.ts';
import { collect, intOption, list, numberOption } from '../options.ts';

/** `jpegdl-robust universal`: universal adversarial perturbations, each model's own and transferred (resumable). */
export function register(program: Command): void {
  program
    .command('universal')
    .description('universal adversarial perturbations (one pattern for every image; Moosavi-Dezfooli et al. 2017, Shafahi et al. 2020): fitted per model and eps on training images, scored on held-out test images for every model (own and transfer); writes universal.{md,html,json,txt} and a picture of the perturbations (resumable)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--defence <list>', 'also evaluate each baseline behind input defences (as evaluate --defence), comma-separated')
    .option('--eps <list>', 'budgets on the 0-1 scale, e.g. 4/255,8/255 (L2: 0.5,1)', '4/255,8/255,16/255,32/255')
    .option('--norm <norm>', 'linf | l2', 'linf')
    .option('--method <name>', 'sgd (Shafahi et al. 2020) | deepfool (Moosavi-Dezfooli et al. 2017; about 0.4 s per image and pass on a small ResNet here)', 'sgd')
    .option('--epochs <n>', 'passes over the fit images (deepfool: at most)', '10')
    .option('--fit-batch-size <n>', 'sgd: images per gradient step', '32')
    .option('--step-fraction <x>', 'sgd: first step as a fraction of eps', '0.25')
    .option('--step-decay <x>', 'sgd: step factor per pass, in (0, 1]', '0.8')
    .option('--beta <x>', 'sgd: cross-entropy clamp per image (nats)', '10')
    .option('--target <class>', 'targeted universal perturbation towards this class index (sgd)')
    .option('--fooling-rate <x>', 'deepfool: stop once this fraction of the fit images is fooled', '0.8')
    .option('--no-constants', 'do not also score the constant shifts +eps and -eps of every pixel (the trivial universal perturbations)')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('-n, --n <n>', 'held-out test images (class-balanced seeded subset)', '500')
    .option('--fit-n <n>', 'training images the perturbations are fitted on (class-balanced seeded subset)', '1000')
    .option('--jpeg-modes <list>', 'modes JPEG-DL models are evaluated in: soft, hard', 'soft,hard')
    .option('--craft-modes <list>', 'modes JPEG-DL models are fitted through: soft, bpda-identity, bpda-soft, hard', 'soft')
    .option('--batch-size <n>', 'images per forward pass when scoring', '100')
    .option('--seed <n>', 'seed of the subsets and of the fitting order', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl, perturbations/, universal.{md,html,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; constants: boolean; run?: string; baseline?: string[]; jpegDl?: string[]; defence?: string; eps: string; norm: string; method: string; epochs: string; fitBatchSize: string; stepFraction: string; stepDecay: string; beta: string; target?: string; foolingRate: string; dataset?: string; dataDir?: string; n: string; fitN: string; jpegModes: string; craftModes: string; batchSize: string; seed: string; out: string; backend: string }) => {
      if (o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`--norm: a universal perturbation is linf or l2, got "${o.norm}"`);
      const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        epsilons: parseEpsilonList(o.eps, '--eps', o.norm as Norm),
        norm: o.norm as Norm,
        method: o.method as UniversalMethod,
        epochs: intOption(o.epochs, '--epochs'),
        batchSize: intOption(o.fitBatchSize, '--fit-batch-size'),
        stepFraction: numberOption(o.stepFraction, '--step-fraction'),
        stepDecay: numberOption(o.stepDecay, '--step-decay'),
        beta: numberOption(o.beta, '--beta'),
        ...(o.target === undefined ? {} : { target: intOption(o.target, '--target') }),
        foolingRate: numberOption(o.foolingRate, '--fooling-rate'),
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        n: intOption(o.n, '-n'),
        fitN: intOption(o.fitN, '--fit-n'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        craftModes: list(o.craftModes) as JpegMode[],
        evalBatchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        constants: o.constants !== false,
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'universal [{bar}] {value}/{total} cells', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runUniversalJob({ ...opts, onCell: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}${res.files.examples ? `\npicture: ${res.files.examples}` : ''}\nrecords: ${res.files.records}\nperturbations: ${res.files.perturbations}`);
    });
}

import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { collect, intList, intOption, list } from '../options.ts';
import { initBackend } from '../../backend.ts';
import { runCorruptionJob } from '../../corruptions/job.ts';
import { parseDefenceList } from '../../defences/index.ts';
import type { DatasetName } from '../../data/types.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';

/** `jpegdl-robust corruptions`: accuracy under common corruptions (CIFAR-10-C style), resumable. */
export function register(program: Command): void {
  program
    .command('corruptions')
    .description('accuracy of saved models under common corruptions (noise, blur, fog, contrast, JPEG, ...) at severities 1-5, generated here with CIFAR-10-C\'s constants; writes corruptions.{md,html,json,txt} and an example picture (resumable)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images (class-balanced seeded subset)', '1000')
    .option('--corruptions <list>', 'comma-separated names (default: all available for the images)')
    .option('--severities <list>', 'comma-separated severities 1-5', '1,2,3,4,5')
    .option('--jpeg-modes <list>', 'modes for JPEG-DL models: soft, hard', 'soft,hard')
    .option('--defence <list>', 'also evaluate each baseline behind input defences: jpeg:<quality 1-100>, rjpeg:<lo>-<hi>[:block][:draws=k], rrp:<lo>-<hi>[:bilinear][:draws=k], tvm:<drop>[:<weight>][:draws=k], bits:<1-8>, median:<2-5>, comma-separated (as evaluate --defence)')
    .option('--batch-size <n>', 'images per forward pass', '100')
    .option('--seed <n>', 'seed of the subset and of the corruption noise', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl + corruptions.{md,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; run?: string; baseline?: string[]; jpegDl?: string[]; dataset?: string; dataDir?: string; split: string; n: string; corruptions?: string; severities: string; jpegModes: string; defence?: string; batchSize: string; seed: string; out: string; backend: string }) => {
            const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        split: o.split as 'test' | 'train',
        n: intOption(o.n, '-n'),
        corruptions: o.corruptions === undefined ? undefined : list(o.corruptions),
        severities: intList(o.severities, '--severities'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        batchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'corruptions [{bar}] {value}/{total} cells', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runCorruptionJob({ ...opts, onCell: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}\nexamples: ${res.files.examples}\nrecords: ${res.files.records}`);
    });
}

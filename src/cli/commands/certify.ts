import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { collect, intOption, list } from '../options.ts';
import { initBackend } from '../../backend.ts';
import { DEFAULT_RADII, runCertifyJob } from '../../certify/job.ts';
import { SMOOTHING_DEFAULTS } from '../../certify/smoothing.ts';
import { parseDefenceList } from '../../defences/index.ts';
import type { DatasetName } from '../../data/types.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';

/** `jpegdl-robust certify`: certified L2 accuracy by randomised smoothing, resumable. */
export function register(program: Command): void {
  program
    .command('certify')
    .description('certified L2 robustness by randomised smoothing (Cohen et al. 2019): per image the smoothed classifier\'s class and a radius that holds with probability 1 - alpha; certified accuracy per radius in certify.{md,html,json,txt} (resumable per image)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--defence <list>', 'also certify each baseline behind input defences (as evaluate --defence: jpeg:<q>, rjpeg:<lo>-<hi>, rrp:<lo>-<hi>, tvm:<drop>, bits:<b>, median:<k>), comma-separated')
    .requiredOption('--sigma <list>', 'noise standard deviations on the 0-1 scale, comma-separated (e.g. 0.12,0.25,0.5 or 64/255)')
    .option('--radii <list>', 'L2 radii of the table (0-1 scale), increasing', DEFAULT_RADII)
    .option('--n0 <n>', 'noise samples that select the class', String(SMOOTHING_DEFAULTS.n0))
    .option('--samples <n>', 'noise samples that bound its probability (Cohen et al. used 100000)', String(SMOOTHING_DEFAULTS.n))
    .option('--alpha <p>', 'probability that a certificate is wrong', String(SMOOTHING_DEFAULTS.alpha))
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images (class-balanced seeded subset)', '100')
    .option('--jpeg-modes <list>', 'modes for JPEG-DL models: soft, hard', 'soft,hard')
    .option('--batch-size <n>', 'noisy copies per forward pass', String(SMOOTHING_DEFAULTS.batchSize))
    .option('--seed <n>', 'seed of the subset and of the noise', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl + certify.{md,html,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; run?: string; baseline?: string[]; jpegDl?: string[]; defence?: string; sigma: string; radii: string; n0: string; samples: string; alpha: string; dataset?: string; dataDir?: string; split: string; n: string; jpegModes: string; batchSize: string; seed: string; out: string; backend: string }) => {
      const alpha = Number(o.alpha);
      if (o.alpha.trim() === '' || !Number.isFinite(alpha)) throw new Error(`--alpha: not a number: "${o.alpha}"`);
      const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        split: o.split as 'test' | 'train',
        n: intOption(o.n, '-n'),
        sigmas: list(o.sigma),
        radii: list(o.radii),
        n0: intOption(o.n0, '--n0'),
        samples: intOption(o.samples, '--samples'),
        alpha,
        batchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'certify [{bar}] {value}/{total} images x models x sigmas | eta {eta_formatted}', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runCertifyJob({ ...opts, onImage: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}\nrecords: ${res.files.records}`);
    });
}

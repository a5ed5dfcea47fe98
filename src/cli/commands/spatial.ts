import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { initBackend } from '../../backend.ts';
import type { DatasetName } from '../../data/types.ts';
import { parseDefenceList } from '../../defences/index.ts';
import { runSpatialJob } from '../../spatial/job.ts';
import type { SpatialFill, SpatialInterpolation } from '../../spatial/transform.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';
import { collect, intOption, list, numberOption } from '../options.ts';

/** `jpegdl-robust spatial`: accuracy under rotations and shifts (Engstrom et al. 2019), resumable. */
export function register(program: Command): void {
  program
    .command('spatial')
    .description('spatial robustness of saved models (Engstrom et al. 2019): accuracy under every rotation and shift of a grid and under random draws, worst case per image; writes spatial.{md,html,json,txt} and an example picture (resumable)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--defence <list>', 'also evaluate each baseline behind input defences (as evaluate --defence), comma-separated')
    .option('--max-rotation <deg>', 'largest rotation either way, degrees', '30')
    .option('--rotations <n>', 'rotation values from -max to +max', '31')
    .option('--max-translation <px>', 'largest shift either way along each axis, pixels', '3')
    .option('--translations <n>', 'shift values per axis from -max to +max', '5')
    .option('--samples <k>', 'random transforms per image (worst-of-k; 0 for none)', '10')
    .option('--fill <mode>', 'uncovered pixels: zeros (black) | edge | reflect', 'zeros')
    .option('--interpolation <mode>', 'bilinear | nearest', 'bilinear')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images (class-balanced seeded subset)', '500')
    .option('--jpeg-modes <list>', 'modes for JPEG-DL models: soft, hard', 'soft,hard')
    .option('--batch-size <n>', 'images per forward pass', '100')
    .option('--seed <n>', 'seed of the subset and of the random draws', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl + spatial.{md,html,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; run?: string; baseline?: string[]; jpegDl?: string[]; defence?: string; maxRotation: string; rotations: string; maxTranslation: string; translations: string; samples: string; fill: string; interpolation: string; dataset?: string; dataDir?: string; split: string; n: string; jpegModes: string; batchSize: string; seed: string; out: string; backend: string }) => {
      const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        maxRotation: numberOption(o.maxRotation, '--max-rotation'),
        rotations: intOption(o.rotations, '--rotations'),
        maxTranslation: numberOption(o.maxTranslation, '--max-translation'),
        translations: intOption(o.translations, '--translations'),
        samples: intOption(o.samples, '--samples'),
        fill: o.fill as SpatialFill,
        interpolation: o.interpolation as SpatialInterpolation,
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        split: o.split as 'test' | 'train',
        n: intOption(o.n, '-n'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        batchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'spatial [{bar}] {value}/{total} cells', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runSpatialJob({ ...opts, onCell: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}\nexamples: ${res.files.examples}\nrecords: ${res.files.records}`);
    });
}

import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { LossName } from '../../../attacks/loss.ts';
import { initBackend } from '../../backend.ts';
import type { DatasetName } from '../../data/types.ts';
import { parseDefenceList } from '../../defences/index.ts';
import { runDiagnoseJob } from '../../diagnose/job.ts';
import { parseEpsilon } from '../../eps.ts';
import type { JpegMode } from '../../train/jpeg-params.ts';
import { collect, intList, intOption, list } from '../options.ts';

/** `jpegdl-robust diagnose`: gradient-masking diagnostics (Carlini et al. 2019's checklist, measured), resumable. */
export function register(program: Command): void {
  program
    .command('diagnose')
    .description('gradient-masking diagnostics of saved models: zero gradients, finite differences against the gradient, the gradient step against random steps, loss surfaces, the attack\'s convergence over steps and an unbounded attack that must reach 0%; writes diagnose.{md,html,json,txt} (resumable)')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (its models and dataset)')
    .option('--baseline <dir>', 'baseline model directory (repeatable)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL model directory (repeatable)', collect)
    .option('--defence <list>', 'also diagnose each baseline behind input defences (as evaluate --defence), comma-separated')
    .option('--eps <eps>', 'L-inf budget of the probes and the convergence curve (0-1 scale, 8/255 accepted)', '8/255')
    .option('--loss <name>', 'objective on logits: margin | ce | dlr', 'margin')
    .option('--directions <k>', 'random sign directions per image', '8')
    .option('--fd-step <h>', 'finite-difference step (0-1 scale, 1/255 accepted)', '1/255')
    .option('--surfaces <k>', 'images with a loss surface in the report (0 for none)', '2')
    .option('--surface-size <k>', 'grid points per side of a loss surface', '21')
    .option('--attack <name>', 'L-inf attack of the convergence curve (pgd, apgd, bpda-pgd)', 'pgd')
    .option('--steps <list>', 'step counts of the convergence curve, comma-separated', '1,2,5,10,20,50,100')
    .option('--restarts <k>', 'also run the attack at the largest step count with k restarts, each image keeping its worst case (1: no such run)', '1')
    .option('--unbounded-eps <eps>', 'budget of the unbounded check, run with the largest step count (0 skips it)', '1')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images (class-balanced seeded subset)', '100')
    .option('--jpeg-modes <list>', 'modes for JPEG-DL models: soft, hard, bpda-identity, bpda-soft', 'soft,hard,bpda-identity')
    .option('--batch-size <n>', 'images per batch', '100')
    .option('--seed <n>', 'seed of the subset, the random directions and the attacks', '0')
    .requiredOption('--out <dir>', 'output directory (records.jsonl + diagnose.{md,html,json,txt}); rerun with the same --out to resume')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { progress: boolean; run?: string; baseline?: string[]; jpegDl?: string[]; defence?: string; eps: string; loss: string; directions: string; fdStep: string; surfaces: string; surfaceSize: string; attack: string; steps: string; restarts: string; unboundedEps: string; dataset?: string; dataDir?: string; split: string; n: string; jpegModes: string; batchSize: string; seed: string; out: string; backend: string }) => {
      const eps = parseEpsilon(o.eps, '--eps');
      const opts = {
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        defences: o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence'),
        eps: eps.value,
        epsLabel: eps.label,
        loss: o.loss as LossName,
        directions: intOption(o.directions, '--directions'),
        fdStep: parseEpsilon(o.fdStep, '--fd-step').value,
        surfaces: intOption(o.surfaces, '--surfaces'),
        surfaceSize: intOption(o.surfaceSize, '--surface-size'),
        attack: o.attack,
        steps: o.steps.trim() === '' ? [] : intList(o.steps, '--steps'),
        unboundedEps: parseEpsilon(o.unboundedEps, '--unbounded-eps').value,
        restarts: intOption(o.restarts, '--restarts'),
        dataset: { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        split: o.split as 'test' | 'train',
        n: intOption(o.n, '-n'),
        jpegModes: list(o.jpegModes) as JpegMode[],
        batchSize: intOption(o.batchSize, '--batch-size'),
        seed: intOption(o.seed, '--seed'),
        out: o.out,
      };
      await initBackend(o.backend);
      const bar = o.progress !== false && process.stderr.isTTY ? new SingleBar({ format: 'diagnose [{bar}] {value}/{total} records', stream: process.stderr, hideCursor: true }) : null;
      let res;
      try {
        res = await runDiagnoseJob({ ...opts, onCell: (done, total) => (done === 1 ? bar?.start(total, done) : bar?.update(done)) });
      } finally {
        bar?.stop();
      }
      console.log(res.terminal);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}\nrecords: ${res.files.records}`);
    });
}

import type { Command } from 'commander';
import { collect } from '../options.ts';
import { initBackend } from '../../backend.ts';
import type { DatasetName } from '../../data/types.ts';
import { parseDefenceList } from '../../defences/index.ts';
import { DEFAULT_EPSILONS, evaluate, evaluateAttackNames } from '../../eval/evaluate.ts';
import { parseWorkers } from '../../parallel/workers.ts';


/** A comma-separated list of JPEG qualities, each checked to be a number (the range is checked by evaluate). */
function parseQualities(list: string): number[] {
  return list.split(',').map((s) => {
    const v = Number(s.trim());
    if (s.trim() === '' || !Number.isFinite(v)) throw new Error(`--jpeg-defence: "${s.trim()}" is not a number (give IJG qualities 1-100, e.g. 75 or 50,75)`);
    return v;
  });
}

/** `jpegdl-robust evaluate`: sweep checkpoints over attacks x eps and write the report. */
export function register(program: Command): void {
  program
    .command('evaluate')
    .description('attack trained checkpoints across attacks and eps (resumable) and write report.{md,html,json}')
    .option('--run <dir>', 'run directory of `jpegdl-robust run` (models, dataset and eval settings)')
    .option('--baseline <dir>', 'baseline checkpoint directory (repeat for separately trained seeds)', collect)
    .option('--jpeg-dl <dir>', 'JPEG-DL checkpoint directory (repeat for separately trained seeds)', collect)
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images to evaluate (class-balanced seeded subset; default 500 or the run\'s)')
    .option('--eps <list>', `comma-separated eps on the 0-1 scale (default ${DEFAULT_EPSILONS}): the L-inf attacks' budgets, or the attacks' one norm's when they share one`)
    .option('--eps-l2 <list>', 'budgets of the L2 attacks when L-inf and L2 attacks run together (sizes sum over pixels), e.g. 0,0.25,0.5,1')
    .option('--eps-l1 <list>', 'budgets of the L1 attacks when they run with attacks of another norm, e.g. 0,2,4,8')
    .option('--eps-l0 <list>', 'budgets of the L0 attacks (numbers of changed pixels) when they run with attacks of another norm, e.g. 0,1,5,10')
    .option('--attack <spec>', `attack as name[:key=value,...], repeatable (default fgsm, pgd); known: ${evaluateAttackNames().join(', ')}`, collect)
    .option('--jpeg-modes <list>', 'quantiser modes for JPEG-DL models (and JPEG and randomised JPEG defences)', 'soft,hard')
    .option('--jpeg-defence <qualities>', 'also evaluate each baseline behind fixed real JPEG compression at these IJG qualities (the classic input-transformation defence; model jpeg-q<q>), e.g. 75 or 50,75')
    .option('--defence <list>', 'also evaluate each baseline behind input defences, comma-separated: jpeg:<quality 1-100>, rjpeg:<lo>-<hi>[:block] (JPEG at a random quality per image or 8x8 block; attack it with eotSamples=k), rrp:<lo>-<hi>[:bilinear] (random resize to a side of lo..hi pixels, random zero padding to hi, back to the input size; eotSamples=k), tvm:<drop share>[:<weight>] (random pixel dropout and total variation minimisation, Guo et al. 2018; default weight 0.03; bpda-pgd with eotSamples=k); any randomised one may end in :draws=k (predict by the mean softmax over k draws, model name ...-avg<k>), bits:<1-8> (colour bit-depth reduction), median:<2-5> (k x k median filter); models jpeg-q75, rjpeg-q50-90, rrp-28-32, tvm-0.5-0.03, bits-5, median-2x2; e.g. jpeg:75,rjpeg:50-90,bits:5,median:2')
    .option('--examples <k>', 'draw adversarial examples of each model on the first k images (the attack that left the fewest correct at the largest eps), shown in the report', '0')
    .option('--seed <n>', 'seed of the image subset and attack randomness')
    .option('--batch-size <n>', 'images per attack batch')
    .option('--out <dir>', 'output directory (records.jsonl + report); rerun with the same --out to resume')
    .option('--title <text>', 'report title')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--workers <n>', 'worker processes attacking batches in parallel (same records for any count); auto = one per core within free memory (1 GB each; 1 on GPU)', 'auto')
    .option('--no-progress', 'no progress bar')
    .action(async (o: { run?: string; baseline?: string[]; jpegDl?: string[]; dataset?: string; dataDir?: string; split: string; n?: string; eps?: string; epsL2?: string; epsL1?: string; epsL0?: string; attack?: string[]; jpegModes: string; jpegDefence?: string; defence?: string; examples: string; seed?: string; batchSize?: string; out?: string; title?: string; backend: string; workers: string; progress: boolean }) => {
      // Parsed before the backend loads: a typo costs nothing.
      const defences = o.defence === undefined ? undefined : parseDefenceList(o.defence, '--defence');
      if (!/^\s*\d+\s*$/.test(o.examples)) throw new Error(`--examples: must be a non-negative integer (images per picture), got "${o.examples}"`);
      const info = await initBackend(o.backend);
      const workers = parseWorkers(o.workers, info.name);
      const dataset = { ...(o.dataset ? { name: o.dataset as DatasetName } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) };
      const res = await evaluate({
        run: o.run,
        baseline: o.baseline,
        jpegdl: o.jpegDl,
        dataset: Object.keys(dataset).length ? dataset : undefined,
        split: o.split as 'test' | 'train',
        n: o.n === undefined ? undefined : Number(o.n),
        eps: o.eps,
        epsL2: o.epsL2,
        epsL1: o.epsL1,
        epsL0: o.epsL0,
        attacks: o.attack,
        jpegModes: o.jpegModes.split(',').map((s) => s.trim()).filter(Boolean),
        jpegDefence: o.jpegDefence === undefined ? undefined : parseQualities(o.jpegDefence),
        defences,
        examples: Number(o.examples),
        seed: o.seed === undefined ? undefined : Number(o.seed),
        batchSize: o.batchSize === undefined ? undefined : Number(o.batchSize),
        out: o.out,
        title: o.title,
        progress: o.progress === false ? false : undefined,
        workers,
        command: `jpegdl-robust ${process.argv.slice(2).join(' ')}`,
      });
      console.log(res.terminal);
      console.log(`${res.ran} cell(s) run, ${res.skipped} already done`);
      console.log(`report: ${res.files.markdown}\n        ${res.files.html}\n        ${res.files.json}\nrecords: ${res.files.records}`);
    });
}

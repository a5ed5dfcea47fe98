import type { Command } from 'commander';
import { initBackend } from '../../backend.ts';
import { resolveRunConfig, type RunOverrides } from '../../run/options.ts';
import { PRESET_NAMES } from '../../run/presets.ts';
import { runJob } from '../../run/pipeline.ts';
import { parseWorkers } from '../../parallel/workers.ts';

/** `jpegdl-robust run`: train baseline + JPEG-DL, attack both, write the report. */
export function register(program: Command): void {
  program
    .command('run')
    .description('the main job: train a baseline and its JPEG-DL twin, attack both (FGSM, PGD, BPDA) across eps, write the report')
    .option('--preset <name>', `one of ${PRESET_NAMES.join(', ')}`, 'default')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--model <name>', 'architecture from the model registry (see `jpegdl-robust models`)')
    .option('--epochs <n>', 'training epochs (milestones rescaled: 150/180/210 of 240)')
    .option('--batch-size <n>', 'training batch size')
    .option('--lr <x>', 'backbone SGD learning rate')
    .option('--jpeg-lr <x>', 'JPEG-table Adam learning rate')
    .option('--train-size <n>', 'class-balanced training subset size')
    .option('--test-size <n>', 'class-balanced test subset size')
    .option('--eval-n <n>', 'test images attacked')
    .option('--eps <list>', 'comma-separated epsilons on the 0-1 scale, e.g. 0,1/255,2/255')
    .option('--seed <n>', 'seed of model init, data order and attacks')
    .option('--jpeg-init <method>', 'sensitivity | standard')
    .option('--q-max <x>', 'largest luma step of the sensitivity initialisation')
    .option('--adversarial <spec>', 'train both models adversarially: pgd | fgsm-rs | trades, then :eps=8/255[,norm=l2|l1][,steps=n][,stepSize=a][,ratio=r][,beta=b] (e.g. pgd:eps=8/255,steps=7)')
    .option('--noise-sd <sigma>', 'train both models with Gaussian noise augmentation of this standard deviation (0-1 scale, e.g. 0.25), the base classifiers randomised smoothing needs (`certify`)')
    .option('--defence <list>', 'also evaluate the trained baseline behind input defences, comma-separated as evaluate --defence takes them (jpeg:75, rjpeg:50-90, rrp:24-28, tvm:0.5, bits:5, median:2; JPEG ones in hard mode), with every attack of the run')
    .option('--certify <sigmas>', 'also certify both models by randomised smoothing at these noise levels (0-1 scale, comma-separated, e.g. 0.25; train with --noise-sd for meaningful certificates); writes <run>/certify/')
    .option('--certify-n <n>', 'test images for --certify (default 100)')
    .option('--certify-samples <n>', 'noise samples per certificate for --certify (default 10000)')
    .option('--spatial', 'also measure both models under rotations and shifts (Engstrom et al.\'s grid: 31 rotations in ±30° x 5 x 5 shifts in ±3 px, and worst-of-10 random; writes <run>/spatial/)')
    .option('--spatial-n <n>', 'test images for --spatial (default 500)')
    .option('--universal', 'also fit universal perturbations (one pattern for every image; Shafahi et al. 2020) on 1,000 training images per model and eps, JPEG-DL through its soft layer and through BPDA, and score both models on test images with every perturbation and uniform ±eps; writes <run>/universal/')
    .option('--universal-n <n>', 'test images for --universal (default 500)')
    .option('--patch', 'also fit adversarial patches (one square of free pixels pasted anywhere; Brown et al. 2017) of 4, 6 and 8 pixels on 1,000 training images per model, JPEG-DL through its soft layer and through BPDA, and score both models on test images at a random and at the worst grid position, with a noise patch as the control; writes <run>/patch/')
    .option('--patch-n <n>', 'test images for --patch (default 500)')
    .option('--diagnose', 'also diagnose both models for gradient masking (zero gradients, finite differences, gradient vs random steps, loss surfaces, PGD convergence over 1-100 steps, an unbounded PGD that must reach 0%; JPEG-DL soft, hard and BPDA; writes <run>/diagnose/)')
    .option('--diagnose-n <n>', 'test images for --diagnose (default 100)')
    .option('--corruptions', 'also measure both models under the common corruptions (17 CIFAR-10-C corruptions x 5 severities; writes <run>/corruptions/)')
    .option('--corruption-n <n>', 'test images for --corruptions (default 1000)')
    .option('--out <dir>', 'parent directory of run directories', 'reports')
    .option('--name <name>', 'run directory name (default: timestamp-preset)')
    .option('--resume', 'continue the run in --out/--name from its last checkpoint')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--workers <n>', 'worker processes attacking batches in parallel (same records for any count); auto = one per core within free memory (1 GB each; 1 on GPU)', 'auto')
    .option('--no-progress', 'no progress bars (one log line per epoch)')
    .action(async (opts: RunOverrides & { out: string; name?: string; resume?: boolean; backend: string; workers: string; progress: boolean }) => {
      // Everything is checked before the backend loads or any training starts.
      const config = resolveRunConfig(opts);
      const info = await initBackend(opts.backend);
      const workers = parseWorkers(opts.workers, info.name);
      const res = await runJob({
        config,
        outRoot: opts.out,
        name: opts.name,
        resume: opts.resume,
        progress: opts.progress === false ? false : undefined,
        workers,
        command: `jpegdl-robust ${process.argv.slice(2).join(' ')}`,
      });
      console.log('');
      console.log(res.terminal);
      console.log('');
      console.log(res.verdict.headline);
      console.log(`total time ${res.totalSeconds.toFixed(1)} s on ${res.backend}`);
      console.log(`report: ${res.files.markdown}`);
      console.log(`        ${res.files.html}`);
      console.log(`        ${res.files.json}`);
    });
}

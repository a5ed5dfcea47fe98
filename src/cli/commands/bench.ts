import type { Command } from 'commander';
import { BENCH_BACKENDS, defaultBenchOptions, runBench, type BenchBackend } from '../../bench/run.ts';
import { renderTable } from '../../bench/report.ts';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name}: expected an integer, got "${v}"`);
  return n;
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** `jpegdl-robust bench`: training and attack images/s per backend, and the tfjs/PyTorch ratio. */
export function register(program: Command): void {
  const d = defaultBenchOptions();
  program
    .command('bench')
    .description('training and attack throughput (images/s) per tfjs backend and in PyTorch; writes reports/bench/bench.{json,md}')
    .option('--models <list>', 'registry models', d.models.join(','))
    .option('--backends <list>', `tfjs backends to try (${BENCH_BACKENDS.join(', ')})`, d.backends.join(','))
    .option('--batch <n>', 'images per step', int('batch'), d.batch)
    .option('--threads <n>', 'TensorFlow intra-op threads = torch.set_num_threads', int('threads'), d.threads)
    .option('--warmup <n>', 'untimed steps first', int('warmup'), d.warmup)
    .option('--repeats <n>', 'timed repeats (median)', int('repeats'), d.repeats)
    .option('--steps <n>', 'steps per timed repeat', int('steps'), d.steps)
    .option('--wasm-repeats <n>', 'timed one-step repeats on wasm', int('wasm-repeats'), d.wasmRepeats)
    .option('--python <path>', 'python with torch for the PyTorch peer', d.python)
    .option('--no-torch', 'skip the PyTorch peer')
    .option('--out <dir>', 'where bench.json and bench.md go', d.outDir)
    .option('--json', 'print the report as JSON instead of a table')
    .action(async (opts: { models: string; backends: string; batch: number; threads: number; warmup: number; repeats: number; steps: number; wasmRepeats: number; python: string; torch: boolean; out: string; json?: boolean }) => {
      const report = await runBench({
        models: list(opts.models),
        backends: list(opts.backends) as BenchBackend[],
        batch: opts.batch,
        threads: opts.threads,
        warmup: opts.warmup,
        repeats: opts.repeats,
        steps: opts.steps,
        wasmRepeats: opts.wasmRepeats,
        python: opts.python,
        torch: opts.torch,
        outDir: opts.out,
      });
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(`${report.machine.cpuModel}, ${report.machine.cores} cores; load ${report.machine.loadAvgStart.join('/')} -> ${report.machine.loadAvgEnd?.join('/')}`);
      console.log(renderTable(report));
      for (const s of report.skipped) console.log(`skipped ${s.what}: ${s.reason}`);
      for (const w of report.warnings) console.log(`warning: ${w}`);
      if (opts.out) console.log(`wrote ${opts.out}/bench.json and ${opts.out}/bench.md`);
    });
}

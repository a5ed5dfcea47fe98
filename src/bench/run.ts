/**
 * `npm run bench`: training and attack throughput (images/s) of fixed models at
 * 32x32x3, batch 64, on every tfjs backend present, and of the identical models in
 * PyTorch with the same thread count, with the ratio tfjs/PyTorch.
 *
 * Native tfjs and PyTorch repeats alternate (tfjs repeat, PyTorch contiguous repeat,
 * PyTorch channels-last repeat, ...) so both see the same machine load; the ratio
 * uses the faster of PyTorch's two memory formats.
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { join } from 'node:path';
import { buildModel, countTrainableParams, MODEL_NAMES } from '../../models/registry.ts';
import { initBackend, type BackendInfo } from '../backend.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { machineInfo, type MachineInfo } from './machine.ts';
import { renderMarkdown } from './report.ts';
import { makeWorkload, median, timeSteps } from './steps.ts';
import { closeSweepWorkers, sweepPool } from '../eval/sweep.ts';
import type { SweepJob, SweepWorkerInit } from '../eval/sweep-job.ts';
import { batchNormFolding } from '../inference/model.ts';
import { modelToMemory } from '../io/model-io.ts';
import { TorchPeer, type TorchInfo } from './torch-peer.ts';

export const BENCH_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BenchBackend = (typeof BENCH_BACKENDS)[number];

export interface BenchOptions {
  /** Registry model names (default small_cnn, resnet20). */
  models: string[];
  /** Images per step (default 64). */
  batch: number;
  /** Input height = width, 3 channels (default 32). */
  size: number;
  numClasses: number;
  backends: BenchBackend[];
  /** Untimed steps before timing, native tfjs and PyTorch. */
  warmup: number;
  /** Timed repeats (median reported), native tfjs and PyTorch. */
  repeats: number;
  /** Steps per timed repeat. */
  steps: number;
  /** Timed repeats on wasm (one step each). */
  wasmRepeats: number;
  /** Threads for TensorFlow's intra-op pool and torch.set_num_threads (default: all cores, TF's own default). */
  threads: number;
  /** Run the PyTorch peer (when python3 can import torch). */
  torch: boolean;
  python: string;
  /** Where bench.json and bench.md go; undefined = do not write. */
  outDir?: string;
  log: (line: string) => void;
}

export interface BenchResult {
  model: string;
  framework: 'tfjs' | 'pytorch';
  /** tfjs backend name, or the PyTorch memory format. */
  backend: string;
  threads: number;
  batch: number;
  trainImagesPerSecond: number;
  attackImagesPerSecond: number;
  trainStepSeconds: number[];
  attackStepSeconds: number[];
  note?: string;
}

export interface BenchRatio {
  model: string;
  backend: string;
  /** tfjs images/s over the faster PyTorch memory format's images/s (> 1: tfjs faster). */
  train: number;
  attack: number;
  pytorchTrainFormat: string;
  pytorchAttackFormat: string;
  /** Attack images/s over PyTorch's with conv+BN folded too (channels-last), when measured. */
  attackVsFolded?: number;
}

/** Backend label of the tfjs row measured on the parallel sweep's worker processes. */
export const parallelLabel = (workers: number) => `tensorflow, ${workers} worker processes x 1 thread (parallel sweep; attack only)`;

/** Backend label of the PyTorch attack row measured on a conv+BN-folded eval model. */
export const TORCH_FOLDED = 'channels_last, conv+BN folded (torch.fx fuse; attack only)';

export interface BenchReport {
  createdAt: string;
  machine: MachineInfo;
  versions: { tfjs: string; tensorflow?: string; torch?: string; python?: string; torchMkldnn?: boolean };
  config: { models: string[]; batch: number; inputShape: [number, number, number]; numClasses: number; threads: number; protocol: { warmup: number; repeats: number; stepsPerRepeat: number; wasmRepeats: number } };
  params: Record<string, { tfjs: number; pytorch?: number }>;
  results: BenchResult[];
  ratios: BenchRatio[];
  skipped: { what: string; reason: string }[];
  warnings: string[];
}

/** Defaults of `npm run bench`. */
export function defaultBenchOptions(): BenchOptions {
  return {
    models: ['small_cnn', 'resnet20'],
    batch: 64,
    size: 32,
    numClasses: 10,
    backends: [...BENCH_BACKENDS],
    warmup: 2,
    repeats: 5,
    steps: 2,
    wasmRepeats: 2,
    threads: os.cpus().length,
    torch: true,
    python: 'python3',
    outDir: 'reports/bench',
    log: (l) => console.error(l),
  };
}

/** Check every option before anything runs; throws naming the bad one. */
export function validateBenchOptions(o: BenchOptions): void {
  const posInt = (v: number, name: string, min = 1) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`bench: ${name} must be an integer >= ${min}, got ${v}`);
  };
  posInt(o.batch, 'batch');
  posInt(o.size, 'size', 4);
  posInt(o.numClasses, 'numClasses', 2);
  posInt(o.warmup, 'warmup', 0);
  posInt(o.repeats, 'repeats');
  posInt(o.steps, 'steps');
  posInt(o.wasmRepeats, 'wasmRepeats');
  posInt(o.threads, 'threads');
  if (o.models.length === 0) throw new Error('bench: models must name at least one model');
  for (const m of o.models) {
    if (!MODEL_NAMES.includes(m)) throw new Error(`bench: unknown model '${m}'; known: ${MODEL_NAMES.join(', ')}`);
  }
  for (const b of o.backends) {
    if (!(BENCH_BACKENDS as readonly string[]).includes(b)) throw new Error(`bench: unknown backend '${b}'; expected ${BENCH_BACKENDS.join(', ')}`);
  }
}

const ips = (batch: number, seconds: number[]) => batch / median(seconds);

/** Run the benchmark; returns the report (and writes it when outDir is set). */
export async function runBench(options: Partial<BenchOptions> = {}): Promise<BenchReport> {
  const o = { ...defaultBenchOptions(), ...options };
  validateBenchOptions(o);
  // TensorFlow reads its pool sizes when the native backend starts (default: all cores).
  process.env.TF_NUM_INTRAOP_THREADS = String(o.threads);
  const shape: [number, number, number] = [o.size, o.size, 3];
  const report: BenchReport = {
    createdAt: new Date().toISOString(),
    machine: machineInfo(),
    versions: { tfjs: tf.version_core },
    config: { models: o.models, batch: o.batch, inputShape: shape, numClasses: o.numClasses, threads: o.threads, protocol: { warmup: o.warmup, repeats: o.repeats, stepsPerRepeat: o.steps, wasmRepeats: o.wasmRepeats } },
    params: {},
    results: [],
    ratios: [],
    skipped: [],
    warnings: [],
  };
  if (report.machine.loadAvgStart[0] > report.machine.cores) {
    report.warnings.push(`machine busy at start: 1-min load ${report.machine.loadAvgStart[0]} on ${report.machine.cores} cores; absolute numbers are low, ratios (alternated repeats) are fairer`);
  }

  const backends: Partial<Record<BenchBackend, BackendInfo>> = {};
  for (const b of o.backends) {
    try {
      backends[b] = await initBackend(b);
      if (b === 'tensorflow') report.versions.tensorflow = backends[b]!.tensorflowVersion;
    } catch (err) {
      report.skipped.push({ what: `tfjs ${b}`, reason: (err as Error).message });
    }
  }

  let torch: TorchPeer | undefined;
  if (o.torch) {
    const started = await TorchPeer.start({ python: o.python, threads: o.threads, batch: o.batch, size: o.size, classes: o.numClasses });
    if (started instanceof TorchPeer) {
      torch = started;
      const info: TorchInfo = started.info;
      Object.assign(report.versions, { torch: info.torchVersion, python: info.python, torchMkldnn: info.mkldnn });
      if (info.threads !== o.threads) report.warnings.push(`PyTorch runs ${info.threads} threads, asked for ${o.threads}`);
    } else report.skipped.push({ what: 'PyTorch', reason: started.skipped });
  } else report.skipped.push({ what: 'PyTorch', reason: 'disabled (--no-torch)' });

  try {
    for (const name of o.models) {
      for (const b of o.backends) {
        if (!backends[b]) continue;
        await tf.setBackend(b);
        if (b === 'cpu' && name !== o.models[0]) {
          report.skipped.push({ what: `tfjs cpu ${name}`, reason: 'pure-JS cpu backend is ~1000x slower than native; measured once, on the first model only' });
          continue;
        }
        const batch = b === 'cpu' ? 1 : o.batch;
        const model = buildModel(name, { inputShape: shape, numClasses: o.numClasses, seed: 0 });
        report.params[name] ??= { tfjs: countTrainableParams(model) };
        const work = makeWorkload(model, batch, shape, o.numClasses);
        const threads = b === 'tensorflow' ? o.threads : 1;
        o.log(`bench: ${name} on tfjs ${b} (batch ${batch})...`);
        if (b === 'tensorflow') {
          await alternateWithTorch(o, name, model, work, torch, report, threads);
        } else {
          const proto = b === 'wasm' ? { warmup: 1, repeats: o.wasmRepeats, steps: 1 } : { warmup: 0, repeats: 1, steps: 1 };
          const train = timeSteps(work.train, proto);
          const attack = timeSteps(work.attack, proto);
          report.results.push({
            model: name, framework: 'tfjs', backend: b, threads, batch,
            trainImagesPerSecond: ips(batch, train), attackImagesPerSecond: ips(batch, attack),
            trainStepSeconds: train, attackStepSeconds: attack,
            note: b === 'cpu' ? `single step at batch ${batch} (too slow for more)` : `${o.wasmRepeats} repeats of 1 step; single-threaded wasm SIMD (tfjs does not use the threaded wasm build in Node)`,
          });
        }
        work.dispose();
        model.dispose();
      }
    }
  } finally {
    torch?.close();
    await closeSweepWorkers();
  }

  for (const r of report.results.filter((x) => x.framework === 'tfjs')) {
    // Only like for like: a tfjs row measured at another batch (cpu) gets no ratio.
    const all = report.results.filter((x) => x.framework === 'pytorch' && x.model === r.model && x.batch === r.batch);
    // The headline ratio is against PyTorch as run by default (eager, faster memory format).
    const peers = all.filter((x) => x.backend !== TORCH_FOLDED);
    const folded = all.find((x) => x.backend === TORCH_FOLDED);
    if (peers.length === 0) continue;
    const bestTrain = peers.reduce((a, c) => (c.trainImagesPerSecond > a.trainImagesPerSecond ? c : a));
    const bestAttack = peers.reduce((a, c) => (c.attackImagesPerSecond > a.attackImagesPerSecond ? c : a));
    report.ratios.push({
      model: r.model, backend: r.backend,
      // NaN for attack-only rows (no training measured).
      train: r.trainImagesPerSecond / bestTrain.trainImagesPerSecond,
      attack: r.attackImagesPerSecond / bestAttack.attackImagesPerSecond,
      pytorchTrainFormat: bestTrain.backend, pytorchAttackFormat: bestAttack.backend,
      ...(folded ? { attackVsFolded: r.attackImagesPerSecond / folded.attackImagesPerSecond } : {}),
    });
  }
  for (const [name, p] of Object.entries(report.params)) {
    if (p.pytorch !== undefined && p.pytorch !== p.tfjs) report.warnings.push(`${name}: tfjs has ${p.tfjs} parameters, PyTorch ${p.pytorch}: architectures differ`);
  }
  report.machine.loadAvgEnd = os.loadavg().map((v) => Math.round(v * 100) / 100);

  if (o.outDir) {
    await writeJsonAtomic(join(o.outDir, 'bench.json'), report);
    await writeFileAtomic(join(o.outDir, 'bench.md'), renderMarkdown(report));
  }
  return report;
}

/** The sweep's worker pool holding `model`: `round(batch, steps)` runs `steps` attack steps on one batch per worker at once, returning seconds per batch-step. */
async function startParallel(model: tf.LayersModel, workers: number): Promise<{ round: (batch: number, steps: number) => Promise<number> }> {
  const init: SweepWorkerInit = { backend: 'tensorflow', foldBatchNorm: batchNormFolding(), models: [await modelToMemory(model)], attacks: [] };
  const pool = await sweepPool(workers, 1, init);
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  const classes = (model.outputs[0].shape as number[]).at(-1)!;
  return {
    round: async (batch, steps) => {
      const jobs = Array.from({ length: workers }, (_, k) => k);
      const t0 = process.hrtime.bigint();
      await pool.runAll<number, unknown>(jobs, (k) => {
        const x = new Float32Array(batch * h * w * c);
        for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761 + k) >>> 0) / 4294967296;
        const y = Int32Array.from({ length: batch }, (_, i) => (i + k) % classes);
        return { model: 0, mode: null, attack: -1, norm: 'linf', what: 'bench', options: {}, x, shape: [batch, h, w, c], y, yDtype: 'int32', gradientSteps: steps } satisfies SweepJob;
      }, () => {});
      return Number(process.hrtime.bigint() - t0) / 1e9 / (workers * steps);
    },
  };
}

/** Native tfjs and PyTorch (both memory formats) repeats, interleaved. */
async function alternateWithTorch(o: BenchOptions, name: string, model: tf.LayersModel, work: ReturnType<typeof makeWorkload>, torch: TorchPeer | undefined, report: BenchReport, threads: number): Promise<void> {
  const formats = torch ? [false, true] : [];
  const seconds = { train: [] as number[], attack: [] as number[] };
  const torchSeconds = formats.map(() => ({ train: [] as number[], attack: [] as number[] }));
  const foldedSeconds: number[] = [];
  // With 2+ threads, also time attack steps as a parallel sweep runs them: one worker process per
  // thread, each single-threaded, each on its own batch (src/eval/sweep.ts, --workers).
  const parallelSeconds: number[] = [];
  const parallel = threads > 1 ? await startParallel(model, threads) : null;
  for (const kind of ['train', 'attack'] as const) {
    const step = kind === 'train' ? work.train : work.attack;
    timeSteps(step, { warmup: o.warmup, repeats: 0, steps: 1 });
    for (const [i, channelsLast] of formats.entries()) {
      const r = await torch!.time({ model: name, kind, channelsLast, steps: 0, warmup: o.warmup });
      report.params[name].pytorch = r.params;
      void i;
    }
    if (torch && kind === 'attack') await torch.time({ model: name, kind, channelsLast: true, foldBn: true, steps: 0, warmup: o.warmup });
    for (let rep = 0; rep < o.repeats; rep++) {
      seconds[kind].push(...timeSteps(step, { warmup: 0, repeats: 1, steps: o.steps }));
      for (const [i, channelsLast] of formats.entries()) {
        const r = await torch!.time({ model: name, kind, channelsLast, steps: o.steps, warmup: 0 });
        torchSeconds[i][kind].push(r.seconds.reduce((a, b) => a + b, 0) / r.seconds.length);
      }
      if (torch && kind === 'attack') {
        const r = await torch.time({ model: name, kind, channelsLast: true, foldBn: true, steps: o.steps, warmup: 0 });
        foldedSeconds.push(r.seconds.reduce((a, b) => a + b, 0) / r.seconds.length);
      }
      if (parallel && kind === 'attack') {
        if (rep === 0) await parallel.round(o.batch, o.warmup || 1);
        parallelSeconds.push(await parallel.round(o.batch, o.steps));
      }
    }
    o.log(`bench:   ${kind}: tfjs ${(o.batch / median(seconds[kind])).toFixed(1)} img/s` + formats.map((cl, i) => `, PyTorch ${cl ? 'channels_last' : 'contiguous'} ${(o.batch / median(torchSeconds[i][kind])).toFixed(1)} img/s`).join(''));
  }
  report.results.push({
    model: name, framework: 'tfjs', backend: 'tensorflow', threads, batch: o.batch,
    trainImagesPerSecond: ips(o.batch, seconds.train), attackImagesPerSecond: ips(o.batch, seconds.attack),
    trainStepSeconds: seconds.train, attackStepSeconds: seconds.attack,
  });
  formats.forEach((channelsLast, i) => {
    report.results.push({
      model: name, framework: 'pytorch', backend: channelsLast ? 'channels_last' : 'contiguous (NCHW)', threads: o.threads, batch: o.batch,
      trainImagesPerSecond: ips(o.batch, torchSeconds[i].train), attackImagesPerSecond: ips(o.batch, torchSeconds[i].attack),
      trainStepSeconds: torchSeconds[i].train, attackStepSeconds: torchSeconds[i].attack,
    });
  });
  if (parallel && parallelSeconds.length) {
    report.results.push({
      model: name, framework: 'tfjs', backend: parallelLabel(threads), threads, batch: o.batch,
      trainImagesPerSecond: NaN, attackImagesPerSecond: ips(o.batch, parallelSeconds),
      trainStepSeconds: [], attackStepSeconds: parallelSeconds,
      note: `${threads} batches of ${o.batch} at once, one per worker process; seconds per batch-step = wall / (${threads} x steps), input copies to the workers included`,
    });
  }
  if (foldedSeconds.length) {
    report.results.push({
      model: name, framework: 'pytorch', backend: TORCH_FOLDED, threads: o.threads, batch: o.batch,
      trainImagesPerSecond: NaN, attackImagesPerSecond: ips(o.batch, foldedSeconds),
      trainStepSeconds: [], attackStepSeconds: foldedSeconds,
      note: 'attack step only: the tfjs attacks also run a BN-folded copy (src/inference), so this is the like-for-like attack peer',
    });
  }
}

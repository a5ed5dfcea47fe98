/**
 * The main job: train the baseline, initialise and train its JPEG-DL twin on the same backbone,
 * data order and schedule, evaluate clean accuracy (soft and hard JPEG), attack both across the
 * eps list, and write the report. Every phase is resumable: training from per-epoch checkpoints,
 * the sweep from its per-cell records; finished phases are not recomputed.
 */
import { evaluateCorruptions, resolveCorruptionOptions, summarizeCorruptions } from '../corruptions/evaluate.ts';
import { writeCorruptionOutputs } from '../corruptions/job.ts';
import { certifyModels, summarizeCertificates } from '../certify/evaluate.ts';
import { writeCertifyReport } from '../certify/report.ts';
import { evaluateSpatial, resolveSpatialEval, summarizeSpatial } from '../spatial/evaluate.ts';
import { writeSpatialOutputs } from '../spatial/job.ts';
import { evaluateUniversal, resolveUniversalEval } from '../universal/evaluate.ts';
import { writeUniversalOutputs } from '../universal/job.ts';
import { summarizeUniversal } from '../universal/report.ts';
import { evaluatePatches, resolvePatchEval } from '../patch/evaluate.ts';
import { writePatchOutputs } from '../patch/job.ts';
import { summarizePatches } from '../patch/report.ts';
import { evaluateDiagnose, resolveDiagnoseOptions } from '../diagnose/evaluate.ts';
import { writeDiagnoseReport } from '../diagnose/report.ts';
import { diagnoseFindings, summarizeDiagnose } from '../diagnose/summary.ts';
import { parseEpsilon, parseEpsilonList, type Epsilon } from '../eps.ts';
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import { getAttack } from '../../attacks/index.ts';
import { buildModel, getModelInfo } from '../../models/registry.ts';
import { backendInfo, describeBackend } from '../backend.ts';
import { defended as defendedModel, defenceName, defenceVariant, parseDefenceList, usesJpegModes, type DefenceSpec } from '../defences/index.ts';
import { loadDataset } from '../data/load.ts';
import { subset } from '../data/subset.ts';
import type { ImageDataset } from '../data/types.ts';
import { loadRecords } from '../eval/records.ts';
import { runSweep, RECORDS_FILE, type AttackFn, type SweepAttack, type SweepModel } from '../eval/sweep.ts';
import { writeJsonAtomic, writeFileAtomic } from '../io/atomic.ts';
import { saveModel } from '../io/model-io.ts';
import { sensitivityTables, standardTables, type JpegTables } from '../jpeg/index.ts';
import { buildReport, trainingView, type QuantTableView, type ReportConfig } from '../report/model.ts';
import { renderTerminal } from '../report/terminal.ts';
import { writeReport } from '../report/write.ts';
import { evaluateCleanModes } from '../train/evaluate.ts';
import { describeAdversarial, ROBUST_EVAL_IMAGES, trainingMetadata } from '../train/adversarial.ts';
import { robustSummary } from '../train/history.ts';
import { readTables } from '../train/jpeg-params.ts';
import { trainModel, trainPaths } from '../train/trainer.ts';
import { channelStats, datasetTensors, evalBatchesOf, trainDataOf } from './data.ts';
import { runEpsilons, type RunConfig } from './presets.ts';
import { computeVerdict, type Verdict } from './verdict.ts';

/** Options of runJob. */
export interface RunOptions {
  config: RunConfig;
  /** Parent of run directories (default "reports"). */
  outRoot?: string;
  /** Run directory name (default: UTC timestamp + preset). */
  name?: string;
  /** Continue the run in outRoot/name from where it stopped (its saved config is used). */
  resume?: boolean;
  /** Progress bars on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  /** Worker threads for the attack sweep (default 1; the records do not depend on it). */
  workers?: number;
  /** Log lines (default console.log). */
  log?: (line: string) => void;
  /** The command line, recorded in the report. */
  command?: string;
  /** Stop after this phase (tests use it to simulate a kill at a phase boundary). */
  stopAfter?: Phase;
}

/** Phases in order. */
/** The diagnose options of a run, checked (eps: the run's largest budget unless set). */
function runDiagnoseOptions(cfg: RunConfig) {
  const d = cfg.diagnose!;
  if (!Number.isInteger(d.n) || d.n < 1) throw new Error(`diagnose.n: must be an integer >= 1, got ${d.n}`);
  const eps = d.eps !== undefined ? parseEpsilon(d.eps, 'diagnose.eps') : runEpsilons(cfg).reduce((a, e) => (e.value > a.value ? e : a));
  if (!(eps.value > 0)) throw new Error('diagnose.eps: the run has no budget above 0 to diagnose at; set diagnose.eps');
  const o = { eps: eps.value, epsLabel: eps.label, steps: d.steps, directions: d.directions, surfaces: d.surfaces, seed: cfg.eval.seed };
  resolveDiagnoseOptions(o);
  return { ...o, epsLabel: eps.label };
}

export const PHASES = ['baseline', 'init', 'jpeg-dl', 'clean', 'sweep', 'corruptions', 'certify', 'spatial', 'universal', 'patch', 'diagnose', 'report'] as const;
export type Phase = (typeof PHASES)[number];

/** What runJob produced. */
export interface RunResult {
  runDir: string;
  files: { json: string; markdown: string; html: string; terminal: string };
  verdict: Verdict;
  /** Wall seconds per phase, summed over resumed invocations. */
  phaseSeconds: Partial<Record<Phase, number>>;
  totalSeconds: number;
  backend: string;
  terminal: string;
  /** False when stopAfter ended the run early. */
  finished: boolean;
}

interface RunState {
  phaseSeconds: Partial<Record<Phase, number>>;
  done: Phase[];
}

/** UTC timestamp usable in a directory name, e.g. 20261126-231500. */
export function timestampName(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Check a run config before any work starts (throws naming the field). */
export function validateRunConfig(cfg: RunConfig): void {
  if (!cfg.model) throw new Error('model: missing');
  getModelInfo(cfg.model); // throws listing the registry's names
  if (!Number.isInteger(cfg.eval.n) || cfg.eval.n < 1) throw new Error(`eval.n: must be an integer >= 1, got ${cfg.eval.n}`);
  if (!Number.isInteger(cfg.eval.batchSize) || cfg.eval.batchSize < 1) throw new Error(`eval.batchSize: must be an integer >= 1, got ${cfg.eval.batchSize}`);
  if (!cfg.eval.jpegModes?.length || cfg.eval.jpegModes.some((m) => m !== 'soft' && m !== 'hard')) throw new Error(`eval.jpegModes: must be a non-empty list of "soft"/"hard", got ${JSON.stringify(cfg.eval.jpegModes)}`);
  if (!cfg.eval.attacks.length) throw new Error('eval.attacks: the attack list is empty');
  if (cfg.jpeg.method !== 'sensitivity' && cfg.jpeg.method !== 'standard') throw new Error(`jpeg.method: must be "sensitivity" or "standard", got "${cfg.jpeg.method}"`);
  if (!(cfg.jpeg.qMax > 0)) throw new Error(`jpeg.qMax: must be > 0, got ${cfg.jpeg.qMax}`);
  if (!(cfg.jpeg.alpha > 0)) throw new Error(`jpeg.alpha: must be > 0, got ${cfg.jpeg.alpha}`);
  if (!Number.isInteger(cfg.jpeg.sensitivitySamples) || cfg.jpeg.sensitivitySamples < 1) {
    throw new Error(`jpeg.sensitivitySamples: must be an integer >= 1, got ${cfg.jpeg.sensitivitySamples}`);
  }
  runEpsilons(cfg);
  runDefences(cfg);
  if (cfg.certify) runCertifyParams(cfg);
  if (cfg.spatial) {
    if (!Number.isInteger(cfg.spatial.n) || cfg.spatial.n < 1) throw new Error(`spatial.n: must be an integer >= 1, got ${cfg.spatial.n}`);
    resolveSpatialEval({ ...cfg.spatial.grid, samples: cfg.spatial.samples });
  }
  if (cfg.universal) {
    const u = cfg.universal;
    if (!Number.isInteger(u.n) || u.n < 1) throw new Error(`universal.n: must be an integer >= 1, got ${u.n}`);
    if (!Number.isInteger(u.fitN) || u.fitN < 1) throw new Error(`universal.fitN: must be an integer >= 1, got ${u.fitN}`);
    if (!runEpsilons(cfg).some((e) => e.value > 0)) throw new Error('universal: the run has no eps > 0 to fit universal perturbations at');
    resolveUniversalEval({ epochs: u.epochs });
  }
  if (cfg.patch) {
    const p = cfg.patch;
    if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`patch.n: must be an integer >= 1, got ${p.n}`);
    if (!Number.isInteger(p.fitN) || p.fitN < 1) throw new Error(`patch.fitN: must be an integer >= 1, got ${p.fitN}`);
    resolvePatchEval({ sizes: p.sizes, epochs: p.epochs });
  }
  if (cfg.diagnose) runDiagnoseOptions(cfg);
  if (cfg.corruptions) {
    const c = cfg.corruptions;
    if (!Number.isInteger(c.n) || c.n < 1) throw new Error(`corruptions.n: must be an integer >= 1, got ${c.n}`);
    resolveCorruptionOptions({ channels: 3 }, { corruptions: c.names, severities: c.severities });
  }
}

/** The sigmas and radii of `certify`, parsed (checked: errors name the config field). */
function runCertifyParams(cfg: RunConfig): { sigmas: Epsilon[]; radii: Epsilon[] } {
  const c = cfg.certify!;
  if (!Array.isArray(c.sigmas) || !c.sigmas.length) throw new Error('certify.sigmas: give at least one noise standard deviation, e.g. ["0.25"]');
  const sigmas = parseEpsilonList(c.sigmas, 'certify.sigmas', 'l2');
  for (const s of sigmas) if (!(s.value > 0)) throw new Error(`certify.sigmas: ${s.label} must be > 0`);
  const radii = parseEpsilonList(c.radii, 'certify.radii', 'l2');
  for (let i = 1; i < radii.length; i++) if (!(radii[i].value > radii[i - 1].value)) throw new Error(`certify.radii: must increase, got ${radii[i - 1].label} then ${radii[i].label}`);
  if (!Number.isInteger(c.n) || c.n < 1) throw new Error(`certify.n: must be an integer >= 1, got ${c.n}`);
  if (!Number.isInteger(c.samples) || c.samples < 1) throw new Error(`certify.samples: must be an integer >= 1, got ${c.samples}`);
  return { sigmas, radii };
}

/** The input defences of `eval.defences`, parsed (checked: bad or repeated specs throw naming `eval.defences`). */
function runDefences(cfg: RunConfig): DefenceSpec[] {
  const list = cfg.eval.defences ?? [];
  if (!Array.isArray(list) || list.some((d) => typeof d !== 'string')) throw new Error(`eval.defences: must be a list of defence specs like "jpeg:75", got ${JSON.stringify(list)}`);
  return list.length ? parseDefenceList(list.join(','), 'eval.defences') : [];
}

/** A registry attack for the sweep: its function, norm, and whether it takes a per-batch seed. */
function registryAttack(name: string, params: Record<string, unknown>): SweepAttack {
  const info = getAttack(name);
  return { name, params, fn: info.run as AttackFn, norm: info.norm, seeded: 'seed' in info.defaults };
}

function readState(runDir: string): RunState {
  const p = join(runDir, 'run-state.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as RunState) : { phaseSeconds: {}, done: [] };
}

/** Run (or resume) the main job; returns where the report is and the verdict. */
export async function runJob(opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const outRoot = resolve(opts.outRoot ?? 'reports');
  let cfg = opts.config;
  validateRunConfig(cfg);
  if (opts.resume && !opts.name) throw new Error('--resume: needs --name (the run directory to continue)');
  const name = opts.name ?? `${timestampName()}-${cfg.preset}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`--name: "${name}" may only contain letters, digits, ".", "_" and "-"`);
  const runDir = join(outRoot, name);
  const configPath = join(runDir, 'config.json');
  if (existsSync(configPath)) {
    if (!opts.resume) throw new Error(`run directory ${runDir} already holds a run; pass --resume to continue it or choose another --name`);
    const saved = JSON.parse(readFileSync(configPath, 'utf8')) as { run: RunConfig };
    cfg = saved.run;
    validateRunConfig(cfg);
    log(`resuming ${runDir} (preset ${cfg.preset})`);
  }
  const info = backendInfo();
  const backend = info ? describeBackend(info) : tf.getBackend();
  const state = readState(runDir);
  const saveState = () => writeJsonAtomic(join(runDir, 'run-state.json'), state);
  const t0 = Date.now();
  let phaseStart = Date.now();
  const finishPhase = (p: Phase) => {
    state.phaseSeconds[p] = (state.phaseSeconds[p] ?? 0) + (Date.now() - phaseStart) / 1000;
    if (!state.done.includes(p)) state.done.push(p);
    saveState();
    phaseStart = Date.now();
    return opts.stopAfter === p;
  };
  const startPhase = () => (phaseStart = Date.now());

  log(`run directory: ${runDir}`);
  log(`backend: ${backend}`);
  // Load the data before the run directory is claimed, so a missing dataset leaves nothing behind.
  const { train, test } = await loadDataset(cfg.dataset);
  if (!existsSync(configPath)) writeJsonAtomic(configPath, { run: cfg, backend, command: opts.command ?? null, createdAt: new Date().toISOString() });
  log(`data: ${train.name} ${train.labels.length} train / ${test.labels.length} test, ${train.height}x${train.width}x${train.channels}, ${train.numClasses} classes`);
  const normalization = cfg.normalization === 'dataset' ? channelStats(train) : cfg.normalization;
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  const data = trainDataOf(train);
  const evalData = evalBatchesOf(test, cfg.eval.batchSize);
  // Adversarial training is watched by robust accuracy on a fixed test subset after every epoch.
  const robustEvalData = cfg.train.adversarial ? evalBatchesOf(subset(test, Math.min(ROBUST_EVAL_IMAGES, test.labels.length), cfg.train.seed), cfg.eval.batchSize) : undefined;
  const progress = opts.progress;
  const unfinished = (phaseSeconds: RunState['phaseSeconds']): RunResult => ({
    runDir,
    files: { json: '', markdown: '', html: '', terminal: '' },
    verdict: { moreRobust: false, headline: 'run stopped early', lines: [], comparisons: [], clean: { baseline: null, soft: null, hard: null } },
    phaseSeconds,
    totalSeconds: Object.values(phaseSeconds).reduce((s, v) => s + (v ?? 0), 0),
    backend,
    terminal: '',
    finished: false,
  });

  // 1. Baseline.
  startPhase();
  const created: tf.LayersModel[] = [];
  try {
    const baseline = buildModel(cfg.model, { inputShape, numClasses: train.numClasses, normalization, seed: cfg.modelSeed });
    created.push(baseline);
    const baseRes = await trainModel({ model: baseline, data, config: cfg.train, label: 'baseline', ...trainPaths(join(runDir, 'baseline')), resume: true, evalData, robustEvalData, progress, log });
    if (!state.done.includes('baseline')) await saveModel(baseline, join(runDir, 'models', 'baseline'), { variant: 'baseline', model: cfg.model, run: name, ...trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd) });
    if (baseRes.epochsCompleted > baseRes.startEpoch || !state.done.includes('baseline')) log(`baseline trained: ${baseRes.history.length} epochs`);
    if (finishPhase('baseline')) return unfinished(state.phaseSeconds);

    // 2. JPEG table initialisation (from the trained baseline for 'sensitivity').
    startPhase();
    const initPath = join(runDir, 'jpeg-init.json');
    let init: { tables: JpegTables; label: string; detail?: unknown };
    if (existsSync(initPath)) init = JSON.parse(readFileSync(initPath, 'utf8'));
    else {
      if (cfg.jpeg.method === 'sensitivity') {
        const sample = subset(train, Math.min(cfg.jpeg.sensitivitySamples, train.labels.length), cfg.train.seed);
        const s = sensitivityTables(baseline, sample, { qMax: cfg.jpeg.qMax, batchSize: 64 });
        init = {
          tables: { luma: s.luma, ...(s.chroma ? { chroma: s.chroma } : {}) },
          label: `sensitivity of the trained baseline over ${s.images} training images, max luma step ${cfg.jpeg.qMax}`,
          detail: { sensitivity: s.sensitivity, scale: s.scale, images: s.images },
        };
      } else {
        const std = standardTables(cfg.jpeg.quality);
        init = { tables: train.channels === 3 ? std : { luma: std.luma }, label: `standard JPEG (IJG Annex K) tables, quality ${cfg.jpeg.quality}` };
      }
      writeJsonAtomic(initPath, init);
    }
    log(`JPEG tables initialised: ${init.label}`);
    if (finishPhase('init')) return unfinished(state.phaseSeconds);

    // 3. JPEG-DL: the same backbone seed, data order, augmentation and schedule.
    startPhase();
    const jpegModel = buildModel(cfg.model, {
      inputShape,
      numClasses: train.numClasses,
      normalization,
      seed: cfg.modelSeed,
      jpeg: { tables: init.tables, alpha: cfg.jpeg.alpha },
    });
    created.push(jpegModel);
    const jpegRes = await trainModel({ model: jpegModel, data, config: cfg.train, label: 'jpeg-dl', ...trainPaths(join(runDir, 'jpeg-dl')), resume: true, evalData, robustEvalData, progress, log });
    if (!state.done.includes('jpeg-dl')) await saveModel(jpegModel, join(runDir, 'models', 'jpeg-dl'), { variant: 'jpeg-dl', model: cfg.model, run: name, ...trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd) });
    if (jpegRes.epochsCompleted > jpegRes.startEpoch || !state.done.includes('jpeg-dl')) log(`JPEG-DL trained: ${jpegRes.history.length} epochs`);
    if (finishPhase('jpeg-dl')) return unfinished(state.phaseSeconds);

    // 4. Clean accuracy on the whole test split (soft and hard JPEG for JPEG-DL).
    startPhase();
    const cleanPath = join(runDir, 'clean.json');
    let clean: { baseline: number; soft: number; hard: number; n: number };
    if (existsSync(cleanPath)) clean = JSON.parse(readFileSync(cleanPath, 'utf8'));
    else {
      const b = await evaluateCleanModes(baseline, evalData);
      const j = await evaluateCleanModes(jpegModel, evalData);
      clean = { baseline: b.plain!, soft: j.soft!, hard: j.hard!, n: test.labels.length };
      writeJsonAtomic(cleanPath, clean);
    }
    log(`clean accuracy on ${clean.n} test images: baseline ${(100 * clean.baseline).toFixed(2)}%, JPEG-DL soft ${(100 * clean.soft).toFixed(2)}%, hard ${(100 * clean.hard).toFixed(2)}%`);
    if (finishPhase('clean')) return unfinished(state.phaseSeconds);

    // 5. Attacks: every registry attack on baseline and JPEG-DL (soft and hard); BPDA on the hard path.
    startPhase();
    const attackSet: ImageDataset = cfg.eval.n >= test.labels.length ? test : subset(test, cfg.eval.n, cfg.eval.seed);
    const { images, labels } = datasetTensors(attackSet);
    const sweepDir = join(runDir, 'sweep');
    const epsilons = runEpsilons(cfg);
    if ((opts.workers ?? 1) > 1) log(`attacking ${attackSet.labels.length} test images on ${opts.workers} worker processes`);
    const plain = cfg.eval.attacks.filter((a) => !a.name.startsWith('bpda-'));
    const bpda = cfg.eval.attacks.filter((a) => a.name.startsWith('bpda-'));
    const common = { epsilons, images, labels, batchSize: cfg.eval.batchSize, seed: cfg.eval.seed, outDir: sweepDir, progressBar: progress, backend, workers: opts.workers };
    try {
      if (plain.length) {
        const models: SweepModel[] = [
          { name: 'baseline', variant: 'baseline', seed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', seed: cfg.modelSeed, model: jpegModel, jpegModes: cfg.eval.jpegModes },
        ];
        await runSweep({ ...common, models, attacks: plain.map((a): SweepAttack => registryAttack(a.name, a.params)) });
      }
      if (bpda.length) {
        for (const a of bpda) if (a.name !== 'bpda-pgd') throw new Error(`eval.attacks: unknown BPDA attack "${a.name}" (only bpda-pgd)`);
        await runSweep({
          ...common,
          // BPDA needs a JPEG layer: only the JPEG-DL model's hard path (the baseline's column is its plain PGD).
        models: [{ name: 'jpeg-dl', variant: 'jpeg-dl', seed: cfg.modelSeed, model: jpegModel, jpegModes: ['hard'] }],
          attacks: bpda.map((a): SweepAttack => ({ name: a.name, params: a.params, fn: bpdaPgd as AttackFn, seeded: true })),
        });
      }
      // The baseline behind each input defence: every attack, BPDA ones through what cannot be differentiated.
      const defences = runDefences(cfg);
      if (defences.length) {
        const defended = defences.map((spec) => ({ spec, model: defendedModel(baseline, spec) }));
        try {
          await runSweep({
            ...common,
            models: defended.map(({ spec, model }): SweepModel => ({ name: defenceName(spec), variant: defenceVariant(spec), seed: cfg.modelSeed, model, ...(usesJpegModes(spec) ? { jpegModes: ['hard'] } : {}) })),
            attacks: [...plain.map((a): SweepAttack => registryAttack(a.name, a.params)), ...bpda.map((a): SweepAttack => ({ name: a.name, params: a.params, fn: bpdaPgd as AttackFn, seeded: true }))],
          });
        } finally {
          for (const d of defended) d.model.dispose();
        }
      }
    } finally {
      tf.dispose([images, labels]);
    }
    if (finishPhase('sweep')) return unfinished(state.phaseSeconds);

    // 6. Common corruptions (opt-in): both models on the same corrupted test images; resumable records.
    startPhase();
    let corruptionNote: string | null = null;
    if (cfg.corruptions) {
      const c = cfg.corruptions;
      const data = subset(test, Math.min(c.n, test.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'corruptions');
      log(`corruptions: ${data.labels.length} test images x ${c.names?.length ?? 'all'} corruptions x severities ${c.severities.join(',')}`);
      const corr = await evaluateCorruptions(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard'] },
        ],
        data,
        { corruptions: c.names, severities: c.severities, batchSize: cfg.eval.batchSize, seed: cfg.eval.seed, dataset: test.name, recordsPath: join(dir, 'records.jsonl') },
      );
      writeCorruptionOutputs(dir, data, corr, { datasetName: test.name, split: 'test', seed: cfg.eval.seed, corruptions: c.names, severities: c.severities, notes: [`Models of run ${name}: baseline and JPEG-DL (${trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training}).`] });
      const sum = summarizeCorruptions(corr);
      const mean = (label: string) => sum.series.find((s) => s.label === label);
      const [b, soft, hard] = [mean('baseline'), mean('jpeg-dl [soft]'), mean('jpeg-dl [hard]')];
      const f = (v: number | undefined) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
      corruptionNote = `Common corruptions (${data.labels.length} test images, ${sum.corruptions.length} corruptions x severities ${sum.severities.join(', ')}; corruptions/corruptions.md): mean accuracy baseline ${f(b?.mean)}, JPEG-DL soft ${f(soft?.mean)} (relative corruption error ${soft?.relativeError?.toFixed(2) ?? '–'}), hard ${f(hard?.mean)}.`;
      log(corruptionNote);
    }
    if (finishPhase('corruptions')) return unfinished(state.phaseSeconds);

    // 7. Certificates (opt-in): randomised smoothing of both models, the same noise for both; resumable per image.
    startPhase();
    let certifyNote: string | null = null;
    if (cfg.certify) {
      const c = cfg.certify;
      const { sigmas, radii } = runCertifyParams(cfg);
      const data = subset(test, Math.min(c.n, test.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'certify');
      log(`certify: ${data.labels.length} test images at sigma ${c.sigmas.join(', ')}, ${c.samples} noise samples per certificate`);
      const certs = await certifyModels(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard'] },
        ],
        data,
        { sigmas, samples: c.samples, seed: cfg.eval.seed, dataset: test.name, recordsPath: join(dir, 'records.jsonl') },
      );
      const training = trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training;
      writeCertifyReport(dir, certs, radii, {
        title: `Randomised smoothing certificates: run ${name}, ${test.name} test, ${data.labels.length} images`,
        notes: [`Models of run ${name}: baseline and JPEG-DL (${training}).`],
        dataset: test.name, split: 'test', n: data.labels.length, seed: cfg.eval.seed,
      });
      // One line per sigma: certified accuracy at the radius nearest sigma (a natural scale for it) and the ACR.
      const series = summarizeCertificates(certs, radii);
      const f = (v: number | undefined) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
      certifyNote = `Certified L2 robustness by randomised smoothing (${data.labels.length} test images, ${c.samples} noise samples, alpha 0.001; certify/certify.md): ${sigmas.map((sg) => {
        const of = (model: string, mode: string | null) => series.find((s) => s.model === model && s.jpegMode === mode && s.sigma === sg.value);
        const r = radii.reduce((best, x) => (Math.abs(x.value - sg.value) < Math.abs(best.value - sg.value) ? x : best), radii[0]);
        const at = (s: ReturnType<typeof of>) => f(s?.results.find((x) => x.radius === r.value)?.certifiedAccuracy);
        const [b, soft, hard] = [of('baseline', null), of('jpeg-dl', 'soft'), of('jpeg-dl', 'hard')];
        return `at sigma ${sg.label}, certified accuracy at radius ${r.label} baseline ${at(b)}, JPEG-DL soft ${at(soft)}, hard ${at(hard)} (average certified radius ${b?.acr.toFixed(3)}, ${soft?.acr.toFixed(3)}, ${hard?.acr.toFixed(3)})`;
      }).join('; ')}${cfg.train.noiseSd ? '.' : '. The models were not trained with Gaussian noise (--noise-sd), so these certificates say little about what smoothing can give.'}`;
      log(certifyNote);
    }
    if (finishPhase('certify')) return unfinished(state.phaseSeconds);

    // 8. Rotations and shifts (opt-in): both models on the same transformed test images; resumable per transform.
    startPhase();
    let spatialNote: string | null = null;
    if (cfg.spatial) {
      const sp = cfg.spatial;
      const data = subset(test, Math.min(sp.n, test.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'spatial');
      const options = { ...sp.grid, samples: sp.samples, seed: cfg.eval.seed, batchSize: cfg.eval.batchSize };
      const { grid } = resolveSpatialEval(options);
      log(`spatial: ${data.labels.length} test images, rotations within ±${grid.maxRotation}°, shifts within ±${grid.maxTranslation} px`);
      const recs = await evaluateSpatial(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard'] },
        ],
        data,
        { ...options, dataset: test.name, recordsPath: join(dir, 'records.jsonl') },
      );
      writeSpatialOutputs(dir, data, recs, { ...options, datasetName: test.name, split: 'test', notes: [`Models of run ${name}: baseline and JPEG-DL (${trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training}).`] });
      const sum = summarizeSpatial(recs);
      const of = (label: string) => sum.series.find((s) => s.label === label);
      const f = (v: number | null | undefined) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);
      const [b, soft, hard] = [of('baseline'), of('jpeg-dl [soft]'), of('jpeg-dl [hard]')];
      spatialNote = `Rotations and shifts (${data.labels.length} test images; spatial/spatial.md): accuracy under the worst transform of the grid baseline ${f(b?.grid)}, JPEG-DL soft ${f(soft?.grid)}, hard ${f(hard?.grid)} (clean ${f(b?.clean)}, ${f(soft?.clean)}, ${f(hard?.clean)}).`;
      log(spatialNote);
    }
    if (finishPhase('spatial')) return unfinished(state.phaseSeconds);

    // 9. Universal perturbations (opt-in): fitted on training images per model and eps, both models scored on the same test images; resumable per record, fitted perturbations saved.
    startPhase();
    let universalNote: string | null = null;
    if (cfg.universal) {
      const u = cfg.universal;
      const testData = subset(test, Math.min(u.n, test.labels.length), cfg.eval.seed);
      const fitData = subset(train, Math.min(u.fitN, train.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'universal');
      const epsilons = runEpsilons(cfg).filter((e) => e.value > 0);
      const options = { epsilons, epochs: u.epochs, seed: cfg.eval.seed, evalBatchSize: cfg.eval.batchSize };
      const { settings } = resolveUniversalEval(options);
      log(`universal: ${testData.labels.length} test images, perturbations fitted on ${fitData.labels.length} training images at ${epsilons.map((e) => e.label).join(', ')}`);
      const { records, perturbations } = await evaluateUniversal(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard'], craftModes: ['soft', 'bpda-identity'] },
        ],
        fitData, testData,
        { ...options, dataset: test.name, recordsPath: join(dir, 'records.jsonl'), perturbationsDir: join(dir, 'perturbations') },
      );
      writeUniversalOutputs(dir, testData, fitData, records, perturbations, {
        settings, seed: cfg.eval.seed, datasetName: test.name, epsilons: epsilons.map((e) => e.label), constants: true,
        notes: [`Models of run ${name}: baseline and JPEG-DL (${trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training}).`],
      });
      const sum = summarizeUniversal(records);
      const top = sum.epsilons[sum.epsilons.length - 1].label;
      const of = (label: string) => sum.series.find((x) => x.label === label);
      const f = (v: number | null | undefined) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);
      const worst = (label: string) => f(of(label) ? sum.worst(top, of(label)!.key)?.accuracy : null);
      universalNote = `Universal perturbations (${testData.labels.length} test images, fitted on ${fitData.labels.length} training images; universal/universal.md): accuracy under the worst of ${sum.sources.length} universal perturbations at ${top} baseline ${worst('baseline')}, JPEG-DL soft ${worst('jpeg-dl [soft]')}, hard ${worst('jpeg-dl [hard]')} (clean ${f(of('baseline')?.clean)}, ${f(of('jpeg-dl [soft]')?.clean)}, ${f(of('jpeg-dl [hard]')?.clean)}).`;
      log(universalNote);
    }
    if (finishPhase('universal')) return unfinished(state.phaseSeconds);

    // 10. Adversarial patches (opt-in): fitted on training images per model and size, both models scored on the same test images at the same positions; resumable per record, fitted patches saved.
    startPhase();
    let patchNote: string | null = null;
    if (cfg.patch) {
      const p = cfg.patch;
      const testData = subset(test, Math.min(p.n, test.labels.length), cfg.eval.seed);
      const fitData = subset(train, Math.min(p.fitN, train.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'patch');
      const options = { sizes: p.sizes, epochs: p.epochs, seed: cfg.eval.seed, evalBatchSize: cfg.eval.batchSize };
      const { sizes } = resolvePatchEval(options, Math.min(testData.height, testData.width));
      log(`patch: ${testData.labels.length} test images, patches of ${sizes.join(', ')} px fitted on ${fitData.labels.length} training images`);
      const { records, patches } = await evaluatePatches(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard'], craftModes: ['soft', 'bpda-identity'] },
        ],
        fitData, testData,
        { ...options, dataset: test.name, recordsPath: join(dir, 'records.jsonl'), patchesDir: join(dir, 'patches') },
      );
      writePatchOutputs(dir, testData, fitData, records, patches, {
        seed: cfg.eval.seed, datasetName: test.name, noise: true,
        notes: [`Models of run ${name}: baseline and JPEG-DL (${trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training}).`],
      });
      const sum = summarizePatches(records);
      const top = sum.sizes[sum.sizes.length - 1].size;
      const of = (label: string) => sum.series.find((x) => x.label === label);
      const f = (v: number | null | undefined) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);
      const worst = (label: string) => f(of(label) ? sum.worst(top, of(label)!.key)?.accuracy : null);
      patchNote = `Adversarial patches (${testData.labels.length} test images, fitted on ${fitData.labels.length} training images; patch/patch.md): accuracy under the worst of ${sum.sources.length} patches of ${top} px at every position tried baseline ${worst('baseline')}, JPEG-DL soft ${worst('jpeg-dl [soft]')}, hard ${worst('jpeg-dl [hard]')} (clean ${f(of('baseline')?.clean)}, ${f(of('jpeg-dl [soft]')?.clean)}, ${f(of('jpeg-dl [hard]')?.clean)}).`;
      log(patchNote);
    }
    if (finishPhase('patch')) return unfinished(state.phaseSeconds);

    // 11. Gradient-masking diagnostics (opt-in): both models, JPEG-DL soft, hard and through BPDA; resumable per record.
    startPhase();
    let diagnoseNote: string | null = null;
    if (cfg.diagnose) {
      const options = runDiagnoseOptions(cfg);
      const data = subset(test, Math.min(cfg.diagnose.n, test.labels.length), cfg.eval.seed);
      const dir = join(runDir, 'diagnose');
      log(`diagnose: ${data.labels.length} test images at ${options.epsLabel}`);
      const recs = await evaluateDiagnose(
        [
          { name: 'baseline', variant: 'baseline', modelSeed: cfg.modelSeed, model: baseline },
          { name: 'jpeg-dl', variant: 'jpeg-dl', modelSeed: cfg.modelSeed, model: jpegModel, jpegModes: ['soft', 'hard', 'bpda-identity'] },
        ],
        data,
        { ...options, batchSize: cfg.eval.batchSize, dataset: test.name, recordsPath: join(dir, 'records.jsonl') },
      );
      writeDiagnoseReport(dir, recs, {
        title: `Gradient-masking diagnostics: run ${name}, ${test.name} test, ${data.labels.length} images`,
        notes: [`Models of run ${name}: baseline and JPEG-DL (${trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training}).`],
        dataset: test.name, split: 'test', n: data.labels.length, seed: cfg.eval.seed,
      });
      const sum = summarizeDiagnose(recs);
      const findings = diagnoseFindings(sum);
      const of = (label: string) => sum.series.find((s) => s.label === label);
      const f = (v: number | null | undefined) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);
      const d = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(2));
      const [b, soft, hard, bpda] = [of('baseline'), of('jpeg-dl [soft]'), of('jpeg-dl [hard]'), of('jpeg-dl [bpda-identity]')];
      diagnoseNote = `Gradient-masking diagnostics (${data.labels.length} test images at ${options.epsLabel}; diagnose/diagnose.md): median finite-difference error of the gradient baseline ${d(b?.fdMedian)}, JPEG-DL soft ${d(soft?.fdMedian)}; zero input gradient on ${f(hard?.zeroGradient)} of the images in hard mode; ${sum.series[0]?.attack ?? 'the attack'} with an unbounded budget leaves baseline ${f(b?.unbounded?.accuracy)}, soft ${f(soft?.unbounded?.accuracy)}, hard ${f(hard?.unbounded?.accuracy)}, BPDA ${f(bpda?.unbounded?.accuracy)} correct (a working attack reaches 0%); ${findings.length ? `${findings.length} finding${findings.length === 1 ? '' : 's'} in the report` : 'no findings'}.`;
      log(diagnoseNote);
    }
    if (finishPhase('diagnose')) return unfinished(state.phaseSeconds);

    // 12. Report.
    startPhase();
    const records = loadRecords(join(sweepDir, RECORDS_FILE)).records;
    const verdict = computeVerdict(records);
    const tables: QuantTableView[] = [];
    const learned = readTables(jpegModel)[0]?.weights ?? [];
    for (const w of learned) {
      const channel = /chroma/.test(w.name) ? 'chroma' : 'luma';
      const initial = channel === 'chroma' ? init.tables.chroma : init.tables.luma;
      tables.push({ model: 'jpeg-dl', channel, learned: w.values, initial, initialLabel: init.label });
    }
    const reportConfig: ReportConfig = {
      dataset: `${attackSet.name} (${attackSet.source})`,
      split: 'test',
      n: attackSet.labels.length,
      epsilons: epsilons.map((e) => e.label),
      norm: 'linf',
      attacks: cfg.eval.attacks,
      models: [
        { name: 'baseline', variant: 'baseline', seed: cfg.modelSeed, arch: cfg.model, checkpoint: join(runDir, 'models', 'baseline') },
        { name: 'jpeg-dl', variant: 'jpeg-dl', seed: cfg.modelSeed, arch: cfg.model, checkpoint: join(runDir, 'models', 'jpeg-dl'), jpegModes: [...new Set([...cfg.eval.jpegModes, 'hard'])] },
        ...runDefences(cfg).map((spec) => ({ name: defenceName(spec), variant: defenceVariant(spec), seed: cfg.modelSeed, arch: cfg.model, checkpoint: `${join(runDir, 'models', 'baseline')} behind ${defenceName(spec)}`, ...(usesJpegModes(spec) ? { jpegModes: ['hard'] } : {}) })),
      ],
      seed: cfg.eval.seed,
      batchSize: cfg.eval.batchSize,
      command: opts.command,
      preset: cfg.preset,
      train: cfg.train,
      jpegInit: { method: cfg.jpeg.method, label: init.label, alpha: cfg.jpeg.alpha },
      cleanFullTest: clean,
    };
    const trainSeconds = (state.phaseSeconds.baseline ?? 0) + (state.phaseSeconds['jpeg-dl'] ?? 0);
    const notes = [
      `VERDICT: ${verdict.headline}`,
      ...verdict.lines,
      `Clean accuracy on the full test split (${clean.n} images): baseline ${(100 * clean.baseline).toFixed(2)}%, JPEG-DL soft ${(100 * clean.soft).toFixed(2)}%, hard ${(100 * clean.hard).toFixed(2)}%.`,
      `Training: ${cfg.model}, ${cfg.train.epochs} epochs, batch ${cfg.train.batchSize}, backbone SGD lr ${cfg.train.lr} (momentum ${cfg.train.momentum}, weight decay ${cfg.train.weightDecay} on backbone weights only, x${cfg.train.gamma} at epochs ${cfg.train.milestones.join('/') || 'none'}), JPEG tables Adam lr ${cfg.train.jpegLr} (${cfg.train.jpegSchedule}); both models share seed ${cfg.train.seed}, data order and augmentation (${cfg.train.augment ? 'random crop + flip' : 'none'})${cfg.train.adversarial ? `; both ${describeAdversarial(cfg.train.adversarial)} (crafted with BatchNorm in inference mode; JPEG-DL through its soft quantiser)` : cfg.train.noiseSd ? `; both with ${trainingMetadata(null, cfg.train.noiseSd).training} for randomised smoothing` : ''}; ${trainSeconds.toFixed(0)} s of training.`,
      `JPEG-DL tables initialised from ${init.label}; alpha ${cfg.jpeg.alpha} fixed (not trained). Modes: 'soft' = the soft quantiser the reference evaluates with; 'hard' = round(z/q)*q, a real JPEG forward pass.`,
    ];
    if (corruptionNote) notes.push(corruptionNote);
    if (certifyNote) notes.push(certifyNote);
    if (spatialNote) notes.push(spatialNote);
    if (universalNote) notes.push(universalNote);
    if (patchNote) notes.push(patchNote);
    if (diagnoseNote) notes.push(diagnoseNote);
    if (cfg.train.adversarial) {
      // Robust overfitting (Rice et al. 2020) shows as a best epoch well before the last.
      const [b, j] = [robustSummary(baseRes.history), robustSummary(jpegRes.history)];
      const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
      if (b && j) {
        notes.push(
          `Robust test accuracy while training (${b.last.attack} at ${b.last.epsLabel} on ${b.last.n} test images, after every epoch; history.json): baseline ${pct(b.last.accuracy)} after the last epoch (best ${pct(b.best.accuracy)}, epoch ${b.bestEpoch}), JPEG-DL ${pct(j.last.accuracy)} (best ${pct(j.best.accuracy)}, epoch ${j.bestEpoch}).`,
        );
      }
    }
    if (clean.soft - clean.hard > 0.1) {
      const minQ = Math.min(...tables.flatMap((t) => t.learned));
      notes.push(
        `JPEG-DL loses ${(100 * (clean.soft - clean.hard)).toFixed(1)} points of clean accuracy when its soft quantiser is replaced by real (hard) JPEG rounding. ` +
          `The reference's soft quantiser keeps only indices within +-127, so coefficients beyond 127*q saturate (smallest learned step ${minQ.toFixed(3)}, i.e. |coefficient| capped at ${(127 * minQ).toFixed(1)} on the 0-255 DCT scale, where an 8x8 block's DC reaches 1024); ` +
          `hard rounding has no such cap, so the backbone sees inputs it was not trained on. The soft model is not a JPEG codec in this regime.`,
      );
    }
    const report = buildReport({
      title: `JPEG-DL robustness: ${cfg.model} on ${train.name} (preset ${cfg.preset})`,
      records,
      config: reportConfig,
      backend,
      versions: { tfjs: tf.version_core },
      tables,
      notes,
      classes: { names: attackSet.classNames, labels: Array.from(attackSet.labels) },
      training: [
        trainingView('baseline', 'baseline', baseRes.history, trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training),
        trainingView('jpeg-dl', 'jpeg-dl', jpegRes.history, trainingMetadata(cfg.train.adversarial, cfg.train.noiseSd).training),
      ],
    });
    const files = writeReport(runDir, report);
    const terminal = renderTerminal(report);
    const terminalPath = join(runDir, 'report.txt');
    writeFileAtomic(terminalPath, terminal + '\n');
    writeJsonAtomic(join(runDir, 'verdict.json'), verdict);
    finishPhase('report');
    const totalSeconds = Object.values(state.phaseSeconds).reduce((s, v) => s + (v ?? 0), 0);
    writeJsonAtomic(join(runDir, 'run.json'), { finished: true, backend, phaseSeconds: state.phaseSeconds, totalSeconds, thisInvocationSeconds: (Date.now() - t0) / 1000, finishedAt: new Date().toISOString() });
    return { runDir, files: { ...files, terminal: terminalPath }, verdict, phaseSeconds: state.phaseSeconds, totalSeconds, backend, terminal, finished: true };
  } finally {
    for (const m of created) m.dispose();
  }
}

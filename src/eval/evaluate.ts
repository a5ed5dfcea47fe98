/**
 * `jpegdl-robust evaluate` as a library function: load checkpoints (or a run directory), load the
 * dataset, run the sweep (resumable), render the report. Every argument is checked first.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backendInfo, describeBackend } from '../backend.ts';
import { loadDataset } from '../data/load.ts';
import { subset } from '../data/subset.ts';
import { DATASET_NAMES, type DatasetSpec } from '../data/types.ts';
import { exampleBudgets, parseEpsilonList, type Epsilon } from '../eps.ts';
import { NORMS, type Norm } from '../types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { defenceName, defended as defendedModel, defenceVariant, repeatedDefence, type DefenceSpec } from '../defences/index.ts';
import { assertLogitOutputs, declaredLogits } from '../io/import-model.ts';
import { loadModel, loadModelMetadata } from '../io/model-io.ts';
import { standardTables } from '../jpeg/tables.ts';
import { buildReport, type QuantTableView, type ReportConfig, type ReportExample } from '../report/model.ts';
import { writeEvaluationExamples } from './examples.ts';
import { normText } from '../report/format.ts';
import { renderTerminal } from '../report/terminal.ts';
import { writeReport, type ReportFiles } from '../report/write.ts';
import { readTables } from '../train/jpeg-params.ts';
import { findNamedAttack, namedAttackNames, type NamedAttack } from './named-attacks.ts';
import { loadRecords, type Variant } from './records.ts';
import { RECORDS_FILE, TRANSFER_PARAMS, runSweep, type SweepAttack, type SweepModel } from './sweep.ts';

/** Default epsilons: L-inf 0, 1, 2, 4, 8, 16 /255. */
export const DEFAULT_EPSILONS = '0,1/255,2/255,4/255,8/255,16/255';
/** Default attacks. */
export const DEFAULT_ATTACKS = ['fgsm', 'pgd'];

/** All attack names evaluate accepts. */
export function evaluateAttackNames(): string[] {
  return namedAttackNames();
}

function lookupAttack(name: string): NamedAttack {
  const entry = findNamedAttack(name);
  if (!entry) throw new Error(`--attack: unknown attack "${name}"; known attacks: ${evaluateAttackNames().join(', ')}`);
  return entry;
}

const NORM_FLAG: Record<Norm, string> = { linf: '--eps', l2: '--eps-l2', l1: '--eps-l1', l0: '--eps-l0' };

/**
 * The budget list of each norm the attacks use (0-1 pixel scale; L2 and L1 sizes sum over pixels), from
 * `--eps` (L-inf, or the attacks' one norm when they share one that `--eps-l2`/`--eps-l1`/`--eps-l0` does not
 * give), `--eps-l2`, `--eps-l1` and `--eps-l0` (whole pixel counts); L-inf falls back to the run's list, then the default. `primary` is L-inf when
 * an attack is L-inf, else the first attack's norm.
 */
export function budgetsByNorm(attacks: { name: string; norm: Norm }[], given: { eps?: string; epsL2?: string; epsL1?: string; epsL0?: string }, runEps?: string): { lists: Map<Norm, Epsilon[]>; primary: Norm } {
  const norms = [...new Set(attacks.map((a) => a.norm))].sort((a, b) => NORMS.indexOf(a) - NORMS.indexOf(b));
  const text: Partial<Record<Norm, string>> = { l2: given.epsL2, l1: given.epsL1, l0: given.epsL0 };
  // One norm that is not L-inf and no list of its own: --eps is that norm's list, as before per-norm lists existed.
  const only = norms.length === 1 ? norms[0] : undefined;
  if (given.eps !== undefined) {
    if (only && only !== 'linf' && text[only] === undefined) text[only] = given.eps;
    else text.linf = given.eps;
  }
  const names = (n: Norm) => attacks.filter((a) => a.norm === n).map((a) => a.name).join(', ');
  for (const n of NORMS) {
    if (text[n] !== undefined && !norms.includes(n)) throw new Error(`${NORM_FLAG[n]}: no ${normText(n)} attack among --attack (${attacks.map((a) => `${a.name} (${a.norm})`).join(', ')}) uses these budgets`);
  }
  const lists = new Map<Norm, Epsilon[]>();
  for (const n of norms) {
    let t = text[n];
    if (t === undefined && n === 'linf') t = runEps ?? DEFAULT_EPSILONS;
    // The default budgets (and a run's) are L-inf ones: L2 and L1 attacks need their own.
    if (t === undefined) {
      throw new Error(only
        ? `--eps: the attacks are ${n} and the default budgets${runEps ? " (this run's)" : ''} are L-inf ones; give ${n} budgets, e.g. --eps ${exampleBudgets(n as Exclude<Norm, 'linf'>)}`
        : `${NORM_FLAG[n]}: ${names(n)} ${attacks.filter((a) => a.norm === n).length === 1 ? 'is an' : 'are'} ${normText(n)} attack${attacks.filter((a) => a.norm === n).length === 1 ? '' : 's'} and --eps holds L-inf budgets; give ${normText(n)} budgets, e.g. ${NORM_FLAG[n]} ${exampleBudgets(n as Exclude<Norm, 'linf'>)}`);
    }
    lists.set(n, parseEpsilonList(t, only ? '--eps' : NORM_FLAG[n], n));
  }
  return { lists, primary: norms.includes('linf') ? 'linf' : norms[0] ?? 'linf' };
}

/** Parse "pgd:steps=10,randomStart=true" into a name and typed parameters, checked against the registry. */
export function parseAttackSpec(spec: string): { name: string; params: Record<string, unknown> } {
  const s = String(spec).trim();
  if (!s) throw new Error('--attack: empty attack spec');
  const [name, rest] = s.includes(':') ? [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)] : [s, ''];
  const entry = lookupAttack(name.trim());
  const params: Record<string, unknown> = {};
  for (const kv of rest.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--attack ${s}: "${kv}" is not key=value`);
    const k = kv.slice(0, eq).trim();
    const raw = kv.slice(eq + 1).trim();
    if (k === 'eps') throw new Error(`--attack ${s}: eps comes from --eps, not from the attack spec`);
    if (!(k in entry.defaults) && !(TRANSFER_PARAMS as readonly string[]).includes(k)) throw new Error(`--attack ${s}: unknown option "${k}" for ${name}; options: ${[...Object.keys(entry.defaults), ...TRANSFER_PARAMS].join(', ')}`);
    let v: unknown = raw;
    if (/^(true|false)$/.test(raw)) v = raw === 'true';
    else if (raw !== '' && Number.isFinite(Number(raw))) v = Number(raw);
    params[k] = v;
  }
  return { name: name.trim(), params };
}

export interface EvaluateOptions {
  /** A run directory written by `jpegdl-robust run` (models/, config.json): supplies defaults. */
  run?: string;
  /** Baseline checkpoint directories (several = separately trained seeds). */
  baseline?: string[];
  /** JPEG-DL checkpoint directories (several = separately trained seeds). */
  jpegdl?: string[];
  /** Dataset spec (default: the run's, else fashion-mnist-embedded). */
  dataset?: DatasetSpec;
  split?: 'test' | 'train';
  /** Images to evaluate (class-balanced seeded subset; default: the run's, else 500). */
  n?: number;
  /**
   * Comma-separated eps list (default: the run's, else DEFAULT_EPSILONS): the L-inf attacks' budgets, or the
   * attacks' one norm's when they share one (L2 and L1 sizes sum over pixels).
   */
  eps?: string;
  /** Budgets of the L2 attacks when the evaluation mixes norms (e.g. "0,0.25,0.5,1"). */
  epsL2?: string;
  /** Budgets of the L1 attacks when the evaluation mixes norms (e.g. "0,2,4,8"). */
  epsL1?: string;
  /** Budgets of the L0 attacks (whole numbers of pixels) when the evaluation mixes norms (e.g. "0,1,5,10"). */
  epsL0?: string;
  /** Attack specs "name:key=value,..." (default: the run's, else fgsm, pgd). */
  attacks?: string[];
  /** Quantiser modes evaluated for JPEG-DL models and JPEG defences (default soft, hard). */
  jpegModes?: string[];
  /**
   * IJG qualities of the classic JPEG-compression defence: each baseline checkpoint is also evaluated
   * behind a frozen JPEG layer at each quality (model `jpeg-q<q>`, variant jpeg-defence; src/defences/jpeg.ts).
   */
  jpegDefence?: number[];
  /**
   * Input defences put in front of each baseline checkpoint, each a model of its own (src/defences):
   * JPEG at a quality (jpeg-q<q>), colour bit depth (bits-<b>) and median smoothing (median-<k>x<k>),
   * the last two of variant feature-squeezing. Joined with `jpegDefence`.
   */
  defences?: DefenceSpec[];
  /**
   * Draw adversarial examples of each evaluated model (first seed, each JPEG mode) on the first k images:
   * examples/<model>/examples.{png,json} beside the report, shown in report.html and report.md (default 0: none).
   */
  examples?: number;
  seed?: number;
  batchSize?: number;
  /** Output directory (records + report); default reports/eval-<timestamp>. */
  out?: string;
  title?: string;
  progress?: boolean;
  /** Worker threads for the sweep (default 1; see SweepOptions.workers). */
  workers?: number;
  command?: string;
  log?: (line: string) => void;
}

export interface EvaluateResult {
  outDir: string;
  files: ReportFiles & { terminal: string; records: string };
  terminal: string;
  ran: number;
  skipped: number;
}

interface RunDirConfig {
  run?: { dataset?: DatasetSpec; model?: string; modelSeed?: number; eval?: { n?: number; epsilons?: string[]; attacks?: { name: string; params?: Record<string, unknown> }[]; seed?: number; batchSize?: number } };
}

function checkpointCheck(dir: string, what: string): Record<string, unknown> {
  try {
    return loadModelMetadata(dir);
  } catch (err) {
    throw new Error(`${what} ${dir}: ${(err as Error).message.replace(/^loadModel: /, '')}`);
  }
}

function positiveInt(v: unknown, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what}: must be a positive integer, got ${String(v)}`);
  return n;
}

/** Run the evaluation end to end; resumes when `out` already holds records of the same sweep. */
export async function evaluate(opts: EvaluateOptions): Promise<EvaluateResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  // 1. Everything checked before any model or data is loaded.
  let runCfg: RunDirConfig['run'] = undefined;
  let baselineDirs = opts.baseline ?? [];
  let jpegDirs = opts.jpegdl ?? [];
  if (opts.run) {
    const cfgPath = join(opts.run, 'config.json');
    if (!existsSync(cfgPath)) throw new Error(`--run: ${cfgPath} does not exist (not a run directory of \`jpegdl-robust run\`)`);
    try {
      runCfg = (JSON.parse(readFileSync(cfgPath, 'utf8')) as RunDirConfig).run;
    } catch (err) {
      throw new Error(`--run: ${cfgPath} is not valid JSON (${(err as Error).message})`);
    }
    if (!baselineDirs.length && existsSync(join(opts.run, 'models', 'baseline'))) baselineDirs = [join(opts.run, 'models', 'baseline')];
    if (!jpegDirs.length && existsSync(join(opts.run, 'models', 'jpeg-dl'))) jpegDirs = [join(opts.run, 'models', 'jpeg-dl')];
    if (!baselineDirs.length && !jpegDirs.length) throw new Error(`--run: ${opts.run}/models holds no finished model (has the run finished training?)`);
  }
  if (!baselineDirs.length && !jpegDirs.length) throw new Error('evaluate: give --run <dir> or at least one --baseline / --jpeg-dl checkpoint directory');
  const metas = new Map<string, Record<string, unknown>>();
  for (const d of baselineDirs) metas.set(d, checkpointCheck(d, '--baseline'));
  for (const d of jpegDirs) metas.set(d, checkpointCheck(d, '--jpeg-dl'));
  const attackSpecs = opts.attacks?.length
    ? opts.attacks.map(parseAttackSpec)
    : runCfg?.eval?.attacks?.length
      ? runCfg.eval.attacks.map((a) => parseAttackSpec([a.name, Object.entries(a.params ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(',')].filter(Boolean).join(':')))
      : DEFAULT_ATTACKS.map(parseAttackSpec);
  const budgets = budgetsByNorm(attackSpecs.map((a) => ({ name: a.name, norm: lookupAttack(a.name).norm ?? 'linf' })), { eps: opts.eps, epsL2: opts.epsL2, epsL1: opts.epsL1, epsL0: opts.epsL0 }, runCfg?.eval?.epsilons?.join(','));
  const epsilons = budgets.lists.get(budgets.primary)!;
  const mixed = budgets.lists.size > 1;
  const n = positiveInt(opts.n ?? runCfg?.eval?.n ?? 500, '-n');
  const batchSize = positiveInt(opts.batchSize ?? runCfg?.eval?.batchSize ?? 100, '--batch-size');
  const seed = Number(opts.seed ?? runCfg?.eval?.seed ?? 0);
  if (!Number.isInteger(seed)) throw new Error(`--seed: must be an integer, got ${String(opts.seed)}`);
  const split = opts.split ?? 'test';
  if (split !== 'test' && split !== 'train') throw new Error(`--split: must be test or train, got ${String(split)}`);
  const dataset: DatasetSpec = { ...(runCfg?.dataset ?? {}), ...(opts.dataset ?? {}) };
  if (dataset.name && !(DATASET_NAMES as readonly string[]).includes(dataset.name)) throw new Error(`--dataset: unknown name "${dataset.name}" (known: ${DATASET_NAMES.join(', ')})`);
  const jpegModes = opts.jpegModes?.length ? opts.jpegModes : ['soft', 'hard'];
  for (const m of jpegModes) if (!['soft', 'hard', 'bpda-identity', 'bpda-soft'].includes(m)) throw new Error(`--jpeg-modes: unknown mode "${m}" (soft, hard, bpda-identity, bpda-soft)`);
  const defenceQualities = opts.jpegDefence ?? [];
  for (const q of defenceQualities) if (!Number.isInteger(q) || q < 1 || q > 100) throw new Error(`--jpeg-defence: qualities must be integers in 1..100, got ${String(q)}`);
  if (new Set(defenceQualities).size !== defenceQualities.length) throw new Error(`--jpeg-defence: quality listed twice (${defenceQualities.join(', ')})`);
  if (defenceQualities.length > 0 && !baselineDirs.length) throw new Error('--jpeg-defence: needs a baseline checkpoint to put behind JPEG (--baseline or a run with one)');
  const defenceSpecs: DefenceSpec[] = [...defenceQualities.map((quality) => ({ kind: 'jpeg' as const, quality })), ...(opts.defences ?? [])];
  const twice = repeatedDefence(defenceSpecs);
  if (twice) throw new Error(`--defence: ${twice} is listed twice (--jpeg-defence and --defence together count once)`);
  if (defenceSpecs.length > 0 && !baselineDirs.length) throw new Error('--defence: needs a baseline checkpoint to put behind the defence (--baseline or a run with one)');
  const examplesK = opts.examples ?? 0;
  if (!Number.isInteger(examplesK) || examplesK < 0) throw new Error(`--examples: must be a non-negative integer (images per picture), got ${String(opts.examples)}`);
  const outDir = resolve(opts.out ?? join('reports', `eval-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`));

  // 2. Models and data.
  const loaded: { dir: string; name: string; variant: Variant; model: tf.LayersModel; seed: number; arch?: string; training?: string }[] = [];
  const created: tf.LayersModel[] = [];
  const defended: tf.LayersModel[] = [];
  let images: tf.Tensor4D | undefined;
  let labels: tf.Tensor1D | undefined;
  try {
    for (const [variant, dirs] of [['baseline', baselineDirs], ['jpeg-dl', jpegDirs]] as const) {
      for (let i = 0; i < dirs.length; i++) {
        const dir = dirs[i];
        let model: tf.LayersModel;
        try {
          model = await loadModel(dir);
        } catch (err) {
          throw new Error(`--${variant} ${dir}: cannot load the checkpoint (${(err as Error).message.replace(/^loadModel: /, '')})`);
        }
        created.push(model);
        const meta = metas.get(dir) ?? {};
        if (!declaredLogits(meta)) assertLogitOutputs(model, `--${variant} ${dir}`);
        const mSeed = typeof meta.seed === 'number' ? meta.seed : typeof meta.modelSeed === 'number' ? meta.modelSeed : dirs.length > 1 ? i : (runCfg?.modelSeed ?? 0);
        const arch = typeof meta.model === 'string' ? meta.model : runCfg?.model;
        const hasJpeg = model.layers.some((l) => l.getClassName() === 'JpegLayer');
        if (variant === 'jpeg-dl' && !hasJpeg) throw new Error(`--jpeg-dl ${dir}: the model has no JpegLayer (is it a baseline checkpoint?)`);
        // An imported model's training happened elsewhere: say where it came from rather than nothing.
        const imported = meta.imported as { format?: unknown } | undefined;
        const importedFrom = imported && typeof imported === 'object' ? `imported${typeof imported.format === 'string' ? ` from ${imported.format}` : ''} (training not recorded)` : undefined;
        const training = typeof meta.training === 'string' ? meta.training : importedFrom;
        loaded.push({ dir, name: variant, variant, model, seed: mSeed, arch, ...(training ? { training } : {}) });
      }
    }
    // The input defences of each baseline: new models sharing the baseline's weights (disposing one frees only its JPEG layer, if any).
    for (const b of loaded.filter((m) => m.variant === 'baseline')) {
      for (const spec of defenceSpecs) {
        const model = defendedModel(b.model, spec);
        defended.push(model);
        loaded.push({ ...b, dir: `${b.dir} behind ${spec.kind === 'jpeg' ? `JPEG q${spec.quality}` : defenceName(spec)}`, name: defenceName(spec), variant: defenceVariant(spec), model });
      }
    }
    const seeds = (v: Variant) => loaded.filter((m) => m.variant === v && m.name === v).map((m) => m.seed);
    for (const v of ['baseline', 'jpeg-dl'] as const) if (new Set(seeds(v)).size !== seeds(v).length) throw new Error(`two ${v} checkpoints have the same seed ${seeds(v).join(', ')}; give checkpoints of separately trained seeds`);

    const splits = await loadDataset(dataset);
    const full = splits[split];
    const ds = n >= full.labels.length ? full : subset(full, n, seed);
    for (const m of loaded) {
      const shape = m.model.inputs[0].shape.slice(1);
      const want = [ds.height, ds.width, ds.channels];
      if (shape.some((s, k) => s !== null && s !== want[k])) throw new Error(`${m.dir}: the model takes input [${shape}] but ${ds.name} images are [${want}]; use the dataset it was trained on`);
      const classes = (m.model.outputs[0].shape as number[]).at(-1);
      if (classes !== ds.numClasses) throw new Error(`${m.dir}: the model has ${classes} outputs but ${ds.name} has ${ds.numClasses} classes`);
    }
    images = tf.tensor4d(ds.images, [ds.labels.length, ds.height, ds.width, ds.channels]);
    labels = tf.tensor1d(ds.labels, 'int32');
    const epsCount = mixed ? `eps per norm (${[...budgets.lists].map(([nm, l]) => `${normText(nm)} ${l.length}`).join(', ')})` : `${epsilons.length} eps`;
    log(`evaluating ${loaded.length} model(s) on ${ds.labels.length} ${split} images of ${ds.name}, ${attackSpecs.length} attack(s) x ${epsCount}${(opts.workers ?? 1) > 1 ? ` on ${opts.workers} worker processes` : ''} -> ${outDir}`);

    // 3. Sweep (resumable) and report.
    const backend = backendInfo() ? describeBackend(backendInfo()!) : tf.getBackend();
    // Models with a JPEG layer run in each JPEG mode; the others (baselines, squeezers) as they are.
    const modesOf = (v: Variant) => (v === 'jpeg-dl' || v === 'jpeg-defence' || v === 'random-jpeg' ? jpegModes : undefined);
    const models: SweepModel[] = loaded.map((m) => ({ name: m.name, variant: m.variant, seed: m.seed, model: m.model, jpegModes: modesOf(m.variant) }));
    const attacks: SweepAttack[] = attackSpecs.map((a) => {
      const e = lookupAttack(a.name);
      return { name: a.name, params: a.params, fn: e.run, norm: e.norm, seeded: a.params.seed === undefined && 'seed' in e.defaults, ...(mixed ? { epsilons: budgets.lists.get(e.norm ?? 'linf')! } : {}) };
    });
    const res = await runSweep({ models, attacks, epsilons, images, labels, batchSize, seed, outDir, progressBar: opts.progress, backend, workers: opts.workers });
    const records = loadRecords(join(outDir, RECORDS_FILE)).records;

    const tables: QuantTableView[] = [];
    const initPath = opts.run ? join(opts.run, 'jpeg-init.json') : undefined;
    const init = initPath && existsSync(initPath) ? (JSON.parse(readFileSync(initPath, 'utf8')) as { tables: { luma: number[]; chroma?: number[] }; label: string }) : undefined;
    const reference = standardTables(50);
    for (const m of loaded.filter((x) => x.variant === 'jpeg-dl').slice(0, 1)) {
      for (const layer of readTables(m.model)) {
        for (const w of layer.weights) {
          if (w.values.length % 64 !== 0) continue;
          const channel = /chroma/i.test(w.name) ? 'chroma' : 'luma';
          for (let r = 0; r < w.values.length / 64; r++) {
            const label = w.values.length > 64 ? `${channel} (round ${r + 1})` : channel;
            tables.push({
              model: 'jpeg-dl',
              channel: label,
              learned: w.values.slice(64 * r, 64 * r + 64),
              initial: init ? (channel === 'chroma' ? init.tables.chroma : init.tables.luma) : reference[channel],
              initialLabel: init ? init.label : 'standard JPEG quality 50, for reference only: the checkpoint does not record its initial tables',
            });
          }
        }
      }
    }
    const archs = [...new Set(loaded.map((m) => m.arch).filter(Boolean))];
    const config: ReportConfig = {
      dataset: ds.name,
      split,
      n: ds.labels.length,
      epsilons: epsilons.map((e) => e.label),
      norm: mixed ? 'mixed' : budgets.primary,
      ...(mixed ? { epsilonsByNorm: Object.fromEntries([...budgets.lists].map(([nm, l]) => [nm, l.map((e) => e.label)])) } : {}),
      attacks: attackSpecs,
      models: loaded.map((m) => ({ name: m.name, variant: m.variant, seed: m.seed, arch: m.arch, checkpoint: m.dir, jpegModes: modesOf(m.variant), ...(m.training ? { training: m.training } : {}) })),
      seed,
      batchSize,
      command: opts.command,
      datasetSpec: dataset,
      ...(opts.run ? { run: opts.run } : {}),
    };
    // Pictures: crafted again in this process (cheap next to the sweep), so any worker count draws the same.
    let examples: ReportExample[] | undefined;
    if (examplesK > 0) {
      const firstSeeds = loaded.filter((m, i) => loaded.findIndex((o) => o.name === m.name) === i);
      const series = firstSeeds.flatMap((m) => {
        const modes = modesOf(m.variant) ?? [null];
        return modes.map((mode) => ({ label: mode ? `${m.name} [${mode}]` : m.name, model: m.model, jpegMode: mode, name: m.name, modelSeed: m.seed }));
      });
      examples = writeEvaluationExamples({
        outDir,
        k: examplesK,
        series,
        attacks: attacks.map((a) => ({ name: a.name, params: a.params ?? {}, fn: a.fn!, norm: a.norm ?? 'linf', seeded: a.seeded ?? false, ...(a.epsilons ? { epsilons: a.epsilons } : {}) })),
        epsilons,
        records,
        images: images!,
        labels: labels!,
        seed,
        classNames: ds.classNames,
        meta: { dataset: ds.name, split },
      });
      log(`drew adversarial examples of ${examples.length} model(s) in ${join(outDir, 'examples')}`);
    }
    const report = buildReport({
      title: opts.title ?? `JPEG-DL robustness evaluation${archs.length === 1 ? `: ${archs[0]}` : ''} on ${ds.name}`,
      records,
      config,
      backend,
      versions: { tfjs: tf.version_core, node: process.version },
      tables,
      examples,
      classes: { names: ds.classNames, labels: Array.from(ds.labels) },
    });
    const files = writeReport(outDir, report);
    const terminal = renderTerminal(report);
    const terminalPath = join(outDir, 'report.txt');
    writeFileAtomic(terminalPath, terminal + '\n');
    return { outDir, files: { ...files, terminal: terminalPath, records: join(outDir, RECORDS_FILE) }, terminal, ran: res.ran, skipped: res.skipped };
  } finally {
    images?.dispose();
    labels?.dispose();
    // The defence wrappers free only their JPEG layers; the loaded checkpoints free the rest.
    for (const m of [...defended, ...created]) m.dispose();
  }
}

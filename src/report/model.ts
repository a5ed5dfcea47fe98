/**
 * A report is data built from sweep records: every rendering (terminal, Markdown, HTML, JSON)
 * reads this one object, so they can never disagree.
 */
import { epsText, fmtInterval, fmtNorm, fmtPct, fmtSeconds, normText } from './format.ts';
import { robustSummary } from '../train/history.ts';
import { pairedComparisons, type PairedRow } from './paired.ts';
import { CLEAN_ATTACK, type CellRecord } from '../eval/records.ts';
import { aggregate, robustBits, seriesKey, seriesLabel, transferAttackLabels, eotAttackLabels, WORST_CASE, type AggregateCell, type RobustCell, type SeriesId } from '../eval/summary.ts';
import { paperComparison, type PaperComparison } from '../paper/compare.ts';
import { evaluationChecks } from './sanity.ts';
import { checkClassInfo, perClassChecks, perClassTable, type ClassInfo, type PerClassTable } from './per-class.ts';
import { queryChecks, queryTable, type QueryTable } from './queries.ts';

export const REPORT_SCHEMA = 'jpegdl-robust-report/1';

/** How the sweep was configured: enough to rerun it. */
export interface ReportConfig {
  dataset?: string;
  split?: string;
  /** Images evaluated per cell. */
  n: number;
  /** Eps labels in sweep order, e.g. ["0", "1/255"]. */
  epsilons: string[];
  norm: string;
  attacks: { name: string; params: Record<string, unknown> }[];
  /** `training`: what the model's training did, from its saved metadata ("standard training", "PGD-10 adversarial training, ..."). */
  models: { name: string; variant: string; seed: number; arch?: string; checkpoint?: string; jpegModes?: string[]; training?: string }[];
  seed: number;
  batchSize: number;
  /** Command line that produced the sweep, if known. */
  command?: string;
  [extra: string]: unknown;
}

/** One 8x8 quantisation table to draw: learned values next to the ones training started from. */
export interface QuantTableView {
  /** Model (series) name the table belongs to. */
  model: string;
  /** e.g. "luma", "chroma", "luma (round 2)". */
  channel: string;
  /** 64 values, raster order [u][v], 0-255 DCT scale. */
  learned: number[];
  /** 64 values the training started from (standard JPEG tables or the sensitivity init). */
  initial?: number[];
  /** What `initial` is, e.g. "standard JPEG (Annex K), quality 50". */
  initialLabel?: string;
}

/** One trained model's per-epoch record, as the report shows it (history.json without the tables). */
export interface TrainingView {
  model: string;
  variant: string;
  /** What the training did ("standard training" or the adversarial recipe). */
  training?: string;
  epochs: {
    epoch: number;
    lr: number;
    trainLoss: number;
    trainAcc: number;
    testAcc?: Partial<Record<'plain' | 'soft' | 'hard', number>>;
    testRobustAcc?: { attack: string; epsLabel: string; n: number; accuracy: number };
    seconds: number;
    imagesPerSec: number;
  }[];
}

/** The training summary table: one row per model with its last epoch (accuracies in %). */
export function trainingTableRows(training: TrainingView[]): { header: string[]; rows: string[][] } {
  const robust = training.some((t) => t.epochs.some((e) => e.testRobustAcc));
  const header = ['model', 'training', 'epochs', 'final train loss', 'final train acc %', 'final test acc %', ...(robust ? ['final robust acc %', 'best robust acc % (epoch)'] : []), 'mean s/epoch'];
  const rows = training.map((t) => {
    const last = t.epochs.at(-1);
    const test = last?.testAcc ? Object.entries(last.testAcc).map(([k, v]) => `${k === 'plain' ? '' : `${k} `}${fmtPct(v)}`).join(', ') : '–';
    const watched = robustSummary(t.epochs);
    return [
      t.model, t.training ?? '–', String(t.epochs.length), last ? last.trainLoss.toFixed(4) : '–', fmtPct(last?.trainAcc), test,
      ...(robust ? [last?.testRobustAcc ? `${fmtPct(last.testRobustAcc.accuracy)} (${last.testRobustAcc.attack} at ${last.testRobustAcc.epsLabel})` : '–', watched ? `${fmtPct(watched.best.accuracy)} (${watched.bestEpoch})` : '–'] : []),
      t.epochs.length ? (t.epochs.reduce((a, e) => a + e.seconds, 0) / t.epochs.length).toFixed(1) : '–',
    ];
  });
  return { header, rows };
}

/** The per-epoch view of a training history (drops the tables, which the report shows on their own). */
export function trainingView(model: string, variant: string, history: { epoch: number; lr: number; trainLoss: number; trainAcc: number; testAcc?: TrainingView['epochs'][number]['testAcc']; testRobustAcc?: TrainingView['epochs'][number]['testRobustAcc']; seconds: number; imagesPerSec: number }[], training?: string): TrainingView {
  return {
    model,
    variant,
    ...(training ? { training } : {}),
    epochs: history.map((h) => ({ epoch: h.epoch, lr: h.lr, trainLoss: h.trainLoss, trainAcc: h.trainAcc, ...(h.testAcc ? { testAcc: h.testAcc } : {}), ...(h.testRobustAcc ? { testRobustAcc: h.testRobustAcc } : {}), seconds: h.seconds, imagesPerSec: h.imagesPerSec })),
  };
}

export interface ReportInput {
  title?: string;
  records: CellRecord[];
  config: ReportConfig;
  /** describeBackend() text. */
  backend: string;
  versions?: Record<string, string>;
  tables?: QuantTableView[];
  notes?: string[];
  createdAt?: string;
  /** Per-epoch training records of the models (run reports); absent for sweeps of saved checkpoints. */
  training?: TrainingView[];
  /** Adversarial-example pictures beside the report (evaluate --examples; src/eval/examples.ts). */
  examples?: ReportExample[];
  /** Class names and the label of every evaluated image (records' image order): adds the per-class table. */
  classes?: ClassInfo;
}

/** One picture of adversarial examples, paths relative to the report's directory. */
export interface ReportExample {
  series: string;
  attack: string;
  attackParams: Record<string, unknown>;
  png: string;
  json: string;
}

/** An example picture's attack as captions show it: "pgd (steps=10)". */
export function exampleAttackLabel(e: Pick<ReportExample, 'attack' | 'attackParams'>): string {
  const p = Object.entries(e.attackParams ?? {});
  return p.length ? `${e.attack} (${p.map(([k, v]) => `${k}=${String(v)}`).join(', ')})` : e.attack;
}

/** Series as shown: identity, label, and whether it is the reference baseline for differences. */
export interface SeriesView extends SeriesId {
  key: string;
  label: string;
  seeds: number[];
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  title: string;
  createdAt: string;
  config: ReportConfig;
  backend: string;
  versions: Record<string, string>;
  /** Model seeds present (separately trained instances). */
  seeds: number[];
  /** Jpeg modes that produced numbers (null = no JPEG layer). */
  jpegModes: (string | null)[];
  series: SeriesView[];
  /** Key of the series differences are taken against (the first baseline), or null. */
  reference: string | null;
  /** Attack labels in order: 'clean' first, then attacks, then 'worst-case'. */
  attacks: string[];
  /** Eps in increasing order with their labels. */
  epsilons: { label: string; value: number; norm: string }[];
  /** Mean ± std per (series, attack, eps), including 'clean' and 'worst-case'. */
  cells: AggregateCell[];
  /** Worst case per model instance and eps. */
  robust: RobustCell[];
  timings: { totalCellMs: number; perSeriesMs: Record<string, number> };
  tables: QuantTableView[];
  /** Per-epoch training records, when the report comes from a run that trained the models. */
  training?: TrainingView[];
  /** Each model against the reference on the same images: discordant pairs and exact McNemar p (src/report/paired.ts). */
  paired?: PairedRow[];
  paper: PaperComparison;
  notes: string[];
  /** Warnings about the evaluation itself (src/report/sanity.ts); reports written before they existed have none. */
  checks?: string[];
  /** Ensemble cells (AutoAttack) with what each stage fooled; absent when no record has stages. */
  stages?: StageTable;
  /** Query-based searches' cells with queries per fooled image and accuracy against queries (src/report/queries.ts); absent when no record has a trace. */
  queries?: QueryTable;
  /** Adversarial-example pictures beside the report, when they were drawn. */
  examples?: ReportExample[];
  /** Class names and the evaluated images' labels, when the sweep recorded them (reports from before have none). */
  classes?: ClassInfo;
  /** Clean and worst-case accuracy per class (src/report/per-class.ts), when `classes` is known. */
  perClass?: PerClassTable;
  /** The raw records (with per-example bitmaps): every number above is derived from these. */
  records: CellRecord[];
}

/** What each stage of an ensemble attack fooled, per record (model instance x attack x eps). */
export interface StageTable {
  /** Stage names in running order, over all rows. */
  names: string[];
  rows: { series: string; modelSeed: number; attack: string; epsLabel: string; eps: number; n: number; cleanCorrect: number; fooledBy: Record<string, number>; correct: number }[];
}

/** The stage table of the records that carry stages (AutoAttack cells), or undefined. */
export function stageTable(records: CellRecord[]): StageTable | undefined {
  const withStages = records.filter((r) => r.stages && r.threat.eps > 0);
  if (!withStages.length) return undefined;
  const names = [...new Set(withStages.flatMap((r) => Object.keys(r.stages!)))];
  const rows = withStages
    .map((r) => ({ series: seriesLabel(r), modelSeed: r.modelSeed, attack: r.attack, epsLabel: r.threat.epsLabel, eps: r.threat.eps, n: r.n, cleanCorrect: r.cleanCorrect, fooledBy: r.stages!, correct: r.correct }))
    .sort((a, b) => a.series.localeCompare(b.series) || a.modelSeed - b.modelSeed || a.attack.localeCompare(b.attack) || a.eps - b.eps);
  return { names, rows };
}

/** The stage table as header and text rows (counts of images), for the Markdown and HTML renderers. */
export function stageTableRows(t: StageTable): { header: string[]; rows: string[][] } {
  const seeds = new Set(t.rows.map((r) => r.modelSeed)).size > 1;
  return {
    header: ['model', ...(seeds ? ['seed'] : []), 'attack', 'eps', 'correct clean', ...t.names.map((n) => `fooled by ${n}`), 'still correct'],
    rows: t.rows.map((r) => [r.series, ...(seeds ? [String(r.modelSeed)] : []), r.attack, r.epsLabel, String(r.cleanCorrect), ...t.names.map((n) => (n in r.fooledBy ? String(r.fooledBy[n]) : '–')), String(r.correct)]),
  };
}

/** Build the report object from records and the sweep's configuration. */
export function buildReport(input: ReportInput): Report {
  const { records, config } = input;
  if (!records.length) throw new Error('buildReport: no records (has the sweep run?)');
  if (input.classes) checkClassInfo(input.classes, records[0].n, 'buildReport: classes');
  // The worst-case bits serve both the robust cells and the per-class table: unpacked once.
  const withBits = robustBits(records);
  const robust = withBits.map((x) => x.cell);
  const cells = aggregate(records, robust);
  const seriesMap = new Map<string, SeriesView>();
  for (const r of records) {
    const k = seriesKey(r);
    const s = seriesMap.get(k) ?? { model: r.model, variant: r.variant, jpegMode: r.jpegMode, key: k, label: seriesLabel(r), seeds: [] };
    if (!s.seeds.includes(r.modelSeed)) s.seeds.push(r.modelSeed);
    seriesMap.set(k, s);
  }
  const series = [...seriesMap.values()].sort((a, b) => (a.variant === b.variant ? 0 : a.variant === 'baseline' ? -1 : 1));
  for (const s of series) s.seeds.sort((a, b) => a - b);
  const reference = series.find((s) => s.variant === 'baseline')?.key ?? null;
  const attackNames = [...new Set(cells.map((c) => c.attack))].filter((a) => a !== CLEAN_ATTACK && a !== WORST_CASE);
  const attacks = [CLEAN_ATTACK, ...attackNames, ...(cells.some((c) => c.attack === WORST_CASE) ? [WORST_CASE] : [])];
  const epsMap = new Map<string, { label: string; value: number; norm: string }>();
  for (const r of records) if (r.attack !== CLEAN_ATTACK || !epsMap.has(`${r.threat.norm}:${r.threat.epsLabel}`)) epsMap.set(`${r.threat.norm}:${r.threat.epsLabel}`, { label: r.threat.epsLabel, value: r.threat.eps, norm: r.threat.norm });
  const epsilons = [...epsMap.values()].sort((a, b) => a.value - b.value || a.norm.localeCompare(b.norm));
  const stages = stageTable(records);
  const queries = queryTable(records);
  const perClass = input.classes ? perClassTable(records, input.classes, series, epsilons, withBits) : undefined;
  const perSeriesMs: Record<string, number> = {};
  let total = 0;
  for (const r of records) {
    perSeriesMs[seriesLabel(r)] = (perSeriesMs[seriesLabel(r)] ?? 0) + r.wallTimeMs;
    total += r.wallTimeMs;
  }
  const partial: Omit<Report, 'paper'> = {
    schema: REPORT_SCHEMA,
    title: input.title ?? 'JPEG-DL robustness report',
    createdAt: input.createdAt ?? new Date().toISOString(),
    config,
    backend: input.backend,
    versions: input.versions ?? {},
    seeds: [...new Set(records.map((r) => r.modelSeed))].sort((a, b) => a - b),
    jpegModes: [...new Set(records.map((r) => r.jpegMode ?? null))],
    series,
    reference,
    attacks,
    epsilons,
    cells,
    robust,
    timings: { totalCellMs: total, perSeriesMs },
    tables: input.tables ?? [],
    ...(input.training?.length ? { training: input.training } : {}),
    paired: pairedComparisons(records, reference),
    notes: input.notes ?? [],
    checks: [...evaluationChecks({ series, attacks, epsilons, cells, seriesKeyOf: seriesKey, transfer: transferAttackLabels(records), eot: eotAttackLabels(records) }), ...(perClass ? perClassChecks(perClass) : []), ...(queries ? queryChecks(queries) : [])],
    ...(stages ? { stages } : {}),
    ...(queries ? { queries } : {}),
    ...(input.examples?.length ? { examples: input.examples } : {}),
    ...(perClass ? { classes: input.classes!, perClass } : {}),
    records,
  };
  return { ...partial, paper: paperComparison(partial) };
}

/** The aggregate cell of a series/attack/eps (of `norm` when given: a worst case exists per norm), if measured. */
export function findCell(report: Pick<Report, 'cells'>, seriesKeyStr: string, attack: string, epsLabel: string, norm?: string): AggregateCell | undefined {
  return report.cells.find((c) => seriesKey(c) === seriesKeyStr && c.attack === attack && c.epsLabel === epsLabel && (norm === undefined || c.norm === norm || c.attack === CLEAN_ATTACK));
}

/** The norms of a report's budgets (eps > 0) in the order reports list them; more than one in an evaluation mixing norms. */
export function reportNorms(report: Pick<Report, 'epsilons'>): string[] {
  const order = ['linf', 'l2', 'l1', 'l0'];
  return [...new Set(report.epsilons.filter((e) => e.value > 0).map((e) => e.norm))].sort((a, b) => (order.indexOf(a) + 1 || 9) - (order.indexOf(b) + 1 || 9));
}

/** Rows of the main table: clean once, then each attack and the worst case at every eps > 0 (per norm: the worst case of each norm). */
export function tableRows(report: Pick<Report, 'attacks' | 'epsilons' | 'cells'>): { attack: string; epsLabel: string; norm: string }[] {
  const rows: { attack: string; epsLabel: string; norm: string }[] = [];
  const norms = reportNorms(report);
  for (const a of report.attacks) {
    if (a === CLEAN_ATTACK) { rows.push({ attack: a, epsLabel: '0', norm: norms[0] ?? 'linf' }); continue; }
    for (const norm of norms) {
      for (const e of report.epsilons) {
        if (e.value === 0 || e.norm !== norm) continue; // eps 0 equals the clean row
        if (report.cells.some((c) => c.attack === a && c.epsLabel === e.label && c.norm === norm)) rows.push({ attack: a, epsLabel: e.label, norm });
      }
    }
  }
  return rows;
}

/** Accuracy in percent with one decimal, "± std" when several seeds. */
export function fmtAcc(c: AggregateCell | undefined): string {
  if (!c) return '–';
  const m = (100 * c.mean).toFixed(1);
  return c.std === null ? m : `${m} ± ${(100 * c.std).toFixed(1)}`;
}

/** Difference of means in percentage points with a sign, e.g. "+1.2". */
export function fmtDiff(a: AggregateCell | undefined, ref: AggregateCell | undefined): string {
  if (!a || !ref) return '–';
  const d = 100 * (a.mean - ref.mean);
  const s = d.toFixed(1);
  return d > 0 && s !== '0.0' ? `+${s}` : s === '-0.0' ? '0.0' : s;
}

/** The columns of the main table: one per series, then one difference per non-reference series. */
export function mainTable(report: Report): { header: string[]; rows: string[][] } {
  const ref = report.reference;
  const others = report.series.filter((s) => s.key !== ref);
  const header = ['attack', 'eps', ...report.series.map((s) => s.label), ...(ref ? others.map((s) => `Δ ${s.label} (pts)`) : [])];
  const mixed = reportNorms(report).length > 1;
  const rows = tableRows(report).map(({ attack, epsLabel, norm }) => {
    const cell = (k: string) => findCell(report, k, attack, epsLabel, norm);
    return [
      attack === WORST_CASE ? 'robust (worst case)' : attack,
      epsText(epsLabel, norm, mixed),
      ...report.series.map((s) => fmtAcc(cell(s.key))),
      ...(ref ? others.map((s) => fmtDiff(cell(s.key), cell(ref))) : []),
    ];
  });
  return { header, rows };
}

/** The per-cell details table (every measured cell but the worst case; eps-0 attack cells repeat the clean one). */
export function detailTable(report: Report): { header: string[]; rows: string[][] } {
  const mixed = reportNorms(report).length > 1;
  return {
    header: ['model', 'attack', 'eps', 'accuracy %', '95% CI (images)', 'success %', 'mean norm', 'max norm', 'time'],
    rows: report.cells
      .filter((c) => c.attack !== WORST_CASE && (c.attack === CLEAN_ATTACK || c.eps > 0))
      .sort((a, b) => seriesLabel(a).localeCompare(seriesLabel(b)) || a.attack.localeCompare(b.attack) || a.eps - b.eps)
      .map((c) => [seriesLabel(c), c.attack, epsText(c.epsLabel, c.norm, mixed), fmtPct(c.mean), fmtInterval(c), fmtPct(c.successRate), c.attack === CLEAN_ATTACK ? '–' : fmtNorm(c.meanNorm, c.norm), c.attack === CLEAN_ATTACK ? '–' : fmtNorm(c.maxNorm, c.norm), fmtSeconds(c.wallTimeMs)]),
  };
}

/** One-line description of the run: backend, jpeg modes, n, seeds. */
export function runSummary(report: Report): string {
  const modes = report.jpegModes.filter((m) => m !== null);
  // the dataset's name only; its source (path, generator settings) is in the config section
  const name = report.config.dataset?.replace(/\s*\(.*$/, '');
  const ds = name ? `${name}${report.config.split ? `/${report.config.split}` : ''}, ` : '';
  const norms = reportNorms(report);
  const threat = norms.length > 1 ? `${norms.slice(0, -1).map(normText).join(', ')} and ${normText(norms.at(-1)!)} threat models` : `${report.config.norm} threat model`;
  return `${ds}n = ${report.config.n} images per cell, ${threat}, seeds ${report.seeds.join(', ')}, ` +
    `JPEG mode${modes.length === 1 ? '' : 's'} ${modes.length ? modes.join(', ') : 'none'}, backend ${report.backend}`;
}

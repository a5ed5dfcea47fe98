/** Universal-perturbation results as tables (terminal, Markdown, HTML with plots) and files, all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { unpackBits } from '../eval/records.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { allCorrect, pairedBits } from '../report/paired.ts';
import { linePlotSvg, PALETTE } from '../report/svg.ts';
import { CONSTANT_PLUS, universalSeriesKey, type UniversalRecord, type UniversalSource } from './evaluate.ts';

export const UNIVERSAL_SCHEMA = 'jpegdl-robust-universal/1';

/** An evaluated model x mode. */
export interface UniversalSeries {
  key: string;
  label: string;
  variant: string;
  model: string;
  modelSeed: number;
  jpegMode: UniversalRecord['jpegMode'];
  clean: number | null;
}

/** A perturbation source: model x crafting mode. */
export interface UniversalSourceSummary {
  key: string;
  label: string;
  source: UniversalSource;
}

/** A paired comparison with the reference (the first baseline): each under its own perturbation, or each under the worst of all. */
export interface UniversalPairedRow {
  series: string;
  epsLabel: string;
  /** 'own': each model's own perturbation; 'worst': right under every source's perturbation. */
  kind: 'own' | 'worst';
  onlySeries: number;
  onlyReference: number;
  p: number;
}

/** The summary of a set of universal records. */
export interface UniversalSummary {
  n: number;
  series: UniversalSeries[];
  sources: UniversalSourceSummary[];
  /** Budgets in increasing order (labels as given). */
  epsilons: { eps: number; label: string }[];
  /** The cell of (eps label, source key, series key). */
  cell: (epsLabel: string, source: string, series: string) => UniversalRecord | undefined;
  /** Per image AND over every source's perturbation at this eps (right under all of them); null when no cell. */
  worst: (epsLabel: string, series: string) => { accuracy: number; bits: Uint8Array; sources: number } | null;
  /** The source that is the series' own model: same model and seed, the crafting mode closest to the series' mode. */
  own: (series: UniversalSeries) => UniversalSourceSummary | undefined;
  reference: string | null;
  paired: UniversalPairedRow[];
}

const labelOf = (model: string, mode: string | null, seeds: number, seed: number) => `${model}${mode ? ` [${mode}]` : ''}${seeds > 1 ? ` seed ${seed}` : ''}`;

/**
 * The pattern a series counts as its own among `sources`: fitted on the same model and seed, in the
 * crafting mode closest to the series' mode (a hard-mode series is best attacked through its BPDA mode,
 * then the soft one); undefined when none was fitted on it.
 */
export function ownSource<T extends { source: { model: string; modelSeed: number; mode: string | null } }>(sources: T[], series: { model: string; modelSeed: number; jpegMode: string | null }): T | undefined {
  const mine = sources.filter((x) => x.source.model === series.model && x.source.modelSeed === series.modelSeed);
  const preference = series.jpegMode === 'hard' ? ['hard', 'bpda-identity', 'bpda-soft', 'soft'] : [series.jpegMode, 'soft', 'bpda-soft', 'bpda-identity', 'hard'];
  for (const m of preference) {
    const hit = mine.find((x) => x.source.mode === m);
    if (hit) return hit;
  }
  return mine[0];
}

/** Summarise records: series and sources in first-seen order, the first baseline series is the reference. */
export function summarizeUniversal(records: UniversalRecord[]): UniversalSummary {
  if (records.length === 0) throw new Error('universal report: no records');
  const n = records[0].n;
  const seedCount = (model: string) => new Set(records.filter((r) => r.model === model).map((r) => r.modelSeed)).size;
  const seriesMap = new Map<string, UniversalSeries>();
  for (const r of records) {
    const key = universalSeriesKey(r);
    const s = seriesMap.get(key) ?? { key, label: labelOf(r.model, r.jpegMode, seedCount(r.model), r.modelSeed), variant: r.variant, model: r.model, modelSeed: r.modelSeed, jpegMode: r.jpegMode, clean: null };
    if (!r.source) s.clean = r.accuracy;
    seriesMap.set(key, s);
  }
  const sourceMap = new Map<string, UniversalSourceSummary>();
  for (const r of records) {
    if (!r.source) continue;
    const key = universalSeriesKey(r.source);
    const label = r.source.variant === 'constant' ? `uniform ${r.source.model === CONSTANT_PLUS ? '+' : '−'}eps` : labelOf(r.source.model, r.source.mode, seedCount(r.source.model), r.source.modelSeed);
    if (!sourceMap.has(key)) sourceMap.set(key, { key, source: r.source, label });
  }
  const epsMap = new Map<string, number>();
  for (const r of records) if (r.source) epsMap.set(r.epsLabel, r.eps);
  const epsilons = [...epsMap.entries()].map(([label, eps]) => ({ eps, label })).sort((a, b) => a.eps - b.eps);
  const cells = new Map(records.filter((r) => r.source).map((r) => [`${r.epsLabel}|${universalSeriesKey(r.source!)}|${universalSeriesKey(r)}`, r]));
  const cell = (e: string, src: string, ser: string) => cells.get(`${e}|${src}|${ser}`);
  const sources = [...sourceMap.values()];
  const own = (s: UniversalSeries) => ownSource(sources, s);
  const series = [...seriesMap.values()];
  const worstCache = new Map<string, { accuracy: number; bits: Uint8Array; sources: number } | null>();
  const worst = (e: string, ser: string) => {
    const k = `${e}|${ser}`;
    if (!worstCache.has(k)) {
      const rs = sources.map((src) => cell(e, src.key, ser)).filter((r): r is UniversalRecord => r !== undefined);
      let value: { accuracy: number; bits: Uint8Array; sources: number } | null = null;
      if (rs.length) {
        const bits = allCorrect(rs.map((r) => unpackBits(r.correctBits, n)), n);
        value = { accuracy: bits.reduce((a, v) => a + v, 0) / n, bits, sources: rs.length };
      }
      worstCache.set(k, value);
    }
    return worstCache.get(k)!;
  };
  const ref = series.find((s) => s.variant === 'baseline') ?? null;
  const paired: UniversalPairedRow[] = [];
  const pair = (s: UniversalSeries, epsLabel: string, kind: 'own' | 'worst', bitsA: Uint8Array, bitsB: Uint8Array) => paired.push({ series: s.label, epsLabel, kind, ...pairedBits(bitsA, bitsB) });
  if (ref) {
    const refOwn = own(ref);
    for (const s of series.filter((x) => x !== ref)) {
      const sOwn = own(s);
      for (const e of epsilons) {
        const [a, b] = [sOwn && cell(e.label, sOwn.key, s.key), refOwn && cell(e.label, refOwn.key, ref.key)];
        if (a && b) pair(s, e.label, 'own', unpackBits(a.correctBits, n), unpackBits(b.correctBits, n));
      }
      if (sources.length > 1) {
        for (const e of epsilons) {
          const [a, b] = [worst(e.label, s.key), worst(e.label, ref.key)];
          if (a && b) pair(s, e.label, 'worst', a.bits, b.bits);
        }
      }
    }
  }
  return { n, series, sources, epsilons, cell, worst, own, reference: ref?.key ?? null, paired };
}

/**
 * Warnings read off the records: series that give one class for 90% or more of the clean images, and fits that found
 * less than a constant shift (a model's own fitted perturbation leaving 2 points or more above the
 * worse of uniform ±eps: the gradient it was fitted through misleads, as a masked one does).
 */
export function universalWarnings(records: UniversalRecord[], sum: UniversalSummary = summarizeUniversal(records)): string[] {
  const constant = sum.sources.filter((x) => x.source.variant === 'constant');
  const out = sum.series.flatMap((s) => {
    const clean = records.find((r) => !r.source && universalSeriesKey(r) === s.key);
    return clean && clean.topClassShare >= 0.9
      ? [`${s.label}: predicts one class for ${clean.topClassShare === 1 ? 'every' : `${pct(clean.topClassShare)}% of the`} clean image${clean.topClassShare === 1 ? '' : 's'}, so no perturbation can change much and its accuracy says nothing about robustness.`]
      : [];
  });
  for (const s of sum.series) {
    const own = sum.own(s);
    if (!own || !constant.length) continue;
    const weak = sum.epsilons.flatMap((e) => {
      const mine = sum.cell(e.label, own.key, s.key);
      const shifts = constant.map((c) => sum.cell(e.label, c.key, s.key)).filter((r): r is UniversalRecord => r !== undefined);
      if (!mine || !shifts.length) return [];
      const best = shifts.reduce((a, r) => (r.accuracy < a.accuracy ? r : a));
      return mine.accuracy >= best.accuracy + 0.02 ? [`${e.label}: ${pct(mine.accuracy)}% against ${pct(best.accuracy)}% under ${sum.sources.find((x) => x.key === universalSeriesKey(best.source!))!.label}`] : [];
    });
    if (weak.length) out.push(`${s.label}: its own fitted perturbation (fitted on ${own.label}) does worse than a constant shift of every pixel (${weak.join('; ')}): the fit did not find what a flat pattern does, the sign of a gradient that misleads (masked) through that crafting mode; read the worst-of rows.`);
  }
  return out;
}

/** A perturbation row's name: its budget and the model it was fitted on, or the constant shift. */
const rowName = (epsLabel: string, src: UniversalSourceSummary) => `${epsLabel} ${src.source.variant === 'constant' ? src.label : `fitted on ${src.label}`}`;

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : fmtPct(v));

/** Rows of an accuracy-like table: clean first, then per eps and source; a cell of the series' own perturbation is marked with *. */
function matrixRows(sum: UniversalSummary, value: (r: UniversalRecord) => number | null, accuracy: boolean): string[][] {
  const header = ['perturbation', ...sum.series.map((s) => s.label)];
  const rows = [header];
  if (accuracy) rows.push(['none (clean)', ...sum.series.map((s) => pct(s.clean))]);
  for (const e of sum.epsilons) {
    for (const src of sum.sources) {
      rows.push([rowName(e.label, src), ...sum.series.map((s) => {
        const r = sum.cell(e.label, src.key, s.key);
        const v = r ? value(r) : null;
        return v === null ? '–' : `${pct(v)}${sum.own(s)?.key === src.key ? '*' : ''}`;
      })]);
    }
    // The worst case over the sources: an image counts when right under every perturbation of this eps.
    if (accuracy && sum.sources.length > 1) rows.push([`${e.label} worst of the ${sum.sources.length}`, ...sum.series.map((s) => pct(sum.worst(e.label, s.key)?.accuracy))]);
  }
  return rows;
}

/** Accuracy rows (clean, then each eps x source), one column per evaluated series. */
export function universalAccuracyRows(records: UniversalRecord[]): string[][] {
  return matrixRows(summarizeUniversal(records), (r) => r.accuracy, true);
}

/** Per source x eps: its success on the fit images and the perturbation's size. */
function fitRows(sum: UniversalSummary, records: UniversalRecord[]): string[][] {
  const rows = [['perturbation', 'success on the fit images', 'L-inf (x255)', 'L2']];
  for (const e of sum.epsilons) {
    for (const src of sum.sources) {
      const r = records.find((x) => x.source && x.epsLabel === e.label && universalSeriesKey(x.source) === src.key);
      if (!r) continue;
      rows.push([rowName(e.label, src), pct(r.fitSuccess), r.perturbationNorm ? (255 * r.perturbationNorm.linf).toFixed(2) : '–', r.perturbationNorm ? r.perturbationNorm.l2.toFixed(3) : '–']);
    }
  }
  return rows;
}

const PAIRED_HEADER = ['model', 'eps', 'perturbations', 'right for the model only', 'right for the baseline only', 'p (exact McNemar)'];
const pairedRows = (sum: UniversalSummary) => sum.paired.map((p) => [p.series, p.epsLabel, p.kind === 'own' ? 'each its own' : `worst of the ${sum.sources.length}`, String(p.onlySeries), String(p.onlyReference), p.p < 0.001 ? '< 0.001' : p.p.toFixed(3)]);

function describe(records: UniversalRecord[]): string {
  const r = records[0];
  const s = r.settings;
  const how = s.method === 'sgd'
    ? `stochastic sign-gradient ascent (Shafahi et al. 2020), ${s.epochs} passes, batches of ${s.batchSize}, first step ${s.stepFraction}·eps decaying ×${s.stepDecay} per pass, cross-entropy clamped at ${s.beta}`
    : `DeepFool's iterative algorithm (Moosavi-Dezfooli et al. 2017), up to ${s.epochs} passes, stopping at ${pct(s.foolingRate)} of the fit images fooled`;
  return `One ${s.norm === 'linf' ? 'L-inf' : 'L2'} perturbation per model and eps, fitted on ${r.fitN} training images by ${how}${s.target !== null ? `, targeted at class ${s.target}` : ''}, and added to each of ${r.n} held-out test images (seed ${r.seed}).`;
}

/** The terminal table (accuracy in %). */
export function renderUniversalTerminal(records: UniversalRecord[], title: string, sum: UniversalSummary = summarizeUniversal(records)): string {
  const rows = matrixRows(sum, (r) => r.accuracy, true);
  const body = table(rows, { columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right' })), drawHorizontalLine: (i, size) => i <= 2 || i === size });
  const warnings = universalWarnings(records, sum).map((w) => `note: ${w}\n`).join('');
  return `${title}\naccuracy in % on held-out images with one perturbation added to every image; * = the model's own perturbation\n${body}${warnings}`;
}

/** Markdown: accuracy, fooling rate, targeted hits, fitting, paired comparisons, notes. */
export function renderUniversalMarkdown(records: UniversalRecord[], title: string, notes: string[] = [], sum: UniversalSummary = summarizeUniversal(records)): string {
  const [ah, ...ar] = matrixRows(sum, (r) => r.accuracy, true);
  const [fh, ...fr] = matrixRows(sum, (r) => r.changeRate, false);
  const targeted = records[0].settings.target !== null;
  const [th, ...tr] = matrixRows(sum, (r) => r.targetRate, false);
  const [gh, ...gr] = fitRows(sum, records);
  const paired = pairedRows(sum);
  const allNotes = [...universalWarnings(records, sum), ...notes];
  return [
    `# ${title}`, '',
    describe(records), '',
    '## Accuracy (%)', '', 'Rows: the perturbation (its budget and the model it was fitted on); columns: the model evaluated. * marks the model\'s own perturbation; the other cells are transfer; "worst of" counts an image only when it is right under every perturbation of that eps.', '',
    mdTable(ah, ar), '',
    '## Fooling rate (% of images whose prediction changed)', '', mdTable(fh, fr), '',
    ...(targeted ? [`## Sent to the target class ${records[0].settings.target} (% of images of other classes)`, '', mdTable(th, tr), ''] : []),
    '## Fitting', '', mdTable(gh, gr), '',
    ...(paired.length ? ['## Paired comparisons with the baseline (same images)', '', mdTable(PAIRED_HEADER, paired), ''] : []),
    ...(allNotes.length ? ['## Notes', '', ...allNotes.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
}

/** Plots: accuracy against eps under each model's own perturbation, and under the reference baseline's. */
export function universalPlotsSvg(records: UniversalRecord[], sum: UniversalSummary = summarizeUniversal(records)): string[] {
  const xs = ['0', ...sum.epsilons.map((e) => e.label)];
  // One line per series: clean at eps 0, then `at(series, eps)` (a fraction, or null for no cell).
  const line = (title: string, at: (s: UniversalSeries, epsLabel: string) => number | null | undefined) => linePlotSvg({
    title, xTitle: `eps (${records[0].settings.norm === 'linf' ? 'L-inf' : 'L2'})`, yTitle: 'accuracy (%)', xLabels: xs, width: 560, height: 320,
    series: sum.series.map((s, i) => ({
      label: s.label,
      values: [s.clean, ...sum.epsilons.map((e) => at(s, e.label))].map((v) => (v === null || v === undefined ? null : 100 * v)),
      dashed: s.variant === 'baseline',
      color: PALETTE[i % PALETTE.length],
    })),
  });
  const under = (src: UniversalSourceSummary | undefined, s: UniversalSeries, e: string) => (src ? sum.cell(e, src.key, s.key)?.accuracy : null);
  const plots = [line('Each model under its own universal perturbation', (s, e) => under(sum.own(s), s, e))];
  if (sum.sources.length > 1) plots.push(line(`Worst of the ${sum.sources.length} perturbations per eps`, (s, e) => sum.worst(e, s.key)?.accuracy));
  const ref = sum.series.find((s) => s.key === sum.reference);
  const refSource = ref && sum.own(ref);
  if (refSource && sum.sources.length > 1) plots.push(line(`Under the perturbation fitted on ${refSource.label}`, (s, e) => under(refSource, s, e)));
  return plots;
}

/** The report as one self-contained HTML page. */
export function renderUniversalHtml(records: UniversalRecord[], title: string, notes: string[] = [], examplesPng?: string, sum: UniversalSummary = summarizeUniversal(records)): string {
  const [ah, ...ar] = matrixRows(sum, (r) => r.accuracy, true);
  const [fh, ...fr] = matrixRows(sum, (r) => r.changeRate, false);
  const [gh, ...gr] = fitRows(sum, records);
  const targeted = records[0].settings.target !== null;
  const [th, ...tr] = matrixRows(sum, (r) => r.targetRate, false);
  const paired = pairedRows(sum);
  const allNotes = [...universalWarnings(records, sum), ...notes];
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`, `<p class="muted">${esc(describe(records))}</p>`,
    '<h2>Accuracy (%)</h2>', '<p class="muted">Rows: the perturbation (its budget and the model it was fitted on); columns: the model evaluated. * marks the model\'s own perturbation; the other cells are transfer; "worst of" counts an image only when it is right under every perturbation of that eps.</p>',
    htmlTable(ah, ar, 'main'),
    '<h2>Fooling rate (% of images whose prediction changed)</h2>', htmlTable(fh, fr),
    ...(targeted ? [`<h2>Sent to the target class ${records[0].settings.target} (% of images of other classes)</h2>`, htmlTable(th, tr)] : []),
    '<h2>Fitting</h2>', htmlTable(gh, gr),
    ...(paired.length ? ['<h2>Paired comparisons with the baseline (same images)</h2>', htmlTable(PAIRED_HEADER, paired)] : []),
    ...(allNotes.length ? ['<h2>Notes</h2>', `<ul>${allNotes.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`] : []),
    '<h2>Accuracy against eps</h2>', '<div class="plots">', ...universalPlotsSvg(records, sum), '</div>',
    ...(examplesPng ? ['<h2>The perturbations</h2>', '<p class="muted">One row per model the perturbations were fitted on; per eps the perturbation (grey = 0, scaled to its largest value) and the first test image with it added.</p>', `<img alt="universal perturbations" src="${esc(examplesPng)}">`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

/** The check cell name of a perturbation source. */
export const universalAttackName = (sourceLabel: string) => `universal:${sourceLabel}`;

/**
 * A universal.json seen as a report for `check` (regression baselines): per evaluated series the
 * clean cell and one cell per (source, eps), attack "universal:<source>".
 */
export function universalAsReport(data: { records: UniversalRecord[]; dataset?: string; split?: string }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('universal report: no records');
  const sum = summarizeUniversal(records);
  const cells = records.map((r) => {
    const src = r.source ? sum.sources.find((s) => s.key === universalSeriesKey(r.source!))! : null;
    return {
      model: r.model, variant: r.variant, jpegMode: r.jpegMode, attack: src ? universalAttackName(src.label) : 'clean', norm: r.settings.norm, eps: r.eps, epsLabel: r.epsLabel,
      mean: r.accuracy, std: null, seeds: [r.modelSeed], values: [r.accuracy], n: r.n, successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
    };
  });
  const series = sum.series.map((s) => ({ model: s.model, variant: s.variant, jpegMode: s.jpegMode, key: `${s.model}|${s.jpegMode}`, label: s.label, seeds: [] as number[] }));
  const r0 = records[0];
  return {
    schema: REPORT_SCHEMA, title: 'universal', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? r0.dataset, split: data.split ?? 'test', n: r0.n, norm: r0.settings.norm, epsilons: sum.epsilons.map((e) => e.label),
      attacks: [{ name: 'universal', params: { ...r0.settings, fitN: r0.fitN } }], models: [], seed: r0.seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

/** Write universal.{json,md,txt,html} into `dir` (atomically); the JSON holds one result per record (with its threat model) and the records. */
export function writeUniversalReport(dir: string, records: UniversalRecord[], meta: Record<string, unknown> & { title: string; notes?: string[]; examplesPng?: string }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'universal.json'), markdown: join(dir, 'universal.md'), terminal: join(dir, 'universal.txt'), html: join(dir, 'universal.html') };
  const sum = summarizeUniversal(records);
  const results = records.map((r) => ({
    model: r.model, variant: r.variant, jpegMode: r.jpegMode, source: r.source,
    threat: { norm: r.settings.norm, eps: r.eps, epsLabel: r.epsLabel, universal: true, bounds: [0, 1] },
    accuracy: r.accuracy, foolingRate: r.changeRate, targetRate: r.targetRate, n: r.n,
  }));
  const { cell: _cell, own: _own, worst: _worst, ...plain } = sum;
  writeFileAtomic(files.html, renderUniversalHtml(records, meta.title, meta.notes ?? [], meta.examplesPng, sum));
  writeJsonAtomic(files.json, { schema: UNIVERSAL_SCHEMA, ...meta, summary: {
    ...plain,
    own: Object.fromEntries(sum.series.map((s) => [s.key, sum.own(s)?.key ?? null])),
    worst: sum.sources.length > 1 ? sum.series.flatMap((s) => sum.epsilons.map((e) => ({ series: s.key, epsLabel: e.label, accuracy: sum.worst(e.label, s.key)?.accuracy ?? null }))) : [],
  }, results, records });
  writeFileAtomic(files.markdown, renderUniversalMarkdown(records, meta.title, meta.notes ?? [], sum));
  writeFileAtomic(files.terminal, renderUniversalTerminal(records, meta.title, sum) + '\n');
  return files;
}

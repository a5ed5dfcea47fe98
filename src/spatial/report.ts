/** Spatial robustness results as tables (terminal, Markdown, HTML with plots) and files, all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { linePlotSvg, PALETTE } from '../report/svg.ts';
import { SPATIAL_ROWS, spatialSeriesKey, summarizeSpatial, type SpatialRecord, type SpatialRow, type SpatialSeries } from './evaluate.ts';
import { gridCounts } from './transform.ts';

export const SPATIAL_SCHEMA = 'jpegdl-robust-spatial/1';

const pct = (v: number | null) => (v === null ? '–' : fmtPct(v));
const pts = (v: number | null, ref: number | null) => (v === null || ref === null ? '–' : `${v - ref >= 0 ? '+' : ''}${(100 * (v - ref)).toFixed(1)}`);
const num = (v: number) => String(Number(v.toFixed(3)));

/** The records' summary and row names, computed once per rendering. */
interface View {
  sum: ReturnType<typeof summarizeSpatial>;
  names: Record<SpatialRow | 'gridMean', string>;
}

function viewOf(records: SpatialRecord[]): View {
  const sum = summarizeSpatial(records);
  return { sum, names: rowNames(records[0].grid, Math.max(0, ...sum.series.map((s) => s.draws))) };
}

/** What a row of the main table is, in words (from the records' grid and draws). */
function rowNames(g: SpatialRecord['grid'], draws: number): Record<SpatialRow | 'gridMean', string> {
  const { rotations, translations: shifts } = gridCounts(g);
  return {
    clean: 'clean (no transform)',
    rotation: `rotations only: worst of ${rotations} in ±${num(g.maxRotation)}°`,
    translation: `shifts only: worst of ${shifts}×${shifts} in ±${num(g.maxTranslation)} px`,
    grid: `grid: worst of ${rotations * shifts * shifts} (rotation and shift)`,
    random: `random: worst of ${draws} per image`,
    gridMean: 'mean over the grid (average case)',
  };
}

/** Warnings read off the records: series whose answers do not depend on the transform. */
export function spatialWarnings(records: SpatialRecord[]): string[] {
  return warningsOf(viewOf(records));
}

function warningsOf({ sum }: View): string[] {
  return sum.series.filter((s) => s.invariant).map((s) =>
    `${s.label}: the same images are right under every transform, so its answers do not depend on the transform (a model at chance that gives one class for everything does this); its worst cases equal its clean accuracy and say nothing about robustness.`);
}

/** Rows of the main table: clean, the worst cases, the grid mean; one column per series and a Δ column per non-reference series. */
export function spatialRows(records: SpatialRecord[]): string[][] {
  return rowsOf(viewOf(records));
}

function rowsOf({ sum, names }: View): string[][] {
  const ref = sum.series.find((s) => s.key === sum.reference);
  const others = sum.series.filter((s) => s !== ref);
  const header = ['transform', ...sum.series.map((s) => s.label), ...(ref ? others.map((s) => `Δ ${s.label} (pts)`) : [])];
  const row = (name: string, get: (s: SpatialSeries) => number | null) => [name, ...sum.series.map((s) => pct(get(s))), ...(ref ? others.map((s) => pts(get(s), get(ref))) : [])];
  const rows = [header];
  for (const r of SPATIAL_ROWS) {
    if (sum.series.every((s) => s[r] === null)) continue;
    rows.push(row(names[r], (s) => s[r]));
  }
  rows.push(row(names.gridMean, (s) => s.gridMean));
  return rows;
}

/** The paired comparisons with the reference (the first baseline), one row per series x worst case. */
export function spatialPairedRows(records: SpatialRecord[]): string[][] {
  return pairedRowsOf(viewOf(records));
}

function pairedRowsOf({ sum, names }: View): string[][] {
  return sum.paired.map((p) => [p.series, names[p.row], String(p.onlySeries), String(p.onlyReference), p.p < 0.001 ? '< 0.001' : p.p.toFixed(3)]);
}

const PAIRED_HEADER = ['model', 'transform', 'right for the model only', 'right for the baseline only', 'p (exact McNemar)'];

/** The terminal table (accuracy in %). */
export function renderSpatialTerminal(records: SpatialRecord[], title: string): string {
  return terminalOf(viewOf(records), title);
}

function terminalOf(v: View, title: string): string {
  const rows = rowsOf(v);
  const body = table(rows, {
    columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right' })),
    drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === 2 || i === size || i === size - 1,
  });
  const warnings = warningsOf(v).map((w) => `note: ${w}\n`).join('');
  return `${title}\naccuracy in %: an image counts when the model is right under every transform of the row; Δ in points vs the baseline\n${body}${warnings}`;
}

/** Markdown: the main table, paired comparisons, accuracy per angle and per shift. */
export function renderSpatialMarkdown(records: SpatialRecord[], title: string, notes: string[] = []): string {
  return markdownOf(viewOf(records), title, notes);
}

function markdownOf(v: View, title: string, notes: string[]): string {
  const { sum } = v;
  const [head, ...rows] = rowsOf(v);
  const paired = pairedRowsOf(v);
  const allNotes = [...warningsOf(v), ...notes];
  const angles = [...new Set(sum.series.flatMap((s) => s.perAngle.map((a) => a.angle)))].sort((a, b) => a - b);
  const shifts = [...new Set(sum.series.flatMap((s) => s.perShift.map((a) => a.dx)))].sort((a, b) => a - b);
  const at = <T extends { accuracy: number }>(xs: T[], pick: (x: T) => boolean) => pct(xs.find(pick)?.accuracy ?? null);
  return [
    `# ${title}`, '',
    `Accuracy in % on ${sum.n} images; a row's worst case counts an image as right only when the model is right under every transform of the row (Engstrom et al. 2019). Δ in percentage points against the baseline.`, '',
    mdTable(head, rows), '',
    ...(paired.length ? ['## Paired comparisons with the baseline (same images)', '', mdTable(PAIRED_HEADER, paired), ''] : []),
    ...(angles.length > 1 ? ['## Accuracy per rotation (no shift; %)', '', mdTable(['angle (°)', ...sum.series.map((s) => s.label)], angles.map((a) => [num(a), ...sum.series.map((s) => at(s.perAngle, (x) => x.angle === a))])), ''] : []),
    ...(shifts.length > 1 ? ['## Accuracy per horizontal shift (no rotation, no vertical shift; %)', '', mdTable(['dx (px)', ...sum.series.map((s) => s.label)], shifts.map((d) => [num(d), ...sum.series.map((s) => at(s.perShift, (x) => x.dx === d))])), ''] : []),
    ...(allNotes.length ? ['## Notes', '', ...allNotes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** Plots: accuracy per angle (no shift, and worst over shifts), accuracy per horizontal shift. */
export function spatialPlotsSvg(records: SpatialRecord[]): string[] {
  return plotsOf(viewOf(records));
}

function plotsOf({ sum }: View): string[] {
  const plots: string[] = [];
  const angles = [...new Set(sum.series.flatMap((s) => s.perAngle.map((a) => a.angle)))].sort((a, b) => a - b);
  const line = (title: string, xTitle: string, xs: number[], value: (s: SpatialSeries, x: number) => number | undefined): string => linePlotSvg({
    title, xTitle, yTitle: 'accuracy (%)', xLabels: xs.map(num), width: 560, height: 320,
    series: sum.series.map((s, i) => ({
      label: s.label,
      values: xs.map((x) => {
        const v = value(s, x);
        return v === undefined ? null : 100 * v;
      }),
      dashed: s.variant === 'baseline',
      color: PALETTE[i % PALETTE.length],
    })),
  });
  if (angles.length > 1) {
    plots.push(line('Accuracy per rotation (no shift)', 'angle (°)', angles, (s, a) => s.perAngle.find((x) => x.angle === a)?.accuracy));
    plots.push(line('Worst over the shifts at each rotation', 'angle (°)', angles, (s, a) => s.perAngle.find((x) => x.angle === a)?.worstOverShifts));
  }
  const shifts = [...new Set(sum.series.flatMap((s) => s.perShift.map((a) => a.dx)))].sort((a, b) => a - b);
  if (shifts.length > 1) plots.push(line('Accuracy per horizontal shift', 'dx (px)', shifts, (s, d) => s.perShift.find((x) => x.dx === d)?.accuracy));
  return plots;
}

/** The spatial report as one self-contained HTML page. */
export function renderSpatialHtml(records: SpatialRecord[], title: string, notes: string[] = [], examplesPng?: string): string {
  return htmlOf(viewOf(records), title, notes, examplesPng);
}

function htmlOf(v: View, title: string, notes: string[], examplesPng?: string): string {
  const { sum } = v;
  const [head, ...rows] = rowsOf(v);
  const paired = pairedRowsOf(v);
  const allNotes = [...warningsOf(v), ...notes];
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`,
    '<h2>Accuracy under rotations and shifts (%)</h2>',
    `<p class="muted">${sum.n} images; a row's worst case counts an image as right only when the model is right under every transform of the row (Engstrom et al. 2019). Δ in percentage points against the baseline.</p>`,
    htmlTable(head, rows, 'main'),
    ...(paired.length ? ['<h2>Paired comparisons with the baseline (same images)</h2>', htmlTable(PAIRED_HEADER, paired)] : []),
    ...(allNotes.length ? ['<h2>Notes</h2>', `<ul>${allNotes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`] : []),
    '<h2>Accuracy per transform</h2>', '<div class="plots">', ...plotsOf(v), '</div>',
    ...(examplesPng ? ['<h2>What the transforms look like</h2>', '<p class="muted">The first evaluated images; columns: clean, then the grid\'s extreme rotations and shifts.</p>', `<img alt="transformed examples" src="${esc(examplesPng)}">`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

/** The check cell name of a worst case. */
export const spatialAttackName = (row: SpatialRow) => `spatial:${row}`;

/**
 * A spatial.json seen as a report for `check` (regression baselines): per series the clean cell and one
 * cell per worst case (attack "spatial:<rotation|translation|grid|random>", norm "spatial"); the config
 * is the images, the grid, the resampling and the draws.
 */
export function spatialAsReport(data: { records: SpatialRecord[]; dataset?: string; split?: string; n?: number }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('spatial report: no records');
  const { sum, names } = viewOf(records);
  const cells = sum.series.flatMap((s) => {
    const r = firstRecord(records, s.key);
    const cell = (attack: string, eps: number, epsLabel: string, mean: number) => ({
      model: r.model, variant: r.variant, jpegMode: r.jpegMode, attack, norm: 'spatial', eps, epsLabel, mean, std: null, seeds: [r.modelSeed], values: [mean], n: r.n,
      successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
    });
    return [
      ...(s.clean === null ? [] : [cell('clean', 0, '0', s.clean)]),
      ...SPATIAL_ROWS.filter((row) => row !== 'clean' && s[row] !== null).map((row) => cell(spatialAttackName(row), 1, names[row], s[row]!)),
    ];
  });
  const series = [...new Map(records.map((r) => [`${r.model}|${r.jpegMode}`, { model: r.model, variant: r.variant, jpegMode: r.jpegMode, key: `${r.model}|${r.jpegMode}`, label: `${r.model}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`, seeds: [] as number[] }])).values()];
  const r0 = records[0];
  const draws = Math.max(0, ...sum.series.map((s) => s.draws));
  return {
    schema: REPORT_SCHEMA, title: 'spatial', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? r0.dataset, split: data.split ?? 'test', n: data.n ?? r0.n, norm: 'spatial',
      epsilons: SPATIAL_ROWS.filter((row) => row !== 'clean' && sum.series.some((s) => s[row] !== null)).map((row) => names[row]),
      attacks: [{ name: 'spatial', params: { ...r0.grid, fill: r0.fill, interpolation: r0.interpolation, samples: draws } }],
      models: [], seed: r0.seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

/** Write spatial.{json,md,txt,html} into `dir` (atomically); the JSON holds the summary, one result per series x worst case, and the records. */
export function writeSpatialReport(dir: string, records: SpatialRecord[], meta: Record<string, unknown> & { title: string; notes?: string[]; examplesPng?: string }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'spatial.json'), markdown: join(dir, 'spatial.md'), terminal: join(dir, 'spatial.txt'), html: join(dir, 'spatial.html') };
  const v = viewOf(records);
  const { sum } = v;
  const g = records[0].grid;
  const results = sum.series.flatMap((s) => SPATIAL_ROWS.filter((row) => s[row] !== null).map((row) => ({
    model: firstRecord(records, s.key).model, variant: s.variant, jpegMode: firstRecord(records, s.key).jpegMode, label: s.label,
    threat: { kind: row, maxRotation: row === 'translation' || row === 'clean' ? 0 : g.maxRotation, maxTranslation: row === 'rotation' || row === 'clean' ? 0 : g.maxTranslation, ...(row === 'random' ? { draws: s.draws } : {}) },
    accuracy: s[row], n: sum.n,
  })));
  writeFileAtomic(files.html, htmlOf(v, meta.title, meta.notes ?? [], meta.examplesPng));
  writeJsonAtomic(files.json, { schema: SPATIAL_SCHEMA, ...meta, summary: sum, results, records });
  writeFileAtomic(files.markdown, markdownOf(v, meta.title, meta.notes ?? []));
  writeFileAtomic(files.terminal, terminalOf(v, meta.title) + '\n');
  return files;
}

function firstRecord(records: SpatialRecord[], key: string): SpatialRecord {
  return records.find((r) => spatialSeriesKey(r) === key)!;
}

/** Corruption results as tables (terminal, Markdown) and files, all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { linePlotSvg, PALETTE } from '../report/svg.ts';
import { CLEAN, summarizeCorruptions, type CorruptionRecord } from './evaluate.ts';

const pts = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}` : '–');

/** Rows of the main table: clean, each corruption (mean over severities), the mean, relative corruption error. */
export function corruptionRows(records: CorruptionRecord[]): string[][] {
  const sum = summarizeCorruptions(records);
  const ref = sum.series.find((s) => s.key === sum.reference);
  const others = sum.series.filter((s) => s !== ref);
  const header = ['corruption', ...sum.series.map((s) => s.label), ...(ref ? others.map((s) => `Δ ${s.label} (pts)`) : [])];
  const row = (name: string, get: (s: (typeof sum.series)[number]) => number) => [
    name, ...sum.series.map((s) => fmtPct(get(s))), ...(ref ? others.map((s) => pts(get(s) - get(ref))) : []),
  ];
  const rows = [header, row(CLEAN, (s) => s.clean), ...sum.corruptions.map((c) => row(c, (s) => s.perCorruption[c])), row(`mean over ${sum.corruptions.length} corruptions`, (s) => s.mean)];
  if (ref) rows.push(['relative corruption error (baseline = 1.00)', ...sum.series.map((s) => (s.relativeError === null ? '–' : s.relativeError.toFixed(2))), ...others.map(() => '')]);
  return rows;
}

/** The terminal table (accuracy in %, mean over severities). */
export function renderCorruptionTerminal(records: CorruptionRecord[], title: string): string {
  const rows = corruptionRows(records);
  // Rules under the header and around the summary rows, as the attack table.
  const body = table(rows, {
    columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right' })),
    drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === 2 || i === size || i === size - (rows.at(-1)![0].startsWith('relative') ? 2 : 1),
  });
  return `${title}\naccuracy in %, mean over severities ${summarizeCorruptions(records).severities.join(', ')}; Δ in points vs the baseline\n${body}`;
}

/** Markdown: the main table and accuracy per severity (mean over corruptions). */
export function renderCorruptionMarkdown(records: CorruptionRecord[], title: string, notes: string[] = []): string {
  const sum = summarizeCorruptions(records);
  const [head, ...rows] = corruptionRows(records);
  const perSeverity = sum.severities.map((sv) => [String(sv), ...sum.series.map((s) => fmtPct(s.perSeverity[String(sv)]))]);
  return [
    `# ${title}`, '',
    'Accuracy in %, mean over severities; Δ in percentage points against the baseline. Relative corruption error: Σ over severities of the error rate divided by the baseline\'s, averaged over corruptions (Hendrycks & Dietterich\'s CE with the baseline in place of AlexNet).', '',
    mdTable(head, rows), '',
    '## Per severity (mean over corruptions)', '',
    mdTable(['severity', ...sum.series.map((s) => s.label)], perSeverity), '',
    ...(notes.length ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** Accuracy vs severity (clean = 0) per series: the mean over corruptions, then one small plot per corruption. */
export function corruptionPlotsSvg(records: CorruptionRecord[]): string[] {
  const sum = summarizeCorruptions(records);
  const xLabels = ['clean', ...sum.severities.map(String)];
  const plot = (title: string, value: (s: (typeof sum.series)[number], sev: number) => number, small: boolean) => linePlotSvg({
    title,
    xLabels,
    xTitle: 'severity',
    yTitle: 'accuracy (%)',
    width: small ? 300 : 480,
    height: small ? 240 : 320,
    series: sum.series.map((s, i) => ({
      label: s.label,
      values: [s.clean, ...sum.severities.map((sev) => value(s, sev))].map((v) => (Number.isFinite(v) ? 100 * v : null)),
      dashed: s.variant === 'baseline',
      color: PALETTE[i % PALETTE.length],
    })),
  });
  const cell = (s: (typeof sum.series)[number], c: string, sev: number) => records.find((r) => `${r.model}#${r.modelSeed}${r.jpegMode ? ` [${r.jpegMode}]` : ''}` === s.key && r.corruption === c && r.severity === sev)?.accuracy ?? NaN;
  return [
    plot(`Mean over ${sum.corruptions.length} corruptions`, (s, sev) => s.perSeverity[String(sev)], false),
    ...sum.corruptions.map((c) => plot(c, (s, sev) => cell(s, c, sev), true)),
  ];
}

/** The corruption report as one self-contained HTML page (tables, plots, optional example image). */
export function renderCorruptionHtml(records: CorruptionRecord[], title: string, notes: string[] = [], examplesPng?: string): string {
  const sum = summarizeCorruptions(records);
  const [head, ...rows] = corruptionRows(records);
  const [main, ...perCorruption] = corruptionPlotsSvg(records);
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`,
    '<h2>Accuracy under common corruptions (%)</h2>',
    '<p class="muted">Mean over severities; Δ in percentage points against the baseline; relative corruption error: Σ over severities of the error rate divided by the baseline\'s, averaged over corruptions.</p>',
    htmlTable(head, rows, 'main'),
    ...(notes.length ? ['<h2>Notes</h2>', `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`] : []),
    '<h2>Accuracy vs severity</h2>', '<div class="plots">', main, '</div>',
    '<h2>Per corruption</h2>', '<div class="plots">', ...perCorruption, '</div>',
    '<h2>Per severity (mean over corruptions, %)</h2>',
    htmlTable(['severity', ...sum.series.map((s) => s.label)], sum.severities.map((sv) => [String(sv), ...sum.series.map((s) => fmtPct(s.perSeverity[String(sv)]))])),
    ...(examplesPng ? ['<h2>What the corruptions look like</h2>', '<p class="muted">The first evaluated image; rows: corruptions, columns: clean, then severities.</p>', `<img alt="corrupted examples" src="${esc(examplesPng)}">`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

export const CORRUPTIONS_SCHEMA = 'jpegdl-robust-corruptions/1';

/**
 * A corruptions.json seen as a report for `check` (regression baselines): one cell per model x mode x
 * corruption x severity with attack "corruption:<name>" and eps label "severity <s>" (mean over seeds),
 * plus the clean cell; the config is the images, the corruptions and the severities.
 */
export function corruptionsAsReport(data: { records: CorruptionRecord[]; dataset?: string; split?: string; n?: number }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('corruptions report: no records');
  const groups = new Map<string, CorruptionRecord[]>();
  for (const r of records) {
    const k = JSON.stringify([r.model, r.variant, r.jpegMode, r.corruption, r.severity]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const cells = [...groups.values()].map((rs) => {
    const r = rs[0];
    const values = rs.map((x) => x.accuracy);
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    return {
      model: r.model, variant: r.variant as 'baseline' | 'jpeg-dl', jpegMode: r.jpegMode, attack: r.severity === 0 ? CLEAN : `corruption:${r.corruption}`,
      norm: 'corruption', eps: r.severity, epsLabel: r.severity === 0 ? '0' : `severity ${r.severity}`, mean, std: null, seeds: rs.map((x) => x.modelSeed), values, n: r.n,
      successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
    };
  });
  const series = [...new Map(records.map((r) => [`${r.model}|${r.jpegMode}`, { model: r.model, variant: r.variant, jpegMode: r.jpegMode, key: `${r.model}|${r.jpegMode}`, label: `${r.model}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`, seeds: [] as number[] }])).values()];
  const severities = [...new Set(records.filter((r) => r.severity > 0).map((r) => r.severity))].sort((a, b) => a - b);
  return {
    schema: REPORT_SCHEMA, title: 'corruptions', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? records[0].dataset, split: data.split ?? 'test', n: data.n ?? records[0].n, norm: 'corruption',
      epsilons: severities.map((s) => `severity ${s}`), attacks: [...new Set(records.filter((r) => r.severity > 0).map((r) => r.corruption))].map((name) => ({ name: `corruption:${name}`, params: {} })),
      models: [], seed: records[0].seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

/** Write corruptions.{json,md,txt,html} into `dir` (atomically); returns their paths. */
export function writeCorruptionReport(dir: string, records: CorruptionRecord[], meta: Record<string, unknown> & { title: string; notes?: string[]; examplesPng?: string }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'corruptions.json'), markdown: join(dir, 'corruptions.md'), terminal: join(dir, 'corruptions.txt'), html: join(dir, 'corruptions.html') };
  writeFileAtomic(files.html, renderCorruptionHtml(records, meta.title, meta.notes, meta.examplesPng));
  writeJsonAtomic(files.json, { schema: CORRUPTIONS_SCHEMA, ...meta, summary: summarizeCorruptions(records), records });
  writeFileAtomic(files.markdown, renderCorruptionMarkdown(records, meta.title, meta.notes));
  writeFileAtomic(files.terminal, renderCorruptionTerminal(records, meta.title) + '\n');
  return files;
}

/** Certification results as tables (terminal, Markdown), an HTML page with a plot, and JSON; all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { mcnemarExact } from '../report/paired.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { linePlotSvg, PALETTE } from '../report/svg.ts';
import { certifySeriesKey, summarizeCertificates, type CertifiedSeries, type CertifyRecord } from './evaluate.ts';

export const CERTIFY_SCHEMA = 'jpegdl-robust-certify/1';

/** The main table: certified accuracy (%) per radius, then base accuracy, abstentions and ACR, one column per series. */
export function certifyRows(series: CertifiedSeries[]): string[][] {
  const header = ['L2 radius', ...series.map((s) => s.label)];
  const radii = series[0]?.results ?? [];
  return [
    header,
    ...radii.map((r, j) => [r.radius === 0 ? '0 (smoothed accuracy)' : r.radiusLabel, ...series.map((s) => fmtPct(s.results[j].certifiedAccuracy))]),
    ['base classifier, clean', ...series.map((s) => fmtPct(s.baseAccuracy))],
    ['abstained', ...series.map((s) => fmtPct(s.abstained))],
    ['average certified radius', ...series.map((s) => s.acr.toFixed(3))],
    ['largest certifiable radius', ...series.map((s) => s.maxRadius.toFixed(3))],
  ];
}

/** The series `s` is compared with: the first series at the same sigma and certification parameters. */
function pairedReference(series: CertifiedSeries[], s: CertifiedSeries): CertifiedSeries {
  return series.find((q) => q.sigma === s.sigma && q.n0 === s.n0 && q.samples === s.samples && q.alpha === s.alpha)!;
}

/** How the paired table names its reference: the first series, "at the same σ" when the report has several sigmas. */
function pairedReferenceLabel(series: CertifiedSeries[]): string {
  return new Set(series.map((s) => s.sigma)).size === 1 ? series[0].label : `${series[0].label.replace(/, σ = .*$/, '')} at the same σ`;
}

/**
 * Paired comparisons at each radius between every series and the first one at the same sigma, on the
 * same images and noise: images certified for one only, and the exact McNemar p-value.
 */
export function certifyPairedRows(records: CertifyRecord[], series: CertifiedSeries[]): string[][] {
  const byIndex = new Map(series.map((s) => [s.key, new Map(records.filter((r) => certifySeriesKey(r) === s.key).map((r) => [r.index, r]))]));
  const rows: string[][] = [];
  for (const s of series) {
    const ref = pairedReference(series, s);
    if (ref === s) continue;
    const a = byIndex.get(ref.key)!;
    const b = byIndex.get(s.key)!;
    for (const r of s.results) {
      let onlyRef = 0;
      let onlyOther = 0;
      for (const [i, x] of a) {
        const y = b.get(i);
        if (!y) continue;
        const okA = x.correct && x.radius >= r.radius;
        const okB = y.correct && y.radius >= r.radius;
        if (okA && !okB) onlyRef++;
        if (okB && !okA) onlyOther++;
      }
      const refAcc = ref.results.find((q) => q.radius === r.radius)?.certifiedAccuracy ?? NaN;
      const delta = 100 * (r.certifiedAccuracy - refAcc);
      const p = mcnemarExact(onlyOther, onlyRef);
      rows.push([s.label, r.radiusLabel, `${delta >= 0 ? '+' : ''}${delta.toFixed(1)}`, String(onlyOther), String(onlyRef), p < 0.001 ? '<0.001' : p.toFixed(3), p < 0.05 ? (delta > 0 ? 'better' : 'worse') : 'no difference shown']);
    }
  }
  return rows;
}

const PAIRED_HEADER = (ref: string) => ['series', 'L2 radius', `Δ vs ${ref} (pts)`, 'certified for it only', `certified for ${ref} only`, 'p (exact McNemar)', 'at 5%'];

function intro(series: CertifiedSeries[]): string {
  const s = series[0];
  return `Certified accuracy in % (randomised smoothing, Cohen et al. 2019): images whose smoothed prediction is right and certified at L2 radius >= r (0-1 pixel scale), each certificate wrong with probability at most alpha = ${s.alpha}; n0 = ${s.n0} noise samples pick the class, n = ${s.samples} bound its probability; ${s.images} images.`;
}

/** The terminal table. */
export function renderCertifyTerminal(records: CertifyRecord[], radii: { value: number; label: string }[], title: string): string {
  const series = summarizeCertificates(records, radii);
  const rows = certifyRows(series);
  const body = table(rows, {
    columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right' })),
    drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === size || i === size - 4,
  });
  return `${title}\n${intro(series)}\n${body}`;
}

/** Markdown: the main table, paired comparisons and notes. */
export function renderCertifyMarkdown(records: CertifyRecord[], radii: { value: number; label: string }[], title: string, notes: string[] = []): string {
  const series = summarizeCertificates(records, radii);
  const [head, ...rows] = certifyRows(series);
  const paired = certifyPairedRows(records, series);
  return [
    `# ${title}`, '',
    intro(series), '',
    mdTable(head, rows), '',
    ...(paired.length ? [`## Paired comparison (same images, same noise)`, '', mdTable(PAIRED_HEADER(pairedReferenceLabel(series)), paired), ''] : []),
    ...(notes.length ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** Certified accuracy vs radius, one line per series. */
export function certifyPlotSvg(series: CertifiedSeries[]): string {
  return linePlotSvg({
    title: 'Certified accuracy vs L2 radius',
    xLabels: (series[0]?.results ?? []).map((r) => r.radiusLabel),
    xTitle: 'L2 radius (0-1 pixel scale)',
    yTitle: 'certified accuracy (%)',
    xName: 'radius',
    series: series.map((s, i) => ({ label: s.label, values: s.results.map((r) => 100 * r.certifiedAccuracy), dashed: s.variant === 'baseline', color: PALETTE[i % PALETTE.length] })),
  });
}

/** The certification report as one self-contained HTML page. */
export function renderCertifyHtml(records: CertifyRecord[], radii: { value: number; label: string }[], title: string, notes: string[] = []): string {
  const series = summarizeCertificates(records, radii);
  const [head, ...rows] = certifyRows(series);
  const paired = certifyPairedRows(records, series);
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`,
    `<p class="muted">${esc(intro(series))}</p>`,
    htmlTable(head, rows, 'main'),
    '<div class="plots">', certifyPlotSvg(series), '</div>',
    ...(paired.length ? ['<h2>Paired comparison (same images, same noise)</h2>', htmlTable(PAIRED_HEADER(pairedReferenceLabel(series)), paired)] : []),
    ...(notes.length ? ['<h2>Notes</h2>', `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

/** The attack name a certification cell gets in a report for `check`, e.g. "certify:sigma=0.25". */
export function certifyAttackName(sigmaLabel: string): string {
  return `certify:sigma=${sigmaLabel}`;
}

/**
 * A certify.json seen as a report for `check` (regression baselines): per model x mode, a clean cell
 * (the base classifier's accuracy) and one cell per sigma x radius (attack "certify:sigma=<s>", L2,
 * eps = the radius, radius 0 included: the smoothed classifier's accuracy); the config carries the
 * images and the certification parameters, so a baseline of other parameters is refused as incomparable.
 */
export function certifyAsReport(data: { records: CertifyRecord[]; radii?: { value: number; label: string }[]; dataset?: string; split?: string; n?: number }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('certify report: no records');
  if (!Array.isArray(data.radii) || data.radii.length === 0) throw new Error('certify report: no radii');
  const all = summarizeCertificates(records, data.radii);
  const cell = (s: CertifiedSeries, attack: string, eps: number, epsLabel: string, mean: number) => ({
    model: s.model, variant: s.variant, jpegMode: s.jpegMode, attack, norm: 'l2', eps, epsLabel, mean, std: null, seeds: [0], values: [mean], n: s.images,
    successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
  });
  const cleanDone = new Set<string>();
  const cells = all.flatMap((s) => {
    const id = `${s.model}|${s.jpegMode}`;
    const clean = cleanDone.has(id) ? [] : [cell(s, 'clean', 0, '0', s.baseAccuracy)];
    cleanDone.add(id);
    return [...clean, ...s.results.map((r) => cell(s, certifyAttackName(s.sigmaLabel), r.radius, r.radiusLabel, r.certifiedAccuracy))];
  });
  const series = [...new Map(all.map((s) => [`${s.model}|${s.jpegMode}`, { model: s.model, variant: s.variant, jpegMode: s.jpegMode, key: `${s.model}|${s.jpegMode}`, label: `${s.model}${s.jpegMode ? ` [${s.jpegMode}]` : ''}`, seeds: [] as number[] }])).values()];
  const first = all[0];
  return {
    schema: REPORT_SCHEMA, title: 'certify', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? records[0].dataset, split: data.split ?? 'test', n: data.n ?? records[0].images, norm: 'l2',
      epsilons: data.radii.map((r) => r.label),
      attacks: [...new Set(all.map((s) => s.sigmaLabel))].map((sigma) => ({ name: certifyAttackName(sigma), params: { n0: first.n0, samples: first.samples, alpha: first.alpha, batchSize: records[0].batchSize } })),
      models: [], seed: records[0].seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

/**
 * Write certify.{json,md,txt,html} into `dir` (atomically). The JSON holds one result per series x
 * radius with its threat model (L2, radius as number and label) beside the per-image records.
 */
export function writeCertifyReport(dir: string, records: CertifyRecord[], radii: { value: number; label: string }[], meta: Record<string, unknown> & { title: string; notes?: string[] }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'certify.json'), markdown: join(dir, 'certify.md'), terminal: join(dir, 'certify.txt'), html: join(dir, 'certify.html') };
  const series = summarizeCertificates(records, radii);
  const results = series.flatMap((s) => s.results.map((r) => ({
    model: s.model, variant: s.variant, jpegMode: s.jpegMode, sigma: s.sigma, sigmaLabel: s.sigmaLabel,
    threat: { norm: 'l2', eps: r.radius, epsLabel: r.radiusLabel },
    certifiedAccuracy: r.certifiedAccuracy, certified: r.certified, n: s.images, n0: s.n0, samples: s.samples, alpha: s.alpha,
  })));
  writeFileAtomic(files.html, renderCertifyHtml(records, radii, meta.title, meta.notes));
  writeJsonAtomic(files.json, { schema: CERTIFY_SCHEMA, ...meta, radii, series: series.map(({ results: _r, ...rest }) => rest), results, records });
  writeFileAtomic(files.markdown, renderCertifyMarkdown(records, radii, meta.title, meta.notes));
  writeFileAtomic(files.terminal, renderCertifyTerminal(records, radii, meta.title) + '\n');
  return files;
}

/** Adversarial-patch results as tables (terminal, Markdown, HTML with plots) and files, all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { unpackBits } from '../eval/records.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { allCorrect, pairedBits } from '../report/paired.ts';
import { linePlotSvg, PALETTE } from '../report/svg.ts';
import { ownSource } from '../universal/report.ts';
import { patchSeriesKey, type PatchRecord, type PatchSource } from './evaluate.ts';

export const PATCH_SCHEMA = 'jpegdl-robust-patch/1';

/** An evaluated model x mode. */
export interface PatchSeries {
  key: string;
  label: string;
  variant: string;
  model: string;
  modelSeed: number;
  jpegMode: PatchRecord['jpegMode'];
  clean: number | null;
}

/** A patch source: model x crafting mode, or the noise control. */
export interface PatchSourceSummary {
  key: string;
  label: string;
  source: PatchSource;
}

/** A paired comparison with the reference (the first baseline) on the same images. */
export interface PatchPairedRow {
  series: string;
  size: number;
  /** 'own': each model's own patch at the random positions; 'worst': right under every patch at every position tried. */
  kind: 'own' | 'worst';
  onlySeries: number;
  onlyReference: number;
  p: number;
}

/** The summary of a set of patch records. */
export interface PatchSummary {
  n: number;
  series: PatchSeries[];
  sources: PatchSourceSummary[];
  /** Patch sides in increasing order, with the fraction of the image each covers. */
  sizes: { size: number; area: number }[];
  cell: (size: number, source: string, series: string) => PatchRecord | undefined;
  /** Per image AND over every source's patch of this size, at the random position and every grid position; null when no cell. */
  worst: (size: number, series: string) => { accuracy: number; bits: Uint8Array; sources: number } | null;
  /** The series' own fitted patch: same model and seed, the crafting mode closest to the series' mode. */
  own: (series: PatchSeries) => PatchSourceSummary | undefined;
  reference: string | null;
  paired: PatchPairedRow[];
}

const labelOf = (model: string, mode: string | null, seeds: number, seed: number) => `${model}${mode ? ` [${mode}]` : ''}${seeds > 1 ? ` seed ${seed}` : ''}`;
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : fmtPct(v));
const isNoise = (s: PatchSource) => s.variant === 'noise';
const isPerImage = (s: PatchSource) => s.variant === 'per-image';
/** A fitted universal patch (not the noise control, not the per-image attack). */
const isFitted = (s: PatchSource) => !isNoise(s) && !isPerImage(s);

/** Summarise records: series and sources in first-seen order, the first baseline series is the reference. */
export function summarizePatches(records: PatchRecord[]): PatchSummary {
  if (records.length === 0) throw new Error('patch report: no records');
  const n = records[0].n;
  const seedCount = (model: string) => new Set(records.filter((r) => r.model === model).map((r) => r.modelSeed)).size;
  const seriesMap = new Map<string, PatchSeries>();
  for (const r of records) {
    const key = patchSeriesKey(r);
    const s = seriesMap.get(key) ?? { key, label: labelOf(r.model, r.jpegMode, seedCount(r.model), r.modelSeed), variant: r.variant, model: r.model, modelSeed: r.modelSeed, jpegMode: r.jpegMode, clean: null };
    if (!r.source) s.clean = r.accuracy;
    seriesMap.set(key, s);
  }
  const sourceMap = new Map<string, PatchSourceSummary>();
  for (const r of records) {
    if (!r.source) continue;
    const key = patchSeriesKey(r.source);
    if (!sourceMap.has(key)) sourceMap.set(key, { key, source: r.source, label: isNoise(r.source) ? 'uniform noise' : isPerImage(r.source) ? perImageLabel(r) : labelOf(r.source.model, r.source.mode, seedCount(r.source.model), r.source.modelSeed) });
  }
  const sizeMap = new Map<number, number>();
  for (const r of records) if (r.source) sizeMap.set(r.size, r.area);
  const sizes = [...sizeMap.entries()].map(([size, area]) => ({ size, area })).sort((a, b) => a.size - b.size);
  const cells = new Map(records.filter((r) => r.source).map((r) => [`${r.size}|${patchSeriesKey(r.source!)}|${patchSeriesKey(r)}`, r]));
  const cell = (size: number, src: string, ser: string) => cells.get(`${size}|${src}|${ser}`);
  const sources = [...sourceMap.values()];
  const fittedSources = sources.filter((x) => isFitted(x.source));
  const own = (s: PatchSeries) => ownSource(fittedSources, s);
  const series = [...seriesMap.values()];
  const worstCache = new Map<string, { accuracy: number; bits: Uint8Array; sources: number } | null>();
  const worst = (size: number, ser: string) => {
    const k = `${size}|${ser}`;
    if (!worstCache.has(k)) {
      const rs = sources.map((src) => cell(size, src.key, ser)).filter((r): r is PatchRecord => r !== undefined);
      let value: { accuracy: number; bits: Uint8Array; sources: number } | null = null;
      if (rs.length) {
        const bits = allCorrect(rs.flatMap((r) => [r.correctBits, ...(r.grid ? [r.grid.correctBits] : [])]).map((packed) => unpackBits(packed, n)), n);
        value = { accuracy: bits.reduce((a, v) => a + v, 0) / n, bits, sources: rs.length };
      }
      worstCache.set(k, value);
    }
    return worstCache.get(k)!;
  };
  const ref = series.find((s) => s.variant === 'baseline') ?? null;
  const paired: PatchPairedRow[] = [];
  const pair = (s: PatchSeries, size: number, kind: 'own' | 'worst', a: Uint8Array, b: Uint8Array) => paired.push({ series: s.label, size, kind, ...pairedBits(a, b) });
  if (ref) {
    const refOwn = own(ref);
    for (const s of series.filter((x) => x !== ref)) {
      const sOwn = own(s);
      for (const { size } of sizes) {
        const [a, b] = [sOwn && cell(size, sOwn.key, s.key), refOwn && cell(size, refOwn.key, ref.key)];
        if (a && b) pair(s, size, 'own', unpackBits(a.correctBits, n), unpackBits(b.correctBits, n));
      }
      for (const { size } of sizes) {
        const [a, b] = [worst(size, s.key), worst(size, ref.key)];
        if (a && b) pair(s, size, 'worst', a.bits, b.bits);
      }
    }
  }
  return { n, series, sources, sizes, cell, worst, own, reference: ref?.key ?? null, paired };
}

/** "8 px (8.2%)": a size with the share of the image it covers. */
export const sizeLabel = (s: { size: number; area: number }) => `${s.size} px (${(100 * s.area).toFixed(1)}%)`;

/**
 * Warnings read off the records: series giving one class for 90% or more of the clean images, and a
 * model's own fitted patch leaving 2 points or more above the noise control at the random positions (the
 * fit found less than plain occlusion: the gradient it followed misleads, as a masked one does).
 */
export function patchWarnings(records: PatchRecord[], sum: PatchSummary = summarizePatches(records)): string[] {
  const noise = sum.sources.find((x) => isNoise(x.source));
  const out = sum.series.flatMap((s) => {
    const clean = records.find((r) => !r.source && patchSeriesKey(r) === s.key);
    return clean && clean.topClassShare >= 0.9 ? [`${s.label}: predicts one class for ${pct(clean.topClassShare)}% of the clean images, so no patch can change much and its accuracy says nothing about robustness.`] : [];
  });
  for (const s of sum.series) {
    const own = sum.own(s);
    if (!own || !noise) continue;
    const weak = sum.sizes.flatMap((z) => {
      const [mine, ctl] = [sum.cell(z.size, own.key, s.key), sum.cell(z.size, noise.key, s.key)];
      return mine && ctl && mine.accuracy >= ctl.accuracy + 0.02 ? [`${z.size} px: ${pct(mine.accuracy)}% against ${pct(ctl.accuracy)}% under uniform noise`] : [];
    });
    if (weak.length) out.push(`${s.label}: its own fitted patch (fitted on ${own.label}) does worse than a patch of uniform noise (${weak.join('; ')}): the fit found less than occlusion, the sign of a gradient that misleads (masked) through that crafting mode; read the worst-of rows.`);
  }
  return out;
}

/** The per-image attack's label: what it ran. */
const perImageLabel = (r: PatchRecord) => `per image (white-box, ${r.perImage?.restarts} places x ${r.perImage?.steps} steps)`;

const rowName = (z: { size: number }, src: PatchSourceSummary) => `${z.size} px ${isFitted(src.source) ? `fitted on ${src.label}` : src.label}`;

/** Rows of a table: clean first (accuracy tables), then per size and source; the series' own patch is marked with *. */
function matrixRows(sum: PatchSummary, value: (r: PatchRecord) => number | null, accuracy: boolean, worstRow: boolean): string[][] {
  const rows = [['patch', ...sum.series.map((s) => s.label)]];
  if (accuracy) rows.push(['none (clean)', ...sum.series.map((s) => pct(s.clean))]);
  for (const z of sum.sizes) {
    for (const src of sum.sources) {
      rows.push([rowName(z, src), ...sum.series.map((s) => {
        const r = sum.cell(z.size, src.key, s.key);
        const v = r ? value(r) : null;
        return v === null ? '–' : `${pct(v)}${sum.own(s)?.key === src.key ? '*' : ''}`;
      })]);
    }
    if (worstRow && sum.sources.length > 1) rows.push([`${z.size} px worst of the ${sum.sources.length}, every position tried`, ...sum.series.map((s) => pct(sum.worst(z.size, s.key)?.accuracy))]);
  }
  return rows;
}

const hasGrid = (records: PatchRecord[]) => records.some((r) => r.grid);
const gridPositions = (records: PatchRecord[], size: number) => records.find((r) => r.size === size && r.grid)?.grid?.positions;

/** Accuracy rows at the random positions (clean, then each size x source), one column per evaluated series. */
export function patchAccuracyRows(records: PatchRecord[]): string[][] {
  return matrixRows(summarizePatches(records), (r) => r.accuracy, true, true);
}

function fitRows(sum: PatchSummary, records: PatchRecord[]): string[][] {
  const rows = [['patch', 'success on the fit images', ...(hasGrid(records) ? ['grid positions'] : [])]];
  for (const z of sum.sizes) {
    for (const src of sum.sources.filter((x) => isFitted(x.source))) {
      const r = records.find((x) => x.source && x.size === z.size && patchSeriesKey(x.source) === src.key);
      if (r) rows.push([rowName(z, src), pct(r.fitSuccess), ...(hasGrid(records) ? [String(gridPositions(records, z.size) ?? '–')] : [])]);
    }
  }
  return rows;
}

const PAIRED_HEADER = ['model', 'patch', 'compared', 'right for the model only', 'right for the baseline only', 'p (exact McNemar)'];
const pairedRows = (sum: PatchSummary) => sum.paired.map((p) => [p.series, `${p.size} px`, p.kind === 'own' ? 'each its own, random position' : `worst of the ${sum.sources.length}, every position tried`, String(p.onlySeries), String(p.onlyReference), p.p < 0.001 ? '< 0.001' : p.p.toFixed(3)]);

function describe(records: PatchRecord[]): string {
  const r = records[0];
  const s = r.settings;
  const grid = s.gridStride === 0 ? '' : `; and at every corner of a grid ${s.gridStride === null ? 'one patch side' : `${s.gridStride} px`} apart (the attacker choosing the place)`;
  const per = records.find((x) => x.perImage)?.perImage;
  const perText = per ? ` Per image: every test image also attacked with a patch of its own at a place of its own, white-box (${per.restarts} random places x ${per.steps} sign steps of ${per.stepSize}, ${s.target === null ? 'untargeted' : `targeted at class ${s.target}`}; hard JPEG through BPDA).` : '';
  return `One square patch per model and size (Brown et al. 2017), fitted on ${r.fitN} training images by signed-gradient ascent over random positions (${s.epochs} passes, batches of ${s.batchSize}, first step ${s.stepSize} decaying ×${s.stepDecay} per pass${s.target === null ? `, cross-entropy clamped at ${s.beta}` : `, targeted at class ${s.target}`}), pasted on each of ${r.n} held-out test images at one seeded random position (the same for every patch and model)${grid} (seed ${r.seed}).${perText}`;
}

/** The terminal table (accuracy in % at the random positions). */
export function renderPatchTerminal(records: PatchRecord[], title: string, sum: PatchSummary = summarizePatches(records)): string {
  const rows = matrixRows(sum, (r) => r.accuracy, true, true);
  const body = table(rows, { columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right' })), drawHorizontalLine: (i, size) => i <= 2 || i === size });
  const warnings = patchWarnings(records, sum).map((w) => `note: ${w}\n`).join('');
  return `${title}\naccuracy in % on held-out images, the patch at a random position; * = the model's own patch\n${body}${warnings}`;
}

/** The report's sections as (title, intro, rows) for Markdown and HTML alike. */
function sections(records: PatchRecord[], sum: PatchSummary): { title: string; intro?: string; rows: string[][] }[] {
  const target = records[0].settings.target;
  return [
    { title: 'Accuracy at a random position (%)', intro: 'Rows: the patch (its side and the model it was fitted on, or uniform noise); columns: the model evaluated. * marks the model\'s own patch; the other cells are transfer; "worst of" counts an image only when it is right under every patch of that size at its random position and at every grid position.', rows: matrixRows(sum, (r) => r.accuracy, true, true) },
    ...(hasGrid(records) ? [{ title: 'Accuracy at the worst position of the grid (%)', intro: 'An image counts only when it is right wherever on the grid the patch is put.', rows: matrixRows(sum, (r) => r.grid?.accuracy ?? null, false, false) }] : []),
    { title: 'Prediction changed (% of images, random position)', rows: matrixRows(sum, (r) => r.changeRate, false, false) },
    ...(target !== null ? [{ title: `Sent to the target class ${target} (% of images of other classes, random position)`, rows: matrixRows(sum, (r) => r.targetRate, false, false) }] : []),
    { title: 'Fitting', rows: fitRows(sum, records) },
    ...(sum.paired.length ? [{ title: 'Paired comparisons with the baseline (same images)', rows: [PAIRED_HEADER, ...pairedRows(sum)] }] : []),
  ];
}

/** Markdown: accuracy (random and worst position), changed predictions, targeted hits, fitting, paired comparisons, notes. */
export function renderPatchMarkdown(records: PatchRecord[], title: string, notes: string[] = [], sum: PatchSummary = summarizePatches(records)): string {
  const allNotes = [...patchWarnings(records, sum), ...notes];
  return [
    `# ${title}`, '', describe(records), '',
    ...sections(records, sum).flatMap((x) => [`## ${x.title}`, '', ...(x.intro ? [x.intro, ''] : []), mdTable(x.rows[0], x.rows.slice(1)), '']),
    ...(allNotes.length ? ['## Notes', '', ...allNotes.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
}

/** Plots: accuracy against the patch's size under each model's own patch (random and worst position), and under uniform noise. */
export function patchPlotsSvg(records: PatchRecord[], sum: PatchSummary = summarizePatches(records)): string[] {
  const xs = ['0', ...sum.sizes.map((z) => `${z.size} px`)];
  const line = (title: string, at: (s: PatchSeries, size: number) => number | null | undefined) => linePlotSvg({
    title, xTitle: 'patch side (pixels)', yTitle: 'accuracy (%)', xLabels: xs, width: 560, height: 320,
    series: sum.series.map((s, i) => ({
      label: s.label,
      values: [s.clean, ...sum.sizes.map((z) => at(s, z.size))].map((v) => (v === null || v === undefined ? null : 100 * v)),
      dashed: s.variant === 'baseline',
      color: PALETTE[i % PALETTE.length],
    })),
  });
  const ownCell = (s: PatchSeries, size: number) => {
    const o = sum.own(s);
    return o ? sum.cell(size, o.key, s.key) : undefined;
  };
  const plots = [line('Each model under its own patch, random position', (s, z) => ownCell(s, z)?.accuracy)];
  if (hasGrid(records)) plots.push(line('Each model under its own patch, worst grid position', (s, z) => ownCell(s, z)?.grid?.accuracy));
  const noise = sum.sources.find((x) => isNoise(x.source));
  if (noise) plots.push(line('Under a patch of uniform noise, random position', (s, z) => sum.cell(z, noise.key, s.key)?.accuracy));
  const perImage = sum.sources.find((x) => isPerImage(x.source));
  if (perImage) plots.push(line('A patch of its own for every image (white-box)', (s, z) => sum.cell(z, perImage.key, s.key)?.accuracy));
  if (sum.sources.length > 1) plots.push(line(`Worst of the ${sum.sources.length} patches, every position tried`, (s, z) => sum.worst(z, s.key)?.accuracy));
  return plots;
}

/** The report as one self-contained HTML page. */
export function renderPatchHtml(records: PatchRecord[], title: string, notes: string[] = [], picturePng?: string, sum: PatchSummary = summarizePatches(records)): string {
  const allNotes = [...patchWarnings(records, sum), ...notes];
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`, `<p class="muted">${esc(describe(records))}</p>`,
    ...sections(records, sum).flatMap((x, i) => [`<h2>${esc(x.title)}</h2>`, ...(x.intro ? [`<p class="muted">${esc(x.intro)}</p>`] : []), htmlTable(x.rows[0], x.rows.slice(1), i === 0 ? 'main' : undefined)]),
    ...(allNotes.length ? ['<h2>Notes</h2>', `<ul>${allNotes.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`] : []),
    '<h2>Accuracy against the patch size</h2>', '<div class="plots">', ...patchPlotsSvg(records, sum), '</div>',
    ...(picturePng ? ['<h2>The patches</h2>', '<p class="muted">One row per model the patches were fitted on; per size the patch and the first test image with it at its random position.</p>', `<img alt="adversarial patches" src="${esc(picturePng)}">`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

/** The check cell names of a patch source: at the random position, and at the worst grid position. */
export const patchAttackName = (sourceLabel: string, worst = false) => `patch${worst ? '-worst' : ''}:${sourceLabel}`;

/**
 * A patch.json seen as a report for `check` (regression baselines): per evaluated series the clean
 * cell and per (source, size) one cell at the random position ("patch:<source>") and, with a grid, one
 * at the worst position ("patch-worst:<source>"); the size in pixels stands where eps does ("8px").
 */
export function patchAsReport(data: { records: PatchRecord[]; dataset?: string; split?: string }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('patch report: no records');
  const sum = summarizePatches(records);
  const cell = (r: PatchRecord, attack: string, mean: number) => ({
    model: r.model, variant: r.variant, jpegMode: r.jpegMode, attack, norm: 'patch', eps: r.size, epsLabel: r.source ? `${r.size}px` : '0',
    mean, std: null, seeds: [r.modelSeed], values: [mean], n: r.n, successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
  });
  const cells = records.flatMap((r) => {
    if (!r.source) return [cell(r, 'clean', r.accuracy)];
    const label = sum.sources.find((x) => x.key === patchSeriesKey(r.source!))!.label;
    return [cell(r, patchAttackName(label), r.accuracy), ...(r.grid ? [cell(r, patchAttackName(label, true), r.grid.accuracy)] : [])];
  });
  const series = sum.series.map((s) => ({ model: s.model, variant: s.variant, jpegMode: s.jpegMode, key: `${s.model}|${s.jpegMode}`, label: s.label, seeds: [] as number[] }));
  const r0 = records[0];
  return {
    schema: REPORT_SCHEMA, title: 'patch', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? r0.dataset, split: data.split ?? 'test', n: r0.n, norm: 'patch', epsilons: sum.sizes.map((z) => `${z.size}px`),
      attacks: [{ name: 'patch', params: { ...r0.settings, fitN: r0.fitN } }], models: [], seed: r0.seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

/** Write patch.{json,md,txt,html} into `dir` (atomically); the JSON holds one result per record (with its threat model) and the records. */
export function writePatchReport(dir: string, records: PatchRecord[], meta: Record<string, unknown> & { title: string; notes?: string[]; picturePng?: string }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'patch.json'), markdown: join(dir, 'patch.md'), terminal: join(dir, 'patch.txt'), html: join(dir, 'patch.html') };
  const sum = summarizePatches(records);
  const results = records.map((r) => ({
    model: r.model, variant: r.variant, jpegMode: r.jpegMode, source: r.source,
    threat: { patch: true, size: r.size, area: r.area, bounds: [0, 1], placement: r.perImage ? 'per-image' : 'random', grid: r.grid ? r.grid.positions : null },
    accuracy: r.accuracy, worstPositionAccuracy: r.grid?.accuracy ?? null, changeRate: r.changeRate, targetRate: r.targetRate, n: r.n,
  }));
  const { cell: _cell, own: _own, worst: _worst, ...plain } = sum;
  writeFileAtomic(files.html, renderPatchHtml(records, meta.title, meta.notes ?? [], meta.picturePng, sum));
  writeJsonAtomic(files.json, { schema: PATCH_SCHEMA, ...meta, summary: {
    ...plain,
    own: Object.fromEntries(sum.series.map((s) => [s.key, sum.own(s)?.key ?? null])),
    worst: sum.series.flatMap((s) => sum.sizes.map((z) => ({ series: s.key, size: z.size, accuracy: sum.worst(z.size, s.key)?.accuracy ?? null }))),
  }, results, records });
  writeFileAtomic(files.markdown, renderPatchMarkdown(records, meta.title, meta.notes ?? [], sum));
  writeFileAtomic(files.terminal, renderPatchTerminal(records, meta.title, sum) + '\n');
  return files;
}


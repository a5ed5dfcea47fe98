/** Diagnose results as tables (terminal, Markdown, HTML with plots and loss surfaces) and files, all rendered from the records. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { table } from 'table';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { esc, fmtPct, mdTable } from '../report/format.ts';
import { CSS, htmlTable } from '../report/html.ts';
import { REPORT_SCHEMA, type Report } from '../report/model.ts';
import { linePlotSvg, PALETTE, surfaceSvg } from '../report/svg.ts';
import { diagnoseSeriesKey, type AttackRecord, type DiagnoseRecord } from './evaluate.ts';
import { diagnoseFindings, summarizeDiagnose, type DiagnoseSeries, type DiagnoseSummary } from './summary.ts';

export const DIAGNOSE_SCHEMA = 'jpegdl-robust-diagnose/1';

const pct = (v: number | null) => (v === null ? '–' : fmtPct(v));
const fix = (v: number | null, d = 2) => (v === null ? '–' : v.toFixed(d));
const sci = (v: number | null) => (v === null ? '–' : v === 0 ? '0' : v.toExponential(2));
const grey = (h: number) => (Math.abs(h * 255 - Math.round(h * 255)) < 1e-6 ? `${Math.round(h * 255)}/255` : String(h));

/** Rows of the main table: one column per series. */
export function diagnoseRows(sum: DiagnoseSummary): string[][] {
  const row = (name: string, get: (s: DiagnoseSeries) => string) => [name, ...sum.series.map(get)];
  const at = (s: DiagnoseSeries, t: number) => s.profile.find((p) => p.t === t);
  const steps = [...new Set(sum.series.flatMap((s) => s.convergence.map((c) => c.steps)))].sort((a, b) => a - b);
  const attack = sum.series.find((s) => s.attack)?.attack ?? 'attack';
  const unb = sum.series.find((s) => s.unbounded)?.unbounded;
  const restartRun = sum.series.find((s) => s.restarts)?.restarts;
  return [
    ['diagnostic', ...sum.series.map((s) => s.label)],
    row('clean accuracy (%)', (s) => pct(s.clean)),
    row('images with a zero input gradient (%)', (s) => pct(s.zeroGradient)),
    row('median mean |gradient| per value', (s) => sci(s.gradMedian)),
    row(`median finite-difference error, step ${grey(sum.fdStep)} (0 agree, 1 unrelated)`, (s) => fix(s.fdMedian)),
    row('images with finite-difference error > 0.5 (%)', (s) => pct(s.fdAbove)),
    row(`gradient step of ${sum.epsLabel} beats all ${sum.directions} random steps (% of images)`, (s) => pct(s.beatsRandom)),
    row('loss rise along the gradient / first-order prediction (median)', (s) => fix(s.firstOrderRatio)),
    row(`mean ${sum.loss}: clean`, (s) => fix(at(s, 0)?.gradient ?? null)),
    row(`mean ${sum.loss}: gradient sign, ${sum.epsLabel}`, (s) => fix(at(s, 1)?.gradient ?? null)),
    row(`mean ${sum.loss}: best random sign, ${sum.epsLabel}`, (s) => fix(at(s, 1)?.randomMax ?? null)),
    ...steps.map((k) => row(`${attack} at ${sum.epsLabel}, ${k} step${k === 1 ? '' : 's'} (%)`, (s) => pct(s.convergence.find((c) => c.steps === k)?.accuracy ?? null))),
    ...(steps.length > 1 ? [row(`${attack}: fewest steps within noise of the curve's lowest point`, (s) => (s.stepsNeeded === null ? '–' : String(s.stepsNeeded)))] : []),
    ...(restartRun ? [row(`${attack} at ${sum.epsLabel}, ${restartRun.steps} steps, ${restartRun.restarts} restarts (%)`, (s) => pct(s.restarts?.accuracy ?? null))] : []),
    ...(unb ? [row(`${attack} unbounded (eps ${unb.eps}, ${unb.steps} steps) (%)`, (s) => pct(s.unbounded?.accuracy ?? null))] : []),
  ];
}

const PAIRED_HEADER = ['model', 'steps', 'right for the model only', 'right for the baseline only', 'p (exact McNemar)'];
const pairedRows = (sum: DiagnoseSummary) => sum.paired.map((p) => [p.series, String(p.steps), String(p.onlySeries), String(p.onlyReference), p.p < 0.001 ? '< 0.001' : p.p.toFixed(3)]);

/** What the table measures, in words (for Markdown and HTML). */
function explanation(sum: DiagnoseSummary): string {
  return `${sum.n} images, objective ${sum.loss} on logits${sum.loss === 'margin' ? ' (max other logit - true logit; > 0 means misclassified)' : ''}. Finite differences compare the gradient's directional derivative with (f(x + h·r) - f(x - h·r)) / 2h over ${sum.directions} random sign directions r; the profile steps to clip(x + t·eps·d) for the gradient sign d and for the random directions; the first-order prediction of the rise is eps·||gradient||₁. The convergence rows run the attack at each step count from scratch.`;
}

/** The terminal table and findings. */
export function renderDiagnoseTerminal(records: DiagnoseRecord[], title: string): string {
  return terminalOf(summarizeDiagnose(records), title);
}

function terminalOf(sum: DiagnoseSummary, title: string): string {
  const rows = diagnoseRows(sum);
  const body = table(rows, { columns: rows[0].map((_, j) => ({ alignment: j === 0 ? 'left' : 'right', ...(j === 0 ? { width: 48, wrapWord: true } : {}) })), drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === size });
  const findings = diagnoseFindings(sum);
  return `${title}\n${body}${findings.length ? findings.map((f) => `finding: ${f}\n`).join('') : 'no sign of gradient masking in these diagnostics\n'}`;
}

/** Markdown: the table, findings, paired comparisons, the profiles. */
export function renderDiagnoseMarkdown(records: DiagnoseRecord[], title: string, notes: string[] = []): string {
  return markdownOf(summarizeDiagnose(records), title, notes);
}

function markdownOf(sum: DiagnoseSummary, title: string, notes: string[]): string {
  const [head, ...rows] = diagnoseRows(sum);
  const findings = diagnoseFindings(sum);
  const paired = pairedRows(sum);
  const ts = sum.series[0].profile.map((p) => p.t);
  return [
    `# ${title}`, '',
    explanation(sum), '',
    mdTable(head, rows), '',
    '## Findings', '',
    ...(findings.length ? findings.map((f) => `- ${f}`) : ['- No sign of gradient masking in these diagnostics.']), '',
    ...(paired.length ? ['## Paired comparisons with the baseline (same images, convergence curve)', '', mdTable(PAIRED_HEADER, paired), ''] : []),
    ...(ts.length > 1 ? [`## Mean ${sum.loss} along the gradient sign (random directions: mean / best)`, '',
      mdTable(['t (× eps)', ...sum.series.map((s) => s.label)], ts.map((t) => [String(t), ...sum.series.map((s) => {
        const p = s.profile.find((q) => q.t === t);
        return p ? `${p.gradient.toFixed(2)} (${p.randomMean.toFixed(2)} / ${p.randomMax.toFixed(2)})` : '–';
      })])), ''] : []),
    ...(notes.length ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** Plots: the objective profile per series, the convergence curve; and the loss surfaces. */
export function diagnosePlotsSvg(sum: DiagnoseSummary): { plots: string[]; surfaces: string[] } {
  const plots: string[] = [];
  const ts = sum.series[0].profile.map((p) => p.t);
  const values = sum.series.flatMap((s) => s.profile.flatMap((p) => [p.gradient, p.randomMax]));
  if (ts.length > 1 && values.length) {
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    const pad = (hi - lo) * 0.05 || 1;
    plots.push(linePlotSvg({
      title: `Mean ${sum.loss} along the gradient sign (solid) and the best random sign (dashed)`, xTitle: `step (× ${sum.epsLabel})`, yTitle: `mean ${sum.loss}`, xName: 't',
      xLabels: ts.map(String), yRange: [lo - pad, hi + pad], yUnit: '', width: 560, height: 340,
      series: sum.series.flatMap((s, i) => [
        { label: `${s.label}: gradient`, values: s.profile.map((p) => p.gradient), color: PALETTE[i % PALETTE.length] },
        { label: `${s.label}: random`, values: s.profile.map((p) => p.randomMax), color: PALETTE[i % PALETTE.length], dashed: true },
      ]),
    }));
  }
  const steps = [...new Set(sum.series.flatMap((s) => s.convergence.map((c) => c.steps)))].sort((a, b) => a - b);
  if (steps.length > 1) {
    plots.push(linePlotSvg({
      title: `${sum.series.find((s) => s.attack)?.attack ?? 'attack'} at ${sum.epsLabel}: accuracy per step count`, xTitle: 'steps', yTitle: 'accuracy (%)', xName: 'steps',
      xLabels: steps.map(String), width: 560, height: 320,
      series: sum.series.map((s, i) => ({ label: s.label, values: steps.map((k) => { const c = s.convergence.find((x) => x.steps === k); return c ? 100 * c.accuracy : null; }), dashed: s.variant === 'baseline', color: PALETTE[i % PALETTE.length] })),
    }));
  }
  const surfaces = sum.series.flatMap((s) => s.surfaces.map((sf) => {
    const scale = Math.max(1e-6, ...sf.values.map(Math.abs));
    return surfaceSvg(sf.values, sf.size, { title: `${s.label}, image ${sf.index} (class ${sf.label})`, xTitle: `gradient sign (× ${sum.epsLabel})`, yTitle: 'random sign (× eps)', scale });
  }));
  return { plots, surfaces };
}

/** The diagnose report as one self-contained HTML page. */
export function renderDiagnoseHtml(records: DiagnoseRecord[], title: string, notes: string[] = []): string {
  return htmlOf(summarizeDiagnose(records), title, notes);
}

function htmlOf(sum: DiagnoseSummary, title: string, notes: string[]): string {
  const [head, ...rows] = diagnoseRows(sum);
  const findings = diagnoseFindings(sum);
  const paired = pairedRows(sum);
  const { plots, surfaces } = diagnosePlotsSvg(sum);
  return [
    '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>',
    `<h1>${esc(title)}</h1>`,
    `<p class="muted">${esc(explanation(sum))}</p>`,
    htmlTable(head, rows, 'main'),
    '<h2>Findings</h2>', `<ul>${(findings.length ? findings : ['No sign of gradient masking in these diagnostics.']).map((f) => `<li>${esc(f)}</li>`).join('')}</ul>`,
    ...(paired.length ? ['<h2>Paired comparisons with the baseline (same images, convergence curve)</h2>', htmlTable(PAIRED_HEADER, paired)] : []),
    ...(plots.length ? ['<h2>Profiles and convergence</h2>', '<div class="plots">', ...plots, '</div>'] : []),
    ...(surfaces.length ? ['<h2>Loss surfaces</h2>', `<p class="muted">${esc(`The ${sum.loss} around the first images over clip(x + eps·(a·sign(gradient) + b·r)), a across, b up, both from -1 to 1; red: the objective above 0${sum.loss === 'margin' ? ' (misclassified)' : ''}, blue below, white 0. A smooth surface rising to the right is a gradient an attack can follow; a flat or speckled one is not.`)}</p>`, '<div class="plots">', ...surfaces, '</div>'] : []),
    ...(notes.length ? ['<h2>Notes</h2>', `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`] : []),
    '</body>', '</html>', '',
  ].join('\n');
}

/** Write diagnose.{json,md,txt,html} into `dir` (atomically); the JSON holds the summary, the findings and the records. */
export function writeDiagnoseReport(dir: string, records: DiagnoseRecord[], meta: Record<string, unknown> & { title: string; notes?: string[] }): { json: string; markdown: string; terminal: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, 'diagnose.json'), markdown: join(dir, 'diagnose.md'), terminal: join(dir, 'diagnose.txt'), html: join(dir, 'diagnose.html') };
  const sum = summarizeDiagnose(records);
  writeFileAtomic(files.html, htmlOf(sum, meta.title, meta.notes ?? []));
  writeJsonAtomic(files.json, { schema: DIAGNOSE_SCHEMA, ...meta, summary: { ...sum, series: sum.series.map(({ surfaces: _s, ...rest }) => rest) }, findings: diagnoseFindings(sum), records });
  writeFileAtomic(files.markdown, markdownOf(sum, meta.title, meta.notes ?? []));
  writeFileAtomic(files.terminal, terminalOf(sum, meta.title) + '\n');
  return files;
}

/** The check cell name of a point of the convergence curve, or of the unbounded attack. */
export const diagnoseAttackName = (attack: string, steps: number, unbounded: boolean, restarts = 1) => `diagnose:${attack}-${steps}${unbounded ? '-unbounded' : ''}${restarts > 1 ? `-r${restarts}` : ''}`;

/**
 * A diagnose.json seen as a report for `check` (regression baselines): per series the clean cell and one
 * cell per attack run (attack "diagnose:pgd-10", "diagnose:pgd-100-unbounded", at its budget); the
 * config is the images and the probe settings.
 */
export function diagnoseAsReport(data: { records: DiagnoseRecord[]; dataset?: string; split?: string; n?: number }): Report {
  const records = data.records;
  if (!Array.isArray(records) || records.length === 0) throw new Error('diagnose report: no records');
  const sum = summarizeDiagnose(records);
  const epsLabel = (r: AttackRecord) => (r.unbounded ? String(r.attackEps) : r.epsLabel);
  const cell = (r: DiagnoseRecord, attack: string, eps: number, label: string, mean: number) => ({
    model: r.model, variant: r.variant, jpegMode: r.jpegMode, attack, norm: 'linf', eps, epsLabel: label, mean, std: null, seeds: [r.modelSeed], values: [mean], n: r.n,
    successRate: null, meanNorm: null, maxNorm: null, wallTimeMs: null,
  });
  const cells = sum.series.flatMap((s) => {
    const mine = records.filter((r) => diagnoseSeriesKey(r) === s.key);
    const attacks = mine.filter((r): r is AttackRecord => r.kind === 'diagnose-attack');
    return [
      ...(s.clean === null ? [] : [cell(mine[0], 'clean', 0, '0', s.clean)]),
      ...attacks.map((r) => cell(r, diagnoseAttackName(r.attack, r.steps, r.unbounded, r.restarts), r.attackEps, epsLabel(r), r.accuracy)),
    ];
  });
  const series = [...new Map(records.map((r) => [`${r.model}|${r.jpegMode}`, { model: r.model, variant: r.variant, jpegMode: r.jpegMode, key: `${r.model}|${r.jpegMode}`, label: `${r.model}${r.jpegMode ? ` [${r.jpegMode}]` : ''}`, seeds: [] as number[] }])).values()];
  const r0 = records[0];
  const runs = [...new Map(records.filter((r): r is AttackRecord => r.kind === 'diagnose-attack').map((r) => [diagnoseAttackName(r.attack, r.steps, r.unbounded, r.restarts), r])).values()];
  return {
    schema: REPORT_SCHEMA, title: 'diagnose', createdAt: '', backend: 'unknown', versions: {}, seeds: [], jpegModes: [], series, reference: null, attacks: [], epsilons: [],
    config: {
      dataset: data.dataset ?? r0.dataset, split: data.split ?? 'test', n: data.n ?? r0.n, norm: 'linf',
      epsilons: [...new Set(runs.map(epsLabel))],
      attacks: [{ name: 'diagnose', params: { eps: r0.epsLabel, loss: r0.loss, directions: r0.directions, fdStep: r0.fdStep, runs: runs.map((r) => diagnoseAttackName(r.attack, r.steps, r.unbounded, r.restarts)).sort() } }],
      models: [], seed: r0.seed, batchSize: 0,
    },
    cells: cells as unknown as Report['cells'], robust: [], timings: { totalCellMs: 0, perSeriesMs: {} }, tables: [], notes: [], records: [],
    paper: { matched: false, summary: '', rows: [] },
  } as unknown as Report;
}

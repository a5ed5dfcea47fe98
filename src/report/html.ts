/** report.html: one self-contained page (inline CSS and SVG, no scripts, no network). */
import { CLEAN_ATTACK } from '../eval/records.ts';
import { seriesKey, WORST_CASE } from '../eval/summary.ts';
import { esc, fmtSeconds, normText } from './format.ts';
import { detailTable, exampleAttackLabel, findCell, mainTable, reportNorms, runSummary, stageTableRows, trainingTableRows, type Report, type TrainingView } from './model.ts';
import { pairedTableRows } from './paired.ts';
import { perClassIntro, perClassRows } from './per-class.ts';
import { QUERY_INTRO, queryPlots, queryTableRows } from './queries.ts';
import { heatmapSvg, linePlotSvg, PALETTE } from './svg.ts';

const fmtStep = (q: number) => (q < 10 ? q.toFixed(2) : q.toFixed(1));

/** An HTML table; numeric cells right-aligned. */
export function htmlTable(header: string[], rows: string[][], cls = ''): string {
  const num = (s: string) => /^[-+–]?[\d.]+( ± [\d.]+)?$|^–$/.test(s);
  return `<table${cls ? ` class="${cls}"` : ''}>\n<thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>\n<tbody>\n${rows
    .map((r) => `<tr>${r.map((c) => `<td${num(c) ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('\n')}\n</tbody>\n</table>`;
}

/** Accuracy per epoch: training accuracy, then test accuracy per JPEG mode and robust accuracy when watched. */
export function trainingPlotsSvg(training: TrainingView[]): string[] {
  const epochs = Math.max(...training.map((t) => t.epochs.length));
  // Label at most ~12 epochs so long schedules stay readable.
  const every = Math.max(1, Math.ceil(epochs / 12));
  const xLabels = Array.from({ length: epochs }, (_, i) => ((i + 1) % every === 0 || i === 0 ? String(i + 1) : ''));
  const line = (t: TrainingView, label: string, get: (e: TrainingView['epochs'][number]) => number | undefined, i: number) => ({
    label,
    values: Array.from({ length: epochs }, (_, k) => {
      const v = t.epochs[k] ? get(t.epochs[k]) : undefined;
      return v === undefined ? null : 100 * v;
    }),
    dashed: t.variant === 'baseline',
    color: PALETTE[i % PALETTE.length],
  });
  const plot = (title: string, series: ReturnType<typeof line>[]) => linePlotSvg({ title, xLabels, xTitle: 'epoch', yTitle: 'accuracy (%)', xName: 'epoch', markers: epochs <= 30, series: series.filter((s) => s.values.some((v) => v !== null)) });
  const modes = ['plain', 'soft', 'hard'] as const;
  const test = training.flatMap((t, i) => modes.filter((m) => t.epochs.some((e) => e.testAcc?.[m] !== undefined)).map((m, j) => line(t, `${t.model}${m === 'plain' ? '' : ` [${m}]`}`, (e) => e.testAcc?.[m], i * 3 + j)));
  const out = [plot('Training accuracy (augmented batches, training mode)', training.map((t, i) => line(t, t.model, (e) => e.trainAcc, i * 3))), plot('Test accuracy after each epoch', test)];
  if (training.some((t) => t.epochs.some((e) => e.testRobustAcc))) {
    const r = training.find((t) => t.epochs.some((e) => e.testRobustAcc))!.epochs.find((e) => e.testRobustAcc)!.testRobustAcc!;
    out.push(plot(`Robust test accuracy (${r.attack} at ${r.epsLabel}, ${r.n} images)`, training.map((t, i) => line(t, t.model, (e) => e.testRobustAcc?.accuracy, i * 3))));
  }
  return out;
}

/** One accuracy-vs-eps plot per attack (and the worst case), one line per series. */
export function plotsSvg(report: Report): string[] {
  const out: string[] = [];
  const norms = reportNorms(report);
  for (const attack of report.attacks) {
    if (attack === CLEAN_ATTACK) continue;
    // One plot per norm the attack has cells in (the worst case has one per norm in an evaluation mixing norms).
    for (const norm of norms.filter((nm) => report.cells.some((c) => c.attack === attack && c.norm === nm && c.eps > 0))) {
      const eps = report.epsilons.filter((e) => e.norm === norm && (e.value === 0 || report.cells.some((c) => c.attack === attack && c.norm === norm && c.epsLabel === e.label)));
      const labels = eps.some((e) => e.value === 0) ? eps.map((e) => e.label) : ['0', ...eps.map((e) => e.label)];
      // a series without any cell for this attack (e.g. BPDA run on the hard mode only) gets no line
      const measured = report.series.filter((s) => report.cells.some((c) => c.attack === attack && c.norm === norm && seriesKey(c) === s.key));
      const series = measured.map((s) => {
        const cells = labels.map((l) => findCell(report, s.key, attack, l, norm) ?? (l === '0' ? findCell(report, s.key, CLEAN_ATTACK, '0') : undefined));
        return {
          label: s.label,
          values: cells.map((c) => (c ? 100 * c.mean : null)),
          errors: cells.map((c) => (c?.std ? 100 * c.std : null)),
          dashed: s.variant === 'baseline',
          color: PALETTE[report.series.indexOf(s) % PALETTE.length],
        };
      });
      const title = attack === WORST_CASE ? `Robust accuracy (worst case over ${norms.length > 1 ? `${normText(norm)} ` : ''}attacks)` : `Accuracy under ${attack}`;
      out.push(linePlotSvg({ title, xLabels: labels, xTitle: norm === 'l0' ? 'eps (l0, changed pixels)' : `eps (${norm}, 0-1 pixel scale)`, yTitle: 'accuracy (%)', series }));
    }
  }
  return out;
}

/** One accuracy-against-queries plot per query-based search and eps, one line per series (colours and dashes as in the eps plots). */
export function queryPlotsSvg(report: Report): string[] {
  if (!report.queries) return [];
  return queryPlots(report.queries).map((p) => linePlotSvg({
    title: p.title, xLabels: p.xLabels, xTitle: 'queries per image (1-2-5 steps)', yTitle: 'accuracy (%)', xName: 'queries',
    series: p.lines.map((l) => {
      const i = Math.max(0, report.series.findIndex((x) => x.key === l.seriesKey));
      return { label: l.label, values: l.values, dashed: report.series[i]?.variant === 'baseline', color: PALETTE[i % PALETTE.length] };
    }),
  }));
}

/** The stylesheet of every HTML page the suite writes. */
export const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 1100px; color: #111; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.summary { color: #333; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; } th { background: #f2f4f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
.plots, .heatmaps { display: flex; flex-wrap: wrap; gap: 16px; }
.pair { border: 1px solid #eee; padding: 8px; margin: 0; max-width: 620px; } .pair .maps { display: flex; gap: 8px; } figcaption { font-size: 12px; color: #555; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 12px; }
.muted { color: #666; font-size: 13px; }
figure.examples { margin: 8px 0 16px; } figure.examples img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
`;

/** The whole report as a self-contained HTML page (example pictures, when drawn, are files beside it). */
export function renderHtml(report: Report): string {
  const ref = report.series.find((s) => s.key === report.reference);
  const { header, rows } = mainTable(report);
  const details = detailTable(report).rows;
  const s: string[] = [];
  s.push('<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', '<meta name="viewport" content="width=device-width, initial-scale=1">', `<title>${esc(report.title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>');
  s.push(`<h1>${esc(report.title)}</h1>`, `<p class="summary">${esc(runSummary(report))}.</p>`, `<p class="muted">Created ${esc(report.createdAt)}${report.config.command ? ` by <code>${esc(report.config.command)}</code>` : ''}.</p>`);
  s.push('<h2>Accuracy under attack (%)</h2>');
  s.push(`<p class="muted">"robust (worst case)": an image counts only if it is correct clean and under every attack at that eps.${ref ? ` Δ: difference to <b>${esc(ref.label)}</b> in percentage points.` : ''}${report.seeds.length > 1 ? ` Mean ± std (n-1) over ${report.seeds.length} seeds.` : ''}</p>`);
  s.push(htmlTable(header, rows, 'main'));
  // notes (the run's verdict first) right under the numbers they are about
  if (report.notes.length) s.push('<h2>Notes</h2>', `<ul>${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  if (report.checks?.length) s.push('<h2>Evaluation checks</h2>', `<ul>${report.checks.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  if (report.stages) {
    const st = stageTableRows(report.stages);
    s.push('<h2>Ensemble stages</h2>', '<p class="muted">Images each stage of the ensemble fooled first, among those classified correctly clean; a stage runs only on the images the stages before it left (– where it did not run).</p>', htmlTable(st.header, st.rows));
  }
  if (ref && report.paired?.length) {
    const t = pairedTableRows(report.paired, ref.label);
    s.push(`<h2>Paired comparison with ${esc(ref.label)}</h2>`, `<p class="muted">Same images, same model seeds: the images only one of the two gets right decide the difference; p is the exact McNemar test (two-sided) of that split.</p>`, htmlTable(t.header, t.rows, 'paired'));
  }
  if (report.perClass?.rows.length) {
    const t = perClassRows(report.perClass);
    s.push('<h2>Accuracy per class (%)</h2>', `<p class="muted">${esc(perClassIntro(report.perClass, report.seeds.length))}</p>`, htmlTable(t.header, t.rows, 'per-class'));
  }
  s.push('<h2>Accuracy vs eps</h2>', '<div class="plots">', ...plotsSvg(report), '</div>');
  if (report.queries) {
    const t = queryTableRows(report.queries);
    s.push('<h2>Queries of the score-based searches</h2>', `<p class="muted">${esc(QUERY_INTRO)}</p>`, htmlTable(t.header, t.rows), '<div class="plots">', ...queryPlotsSvg(report), '</div>');
  }
  if (report.examples?.length) {
    s.push('<h2>Adversarial examples</h2>', '<p class="muted">Per model, the attack that left the fewest images correct at the largest eps, on the first images of the set: a column per image; rows: clean, then per eps the adversarial image and its perturbation (grey is 0, amplified to the largest change). Labels, predictions and norms are in each picture\'s JSON.</p>');
    for (const e of report.examples) s.push(`<figure class="examples"><img src="${esc(e.png)}" alt="${esc(`adversarial examples of ${e.series} under ${e.attack}`)}"><figcaption>${esc(e.series)}: ${esc(exampleAttackLabel(e))} (<a href="${esc(e.json)}">details</a>)</figcaption></figure>`);
  }
  if (report.tables.length) {
    s.push('<h2>Quantisation tables</h2>', '<p class="muted">8x8 steps in raster order [u][v] (row u = vertical frequency), 0-255 DCT scale; colour on a log scale shared within each pair (yellow = fine, blue = coarse).</p>', '<div class="heatmaps">');
    for (const t of report.tables) {
      const all = [...t.learned, ...(t.initial ?? [])];
      const min = Math.min(...all), max = Math.max(...all);
      s.push('<figure class="pair">', '<div class="maps">', heatmapSvg(t.learned, { title: `${t.model} ${t.channel}: learned`, min, max }));
      if (t.initial) s.push(heatmapSvg(t.initial, { title: `${t.model} ${t.channel}: initial`, min, max }));
      s.push('</div>', `<figcaption>${esc(`range ${fmtStep(min)} to ${fmtStep(max)}`)}${t.initial && t.initialLabel ? `; initial = ${esc(t.initialLabel)}` : ''}</figcaption>`, '</figure>');
    }
    s.push('</div>');
  }
  if (report.training?.length) {
    const t = trainingTableRows(report.training);
    s.push('<h2>Training</h2>', '<p class="muted">Last epoch of each model; the plots show every epoch.</p>', htmlTable(t.header, t.rows), '<div class="plots">', ...trainingPlotsSvg(report.training), '</div>');
  }
  s.push('<h2>Per-cell details</h2>', '<p class="muted">Success rate: share of clean-correct images the attack made wrong. Perturbation norms on the 0-1 scale (L0: changed pixels).</p>');
  s.push(htmlTable(['model', 'attack', 'eps', 'accuracy %', '95% CI (images)', 'success %', 'mean norm', 'max norm', 'time'], details, 'details'));
  s.push('<h2>Paper vs this run</h2>', `<p>${esc(report.paper.summary)}</p>`);
  if (report.paper.rows.length) s.push(htmlTable(['quantity', 'paper', 'this run', 'status', 'source'], report.paper.rows.map((r) => [r.what, r.paperText, r.runText, r.paper.status, r.paper.source + (r.paper.note ? ` (${r.paper.note})` : '')]), 'paper'));
  s.push('<h2>Run</h2>', '<ul>', ...(report.config.dataset ? [`<li>Data: ${esc(report.config.dataset)}${report.config.split ? `, split ${esc(report.config.split)}` : ''}, ${esc(report.config.n)} images per cell</li>`] : []), `<li>Backend: ${esc(report.backend)}</li>`, `<li>Seeds: ${esc(report.seeds.join(', '))}; sweep seed ${esc(report.config.seed)}; batch size ${esc(report.config.batchSize)}</li>`, `<li>Total cell time: ${esc(fmtSeconds(report.timings.totalCellMs))}</li>`, ...Object.entries(report.versions).map(([k, v]) => `<li>${esc(k)} ${esc(v)}</li>`), '</ul>');
  s.push('<details><summary>Configuration (JSON)</summary>', `<pre>${esc(JSON.stringify(report.config, null, 2))}</pre>`, '</details>');
  s.push('</body>', '</html>', '');
  return s.join('\n');
}

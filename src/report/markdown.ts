/** report.md: Markdown tables rendered from the report object. */
import { fmtSeconds, mdTable } from './format.ts';
import { detailTable, exampleAttackLabel, mainTable, runSummary, stageTableRows, trainingTableRows, type Report } from './model.ts';
import { pairedTableRows } from './paired.ts';
import { perClassIntro, perClassRows } from './per-class.ts';
import { QUERY_INTRO, queryTableRows } from './queries.ts';

/** Paper-vs-run rows as a Markdown table (empty string when nothing matches). */
export function renderPaperMarkdown(report: Report): string {
  const p = report.paper;
  const lines = ['## Paper vs this run', '', p.summary, ''];
  if (p.rows.length) {
    lines.push(mdTable(['quantity', 'paper', 'this run', 'status', 'source'], p.rows.map((r) => [r.what, r.paperText, r.runText, r.paper.status, r.paper.source + (r.paper.note ? ` (${r.paper.note})` : '')])), '');
  }
  return lines.join('\n');
}

function quantTable(values: number[]): string {
  const header = ['u\\v', ...Array.from({ length: 8 }, (_, v) => String(v))];
  const rows = Array.from({ length: 8 }, (_, u) => [String(u), ...values.slice(8 * u, 8 * u + 8).map((x) => (x < 10 ? x.toFixed(2) : x.toFixed(1)))]);
  return mdTable(header, rows);
}

/** The per-class section: clean and worst-case accuracy of every series per class. */
function perClassMarkdown(report: Report): string[] {
  const t = perClassRows(report.perClass!);
  return [
    '## Accuracy per class (%)',
    '',
    perClassIntro(report.perClass!, report.seeds.length),
    '',
    mdTable(t.header, t.rows),
    '',
  ];
}

/** The whole report as Markdown. */
export function renderMarkdown(report: Report): string {
  const ref = report.series.find((s) => s.key === report.reference);
  const { header, rows } = mainTable(report);
  const details = detailTable(report);
  const stages = report.stages ? stageTableRows(report.stages) : undefined;
  const queries = report.queries ? queryTableRows(report.queries) : undefined;
  const paired = ref && report.paired?.length ? pairedTableRows(report.paired, ref.label) : null;
  const out: string[] = [
    `# ${report.title}`,
    '',
    `${runSummary(report)}.`,
    '',
    `Created ${report.createdAt}.${report.config.command ? ` Command: \`${report.config.command}\`.` : ''}`,
    '',
    '## Accuracy under attack (%)',
    '',
    `Each attack at each eps; "robust (worst case)" counts an image as correct only if it is correct clean and under every attack at that eps.` +
      (ref ? ` Δ is the difference to **${ref.label}** in percentage points.` : ' No baseline model in this run, so no differences.') +
      (report.seeds.length > 1 ? ` Values are mean ± std (sample, n-1) over ${report.seeds.length} separately trained seeds.` : ''),
    '',
    mdTable(header, rows),
    '',
    ...(report.notes.length ? ['## Notes', '', ...report.notes.map((n) => `- ${n}`), ''] : []),
    ...(report.checks?.length ? ['## Evaluation checks', '', ...report.checks.map((n) => `- ${n}`), ''] : []),
    ...(ref && paired
      ? [`## Paired comparison with ${ref.label}`, '', 'Same images, same model seeds: the images only one of the two gets right decide the difference; p is the exact McNemar test (two-sided) of that split.', '', mdTable(paired.header, paired.rows), '']
      : []),
    ...(report.perClass?.rows.length ? perClassMarkdown(report) : []),
    ...(stages ? ['## Ensemble stages', '', 'Images each stage of the ensemble fooled first, among those classified correctly clean; a stage runs only on the images the stages before it left (– where it did not run).', '', mdTable(stages.header, stages.rows), ''] : []),
    ...(queries ? ['## Queries of the score-based searches', '', QUERY_INTRO, '', mdTable(queries.header, queries.rows), ''] : []),
    ...(report.examples?.length
      ? ['## Adversarial examples', '', 'Per model, the attack that left the fewest images correct at the largest eps, on the first images of the set (rows: clean, then per eps the adversarial image and its amplified perturbation; details in each JSON).', '', ...report.examples.flatMap((e) => [`![${e.series}: ${e.attack}](${e.png})`, '', `${e.series}: ${exampleAttackLabel(e)}, [details](${e.json})`, ''])]
      : []),
    '## Per-cell details',
    '',
    'Success rate: share of the clean-correct images the attack made wrong. Norms of the perturbation on the 0-1 scale (L0: changed pixels).',
    '',
    mdTable(details.header, details.rows),
    '',
    renderPaperMarkdown(report),
  ];
  if (report.tables.length) {
    out.push('## Quantisation tables', '', 'Raster order [u][v] (u = vertical frequency), 0-255 DCT scale.', '');
    for (const t of report.tables) {
      out.push(`### ${t.model}: ${t.channel}, learned`, '', quantTable(t.learned), '');
      if (t.initial) out.push(`### ${t.model}: ${t.channel}, initial${t.initialLabel ? ` (${t.initialLabel})` : ''}`, '', quantTable(t.initial), '');
    }
  }
  if (report.training?.length) {
    const t = trainingTableRows(report.training);
    out.push('## Training', '', 'Last epoch of each model; every epoch is in report.json (training) and the run\'s <model>/history.json.', '', mdTable(t.header, t.rows), '');
  }
  out.push(
    '## Run',
    '',
    ...(report.config.dataset ? [`- Data: ${report.config.dataset}${report.config.split ? `, split ${report.config.split}` : ''}, ${report.config.n} images per cell`] : []),
    `- Backend: ${report.backend}`,
    `- Seeds: ${report.seeds.join(', ')}; sweep seed ${report.config.seed}; batch size ${report.config.batchSize}`,
    `- Total cell time: ${fmtSeconds(report.timings.totalCellMs)} (${Object.entries(report.timings.perSeriesMs).map(([k, v]) => `${k} ${fmtSeconds(v)}`).join(', ')})`,
    ...Object.entries(report.versions).map(([k, v]) => `- ${k} ${v}`),
    '',
    '```json',
    JSON.stringify(report.config, null, 2),
    '```',
    '',
  );
  return out.join('\n');
}

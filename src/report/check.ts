/**
 * Regression check: compare a report's accuracies with a committed baseline, cell by cell, each
 * with its own tolerance. Config differences (dataset, n, eps set, models, attacks) are errors,
 * not regressions: such numbers are not comparable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { canonicalParams } from '../eval/records.ts';
import { seriesLabel } from '../eval/summary.ts';
import { CORRUPTIONS_SCHEMA, corruptionsAsReport } from '../corruptions/report.ts';
import { CERTIFY_SCHEMA, certifyAsReport } from '../certify/report.ts';
import { SPATIAL_SCHEMA, spatialAsReport } from '../spatial/report.ts';
import { UNIVERSAL_SCHEMA, universalAsReport } from '../universal/report.ts';
import { PATCH_SCHEMA, patchAsReport } from '../patch/report.ts';
import { DIAGNOSE_SCHEMA, diagnoseAsReport } from '../diagnose/report.ts';
import { epsText } from './format.ts';
import { REPORT_SCHEMA, reportNorms, type Report } from './model.ts';

export const BASELINE_SCHEMA = 'jpegdl-robust-baseline/1';

/** What must match for two runs to be comparable. */
export interface BaselineConfig {
  dataset: string | null;
  split: string | null;
  n: number;
  norm: string;
  epsilons: string[];
  /** Budgets per norm when the evaluation mixed norms (absent otherwise, so single-norm baselines stay as they were). */
  epsilonsByNorm?: Record<string, string[]>;
  series: string[];
  attacks: string[];
}

export interface BaselineCell {
  model: string;
  variant: string;
  jpegMode: string | null;
  /** Attack label, 'clean' or 'worst-case'. */
  attack: string;
  /** The eps label; with its norm ("0.5 L2") when the report mixed norms (a worst case exists per norm). */
  eps: string;
  /** Mean accuracy over seeds, fraction in [0,1]. */
  accuracy: number;
  /** Allowed |actual - accuracy|, fraction (0.02 = 2 points). */
  tolerance: number;
}

export interface Baseline {
  schema: typeof BASELINE_SCHEMA;
  createdAt: string;
  /** Where the numbers came from and how to regenerate them. */
  source: string;
  backend: string;
  config: BaselineConfig;
  cells: BaselineCell[];
}

/** Thrown when report and baseline come from different configurations. */
export class IncompatibleBaselineError extends Error {}

/** The comparable part of a report's configuration. */
export function baselineConfig(report: Report): BaselineConfig {
  return {
    // the dataset's name without its "(source path)" suffix: paths differ between machines
    dataset: report.config.dataset ? report.config.dataset.replace(/\s*\(.*$/, '') : null,
    split: report.config.split ?? null,
    n: report.config.n,
    norm: report.config.norm,
    epsilons: [...report.config.epsilons].sort(),
    ...(report.config.epsilonsByNorm ? { epsilonsByNorm: report.config.epsilonsByNorm as Record<string, string[]> } : {}),
    series: report.series.map((s) => seriesLabel(s)).sort(),
    attacks: report.config.attacks.map((a) => `${a.name}${canonicalParams(a.params)}`).sort(),
  };
}

/** A baseline from a report: every cell's mean accuracy with `tolerance` (fraction). */
export function makeBaseline(report: Report, { tolerance = 0.02, source = '' }: { tolerance?: number; source?: string } = {}): Baseline {
  if (!(tolerance >= 0 && tolerance <= 1)) throw new Error(`tolerance: ${tolerance} must be a fraction in [0,1] (0.02 = 2 points)`);
  const cellEps = cellEpsOf(report);
  return {
    schema: BASELINE_SCHEMA,
    createdAt: new Date().toISOString(),
    source,
    backend: report.backend,
    config: baselineConfig(report),
    // eps = 0 attack rows repeat the clean row (no perturbation allowed): checked once, as 'clean'.
    // Certified accuracy at radius 0 does not: it is the smoothed classifier's accuracy, kept.
    cells: report.cells
      .filter((c) => c.attack === 'clean' || c.eps > 0 || c.attack.startsWith('certify:'))
      .map((c) => ({ model: c.model, variant: c.variant, jpegMode: c.jpegMode ?? null, attack: c.attack, eps: cellEps(c), accuracy: c.mean, tolerance }))
      .sort((a, b) => cellId(a).localeCompare(cellId(b))),
  };
}

/** How baselines name a cell's eps in `report`: the label, with its norm when the report mixes norms. */
function cellEpsOf(report: Report): (c: { epsLabel: string; norm: string }) => string {
  const mixed = reportNorms(report).length > 1;
  return (c) => epsText(c.epsLabel, c.norm, mixed);
}

function cellId(c: { model: string; jpegMode: string | null; attack: string; eps: string }): string {
  return `${seriesLabel(c)} | ${c.attack} | ${c.eps}`;
}

/** Read a baseline file; a report.json is accepted too (turned into a baseline with `tolerance`). */
export function readBaseline(path: string, tolerance = 0.02): Baseline {
  if (!existsSync(path)) throw new Error(`--baseline: file ${path} does not exist (create it with \`jpegdl-robust check <report.json> --write-baseline ${path}\`)`);
  let data: { schema?: string };
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`--baseline: ${path} is not valid JSON (${(err as Error).message})`);
  }
  if (data.schema === REPORT_SCHEMA) return makeBaseline(data as Report, { tolerance, source: path });
  if (data.schema === CORRUPTIONS_SCHEMA) return makeBaseline(corruptionsAsReport(data as unknown as Parameters<typeof corruptionsAsReport>[0]), { tolerance, source: path });
  if (data.schema === CERTIFY_SCHEMA) return makeBaseline(certifyAsReport(data as unknown as Parameters<typeof certifyAsReport>[0]), { tolerance, source: path });
  if (data.schema === SPATIAL_SCHEMA) return makeBaseline(spatialAsReport(data as unknown as Parameters<typeof spatialAsReport>[0]), { tolerance, source: path });
  if (data.schema === UNIVERSAL_SCHEMA) return makeBaseline(universalAsReport(data as unknown as Parameters<typeof universalAsReport>[0]), { tolerance, source: path });
  if (data.schema === PATCH_SCHEMA) return makeBaseline(patchAsReport(data as unknown as Parameters<typeof patchAsReport>[0]), { tolerance, source: path });
  if (data.schema === DIAGNOSE_SCHEMA) return makeBaseline(diagnoseAsReport(data as unknown as Parameters<typeof diagnoseAsReport>[0]), { tolerance, source: path });
  if (data.schema !== BASELINE_SCHEMA) throw new Error(`--baseline: ${path} has schema ${JSON.stringify(data.schema)}; expected ${BASELINE_SCHEMA} or a report.json`);
  const b = data as Baseline;
  if (!Array.isArray(b.cells) || !b.config) throw new Error(`--baseline: ${path} lacks cells or config`);
  for (const c of b.cells) if (!(typeof c.accuracy === 'number' && typeof c.tolerance === 'number' && c.tolerance >= 0)) throw new Error(`--baseline: ${path}: cell ${cellId(c)} needs numeric accuracy and tolerance >= 0`);
  return b;
}

/** Read a report.json written by writeReport. */
export function readReport(path: string): Report {
  if (!existsSync(path)) throw new Error(`report: file ${path} does not exist`);
  let data: Report;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`report: ${path} is not valid JSON (${(err as Error).message})`);
  }
  // A corruption report is checked the same way, corruption x severity as its cells.
  if ((data as { schema?: string }).schema === CORRUPTIONS_SCHEMA) return corruptionsAsReport(data as unknown as Parameters<typeof corruptionsAsReport>[0]);
  // So is a certification report, sigma x radius as its cells.
  if ((data as { schema?: string }).schema === CERTIFY_SCHEMA) return certifyAsReport(data as unknown as Parameters<typeof certifyAsReport>[0]);
  // And a spatial report, one cell per worst case.
  if ((data as { schema?: string }).schema === SPATIAL_SCHEMA) return spatialAsReport(data as unknown as Parameters<typeof spatialAsReport>[0]);
  // And a universal-perturbation report, one cell per evaluated model x perturbation.
  if ((data as { schema?: string }).schema === UNIVERSAL_SCHEMA) return universalAsReport(data as unknown as Parameters<typeof universalAsReport>[0]);
  // And an adversarial-patch report, one cell per evaluated model x patch x placement.
  if ((data as { schema?: string }).schema === PATCH_SCHEMA) return patchAsReport(data as unknown as Parameters<typeof patchAsReport>[0]);
  // And a diagnose report: clean accuracy and every attack run of the convergence curve and the unbounded check.
  if ((data as { schema?: string }).schema === DIAGNOSE_SCHEMA) return diagnoseAsReport(data as unknown as Parameters<typeof diagnoseAsReport>[0]);
  if (data.schema !== REPORT_SCHEMA) throw new Error(`report: ${path} has schema ${JSON.stringify(data.schema)}; expected ${REPORT_SCHEMA} (or ${CORRUPTIONS_SCHEMA}, ${CERTIFY_SCHEMA}, ${SPATIAL_SCHEMA}, ${UNIVERSAL_SCHEMA}, ${PATCH_SCHEMA}, ${DIAGNOSE_SCHEMA})`);
  return data;
}

export interface CheckDiff {
  cell: string;
  /** Images per cell, to show moves in images as well as points. */
  n: number;
  baseline: number;
  actual: number | null;
  /** actual - baseline, fraction. */
  diff: number | null;
  tolerance: number;
}

export interface CheckResult {
  ok: boolean;
  compared: number;
  /** Cells that moved beyond tolerance, or are missing from the report. */
  failures: CheckDiff[];
  /** Cells that moved within tolerance (reported, not failing). */
  moved: CheckDiff[];
}

/** Compare `report` with `baseline`; throws IncompatibleBaselineError when configs differ. */
export function checkReport(report: Report, baseline: Baseline): CheckResult {
  const mine = baselineConfig(report);
  const diffs: string[] = [];
  for (const k of [...new Set([...Object.keys(baseline.config), ...Object.keys(mine)])] as (keyof BaselineConfig)[]) {
    const a = JSON.stringify(baseline.config[k]), b = JSON.stringify(mine[k]);
    if (a !== b) diffs.push(`  ${k}: baseline ${a}, report ${b}`);
  }
  if (diffs.length) throw new IncompatibleBaselineError(`baseline and report come from different configurations; numbers are not comparable:\n${diffs.join('\n')}\n(regenerate the baseline if the change is intended)`);
  const cellEps = cellEpsOf(report);
  const byId = new Map(report.cells.map((c) => [cellId({ model: c.model, jpegMode: c.jpegMode ?? null, attack: c.attack, eps: cellEps(c) }), c]));
  const failures: CheckDiff[] = [];
  const moved: CheckDiff[] = [];
  for (const b of baseline.cells) {
    const id = cellId(b);
    const c = byId.get(id);
    if (!c) { failures.push({ cell: id, n: baseline.config.n, baseline: b.accuracy, actual: null, diff: null, tolerance: b.tolerance }); continue; }
    const diff = c.mean - b.accuracy;
    const d: CheckDiff = { cell: id, n: c.n, baseline: b.accuracy, actual: c.mean, diff, tolerance: b.tolerance };
    if (Math.abs(diff) > b.tolerance + 1e-12) failures.push(d);
    else if (Math.abs(diff) > 1e-12) moved.push(d);
  }
  return { ok: failures.length === 0, compared: baseline.cells.length, failures, moved };
}

const pct = (x: number | null) => (x === null ? 'missing' : `${(100 * x).toFixed(2)}%`);
const pts = (x: number | null, n: number) => {
  if (x === null) return '';
  const images = Math.round(Math.abs(x) * n * 100) / 100;
  return `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} pts = ${images} image${images === 1 ? '' : 's'} of ${n}`;
};

/** Readable diff of a check, one line per cell that moved. */
export function formatCheck(r: CheckResult): string {
  const lines = [r.ok ? `OK: ${r.compared} cells within tolerance${r.moved.length ? ` (${r.moved.length} moved slightly)` : ''}` : `FAIL: ${r.failures.length} of ${r.compared} cells moved beyond tolerance`];
  for (const d of r.failures) lines.push(`  ✗ ${d.cell}: baseline ${pct(d.baseline)} -> ${pct(d.actual)} ${pts(d.diff, d.n)} (tolerance ±${(100 * d.tolerance).toFixed(2)} pts)`);
  for (const d of r.moved) lines.push(`  ~ ${d.cell}: baseline ${pct(d.baseline)} -> ${pct(d.actual)} ${pts(d.diff, d.n)} (within ±${(100 * d.tolerance).toFixed(2)} pts)`);
  return lines.join('\n');
}

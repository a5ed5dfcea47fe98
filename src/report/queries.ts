/**
 * Accuracy against queries for the query-based searches (Square, SimBA, Sparse-RS, SPSA), read off the
 * records' per-image traces: how many queries each fooled image cost, what accuracy any smaller budget
 * would have left, and whether the search was still fooling images when its budget ran out (the
 * curves black-box attack papers plot, and the sign that more queries would lower the number).
 */
import { mean, median } from 'mathjs';
import { unpackBits, type CellRecord } from '../eval/records.ts';
import { attackKey, attackLabels, seriesKey, seriesLabel } from '../eval/summary.ts';
import { epsText, fmtPct } from './format.ts';

/** One record's trace, summarised. */
export interface QueryRow {
  series: string;
  seriesKey: string;
  modelSeed: number;
  attack: string;
  epsLabel: string;
  eps: number;
  norm: string;
  n: number;
  cleanCorrect: number;
  correct: number;
  /** The most queries the search could spend on one image. */
  budget: number;
  /** Images the search fooled (wrong after the attack, right before it). */
  fooled: number;
  /** Mean and median queries over the fooled images (null when none was). */
  meanQueries: number | null;
  medianQueries: number | null;
  /** Of those, fooled after more than half the budget. */
  lateFooled: number;
  /** Accuracy (0-1) had the search stopped after a tenth and after half of its budget (rounded down, at least 1 query). */
  accuracyAtTenth: number;
  accuracyAtHalf: number;
  /** Accuracy (0-1) had the search stopped after `queries` queries, at 1-2-5 steps and the budget. */
  curve: { queries: number; accuracy: number }[];
}

/** The query table of a report: one row per record with a trace (eps > 0). */
export interface QueryTable {
  rows: QueryRow[];
}

/** 1, 2, 5, 10, 20, 50, ... below `budget`, then the budget itself. */
export function queryCheckpoints(budget: number): number[] {
  if (!Number.isInteger(budget) || budget < 1) throw new Error(`queryCheckpoints: budget must be a whole number >= 1, got ${budget}`);
  const out: number[] = [];
  for (let p = 1; p < budget; p *= 10) for (const m of [1, 2, 5]) if (m * p < budget) out.push(m * p);
  out.push(budget);
  return out;
}

/**
 * Per image, the query at which it counts as fooled: the search's own query for an image wrong after the
 * attack, 0 for one wrong clean, the budget when the search never saw it fooled (a randomised model can
 * misclassify the returned image on the final check); Infinity for an image still right. Reconciled with
 * `correctBits`, so the curve ends exactly at the record's accuracy.
 */
export function fooledTimes(r: CellRecord): Float64Array {
  if (!r.queries) throw new Error(`fooledTimes: record ${r.model} ${r.attack} ${r.threat.epsLabel} has no query trace`);
  const bits = unpackBits(r.correctBits, r.n);
  const out = new Float64Array(r.n);
  for (let i = 0; i < r.n; i++) {
    const t = r.queries.fooledAt[i];
    out[i] = bits[i] ? Infinity : t < 0 ? r.queries.budget : t;
  }
  return out;
}

/** Accuracy (0-1) after `q` queries, from `fooledTimes`. */
export function accuracyAfter(times: Float64Array, q: number): number {
  let right = 0;
  for (const t of times) if (t > q) right++;
  return right / times.length;
}

/** Statistics of the queries the fooled images took (`spent`, each >= 1): mean, median, and how many fell after half the budget (the not-converged sign). */
export function queryStats(spent: number[], budget: number): { fooled: number; meanQueries: number | null; medianQueries: number | null; lateFooled: number } {
  return {
    fooled: spent.length,
    meanQueries: spent.length ? Number(mean(spent)) : null,
    medianQueries: spent.length ? Number(median(spent)) : null,
    lateFooled: spent.filter((t) => t > budget / 2).length,
  };
}

/** The query table of the records that carry traces, or undefined. */
export function queryTable(records: CellRecord[]): QueryTable | undefined {
  const traced = records.filter((r) => r.queries && r.threat.eps > 0);
  if (!traced.length) return undefined;
  const labels = attackLabels(records);
  const rows = traced.map((r): QueryRow => {
    const times = fooledTimes(r);
    const spent = Array.from(times).filter((t) => t >= 1 && Number.isFinite(t));
    const budget = r.queries!.budget;
    return {
      series: seriesLabel(r), seriesKey: seriesKey(r), modelSeed: r.modelSeed, attack: labels.get(attackKey(r)) ?? r.attack,
      epsLabel: r.threat.epsLabel, eps: r.threat.eps, norm: r.threat.norm, n: r.n, cleanCorrect: r.cleanCorrect, correct: r.correct, budget,
      ...queryStats(spent, budget),
      accuracyAtTenth: accuracyAfter(times, Math.max(1, Math.floor(budget / 10))),
      accuracyAtHalf: accuracyAfter(times, Math.max(1, Math.floor(budget / 2))),
      curve: queryCheckpoints(budget).map((q) => ({ queries: q, accuracy: accuracyAfter(times, q) })),
    };
  });
  rows.sort((a, b) => a.attack.localeCompare(b.attack) || a.norm.localeCompare(b.norm) || a.eps - b.eps || a.series.localeCompare(b.series) || a.modelSeed - b.modelSeed);
  return { rows };
}

const fmtQ = (x: number | null) => (x === null ? '–' : x >= 100 ? String(Math.round(x)) : (Math.round(x * 10) / 10).toString());

/** The query table as header and text rows, for the Markdown and HTML renderers. */
export function queryTableRows(t: QueryTable): { header: string[]; rows: string[][] } {
  const seeds = new Set(t.rows.map((r) => r.modelSeed)).size > 1;
  const mixed = new Set(t.rows.map((r) => r.norm)).size > 1;
  return {
    header: ['attack', 'eps', 'model', ...(seeds ? ['seed'] : []), 'budget', 'fooled', 'mean queries', 'median queries', 'acc. at 10%', 'acc. at 50%', 'acc. at budget', 'fooled in 2nd half'],
    rows: t.rows.map((r) => [
      r.attack, epsText(r.epsLabel, r.norm, mixed), r.series, ...(seeds ? [String(r.modelSeed)] : []), String(r.budget), `${r.fooled} of ${r.cleanCorrect}`,
      fmtQ(r.meanQueries), fmtQ(r.medianQueries), fmtPct(r.accuracyAtTenth), fmtPct(r.accuracyAtHalf), fmtPct(r.correct / r.n), String(r.lateFooled),
    ]),
  };
}

/** A search that fooled at least this many images (and this fraction of them) after half its budget had not converged. */
const LATE_IMAGES = 2;
const LATE_FRACTION = 0.01;

/** Rows grouped by series, attack and budget (the seeds of one cell together), in table order. */
export function queryGroups(t: QueryTable): QueryRow[][] {
  const groups = new Map<string, QueryRow[]>();
  for (const r of t.rows) {
    const k = JSON.stringify([r.seriesKey, r.attack, r.norm, r.epsLabel, r.budget]);
    const group = groups.get(k);
    if (group) group.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()];
}

/** Report checks: a search still fooling images in the second half of its query budget (at least 2 images and 1% of them, over the seeds) would likely lower the accuracy further with more queries. */
export function queryChecks(t: QueryTable): string[] {
  const mixed = new Set(t.rows.map((r) => r.norm)).size > 1;
  const out: string[] = [];
  for (const g of queryGroups(t)) {
    const late = g.reduce((s, r) => s + r.lateFooled, 0);
    const n = g.reduce((s, r) => s + r.n, 0);
    if (late < LATE_IMAGES || late < LATE_FRACTION * n) continue;
    const r = g[0];
    const seeds = g.length > 1 ? ` (over ${g.length} seeds)` : '';
    out.push(`${r.attack} on ${r.series} at ${epsText(r.epsLabel, r.norm, mixed)}: ${late} of ${n} images${seeds} were first fooled after half of its ${r.budget}-query budget; the search was still finding adversarial images when it stopped, so more queries would likely lower this accuracy`);
  }
  return out;
}

/** What the query section says above its table. */
export const QUERY_INTRO = 'Per query-based search (Square, SimBA, Sparse-RS, SPSA): its budget per image, the images it fooled among those right before it, mean and median queries those took (a query scores one candidate; the clean check is not counted), the accuracy it would have left had it stopped after a tenth or half of its budget, and how many images it fooled only after half of it: a search still fooling images at the end of its budget has not converged.';

/** One accuracy-against-queries plot per (attack, eps, budget): a line per series, mean over seeds at 1-2-5 query steps. */
export function queryPlots(t: QueryTable): { title: string; xLabels: string[]; lines: { seriesKey: string; label: string; values: number[] }[] }[] {
  const mixed = new Set(t.rows.map((r) => r.norm)).size > 1;
  const plots = new Map<string, { title: string; xLabels: string[]; lines: { seriesKey: string; label: string; values: number[] }[] }>();
  for (const g of queryGroups(t)) {
    const r = g[0];
    const k = JSON.stringify([r.attack, r.norm, r.epsLabel, r.budget]);
    const plot = plots.get(k) ?? { title: `Accuracy against queries: ${r.attack} at ${epsText(r.epsLabel, r.norm, mixed)}`, xLabels: r.curve.map((c) => String(c.queries)), lines: [] };
    const values = r.curve.map((_, i) => (100 * g.reduce((s, x) => s + x.curve[i].accuracy, 0)) / g.length);
    plot.lines.push({ seriesKey: r.seriesKey, label: r.series, values });
    plots.set(k, plot);
  }
  return [...plots.values()];
}

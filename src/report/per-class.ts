/**
 * Accuracy per class of the evaluated images, clean and in the worst case over all attacks at each eps,
 * read off the records' per-image bits: which classes a defence helps or hurts, and whether one class
 * carries the whole difference.
 */
import { CLEAN_ATTACK, unpackBits, type CellRecord } from '../eval/records.ts';
import { robustBits, seriesKey, seriesLabel, type SeriesId } from '../eval/summary.ts';
import { epsText, wilsonInterval } from './format.ts';

/** The classes of the evaluated images: names by label, and each image's label in the records' image order. */
export interface ClassInfo {
  names: string[];
  labels: number[];
}

/** Throw unless `classes` describes `n` images (`where` names the caller in the message). */
export function checkClassInfo(classes: ClassInfo, n: number, where = 'classes'): void {
  if (!Array.isArray(classes?.names) || !classes.names.length) throw new Error(`${where}: names must be a non-empty list of class names`);
  if (!Array.isArray(classes.labels)) throw new Error(`${where}: labels must be a list of integer labels`);
  if (classes.labels.length !== n) throw new Error(`${where}: ${classes.labels.length} labels for records of ${n} images`);
  const bad = classes.labels.findIndex((y) => !Number.isInteger(y) || y < 0 || y >= classes.names.length);
  if (bad >= 0) throw new Error(`${where}: label ${String(classes.labels[bad])} of image ${bad} is not a class index in [0, ${classes.names.length})`);
}

/** One series' numbers in a class row: clean accuracy and worst case per eps (fractions, mean over model seeds; null when not measured). */
export interface PerClassValues {
  clean: number | null;
  worst: (number | null)[];
}

/** Per-class accuracy of every series; `epsilons` are the worst-case columns (eps > 0), `series` the series keys in report order. */
export interface PerClassTable {
  epsilons: { label: string; value: number; norm: string }[];
  series: { key: string; label: string }[];
  rows: { label: number; name: string; n: number; values: PerClassValues[] }[];
}

/**
 * Per class of `classes`, each series' clean accuracy and worst-case accuracy at each eps > 0 of `epsilons`,
 * the mean over the series' model seeds. Classes without evaluated images are left out. `robust`: the
 * records' worst-case bits when the caller has them already.
 */
export function perClassTable(
  records: CellRecord[],
  classes: ClassInfo,
  series: (SeriesId & { key: string })[],
  epsilons: { label: string; value: number; norm: string }[],
  robust: ReturnType<typeof robustBits> = robustBits(records),
): PerClassTable {
  if (!records.length) throw new Error('perClassTable: no records');
  checkClassInfo(classes, records[0].n, 'perClassTable: classes');
  const k = classes.names.length;
  const counts = new Array<number>(k).fill(0);
  for (const y of classes.labels) counts[y]++;
  // Correct images per class of one bit vector.
  const byClass = (bits: Uint8Array): number[] => {
    const c = new Array<number>(k).fill(0);
    classes.labels.forEach((y, i) => { c[y] += bits[i]; });
    return c;
  };
  // Per series key and column: per-class fractions of each seed, averaged at the end.
  const sums = new Map<string, { total: number[]; seeds: number }>();
  const add = (key: string, bits: Uint8Array, n: number) => {
    if (n !== classes.labels.length) throw new Error(`perClassTable: a record of ${n} images among records of ${classes.labels.length}`);
    const c = byClass(bits);
    const s = sums.get(key) ?? { total: new Array<number>(k).fill(0), seeds: 0 };
    c.forEach((v, y) => { s.total[y] += counts[y] ? v / counts[y] : 0; });
    s.seeds++;
    sums.set(key, s);
  };
  const col = (series: string, what: string) => JSON.stringify([series, what]);
  for (const r of records) if (r.attack === CLEAN_ATTACK) add(col(seriesKey(r), 'clean'), unpackBits(r.correctBits, r.n), r.n);
  for (const { cell, bits } of robust) add(col(seriesKey(cell), `${cell.norm}:${cell.epsLabel}`), bits, cell.n);
  const budgets = epsilons.filter((e) => e.value > 0);
  const mean = (key: string, y: number): number | null => {
    const s = sums.get(key);
    return s ? s.total[y] / s.seeds : null;
  };
  const rows = classes.names
    .map((name, y) => ({
      label: y,
      name,
      n: counts[y],
      values: series.map((s) => ({ clean: mean(col(s.key, 'clean'), y), worst: budgets.map((e) => mean(col(s.key, `${e.norm}:${e.label}`), y)) })),
    }))
    .filter((r) => r.n > 0);
  return { epsilons: budgets, series: series.map((s) => ({ key: s.key, label: seriesLabel(s) })), rows };
}

/** Accuracy in percent with one decimal, "–" when not measured. */
const pct = (v: number | null) => (v === null ? '–' : (100 * v).toFixed(1));

/** The table as header and text rows (%): class, images, then per series its clean column and a worst-case column per eps. */
export function perClassRows(t: PerClassTable): { header: string[]; rows: string[][] } {
  const mixed = new Set(t.epsilons.map((e) => e.norm)).size > 1;
  // Columns no series measured (e.g. the hard path's clean-only budgets) are dropped.
  const cols = t.series.flatMap((s, i) => [
    { head: `${s.label} clean`, get: (v: PerClassValues[]) => v[i].clean },
    ...t.epsilons.map((e, j) => ({ head: `${s.label} ${epsText(e.label, e.norm, mixed)}`, get: (v: PerClassValues[]) => v[i].worst[j] })),
  ]).filter((c) => t.rows.some((r) => c.get(r.values) !== null));
  return {
    header: ['class', 'images', ...cols.map((c) => c.head)],
    rows: t.rows.map((r) => [`${r.label} ${r.name}`, String(r.n), ...cols.map((c) => pct(c.get(r.values)))]),
  };
}

/** The sentence above the per-class table (Markdown and HTML): what it holds, over how many seeds, and how noisy one class is. */
export function perClassIntro(t: PerClassTable, seeds: number): string {
  return `Per class of the evaluated images: clean accuracy and the worst case over all attacks at each eps (as in the main table)${seeds > 1 ? `, mean over ${seeds} seeds` : ''}. ${perClassNoise(t)}`;
}

/** One sentence on how noisy one class's accuracy is: the 95% Wilson half-width at 50% for the smallest class. */
export function perClassNoise(t: PerClassTable): string {
  const n = Math.min(...t.rows.map((r) => r.n));
  const [lo, hi] = wilsonInterval(Math.round(n / 2), n);
  return `With ${n === Math.max(...t.rows.map((r) => r.n)) ? '' : 'as few as '}${n} images in a class, one class's accuracy near 50% has a 95% interval of about ±${(50 * (hi - lo)).toFixed(0)} points, so single-class differences smaller than that are sampling noise.`;
}

/**
 * Warnings the per-class numbers show and the overall ones hide: a series right on at most one class clean
 * (with three or more classes) answers one class for (almost) every image, so its accuracy under attack is
 * that class's share of the set, not robustness.
 */
export function perClassChecks(t: PerClassTable): string[] {
  if (t.rows.length < 3) return [];
  const out: string[] = [];
  t.series.forEach((s, i) => {
    const clean = t.rows.filter((r) => r.values[i].clean !== null);
    if (clean.length < 3) return;
    const right = clean.filter((r) => r.values[i].clean! > 0);
    if (right.length > 1) return;
    const what = right.length
      ? `right only on class ${right[0].label} ${right[0].name} (${pct(right[0].values[i].clean)}% of its ${right[0].n} images; every other class 0%)`
      : 'right on no class at all';
    out.push(`${s.label}: clean, it is ${what}. It answers (almost) one class for every image, so its accuracy under attack measures that class's share of the set, not robustness.`);
  });
  return out;
}

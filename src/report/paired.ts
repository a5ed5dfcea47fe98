/**
 * Paired comparison of each model with the reference (baseline) on the very same images: for every
 * attack and eps, the images only the reference gets right, those only the model gets right, and the
 * exact McNemar test of whether that split could be chance. A difference of accuracies measured on the
 * same images is judged by its discordant pairs, not by two independent binomial errors.
 */
import { binomialTestHalf } from '../certify/stats.ts';
import { CLEAN_ATTACK, unpackBits, type CellRecord } from '../eval/records.ts';
import { attackKey, attackLabels, seriesKey, seriesLabel, WORST_CASE } from '../eval/summary.ts';
import { epsText } from './format.ts';

/** One row: a model against the reference under one attack (or the worst case) at one eps, pooled over seeds. */
export interface PairedRow {
  series: string;
  attack: string;
  epsLabel: string;
  eps: number;
  /** Norm of the eps (the clean row: the norm of its records). */
  norm: string;
  /** Image pairs compared (images x seeds present for both). */
  pairs: number;
  /** Right for the reference only / for the model only. */
  referenceOnly: number;
  modelOnly: number;
  /** Accuracy difference model - reference over the pairs, in [-1, 1]. */
  diff: number;
  /** Two-sided exact McNemar p-value (binomial test of the discordant pairs at 1/2). */
  p: number;
}

/** Two-sided exact McNemar p-value for b and c discordant pairs: 2·P[X <= min(b, c)], X ~ Bin(b + c, 1/2), capped at 1. */
export function mcnemarExact(b: number, c: number): number {
  if (!(Number.isInteger(b) && Number.isInteger(c) && b >= 0 && c >= 0)) throw new Error(`mcnemarExact: counts must be integers >= 0, got ${b}, ${c}`);
  // The discordant pairs split as Binomial(b + c, 1/2) under the null: the two-sided binomial test.
  return b + c === 0 ? 1 : binomialTestHalf(b, b + c);
}

/** Per-image 0/1 correctness of a series and of the reference on the same images: right for the series only, for the reference only, and the exact McNemar p. */
export function pairedBits(series: ArrayLike<number>, reference: ArrayLike<number>): { onlySeries: number; onlyReference: number; p: number } {
  let [onlySeries, onlyReference] = [0, 0];
  for (let i = 0; i < series.length; i++) {
    if (series[i] && !reference[i]) onlySeries++;
    if (reference[i] && !series[i]) onlyReference++;
  }
  return { onlySeries, onlyReference, p: mcnemarExact(onlySeries, onlyReference) };
}

/** Per image AND of correctness bit sets of `n` images: 1 where right under every one of them. */
export function allCorrect(sets: Iterable<ArrayLike<number>>, n: number): Uint8Array {
  const out = new Uint8Array(n).fill(1);
  for (const b of sets) for (let i = 0; i < n; i++) out[i] &= b[i];
  return out;
}

/** Per image correctness of every (series, seed, attack label or worst case, eps) in the records. */
function bitsByCell(records: CellRecord[]): Map<string, Uint8Array> {
  const labels = attackLabels(records);
  const out = new Map<string, Uint8Array>();
  // By norm too: a worst case exists per norm, and eps labels may repeat across norms.
  const key = (series: string, seed: number, attack: string, norm: string, eps: string) => JSON.stringify([series, seed, attack, norm, eps]);
  const clean = new Map<string, Uint8Array>();
  const attacked: { r: CellRecord; bits: Uint8Array }[] = [];
  for (const r of records) {
    const bits = unpackBits(r.correctBits, r.n);
    if (r.attack === CLEAN_ATTACK) {
      clean.set(JSON.stringify([seriesKey(r), r.modelSeed]), bits);
      out.set(key(seriesKey(r), r.modelSeed, CLEAN_ATTACK, r.threat.norm, '0'), bits);
    } else {
      out.set(key(seriesKey(r), r.modelSeed, labels.get(attackKey(r)) ?? r.attack, r.threat.norm, r.threat.epsLabel), bits);
      attacked.push({ r, bits });
    }
  }
  // Worst case: right clean and under every attack at that eps (as robustAccuracy counts it).
  for (const { r, bits } of attacked) {
    const k = key(seriesKey(r), r.modelSeed, WORST_CASE, r.threat.norm, r.threat.epsLabel);
    const acc = out.get(k) ?? Uint8Array.from(clean.get(JSON.stringify([seriesKey(r), r.modelSeed])) ?? new Uint8Array(r.n).fill(1));
    for (let i = 0; i < r.n; i++) acc[i] &= bits[i];
    out.set(k, acc);
  }
  return out;
}

/**
 * Paired rows of every non-reference series against `referenceKey` (a seriesKey), for each attack label
 * (clean, the attacks, the worst case) and eps both have, pairing model seed with model seed.
 */
export function pairedComparisons(records: CellRecord[], referenceKey: string | null): PairedRow[] {
  if (referenceKey === null) return [];
  const bits = bitsByCell(records);
  const cells = [...bits.keys()].map((k) => JSON.parse(k) as [string, number, string, string, string]);
  const epsValue = new Map(records.map((r) => [`${r.threat.norm}|${r.threat.epsLabel}`, r.threat.eps]));
  const labelOf = new Map(records.map((r) => [seriesKey(r), seriesLabel(r)]));
  const groups = new Map<string, { series: string; attack: string; norm: string; eps: string; seeds: number[] }>();
  for (const [series, seed, attack, norm, eps] of cells) {
    if (series === referenceKey) continue;
    if (!bits.has(JSON.stringify([referenceKey, seed, attack, norm, eps]))) continue;
    const g = JSON.stringify([series, attack, norm, eps]);
    const entry = groups.get(g) ?? { series, attack, norm, eps, seeds: [] };
    entry.seeds.push(seed);
    groups.set(g, entry);
  }
  const rows: PairedRow[] = [];
  for (const g of groups.values()) {
    let refOnly = 0;
    let modelOnly = 0;
    let pairs = 0;
    for (const seed of g.seeds) {
      const a = bits.get(JSON.stringify([referenceKey, seed, g.attack, g.norm, g.eps]))!;
      const b = bits.get(JSON.stringify([g.series, seed, g.attack, g.norm, g.eps]))!;
      if (a.length !== b.length) throw new Error(`paired comparison: ${g.attack} at ${g.eps} has ${a.length} images for the reference and ${b.length} for ${labelOf.get(g.series)}`);
      for (let i = 0; i < a.length; i++) {
        if (a[i] && !b[i]) refOnly++;
        else if (!a[i] && b[i]) modelOnly++;
      }
      pairs += a.length;
    }
    rows.push({ series: labelOf.get(g.series) ?? g.series, attack: g.attack, epsLabel: g.eps, eps: epsValue.get(`${g.norm}|${g.eps}`) ?? 0, norm: g.norm, pairs, referenceOnly: refOnly, modelOnly, diff: (modelOnly - refOnly) / pairs, p: mcnemarExact(refOnly, modelOnly) });
  }
  // Attack cells at eps 0 repeat the clean row.
  const kept = rows.filter((r) => r.attack === CLEAN_ATTACK || r.eps > 0);
  const rank = (a: string) => (a === CLEAN_ATTACK ? 0 : a === WORST_CASE ? 2 : 1);
  const normRank = (n: string) => ['linf', 'l2', 'l1', 'l0'].indexOf(n);
  return kept.sort((x, y) => x.series.localeCompare(y.series) || rank(x.attack) - rank(y.attack) || x.attack.localeCompare(y.attack) || normRank(x.norm) - normRank(y.norm) || x.eps - y.eps);
}

/** The paired rows as table text: Δ in points, the discordant counts and p (significant at 5% marked). */
export function pairedTableRows(rows: PairedRow[], reference: string): { header: string[]; rows: string[][] } {
  const mixed = new Set(rows.filter((r) => r.eps > 0).map((r) => r.norm)).size > 1;
  return {
    header: ['model', 'attack', 'eps', 'Δ (pts)', `right for ${reference} only`, 'right for the model only', 'p (exact McNemar)', 'at 5%'],
    rows: rows.map((r) => [
      r.series, r.attack === WORST_CASE ? 'robust (worst case)' : r.attack, epsText(r.epsLabel, r.norm, mixed), `${r.diff >= 0 ? '+' : ''}${(100 * r.diff).toFixed(1)}`, String(r.referenceOnly), String(r.modelOnly),
      r.p < 0.001 ? '<0.001' : r.p.toFixed(3), r.p < 0.05 ? (r.diff > 0 ? 'better' : 'worse') : 'no difference shown',
    ]),
  };
}

/**
 * From cell records to the numbers a report shows: per-example worst case over attacks
 * ("robust accuracy") and mean ± std over separately trained seeds.
 */
import { mean, std } from 'mathjs';
import { CLEAN_ATTACK, attackOptions, canonicalParams, unpackBits, type CellRecord, type Variant } from './records.ts';

/** Attack name of the worst-case (robust accuracy) rows. */
export const WORST_CASE = 'worst-case';

/** A model configuration in a report: one line per series in plots, one column in tables. */
export interface SeriesId {
  model: string;
  variant: Variant;
  jpegMode: string | null;
}

/** Stable key of a series. */
export function seriesKey(s: SeriesId): string {
  return JSON.stringify([s.model, s.variant, s.jpegMode ?? null]);
}

/** Human label of a series, e.g. "jpeg-dl [soft]". */
export function seriesLabel(s: Pick<SeriesId, 'model' | 'jpegMode'>): string {
  return s.jpegMode ? `${s.model} [${s.jpegMode}]` : s.model;
}

/** Stable key of an attack (name + canonical parameters). */
export function attackKey(r: Pick<CellRecord, 'attack' | 'attackParams'>): string {
  return `${r.attack}${canonicalParams(r.attackParams)}`;
}

/**
 * Short attack labels: the bare name when it is unique in `records`, else name(k=v,...); a transfer
 * attack adds "from <surrogate> [<mode>]", e.g. "pgd from baseline".
 */
export function attackLabels(records: Pick<CellRecord, 'attack' | 'attackParams'>[]): Map<string, string> {
  // Uniqueness is judged on the attack's own parameters: a transfer run of the same attack keeps the bare name.
  const core = (r: Pick<CellRecord, 'attack' | 'attackParams'>) => ({ attack: r.attack, attackParams: attackOptions(r.attackParams) });
  const byName = new Map<string, Set<string>>();
  for (const r of records) {
    const set = byName.get(r.attack) ?? new Set<string>();
    set.add(attackKey(core(r)));
    byName.set(r.attack, set);
  }
  const out = new Map<string, string>();
  for (const r of records) {
    const k = attackKey(r);
    if (out.has(k)) continue;
    const own = core(r).attackParams;
    const unique = (byName.get(r.attack)?.size ?? 0) <= 1;
    const params = Object.keys(own).sort().map((p) => `${p}=${JSON.stringify(own[p])}`);
    const base = unique || params.length === 0 ? r.attack : `${r.attack}(${params.join(',')})`;
    const sur = r.attackParams?.surrogate;
    const mode = r.attackParams?.surrogateMode;
    out.set(k, sur === undefined ? base : `${base} from ${String(sur)}${mode === undefined ? '' : ` [${String(mode)}]`}`);
  }
  return out;
}

/** Labels (as attackLabels gives them) of the transfer attacks in `records`. */
export function transferAttackLabels(records: Pick<CellRecord, 'attack' | 'attackParams'>[]): Set<string> {
  const labels = attackLabels(records);
  return new Set(records.filter((r) => r.attackParams?.surrogate !== undefined).map((r) => labels.get(attackKey(r))!));
}

/**
 * Labels (as attackLabels gives them) of the attacks that average gradients over several calls of a
 * randomised model (EOT): eotSamples > 1, or AutoAttack's 'rand' version (20 calls unless told otherwise).
 */
export function eotAttackLabels(records: Pick<CellRecord, 'attack' | 'attackParams'>[]): Set<string> {
  const labels = attackLabels(records);
  const samples = (p: Record<string, unknown> | undefined) => {
    const k = p?.eotSamples;
    if (typeof k === 'number') return k;
    return p?.version === 'rand' ? 20 : 1;
  };
  return new Set(records.filter((r) => samples(r.attackParams) > 1).map((r) => labels.get(attackKey(r))!));
}

/** Worst case over attacks at one eps for one model instance. */
export interface RobustCell extends SeriesId {
  modelSeed: number;
  norm: string;
  eps: number;
  epsLabel: string;
  n: number;
  /** Images correct under every attack at this eps (and clean, since no perturbation is allowed too). */
  correct: number;
  accuracy: number;
  /** Attack labels that were combined. */
  attacks: string[];
}

/**
 * Per-example worst case over all attacks (and the clean prediction) at each (norm, eps), per model
 * instance: an image counts as robust only if every attack failed on it.
 */
export function robustAccuracy(records: CellRecord[]): RobustCell[] {
  return robustBits(records).map((x) => x.cell);
}

/** robustAccuracy with each cell's per-image bits (1 = correct clean and under every attack), image order of the records. */
export function robustBits(records: CellRecord[]): { cell: RobustCell; bits: Uint8Array }[] {
  const labels = attackLabels(records);
  const clean = new Map<string, CellRecord>();
  for (const r of records) if (r.attack === CLEAN_ATTACK) clean.set(JSON.stringify([seriesKey(r), r.modelSeed]), r);
  const groups = new Map<string, CellRecord[]>();
  for (const r of records) {
    if (r.attack === CLEAN_ATTACK) continue;
    const k = JSON.stringify([seriesKey(r), r.modelSeed, r.threat.norm, r.threat.epsLabel]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out: { cell: RobustCell; bits: Uint8Array }[] = [];
  for (const cells of groups.values()) {
    const first = cells[0];
    const n = first.n;
    const c = clean.get(JSON.stringify([seriesKey(first), first.modelSeed]));
    const parts = c ? [c, ...cells] : cells;
    const acc = new Uint8Array(n).fill(1);
    for (const r of parts) {
      if (r.n !== n) throw new Error(`robust accuracy: ${seriesLabel(r)} ${r.attack} at ${r.threat.epsLabel} has n=${r.n}, others n=${n}`);
      const bits = unpackBits(r.correctBits, n);
      for (let i = 0; i < n; i++) acc[i] &= bits[i];
    }
    let correct = 0;
    for (let i = 0; i < n; i++) correct += acc[i];
    out.push({
      cell: {
        model: first.model,
        variant: first.variant,
        jpegMode: first.jpegMode,
        modelSeed: first.modelSeed,
        norm: first.threat.norm,
        eps: first.threat.eps,
        epsLabel: first.threat.epsLabel,
        n,
        correct,
        accuracy: correct / n,
        attacks: [...new Set(cells.map((r) => labels.get(attackKey(r)) ?? r.attack))].sort(),
      },
      bits: acc,
    });
  }
  return out.sort((a, b) => a.cell.eps - b.cell.eps);
}

/** Mean ± std of one (series, attack, eps) cell over model seeds. */
export interface AggregateCell extends SeriesId {
  /** Attack label, 'clean', or 'worst-case'. */
  attack: string;
  norm: string;
  eps: number;
  epsLabel: string;
  /** Mean accuracy over seeds, fraction. */
  mean: number;
  /** Sample standard deviation over seeds (n-1); null with a single seed. */
  std: number | null;
  /** Seeds aggregated, in order. */
  seeds: number[];
  /** Accuracy of each seed, same order. */
  values: number[];
  /** Images per seed. */
  n: number;
  /** Mean success rate on clean-correct images over seeds (null if undefined for any). */
  successRate: number | null;
  meanNorm: number | null;
  maxNorm: number | null;
  wallTimeMs: number | null;
}

/** mean and sample std (n-1) of `values` with mathjs; std is null for fewer than two values. */
export function meanStd(values: number[]): { mean: number; std: number | null } {
  if (values.length === 0) throw new Error('meanStd: no values');
  const m = Number(mean(values));
  const s = values.length > 1 ? Number(std(values, 'unbiased')) : null;
  return { mean: m, std: s };
}

/** Aggregate records and worst-case cells over model seeds: one AggregateCell per (series, attack, eps). */
export function aggregate(records: CellRecord[], robust: RobustCell[] = robustAccuracy(records)): AggregateCell[] {
  const labels = attackLabels(records);
  interface Item { s: SeriesId; attack: string; norm: string; eps: number; epsLabel: string; seed: number; acc: number; n: number; sr: number | null; mn: number | null; mx: number | null; t: number | null }
  const items: Item[] = [];
  for (const r of records) {
    items.push({ s: r, attack: r.attack === CLEAN_ATTACK ? CLEAN_ATTACK : labels.get(attackKey(r)) ?? r.attack, norm: r.threat.norm, eps: r.threat.eps, epsLabel: r.threat.epsLabel, seed: r.modelSeed, acc: r.accuracy, n: r.n, sr: r.successRate, mn: r.meanNorm, mx: r.maxNorm, t: r.wallTimeMs });
  }
  for (const c of robust) {
    items.push({ s: c, attack: WORST_CASE, norm: c.norm, eps: c.eps, epsLabel: c.epsLabel, seed: c.modelSeed, acc: c.accuracy, n: c.n, sr: null, mn: null, mx: null, t: null });
  }
  const groups = new Map<string, Item[]>();
  for (const it of items) {
    const k = JSON.stringify([seriesKey(it.s), it.attack, it.norm, it.epsLabel]);
    groups.set(k, [...(groups.get(k) ?? []), it]);
  }
  const avg = (xs: (number | null)[]): number | null => (xs.some((x) => x === null || !Number.isFinite(x)) ? null : Number(mean(xs as number[])));
  const out: AggregateCell[] = [];
  for (const g of groups.values()) {
    g.sort((a, b) => a.seed - b.seed);
    const seeds = g.map((x) => x.seed);
    if (new Set(seeds).size !== seeds.length) throw new Error(`aggregate: seed listed twice for ${seriesLabel(g[0].s)} ${g[0].attack} at ${g[0].epsLabel}`);
    const { mean: m, std: s } = meanStd(g.map((x) => x.acc));
    out.push({
      model: g[0].s.model,
      variant: g[0].s.variant,
      jpegMode: g[0].s.jpegMode ?? null,
      attack: g[0].attack,
      norm: g[0].norm,
      eps: g[0].eps,
      epsLabel: g[0].epsLabel,
      mean: m,
      std: s,
      seeds,
      values: g.map((x) => x.acc),
      n: g[0].n,
      successRate: avg(g.map((x) => x.sr)),
      meanNorm: avg(g.map((x) => x.mn)),
      maxNorm: avg(g.map((x) => x.mx)),
      wallTimeMs: avg(g.map((x) => x.t)),
    });
  }
  return out;
}

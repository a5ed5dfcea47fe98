/**
 * A leaderboard across reports (RobustBench style): every model x JPEG mode of every report.json given,
 * with clean accuracy, worst-case robust accuracy per eps, what attacks that worst case rests on, how
 * it was trained, and (when a corruption report sits next to it) its corruption accuracy. Ranked by
 * robust accuracy at one eps; everything is read from the reports' data, nothing recomputed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { table } from 'table';
import { CLEAN_ATTACK } from '../eval/records.ts';
import { seriesKey, WORST_CASE } from '../eval/summary.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { trainingMetadata, type AdversarialTrainingConfig } from '../train/adversarial.ts';
import { readReport } from './check.ts';
import { esc, fmtPct, mdTable, normText } from './format.ts';
import { CSS, htmlTable } from './html.ts';
import { reportNorms, type Report } from './model.ts';
import { gridCounts } from '../spatial/transform.ts';
import type { DiagnoseRecord } from '../diagnose/evaluate.ts';
import { diagnoseFindingList, FINDING_NAMES, summarizeDiagnose } from '../diagnose/summary.ts';

/** Attacks that alone make a weak evaluation of a JPEG layer (short gradient attacks through it), in every norm. */
const NON_ADAPTIVE = new Set(['fgsm', 'pgd', 'pgd-l2', 'pgd-l1', 'pgd-l0']);

/** One row: a model in one JPEG mode, as one report measured it. */
export interface LeaderboardEntry {
  /** The report's directory (as given) and the series in it. */
  source: string;
  series: string;
  variant: string;
  /** How the model was trained ('standard training', an adversarial recipe, or null when unrecorded). */
  training: string | null;
  dataset: string | null;
  n: number;
  norm: string;
  /** Clean accuracy (mean over seeds) in [0,1]. */
  clean: number | null;
  /** Worst case over the report's attacks per eps, in [0,1]; keyed by the label, with the norm for L2 and L1 budgets ("0.5 L2"). */
  robust: Record<string, number>;
  /** Attacks run on this series (labels as in the report; transfer attacks included). */
  attacks: string[];
  /** True when the worst case rests on FGSM/PGD only (no adaptive or gradient-free attack). */
  weak: boolean;
  /** The norms whose robust columns rest on FGSM/PGD only (white-box; transfer attacks do not count). */
  weakNorms: string[];
  /** Mean corruption accuracy and relative corruption error, from a corruption report beside it. */
  corruption?: { mean: number; relativeError: number | null };
  /** The best average certified radius over the sigmas of a certification report beside it (L2, 0-1 scale). */
  certified?: { acr: number; sigma: string };
  /** Accuracy under the worst rotation and shift of the grid, from a spatial report beside it. */
  spatial?: { grid: number; transforms: number };
  /** What the gradient-masking diagnostics beside it found for this model (short names; empty: nothing). */
  diagnose?: string[];
  /** Accuracy under the worst of every universal perturbation per L-inf eps label, from a universal report beside it. */
  universal?: Record<string, number>;
  /** Accuracy under the worst of every adversarial patch of the largest size (every position tried), from a patch report beside it. */
  patch?: { accuracy: number; size: number };
}

/** The report.json of `dir` (or `dir` itself when it is a file). */
function reportPath(dir: string): string {
  if (dir.endsWith('.json')) return dir;
  return join(dir, 'report.json');
}

/** What training the series' model had, from the report's config (run: train.adversarial; evaluate: per-model metadata). */
function trainingOf(report: Report, model: string): string | null {
  const train = report.config.train as { adversarial?: AdversarialTrainingConfig; noiseSd?: number } | undefined;
  if (train) return trainingMetadata(train.adversarial, train.noiseSd).training;
  const m = report.config.models.find((x) => x.name === model && typeof x.training === 'string');
  return m?.training ?? null;
}

/** A JSON report of `kind` beside a report directory (<dir>/<kind>.json or <dir>/<kind>/<kind>.json), parsed; null when absent or when `dir` is a file. */
function besideReport<T>(dir: string, kind: string): T | null {
  if (dir.endsWith('.json')) return null;
  const path = [join(dir, `${kind}.json`), join(dir, kind, `${kind}.json`)].find((p) => existsSync(p));
  if (!path) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (err) {
    throw new Error(`leaderboard: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

/** Corruption summary beside a report: <dir>/corruptions.json or <dir>/corruptions/corruptions.json. */
function corruptionsOf(dir: string): Map<string, { mean: number; relativeError: number | null }> {
  const out = new Map<string, { mean: number; relativeError: number | null }>();
  const data = besideReport<{ summary?: { series?: { label: string; mean: number; relativeError: number | null }[] } }>(dir, 'corruptions');
  for (const s of data?.summary?.series ?? []) out.set(s.label, { mean: s.mean, relativeError: s.relativeError });
  return out;
}

/** Certification summary beside a report: <dir>/certify.json or <dir>/certify/certify.json; per series label the sigma with the largest ACR. */
function certifiedOf(dir: string): Map<string, { acr: number; sigma: string }> {
  const out = new Map<string, { acr: number; sigma: string }>();
  const data = besideReport<{ series?: { model: string; jpegMode: string | null; sigmaLabel: string; acr: number }[] }>(dir, 'certify');
  for (const s of data?.series ?? []) {
    const label = `${s.model}${s.jpegMode ? ` [${s.jpegMode}]` : ''}`;
    const prev = out.get(label);
    if (!prev || s.acr > prev.acr) out.set(label, { acr: s.acr, sigma: s.sigmaLabel });
  }
  return out;
}

/** Spatial summary beside a report: <dir>/spatial.json or <dir>/spatial/spatial.json; per series label the grid worst case. */
function spatialOf(dir: string): Map<string, { grid: number; transforms: number }> {
  const out = new Map<string, { grid: number; transforms: number }>();
  const data = besideReport<{ summary?: { series?: { label: string; grid: number | null }[] }; records?: { grid: { maxRotation: number; rotations: number; maxTranslation: number; translations: number } }[] }>(dir, 'spatial');
  const g = data?.records?.[0]?.grid;
  const transforms = g ? gridCounts(g).transforms : 0;
  for (const s of data?.summary?.series ?? []) if (typeof s.grid === 'number') out.set(s.label, { grid: s.grid, transforms });
  return out;
}

/** Universal-perturbation summary beside a report: <dir>/universal.json or <dir>/universal/universal.json; per series label the worst of all per eps (L-inf only). */
function universalOf(dir: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  const data = besideReport<{ settings?: { norm?: string }; records?: { settings?: { norm?: string } }[]; summary?: { series?: { key: string; label: string }[]; worst?: { series: string; epsLabel: string; accuracy: number | null }[] } }>(dir, 'universal');
  if (!data || (data.settings?.norm ?? data.records?.[0]?.settings?.norm) !== 'linf') return out;
  const labels = new Map((data.summary?.series ?? []).map((s) => [s.key, s.label]));
  for (const w of data.summary?.worst ?? []) {
    const label = labels.get(w.series);
    if (label === undefined || w.accuracy === null) continue;
    out.set(label, { ...out.get(label), [w.epsLabel]: w.accuracy });
  }
  return out;
}

/** Adversarial-patch summary beside a report: <dir>/patch.json or <dir>/patch/patch.json; per series label the worst of all at the largest size. */
function patchOf(dir: string): Map<string, { accuracy: number; size: number }> {
  const out = new Map<string, { accuracy: number; size: number }>();
  const data = besideReport<{ summary?: { series?: { key: string; label: string }[]; worst?: { series: string; size: number; accuracy: number | null }[] } }>(dir, 'patch');
  const labels = new Map((data?.summary?.series ?? []).map((s) => [s.key, s.label]));
  for (const w of data?.summary?.worst ?? []) {
    const label = labels.get(w.series);
    if (label === undefined || w.accuracy === null || (out.get(label)?.size ?? -1) > w.size) continue;
    out.set(label, { accuracy: w.accuracy, size: w.size });
  }
  return out;
}

/** Diagnose findings beside a report: <dir>/diagnose.json or <dir>/diagnose/diagnose.json; per series label the kinds found (recomputed from the records). */
function diagnoseOf(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const data = besideReport<{ records?: DiagnoseRecord[] }>(dir, 'diagnose');
  if (!data?.records?.length) return out;
  const sum = summarizeDiagnose(data.records);
  for (const s of sum.series) out.set(s.label, []);
  for (const f of diagnoseFindingList(sum)) out.get(f.series)!.push(FINDING_NAMES[f.kind]);
  return out;
}

/** Entries of every series in the reports of `dirs` (report directories or report.json files). */
export function leaderboardEntries(dirs: string[]): LeaderboardEntry[] {
  if (dirs.length === 0) throw new Error('leaderboard: give at least one report directory');
  const out: LeaderboardEntry[] = [];
  for (const dir of dirs) {
    const report = readReport(reportPath(dir));
    if (report.config.norm === 'corruption') throw new Error(`leaderboard: ${reportPath(dir)} is a corruption report; give the attack report (run or evaluate directory): corruptions are picked up from <report>/corruptions/`);
    if (report.config.norm === 'spatial') throw new Error(`leaderboard: ${reportPath(dir)} is a spatial report; give the attack report (run or evaluate directory): spatial results are picked up from <report>/spatial/`);
    if (report.config.attacks.some((a) => a.name.startsWith('certify:'))) throw new Error(`leaderboard: ${reportPath(dir)} is a certification report; give the attack report (run or evaluate directory): certificates are picked up from <report>/certify/`);
    if (report.config.attacks.some((a) => a.name === 'universal')) throw new Error(`leaderboard: ${reportPath(dir)} is a universal-perturbation report; give the attack report (run or evaluate directory): universal results are picked up from <report>/universal/`);
    if (report.config.attacks.some((a) => a.name === 'patch')) throw new Error(`leaderboard: ${reportPath(dir)} is an adversarial-patch report; give the attack report (run or evaluate directory): patch results are picked up from <report>/patch/`);
    if (report.config.attacks.some((a) => a.name === 'diagnose')) throw new Error(`leaderboard: ${reportPath(dir)} is a diagnose report; give the attack report (run or evaluate directory): gradient checks are picked up from <report>/diagnose/`);
    const corruptions = corruptionsOf(dir);
    const certified = certifiedOf(dir);
    const spatial = spatialOf(dir);
    const diagnosed = diagnoseOf(dir);
    const universal = universalOf(dir);
    const patches = patchOf(dir);
    const source = dir.endsWith('.json') ? basename(resolve(dir, '..')) : basename(resolve(dir));
    for (const s of report.series) {
      const cells = report.cells.filter((c) => seriesKey(c) === s.key);
      const attacks = [...new Set(cells.map((c) => c.attack))].filter((a) => a !== CLEAN_ATTACK && a !== WORST_CASE);
      const robust: Record<string, number> = {};
      for (const c of cells) if (c.attack === WORST_CASE && c.eps > 0) robust[epsKey(c.epsLabel, c.norm)] = c.mean;
      // Per norm: is every white-box attack of that norm a short gradient attack (FGSM/PGD)?
      const byNorm = new Map<string, string[]>();
      for (const c of cells) {
        if (c.attack === CLEAN_ATTACK || c.attack === WORST_CASE || !(c.eps > 0)) continue;
        const names = byNorm.get(c.norm) ?? [];
        if (!/ from /.test(c.attack)) names.push(c.attack.split('(')[0].trim());
        byNorm.set(c.norm, names);
      }
      const weakNorms = [...byNorm.entries()].filter(([, names]) => names.every((a) => NON_ADAPTIVE.has(a))).map(([norm]) => norm);
      // Imported models keep their own name next to the series label (every evaluate of one model calls it "baseline").
      const arch = report.config.models.find((m) => m.name === s.model)?.arch;
      out.push({
        source,
        series: typeof arch === 'string' && arch.startsWith('imported:') ? `${s.label} (${arch.slice('imported:'.length)})` : s.label,
        variant: s.variant,
        training: trainingOf(report, s.model),
        dataset: report.config.dataset ?? null,
        n: report.config.n,
        norm: reportNorms(report).length > 1 ? 'mixed' : report.epsilons.find((e) => e.value > 0)?.norm ?? report.config.norm,
        clean: cells.find((c) => c.attack === CLEAN_ATTACK)?.mean ?? null,
        robust,
        attacks,
        weak: weakNorms.length > 0,
        weakNorms,
        ...(corruptions.has(s.label) ? { corruption: corruptions.get(s.label)! } : {}),
        ...(certified.has(s.label) ? { certified: certified.get(s.label)! } : {}),
        ...(spatial.has(s.label) ? { spatial: spatial.get(s.label)! } : {}),
        ...(diagnosed.has(s.label) ? { diagnose: diagnosed.get(s.label)! } : {}),
        ...(universal.has(s.label) ? { universal: universal.get(s.label)! } : {}),
        ...(patches.has(s.label) ? { patch: patches.get(s.label)! } : {}),
      });
    }
  }
  return out;
}

/** The key of an eps in `robust`: the label for an L-inf budget, "0.5 L2" / "8 L1" / "10 L0" for the others. */
function epsKey(label: string, norm: string): string {
  return norm === 'linf' ? label : `${label} ${normText(norm)}`;
}

/** Norm rank and value of a key, for sorting: L-inf budgets first, then L2, then L1, then L0, each by size. */
function keyOrder(key: string): [number, number] {
  const [label, norm] = key.split(' ');
  const value = label.includes('/') ? Number(label.split('/')[0]) / Number(label.split('/')[1]) : Number(label);
  return [norm === undefined ? 0 : norm === 'L2' ? 1 : norm === 'L1' ? 2 : 3, value];
}

/** Eps keys present in any entry: L-inf labels ("4/255") by value, then L2 ("0.5 L2"), then L1, then L0. */
export function leaderboardEpsilons(entries: LeaderboardEntry[]): string[] {
  return [...new Set(entries.flatMap((e) => Object.keys(e.robust)))].sort((a, b) => keyOrder(a)[0] - keyOrder(b)[0] || keyOrder(a)[1] - keyOrder(b)[1]);
}

/**
 * Entries ranked by robust accuracy at `eps` (a key, or a bare label when one norm has it; default: the
 * largest eps of the first norm that every entry has), best first; unmeasured last.
 */
export function rankEntries(entries: LeaderboardEntry[], eps?: string): { eps: string | null; ranked: LeaderboardEntry[] } {
  const all = leaderboardEpsilons(entries);
  if (eps !== undefined && !all.includes(eps)) {
    const asked = eps.trim();
    const same = all.filter((k) => k.split(' ')[0] === asked);
    if (same.length > 1) throw new Error(`--eps: "${eps}" is a budget in several norms (${same.join(', ')}); give one of them`);
    if (same.length === 0) throw new Error(`--eps: no report has a worst case at "${eps}"; available: ${all.join(', ') || 'none'}`);
    eps = same[0];
  }
  const common = all.filter((l) => entries.every((e) => l in e.robust));
  const firstNorm = (list: string[]) => list.filter((k) => keyOrder(k)[0] === keyOrder(list[0])[0]);
  const by = eps ?? (common.length ? firstNorm(common).at(-1) : undefined) ?? (all.length ? firstNorm(all).at(-1) : undefined) ?? null;
  const key = (e: LeaderboardEntry) => (by !== null && by in e.robust ? e.robust[by] : -1);
  return { eps: by, ranked: [...entries].sort((a, b) => key(b) - key(a) || (b.clean ?? -1) - (a.clean ?? -1)) };
}


/** Header and rows of the leaderboard (accuracies in %). */
export function leaderboardRows(entries: LeaderboardEntry[], eps?: string): { header: string[]; rows: string[][]; eps: string | null; notes: string[] } {
  const { eps: by, ranked } = rankEntries(entries, eps);
  const epsList = leaderboardEpsilons(entries);
  const withCorr = entries.some((e) => e.corruption);
  const withCert = entries.some((e) => e.certified);
  const withSpatial = entries.some((e) => e.spatial);
  const withDiagnose = entries.some((e) => e.diagnose);
  // The universal column follows the ranked budget (L-inf labels only), so it is never read at another eps.
  const withUniversal = by !== null && entries.some((e) => e.universal && by in e.universal);
  const patchSizes = [...new Set(entries.flatMap((e) => (e.patch ? [e.patch.size] : [])))];
  const header = ['rank', 'model', 'report', 'training', 'clean', ...epsList.map((l) => `robust ${l}${l === by ? ' (ranked)' : ''}`), ...(withCorr ? ['corruptions', 'rel. corruption error'] : []), ...(withCert ? ['certified ACR (L2)'] : []), ...(withSpatial ? ['rotations and shifts'] : []), ...(withUniversal ? [`universal ${by}`] : []), ...(patchSizes.length ? [`patch ${patchSizes.join(' / ')} px`] : []), ...(withDiagnose ? ['gradient checks'] : []), 'attacks'];
  const rows = ranked.map((e, i) => [
    String(i + 1), e.series, e.source, e.training ?? '–', fmtPct(e.clean), ...epsList.map((l) => fmtPct(e.robust[l])),
    ...(withCorr ? [fmtPct(e.corruption?.mean), e.corruption?.relativeError == null ? '–' : e.corruption.relativeError.toFixed(2)] : []),
    ...(withCert ? [e.certified ? `${e.certified.acr.toFixed(3)} (σ ${e.certified.sigma})` : '–'] : []),
    ...(withSpatial ? [fmtPct(e.spatial?.grid)] : []),
    ...(withUniversal ? [fmtPct(e.universal?.[by!])] : []),
    ...(patchSizes.length ? [fmtPct(e.patch?.accuracy)] : []),
    ...(withDiagnose ? [e.diagnose ? (e.diagnose.length ? e.diagnose.join('; ') : 'passed') : '–'] : []),
    `${e.attacks.join(', ')}${e.weak ? (e.norm === 'mixed' ? ` (weak in ${e.weakNorms.map(normText).join(', ')}: FGSM/PGD only)` : ' (weak: FGSM/PGD only)') : ''}`,
  ]);
  const notes: string[] = [];
  const datasets = new Set(entries.map((e) => `${e.dataset ?? '?'} n=${e.n} ${e.norm}`));
  if (datasets.size > 1) notes.push(`The reports differ in data or threat model (${[...datasets].join('; ')}): compare rows across them with care.`);
  if (withCert) notes.push('Certified ACR: the average certified L2 radius of the randomised-smoothing classifier built on the model (0 where wrong or abstaining; the best over the certified noise levels), a lower bound no attack can break, from <report>/certify/.');
  if (withSpatial) notes.push(`Rotations and shifts: accuracy when the model must be right under every rotation and shift of the spatial grid (${[...new Set(entries.flatMap((e) => (e.spatial ? [e.spatial.transforms] : [])))].join(' / ')} transforms; Engstrom et al. 2019), from <report>/spatial/.`);
  if (withUniversal) notes.push(`Universal ${by}: accuracy when the model must be right under every universal perturbation of that budget (each model's own fit, the other models' and uniform ±eps; Moosavi-Dezfooli et al. 2017), from <report>/universal/: one pattern for all images, a weaker threat than the per-image columns.`);
  if (patchSizes.length) notes.push(`Patch: accuracy when the model must be right under every adversarial patch of the largest size the patch report holds (${patchSizes.join(' / ')} px side; each model's own, the other models' and a noise patch, at a random position and every grid position; Brown et al. 2017), from <report>/patch/: no Lp budget, a local change of any strength.`);
  if (withDiagnose) notes.push('Gradient checks: what the gradient-masking diagnostics found for the model (zero gradients, a gradient that misses finite differences, an attack that needs more steps than on the baseline or fails with an unbounded budget; Carlini et al. 2019), from <report>/diagnose/; "passed": none of them.');
  if (entries.some((e) => e.weak)) notes.push('Rows marked weak were attacked with FGSM/PGD only; their robust accuracy is an upper bound that adaptive attacks (APGD, Square, BPDA, AutoAttack) may lower a lot for a JPEG layer.');
  return { header, rows, eps: by, notes };
}

/** Title line, the table and its notes, for the terminal. */
export function renderLeaderboardTerminal(entries: LeaderboardEntry[], eps?: string): string {
  const { header, rows, eps: by, notes } = leaderboardRows(entries, eps);
  const body = table([header, ...rows], { drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === size });
  return `leaderboard: ${entries.length} model(s) ranked by worst-case robust accuracy at ${by ?? '–'} (accuracy in %)\n${body}${notes.map((n) => `note: ${n}`).join('\n')}`;
}

/** Write leaderboard.{md,html,json,txt} into `dir` (atomically); returns the paths. */
export function writeLeaderboard(dir: string, entries: LeaderboardEntry[], eps?: string): { markdown: string; html: string; json: string; terminal: string } {
  const { header, rows, eps: by, notes } = leaderboardRows(entries, eps);
  const files = { markdown: join(dir, 'leaderboard.md'), html: join(dir, 'leaderboard.html'), json: join(dir, 'leaderboard.json'), terminal: join(dir, 'leaderboard.txt') };
  const title = `Leaderboard: worst-case robust accuracy at ${by ?? '–'}`;
  writeFileAtomic(files.markdown, [`# ${title}`, '', 'Accuracy in %; "robust" is the worst case per image over every attack each report ran.', '', mdTable(header, rows), '', ...notes.map((n) => `- ${n}`), ''].join('\n'));
  writeFileAtomic(files.html, ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>', `<h1>${esc(title)}</h1>`, '<p class="muted">Accuracy in %; "robust" is the worst case per image over every attack each report ran.</p>', htmlTable(header, rows, 'main'), ...(notes.length ? [`<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`] : []), '</body>', '</html>', ''].join('\n'));
  writeJsonAtomic(files.json, { schema: 'jpegdl-robust-leaderboard/1', rankedBy: by, notes, entries: rankEntries(entries, eps).ranked });
  writeFileAtomic(files.terminal, renderLeaderboardTerminal(entries, eps) + '\n');
  return files;
}

/**
 * The summary of diagnose records (per series: zero gradients, finite-difference agreement, the
 * gradient step against random steps, the convergence curve, the unbounded check) and the findings
 * read off it in plain language. Everything here is computed from the records alone.
 */
import { median } from 'mathjs';
import { unpackBits } from '../eval/records.ts';
import { mcnemarExact, pairedBits } from '../report/paired.ts';
import { diagnoseSeriesKey, type AttackRecord, type DiagnoseRecord, type ProbeRecord } from './evaluate.ts';

/** A finite-difference error above this (median over images) means the gradient does not predict the loss over one step. */
export const FD_ERROR_LIMIT = 0.5;
/** At least this fraction of images with an exactly zero gradient is reported as shattered gradients. */
export const ZERO_GRADIENT_LIMIT = 0.05;
/** Fewer images than this (max(2, 1% of n)) moving along the convergence curve are noise of the random starts. */
const minImagesOf = (n: number) => Math.max(2, Math.ceil(0.01 * n));
/** A change along the convergence curve is called out below this paired p-value (exact McNemar). */
export const CURVE_P = 0.05;
/** The gradient step should beat every random step on at least this fraction of images. */
export const BEATS_RANDOM_LIMIT = 0.8;

/** One model x mode. Fractions are of all images; nulls where the records lack the measurement. */
export interface DiagnoseSeries {
  key: string;
  label: string;
  variant: string;
  /** JPEG mode the model ran in (null: no JPEG layer). */
  jpegMode: string | null;
  /** A BPDA mode: the gradient is a surrogate by design, so finite differences are not expected to match it. */
  bpda: boolean;
  n: number;
  clean: number | null;
  /** Images whose input gradient is exactly zero. */
  zeroGradient: number | null;
  /** Median mean |gradient| per value. */
  gradMedian: number | null;
  /** Median finite-difference error (0 agree, 1 unrelated) and the fraction of images above FD_ERROR_LIMIT. */
  fdMedian: number | null;
  fdAbove: number | null;
  /** Images where the full gradient-sign step raises the objective more than every random sign step. */
  beatsRandom: number | null;
  /** Median over images with a gradient of (objective rise along the sign at eps) / (eps · ||g||1), the first-order prediction. */
  firstOrderRatio: number | null;
  /** Mean objective per fraction of eps: along the gradient sign, mean and best of the random directions. */
  profile: { t: number; gradient: number; randomMean: number; randomMax: number }[];
  /** Accuracy after each step count of the convergence curve (attack at eps). */
  convergence: { steps: number; accuracy: number; correct: number }[];
  /** The attack name of the curve and of the unbounded check. */
  attack: string | null;
  /**
   * Paired tests on the convergence curve (same images): the last two step counts, and the lowest point
   * against the last. `broken`: right at `from`, wrong at `to`; `restored`: the reverse; p: exact McNemar.
   */
  lastStep: CurveChange | null;
  lowestVsLast: CurveChange | null;
  /**
   * The fewest steps whose accuracy is within noise of the curve's lowest point (no more than
   * max(2, 1% of n) images above it, or a paired p-value of CURVE_P or more); null without a curve.
   */
  stepsNeeded: number | null;
  /** The unbounded check: accuracy at the whole-box budget. */
  unbounded: { eps: number; steps: number; accuracy: number; correct: number } | null;
  /** The restart run at the largest step count, and how it fared against the single run there (paired). */
  restarts: { restarts: number; steps: number; accuracy: number; correct: number; change: CurveChange | null } | null;
  surfaces: ProbeRecord['surfaces'];
}

/** How the images right after `from` steps fared after `to` steps (paired, same images). */
export interface CurveChange {
  from: number;
  to: number;
  broken: number;
  restored: number;
  p: number;
}

/** A paired comparison with the reference (first baseline) at one step count of the convergence curve. */
export interface DiagnosePaired {
  series: string;
  steps: number;
  onlySeries: number;
  onlyReference: number;
  p: number;
}

/** The summary: series in first-seen order, the reference (first baseline) and the settings of the records. */
export interface DiagnoseSummary {
  series: DiagnoseSeries[];
  reference: string | null;
  paired: DiagnosePaired[];
  n: number;
  eps: number;
  epsLabel: string;
  loss: string;
  fdStep: number;
  directions: number;
}

const med = (xs: number[]): number | null => (xs.length ? Number(median(xs)) : null);

/** Summarise diagnose records (all of one setting). */
export function summarizeDiagnose(records: DiagnoseRecord[]): DiagnoseSummary {
  if (records.length === 0) throw new Error('diagnose: no records');
  const r0 = records[0];
  const n = r0.n;
  const keys = [...new Set(records.map(diagnoseSeriesKey))];
  const seedsOf = (model: string) => new Set(records.filter((r) => r.model === model).map((r) => r.modelSeed)).size;
  const bitsOf = new Map<string, Map<number, Uint8Array>>();
  // Each attack record's bits are unpacked once: a record enters several paired tests.
  const unpacked = new Map<AttackRecord, Uint8Array>();
  const bits = (r: AttackRecord) => {
    let b = unpacked.get(r);
    if (!b) unpacked.set(r, (b = unpackBits(r.correctBits, n)));
    return b;
  };
  const series = keys.map((key): DiagnoseSeries => {
    const mine = records.filter((r) => diagnoseSeriesKey(r) === key);
    const first = mine[0];
    const probe = mine.find((r): r is ProbeRecord => r.kind === 'diagnose-probe');
    const attacks = mine.filter((r): r is AttackRecord => r.kind === 'diagnose-attack');
    const curve = attacks.filter((r) => !r.unbounded && (r.restarts ?? 1) === 1).sort((a, b) => a.steps - b.steps);
    const restart = attacks.find((r) => !r.unbounded && (r.restarts ?? 1) > 1);
    bitsOf.set(key, new Map(curve.map((r) => [r.steps, bits(r)])));
    const unb = attacks.find((r) => r.unbounded);
    const change = (a: AttackRecord, b: AttackRecord): CurveChange => {
      const [x, y] = [bits(a), bits(b)];
      let [broken, restored] = [0, 0];
      for (let i = 0; i < n; i++) {
        if (x[i] && !y[i]) broken++;
        if (y[i] && !x[i]) restored++;
      }
      return { from: a.steps, to: b.steps, broken, restored, p: mcnemarExact(broken, restored) };
    };
    const lowest = curve.reduce<AttackRecord | null>((m, r) => (m === null || r.correct < m.correct ? r : m), null);
    let stats: Pick<DiagnoseSeries, 'clean' | 'zeroGradient' | 'gradMedian' | 'fdMedian' | 'fdAbove' | 'beatsRandom' | 'firstOrderRatio' | 'profile'> = {
      clean: null, zeroGradient: null, gradMedian: null, fdMedian: null, fdAbove: null, beatsRandom: null, firstOrderRatio: null, profile: [],
    };
    if (probe) {
      const last = probe.profile.length - 1;
      const full = probe.profile.indexOf(1);
      const ratios = probe.gradMean.flatMap((g, i) => (g > 0 && full >= 0 ? [(probe.alongGradient[full][i] - probe.objective[i]) / (probe.eps * g * probe.values)] : []));
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      stats = {
        clean: unpackBits(probe.correctBits, n).reduce((a, v) => a + v, 0) / n,
        zeroGradient: probe.gradMean.filter((g) => g === 0).length / n,
        gradMedian: med(probe.gradMean),
        fdMedian: med(probe.fdError),
        fdAbove: probe.fdError.filter((e) => e > FD_ERROR_LIMIT).length / n,
        beatsRandom: probe.alongGradient[last].filter((v, i) => v > probe.randomMax[last][i]).length / n,
        firstOrderRatio: med(ratios),
        profile: probe.profile.map((t, k) => ({ t, gradient: mean(probe.alongGradient[k]), randomMean: mean(probe.randomMean[k]), randomMax: mean(probe.randomMax[k]) })),
      };
    }
    return {
      key,
      label: `${first.model}${first.jpegMode ? ` [${first.jpegMode}]` : ''}${seedsOf(first.model) > 1 ? ` seed ${first.modelSeed}` : ''}`,
      variant: first.variant,
      jpegMode: first.jpegMode,
      bpda: first.jpegMode === 'bpda-identity' || first.jpegMode === 'bpda-soft',
      n,
      ...stats,
      convergence: curve.map((r) => ({ steps: r.steps, accuracy: r.accuracy, correct: r.correct })),
      lastStep: curve.length >= 2 ? change(curve[curve.length - 2], curve[curve.length - 1]) : null,
      lowestVsLast: curve.length >= 2 && lowest !== curve[curve.length - 1] ? change(lowest!, curve[curve.length - 1]) : null,
      stepsNeeded: curve.find((r) => {
        if (r === lowest) return true;
        const d = change(lowest!, r);
        return d.restored - d.broken < minImagesOf(n) || d.p >= CURVE_P;
      })?.steps ?? null,
      attack: attacks[0]?.attack ?? null,
      unbounded: unb ? { eps: unb.attackEps, steps: unb.steps, accuracy: unb.accuracy, correct: unb.correct } : null,
      restarts: restart ? (() => {
        const single = curve.find((r) => r.steps === restart.steps);
        return { restarts: restart.restarts!, steps: restart.steps, accuracy: restart.accuracy, correct: restart.correct, change: single ? change(single, restart) : null };
      })() : null,
      surfaces: probe?.surfaces ?? [],
    };
  });
  const reference = series.find((s) => s.variant === 'baseline')?.key ?? null;
  const paired: DiagnosePaired[] = [];
  if (reference) {
    const ref = bitsOf.get(reference)!;
    for (const s of series.filter((x) => x.key !== reference)) {
      for (const [steps, a] of bitsOf.get(s.key)!) {
        const b = ref.get(steps);
        if (!b) continue;
        paired.push({ series: s.label, steps, ...pairedBits(a, b) });
      }
    }
  }
  return { series, reference, paired, n, eps: r0.eps, epsLabel: r0.epsLabel, loss: r0.loss, fdStep: r0.fdStep, directions: r0.directions };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pText = (p: number) => (p < 0.001 ? '< 0.001' : p.toFixed(3));
const greyLevels = (h: number) => (Math.abs(h * 255 - Math.round(h * 255)) < 1e-6 ? `${Math.round(h * 255)}/255` : String(h));

/**
 * Plain-language findings, one per problem seen (empty when nothing looks wrong): shattered gradients,
 * gradients that do not predict the loss over one finite-difference step, gradient steps no better than
 * random ones, a convergence curve still falling at its last step count, an unbounded attack that
 * leaves images correct.
 */
export function diagnoseFindings(sum: DiagnoseSummary): string[] {
  return diagnoseFindingList(sum).map((f) => `${f.series}: ${f.text}`);
}

/** What a finding is about, for tables that name findings in a word (the leaderboard). */
export type FindingKind = 'zero-gradient' | 'fd-error' | 'no-better-than-random' | 'not-converged' | 'weaker-with-steps' | 'slow-to-converge' | 'restarts-help' | 'unbounded-fails';

/** Short names of the finding kinds. */
export const FINDING_NAMES: Record<FindingKind, string> = {
  'zero-gradient': 'zero gradient',
  'fd-error': 'gradient misses finite differences',
  'no-better-than-random': 'gradient no better than random',
  'not-converged': 'not converged',
  'weaker-with-steps': 'weaker with more steps',
  'slow-to-converge': 'needs more steps than the baseline',
  'restarts-help': 'restarts break more images',
  'unbounded-fails': 'unbounded attack fails',
};

/** The findings with the series (label) and kind each is about; `text` is the sentence after the label. */
export function diagnoseFindingList(sum: DiagnoseSummary): { series: string; kind: FindingKind; text: string }[] {
  const out: { series: string; kind: FindingKind; text: string }[] = [];
  const finding = (s: DiagnoseSeries, kind: FindingKind, text: string) => ({ series: s.label, kind, text });
  const ref = sum.series.find((s) => s.key === sum.reference);
  for (const s of sum.series) {
    if (s.zeroGradient !== null && s.zeroGradient >= ZERO_GRADIENT_LIMIT) {
      out.push(finding(s, 'zero-gradient', `the input gradient is exactly zero on ${pct(s.zeroGradient)} of the images (shattered gradients, Athalye et al. 2018). Gradient attacks cannot move from those images, so their robust accuracy says nothing; ${s.attack === 'bpda-pgd' ? 'the bpda-pgd rows of this report attack it through BPDA instead' : `attack this model through BPDA (${s.jpegMode ? '--jpeg-modes bpda-identity' : 'the bpda-pgd attack, e.g. --attack bpda-pgd'}) or with a gradient-free attack (spsa, square, sparse-rs)`}.`));
    } else if (s.fdMedian !== null && s.fdMedian > FD_ERROR_LIMIT && !s.bpda) {
      const cmp = ref && ref !== s && ref.fdMedian !== null ? ` (the baseline: ${ref.fdMedian.toFixed(2)})` : '';
      out.push(finding(s, 'fd-error', `over a step of ${greyLevels(sum.fdStep)} the loss changes in ways the gradient does not predict (median finite-difference error ${s.fdMedian.toFixed(2)}${cmp}; 0 is agreement, 1 unrelated). Attacks that follow this gradient follow a function other than the model; check them against BPDA, EOT or gradient-free attacks.`));
    }
    if (s.beatsRandom !== null && s.beatsRandom < BEATS_RANDOM_LIMIT && !(s.zeroGradient !== null && s.zeroGradient >= ZERO_GRADIENT_LIMIT)) {
      out.push(finding(s, 'no-better-than-random', `the gradient-sign step of ${sum.epsLabel} raises the loss more than every one of ${sum.directions} random sign steps on only ${pct(s.beatsRandom)} of the images; a gradient that points no better than chance is masked or noisy.`));
    }
    // A change of the curve counts when it is more than noise of the random starts: a net of at least
    // max(2, 1% of the images) and a paired test (exact McNemar) below CURVE_P.
    const minImages = minImagesOf(s.n);
    const c = s.convergence;
    const last = c[c.length - 1];
    if (s.lastStep && s.lastStep.restored - s.lastStep.broken <= -minImages && s.lastStep.p < CURVE_P) {
      const [a, b] = [c[c.length - 2], last];
      out.push(finding(s, 'not-converged', `${s.attack} at ${sum.epsLabel} still breaks ${s.lastStep.broken - s.lastStep.restored} more images going from ${a.steps} to ${b.steps} steps (${pct(a.accuracy)} → ${pct(b.accuracy)}, p = ${pText(s.lastStep.p)}); it has not converged, so its accuracy overstates robustness: run more steps${s.attack === 'apgd' ? ' or restarts' : ', restarts, or APGD'}.`));
    } else if (s.lowestVsLast && s.lowestVsLast.restored - s.lowestVsLast.broken >= minImages && s.lowestVsLast.p < CURVE_P) {
      const best = c.find((x) => x.steps === s.lowestVsLast!.from)!;
      out.push(finding(s, 'weaker-with-steps', `${s.attack} at ${sum.epsLabel} gets weaker with more steps: ${pct(best.accuracy)} at ${best.steps} step${best.steps === 1 ? '' : 's'}, ${pct(last.accuracy)} at ${last.steps} (p = ${pText(s.lowestVsLast.p)}). More, smaller steps should not lose to fewer, larger ones on a gradient that describes the model; here the small steps stall (a sign of a masked or flat gradient). Read the lowest point of the curve, not the longest run, and try ${s.attack === 'apgd' ? 'restarts' : 'APGD (its step size adapts)'} or BPDA.`));
    }
    if (ref && ref !== s && s.stepsNeeded !== null && ref.stepsNeeded !== null && s.stepsNeeded > ref.stepsNeeded) {
      const at = s.convergence.find((x) => x.steps === ref.stepsNeeded)!;
      const low = s.convergence.reduce((m, x) => (x.correct < m.correct ? x : m));
      out.push(finding(s, 'slow-to-converge', `${s.attack} at ${sum.epsLabel} needs ${s.stepsNeeded} steps to come within noise of its lowest accuracy (${pct(low.accuracy)} at ${low.steps} steps); the baseline needs ${ref.stepsNeeded}. With ${ref.stepsNeeded} step${ref.stepsNeeded === 1 ? '' : 's'} it leaves ${pct(at.accuracy)}, ${(100 * (at.accuracy - low.accuracy)).toFixed(1)} points more: a comparison at a step count that suffices for the baseline overstates this model's robustness.`));
    }
    const rc = s.restarts?.change;
    if (s.restarts && rc && rc.broken - rc.restored >= minImages && rc.p < CURVE_P) {
      out.push(finding(s, 'restarts-help', `${s.restarts.restarts} restarts of ${s.attack} at ${s.restarts.steps} steps break ${rc.broken - rc.restored} more images than one run (${pct(s.convergence.find((x) => x.steps === s.restarts!.steps)!.accuracy)} → ${pct(s.restarts.accuracy)}, p = ${pText(rc.p)}); the random start decides whether the attack finds an example, so one run overstates robustness: report the worst case over restarts.`));
    }
    if (s.unbounded && s.unbounded.correct > 0) {
      out.push(finding(s, 'unbounded-fails', `${s.attack} with an unbounded budget (eps ${s.unbounded.eps}, ${s.unbounded.steps} steps) leaves ${s.unbounded.correct} of ${s.n} images (${pct(s.unbounded.accuracy)}) correct. With the whole box any image is reachable, so a working attack reaches 0% (Carlini et al. 2019); the attack is failing on this model (masked gradients or a bug), and its bounded numbers are upper bounds at best.`));
    }
  }
  return out;
}

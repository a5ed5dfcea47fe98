/** The plain-language answer of a run: did JPEG-DL come out more robust than the baseline? */
import { CLEAN_ATTACK, type CellRecord } from '../eval/records.ts';
import { seriesKey } from '../eval/summary.ts';
import { pairedComparisons } from '../report/paired.ts';

/** One attack's comparison over the eps > 0 cells. */
export interface AttackComparison {
  attack: string;
  /** The JPEG-DL series compared ('soft' = the reference's evaluation, 'hard' = real JPEG forward). */
  jpegMode: string;
  /** Baseline attack the JPEG-DL numbers are compared with (BPDA on the baseline is the plain attack, run under the BPDA name when present). */
  baselineAttack: string;
  eps: { label: string; baseline: number; jpegdl: number }[];
  wins: number;
  losses: number;
  /** Mean (JPEG-DL - baseline) robust accuracy over eps > 0, in [-1, 1]. */
  meanDiff: number;
}

/** Verdict lines and the comparisons behind them. */
export interface Verdict {
  /** The answer for the reference's evaluation (soft layer, FGSM/PGD); the hard/BPDA answer is in the headline. */
  moreRobust: boolean;
  headline: string;
  lines: string[];
  comparisons: AttackComparison[];
  clean: { baseline: number | null; soft: number | null; hard: number | null };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} pts`;

function cell(records: CellRecord[], variant: string, mode: string | null, attack: string, eps: string): CellRecord | undefined {
  return records.find((r) => r.variant === variant && (r.jpegMode ?? null) === mode && r.attack === attack && r.threat.epsLabel === eps);
}

/** Compare JPEG-DL with the baseline attack by attack (eps > 0); ties count as neither win nor loss. */
export function computeVerdict(records: CellRecord[]): Verdict {
  const clean = {
    baseline: cell(records, 'baseline', null, CLEAN_ATTACK, '0')?.accuracy ?? null,
    soft: cell(records, 'jpeg-dl', 'soft', CLEAN_ATTACK, '0')?.accuracy ?? null,
    hard: cell(records, 'jpeg-dl', 'hard', CLEAN_ATTACK, '0')?.accuracy ?? null,
  };
  const attacks = [...new Set(records.map((r) => r.attack))].filter((a) => a !== CLEAN_ATTACK);
  const epsLabels = [...new Map(records.filter((r) => r.threat.eps > 0).map((r) => [r.threat.epsLabel, r.threat.eps])).entries()]
    .sort((a, b) => a[1] - b[1])
    .map(([l]) => l);
  const comparisons: AttackComparison[] = [];
  for (const attack of attacks) {
    const baselineAttack = attack.startsWith('bpda-') ? attack.slice(5) : attack;
    for (const mode of ['soft', 'hard']) {
      const eps: AttackComparison['eps'] = [];
      for (const e of epsLabels) {
        const j = cell(records, 'jpeg-dl', mode, attack, e);
        const own = cell(records, 'baseline', null, attack, e);
        const b = own ?? cell(records, 'baseline', null, baselineAttack, e);
        if (j && b) eps.push({ label: e, baseline: b.accuracy, jpegdl: j.accuracy });
      }
      if (!eps.length) continue;
      comparisons.push({
        attack,
        jpegMode: mode,
        baselineAttack,
        eps,
        wins: eps.filter((x) => x.jpegdl > x.baseline).length,
        losses: eps.filter((x) => x.jpegdl < x.baseline).length,
        meanDiff: eps.reduce((s, x) => s + (x.jpegdl - x.baseline), 0) / eps.length,
      });
    }
  }
  const lines: string[] = [];
  if (clean.baseline !== null) {
    lines.push(
      `Clean accuracy: baseline ${pct(clean.baseline)}, JPEG-DL ${clean.soft !== null ? `${pct(clean.soft)} (soft quantiser)` : 'n/a'}` +
        `${clean.hard !== null ? `, ${pct(clean.hard)} (hard quantiser, real JPEG)` : ''}.`,
    );
  }
  for (const c of comparisons) {
    const gradientNote =
      c.jpegMode === 'hard' && !c.attack.startsWith('bpda-')
        ? ' (gradients through hard rounding are zero, so this gradient attack is masked: not evidence of robustness)'
        : c.attack.startsWith('bpda-')
          ? ` (BPDA: hard JPEG forward, straight-through backward; compared with the baseline under ${c.baselineAttack})`
          : '';
    lines.push(
      `${c.attack} vs JPEG-DL [${c.jpegMode}]: JPEG-DL higher at ${c.wins}/${c.eps.length} eps, lower at ${c.losses}; mean ${pts(c.meanDiff)}${gradientNote}.`,
    );
  }
  // Two honest questions: the reference's evaluation (soft layer under real gradients), and the
  // real-JPEG path (hard rounding) under BPDA. Hard mode under plain gradients is masked and ignored.
  const cleanOn = (variant: string, mode: string | null) => cell(records, variant, mode, CLEAN_ATTACK, '0')?.accuracy;
  const summary = (cs: AttackComparison[]) => cs.map((c) => `${c.attack} ${pts(c.meanDiff)}`).join(', ');
  const better = (cs: AttackComparison[]) => cs.length > 0 && cs.every((c) => c.meanDiff > 0 && c.wins > c.losses);
  const soft = comparisons.filter((c) => c.jpegMode === 'soft' && !c.attack.startsWith('bpda-'));
  const hard = comparisons.filter((c) => c.jpegMode === 'hard' && c.attack.startsWith('bpda-'));
  const cb = cleanOn('baseline', null);
  const parts: string[] = [];
  if (soft.length) {
    const cs = cleanOn('jpeg-dl', 'soft');
    const cleanDiff = cs !== undefined && cb !== undefined ? `; clean ${pts(cs - cb)} on the same images` : '';
    parts.push(
      `Reference evaluation (soft JPEG layer, gradients through it): JPEG-DL ${better(soft) ? 'came out MORE robust than' : soft.some((c) => c.meanDiff > 0) ? 'did NOT come out consistently more robust than' : 'did NOT come out more robust than'} the baseline (${summary(soft)}, mean over eps > 0${cleanDiff}).`,
    );
  }
  if (hard.length) {
    const ch = cleanOn('jpeg-dl', 'hard');
    const cleanNote = ch !== undefined && cb !== undefined ? `; hard-JPEG clean accuracy ${pct(ch)} vs baseline ${pct(cb)}` : '';
    parts.push(`Real JPEG forward (hard rounding) under BPDA: JPEG-DL ${better(hard) ? 'came out MORE robust' : 'did NOT come out more robust'} (${summary(hard)}${cleanNote}).`);
  }
  const moreRobust = soft.length ? better(soft) : better(hard);
  // Sampling noise of a difference between two accuracies measured on n images (95%, p = 0.5 worst case).
  const n = records.find((r) => r.attack === CLEAN_ATTACK)?.n ?? 0;
  const noise = n > 0 ? 1.96 * Math.sqrt((2 * 0.25) / n) : 0;
  if (n > 0) {
    const small = [...soft, ...hard].filter((c) => Math.abs(c.meanDiff) < noise);
    parts.push(
      `With n = ${n} attacked images, differences smaller than about ${(100 * noise).toFixed(0)} pts are within sampling noise (95%)` +
        (small.length ? `; that includes ${small.map((c) => `${c.attack}${c.jpegMode === 'hard' ? ' [hard]' : ''}`).join(', ')}.` : '.'),
    );
  }
  // The same images for both models: the paired (McNemar) test at the largest eps says more than the noise bound.
  const base = records.find((r) => r.variant === 'baseline');
  const top = epsLabels.at(-1);
  if (base && top && soft.length) {
    const rows = pairedComparisons(records, seriesKey(base)).filter((r) => r.series === 'jpeg-dl [soft]' && r.epsLabel === top && soft.some((c) => c.attack === r.attack));
    if (rows.length) {
      const p = (v: number) => (v < 0.001 ? 'p < 0.001' : `p = ${v.toFixed(3)}`);
      parts.push(`Paired on the same images at ${top} (exact McNemar): ${rows.map((r) => `${r.attack} ${pts(r.diff)} (${r.modelOnly} vs ${r.referenceOnly} images, ${p(r.p)})`).join(', ')}.`);
    }
  }
  const headline = parts.length ? parts.join(' ') : 'No attack results to compare.';
  return { moreRobust, headline, lines, comparisons, clean };
}

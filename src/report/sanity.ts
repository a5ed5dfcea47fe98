/**
 * Evaluation checks a report makes on its own numbers, after the usual advice for evaluating
 * defences (Carlini et al. 2019, "On Evaluating Adversarial Robustness"): a bigger budget never helps
 * the defender, an attack without gradients should not beat the gradient attacks, an iterative attack
 * should not lose to one FGSM step, and one attack alone should not be read as the robust accuracy
 * when others break more images.
 */
import { CLEAN_ATTACK } from '../eval/records.ts';
import { WORST_CASE, type AggregateCell } from '../eval/summary.ts';
import { epsText, fmtPct } from './format.ts';

/** Attacks that follow the model's gradient (through any BPDA surrogate). */
const GRADIENT_ATTACKS = new Set(['fgsm', 'pgd', 'mi-fgsm', 'ni-fgsm', 'si-ni-fgsm', 'vmi-fgsm', 'vni-fgsm', 'di-fgsm', 'ti-fgsm', 'pgd-l2', 'pgd-l1', 'pgd-l0', 'apgd', 'apgd-l2', 'apgd-l1', 'fab', 'fab-l2', 'cw-l2', 'ead', 'deepfool', 'deepfool-linf', 'bpda-pgd']);
/** Attacks beyond the paper's FGSM / PGD-through-the-soft-layer that an honest evaluation includes. */
const ADAPTIVE_ATTACKS = new Set(['apgd', 'apgd-l2', 'apgd-l1', 'fab', 'fab-l2', 'cw-l2', 'ead', 'square', 'square-l2', 'simba', 'sparse-rs', 'spsa', 'hsja', 'hsja-linf', 'autoattack', 'autoattack-l2', 'autoattack-l1', 'bpda-pgd']);
/** The gradient-free attacks (Square, SimBA, Sparse-RS and SPSA on scores, HopSkipJump on labels only), each compared with the gradient attacks of its own norm. */
const GRADIENT_FREE_ATTACKS = new Set(['square', 'square-l2', 'simba', 'sparse-rs', 'spsa', 'hsja', 'hsja-linf']);
/** How a check names a gradient-free attack: the plain registry names by the attack's name, others (parameters, -l2) by their label. */
const PLAIN_NAMES: Record<string, string> = { square: 'Square', simba: 'SimBA', 'sparse-rs': 'Sparse-RS', spsa: 'SPSA', hsja: 'HopSkipJump' };
/** Iterative gradient attacks: with the same gradient as FGSM and more steps, they should never do worse than one FGSM step. */
const ITERATIVE_ATTACKS = new Set(['pgd', 'apgd', 'bpda-pgd']);
/** Record variants of randomised models (a new draw on every call). */
const RANDOMISED_VARIANTS = new Set(['random-jpeg', 'random-resize-pad', 'tv-minimisation']);
/** Square this many accuracy points below every gradient attack suggests masked gradients. */
const MASKING_POINTS = 1;
/** A single attack this many accuracy points above the worst case is called out. */
const OVERSTATE_POINTS = 5;

interface CheckInput {
  /** Series; `variant` 'random-jpeg', 'random-resize-pad' or 'tv-minimisation' marks a randomised model. */
  series: { key: string; label: string; variant?: string }[];
  attacks: string[];
  epsilons: { label: string; value: number; norm?: string }[];
  cells: AggregateCell[];
  seriesKeyOf: (c: AggregateCell) => string;
  /** Labels of transfer attacks (crafted on a surrogate model): not white-box, compared with the white-box ones. */
  transfer?: Set<string>;
  /** Labels of attacks that average over draws of a randomised model (EOT). */
  eot?: Set<string>;
}

const pct = (x: number) => `${fmtPct(x)}%`;

/** Plain-language warnings about the evaluation itself (empty when nothing looks wrong). */
export function evaluationChecks({ series, attacks, epsilons, cells, seriesKeyOf, transfer = new Set(), eot = new Set() }: CheckInput): string[] {
  const out: string[] = [];
  const attacked = attacks.filter((a) => a !== CLEAN_ATTACK && a !== WORST_CASE);
  // White-box gradient attacks by name, whatever their parameters ("pgd(steps=5)" is PGD); transfer runs are not white-box.
  const whiteBoxGradient = attacked.filter((a) => GRADIENT_ATTACKS.has(a.split('(')[0]) && !transfer.has(a));
  const byKey = new Map<string, AggregateCell>();
  // By norm too: an evaluation mixing norms has a worst case per norm, and labels may repeat across norms.
  const id = (attack: string, e: { label: string; norm?: string }) => `${attack}|${e.norm ?? 'linf'}|${e.label}`;
  for (const c of cells) byKey.set(`${seriesKeyOf(c)}|${id(c.attack, { label: c.epsLabel, norm: c.norm })}`, c);
  // An eps given without its norm stands for that label in every norm measured at it.
  const normsAt = (label: string) => [...new Set(cells.filter((c) => c.epsLabel === label).map((c) => c.norm ?? 'linf'))];
  const positive = epsilons.filter((e) => e.value > 0).flatMap((e) => (e.norm ? [e] : normsAt(e.label).map((norm) => ({ ...e, norm }))));
  const mixed = new Set(positive.map((e) => e.norm ?? 'linf')).size > 1;
  const at = (e: { label: string; norm?: string }) => epsText(e.label, e.norm ?? 'linf', mixed);
  // Per series: BPDA on the hard JPEG column says nothing about the soft column or the baseline.
  const weak = series
    .map((s) => ({ s, ran: attacked.filter((a) => positive.some((e) => byKey.has(`${s.key}|${id(a, e)}`))) }))
    .filter(({ ran }) => ran.length > 0 && !ran.some((a) => ADAPTIVE_ATTACKS.has(a.split('(')[0]) && !transfer.has(a)));
  if (weak.length > 0) {
    const names = [...new Set(weak.flatMap((w) => w.ran))];
    out.push(`${weak.map((w) => w.s.label).join(', ')}: only ${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} run. Before calling a model robust add an adaptive attack (APGD, FAB, Square, BPDA for a JPEG layer, or AutoAttack, e.g. --attack autoattack): short PGD through a quantiser can fail for reasons that are not robustness.`);
  }
  // A randomised model (Athalye, Engstrom, Ilyas, Kwok 2018): a gradient taken on one draw leads toward
  // an example that fools that draw only, so at least one attack must average over draws (EOT).
  const randomised = series.filter((s) => RANDOMISED_VARIANTS.has(s.variant ?? '') && attacked.some((a) => positive.some((e) => byKey.has(`${s.key}|${id(a, e)}`))));
  const withoutEot = randomised.filter((s) => !attacked.some((a) => eot.has(a) && positive.some((e) => byKey.has(`${s.key}|${id(a, e)}`))));
  if (withoutEot.length > 0) {
    out.push(`${withoutEot.map((s) => s.label).join(', ')}: ${withoutEot.length === 1 ? 'this model draws' : 'these models draw'} new randomness on every call, and no attack averaged its gradient over draws. One draw's gradient aims at that draw only; add Expectation over Transformation (e.g. ${withoutEot.every((s) => s.variant === 'random-resize-pad') ? '--attack pgd:eotSamples=10, apgd:eotSamples=10' : '--attack bpda-pgd:eotSamples=10'} or autoattack:version=rand) before reading robust accuracy.`);
  }
  for (const s of series) {
    const cell = (attack: string, e: { label: string; norm?: string }) => byKey.get(`${s.key}|${id(attack, e)}`);
    for (const a of attacked) {
      let prev: { c: AggregateCell; eps: string } | undefined;
      for (const e of positive) {
        const c = cell(a, e);
        if (!c) continue;
        if (prev && c.mean > prev.c.mean) {
          out.push(`${s.label}, ${a}: accuracy rises from ${pct(prev.c.mean)} at ${prev.eps} to ${pct(c.mean)} at ${at(e)}. A larger budget can only help an attack, so it is not converging (more steps or restarts) or its gradient is masked.`);
        }
        prev = { c, eps: at(e) };
      }
    }
    for (const e of positive) {
      // By base name, so "square(queries=1000)" is Square too; a transfer run is not this model's own.
      const gradientFree = attacked.filter((a) => GRADIENT_FREE_ATTACKS.has(a.split('(')[0]) && !transfer.has(a));
      for (const sq of gradientFree.map((a) => cell(a, e)).filter((c): c is AggregateCell => c !== undefined)) {
        const grads = whiteBoxGradient.map((a) => cell(a, e)).filter((c): c is AggregateCell => c !== undefined && c.norm === sq.norm);
        if (grads.length === 0) continue;
        const best = grads.reduce((m, c) => (c.mean < m.mean ? c : m));
        // At least 1 point and 2 images, so one image of sampling luck is not called masking.
        const images = Math.round((best.mean - sq.mean) * sq.n);
        if (best.mean - sq.mean >= MASKING_POINTS / 100 && images >= 2) {
          // Choosing few pixels is combinatorial: Sparse-RS beats PGD0 on undefended models too (Croce et al. 2022).
          const reading = sq.norm === 'l0'
            ? 'In L0 a search over pixels often beats gradient attacks on undefended models too, so read this as masking only where the gap is far larger than the reference model\'s; judge this model on the worst case.'
            : 'The gradients may be masked; judge this model on the worst case.';
          out.push(`${s.label} at ${at(e)}: ${PLAIN_NAMES[sq.attack] ?? sq.attack}, which uses no gradients, leaves ${images} fewer images correct (${pct(sq.mean)}) than the best gradient attack (${best.attack}, ${pct(best.mean)}). ${reading}`);
        }
      }
    }
    // A transfer attack (gradients of another model) beating every white-box gradient attack on this
    // model means this model's own gradients lead nowhere useful: the classic sign of masking.
    for (const e of positive) {
      for (const t of attacked.filter((a) => transfer.has(a))) {
        const tc = cell(t, e);
        const grads = whiteBoxGradient.map((a) => cell(a, e)).filter((c): c is AggregateCell => c !== undefined && c.norm === tc?.norm);
        if (!tc || grads.length === 0) continue;
        const best = grads.reduce((m, c) => (c.mean < m.mean ? c : m));
        const images = Math.round((best.mean - tc.mean) * tc.n);
        if (best.mean - tc.mean >= MASKING_POINTS / 100 && images >= 2) {
          out.push(`${s.label} at ${at(e)}: ${t}, crafted on another model, leaves ${images} fewer images correct (${pct(tc.mean)}) than the best white-box gradient attack (${best.attack}, ${pct(best.mean)}). This model's own gradients are likely masked; judge it on the worst case.`);
        }
      }
    }
    // An iterative attack that one FGSM step beats is not doing its job (Carlini et al.: iterative
    // attacks must beat single-step ones): a step size or step count off, or a gradient that misleads.
    for (const e of positive) {
      const f = attacked.filter((a) => a.split('(')[0] === 'fgsm' && !transfer.has(a)).map((a) => cell(a, e)).filter((c): c is AggregateCell => c !== undefined);
      if (f.length === 0) continue;
      const fg = f.reduce((m, c) => (c.mean < m.mean ? c : m));
      for (const a of attacked.filter((x) => ITERATIVE_ATTACKS.has(x.split('(')[0]) && !transfer.has(x))) {
        const c = cell(a, e);
        if (!c || c.norm !== fg.norm) continue;
        const images = Math.round((c.mean - fg.mean) * c.n);
        if (c.mean - fg.mean >= MASKING_POINTS / 100 && images >= 2) {
          out.push(`${s.label} at ${at(e)}: ${a} leaves ${images} more images correct (${pct(c.mean)}) than a single FGSM step (${pct(fg.mean)}). An iterative attack should do at least as well: it is not converging (more steps, another step size, or APGD) or the gradient it follows misleads it.`);
        }
      }
    }
    // One line per attack: its largest gap to the worst case over all attacks.
    for (const a of attacked) {
      let worst: { gap: number; eps: string; c: AggregateCell; wc: AggregateCell } | undefined;
      for (const e of positive) {
        const c = cell(a, e);
        const wc = cell(WORST_CASE, e);
        if (!c || !wc) continue;
        const gap = 100 * (c.mean - wc.mean);
        if (gap >= OVERSTATE_POINTS && (!worst || gap > worst.gap)) worst = { gap, eps: at(e), c, wc };
      }
      if (worst && a !== 'fgsm') {
        out.push(`${s.label}, ${a}: ${pct(worst.c.mean)} at ${worst.eps}, ${worst.gap.toFixed(1)} points above the worst case over all attacks (${pct(worst.wc.mean)}). Robust accuracy read from ${a} alone would overstate it.`);
      }
    }
  }
  return out;
}

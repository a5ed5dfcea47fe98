/** "Paper vs this run": the paper's numbers next to the matching numbers of a report. */
import { CLEAN_ATTACK } from '../eval/records.ts';
import { seriesKey, type AggregateCell } from '../eval/summary.ts';
import type { Report } from '../report/model.ts';
import { canonicalDataset, paperNumbersFor, PAPER_ROBUSTNESS_SETTING, type PaperNumber } from './numbers.ts';

export interface PaperRow {
  paper: PaperNumber;
  /** What the paper's number means, in words. */
  what: string;
  /** Paper value as text ("72.34", "0.67 to 1.55", "up to +15"). */
  paperText: string;
  /** This run's comparable number (same unit), or null when the run has none. */
  run: number | null;
  runText: string;
}

export interface PaperComparison {
  /** True when the run's dataset (and model, if any) match a paper setting. */
  matched: boolean;
  /** Why it matched or not, in one sentence. */
  summary: string;
  rows: PaperRow[];
}

type ReportLike = Pick<Report, 'config' | 'cells' | 'series' | 'reference'>;

function fmt(v: number, unit: PaperNumber['unit']): string {
  if (unit === 'count') return String(v);
  const s = v.toFixed(2);
  return unit === 'points' && v > 0 ? `+${s}` : s;
}

/** Paper value as text. */
export function paperText(p: PaperNumber): string {
  const core = p.value !== null ? fmt(p.value, p.unit) : p.range ? `${fmt(p.range[0], p.unit)} to ${fmt(p.range[1], p.unit)}` : 'unknown';
  const pre = p.quantity === 'robust-gain-max' ? 'up to ' : '';
  return `${pre}${core}${p.std !== undefined ? ` ± ${p.std}` : ''}`;
}

function describe(p: PaperNumber): string {
  const who = [p.dataset, p.model].filter(Boolean).join(' ');
  switch (p.quantity) {
    case 'top1': return `${who} top-1 ${p.variant ?? ''} (%)`.replace(/\s+/g, ' ');
    case 'top1-gain': return `${who} top-1 gain of JPEG-DL (points)`;
    case 'robust-gain-max': return `${who} ${p.attack?.toUpperCase()} max robust-accuracy gain, eps 1/255..4/255 (points)`;
    default: return `${who} ${p.quantity}`;
  }
}

/** Compare a report with the paper's numbers for its dataset and architecture. */
export function paperComparison(report: ReportLike): PaperComparison {
  // The paper's numbers are for standard training; an adversarially trained pair is another experiment.
  const adversarial = (report.config.train as { adversarial?: unknown } | undefined)?.adversarial
    ? 'both models were trained adversarially'
    : report.config.models.some((m) => m.training && m.training !== 'standard training')
      ? `adversarially trained models (${[...new Set(report.config.models.map((m) => m.training ?? 'training not recorded'))].join('; ')})`
      : null;
  if (adversarial) return { matched: false, summary: `No paper comparison: ${adversarial}, and the paper reports standard (non-adversarial) training only.`, rows: [] };
  const dataset = report.config.dataset ? canonicalDataset(report.config.dataset) : undefined;
  if (!dataset) return { matched: false, summary: 'The run does not name its dataset; no paper setting to compare.', rows: [] };
  const archs = [...new Set(report.config.models.map((m) => (m.arch ?? '').toLowerCase()).filter(Boolean))];
  const arch = archs.length === 1 ? archs[0] : undefined;
  const numbers = paperNumbersFor(dataset, arch).filter((p) => p.quantity !== 'extra-params' && (arch ? true : p.model === undefined));
  if (!numbers.length) {
    return { matched: false, summary: `No paper number for dataset "${(report.config.dataset ?? "").replace(/\s*\(.*$/, '')}"${arch ? ` with model ${arch}` : ''}; the paper reports CIFAR-100, fine-grained and ImageNet results (robustness on CIFAR-100 ResNet-56 only).`, rows: [] };
  }
  const base = report.series.find((s) => s.key === report.reference);
  const jpeg = report.series.find((s) => s.variant === 'jpeg-dl' && s.jpegMode === 'soft') ?? report.series.find((s) => s.variant === 'jpeg-dl');
  const cell = (key: string | undefined, attack: string, eps: string): AggregateCell | undefined =>
    key === undefined ? undefined : report.cells.find((c) => seriesKey(c) === key && c.attack === attack && c.epsLabel === eps);
  const rows: PaperRow[] = numbers.map((p) => {
    let run: number | null = null;
    let runText = 'not measured';
    if (p.quantity === 'top1') {
      const c = cell(p.variant === 'jpeg-dl' ? jpeg?.key : base?.key, CLEAN_ATTACK, '0');
      if (c) { run = 100 * c.mean; runText = run.toFixed(2); }
    } else if (p.quantity === 'top1-gain') {
      const a = cell(jpeg?.key, CLEAN_ATTACK, '0'), b = cell(base?.key, CLEAN_ATTACK, '0');
      if (a && b) { run = 100 * (a.mean - b.mean); runText = fmt(run, 'points'); }
    } else if (p.quantity === 'robust-gain-max' && p.attack) {
      // Max over the run's eps in (0, 4/255] of JPEG-DL minus baseline, as the paper's claim is a maximum.
      let best: { d: number; eps: string } | null = null;
      for (const c of report.cells) {
        // The paper's attacks are white-box: transfer cells (labelled "<attack> from <surrogate>" by attackLabels) do not count.
        if (jpeg === undefined || seriesKey(c) !== jpeg.key || c.attack.split('(')[0] !== p.attack || c.attack.includes(' from ') || !(c.eps > 0 && c.eps <= 4 / 255 + 1e-9)) continue;
        const b = cell(base?.key, c.attack, c.epsLabel);
        if (!b) continue;
        const d = 100 * (c.mean - b.mean);
        if (!best || d > best.d) best = { d, eps: c.epsLabel };
      }
      if (best) { run = best.d; runText = `${fmt(best.d, 'points')} (at ${best.eps})`; }
    }
    return { paper: p, what: describe(p), paperText: paperText(p), run, runText };
  });
  const robustNote = dataset === PAPER_ROBUSTNESS_SETTING.dataset ? ` ${PAPER_ROBUSTNESS_SETTING.perEpsNote}` : '';
  return {
    matched: true,
    summary: `Dataset ${dataset}${arch ? `, model ${arch}` : ''} matches settings in the paper.${robustNote} Check each number's status before drawing conclusions.`,
    rows,
  };
}

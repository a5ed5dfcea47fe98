/** Small text helpers shared by the renderers. */

/** Escape text for HTML/SVG element content and attribute values. */
export function esc(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Escape a Markdown table cell (pipes and newlines). */
export function mdCell(s: unknown): string {
  return String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table from a header and rows. Numeric-looking columns are right-aligned. */
export function mdTable(header: string[], rows: string[][]): string {
  const numeric = header.map((_, j) => rows.length > 0 && rows.every((r) => /^[-+–]?[\d.]+( ± [\d.]+)?$|^–$/.test(r[j] ?? '')));
  const lines = [
    `| ${header.map(mdCell).join(' | ')} |`,
    `| ${header.map((_, j) => (numeric[j] ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

/** Milliseconds as seconds with one decimal, e.g. "12.3 s". */
export function fmtSeconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * 95% Wilson score interval of a proportion k/n (fractions in [0,1]); the sampling uncertainty of an
 * accuracy measured on n images. Returns [0, 1] for n = 0.
 */
export function wilsonInterval(k: number, n: number, z = 1.959963984540054): [number, number] {
  if (!(n > 0)) return [0, 1];
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  // At k = 0 and k = n the bound is exactly 0 or 1; keep it so, not 1 - 1e-16.
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** The Wilson interval of an accuracy over all its images (seeds pooled), as "46.1-59.8" in %. */
export function fmtInterval(c: { values: number[]; n: number }): string {
  const total = c.values.length * c.n;
  const k = Math.round(c.values.reduce((a, v) => a + v * c.n, 0));
  const [lo, hi] = wilsonInterval(k, total);
  return `${(100 * lo).toFixed(1)}-${(100 * hi).toFixed(1)}`;
}

/** A fraction as percent with one decimal, or "–". */
export function fmtPct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : (100 * x).toFixed(1);
}

/** A perturbation norm on the 0-1 scale in `norm`; an L-inf one also in 1/255 units (an L2 or L1 size sums over pixels, so x/255 would mislead); L0 in pixels. */
export function fmtNorm(x: number | null | undefined, norm: string = 'linf'): string {
  if (x === null || x === undefined) return '–';
  if (norm === 'l0') return Number.isInteger(x) ? `${x} px` : `${x.toFixed(2)} px`;
  return norm === 'linf' ? `${x.toFixed(4)} (${(x * 255).toFixed(2)}/255)` : x.toFixed(4);
}

/** A norm as reports name it: "L-inf", "L2", "L1", "L0" (other strings as they are). */
export function normText(norm: string): string {
  return norm === 'linf' ? 'L-inf' : norm === 'l2' ? 'L2' : norm === 'l1' ? 'L1' : norm === 'l0' ? 'L0' : norm;
}

/** An eps label as tables show it: with its norm ("0.5 L2") when the report mixes norms, else as it is. */
export function epsText(label: string, norm: string, mixed: boolean): string {
  return mixed && label !== '0' ? `${label} ${normText(norm)}` : label;
}

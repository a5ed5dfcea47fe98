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

/** A fraction as percent with one decimal, or "–". */
export function fmtPct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : (100 * x).toFixed(1);
}

/** A perturbation norm on the 0-1 scale, also shown in 1/255 units for L-inf readability. */
export function fmtNorm(x: number | null | undefined): string {
  return x === null || x === undefined ? '–' : `${x.toFixed(4)} (${(x * 255).toFixed(2)}/255)`;
}

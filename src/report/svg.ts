/** Hand-written SVG: accuracy-vs-eps line plots and 8x8 heat maps (no scripts, no network). */
import { esc } from './format.ts';

/** Distinguishable line colours (colour-blind safe Okabe-Ito order). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export interface PlotSeries {
  label: string;
  /** y per x index, in percent (null = not measured). */
  values: (number | null)[];
  /** std per x index, in percent (null = none). */
  errors?: (number | null)[];
  dashed?: boolean;
  /** Line colour (default: by position in the palette); fixed per model so plots agree. */
  color?: string;
}

export interface LinePlot {
  title: string;
  /** x tick labels, evenly spaced (eps labels). */
  xLabels: string[];
  xTitle: string;
  yTitle: string;
  series: PlotSeries[];
  width?: number;
  height?: number;
  /** What x is, for point tooltips (default 'eps'). */
  xName?: string;
  /** Draw a dot at every point (default true; off for long per-epoch curves). */
  markers?: boolean;
  /** y axis range (default [0, 100]: percent); values outside are drawn at the edge. */
  yRange?: [number, number];
  /** Unit after a point's value in its tooltip (default '%'). */
  yUnit?: string;
}

const f = (x: number) => (Math.round(x * 10) / 10).toString();

/** Line plot with y in [0,100] percent, evenly spaced categorical x, legend and error bars. */
export function linePlotSvg(p: LinePlot): string {
  const W = p.width ?? 480, H = p.height ?? 320;
  const legendH = 18 * Math.ceil(p.series.length / 2);
  const m = { l: 56, r: 16, t: 34 + legendH, b: 48 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const nx = p.xLabels.length;
  const x = (i: number) => m.l + (nx === 1 ? pw / 2 : (i * pw) / (nx - 1));
  const [lo, hi] = p.yRange ?? [0, 100];
  const y = (v: number) => m.t + ph * (1 - (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(p.title)}">`);
  parts.push(`<title>${esc(p.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  // legend, two columns under the title
  p.series.forEach((s, i) => {
    const lx = m.l + (i % 2) * (pw / 2), ly = 34 + 18 * Math.floor(i / 2) - 4;
    const c = s.color ?? PALETTE[i % PALETTE.length];
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${c}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/><circle cx="${lx + 11}" cy="${ly}" r="3.5" fill="${c}"/>`);
    parts.push(`<text x="${lx + 28}" y="${ly + 4}" font-size="12">${esc(s.label)}</text>`);
  });
  // grid and axes
  for (let k = 0; k <= 5; k++) {
    const v = lo + (k * (hi - lo)) / 5;
    parts.push(`<line x1="${m.l}" y1="${f(y(v))}" x2="${m.l + pw}" y2="${f(y(v))}" stroke="#dddddd" stroke-width="1"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(y(v) + 4)}" text-anchor="end" font-size="11">${Number(v.toPrecision(3))}</text>`);
  }
  parts.push(`<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="#333333"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="#333333"/>`);
  p.xLabels.forEach((lab, i) => {
    parts.push(`<line x1="${f(x(i))}" y1="${m.t + ph}" x2="${f(x(i))}" y2="${m.t + ph + 4}" stroke="#333333"/>`);
    parts.push(`<text x="${f(x(i))}" y="${m.t + ph + 17}" text-anchor="middle" font-size="11">${esc(lab)}</text>`);
  });
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${esc(p.xTitle)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.yTitle)}</text>`);
  // lines, error bars, points
  p.series.forEach((s, si) => {
    const c = s.color ?? PALETTE[si % PALETTE.length];
    const pts = s.values.map((v, i) => (v === null ? null : `${f(x(i))},${f(y(v))}`)).filter((q): q is string => q !== null);
    if (pts.length > 1) parts.push(`<polyline class="series" fill="none" stroke="${c}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6 3"' : ''} points="${pts.join(' ')}"/>`);
    s.values.forEach((v, i) => {
      if (v === null || p.markers === false) return;
      const e = s.errors?.[i];
      if (e) parts.push(`<line x1="${f(x(i))}" y1="${f(y(v - e))}" x2="${f(x(i))}" y2="${f(y(v + e))}" stroke="${c}" stroke-width="1.5"/>`);
      parts.push(`<circle cx="${f(x(i))}" cy="${f(y(v))}" r="3.5" fill="${c}"><title>${esc(`${s.label}, ${p.xName ?? 'eps'} ${p.xLabels[i]}: ${v.toFixed(p.yUnit === undefined ? 1 : 2)}${p.yUnit ?? '%'}${e ? ` ± ${e.toFixed(1)}` : ''}`)}</title></circle>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Colour for t in [0,1]: light yellow (small step) to dark blue (large step), viridis-like stops. */
export function heatColor(t: number): string {
  const stops = [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const w = u - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * w));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** 8x8 heat map of a quantisation table (log colour scale over [min,max]) with the values written in. */
export function heatmapSvg(values: number[], opts: { title: string; min: number; max: number; cell?: number }): string {
  if (values.length !== 64) throw new Error(`heatmapSvg: a table needs 64 values, got ${values.length}`);
  const cs = opts.cell ?? 34;
  const m = { l: 22, t: 40 };
  const W = m.l + 8 * cs + 8, H = m.t + 8 * cs + 8;
  const lo = Math.log(Math.max(opts.min, 1e-6)), hi = Math.log(Math.max(opts.max, opts.min * (1 + 1e-9), 1e-6));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">`, `<title>${esc(opts.title)}</title>`];
  parts.push(`<text x="${m.l + 4 * cs}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(opts.title)}</text>`);
  parts.push(`<text x="${m.l + 4 * cs}" y="32" text-anchor="middle" font-size="10" fill="#555555">v (horizontal frequency) →</text>`);
  parts.push(`<text x="${m.l - 6}" y="32" text-anchor="end" font-size="10" fill="#555555">u↓</text>`);
  for (let u = 0; u < 8; u++) {
    parts.push(`<text x="${m.l - 6}" y="${m.t + u * cs + cs / 2 + 4}" text-anchor="end" font-size="10">${u}</text>`);
    for (let v = 0; v < 8; v++) {
      const q = values[8 * u + v];
      const t = hi > lo ? (Math.log(Math.max(q, 1e-6)) - lo) / (hi - lo) : 0.5;
      const fill = heatColor(t);
      const text = q < 10 ? q.toFixed(1) : Math.round(q).toString();
      parts.push(`<rect x="${m.l + v * cs}" y="${m.t + u * cs}" width="${cs}" height="${cs}" fill="${fill}" stroke="#ffffff" stroke-width="1"><title>${esc(`[${u}][${v}] = ${q}`)}</title></rect>`);
      parts.push(`<text x="${m.l + v * cs + cs / 2}" y="${m.t + u * cs + cs / 2 + 4}" text-anchor="middle" font-size="10" fill="${t > 0.45 ? '#ffffff' : '#000000'}">${text}</text>`);
    }
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Diverging colour for t in [-1, 1]: blue (negative) through white (0) to red (positive). */
export function divergingColor(t: number): string {
  const u = Math.max(-1, Math.min(1, t));
  const [r, g, b] = u < 0 ? [255 + (33 - 255) * -u, 255 + (102 - 255) * -u, 255 + (172 - 255) * -u] : [255 + (178 - 255) * u, 255 + (24 - 255) * u, 255 + (43 - 255) * u];
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

/**
 * A size x size surface (row-major, first row at the bottom) as a heat map on a diverging scale
 * symmetric about 0 (|value| up to `scale`), with axis titles and the value of each cell in its tooltip.
 */
export function surfaceSvg(values: ArrayLike<number>, size: number, opts: { title: string; xTitle: string; yTitle: string; scale: number; cell?: number; ticks?: [string, string, string] }): string {
  if (values.length !== size * size) throw new Error(`surfaceSvg: ${size}x${size} needs ${size * size} values, got ${values.length}`);
  const cs = opts.cell ?? Math.max(4, Math.floor(252 / size));
  const m = { l: 46, t: 30, b: 40 };
  const W = m.l + size * cs + 12, H = m.t + size * cs + m.b;
  const scale = opts.scale > 0 ? opts.scale : 1;
  const [t0, t1, t2] = opts.ticks ?? ['-1', '0', '1'];
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" class="surface" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">`, `<title>${esc(opts.title)}</title>`];
  parts.push(`<text x="${m.l + (size * cs) / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(opts.title)}</text>`);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const v = values[row * size + col];
      // Row 0 is the bottom of the picture (the negative end of the vertical axis).
      const yPix = m.t + (size - 1 - row) * cs;
      parts.push(`<rect x="${m.l + col * cs}" y="${yPix}" width="${cs}" height="${cs}" fill="${divergingColor(v / scale)}"><title>${esc(Number(v.toPrecision(4)))}</title></rect>`);
    }
  }
  const xb = m.t + size * cs;
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${size * cs}" height="${size * cs}" fill="none" stroke="#333333"/>`);
  [t0, t1, t2].forEach((t, i) => {
    parts.push(`<text x="${m.l + ((size * cs) * i) / 2}" y="${xb + 14}" text-anchor="middle" font-size="10">${esc(t)}</text>`);
    parts.push(`<text x="${m.l - 4}" y="${xb - ((size * cs) * i) / 2 + 4}" text-anchor="end" font-size="10">${esc(t)}</text>`);
  });
  parts.push(`<text x="${m.l + (size * cs) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${esc(opts.xTitle)}</text>`);
  parts.push(`<text transform="translate(12 ${m.t + (size * cs) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(opts.yTitle)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

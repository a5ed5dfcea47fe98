/**
 * Adversarial examples as pictures: one PNG grid (a column per image; rows: clean, then per eps the
 * adversarial image and its perturbation, amplified) and a JSON sidecar saying what each row and column
 * is, with labels, predictions and perturbation norms. Written atomically.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';

/** Images of one grid: k examples, pixels 0-1, NHWC row-major, as the attacks return them. */
export interface ExampleGrid {
  height: number;
  width: number;
  channels: number;
  /** The k clean images and their labels. */
  clean: Float32Array;
  labels: Int32Array;
  /** Index of each example in the evaluated set. */
  indices?: number[];
  /** One entry per eps: the adversarial images and the model's class on each. */
  perEps: { epsLabel: string; eps: number; images: Float32Array; predictions: Int32Array }[];
  /** The model's class on each clean image (default: taken from an eps-0 entry when there is one). */
  cleanPredictions?: Int32Array;
  /** Class names for the JSON (optional). */
  classNames?: string[];
}

/** What a grid row shows. */
export interface GridRow {
  kind: 'clean' | 'adversarial' | 'perturbation';
  epsLabel?: string;
  /** perturbation rows: grey 128 is 0, white is +scale, black is -scale (0-1 pixel units). */
  scale?: number;
}

const GAP = 2;

/** Rows of the grid in order: clean, then adversarial + perturbation for every eps > 0. */
export function gridRows(g: ExampleGrid): GridRow[] {
  const rows: GridRow[] = [{ kind: 'clean' }];
  for (const e of g.perEps) {
    if (e.eps === 0) continue;
    rows.push({ kind: 'adversarial', epsLabel: e.epsLabel });
    let scale = 0;
    for (let i = 0; i < e.images.length; i++) scale = Math.max(scale, Math.abs(e.images[i] - g.clean[i]));
    rows.push({ kind: 'perturbation', epsLabel: e.epsLabel, scale });
  }
  return rows;
}

function checkGrid(g: ExampleGrid): number {
  const pixels = g.height * g.width * g.channels;
  if (!(Number.isInteger(g.height) && g.height > 0 && Number.isInteger(g.width) && g.width > 0)) throw new Error(`examples: bad image size ${g.height}x${g.width}`);
  if (g.channels !== 1 && g.channels !== 3) throw new Error(`examples: channels must be 1 or 3, got ${g.channels}`);
  const k = g.labels.length;
  if (k === 0) throw new Error('examples: no images to draw');
  if (g.clean.length !== k * pixels) throw new Error(`examples: clean holds ${g.clean.length} values, ${k} images of ${pixels} need ${k * pixels}`);
  for (const e of g.perEps) {
    if (e.images.length !== k * pixels) throw new Error(`examples: eps ${e.epsLabel} holds ${e.images.length} values, expected ${k * pixels}`);
    if (e.predictions.length !== k) throw new Error(`examples: eps ${e.epsLabel} has ${e.predictions.length} predictions for ${k} images`);
  }
  return k;
}

/**
 * PNG bytes of a grid of images (cells[row][column], pixels 0-1, HWC, all one size); each image pixel
 * becomes a `scale` x `scale` square (default: cells of at least 64 px), with 2-pixel white gaps.
 */
export function imageGridPng(cells: Float32Array[][], shape: { height: number; width: number; channels: number }, scale?: number): Uint8Array {
  const { height: h, width: w, channels: c } = shape;
  const s = scale ?? Math.max(1, Math.ceil(64 / Math.min(h, w)));
  if (!(Number.isInteger(s) && s >= 1)) throw new Error(`examples: scale must be an integer >= 1, got ${scale}`);
  const cols = Math.max(0, ...cells.map((r) => r.length));
  if (cells.length === 0 || cols === 0) throw new Error('examples: no images to draw');
  const cellW = w * s;
  const cellH = h * s;
  const png = new PNG({ width: cols * cellW + (cols + 1) * GAP, height: cells.length * cellH + (cells.length + 1) * GAP });
  png.data.fill(255); // white background and gaps, opaque
  cells.forEach((row, r) => row.forEach((img, col) => {
    if (img.length !== h * w * c) throw new Error(`examples: image [${r}][${col}] holds ${img.length} values, ${h}x${w}x${c} needs ${h * w * c}`);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = (y * w + x) * c;
        const rgb = [0, 1, 2].map((ch) => Math.round(255 * Math.min(1, Math.max(0, img[at + (c === 1 ? 0 : ch)]))));
        for (let dy = 0; dy < s; dy++) {
          const py = GAP + r * (cellH + GAP) + y * s + dy;
          for (let dx = 0; dx < s; dx++) {
            const o = (py * png.width + GAP + col * (cellW + GAP) + x * s + dx) * 4;
            png.data[o] = rgb[0];
            png.data[o + 1] = rgb[1];
            png.data[o + 2] = rgb[2];
          }
        }
      }
    }
  }));
  return new Uint8Array(PNG.sync.write(png));
}

/** The grid as PNG bytes; each image pixel becomes a `scale` x `scale` square (default: cells of at least 64 px). */
export function exampleGridPng(g: ExampleGrid, scale?: number): Uint8Array {
  const k = checkGrid(g);
  const pixels = g.height * g.width * g.channels;
  const byEps = new Map(g.perEps.map((e) => [e.epsLabel, e]));
  const cells = gridRows(g).map((row) => Array.from({ length: k }, (_, col) => {
    const clean = g.clean.subarray(col * pixels, (col + 1) * pixels);
    if (row.kind === 'clean') return clean;
    const adv = byEps.get(row.epsLabel!)!.images.subarray(col * pixels, (col + 1) * pixels);
    if (row.kind === 'adversarial') return adv;
    // Perturbation: grey is no change, white +scale, black -scale.
    return Float32Array.from(adv, (v, i) => (row.scale! > 0 ? 0.5 + (v - clean[i]) / (2 * row.scale!) : 0.5));
  }));
  return imageGridPng(cells, g, scale);
}

/** Per example and eps: L-inf, L2 and L1 size of the perturbation (0-1 scale), L0 (changed pixels) and the predicted class. */
function describeExamples(g: ExampleGrid) {
  const pixels = g.height * g.width * g.channels;
  const clean = g.cleanPredictions ?? g.perEps.find((e) => e.eps === 0)?.predictions;
  return Array.from(g.labels, (label, c) => ({
    index: g.indices?.[c] ?? c,
    label,
    ...(g.classNames ? { labelName: g.classNames[label] ?? null } : {}),
    ...(clean ? { cleanPrediction: clean[c] } : {}),
    perEps: g.perEps.map((e) => {
      let linf = 0;
      let l2 = 0;
      let l1 = 0;
      let l0 = 0;
      let counted = false;
      for (let p = 0; p < pixels; p++) {
        const d = e.images[c * pixels + p] - g.clean[c * pixels + p];
        linf = Math.max(linf, Math.abs(d));
        l2 += d * d;
        l1 += Math.abs(d);
        // A pixel (all its channels) counts once.
        if (p % g.channels === 0) counted = false;
        if (d !== 0 && !counted) {
          l0++;
          counted = true;
        }
      }
      const pred = e.predictions[c];
      return { epsLabel: e.epsLabel, eps: e.eps, prediction: pred, ...(g.classNames ? { predictionName: g.classNames[pred] ?? null } : {}), fooled: pred !== label, linf, l2: Math.sqrt(l2), l1, l0 };
    }),
  }));
}

/** Write `<dir>/examples.png` and `<dir>/examples.json` (atomically); `meta` goes into the JSON as is. */
export function writeAdversarialExamples(dir: string, g: ExampleGrid, meta: Record<string, unknown> = {}): { png: string; json: string } {
  const png = exampleGridPng(g);
  mkdirSync(dir, { recursive: true });
  const paths = { png: join(dir, 'examples.png'), json: join(dir, 'examples.json') };
  writeFileAtomic(paths.png, png);
  writeJsonAtomic(paths.json, {
    ...meta,
    layout: 'one column per example; rows top to bottom as listed in rows (perturbation rows: grey is 0, white +scale, black -scale)',
    rows: gridRows(g),
    examples: describeExamples(g),
  });
  return paths;
}

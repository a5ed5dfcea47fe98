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

/** The grid as PNG bytes; each image pixel becomes a `scale` x `scale` square (default: cells of at least 64 px). */
export function exampleGridPng(g: ExampleGrid, scale?: number): Uint8Array {
  const k = checkGrid(g);
  const s = scale ?? Math.max(1, Math.ceil(64 / Math.min(g.height, g.width)));
  if (!(Number.isInteger(s) && s >= 1)) throw new Error(`examples: scale must be an integer >= 1, got ${scale}`);
  const rows = gridRows(g);
  const cellW = g.width * s;
  const cellH = g.height * s;
  const png = new PNG({ width: k * cellW + (k + 1) * GAP, height: rows.length * cellH + (rows.length + 1) * GAP });
  png.data.fill(255); // white background and gaps, opaque
  const pixels = g.height * g.width * g.channels;
  const byEps = new Map(g.perEps.map((e) => [e.epsLabel, e]));
  rows.forEach((row, r) => {
    const src = row.kind === 'clean' ? g.clean : byEps.get(row.epsLabel!)!.images;
    for (let c = 0; c < k; c++) {
      for (let y = 0; y < g.height; y++) {
        for (let x = 0; x < g.width; x++) {
          const rgb = [0, 1, 2].map((ch) => {
            const at = c * pixels + (y * g.width + x) * g.channels + (g.channels === 1 ? 0 : ch);
            const v = row.kind === 'perturbation' ? (row.scale! > 0 ? 0.5 + (src[at] - g.clean[at]) / (2 * row.scale!) : 0.5) : src[at];
            return Math.round(255 * Math.min(1, Math.max(0, v)));
          });
          for (let dy = 0; dy < s; dy++) {
            const py = GAP + r * (cellH + GAP) + y * s + dy;
            for (let dx = 0; dx < s; dx++) {
              const px = GAP + c * (cellW + GAP) + x * s + dx;
              const o = (py * png.width + px) * 4;
              png.data[o] = rgb[0];
              png.data[o + 1] = rgb[1];
              png.data[o + 2] = rgb[2];
            }
          }
        }
      }
    }
  });
  return new Uint8Array(PNG.sync.write(png));
}

/** Per example and eps: L-inf and L2 size of the perturbation (0-1 scale) and the predicted class. */
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
      for (let p = 0; p < pixels; p++) {
        const d = e.images[c * pixels + p] - g.clean[c * pixels + p];
        linf = Math.max(linf, Math.abs(d));
        l2 += d * d;
      }
      const pred = e.predictions[c];
      return { epsLabel: e.epsLabel, eps: e.eps, prediction: pred, ...(g.classNames ? { predictionName: g.classNames[pred] ?? null } : {}), fooled: pred !== label, linf, l2: Math.sqrt(l2) };
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

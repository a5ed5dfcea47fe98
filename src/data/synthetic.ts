/**
 * A seeded synthetic colour dataset: one shape per image (disk, square, triangle, ring, cross, bar)
 * of random colour, size, position and rotation, on a textured background (two random colour
 * gratings) with pixel noise and, sometimes, a small distracting blob. Colour carries no class
 * information, so a model has to learn shape; every image is a pure function of (seed, split, index).
 */
import { createRng, deriveSeed, type Rng } from './rng.ts';
import type { ImageDataset } from './types.ts';

/** The shape classes, in label order. */
export const SYNTHETIC_CLASSES = ['disk', 'square', 'triangle', 'ring', 'cross', 'bar'] as const;

/** Options for `makeSynthetic`. */
export interface SyntheticOptions {
  seed?: number;
  /** Number of images (default 2000). */
  size?: number;
  /** Side in pixels (default 32, at least 8). */
  imageSize?: number;
  /** 2..6 (default 6): the first k shapes. */
  numClasses?: number;
  /** Which split; train and test draw from disjoint streams (default 'train'). */
  split?: 'train' | 'test';
  /** Std-dev of the additive Gaussian pixel noise on the 0-1 scale (default 0.05). */
  noise?: number;
}

type Vec = [number, number];

// Outward unit normals of an equilateral triangle's edges.
const TRI_NORMALS = [0, 1, 2].map((k) => {
  const a = Math.PI / 2 + (2 * Math.PI * k) / 3;
  return [Math.cos(a), Math.sin(a)] as const;
});

// Signed distances in pixels (negative inside), in the shape's own rotated frame.
function sdBox(x: number, y: number, bx: number, by: number): number {
  const qx = Math.abs(x) - bx;
  const qy = Math.abs(y) - by;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0);
}

function shapeDistance(cls: number, x: number, y: number, r: number): number {
  switch (cls) {
    case 0:
      return Math.hypot(x, y) - r;
    case 1:
      return sdBox(x, y, 0.8 * r, 0.8 * r);
    case 2: {
      // Equilateral triangle as the intersection of three half-planes (inradius r/2): exact
      // near the edges, which is all the anti-aliasing needs.
      let d = -Infinity;
      for (let k = 0; k < 3; k++) d = Math.max(d, x * TRI_NORMALS[k][0] + y * TRI_NORMALS[k][1] - 0.5 * r);
      return d;
    }
    case 3:
      return Math.abs(Math.hypot(x, y) - 0.75 * r) - 0.22 * r;
    case 4:
      return Math.min(sdBox(x, y, r, 0.28 * r), sdBox(x, y, 0.28 * r, r));
    case 5:
      return sdBox(x, y, r, 0.3 * r);
    default:
      throw new Error(`synthetic: no shape ${cls}`);
  }
}

function randomColour(rng: Rng): [number, number, number] {
  return [rng.next(), rng.next(), rng.next()];
}

/** Render one image (HWC RGB in [0,1]) of class `cls` into `out` at `offset`. */
export function renderSynthetic(rng: Rng, cls: number, s: number, noise: number, out: Float32Array, offset: number): void {
  // Background: base colour plus two oriented sinusoidal gratings of random colour.
  const base = randomColour(rng).map((v) => 0.2 + 0.6 * v);
  const gratings = [0, 1].map(() => {
    const theta = rng.uniform(0, Math.PI);
    const freq = rng.uniform(1.5, 6) / s;
    return { c: Math.cos(theta) * freq * 2 * Math.PI, d: Math.sin(theta) * freq * 2 * Math.PI, phase: rng.uniform(0, 2 * Math.PI), amp: randomColour(rng).map((v) => 0.2 * (v - 0.5)) };
  });
  const bgMean = base;
  // Object colour: random, but kept at least 0.35 (Euclidean RGB) from the background mean.
  let col = randomColour(rng);
  for (let t = 0; t < 8 && Math.hypot(col[0] - bgMean[0], col[1] - bgMean[1], col[2] - bgMean[2]) < 0.35; t++) col = randomColour(rng);
  const r = rng.uniform(0.22, 0.36) * s;
  const centre: Vec = [rng.uniform(0.3 * s, 0.7 * s), rng.uniform(0.3 * s, 0.7 * s)];
  const rot = rng.uniform(0, 2 * Math.PI);
  const cr = Math.cos(rot);
  const sr = Math.sin(rot);
  const opacity = rng.uniform(0.75, 1);
  // Distractor: a small disk or square of another colour, in 40% of images.
  const hasDistractor = rng.next() < 0.4;
  const dCls = rng.int(2);
  const dCol = randomColour(rng);
  const dR = rng.uniform(0.06, 0.1) * s;
  const dCentre: Vec = [rng.uniform(0, s), rng.uniform(0, s)];
  const [b0, b1, b2] = base;
  const [ga, gb] = gratings;
  for (let yy = 0; yy < s; yy++) {
    for (let xx = 0; xx < s; xx++) {
      const px = xx + 0.5;
      const py = yy + 0.5;
      const o = offset + 3 * (yy * s + xx);
      const g0 = Math.sin(ga.c * px + ga.d * py + ga.phase);
      const g1 = Math.sin(gb.c * px + gb.d * py + gb.phase);
      let p0 = b0 + ga.amp[0] * g0 + gb.amp[0] * g1;
      let p1 = b1 + ga.amp[1] * g0 + gb.amp[1] * g1;
      let p2 = b2 + ga.amp[2] * g0 + gb.amp[2] * g1;
      if (hasDistractor) {
        const a = Math.min(1, Math.max(0, 0.5 - shapeDistance(dCls, px - dCentre[0], py - dCentre[1], dR)));
        p0 += a * (dCol[0] - p0);
        p1 += a * (dCol[1] - p1);
        p2 += a * (dCol[2] - p2);
      }
      const dx = px - centre[0];
      const dy = py - centre[1];
      // Rotate into the shape frame; 0.5 - d gives a one-pixel anti-aliased edge.
      const a = opacity * Math.min(1, Math.max(0, 0.5 - shapeDistance(cls, cr * dx + sr * dy, -sr * dx + cr * dy, r)));
      out[o] = clamp01(p0 + a * (col[0] - p0) + noise * rng.normal());
      out[o + 1] = clamp01(p1 + a * (col[1] - p1) + noise * rng.normal());
      out[o + 2] = clamp01(p2 + a * (col[2] - p2) + noise * rng.normal());
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Generate a synthetic dataset: class-balanced (label i mod k in a seeded order), reproducible from the seed. */
export function makeSynthetic(opts: SyntheticOptions = {}): ImageDataset {
  const seed = opts.seed ?? 0;
  const n = opts.size ?? 2000;
  const s = opts.imageSize ?? 32;
  const k = opts.numClasses ?? SYNTHETIC_CLASSES.length;
  const noise = opts.noise ?? 0.05;
  const split = opts.split ?? 'train';
  if (!Number.isInteger(n) || n < 1) throw new Error(`synthetic: size must be a positive integer, got ${n}`);
  if (!Number.isInteger(s) || s < 8 || s > 1024) throw new Error(`synthetic: imageSize must be an integer 8..1024, got ${s}`);
  if (!Number.isInteger(k) || k < 2 || k > SYNTHETIC_CLASSES.length) {
    throw new Error(`synthetic: numClasses must be an integer 2..${SYNTHETIC_CLASSES.length}, got ${k}`);
  }
  if (!(noise >= 0 && noise <= 1)) throw new Error(`synthetic: noise must be in [0,1], got ${noise}`);
  const splitId = split === 'train' ? 1 : 2;
  const labelRng = createRng(deriveSeed(seed, splitId, 0x6c61626c));
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % k;
  for (let i = n - 1; i > 0; i--) {
    const j = labelRng.int(i + 1);
    const t = labels[i];
    labels[i] = labels[j];
    labels[j] = t;
  }
  const per = s * s * 3;
  const images = new Float32Array(n * per);
  for (let i = 0; i < n; i++) renderSynthetic(createRng(deriveSeed(seed, splitId, i)), labels[i], s, noise, images, i * per);
  return {
    name: 'synthetic',
    images,
    labels,
    height: s,
    width: s,
    channels: 3,
    numClasses: k,
    classNames: SYNTHETIC_CLASSES.slice(0, k),
    source: `synthetic generator (seed ${seed}, ${split}, ${s}x${s}, noise ${noise})`,
  };
}

/**
 * Rotations and translations of image batches, the threat model of spatial attacks (Engstrom, Tran,
 * Tsipras, Schmidt, Madry, "Exploring the Landscape of Spatial Robustness", ICML 2019): the content is
 * rotated about the image centre, then shifted, and resampled (bilinear by default) with the uncovered
 * border filled with black. Sampling plans are built on the host and applied with one gather, so the
 * same code runs on every backend (tfjs-node has no `Transform` kernel).
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, deriveSeed } from '../data/rng.ts';

/** One rigid transform: `angle` in degrees (positive turns the content counter-clockwise as displayed), `dx` right and `dy` down in pixels. */
export interface SpatialTransform {
  angle: number;
  dx: number;
  dy: number;
}

/** What fills pixels the transformed image does not cover: 'zeros' (black, Engstrom et al.), 'edge' (nearest border pixel), 'reflect' (mirrored about the border). */
export type SpatialFill = 'zeros' | 'edge' | 'reflect';
export const SPATIAL_FILLS: readonly SpatialFill[] = ['zeros', 'edge', 'reflect'];

/** Resampling: 'bilinear' (default) or 'nearest'. */
export type SpatialInterpolation = 'bilinear' | 'nearest';
export const SPATIAL_INTERPOLATIONS: readonly SpatialInterpolation[] = ['bilinear', 'nearest'];

/** Resampling options. */
export interface ResampleOptions {
  fill?: SpatialFill;
  interpolation?: SpatialInterpolation;
}

export const IDENTITY: SpatialTransform = { angle: 0, dx: 0, dy: 0 };

/** Throw unless `t` is a transform with finite numbers (`what` names it). */
export function checkTransform(t: unknown, what: string): asserts t is SpatialTransform {
  const o = t as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') throw new Error(`${what}: expected { angle, dx, dy }, got ${String(t)}`);
  for (const k of ['angle', 'dx', 'dy'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new Error(`${what}.${k}: must be a finite number, got ${String(o[k])}`);
  }
}

/** Check fill and interpolation names; returns them with their defaults. */
export function resolveResample(o: ResampleOptions = {}, where = 'spatial'): Required<ResampleOptions> {
  const fill = o.fill ?? 'zeros';
  const interpolation = o.interpolation ?? 'bilinear';
  if (!SPATIAL_FILLS.includes(fill)) throw new Error(`${where}: fill must be one of ${SPATIAL_FILLS.join(', ')}, got ${String(fill)}`);
  if (!SPATIAL_INTERPOLATIONS.includes(interpolation)) throw new Error(`${where}: interpolation must be one of ${SPATIAL_INTERPOLATIONS.join(', ')}, got ${String(interpolation)}`);
  return { fill, interpolation };
}

/** A label such as "rot -10°, shift (+1.5, 0) px". */
export function transformLabel(t: SpatialTransform): string {
  const num = (v: number) => `${v > 0 ? '+' : ''}${Number(v.toFixed(3))}`;
  return `rot ${num(t.angle)}°, shift (${num(t.dx)}, ${num(t.dy)}) px`;
}

// Coordinates within 1e-9 of a whole pixel are that pixel, so quarter turns and integer shifts are exact.
const snap = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v - r) < 1e-9 ? r : v;
};

/** Index along an axis of n pixels for an out-of-range coordinate i; -1 means "fill with zero". */
function borderIndex(i: number, n: number, fill: SpatialFill): number {
  if (i >= 0 && i < n) return i;
  if (fill === 'zeros') return -1;
  if (fill === 'edge') return i < 0 ? 0 : n - 1;
  // Half-sample symmetric: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
  const period = 2 * n;
  let m = ((i % period) + period) % period;
  if (m >= n) m = period - 1 - m;
  return m;
}

/**
 * The sampling plan of one transform on an h x w image: for each output pixel (raster order) four
 * source pixel indices (h*w stands for a black pixel) and their weights. out(p) = in(R⁻¹(p - c - t) + c)
 * with c the image centre ((w-1)/2, (h-1)/2) and t = (dx, dy).
 */
export function samplingPlan(h: number, w: number, t: SpatialTransform, o: ResampleOptions = {}): { index: Int32Array; weight: Float32Array } {
  const { fill, interpolation } = resolveResample(o);
  const hw = h * w;
  const index = new Int32Array(4 * hw).fill(hw);
  const weight = new Float32Array(4 * hw);
  const th = (t.angle * Math.PI) / 180;
  const [cos, sin] = [Math.cos(th), Math.sin(th)];
  const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
  const at = (yy: number, xx: number) => {
    const [iy, ix] = [borderIndex(yy, h, fill), borderIndex(xx, w, fill)];
    return iy < 0 || ix < 0 ? hw : iy * w + ix;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const [u, v] = [x - cx - t.dx, y - cy - t.dy];
      // Inverse of the on-screen counter-clockwise turn (y points down).
      const sx = snap(cx + u * cos - v * sin);
      const sy = snap(cy + u * sin + v * cos);
      if (interpolation === 'nearest') {
        index[4 * p] = at(Math.round(sy), Math.round(sx));
        weight[4 * p] = 1;
        continue;
      }
      const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
      const [fx, fy] = [sx - x0, sy - y0];
      const corners: [number, number, number][] = [
        [y0, x0, (1 - fx) * (1 - fy)],
        [y0, x0 + 1, fx * (1 - fy)],
        [y0 + 1, x0, (1 - fx) * fy],
        [y0 + 1, x0 + 1, fx * fy],
      ];
      corners.forEach(([yy, xx, wt], k) => {
        // Zero-weight corners point at the black pixel, so an exact sample never reads outside the image.
        if (wt === 0) return;
        index[4 * p + k] = at(yy, xx);
        weight[4 * p + k] = wt;
      });
    }
  }
  return { index, weight };
}

/**
 * Transform each image of a batch [n,h,w,c] (pixels 0-1): one transform for all, or one per image.
 * Result in [0,1]; caller disposes.
 */
export function transformImages(images: tf.Tensor4D, transforms: SpatialTransform | SpatialTransform[], o: ResampleOptions = {}): tf.Tensor4D {
  const [n, h, w, c] = images.shape;
  const list = Array.isArray(transforms) ? transforms : [transforms];
  if (list.length !== 1 && list.length !== n) throw new Error(`transformImages: ${list.length} transforms for ${n} images (give one, or one per image)`);
  list.forEach((t, i) => checkTransform(t, `transformImages: transforms[${i}]`));
  resolveResample(o, 'transformImages');
  const hw = h * w;
  // Plans are shared between images with the same transform (the usual case: one for the whole batch).
  const plans = new Map<string, { index: Int32Array; weight: Float32Array }>();
  const planOf = (t: SpatialTransform) => {
    const key = `${t.angle}|${t.dx}|${t.dy}`;
    let plan = plans.get(key);
    if (!plan) plans.set(key, (plan = samplingPlan(h, w, t, o)));
    return plan;
  };
  const m = list.length;
  const index = new Int32Array(m * 4 * hw);
  const weight = new Float32Array(m * 4 * hw);
  list.forEach((t, i) => {
    const plan = planOf(t);
    index.set(plan.index, i * 4 * hw);
    weight.set(plan.weight, i * 4 * hw);
  });
  return tf.tidy(() => {
    const flat = tf.reshape(images, [n, hw, c]);
    const padded = tf.concat([flat, tf.zeros([n, 1, c])], 1);
    const idx = tf.tensor2d(index, [m, 4 * hw], 'int32');
    const wts = tf.tensor3d(weight, [m, 4 * hw, 1]);
    const samples = m === 1 ? tf.gather(padded, tf.reshape(idx, [4 * hw]), 1) : tf.gather(padded, idx, 1, 1);
    const mixed = tf.sum(tf.reshape(tf.mul(samples, wts), [n, hw, 4, c]), 2);
    return tf.clipByValue(tf.reshape(mixed, [n, h, w, c]), 0, 1) as tf.Tensor4D;
  });
}

/** `count` evenly spaced values from -max to max (just 0 when count is 1). */
export function symmetricSteps(max: number, count: number): number[] {
  if (count === 1) return [0];
  return Array.from({ length: count }, (_, k) => {
    const v = -max + (2 * max * k) / (count - 1);
    return Math.abs(v) < 1e-12 ? 0 : Number(v.toPrecision(12));
  });
}

/** Grid of a spatial search: its extent and resolution. */
export interface SpatialGridOptions {
  /** Largest rotation either way, degrees (default 30, Engstrom et al.'s CIFAR setting). */
  maxRotation?: number;
  /** Rotation values from -maxRotation to maxRotation (default 31: steps of 2°). */
  rotations?: number;
  /** Largest shift either way along each axis, pixels (default 3). */
  maxTranslation?: number;
  /** Shift values per axis from -maxTranslation to maxTranslation (default 5). */
  translations?: number;
}

/** Check the grid options; returns them with defaults (errors name `where` and the option). */
export function resolveGrid(o: SpatialGridOptions = {}, where = 'spatial'): Required<SpatialGridOptions> {
  const g = { maxRotation: o.maxRotation ?? 30, rotations: o.rotations ?? 31, maxTranslation: o.maxTranslation ?? 3, translations: o.translations ?? 5 };
  if (typeof g.maxRotation !== 'number' || !(g.maxRotation >= 0 && g.maxRotation <= 180)) throw new Error(`${where}: maxRotation must be a number of degrees in [0, 180], got ${String(g.maxRotation)}`);
  if (typeof g.maxTranslation !== 'number' || !(g.maxTranslation >= 0 && Number.isFinite(g.maxTranslation))) throw new Error(`${where}: maxTranslation must be a finite number of pixels >= 0, got ${String(g.maxTranslation)}`);
  for (const k of ['rotations', 'translations'] as const) {
    if (!Number.isInteger(g[k]) || g[k] < 1 || g[k] > 1001) throw new Error(`${where}: ${k} must be an integer in 1..1001, got ${String(g[k])}`);
  }
  if (g.maxRotation > 0 && g.rotations === 1) throw new Error(`${where}: rotations is 1 but maxRotation is ${g.maxRotation}; one value can only be 0 (set maxRotation 0 or rotations >= 2)`);
  if (g.maxTranslation > 0 && g.translations === 1) throw new Error(`${where}: translations is 1 but maxTranslation is ${g.maxTranslation}; one value can only be 0 (set maxTranslation 0 or translations >= 2)`);
  return g;
}

/** Values per axis a grid really has: an axis of extent 0 holds only 0, whatever its count. */
export function gridCounts(g: Required<SpatialGridOptions>): { rotations: number; translations: number; transforms: number } {
  const rotations = g.maxRotation === 0 ? 1 : g.rotations;
  const translations = g.maxTranslation === 0 ? 1 : g.translations;
  return { rotations, translations, transforms: rotations * translations * translations };
}

/**
 * Every transform of the grid (rotation outermost, then dx, then dy), the identity first when the grid
 * holds it, so an attack that stops at its first success spends one model call on clean images.
 */
export function spatialGrid(o: SpatialGridOptions = {}): SpatialTransform[] {
  const g = resolveGrid(o);
  const counts = gridCounts(g);
  const angles = symmetricSteps(g.maxRotation, counts.rotations);
  const shifts = symmetricSteps(g.maxTranslation, counts.translations);
  const grid = angles.flatMap((angle) => shifts.flatMap((dx) => shifts.map((dy) => ({ angle, dx, dy }))));
  const id = grid.findIndex((t) => t.angle === 0 && t.dx === 0 && t.dy === 0);
  return id > 0 ? [grid[id], ...grid.slice(0, id), ...grid.slice(id + 1)] : grid;
}

/**
 * Random draw `draw` for image `index`: angle and shifts uniform over the grid's ranges (continuous),
 * a function of (seed, index, draw) only, so batching and resuming never change it.
 */
export function randomTransform(seed: number, index: number, draw: number, o: SpatialGridOptions = {}): SpatialTransform {
  const g = resolveGrid(o);
  const rng = createRng(deriveSeed(seed, index, draw));
  const angle = rng.uniform(-g.maxRotation, g.maxRotation);
  const dx = rng.uniform(-g.maxTranslation, g.maxTranslation);
  const dy = rng.uniform(-g.maxTranslation, g.maxTranslation);
  return { angle, dx, dy };
}

/**
 * Input-transformation defences evaluated beside JPEG-DL: each wraps a trained, undefended
 * classifier in a preprocessing step. Specs as the command line takes them: `jpeg:<quality>`
 * (real JPEG at an IJG quality), `rjpeg:<lo>-<hi>` (JPEG at a random quality per image; add
 * `:block` for one per 8x8 block), `rrp:<lo>-<hi>` (random resize to a side in lo..hi pixels and random
 * zero padding to hi, back to the input's side; add `:bilinear` for bilinear resampling), `bits:<1-8>`
 * (colour bit depth), `median:<2-5>` (k x k median filter), `tvm:<drop>[:<weight>]` (random pixel dropout
 * and total variation minimisation, Guo et al. 2018). The randomised three take `:draws=k` last:
 * predict by the mean softmax over k draws, as such defences are deployed (Xie et al. average 30).
 */
import type * as tf from '@tensorflow/tfjs';
import type { RandomJpegUnit } from '../jpeg/random.ts';
import type { ResizeInterpolation } from '../layers/resize-pad.ts';
import { jpegDefended } from './jpeg.ts';
import { randomJpegDefended } from './random-jpeg.ts';
import { resizePadDefended } from './resize-pad.ts';
import { squeezeDefended, type Squeezer } from './squeeze.ts';
import { tvMinDefended } from './tv-min.ts';
import { TVM_DEFAULTS } from '../layers/tv-min.ts';

export { jpegDefended, type JpegDefenceOptions } from './jpeg.ts';
export { squeezeDefended, type Squeezer } from './squeeze.ts';
export { randomJpegDefended, type RandomJpegDefenceOptions } from './random-jpeg.ts';
export { resizePadDefended, type ResizePadDefenceOptions } from './resize-pad.ts';
export { tvMinDefended, type TvMinDefenceOptions } from './tv-min.ts';

/** One input defence. */
export type DefenceSpec =
  | { kind: 'jpeg'; quality: number }
  | { kind: 'rjpeg'; minQuality: number; maxQuality: number; per: RandomJpegUnit; draws?: number }
  | { kind: 'rrp'; minSize: number; maxSize: number; interpolation: ResizeInterpolation; draws?: number }
  | { kind: 'tvm'; dropRate: number; weight: number; draws?: number }
  | Squeezer;

const RANGES = { jpeg: [1, 100], bits: [1, 8], median: [2, 5] } as const;
/** Largest side rrp accepts, pixels (a sanity bound: 4x an ImageNet crop). */
const MAX_RRP_SIDE = 1024;

/** Largest drop share tvm accepts (beyond it too few values are left to rebuild from). */
const MAX_TVM_DROP = 0.95;

/** Most draws `:draws=k` accepts (each is a full forward and backward pass per image). */
const MAX_DRAWS = 1000;

/**
 * Parse `jpeg:75`, `rjpeg:50-90`, `rjpeg:50-90:block`, `rrp:28-32`, `rrp:32-36:bilinear`, `bits:5` or
 * `median:2`, a randomised one optionally ending in `:draws=k` (predict by the mean over k draws);
 * throws naming `what` (the option) and the bad part.
 */
export function parseDefenceSpec(text: string, what = '--defence'): DefenceSpec {
  const d = /^(.*?)\s*:\s*draws\s*=\s*(\S*)\s*$/.exec(text);
  if (d) {
    const k = Number(d[2]);
    if (!/^\d+$/.test(d[2]) || k < 2 || k > MAX_DRAWS) throw new Error(`${what}: draws needs an integer in 2..${MAX_DRAWS} (draws averaged per prediction), got "${d[2]}" in "${text.trim()}"`);
    const spec = parseOneDefence(d[1], what);
    if (spec.kind !== 'rjpeg' && spec.kind !== 'rrp' && spec.kind !== 'tvm') throw new Error(`${what}: "${text.trim()}": draws=k averages a randomised defence over its draws, and ${defenceName(spec)} draws nothing at random; give it to rjpeg, rrp or tvm`);
    return { ...spec, draws: k };
  }
  return parseOneDefence(text, what);
}

/** One defence spec without `:draws=k`. */
function parseOneDefence(text: string, what: string): DefenceSpec {
  const usage = 'give jpeg:<quality 1-100>, rjpeg:<lo>-<hi>[:block][:draws=k], rrp:<lo>-<hi>[:bilinear][:draws=k], tvm:<drop share>[:<weight>][:draws=k], bits:<1-8> or median:<window 2-5> (e.g. jpeg:75,rjpeg:50-90,rrp:28-32:draws=10,tvm:0.5:0.03,bits:5,median:2)';
  const t = /^\s*tvm\s*:\s*([^:\s]+)\s*(?::\s*([^:\s]+))?\s*$/.exec(text);
  if (t) {
    const drop = Number(t[1]);
    if (!/^\d*\.?\d+$/.test(t[1]) || !(drop >= 0 && drop <= MAX_TVM_DROP)) throw new Error(`${what}: tvm's drop share must be a number in 0..${MAX_TVM_DROP} (the share of values dropped before the reconstruction), got "${t[1]}"`);
    const weight = t[2] === undefined ? TVM_DEFAULTS.weight : Number(t[2]);
    if (t[2] !== undefined && (!/^\d*\.?\d+(e-?\d+)?$/i.test(t[2]) || !(weight > 0 && weight <= 10))) throw new Error(`${what}: tvm's weight must be a number in (0, 10] (total variation weight on pixels 0-1; the reference's is 0.03), got "${t[2]}"`);
    return { kind: 'tvm', dropRate: drop, weight };
  }
  if (/^\s*tvm\b/.test(text)) throw new Error(`${what}: "${text}" is not a total variation minimisation defence; give tvm:<drop share>[:<weight>] (e.g. tvm:0.5 or tvm:0.5:0.03)`);
  const p = /^\s*rrp\s*:\s*(\S+?)\s*-\s*(\S+?)\s*(?::\s*(\S+))?\s*$/.exec(text);
  if (p) {
    const [lo, hi] = [Number(p[1]), Number(p[2])];
    for (const [v, raw] of [[lo, p[1]], [hi, p[2]]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > MAX_RRP_SIDE) throw new Error(`${what}: rrp needs integer sides in 1..${MAX_RRP_SIDE} pixels, got "${raw}"`);
    }
    if (hi < lo) throw new Error(`${what}: rrp:${p[1]}-${p[2]} has its largest side below its smallest; give rrp:<lo>-<hi>`);
    if (p[3] !== undefined && p[3] !== 'nearest' && p[3] !== 'bilinear') throw new Error(`${what}: rrp's resampling must be "nearest" (default) or "bilinear", got "${p[3]}"`);
    return { kind: 'rrp', minSize: lo, maxSize: hi, interpolation: (p[3] ?? 'nearest') as ResizeInterpolation };
  }
  if (/^\s*rrp\b/.test(text)) throw new Error(`${what}: "${text}" is not a random resize-and-pad defence; give rrp:<lo>-<hi> or rrp:<lo>-<hi>:bilinear (sides in pixels, e.g. rrp:28-32)`);
  const r = /^\s*rjpeg\s*:\s*(\S+?)\s*-\s*(\S+?)\s*(?::\s*(\S+))?\s*$/.exec(text);
  if (r) {
    const [lo, hi] = [Number(r[1]), Number(r[2])];
    for (const [v, raw] of [[lo, r[1]], [hi, r[2]]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 100) throw new Error(`${what}: rjpeg needs integer qualities in 1..100, got "${raw}"`);
    }
    if (hi < lo) throw new Error(`${what}: rjpeg:${r[1]}-${r[2]} has its highest quality below its lowest; give rjpeg:<lo>-<hi>`);
    if (r[3] !== undefined && r[3] !== 'block' && r[3] !== 'image') throw new Error(`${what}: rjpeg's unit must be "image" (default) or "block", got "${r[3]}"`);
    return { kind: 'rjpeg', minQuality: lo, maxQuality: hi, per: (r[3] ?? 'image') as RandomJpegUnit };
  }
  if (/^\s*rjpeg\b/.test(text)) throw new Error(`${what}: "${text}" is not a randomised JPEG defence; give rjpeg:<lo>-<hi> or rjpeg:<lo>-<hi>:block (e.g. rjpeg:50-90)`);
  const m = /^\s*(jpeg|bits|median)\s*:\s*(\S+)\s*$/.exec(text);
  if (!m) throw new Error(`${what}: "${text}" is not a defence; ${usage}`);
  const kind = m[1] as keyof typeof RANGES;
  const v = Number(m[2]);
  const [lo, hi] = RANGES[kind];
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${what}: ${kind} needs an integer in ${lo}..${hi}, got "${m[2]}"`);
  return kind === 'jpeg' ? { kind, quality: v } : kind === 'bits' ? { kind, bits: v } : { kind, window: v };
}

/** Parse a comma-separated list of defence specs; throws on a repeated one. */
export function parseDefenceList(text: string, what = '--defence'): DefenceSpec[] {
  const specs = text.split(',').map((s) => parseDefenceSpec(s, what));
  const dup = repeatedDefence(specs);
  if (dup) throw new Error(`${what}: ${dup} is listed twice`);
  return specs;
}

/** The model name of the first defence listed twice in `specs`, if any. */
export function repeatedDefence(specs: DefenceSpec[]): string | undefined {
  const names = specs.map(defenceName);
  return names.find((n, i) => names.indexOf(n) !== i);
}

const averaged = (draws: number | undefined) => (draws !== undefined && draws > 1 ? `-avg${draws}` : '');

/** The evaluated model's name (a `:draws=k` one ends in -avg<k>): jpeg-q75, rjpeg-q50-90 (rjpeg-q50-90-block), rrp-28-32 (rrp-28-32-bilinear), tvm-0.5-0.03, bits-5, median-2x2. */
export function defenceName(spec: DefenceSpec): string {
  switch (spec.kind) {
    case 'jpeg': return `jpeg-q${spec.quality}`;
    case 'rjpeg': return `rjpeg-q${spec.minQuality}-${spec.maxQuality}${spec.per === 'block' ? '-block' : ''}${averaged(spec.draws)}`;
    case 'rrp': return `rrp-${spec.minSize}-${spec.maxSize}${spec.interpolation === 'bilinear' ? '-bilinear' : ''}${averaged(spec.draws)}`;
    case 'bits': return `bits-${spec.bits}`;
    case 'median': return `median-${spec.window}x${spec.window}`;
    case 'tvm': return `tvm-${spec.dropRate}-${spec.weight}${averaged(spec.draws)}`;
  }
}

/** The record variant: jpeg-defence for JPEG, random-jpeg for randomised JPEG, random-resize-pad for rrp, tv-minimisation for tvm, feature-squeezing for bit depth and median smoothing. */
export function defenceVariant(spec: DefenceSpec): 'jpeg-defence' | 'random-jpeg' | 'random-resize-pad' | 'tv-minimisation' | 'feature-squeezing' {
  return spec.kind === 'jpeg' ? 'jpeg-defence' : spec.kind === 'rjpeg' ? 'random-jpeg' : spec.kind === 'rrp' ? 'random-resize-pad' : spec.kind === 'tvm' ? 'tv-minimisation' : 'feature-squeezing';
}

/** Whether the defence is made of JPEG layers (JPEG, randomised JPEG), which run in the sweep's JPEG modes. */
export function usesJpegModes(spec: DefenceSpec): boolean {
  return spec.kind === 'jpeg' || spec.kind === 'rjpeg';
}

/** `model` behind the defence (a new model sharing its weights; its dispose never frees `model`). */
export function defended(model: tf.LayersModel, spec: DefenceSpec): tf.LayersModel {
  switch (spec.kind) {
    case 'jpeg': return jpegDefended(model, { quality: spec.quality });
    case 'rjpeg': return randomJpegDefended(model, { minQuality: spec.minQuality, maxQuality: spec.maxQuality, per: spec.per, draws: spec.draws });
    case 'rrp': return resizePadDefended(model, { minSize: spec.minSize, maxSize: spec.maxSize, interpolation: spec.interpolation, draws: spec.draws });
    case 'tvm': return tvMinDefended(model, { dropRate: spec.dropRate, weight: spec.weight, draws: spec.draws });
    default: return squeezeDefended(model, spec);
  }
}

/**
 * Input-transformation defences evaluated beside JPEG-DL: each wraps a trained, undefended
 * classifier in a preprocessing step. Specs as the command line takes them: `jpeg:<quality>`
 * (real JPEG at an IJG quality), `bits:<1-8>` (colour bit depth), `median:<2-5>` (k x k median filter).
 */
import type * as tf from '@tensorflow/tfjs';
import { jpegDefended } from './jpeg.ts';
import { squeezeDefended, type Squeezer } from './squeeze.ts';

export { jpegDefended, type JpegDefenceOptions } from './jpeg.ts';
export { squeezeDefended, type Squeezer } from './squeeze.ts';

/** One input defence. */
export type DefenceSpec = { kind: 'jpeg'; quality: number } | Squeezer;

const RANGES = { jpeg: [1, 100], bits: [1, 8], median: [2, 5] } as const;

/** Parse `jpeg:75`, `bits:5` or `median:2`; throws naming `what` (the option) and the bad part. */
export function parseDefenceSpec(text: string, what = '--defence'): DefenceSpec {
  const m = /^\s*(jpeg|bits|median)\s*:\s*(\S+)\s*$/.exec(text);
  if (!m) throw new Error(`${what}: "${text}" is not a defence; give jpeg:<quality 1-100>, bits:<1-8> or median:<window 2-5> (e.g. jpeg:75,bits:5,median:2)`);
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

/** The evaluated model's name: jpeg-q75, bits-5, median-2x2. */
export function defenceName(spec: DefenceSpec): string {
  return spec.kind === 'jpeg' ? `jpeg-q${spec.quality}` : spec.kind === 'bits' ? `bits-${spec.bits}` : `median-${spec.window}x${spec.window}`;
}

/** The record variant: jpeg-defence for JPEG, feature-squeezing for bit depth and median smoothing. */
export function defenceVariant(spec: DefenceSpec): 'jpeg-defence' | 'feature-squeezing' {
  return spec.kind === 'jpeg' ? 'jpeg-defence' : 'feature-squeezing';
}

/** `model` behind the defence (a new model sharing its weights; its dispose never frees `model`). */
export function defended(model: tf.LayersModel, spec: DefenceSpec): tf.LayersModel {
  return spec.kind === 'jpeg' ? jpegDefended(model, { quality: spec.quality }) : squeezeDefended(model, spec);
}

/** Perturbation budgets: parsed from "8/255"-style strings, always on the [0,1] pixel scale. */
import type { Norm } from './types.ts';

/** An epsilon with the exact text it was given as, so reports never mix scales. */
export interface Epsilon {
  /** Value on the 0-1 pixel scale. */
  value: number;
  /** Canonical label, e.g. "8/255" or "0.03". */
  label: string;
}

/**
 * Parse "8/255", "0.031", "0" into an Epsilon on the 0-1 scale; `what` names the argument in errors.
 * An L-inf budget above 1 is refused (it is almost always "8" meant as 8/255); an L2 or L1 budget may
 * exceed 1 (sizes sum over pixels: L2 3.0 on ImageNet, L1 12 on CIFAR-10 are common). An L0 budget is
 * a whole number of pixels ("10").
 */
export function parseEpsilon(text: string, what = 'eps', norm: Norm = 'linf'): Epsilon {
  const s = String(text).trim();
  if (norm === 'l0') {
    if (!/^\d+$/.test(s)) throw new Error(`${what}: "${text}" is not an L0 budget; L0 budgets count changed pixels, so give whole numbers such as 0,1,5,10`);
    const value = Number(s);
    if (!Number.isSafeInteger(value)) throw new Error(`${what}: "${text}" is too large`);
    return { value, label: String(value) };
  }
  const frac = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(s);
  let value: number;
  let label: string;
  if (frac) {
    const den = Number(frac[2]);
    if (den === 0) throw new Error(`${what}: "${text}" divides by zero`);
    value = Number(frac[1]) / den;
    label = `${Number(frac[1])}/${Number(frac[2])}`;
  } else if (/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(s)) {
    value = Number(s);
    label = String(value);
  } else {
    throw new Error(`${what}: cannot parse "${text}" as an epsilon (use a number on the 0-1 scale or a fraction like 8/255)`);
  }
  if (!Number.isFinite(value) || value < 0) throw new Error(`${what}: "${text}" must be a finite number >= 0`);
  if (value > 1 && norm === 'linf') throw new Error(`${what}: "${text}" is ${value} on the 0-1 pixel scale; did you mean ${s}/255?`);
  return { value, label };
}

/** A sample `--eps` list for attacks of a norm that is not L-inf (for error messages): sizes summed over pixels, L0 in pixels. */
export function exampleBudgets(norm: Exclude<Norm, 'linf'>): string {
  return norm === 'l0' ? '0,1,5,10' : norm === 'l1' ? '0,2,4,8' : '0,0.25,0.5,1';
}

/** Parse a comma-separated list "0,1/255,8/255" (or an array of strings) of budgets in `norm`; rejects an empty list. */
export function parseEpsilonList(text: string | string[], what = 'eps', norm: Norm = 'linf'): Epsilon[] {
  const parts = (Array.isArray(text) ? text : String(text).split(',')).map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new Error(`${what}: the epsilon list is empty`);
  return parts.map((p) => parseEpsilon(p, what, norm));
}

/** Epsilon from a plain number, labelled as n/255 when it is one (to 1e-9). */
export function epsilonFromNumber(value: number): Epsilon {
  if (!Number.isFinite(value) || value < 0) throw new Error(`eps: ${value} must be a finite number >= 0`);
  const n = value * 255;
  const r = Math.round(n);
  if (Math.abs(n - r) < 1e-6) return { value, label: r === 0 ? '0' : `${r}/255` };
  return { value, label: String(value) };
}

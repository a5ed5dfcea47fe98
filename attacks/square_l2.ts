/**
 * The L2 geometry of the Square Attack (Andriushchenko et al., ECCV 2020, Sec. 3.2): its start, its
 * window size and its proposal. An L-inf Square step sets a window to ±eps; in L2 a window cannot be
 * "at the budget" on its own, so each step moves perturbation mass: it empties a second random window
 * and puts that mass, plus whatever budget the box clip left unused, into the first window as its old
 * content (normalised) plus a new centre-weighted two-lobe pattern with a random sign per channel.
 *
 * One deliberate difference from the reference code: the mass given to the first window is counted per
 * channel (the paper's per-channel windows), so before the final rescale the total norm is exactly eps
 * and the pixels outside both windows keep their values; the reference gives each channel the whole
 * image's window mass and lets the final rescale shrink the rest.
 */
import type { Rng } from '../src/data/rng.ts';

/** Window side in pixels for fraction p of an h x w image in L2: round(sqrt(p·h·w)), at least 3, odd, at most the image side. */
export function squareSideL2(p: number, h: number, w: number): number {
  let s = Math.max(Math.round(Math.sqrt(p * h * w)), 3);
  if (s % 2 === 0) s += 1;
  return Math.min(s, h, w);
}

/**
 * Centre-weighted rows x cols pattern, unit L2 norm: at (i, j) the sum of 1/(k+1)² for k from the
 * Chebyshev distance to the centre (⌊rows/2⌋, ⌊cols/2⌋) up to max(⌊rows/2⌋, ⌊cols/2⌋), i.e. concentric
 * squares each adding 1/(k+1)². Row-major; empty when rows or cols is 0.
 */
export function centredPattern(rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  if (out.length === 0) return out;
  const [ci, cj] = [Math.floor(rows / 2), Math.floor(cols / 2)];
  const K = Math.max(ci, cj) + 1;
  // tail[r] = sum_{k=r}^{K-1} 1/(k+1)^2
  const tail = new Float64Array(K + 1);
  for (let k = K - 1; k >= 0; k--) tail[k] = tail[k + 1] + 1 / (k + 1) ** 2;
  let sq = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = tail[Math.max(Math.abs(i - ci), Math.abs(j - cj))];
      out[i * cols + j] = v;
      sq += v * v;
    }
  }
  const norm = Math.sqrt(sq);
  for (let k = 0; k < out.length; k++) out[k] /= norm;
  return out;
}

/**
 * s x s two-lobe pattern, unit L2 norm: the top ⌊s/2⌋ rows are a centred pattern, the other rows the
 * negative of one, both lobes of equal energy; transposed (lobes left and right) when `transpose`.
 */
export function twoLobePattern(s: number, transpose: boolean): Float64Array {
  const top = Math.floor(s / 2);
  const upper = centredPattern(top, s);
  const lower = centredPattern(s - top, s);
  const out = new Float64Array(s * s);
  out.set(upper, 0);
  for (let k = 0; k < lower.length; k++) out[top * s + k] = -lower[k];
  // Each non-empty lobe has unit norm; rescale the whole to unit norm.
  const norm = Math.sqrt((top > 0 ? 1 : 0) + 1);
  for (let k = 0; k < out.length; k++) out[k] /= norm;
  if (!transpose) return out;
  const t = new Float64Array(s * s);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = out[i * s + j];
  return t;
}

// Every query of every image draws one of two patterns of the current side: build each once (read-only).
const patterns = new Map<string, Float64Array>();
function cachedPattern(s: number, transpose: boolean): Float64Array {
  const key = `${s}:${transpose}`;
  let p = patterns.get(key);
  if (!p) patterns.set(key, (p = twoLobePattern(s, transpose)));
  return p;
}

/** Scale `delta` to L2 norm eps (left at zero when it is zero) and write x + delta into `adv` (the box clip is the caller's projection). */
function writeAtRadius(adv: Float32Array, x: Float32Array, delta: Float64Array, eps: number): void {
  let sq = 0;
  for (let j = 0; j < delta.length; j++) sq += delta[j] * delta[j];
  const scale = sq > 0 ? eps / Math.sqrt(sq) : 0;
  for (let j = 0; j < delta.length; j++) adv[j] = x[j] + delta[j] * scale;
}

/**
 * L2 start, written into `adv` (one image, HWC): a grid of s0 x s0 tiles (s0 = ⌊min(h,w)/5⌋, at least 1,
 * the grid centred) each holding a two-lobe pattern with a random sign per channel, scaled to norm eps.
 */
export function tilesStartL2(adv: Float32Array, x: Float32Array, h: number, w: number, c: number, eps: number, rng: Rng): void {
  const s0 = Math.max(1, Math.floor(Math.min(h, w) / 5));
  const delta = new Float64Array(h * w * c);
  for (let top = Math.max(0, Math.floor((h - 5 * s0) / 2)); top + s0 <= h; top += s0) {
    for (let left = Math.max(0, Math.floor((w - 5 * s0) / 2)); left + s0 <= w; left += s0) {
      const pattern = cachedPattern(s0, rng.next() < 0.5);
      for (let ch = 0; ch < c; ch++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        for (let i = 0; i < s0; i++) {
          for (let j = 0; j < s0; j++) delta[((top + i) * w + left + j) * c + ch] += sign * pattern[i * s0 + j];
        }
      }
    }
  }
  writeAtRadius(adv, x, delta, eps);
}

/**
 * One L2 proposal on `adv` (the current best of one image, HWC; overwritten with the candidate): two
 * random s x s windows W1, W2; per channel, W1 becomes its old content (unit norm) plus a two-lobe
 * pattern with a random sign, rescaled to norm sqrt(||delta on W1 ∪ W2||² + (eps² - ||delta||²)⁺ / c)
 * for that channel; W2 \ W1 is emptied; the whole perturbation is then rescaled to norm eps.
 */
export function proposeWindowsL2(adv: Float32Array, x: Float32Array, s: number, h: number, w: number, c: number, eps: number, rng: Rng): void {
  const d = h * w * c;
  const delta = new Float64Array(d);
  let total = 0;
  for (let j = 0; j < d; j++) {
    delta[j] = adv[j] - x[j];
    total += delta[j] * delta[j];
  }
  const [top1, left1] = [rng.int(h - s + 1), rng.int(w - s + 1)];
  const [top2, left2] = [rng.int(h - s + 1), rng.int(w - s + 1)];
  const in1 = (row: number, col: number) => row >= top1 && row < top1 + s && col >= left1 && col < left1 + s;
  const in2 = (row: number, col: number) => row >= top2 && row < top2 + s && col >= left2 && col < left2 + s;
  const inW1 = new Float64Array(c);
  const inUnion = new Float64Array(c);
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const a = in1(row, col);
      if (!a && !in2(row, col)) continue;
      for (let ch = 0; ch < c; ch++) {
        const v = delta[(row * w + col) * c + ch] ** 2;
        inUnion[ch] += v;
        if (a) inW1[ch] += v;
      }
    }
  }
  const spare = Math.max(eps * eps - total, 0) / c;
  const pattern = cachedPattern(s, rng.next() < 0.5);
  const window = new Float64Array(s * s);
  const fresh: Float64Array[] = [];
  for (let ch = 0; ch < c; ch++) {
    const sign = rng.next() < 0.5 ? -1 : 1;
    const old = Math.sqrt(inW1[ch]) + 1e-12;
    let sq = 0;
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const v = sign * pattern[i * s + j] + delta[((top1 + i) * w + left1 + j) * c + ch] / old;
        window[i * s + j] = v;
        sq += v * v;
      }
    }
    const scale = Math.sqrt(inUnion[ch] + spare) / (Math.sqrt(sq) + 1e-12);
    fresh.push(window.map((v) => v * scale));
  }
  for (let row = top2; row < top2 + s; row++) for (let col = left2; col < left2 + s; col++) for (let ch = 0; ch < c; ch++) delta[(row * w + col) * c + ch] = 0;
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) delta[((top1 + i) * w + left1 + j) * c + ch] = fresh[ch][i * s + j];
  }
  writeAtRadius(adv, x, delta, eps);
}

/**
 * Common corruptions (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common
 * Corruptions and Perturbations"; CIFAR-10-C) written from their definitions with the CIFAR severity
 * constants of the authors' make_cifar_c.py. Each works on one image (pixels 0-1, HWC row-major), is
 * seeded, and returns 8-bit values as the published datasets store them (truncated, as np.uint8 does).
 * Omitted: frost (photographs) and spatter (OpenCV edge and distance transforms); see docs/corruptions.md.
 */
import jpeg from 'jpeg-js';
import type { Sampler } from './random.ts';

/** One image: pixels in [0,1], HWC row-major. */
export interface Image {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/** A corruption at one severity (1-5) of one image, with its random stream. */
export type CorruptionFn = (img: Image, severity: number, rng: Sampler) => Float32Array;

const clip = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Severity constant `sev` (1-5) of a five-entry table. */
function at<T>(table: T[], sev: number): T {
  return table[sev - 1];
}

/** Map each value through f, then clip to [0,1]. */
function mapClip(img: Image, f: (v: number, i: number) => number): Float32Array {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clip(f(img.data[i], i));
  return out;
}

// ---------- noise ----------

const gaussianNoise: CorruptionFn = (img, sev, rng) => {
  const c = at([0.04, 0.06, 0.08, 0.09, 0.1], sev);
  return mapClip(img, (v) => v + rng.normal(0, c));
};

const shotNoise: CorruptionFn = (img, sev, rng) => {
  const c = at([500, 250, 100, 75, 50], sev);
  return mapClip(img, (v) => rng.poisson(v * c) / c);
};

/** Salt and pepper: each value is replaced with probability c, by 0 or 1 with equal odds (skimage 's&p'). */
const impulseNoise: CorruptionFn = (img, sev, rng) => {
  const c = at([0.01, 0.02, 0.03, 0.05, 0.07], sev);
  return mapClip(img, (v) => (rng.uniform() < c ? (rng.uniform() < 0.5 ? 1 : 0) : v));
};

const speckleNoise: CorruptionFn = (img, sev, rng) => {
  const c = at([0.06, 0.1, 0.12, 0.16, 0.2], sev);
  return mapClip(img, (v) => v + v * rng.normal(0, c));
};

// ---------- blur ----------

/** Index into [0, n) with 'reflect 101' borders (OpenCV's default: ... 2 1 | 0 1 2 ... n-2 | n-1 n-2 ...). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** Index into [0, n) repeating the edge value (scipy 'nearest'). */
const nearest = (i: number, n: number) => (i < 0 ? 0 : i >= n ? n - 1 : i);

/** Normalised 1-D Gaussian of standard deviation sigma on -r..r. */
export function gaussianKernel(sigma: number, r: number): Float64Array {
  const k = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/** Separable 1-D correlation along rows then columns, per channel, with the given border rule. */
export function separable(img: Image, k: Float64Array, border: (i: number, n: number) => number): Float32Array {
  const { height: h, width: w, channels: c } = img;
  const r = (k.length - 1) / 2;
  const tmp = new Float64Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let d = -r; d <= r; d++) s += k[d + r] * img.data[(y * w + border(x + d, w)) * c + ch];
        tmp[(y * w + x) * c + ch] = s;
      }
    }
  }
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let d = -r; d <= r; d++) s += k[d + r] * tmp[(border(y + d, h) * w + x) * c + ch];
        out[(y * w + x) * c + ch] = s;
      }
    }
  }
  return out;
}

/** skimage.filters.gaussian: per channel, 'nearest' borders, kernel truncated at 4 sigma. */
export function gaussianFilter(img: Image, sigma: number): Float32Array {
  return separable(img, gaussianKernel(sigma, Math.floor(4 * sigma + 0.5)), nearest);
}

const gaussianBlur: CorruptionFn = (img, sev) => {
  const out = gaussianFilter(img, at([0.4, 0.6, 0.7, 0.8, 1], sev));
  for (let i = 0; i < out.length; i++) out[i] = clip(out[i]);
  return out;
};

/**
 * The defocus kernel: an aliased disk of `radius` on a 17x17 grid (or (2r+1)^2 above radius 8), summing
 * to 1, then smoothed by a 3x3 (5x5) Gaussian of sigma `aliasBlur` with reflect-101 borders.
 */
export function diskKernel(radius: number, aliasBlur: number): { size: number; k: Float64Array } {
  const half = radius <= 8 ? 8 : Math.ceil(radius);
  const size = 2 * half + 1;
  const disk = new Float64Array(size * size);
  let s = 0;
  for (let y = -half; y <= half; y++) for (let x = -half; x <= half; x++) if (x * x + y * y <= radius * radius) s += disk[(y + half) * size + x + half] = 1;
  for (let i = 0; i < disk.length; i++) disk[i] /= s;
  const g = gaussianKernel(aliasBlur, radius <= 8 ? 1 : 2);
  const smoothed = separable({ data: Float32Array.from(disk), height: size, width: size, channels: 1 }, g, reflect101);
  return { size, k: Float64Array.from(smoothed) };
}

/** 2-D correlation of each channel with a square kernel centred on the pixel, reflect-101 borders (cv2.filter2D). */
function filter2d(img: Image, k: Float64Array, size: number): Float32Array {
  const { height: h, width: w, channels: c } = img;
  const r = (size - 1) / 2;
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let dy = -r; dy <= r; dy++) {
          const yy = reflect101(y + dy, h);
          for (let dx = -r; dx <= r; dx++) s += k[(dy + r) * size + dx + r] * img.data[(yy * w + reflect101(x + dx, w)) * c + ch];
        }
        out[(y * w + x) * c + ch] = s;
      }
    }
  }
  return out;
}

const defocusBlur: CorruptionFn = (img, sev) => {
  const [radius, alias] = at([[0.3, 0.4], [0.4, 0.5], [0.5, 0.6], [1, 0.2], [1.5, 0.1]], sev);
  const { size, k } = diskKernel(radius, alias);
  return filter2d(img, k, size).map(clip);
};

/**
 * Glass blur: Gaussian blur, stored as 8 bits, then `iterations` sweeps swapping each interior pixel with
 * a random neighbour at most `delta` away (numpy randint(-delta, delta): -delta..delta-1), blurred again.
 */
const glassBlur: CorruptionFn = (img, sev, rng) => {
  const [sigma, delta, iterations] = at([[0.05, 1, 1], [0.25, 1, 1], [0.4, 1, 1], [0.25, 1, 2], [0.4, 1, 2]], sev);
  const { height: h, width: w, channels: c } = img;
  const x = gaussianFilter(img, sigma).map((v) => Math.floor(clip(v) * 255) / 255);
  for (let it = 0; it < iterations; it++) {
    for (let yy = h - delta; yy > delta; yy--) {
      for (let xx = w - delta; xx > delta; xx--) {
        const dx = rng.int(-delta, delta);
        const dy = rng.int(-delta, delta);
        const a = (yy * w + xx) * c;
        const b = ((yy + dy) * w + xx + dx) * c;
        for (let ch = 0; ch < c; ch++) [x[a + ch], x[b + ch]] = [x[b + ch], x[a + ch]];
      }
    }
  }
  return gaussianFilter({ ...img, data: x }, sigma).map(clip);
};

/**
 * ImageMagick's MotionBlurImage (as Wand calls it): a one-sided Gaussian kernel of 2·ceil(radius)+1 taps
 * (tap i weighted exp(-i²/2σ²), normalised) laid along `angle` degrees, tap i at the pixel offset
 * (round(i·cos a), round(i·sin a)) with ImageMagick's rounding ceil(v - 0.5), edge pixels repeated
 * outside the image; the result is stored as 8 bits (rounded), as the PNG round trip of the reference.
 */
export function motionBlur(img: Image, radius: number, sigma: number, angle: number): Float32Array {
  const width = radius > 0 ? 2 * Math.ceil(radius) + 1 : 3;
  const s = Math.max(Math.abs(sigma), 1e-12);
  const k = Float64Array.from({ length: width }, (_, i) => Math.exp(-(i * i) / (2 * s * s)));
  const norm = k.reduce((a, v) => a + v, 0);
  for (let i = 0; i < width; i++) k[i] /= norm;
  const rad = (angle * Math.PI) / 180;
  const px = width * Math.sin(rad);
  const py = width * Math.cos(rad);
  const hyp = Math.hypot(px, py);
  const ox = Array.from({ length: width }, (_, i) => Math.ceil((i * py) / hyp - 0.5));
  const oy = Array.from({ length: width }, (_, i) => Math.ceil((i * px) / hyp - 0.5));
  const { height: h, width: w, channels: c } = img;
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    let v = 0;
    for (let i = 0; i < width; i++) v += k[i] * img.data[(nearest(y + oy[i], h) * w + nearest(x + ox[i], w)) * c + ch];
    // Quantum rounding at 16 bits, then 8 bits by truncation, as ImageMagick (Q16) and its PNG writer store it.
    out[(y * w + x) * c + ch] = Math.floor(Math.round(clip(v) * 65535) / 257) / 255;
  }
  return out;
}

/** Motion blur: ImageMagick's motion blur of radius, sigma at a uniform random angle in [-45, 45) degrees. */
const motionBlurCorruption: CorruptionFn = (img, sev, rng) => {
  const [radius, sigma] = at([[6, 1], [6, 1.5], [6, 2], [8, 2], [9, 2.5]], sev);
  return motionBlur(img, radius, sigma, rng.uniform() * 90 - 45);
};

/**
 * Snow: a Normal(loc, scale) layer zoomed into its centre, cut below a threshold, stored as 8 bits and
 * motion-blurred at a random angle in [-135, -45) degrees; the image is lightened towards
 * max(x, 1.5·grey + 0.5) and the flake layer added twice (as is and turned 180 degrees).
 */
const snow: CorruptionFn = (img, sev, rng) => {
  const [loc, scale, zoom, threshold, radius, sigma, blend] = at(
    [[0.1, 0.2, 1, 0.6, 8, 3, 0.95], [0.1, 0.2, 1, 0.5, 10, 4, 0.9], [0.15, 0.3, 1.75, 0.55, 10, 4, 0.9], [0.25, 0.3, 2.25, 0.6, 12, 6, 0.85], [0.3, 0.3, 1.25, 0.65, 14, 12, 0.8]],
    sev,
  );
  const { height: h, width: w, channels: c } = img;
  const field: Image = { data: Float32Array.from({ length: h * w }, () => rng.normal(loc, scale)), height: h, width: w, channels: 1 };
  const zoomed = clippedZoom(field, zoom).map((v) => (v < threshold ? 0 : Math.floor(clip(v) * 255) / 255));
  const flakes = motionBlur({ data: zoomed, height: h, width: w, channels: 1 }, radius, sigma, rng.uniform() * 90 - 135);
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x;
    // OpenCV's RGB2GRAY weights; a grey image is its own grey.
    const grey = c === 3 ? 0.299 * img.data[p * 3] + 0.587 * img.data[p * 3 + 1] + 0.114 * img.data[p * 3 + 2] : img.data[p];
    const snowAt = flakes[p] + flakes[(h - 1 - y) * w + (w - 1 - x)];
    for (let ch = 0; ch < c; ch++) {
      const v = img.data[p * c + ch];
      out[p * c + ch] = clip(blend * v + (1 - blend) * Math.max(v, grey * 1.5 + 0.5) + snowAt);
    }
  }
  return out;
};

/** Python's round(): halves to even, as scipy sizes its zoomed output. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Linear interpolation along one axis, scipy.ndimage.zoom(order=1) coordinates: output i samples input i·(n-1)/(m-1). */
function zoomAxis(n: number, m: number): { i0: Int32Array; t: Float64Array } {
  const i0 = new Int32Array(m);
  const t = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const p = m > 1 ? (i * (n - 1)) / (m - 1) : 0;
    i0[i] = Math.min(Math.floor(p), n - 2 < 0 ? 0 : n - 2);
    t[i] = n > 1 ? p - i0[i] : 0;
  }
  return { i0, t };
}

/** Zoom into the centre by `z` (>= 1) keeping the size: crop ceil(n/z), scale up bilinearly, trim the centre. */
export function clippedZoom(img: Image, z: number): Float32Array {
  const { height: h, width: w, channels: c } = img;
  const chh = Math.ceil(h / z);
  const chw = Math.ceil(w / z);
  const top = Math.floor((h - chh) / 2);
  const left = Math.floor((w - chw) / 2);
  const mh = roundHalfEven(chh * z);
  const mw = roundHalfEven(chw * z);
  const ay = zoomAxis(chh, mh);
  const ax = zoomAxis(chw, mw);
  const trimTop = Math.floor((mh - h) / 2);
  const trimLeft = Math.floor((mw - w) / 2);
  const out = new Float32Array(img.data.length);
  const px = (y: number, x: number, ch: number) => img.data[((top + Math.min(y, chh - 1)) * w + left + Math.min(x, chw - 1)) * c + ch];
  for (let y = 0; y < h; y++) {
    const oy = y + trimTop;
    const y0 = ay.i0[oy];
    const ty = ay.t[oy];
    for (let x = 0; x < w; x++) {
      const ox = x + trimLeft;
      const x0 = ax.i0[ox];
      const tx = ax.t[ox];
      for (let ch = 0; ch < c; ch++) {
        const a = px(y0, x0, ch) * (1 - tx) + px(y0, x0 + 1, ch) * tx;
        const b = px(y0 + 1, x0, ch) * (1 - tx) + px(y0 + 1, x0 + 1, ch) * tx;
        out[(y * w + x) * c + ch] = a * (1 - ty) + b * ty;
      }
    }
  }
  return out;
}

const zoomBlur: CorruptionFn = (img, sev) => {
  // np.arange(1, 1.06 / 1.11 / 1.16 / 1.21 / 1.26, 0.01) as numpy builds it (1 + k·0.01): float round-off
  // makes it 7, 12, 16, 21 and 26 factors (1.06 and 1.11 included, 1.16 not).
  const count = at([7, 12, 16, 21, 26], sev);
  const sum = Float64Array.from(img.data);
  for (let k = 0; k < count; k++) {
    const z = clippedZoom(img, 1 + k * 0.01);
    for (let i = 0; i < sum.length; i++) sum[i] += z[i];
  }
  return Float32Array.from(sum, (v) => clip(v / (count + 1)));
};

/** Index into [0, n) by half-sample symmetric reflection (scipy 'reflect': ... b a | a b ... y z | z y ...). */
export function reflectHalf(i: number, n: number): number {
  while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - 1 - i;
  return i;
}

/** Bilinear sample of channel `ch` at (y, x) with the given border rule for indices outside the image. */
export function bilinear(img: Image, y: number, x: number, ch: number, border: (i: number, n: number) => number): number {
  const { height: h, width: w, channels: c } = img;
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const ty = y - y0;
  const tx = x - x0;
  const px = (yy: number, xx: number) => img.data[(border(yy, h) * w + border(xx, w)) * c + ch];
  return (px(y0, x0) * (1 - tx) + px(y0, x0 + 1) * tx) * (1 - ty) + (px(y0 + 1, x0) * (1 - tx) + px(y0 + 1, x0 + 1) * tx) * ty;
}

/**
 * The affine map [a, b, c, d, e, f] (x' = a·x + b·y + c, y' = d·x + e·y + f) taking three points to
 * three others, as cv2.getAffineTransform (points as [x, y]).
 */
export function affineFromPoints(src: number[][], dst: number[][]): number[] {
  const [[x1, y1], [x2, y2], [x3, y3]] = src;
  const det = x1 * (y2 - y3) - y1 * (x2 - x3) + (x2 * y3 - x3 * y2);
  if (Math.abs(det) < 1e-12) throw new Error('affineFromPoints: the source points are collinear');
  // Cramer's rule for [x y 1]·[a b c]ᵀ = target, once per output coordinate.
  const solve = (t1: number, t2: number, t3: number) => [
    (t1 * (y2 - y3) - y1 * (t2 - t3) + (t2 * y3 - t3 * y2)) / det,
    (x1 * (t2 - t3) - t1 * (x2 - x3) + (x2 * t3 - x3 * t2)) / det,
    (x1 * (y2 * t3 - y3 * t2) - y1 * (x2 * t3 - x3 * t2) + t1 * (x2 * y3 - x3 * y2)) / det,
  ];
  return [...solve(dst[0][0], dst[1][0], dst[2][0]), ...solve(dst[0][1], dst[1][1], dst[2][1])];
}

/** cv2.warpAffine(src, M) with bilinear sampling and reflect-101 borders: out(p) = src(M⁻¹ p). */
export function warpAffine(img: Image, m: number[]): Float32Array {
  const [a, b, c0, d, e, f] = m;
  const det = a * e - b * d;
  // Inverse of the linear part, and the inverse translation.
  const [ia, ib, id, ie] = [e / det, -b / det, -d / det, a / det];
  const ic = -(ia * c0 + ib * f);
  const iff = -(id * c0 + ie * f);
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
    const sx = ia * x + ib * y + ic;
    const sy = id * x + ie * y + iff;
    for (let ch = 0; ch < img.channels; ch++) out[(y * img.width + x) * img.channels + ch] = bilinear(img, sy, sx, ch, reflect101);
  }
  return out;
}

/**
 * Elastic transform: a random affine warp (three points around the centre moved by up to `shift`
 * pixels), then every pixel displaced by a Gaussian-smoothed (sigma `smooth`, 'reflect', truncated at
 * 3 sigma) uniform(-1, 1) field times `alpha`, sampled bilinearly with 'reflect' borders. Constants in
 * pixels of a 32-pixel image, as the reference (IMSIZE 32).
 */
const elasticTransform: CorruptionFn = (img, sev, rng) => {
  const [alpha, smooth, shift] = at([[0, 0, 0.08], [0.05, 0.2, 0.07], [0.08, 0.06, 0.06], [0.1, 0.04, 0.05], [0.1, 0.03, 0.03]], sev).map((v) => 32 * v);
  const { height: h, width: w, channels: c } = img;
  const [cy, cx] = [Math.floor(h / 2), Math.floor(w / 2)];
  const sq = Math.floor(Math.min(h, w) / 3);
  // The reference builds the points from (rows, cols) and hands them to OpenCV as (x, y); kept as is.
  const pts1 = [[cy + sq, cx + sq], [cy + sq, cx - sq], [cy - sq, cx - sq]];
  const pts2 = pts1.map((p) => p.map((v) => v + (rng.uniform() * 2 - 1) * shift));
  const warped: Image = { ...img, data: warpAffine(img, affineFromPoints(pts1, pts2)) };
  const field = () => {
    const u = Float32Array.from({ length: h * w }, () => rng.uniform() * 2 - 1);
    if (smooth === 0) return u.map((v) => v * alpha);
    const blurred = separable({ data: u, height: h, width: w, channels: 1 }, gaussianKernel(smooth, Math.floor(3 * smooth + 0.5)), reflectHalf);
    return blurred.map((v) => v * alpha);
  };
  const dx = field();
  const dy = field();
  const out = new Float32Array(img.data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    out[(y * w + x) * c + ch] = clip(bilinear(warped, y + dy[y * w + x], x + dx[y * w + x], ch, reflectHalf));
  }
  return out;
};

// ---------- weather ----------

/**
 * Diamond-square height map on a `size` x `size` torus (size a power of two), values in [0,1]: each
 * new point is the mean of its four neighbours plus wibble·U(-wibble, wibble), wibble dividing by
 * `decay` per level, as the reference's plasma_fractal.
 */
export function plasmaFractal(size: number, decay: number, rng: Sampler): Float64Array {
  if (!(Number.isInteger(size) && size >= 2 && (size & (size - 1)) === 0)) throw new Error(`plasmaFractal: size must be a power of two >= 2, got ${size}`);
  const m = new Float64Array(size * size);
  const get = (y: number, x: number) => m[((y + size) % size) * size + ((x + size) % size)];
  let step = size;
  let wibble = 100;
  const noisy = (v: number) => v / 4 + wibble * (rng.uniform() * 2 * wibble - wibble);
  while (step >= 2) {
    const half = step / 2;
    // Squares: centre of each step-square from its four corners.
    for (let y = 0; y < size; y += step) for (let x = 0; x < size; x += step) {
      m[(y + half) * size + x + half] = noisy(get(y, x) + get(y + step, x) + get(y, x + step) + get(y + step, x + step));
    }
    // Diamonds: edge midpoints from the two corners and the two centres beside them.
    for (let y = 0; y < size; y += step) for (let x = 0; x < size; x += step) {
      m[y * size + x + half] = noisy(get(y + half, x + half) + get(y - half, x + half) + get(y, x) + get(y, x + step));
    }
    for (let y = 0; y < size; y += step) for (let x = 0; x < size; x += step) {
      m[(y + half) * size + x] = noisy(get(y + half, x + half) + get(y + half, x - half) + get(y, x) + get(y + step, x));
    }
    step = half;
    wibble /= decay;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of m) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  return m.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
}

const fog: CorruptionFn = (img, sev, rng) => {
  const [amount, decay] = at([[0.2, 3], [0.5, 3], [0.75, 2.5], [1, 2], [1.5, 1.75]], sev);
  const { height: h, width: w, channels: c } = img;
  let size = 32;
  while (size < Math.max(h, w)) size *= 2;
  const plasma = plasmaFractal(size, decay, rng);
  let max = 0;
  for (const v of img.data) max = Math.max(max, v);
  return mapClip(img, (v, i) => {
    const p = Math.floor(i / c);
    return ((v + amount * plasma[Math.floor(p / w) * size + (p % w)]) * max) / (max + amount);
  });
};

// ---------- digital ----------

/** RGB in [0,1] to HSV in [0,1] (skimage's convention: hue as a fraction of the circle). */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const v = Math.max(r, g, b);
  const d = v - Math.min(r, g, b);
  const s = v === 0 ? 0 : d / v;
  let hh = 0;
  if (d > 0) hh = v === r ? (g - b) / d : v === g ? 2 + (b - r) / d : 4 + (r - g) / d;
  hh = ((hh / 6) % 1 + 1) % 1;
  return [hh, s, v];
}

/** HSV in [0,1] back to RGB. */
export function hsvToRgb(hh: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(hh * 6);
  const f = hh * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (((i % 6) + 6) % 6) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

/** Apply f to each pixel's HSV (grey images: H = S = 0, V = the value, so only V changes). */
function mapHsv(img: Image, f: (hsv: [number, number, number]) => [number, number, number]): Float32Array {
  const out = new Float32Array(img.data.length);
  const c = img.channels;
  for (let p = 0; p < img.data.length / c; p++) {
    if (c === 1) {
      out[p] = clip(f([0, 0, img.data[p]])[2]);
      continue;
    }
    const rgb = hsvToRgb(...f(rgbToHsv(img.data[p * 3], img.data[p * 3 + 1], img.data[p * 3 + 2])));
    for (let k = 0; k < 3; k++) out[p * 3 + k] = clip(rgb[k]);
  }
  return out;
}

const brightness: CorruptionFn = (img, sev) => {
  const c = at([0.05, 0.1, 0.15, 0.2, 0.3], sev);
  return mapHsv(img, ([hh, s, v]) => [hh, s, clip(v + c)]);
};

const saturate: CorruptionFn = (img, sev) => {
  const [a, b] = at([[0.3, 0], [0.1, 0], [1.5, 0], [2, 0.1], [2.5, 0.2]], sev);
  return mapHsv(img, ([hh, s, v]) => [hh, clip(s * a + b), v]);
};

const contrast: CorruptionFn = (img, sev) => {
  const c = at([0.75, 0.5, 0.4, 0.3, 0.15], sev);
  const ch = img.channels;
  const mean = new Float64Array(ch);
  for (let i = 0; i < img.data.length; i++) mean[i % ch] += img.data[i];
  for (let k = 0; k < ch; k++) mean[k] /= img.data.length / ch;
  return mapClip(img, (v, i) => (v - mean[i % ch]) * c + mean[i % ch]);
};

/** Weights of PIL's BOX resampling from n to m samples along one axis (each output pixel's input footprint). */
function boxWeights(n: number, m: number): { start: Int32Array; w: Float64Array[] } {
  const scale = n / m;
  const fs = Math.max(scale, 1);
  const support = 0.5 * fs;
  const start = new Int32Array(m);
  const w: Float64Array[] = [];
  for (let j = 0; j < m; j++) {
    const centre = (j + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(n, Math.trunc(centre + support + 0.5));
    const k = new Float64Array(Math.max(0, hi - lo));
    let s = 0;
    for (let x = 0; x < k.length; x++) {
      const u = (x + lo - centre + 0.5) / fs;
      s += k[x] = u > -0.5 && u <= 0.5 ? 1 : 0;
    }
    for (let x = 0; x < k.length; x++) k[x] = s > 0 ? k[x] / s : 0;
    start[j] = lo;
    w.push(k);
  }
  return { start, w };
}

/** Resize with PIL's BOX filter (separable; area average when shrinking, nearest pixel when growing). */
export function boxResize(img: Image, height: number, width: number): Image {
  const c = img.channels;
  const wx = boxWeights(img.width, width);
  const wy = boxWeights(img.height, height);
  const tmp = new Float64Array(img.height * width * c);
  for (let y = 0; y < img.height; y++) for (let x = 0; x < width; x++) for (let ch = 0; ch < c; ch++) {
    let s = 0;
    wx.w[x].forEach((k, d) => (s += k * img.data[(y * img.width + wx.start[x] + d) * c + ch]));
    tmp[(y * width + x) * c + ch] = s;
  }
  const out = new Float32Array(height * width * c);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let ch = 0; ch < c; ch++) {
    let s = 0;
    wy.w[y].forEach((k, d) => (s += k * tmp[((wy.start[y] + d) * width + x) * c + ch]));
    out[(y * width + x) * c + ch] = s;
  }
  return { data: out, height, width, channels: c };
}

const pixelate: CorruptionFn = (img, sev) => {
  const c = at([0.95, 0.9, 0.85, 0.75, 0.65], sev);
  const small = boxResize(img, Math.max(1, Math.trunc(img.height * c)), Math.max(1, Math.trunc(img.width * c)));
  return boxResize(small, img.height, img.width).data.map(clip);
};

const JPEG_QUALITY = [80, 65, 58, 50, 40];

/**
 * Many images through one JPEG encode + decode: each is padded to whole 8x8 blocks by repeating its last
 * row and column (exactly what jpeg-js does at an image's edge) and tiled into one mosaic. JPEG codes
 * blocks independently (the DC difference coding is lossless), so every tile decodes exactly as its
 * image alone would, while jpeg-js's ~50 ms fixed cost per encode is paid once per mosaic.
 */
export function jpegCompressMany(imgs: Image[], quality: number): Float32Array[] {
  if (imgs.length === 0) return [];
  const { height: h, width: w, channels: c } = imgs[0];
  for (const im of imgs) if (im.height !== h || im.width !== w || im.channels !== c) throw new Error('jpegCompressMany: images must share one size');
  const th = Math.ceil(h / 8) * 8;
  const tw = Math.ceil(w / 8) * 8;
  const cols = Math.max(1, Math.min(imgs.length, Math.floor(2048 / tw)));
  const rows = Math.ceil(imgs.length / cols);
  const W = cols * tw;
  const rgba = new Uint8Array(rows * th * W * 4).fill(255);
  imgs.forEach((im, k) => {
    const oy = Math.floor(k / cols) * th;
    const ox = (k % cols) * tw;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const src = (Math.min(y, h - 1) * w + Math.min(x, w - 1)) * c;
        const dst = ((oy + y) * W + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) rgba[dst + ch] = Math.round(clip(im.data[src + (c === 1 ? 0 : ch)]) * 255);
      }
    }
  });
  const encoded = jpeg.encode({ data: rgba, width: W, height: rows * th }, quality);
  const decoded = jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: true });
  return imgs.map((_, k) => {
    const oy = Math.floor(k / cols) * th;
    const ox = (k % cols) * tw;
    const out = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = decoded.data[((oy + y) * W + ox + x) * 4 + ch] / 255;
    return out;
  });
}

/** JPEG at the severity's quality through jpeg-js (baseline, no chroma subsampling; grey as R = G = B). */
const jpegCompression: CorruptionFn = (img, sev) => jpegCompressMany([img], at(JPEG_QUALITY, sev))[0];

/** A corruption as the registry lists it. */
export interface CorruptionInfo {
  name: string;
  family: 'noise' | 'blur' | 'weather' | 'digital';
  fn: CorruptionFn;
  /** Only defined for colour images (saturation). */
  colourOnly?: boolean;
  /** Draws random numbers (the others are deterministic). */
  random: boolean;
  /** Same result as `fn` on each image, for many at once (deterministic corruptions with a fixed cost per call). */
  many?: (imgs: Image[], severity: number) => Float32Array[];
}

/** The corruptions in CIFAR-10-C's order (its 15 first, then the 4 extras), those implemented here. */
export const CORRUPTIONS: readonly CorruptionInfo[] = [
  { name: 'gaussian_noise', family: 'noise', fn: gaussianNoise, random: true },
  { name: 'shot_noise', family: 'noise', fn: shotNoise, random: true },
  { name: 'impulse_noise', family: 'noise', fn: impulseNoise, random: true },
  { name: 'defocus_blur', family: 'blur', fn: defocusBlur, random: false },
  { name: 'glass_blur', family: 'blur', fn: glassBlur, random: true },
  { name: 'motion_blur', family: 'blur', fn: motionBlurCorruption, random: true },
  { name: 'zoom_blur', family: 'blur', fn: zoomBlur, random: false },
  { name: 'snow', family: 'weather', fn: snow, random: true },
  { name: 'fog', family: 'weather', fn: fog, random: true },
  { name: 'brightness', family: 'weather', fn: brightness, random: false },
  { name: 'contrast', family: 'digital', fn: contrast, random: false },
  { name: 'elastic_transform', family: 'digital', fn: elasticTransform, random: true },
  { name: 'pixelate', family: 'digital', fn: pixelate, random: false },
  { name: 'jpeg_compression', family: 'digital', fn: jpegCompression, random: false, many: (imgs, sev) => jpegCompressMany(imgs, at(JPEG_QUALITY, sev)) },
  { name: 'speckle_noise', family: 'noise', fn: speckleNoise, random: true },
  { name: 'gaussian_blur', family: 'blur', fn: gaussianBlur, random: false },
  { name: 'saturate', family: 'digital', fn: saturate, colourOnly: true, random: false },
];

/** Names of the CIFAR-10-C corruptions not implemented, with the reason. */
export const OMITTED_CORRUPTIONS: Readonly<Record<string, string>> = {
  frost: 'needs the frost photographs shipped with the reference code',
  spatter: 'needs OpenCV edge detection and distance transforms',
};

/** The registry entry called `name`, with a clear error naming the known ones. */
export function getCorruption(name: string): CorruptionInfo {
  const c = CORRUPTIONS.find((x) => x.name === name);
  if (!c) {
    const why = OMITTED_CORRUPTIONS[name];
    throw new Error(`corruption "${name}": ${why ? `not available (${why})` : 'unknown'}; available: ${CORRUPTIONS.map((x) => x.name).join(', ')}`);
  }
  return c;
}

/** Refuse a severity outside 1-5 and a colour-only corruption on grey images. */
function checkCorruptionArgs(info: CorruptionInfo, channels: number, severity: number): void {
  if (!(Number.isInteger(severity) && severity >= 1 && severity <= 5)) throw new Error(`severity: must be an integer 1-5, got ${severity}`);
  if (info.colourOnly && channels !== 3) throw new Error(`corruption "${info.name}": defined for colour images only, these have ${channels} channel(s)`);
}

/** Corrupt one image (pixels 0-1, HWC) at severity 1-5; the result is stored as 8 bits like CIFAR-10-C. */
export function corruptImage(info: CorruptionInfo, img: Image, severity: number, rng: Sampler): Float32Array {
  checkCorruptionArgs(info, img.channels, severity);
  return toBytes(info.fn(img, severity, rng));
}

/** Stored as 8 bits: np.uint8 truncates; the tolerance keeps float32 round-off (127.99999) from dropping a level. */
function toBytes(out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(clip(out[i]) * 255 + 1e-4) / 255;
  return out;
}

/** corruptImage over many images; uses the corruption's batched form when it has one (same results). */
export function corruptImages(info: CorruptionInfo, imgs: Image[], severity: number, rngFor: (i: number) => Sampler): Float32Array[] {
  if (!info.many) return imgs.map((im, i) => corruptImage(info, im, severity, rngFor(i)));
  if (imgs.length) checkCorruptionArgs(info, imgs[0].channels, severity);
  return info.many(imgs, severity).map(toBytes);
}

// An independent float64 implementation of the JPEG-DL layer in plain TypeScript, written from
// the specification (not from src/jpeg): direct cosine sums, per-pixel colour formulas, a scalar
// soft quantiser. Used by the tests as ground truth.

export interface RefTables {
  luma: number[];
  chroma?: number[];
}

export interface RefOptions {
  mode: 'soft' | 'hard';
  alpha?: number;
  hardness?: number;
  clamp?: boolean;
}

const COS = Array.from({ length: 64 }, (_, k) => Math.cos(((2 * (k >> 3) + 1) * (k & 7) * Math.PI) / 16)); // [x][u]
const C = (u: number) => (u === 0 ? Math.SQRT1_2 : 1) / 2;

export function refQuantize(z: number, q: number, opts: RefOptions): number {
  q = Math.min(255, Math.max(1e-5, q));
  if (opts.mode === 'hard') return Math.round(z / q) * q;
  const alpha = opts.hardness !== undefined ? Math.max(1e-5, opts.hardness / (q * q)) : (opts.alpha ?? 5);
  const k0 = Math.min(123, Math.max(-127, Math.round(z / q) - 2));
  let m = -Infinity;
  const logits: number[] = [];
  for (let j = 0; j < 5; j++) {
    const l = -alpha * ((k0 + j) * q - z) ** 2;
    logits.push(l);
    m = Math.max(m, l);
  }
  let num = 0;
  let den = 0;
  logits.forEach((l, j) => {
    const w = Math.exp(l - m);
    den += w;
    num += w * (k0 + j) * q;
  });
  return num / den;
}

/** NHWC [0,1] images (flat, float64) through the JPEG-DL layer, one quantiser round per tables entry. */
export function refJpeg(img: ArrayLike<number>, shape: [number, number, number, number], rounds: RefTables[], opts: RefOptions): Float64Array {
  const [n, h, w, c] = shape;
  const hp = Math.ceil(h / 8) * 8;
  const wp = Math.ceil(w / 8) * 8;
  const out = new Float64Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    // Planes on the padded grid, zero-filled.
    const planes = Array.from({ length: c }, () => new Float64Array(hp * wp));
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        const base = ((b * h + r) * w + col) * c;
        if (c === 1) {
          planes[0][r * wp + col] = img[base] * 255 - 128;
        } else {
          const R = img[base] * 255 - 128;
          const G = img[base + 1] * 255 - 128;
          const B = img[base + 2] * 255 - 128;
          const Y = 0.299 * R + 0.587 * G + 0.114 * B;
          planes[0][r * wp + col] = Y;
          planes[1][r * wp + col] = (B - Y) / 1.772 + 0.5;
          planes[2][r * wp + col] = (R - Y) / 1.402 + 0.5;
        }
      }
    }
    const recon = planes.map((plane, k) => {
      const res = new Float64Array(hp * wp);
      for (let bi = 0; bi < hp; bi += 8) {
        for (let bj = 0; bj < wp; bj += 8) {
          const coef = new Float64Array(64);
          for (let u = 0; u < 8; u++) {
            for (let v = 0; v < 8; v++) {
              let s = 0;
              for (let x = 0; x < 8; x++) for (let y = 0; y < 8; y++) s += plane[(bi + x) * wp + bj + y] * COS[8 * x + u] * COS[8 * y + v];
              coef[8 * u + v] = C(u) * C(v) * s;
            }
          }
          for (const t of rounds) {
            const table = k === 0 ? t.luma : t.chroma!;
            for (let i = 0; i < 64; i++) coef[i] = refQuantize(coef[i], table[i], opts);
          }
          for (let x = 0; x < 8; x++) {
            for (let y = 0; y < 8; y++) {
              let s = 0;
              for (let u = 0; u < 8; u++) for (let v = 0; v < 8; v++) s += C(u) * C(v) * coef[8 * u + v] * COS[8 * x + u] * COS[8 * y + v];
              res[(bi + x) * wp + bj + y] = s;
            }
          }
        }
      }
      return res;
    });
    for (let r = 0; r < h; r++) {
      for (let col = 0; col < w; col++) {
        const p = r * wp + col;
        const base = ((b * h + r) * w + col) * c;
        const px =
          c === 1
            ? [recon[0][p]]
            : [
                recon[0][p] + 1.402 * (recon[2][p] - 0.5),
                recon[0][p] - 0.344136 * (recon[1][p] - 0.5) - 0.714136 * (recon[2][p] - 0.5),
                recon[0][p] + 1.772 * (recon[1][p] - 0.5),
              ];
        px.forEach((v, k) => {
          const o = (v + 128) / 255;
          out[base + k] = opts.clamp ? Math.min(1, Math.max(0, o)) : o;
        });
      }
    }
  }
  return out;
}

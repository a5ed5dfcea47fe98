// Hard mode with standard tables versus a real baseline JPEG codec (jpeg-js encode + decode).
//
// What is compared, honestly:
// - jpeg-js writes sampling factors 1x1 for Y, Cb and Cr (encoder.js, writeSOF0), i.e. NO chroma
//   subsampling, like the layer. But its chroma is the standard one (centred on 128), while the
//   layer keeps the JPEG-DL reference's +0.5 chroma offset, which moves the chroma bins. Chroma
//   therefore cannot match by design, so we compare luma only: grey images (R=G=B) through the
//   1-channel layer, and the luma of the 3-channel layer's output on grey images. For grey input
//   jpeg-js's integer colour transform gives Y = grey exactly and Cb = Cr = 0.
// - jpeg-js replicates edge pixels to pad to 8, the layer zero-pads (as the reference), so image
//   sizes are multiples of 8.
// Tolerance: 1.5 grey levels per pixel. jpeg-js's decoder rounds its output to 8 bits (0.5) and uses
// a fixed-point integer IDCT (about 1 level more). Blocks holding a coefficient within 2e-3 DCT
// units of a rounding tie (z = (k + 1/2) q, found in float64; float32 error on |z| <= 1024 is far
// below that) are left out: the codec rounds ties away from zero
// and works in float64, the layer rounds half to even (torch.round / tf.round, as the reference)
// in float32, so a tie can land in either bin. Grey-level inputs make exact ties happen (e.g. the
// u = 4 basis has rational weights). At least 80% of blocks must remain, so the check is not vacuous.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { jpegForward } from '../../src/jpeg/forward.ts';
import { standardTables } from '../../src/jpeg/tables.ts';

const H = 32;
const W = 40;

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32);
}

function greyImage(kind: 'noise' | 'smooth', rnd: () => number): Uint8Array {
  const g = new Uint8Array(H * W);
  const a = rnd() * 6;
  const b = rnd() * 6;
  for (let i = 0; i < H * W; i++) {
    const r = Math.floor(i / W);
    const c = i % W;
    g[i] =
      kind === 'noise'
        ? Math.floor(rnd() * 256)
        : Math.max(0, Math.min(255, Math.round(128 + 100 * Math.sin((a * r) / H + (b * c) / W) + 20 * (rnd() - 0.5))));
  }
  return g;
}

function codec(grey: Uint8Array, quality: number): Uint8Array {
  const rgba = new Uint8Array(H * W * 4);
  for (let i = 0; i < H * W; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = grey[i];
    rgba[4 * i + 3] = 255;
  }
  const dec = jpeg.decode(jpeg.encode({ data: rgba, width: W, height: H }, quality).data, { useTArray: true, formatAsRGBA: false });
  return Uint8Array.from({ length: H * W }, (_, i) => dec.data[3 * i]);
}

// Blocks (row-major block index) with a coefficient within `tol` (DCT units) of a rounding tie, in float64.
function tieBlocks(grey: Uint8Array, luma: number[], tol = 2e-3): Set<number> {
  const out = new Set<number>();
  const table = Array.from({ length: 64 }, (_, k) => Math.cos(((2 * (k >> 3) + 1) * (k & 7) * Math.PI) / 16));
  const cos = (i: number, u: number) => table[8 * i + u];
  for (let bi = 0; bi < H / 8; bi++) {
    for (let bj = 0; bj < W / 8; bj++) {
      for (let u = 0; u < 8; u++) {
        for (let v = 0; v < 8; v++) {
          let s = 0;
          for (let x = 0; x < 8; x++) for (let y = 0; y < 8; y++) s += (grey[(8 * bi + x) * W + 8 * bj + y] - 128) * cos(x, u) * cos(y, v);
          const z = (s * (u ? 1 : Math.SQRT1_2) * (v ? 1 : Math.SQRT1_2)) / 4;
          const q = luma[8 * u + v];
          const r = Math.abs(z / q);
          if (Math.abs(r - Math.floor(r) - 0.5) * q < tol) out.add(bi * (W / 8) + bj);
        }
      }
    }
  }
  return out;
}

describe('hard mode with standard tables matches jpeg-js (baseline JPEG, no subsampling), luma', () => {
  it('over random grey images and qualities 10..100, every pixel within 1.5 grey levels outside tie blocks', () => {
    const rnd = lcg(2024);
    let checkedBlocks = 0;
    let totalBlocks = 0;
    let sumAbs = 0;
    let pixels = 0;
    let worst = { d: 0, where: '' };
    for (const quality of [10, 30, 50, 75, 90, 100]) {
      const tables = [standardTables(quality)];
      for (const kind of ['noise', 'smooth'] as const) {
        const grey = greyImage(kind, rnd);
        const ref = codec(grey, quality);
        const ties = tieBlocks(grey, tables[0].luma);
        const y1 = tf.tidy(() => jpegForward(tf.tensor4d(Float32Array.from(grey, (v) => v / 255), [1, H, W, 1]), tables, { mode: 'hard', clamp: true }).dataSync());
        // Same grey image as RGB: compare the luma of the 3-channel output.
        const y3 = tf.tidy(() =>
          jpegForward(tf.tensor4d(Float32Array.from({ length: H * W * 3 }, (_, k) => grey[Math.floor(k / 3)] / 255), [1, H, W, 3]), tables, {
            mode: 'hard',
          }).dataSync(),
        );
        for (let i = 0; i < H * W; i++) {
          const block = Math.floor(Math.floor(i / W) / 8) * (W / 8) + Math.floor((i % W) / 8);
          if (ties.has(block)) continue;
          const d1 = Math.abs(y1[i] * 255 - ref[i]);
          const luma = 255 * (0.299 * y3[3 * i] + 0.587 * y3[3 * i + 1] + 0.114 * y3[3 * i + 2]);
          const d3 = Math.abs(Math.min(255, Math.max(0, luma)) - ref[i]);
          if (d1 > worst.d) worst = { d: d1, where: `q=${quality} ${kind} pixel ${i} (grey layer)` };
          if (d3 > worst.d) worst = { d: d3, where: `q=${quality} ${kind} pixel ${i} (luma of RGB layer)` };
          sumAbs += d1;
          pixels++;
        }
        totalBlocks += (H / 8) * (W / 8);
        checkedBlocks += (H / 8) * (W / 8) - ties.size;
      }
    }
    expect(worst.d, worst.where).toBeLessThanOrEqual(1.5);
    expect(checkedBlocks / totalBlocks).toBeGreaterThan(0.8);
    // On average the two agree to well under half a grey level (decoder rounding dominates).
    expect(sumAbs / pixels).toBeLessThan(0.4);
  });

  it('soft mode is not JPEG: at alpha = 5 it differs measurably from the codec at high quality (small steps)', () => {
    const grey = greyImage('noise', lcg(5));
    const ref = codec(grey, 95);
    const y = tf.tidy(() => jpegForward(tf.tensor4d(Float32Array.from(grey, (v) => v / 255), [1, H, W, 1]), [standardTables(95)], { mode: 'soft', alpha: 5, clamp: true }).dataSync());
    let mean = 0;
    for (let i = 0; i < H * W; i++) mean += Math.abs(y[i] * 255 - ref[i]) / (H * W);
    expect(mean).toBeGreaterThan(0.4);
  });
});

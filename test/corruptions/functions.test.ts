import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { affineFromPoints, bilinear, motionBlur, boxResize, clippedZoom, CORRUPTIONS, corruptImage, corruptImages, diskKernel, reflectHalf, warpAffine, gaussianFilter, getCorruption, hsvToRgb, plasmaFractal, rgbToHsv, type Image } from '../../src/corruptions/functions.ts';
import { Sampler } from '../../src/corruptions/random.ts';

/** A seeded image with 8-bit pixel values (as datasets store them). */
function image(seed: number, h = 12, w = 12, c = 3): Image {
  const r = new Sampler(seed);
  return { data: Float32Array.from({ length: h * w * c }, () => Math.floor(r.uniform() * 256) / 255), height: h, width: w, channels: c };
}
/** A smooth, photo-like image: a few random low-frequency waves per channel plus mild noise, 8-bit. */
function smooth(seed: number, h = 16, w = 16, c = 3): Image {
  const r = new Sampler(seed);
  const waves = Array.from({ length: 3 * c }, () => [r.uniform() * 0.6, r.uniform() * 0.6, r.uniform() * 6.3]);
  const data = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    let v = 0.5;
    for (let j = 0; j < 3; j++) {
      const [fy, fx, ph] = waves[k * 3 + j];
      v += 0.12 * Math.sin(fy * y + fx * x + ph);
    }
    data[(y * w + x) * c + k] = Math.floor(Math.min(1, Math.max(0, v + 0.02 * (r.uniform() - 0.5))) * 255) / 255;
  }
  return { data, height: h, width: w, channels: c };
}
const constant = (v: number, h = 10, w = 10, c = 3): Image => ({ data: new Float32Array(h * w * c).fill(v), height: h, width: w, channels: c });
const meanSq = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length;

describe('corruptions: every one', () => {
  it('keeps the shape, stays in [0,1] on 8-bit levels, and is a pure function of the seed', () => {
    for (const info of CORRUPTIONS) {
      for (const c of info.colourOnly ? [3] : [1, 3]) {
        const img = image(1, 12, 14, c);
        for (const sev of [1, 3, 5]) {
          const out = corruptImage(info, img, sev, new Sampler(9));
          expect(out.length, info.name).toBe(img.data.length);
          for (const v of out) {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(1);
            expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
          }
          expect(Array.from(corruptImage(info, img, sev, new Sampler(9)))).toEqual(Array.from(out));
          if (info.random && sev === 5) expect(Array.from(corruptImage(info, img, sev, new Sampler(10))), info.name).not.toEqual(Array.from(out));
        }
      }
    }
  });

  it('moves the image further from the clean one as severity rises (averaged over images)', () => {
    // Exceptions by design: saturate's severities 1-2 desaturate and 3-5 oversaturate; glass blur's
    // blur grows with severity and smooths away part of its pixel swaps (checked per iteration count below);
    // elastic transform trades a global affine shift (largest at severity 1) for local displacement.
    for (const info of CORRUPTIONS.filter((x) => !['saturate', 'glass_blur', 'elastic_transform'].includes(x.name))) {
      const dist = [1, 3, 5].map((sev) => {
        let d = 0;
        for (let k = 0; k < 6; k++) {
          const img = smooth(20 + k);
          d += meanSq(corruptImage(info, img, sev, new Sampler(k)), img.data);
        }
        return d;
      });
      expect(dist[1], `${info.name} 3 vs 1`).toBeGreaterThan(dist[0]);
      expect(dist[2], `${info.name} 5 vs 3`).toBeGreaterThan(dist[1]);
    }
  });

  it('glass blur: a second sweep of swaps (severities 4, 5) moves further than one at the same blur (2, 3)', () => {
    const glass = getCorruption('glass_blur');
    const d = (sev: number) => [0, 1, 2, 3].reduce((s, k) => s + meanSq(corruptImage(glass, smooth(40 + k), sev, new Sampler(k)), smooth(40 + k).data), 0);
    expect(d(4)).toBeGreaterThan(d(2));
    expect(d(5)).toBeGreaterThan(d(3));
  });

  it('refuses a bad severity, a grey image for saturate, and an unknown or omitted name', () => {
    const info = getCorruption('contrast');
    expect(() => corruptImage(info, image(1), 0, new Sampler(1))).toThrow(/severity: must be an integer 1-5, got 0/);
    expect(() => corruptImage(info, image(1), 2.5, new Sampler(1))).toThrow(/severity/);
    expect(() => corruptImage(getCorruption('saturate'), image(1, 8, 8, 1), 1, new Sampler(1))).toThrow(/saturate.*colour images only, these have 1 channel/);
    expect(() => getCorruption('frost')).toThrow(/corruption "frost": not available \(needs the frost photographs/);
    expect(() => getCorruption('blurr')).toThrow(/corruption "blurr": unknown; available: gaussian_noise, shot_noise/);
  });
});

describe('corruptions: closed forms', () => {
  it('noise: Gaussian has sd c, shot noise mean x and variance x/c, impulse replaces a fraction c by 0 or 1', () => {
    const grey = constant(0.5, 64, 64, 1);
    const g = getCorruption('gaussian_noise').fn(grey, 3, new Sampler(1));
    const sd = Math.sqrt(g.reduce((s, v) => s + (v - 0.5) ** 2, 0) / g.length);
    expect(sd).toBeCloseTo(0.08, 2);
    const shot = getCorruption('shot_noise').fn(grey, 3, new Sampler(2)); // c = 100
    const m = shot.reduce((s, v) => s + v, 0) / shot.length;
    const varShot = shot.reduce((s, v) => s + (v - m) ** 2, 0) / shot.length;
    expect(m).toBeCloseTo(0.5, 2);
    expect(varShot / (0.5 / 100)).toBeGreaterThan(0.9);
    expect(varShot / (0.5 / 100)).toBeLessThan(1.1);
    const imp = getCorruption('impulse_noise').fn(grey, 5, new Sampler(3)); // c = 0.07
    const salt = imp.filter((v) => v === 1).length / imp.length;
    const pepper = imp.filter((v) => v === 0).length / imp.length;
    expect(salt + pepper).toBeCloseTo(0.07, 2);
    expect(imp.filter((v) => v !== 0 && v !== 1).every((v) => v === 0.5)).toBe(true);
  });

  it('contrast pulls each channel towards its mean by c; brightness adds c to V and keeps hue and saturation', () => {
    const img = image(4, 8, 8, 3);
    const out = getCorruption('contrast').fn(img, 2, new Sampler(0)); // c = 0.5
    const mean = [0, 1, 2].map((k) => img.data.filter((_, i) => i % 3 === k).reduce((s, v) => s + v, 0) / 64);
    out.forEach((v, i) => expect(v).toBeCloseTo(Math.min(1, Math.max(0, (img.data[i] - mean[i % 3]) * 0.5 + mean[i % 3])), 6));
    const b = getCorruption('brightness').fn(img, 5, new Sampler(0)); // + 0.3
    for (let p = 0; p < 64; p++) {
      const [h0, s0, v0] = rgbToHsv(img.data[p * 3], img.data[p * 3 + 1], img.data[p * 3 + 2]);
      const [h1, s1, v1] = rgbToHsv(b[p * 3], b[p * 3 + 1], b[p * 3 + 2]);
      expect(v1).toBeCloseTo(Math.min(1, v0 + 0.3), 5);
      if (s0 > 0.05 && v0 > 0.05) expect(Math.abs(h1 - h0) % 1).toBeLessThan(1e-4);
      expect(s1).toBeCloseTo(s0, 4);
    }
    // Grey images: brightness is value + c.
    const grey = image(5, 8, 8, 1);
    getCorruption('brightness').fn(grey, 1, new Sampler(0)).forEach((v, i) => expect(v).toBeCloseTo(Math.min(1, grey.data[i] + 0.05), 6));
  });

  it('HSV round-trips RGB', () => {
    fc.assert(
      fc.property(fc.tuple(fc.float({ min: 0, max: 1, noNaN: true }), fc.float({ min: 0, max: 1, noNaN: true }), fc.float({ min: 0, max: 1, noNaN: true })), ([r, g, b]) => {
        const back = hsvToRgb(...rgbToHsv(r, g, b));
        expect(back[0]).toBeCloseTo(r, 6);
        expect(back[1]).toBeCloseTo(g, 6);
        expect(back[2]).toBeCloseTo(b, 6);
      }),
      { numRuns: 200, seed: 4 },
    );
  });

  it('blurs, zooms and resizes leave a constant image constant and are linear', () => {
    for (const name of ['gaussian_blur', 'defocus_blur', 'zoom_blur', 'glass_blur', 'pixelate', 'elastic_transform', 'motion_blur']) {
      for (const sev of [1, 5]) {
        const out = getCorruption(name).fn(constant(0.6), sev, new Sampler(1));
        for (const v of out) expect(v, `${name} ${sev}`).toBeCloseTo(0.6, 5);
      }
    }
    // Linear: blur(a + b) = blur(a) + blur(b) (before clipping: values kept inside [0,1]).
    const a = image(7, 10, 10, 1);
    const half = (im: Image): Image => ({ ...im, data: im.data.map((v) => v / 2) });
    const b = image(8, 10, 10, 1);
    const sum: Image = { ...a, data: a.data.map((v, i) => v / 2 + b.data[i] / 2) };
    const f = (im: Image) => gaussianFilter(im, 0.8);
    const lhs = f(sum);
    const rhs = f(half(a)).map((v, i) => v + f(half(b))[i]);
    lhs.forEach((v, i) => expect(v).toBeCloseTo(rhs[i], 6));
  });

  it('kernels: the defocus disk sums to 1 and is symmetric; zoom 1 is the identity; BOX resizing by an integer factor averages blocks', () => {
    for (const [r, al] of [[0.3, 0.4], [1.5, 0.1]]) {
      const { size, k } = diskKernel(r, al);
      expect(size).toBe(17);
      expect(k.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) expect(k[y * size + x]).toBeCloseTo(k[(size - 1 - y) * size + (size - 1 - x)], 7);
    }
    const img = image(9, 12, 12, 3);
    expect(Array.from(clippedZoom(img, 1))).toEqual(Array.from(img.data));
    const small = boxResize(img, 6, 4);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 3; dx++) s += img.data[((2 * y + dy) * 12 + 3 * x + dx) * 3 + c];
      expect(small.data[(y * 4 + x) * 3 + c]).toBeCloseTo(s / 6, 6);
    }
    // Growing by an integer factor repeats each pixel.
    const big = boxResize(small, 12, 8);
    expect(big.data[(11 * 8 + 7) * 3]).toBeCloseTo(small.data[(5 * 4 + 3) * 3], 6);
  });

  it('elastic transform: the affine fit maps its points, the identity warp and integer samples change nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: 6, maxLength: 6 }), (t) => {
        const src = [[23, 23], [23, 5], [5, 5]];
        const dst = src.map((p, i) => [p[0] + t[2 * i], p[1] + t[2 * i + 1]]);
        const [a, b, c, d, e, f] = affineFromPoints(src, dst);
        src.forEach(([x, y], i) => {
          expect(a * x + b * y + c).toBeCloseTo(dst[i][0], 4);
          expect(d * x + e * y + f).toBeCloseTo(dst[i][1], 4);
        });
      }),
      { numRuns: 100, seed: 6 },
    );
    expect(() => affineFromPoints([[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 1], [2, 2]])).toThrow(/collinear/);
    const img = image(14, 10, 12, 3);
    expect(Array.from(warpAffine(img, [1, 0, 0, 0, 1, 0]))).toEqual(Array.from(img.data));
    // A shift by one column samples the neighbour (reflect-101 at the edge).
    const shifted = warpAffine(img, [1, 0, 1, 0, 1, 0]);
    expect(shifted[(2 * 12 + 5) * 3 + 1]).toBeCloseTo(img.data[(2 * 12 + 4) * 3 + 1], 6);
    expect(shifted[(2 * 12 + 0) * 3 + 1]).toBeCloseTo(img.data[(2 * 12 + 1) * 3 + 1], 6);
    expect(bilinear(img, 3, 4, 2, reflectHalf)).toBeCloseTo(img.data[(3 * 12 + 4) * 3 + 2], 6);
    // Half-sample reflection: -1 is 0, n is n-1.
    expect([reflectHalf(-1, 5), reflectHalf(5, 5), reflectHalf(-6, 5), reflectHalf(2, 5)]).toEqual([0, 4, 4, 2]);
  });

  it('motion blur: a one-sided Gaussian trail along the angle; snow only lightens', () => {
    // One bright pixel; at angle 0 output(x) gathers input(x + i), so the pixel trails to its left.
    const img: Image = { data: new Float32Array(9 * 15), height: 9, width: 15, channels: 1 };
    img.data[4 * 15 + 10] = 1;
    const out = motionBlur(img, 3, 1.5, 0);
    const k = [0, 1, 2, 3, 4, 5, 6].map((i) => Math.exp(-(i * i) / (2 * 1.5 * 1.5)));
    const norm = k.reduce((a, v) => a + v, 0);
    for (let i = 0; i < 7; i++) expect(Math.round(out[4 * 15 + 10 - i] * 255)).toBe(Math.floor(Math.round((k[i] / norm) * 65535) / 257));
    expect(out[4 * 15 + 11]).toBe(0); // nothing ahead of the pixel
    expect(out[3 * 15 + 10]).toBe(0); // nothing off the line
    // At 90 degrees the trail runs up the column.
    const up = motionBlur(img, 3, 1.5, 90);
    expect(up[3 * 15 + 10]).toBeCloseTo(out[4 * 15 + 9], 6);
    // Snow: every value at least the lightened image blend·x + (1 - blend)·max(x, 1.5·grey + 0.5).
    const colour = smooth(3);
    for (const sev of [1, 5]) {
      const blend = [0.95, 0.9, 0.9, 0.85, 0.8][sev - 1];
      const snowed = getCorruption('snow').fn(colour, sev, new Sampler(sev));
      for (let p = 0; p < 256; p++) {
        const grey = 0.299 * colour.data[p * 3] + 0.587 * colour.data[p * 3 + 1] + 0.114 * colour.data[p * 3 + 2];
        for (let ch = 0; ch < 3; ch++) {
          const v = colour.data[p * 3 + ch];
          expect(snowed[p * 3 + ch]).toBeGreaterThanOrEqual(Math.min(1, blend * v + (1 - blend) * Math.max(v, 1.5 * grey + 0.5)) - 1e-6);
        }
      }
    }
  });

  it('the plasma fractal spans [0,1] and is seeded; fog brightens dark images', () => {
    const p = plasmaFractal(32, 2, new Sampler(1));
    expect(Math.min(...p)).toBe(0);
    expect(Math.max(...p)).toBe(1);
    expect(Array.from(plasmaFractal(32, 2, new Sampler(1)))).toEqual(Array.from(p));
    expect(() => plasmaFractal(30, 2, new Sampler(1))).toThrow(/power of two/);
    const dark = image(3, 28, 28, 1);
    const fogged = getCorruption('fog').fn(dark, 5, new Sampler(2));
    expect(fogged.length).toBe(28 * 28);
  });

  it('JPEG of many images in one mosaic equals JPEG of each alone, bit for bit (grey and colour, rows of tiles)', () => {
    const jpegInfo = getCorruption('jpeg_compression');
    for (const [h, w, c, k] of [[28, 28, 1, 70], [12, 14, 3, 9], [8, 8, 3, 300]]) {
      const imgs = Array.from({ length: k }, (_, i) => image(100 + i, h, w, c));
      const many = corruptImages(jpegInfo, imgs, 4, () => new Sampler(0));
      imgs.forEach((im, i) => expect(Array.from(many[i]), `${h}x${w}x${c} image ${i}`).toEqual(Array.from(corruptImage(jpegInfo, im, 4, new Sampler(0)))));
    }
    // Other corruptions go image by image with their own streams.
    const imgs = [image(1, 8, 8, 1), image(2, 8, 8, 1)];
    const noisy = corruptImages(getCorruption('shot_noise'), imgs, 2, (i) => new Sampler(i));
    expect(Array.from(noisy[1])).toEqual(Array.from(corruptImage(getCorruption('shot_noise'), imgs[1], 2, new Sampler(1))));
    expect(() => corruptImages(jpegInfo, imgs, 6, () => new Sampler(0))).toThrow(/severity: must be an integer 1-5, got 6/);
  });

  it('JPEG compression loses more at lower quality and keeps a grey image grey', () => {
    const img = image(12, 16, 16, 3);
    const errs = [1, 5].map((sev) => meanSq(getCorruption('jpeg_compression').fn(img, sev, new Sampler(0)), img.data));
    expect(errs[1]).toBeGreaterThan(errs[0]);
    const grey = image(13, 16, 16, 1);
    expect(getCorruption('jpeg_compression').fn(grey, 3, new Sampler(0)).length).toBe(256);
  });
});

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { decodeImageFile, loadImageFolder } from '../../src/data/folder.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { tempDir } from './fixtures.ts';

/** A solid-colour PNG in the given colour type (0 grey, 2 RGB, 6 RGBA); rgba is what every pixel holds. */
function png(w: number, h: number, rgba: [number, number, number, number], colorType: 0 | 2 | 6 = 2): Buffer {
  const img = new PNG({ width: w, height: h });
  for (let p = 0; p < w * h; p++) img.data.set(rgba, 4 * p);
  return PNG.sync.write(img, { colorType, inputHasAlpha: true });
}

function jpg(w: number, h: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let p = 0; p < w * h; p++) data.set([...rgb, 255], 4 * p);
  return jpeg.encode({ width: w, height: h, data }, 100).data;
}

describe('image folders', () => {
  const root = tempDir();

  it('decodes RGB, grey and RGBA PNGs and JPEGs; grey is replicated, alpha composited over black', () => {
    writeFileSync(join(root, 'rgb.png'), png(5, 3, [255, 0, 0, 255]));
    writeFileSync(join(root, 'grey.png'), png(4, 4, [128, 128, 128, 255], 0));
    writeFileSync(join(root, 'alpha.png'), png(4, 4, [200, 100, 50, 128], 6));
    writeFileSync(join(root, 'c.jpg'), jpg(16, 8, [30, 160, 220]));
    const rgb = decodeImageFile(join(root, 'rgb.png'));
    expect([rgb.height, rgb.width]).toEqual([3, 5]);
    expect(Array.from(rgb.rgb.subarray(0, 3))).toEqual([1, 0, 0]);
    const grey = decodeImageFile(join(root, 'grey.png'));
    expect(Array.from(grey.rgb.subarray(9, 12))).toEqual(Array(3).fill(Math.fround(128 / 255)));
    const alpha = decodeImageFile(join(root, 'alpha.png'));
    const a = 128 / 255;
    expect(alpha.rgb[0]).toBeCloseTo((200 / 255) * a, 6);
    expect(alpha.rgb[1]).toBeCloseTo((100 / 255) * a, 6);
    expect(alpha.rgb[2]).toBeCloseTo((50 / 255) * a, 6);
    const j = decodeImageFile(join(root, 'c.jpg'));
    expect([j.height, j.width]).toEqual([8, 16]);
    // Quality 100 on a flat colour: within a few code values (chroma rounding).
    [30, 160, 220].forEach((v, ch) => expect(Math.abs(j.rgb[3 * 40 + ch] - v / 255)).toBeLessThan(4 / 255));
  });

  it('loads root/<class>/<image>, resizes to the size asked, splits per class with the seed', async () => {
    const r = join(root, 'set');
    const classes = { bird: [40, 200, 40], cat: [200, 40, 40], dog: [40, 40, 200] } as const;
    for (const [c, col] of Object.entries(classes)) {
      mkdirSync(join(r, c), { recursive: true });
      for (let i = 0; i < 5; i++) {
        if (i % 2) writeFileSync(join(r, c, `${i}.png`), png(7 + i, 9, [...col, 255] as [number, number, number, number]));
        else writeFileSync(join(r, c, `${i}.JPG`), jpg(12, 10 + i, [...col] as [number, number, number]));
      }
    }
    const { train, test } = loadImageFolder(r, { size: [6, 8], seed: 3, testFraction: 0.4 });
    expect(train.classNames).toEqual(['bird', 'cat', 'dog']);
    expect([train.height, train.width, train.channels]).toEqual([6, 8, 3]);
    // round(0.4 * 5) = 2 test images per class, 3 train.
    expect(Array.from(test.labels)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(Array.from(train.labels)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    // Flat colours survive bilinear resizing (a convex combination of equal values).
    for (let i = 0; i < train.labels.length; i++) {
      const col = Object.values(classes)[train.labels[i]];
      for (let ch = 0; ch < 3; ch++) expect(Math.abs(train.images[i * 144 + 3 * 20 + ch] - col[ch] / 255)).toBeLessThan(4 / 255);
    }
    // Same seed, same split; another seed, another split (of the same files).
    const again = loadImageFolder(r, { size: [6, 8], seed: 3, testFraction: 0.4 });
    expect(again.test.images).toEqual(test.images);
    expect(again.test.source).toContain('seed 3');
    const other = loadImageFolder(r, { size: [6, 8], seed: 4, testFraction: 0.4 });
    expect(other.test.images).not.toEqual(test.images);
    expect(Array.from(other.test.labels)).toEqual([0, 0, 1, 1, 2, 2]);
    // Decoding + resizing (tf.image.resizeBilinear per image) leaves no tensor behind.
    await assertNoTensorLeak(() => void loadImageFolder(r, { size: [5, 5], seed: 1 }), { reps: 2, label: 'loadImageFolder' });
    const square = loadImageFolder(r, { size: 4, seed: 3, testFraction: 0.4 });
    expect([square.train.height, square.train.width]).toEqual([4, 4]);
    expect(() => loadImageFolder(r, { size: 0 })).toThrow(/size: must be an integer/);
  });

  it('uses train/ and test/ sub-folders when both exist, and converts to 1 channel on request', () => {
    const r = join(root, 'split');
    for (const s of ['train', 'test']) {
      for (const c of ['a', 'b']) {
        mkdirSync(join(r, s, c), { recursive: true });
        writeFileSync(join(r, s, c, 'x.png'), png(3, 3, c === 'a' ? [255, 255, 255, 255] : [255, 0, 0, 255]));
      }
    }
    const { train, test } = loadImageFolder(r, { size: [2, 2], channels: 1 });
    expect(train.channels).toBe(1);
    expect(Array.from(test.labels)).toEqual([0, 1]);
    expect(test.images[0]).toBeCloseTo(1, 6);
    expect(test.images[4]).toBeCloseTo(0.299, 6); // BT.601 luma of pure red
    expect(test.source).toBe(join(r, 'test'));
  });

  it('bad input: unreadable or truncated image, non-image file, empty class, missing root, too few classes', () => {
    const r = join(root, 'bad');
    mkdirSync(join(r, 'a'), { recursive: true });
    mkdirSync(join(r, 'b'), { recursive: true });
    writeFileSync(join(r, 'a', '1.png'), png(4, 4, [1, 2, 3, 255]));
    writeFileSync(join(r, 'a', '2.png'), png(4, 4, [1, 2, 3, 255]));
    writeFileSync(join(r, 'b', '1.png'), png(4, 4, [1, 2, 3, 255]));
    writeFileSync(join(r, 'b', 'broken.jpg'), Buffer.from('this is not an image at all'));
    const opts = { size: [4, 4] as [number, number] };
    expect(() => loadImageFolder(r, opts)).toThrow(/b[/\\]broken\.jpg: unreadable image: neither a JPEG nor a PNG/);
    const full = jpg(32, 32, [10, 20, 30]);
    writeFileSync(join(r, 'b', 'broken.jpg'), full.subarray(0, full.length >> 1));
    expect(() => loadImageFolder(r, opts)).toThrow(/broken\.jpg: unreadable image/);
    const p = readFileSync(join(r, 'a', '1.png'));
    writeFileSync(join(r, 'b', 'broken.jpg'), p.subarray(0, p.length - 20));
    expect(() => loadImageFolder(r, opts)).toThrow(/broken\.jpg: unreadable image/);
    writeFileSync(join(r, 'b', 'broken.jpg'), jpg(4, 4, [1, 2, 3]));
    writeFileSync(join(r, 'b', 'notes.txt'), 'hello');
    expect(() => loadImageFolder(r, opts)).toThrow(/b[/\\]notes\.txt: not a \.jpg, \.jpeg or \.png image/);
    writeFileSync(join(r, 'b', '.hidden'), 'ignored');
    mkdirSync(join(r, 'c'));
    expect(() => loadImageFolder(r, opts)).toThrow(/not a \.jpg/);
    const r2 = join(root, 'bad2');
    mkdirSync(join(r2, 'a'), { recursive: true });
    mkdirSync(join(r2, 'b'), { recursive: true });
    writeFileSync(join(r2, 'a', '1.png'), png(2, 2, [0, 0, 0, 255]));
    writeFileSync(join(r2, 'a', '2.png'), png(2, 2, [0, 0, 0, 255]));
    expect(() => loadImageFolder(r2, opts)).toThrow(/bad2[/\\]b: class folder holds no images/);
    writeFileSync(join(r2, 'b', '1.png'), png(2, 2, [0, 0, 0, 255]));
    expect(() => loadImageFolder(r2, opts)).toThrow(/bad2[/\\]b: needs at least 2 images to split/);
    expect(() => loadImageFolder(join(root, 'none'), opts)).toThrow(/none: image folder does not exist/);
    const r3 = join(root, 'one');
    mkdirSync(join(r3, 'only'), { recursive: true });
    expect(() => loadImageFolder(r3, opts)).toThrow(/one: expected one sub-folder per class .* found 1/);
    expect(() => loadImageFolder(r2, { ...opts, testFraction: 1 })).toThrow(/testFraction: must be in \(0, 1\)/);
  });
});

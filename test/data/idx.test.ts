import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeIdx, loadIdxDir, loadIdxPair, parseIdx, readIdxFile } from '../../src/data/idx.ts';
import { randomBytes, tempDir } from './fixtures.ts';

// Hand-written IDX header (big-endian dims), independent of encodeIdx.
function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const head = [0, 0, 0x08, dims.length];
  for (const d of dims) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...data]);
}

const NAMES = Array.from({ length: 10 }, (_, i) => `c${i}`);

describe('IDX format', () => {
  const dir = tempDir();

  it('reads plain and gzip files and scales bytes to [0,1] exactly as b/255', () => {
    const pixels = randomBytes(3 * 4 * 5, 11);
    const labels = Uint8Array.from([3, 0, 9]);
    writeFileSync(join(dir, 'img'), idxBytes([3, 4, 5], pixels));
    writeFileSync(join(dir, 'lab.gz'), gzipSync(idxBytes([3], labels)));
    const ds = loadIdxPair(join(dir, 'img'), join(dir, 'lab.gz'), { name: 't', classNames: NAMES });
    expect([ds.height, ds.width, ds.channels, ds.numClasses]).toEqual([4, 5, 1, 10]);
    expect(Array.from(ds.labels)).toEqual([3, 0, 9]);
    for (let i = 0; i < pixels.length; i++) expect(ds.images[i]).toBe(Math.fround(pixels[i] / 255));
    expect(Math.max(...ds.images)).toBeLessThanOrEqual(1);
  });

  it('round-trips encodeIdx/parseIdx for any shape (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), fc.integer(), (dims, seed) => {
        const n = dims.reduce((a, b) => a * b, 1);
        const data = randomBytes(n, seed);
        const enc = encodeIdx(dims, data);
        expect(enc).toEqual(idxBytes(dims, data));
        const dec = parseIdx(enc, 'x');
        expect(dec.dims).toEqual(dims);
        expect(Array.from(dec.data)).toEqual(Array.from(data));
      }),
      { numRuns: 50 },
    );
  });

  it('loads an MNIST-layout folder (train-*/t10k-*, gz or plain)', () => {
    const d = join(dir, 'mnist');
    mkdirSync(d);
    writeFileSync(join(d, 'train-images-idx3-ubyte.gz'), gzipSync(idxBytes([2, 2, 2], Uint8Array.from([0, 255, 1, 2, 3, 4, 5, 6]))));
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), idxBytes([2], Uint8Array.from([1, 2])));
    writeFileSync(join(d, 't10k-images-idx3-ubyte'), idxBytes([1, 2, 2], Uint8Array.from([9, 9, 9, 9])));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([1], Uint8Array.from([7]))));
    const { train, test } = loadIdxDir(d, { name: 'm', classNames: NAMES });
    expect(train.labels.length).toBe(2);
    expect(train.images[1]).toBe(1);
    expect(test.labels[0]).toBe(7);
    expect(test.images[0]).toBeCloseTo(9 / 255, 7);
  });

  describe('bad files: a clear error naming the file', () => {
    it('truncated data', () => {
      const f = join(dir, 'trunc');
      writeFileSync(f, idxBytes([2, 28, 28], randomBytes(2 * 784, 1)).subarray(0, 16 + 784 + 10));
      expect(() => readIdxFile(f)).toThrow(new RegExp(`${f}: truncated IDX file: shape \\[2, 28, 28\\] needs 1568 data bytes, found 794`));
      writeFileSync(f, Uint8Array.from([0, 0, 8, 3, 0, 0]));
      expect(() => readIdxFile(f)).toThrow(/trunc: truncated IDX file \(6 bytes, the 3-D header needs 16\)/);
    });

    it('truncated gzip stream', () => {
      const f = join(dir, 'trunc.gz');
      const gz = gzipSync(idxBytes([10, 28, 28], randomBytes(7840, 2)));
      writeFileSync(f, gz.subarray(0, gz.length >> 1));
      expect(() => readIdxFile(f)).toThrow(/trunc\.gz: truncated or corrupt gzip data/);
    });

    it('wrong magic number and unsupported type', () => {
      const f = join(dir, 'magic');
      writeFileSync(f, Uint8Array.from([0x12, 0x34, 0x08, 0x01, 0, 0, 0, 0]));
      expect(() => readIdxFile(f)).toThrow(/magic: wrong magic number 0x12340801/);
      writeFileSync(f, Uint8Array.from([0, 0, 0x0d, 0x01, 0, 0, 0, 0]));
      expect(() => readIdxFile(f)).toThrow(/magic: IDX data type 0x0d is not supported/);
      // A file that is really something else (a PNG) is caught by the magic check too.
      writeFileSync(f, Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(() => readIdxFile(f)).toThrow(/wrong magic number 0x89504e47/);
    });

    it('trailing bytes after the data', () => {
      const f = join(dir, 'long');
      writeFileSync(f, Uint8Array.from([...idxBytes([2], Uint8Array.from([1, 2])), 0]));
      expect(() => readIdxFile(f)).toThrow(/long: 1 unexpected bytes after the data of shape \[2\]/);
    });

    it('label outside the class range', () => {
      writeFileSync(join(dir, 'i3'), idxBytes([3, 1, 1], Uint8Array.from([1, 2, 3])));
      writeFileSync(join(dir, 'l3'), idxBytes([3], Uint8Array.from([0, 9, 10])));
      expect(() => loadIdxPair(join(dir, 'i3'), join(dir, 'l3'), { name: 't', classNames: NAMES })).toThrow(
        /l3: label 10 of item 2 is outside the class range \[0, 9\]/,
      );
    });

    it('count mismatch between images and labels', () => {
      writeFileSync(join(dir, 'l2'), idxBytes([2], Uint8Array.from([0, 1])));
      expect(() => loadIdxPair(join(dir, 'i3'), join(dir, 'l2'), { name: 't', classNames: NAMES })).toThrow(
        /count mismatch: .*i3 holds 3 images but .*l2 holds 2 labels/,
      );
    });

    it('wrong dimensionality', () => {
      expect(() => loadIdxPair(join(dir, 'l2'), join(dir, 'l2'), { name: 't', classNames: NAMES })).toThrow(
        /l2: images must have 3 or 4 dimensions/,
      );
      expect(() => loadIdxPair(join(dir, 'i3'), join(dir, 'i3'), { name: 't', classNames: NAMES })).toThrow(/i3: labels must have 1 dimension/);
    });

    it('folder without the expected files, or no folder at all', () => {
      const d = join(dir, 'partial');
      mkdirSync(d);
      writeFileSync(join(d, 'train-images-idx3-ubyte.gz'), readFileSync(join(dir, 'img')));
      expect(() => loadIdxDir(d, { name: 'm', classNames: NAMES })).toThrow(/partial: missing expected file train-labels-idx1-ubyte\.gz/);
      expect(() => loadIdxDir(join(dir, 'nope'), { name: 'm', classNames: NAMES })).toThrow(/nope: directory does not exist/);
      expect(() => readIdxFile(join(dir, 'nope.gz'))).toThrow(/nope\.gz: cannot read IDX file \(ENOENT\)/);
    });
  });
});

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCifarBatch, loadCifarDir, parseCifarBatch } from '../../src/data/cifar.ts';
import { cifarRecord, tempDir, writeCifar10, writeCifar100 } from './fixtures.ts';

// Expected NHWC pixel (y, x, ch) of a record from its planar bytes.
const px = (planes: Uint8Array, y: number, x: number, ch: number) => planes[ch * 1024 + y * 32 + x] / 255;

describe('CIFAR-10 binary', () => {
  const root = tempDir();
  const truth = writeCifar10(root, 2, 3);

  it('reads all five training batches in order and the test batch, planar RGB -> NHWC', () => {
    const { train, test } = loadCifarDir(root, 'cifar10'); // parent folder: finds cifar-10-batches-bin
    expect([train.labels.length, test.labels.length]).toEqual([10, 3]);
    expect([train.height, train.width, train.channels, train.numClasses]).toEqual([32, 32, 3, 10]);
    expect(train.classNames[0]).toBe('airplane');
    expect(train.classNames).toHaveLength(10); // trailing blank lines ignored
    for (const [ds, recs] of [[train, truth.train], [test, truth.test]] as const) {
      recs.forEach((r, i) => {
        expect(ds.labels[i]).toBe(r.label);
        for (const [y, x] of [[0, 0], [5, 17], [31, 31], [12, 0]]) {
          for (let ch = 0; ch < 3; ch++) expect(ds.images[((i * 32 + y) * 32 + x) * 3 + ch]).toBe(Math.fround(px(r.planes, y, x, ch)));
        }
      });
    }
    // The folder itself works too.
    expect(loadCifarDir(join(root, 'cifar-10-batches-bin'), 'cifar10').train.labels.length).toBe(10);
  });

  it('encodeCifarBatch inverts parseCifarBatch', () => {
    const file = join(root, 'cifar-10-batches-bin', 'test_batch.bin');
    const parsed = parseCifarBatch(readFileSync(file), file, 'cifar10');
    const bytes = Uint8Array.from(parsed.images, (v) => Math.round(v * 255));
    expect(Buffer.from(encodeCifarBatch('cifar10', bytes, parsed.labels)).equals(readFileSync(file))).toBe(true);
  });

  it('bad files: truncated batch, label out of range, missing file, wrong class-name count', () => {
    const dir = join(root, 'cifar-10-batches-bin');
    const f = join(dir, 'data_batch_2.bin');
    const good = readFileSync(f);
    writeFileSync(f, good.subarray(0, good.length - 1));
    expect(() => loadCifarDir(root, 'cifar10')).toThrow(/data_batch_2\.bin: truncated cifar10 batch: 6145 bytes is not a whole number of 3073-byte records \(1 complete, 3072 bytes left over\)/);
    writeFileSync(f, Buffer.concat([good, cifarRecord([10], new Uint8Array(3072))]));
    expect(() => loadCifarDir(root, 'cifar10')).toThrow(/data_batch_2\.bin: fine label 10 of record 2 is outside the class range \[0, 9\]/);
    writeFileSync(f, good);
    renameSync(join(dir, 'data_batch_4.bin'), join(dir, 'x.bin'));
    expect(() => loadCifarDir(root, 'cifar10')).toThrow(/cifar-10-batches-bin: missing expected cifar10 file data_batch_4\.bin/);
    renameSync(join(dir, 'x.bin'), join(dir, 'data_batch_4.bin'));
    const meta = readFileSync(join(dir, 'batches.meta.txt'));
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\n');
    expect(() => loadCifarDir(root, 'cifar10')).toThrow(/batches\.meta\.txt: expected 10 class names, found 2/);
    writeFileSync(join(dir, 'batches.meta.txt'), meta);
    expect(() => loadCifarDir(join(root, 'missing'), 'cifar10')).toThrow(/missing: directory does not exist/);
    writeFileSync(join(dir, 'empty.bin'), '');
    expect(() => parseCifarBatch(new Uint8Array(0), join(dir, 'empty.bin'), 'cifar10')).toThrow(/empty\.bin: empty cifar10 batch file/);
    rmSync(join(dir, 'empty.bin'));
    expect(loadCifarDir(root, 'cifar10').train.labels.length).toBe(10);
  });
});

describe('CIFAR-100 binary', () => {
  const root = tempDir();
  const truth = writeCifar100(root, 4, 2);

  it('reads fine labels (100 classes) by default and coarse labels (20) on request', () => {
    const fine = loadCifarDir(root, 'cifar100');
    expect(fine.train.numClasses).toBe(100);
    expect(Array.from(fine.train.labels)).toEqual(truth.train.map((r) => r.fine));
    expect(Array.from(fine.test.labels)).toEqual(truth.test.map((r) => r.fine));
    expect(fine.train.classNames[99]).toBe('fine99');
    const coarse = loadCifarDir(root, 'cifar100', 'coarse');
    expect(coarse.train.numClasses).toBe(20);
    expect(coarse.train.name).toBe('cifar100-coarse');
    expect(Array.from(coarse.train.labels)).toEqual(truth.train.map((r) => r.coarse));
    truth.train.forEach((r, i) => {
      for (let ch = 0; ch < 3; ch++) expect(fine.train.images[((i * 32 + 7) * 32 + 9) * 3 + ch]).toBe(Math.fround(px(r.planes, 7, 9, ch)));
    });
  });

  it('rejects a fine label >= 100, a coarse label >= 20, and a truncated file', () => {
    const f = join(root, 'cifar-100-binary', 'test.bin');
    const good = readFileSync(f);
    writeFileSync(f, Buffer.concat([good, cifarRecord([3, 100], new Uint8Array(3072))]));
    expect(() => loadCifarDir(root, 'cifar100')).toThrow(/test\.bin: fine label 100 of record 2 is outside the class range \[0, 99\]/);
    writeFileSync(f, Buffer.concat([good, cifarRecord([20, 5], new Uint8Array(3072))]));
    expect(() => loadCifarDir(root, 'cifar100', 'coarse')).toThrow(/test\.bin: coarse label 20 of record 2 is outside the class range \[0, 19\]/);
    writeFileSync(f, good.subarray(0, 3074 + 100));
    expect(() => loadCifarDir(root, 'cifar100')).toThrow(/test\.bin: truncated cifar100 batch: 3174 bytes is not a whole number of 3074-byte records/);
    writeFileSync(f, good);
    rmSync(join(root, 'cifar-100-binary', 'coarse_label_names.txt'));
    expect(() => loadCifarDir(root, 'cifar100')).toThrow(/missing expected cifar100 file coarse_label_names\.txt/);
  });
});

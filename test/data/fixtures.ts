/** Small fixture writers shared by the data tests: each test builds its own files in a temp folder. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createRng } from '../../src/data/rng.ts';

/** A fresh temp folder removed after the test file. */
export function tempDir(prefix = 'jpegdl-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Seeded random bytes. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const rng = createRng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

/**
 * One CIFAR record written by hand (independently of the library's encoder): label byte(s), then
 * the R, G and B planes.
 */
export function cifarRecord(labels: number[], planes: Uint8Array): Uint8Array {
  const out = new Uint8Array(labels.length + 3072);
  out.set(labels, 0);
  out.set(planes, labels.length);
  return out;
}

/**
 * Write a complete CIFAR-10 folder (`<root>/cifar-10-batches-bin`) with `perBatch` images per
 * training batch and `testCount` test images; returns the planar pixel bytes and labels used.
 */
export function writeCifar10(root: string, perBatch = 2, testCount = 3, seed = 1): { train: { planes: Uint8Array; label: number }[]; test: { planes: Uint8Array; label: number }[] } {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const rng = createRng(seed);
  const make = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ planes: randomBytes(3072, seed * 1000 + rng.int(1e6) + i), label: rng.int(10) }));
  const write = (file: string, recs: { planes: Uint8Array; label: number }[]) =>
    writeFileSync(join(dir, file), Buffer.concat(recs.map((r) => cifarRecord([r.label], r.planes))));
  const train: { planes: Uint8Array; label: number }[] = [];
  for (let b = 1; b <= 5; b++) {
    const recs = make(perBatch);
    write(`data_batch_${b}.bin`, recs);
    train.push(...recs);
  }
  const test = make(testCount);
  write('test_batch.bin', test);
  writeFileSync(join(dir, 'batches.meta.txt'), ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck', '', ''].join('\n'));
  return { train, test };
}

/** Write a complete CIFAR-100 folder (`<root>/cifar-100-binary`). */
export function writeCifar100(root: string, trainCount = 4, testCount = 2, seed = 2): { train: { planes: Uint8Array; coarse: number; fine: number }[]; test: { planes: Uint8Array; coarse: number; fine: number }[] } {
  const dir = join(root, 'cifar-100-binary');
  mkdirSync(dir, { recursive: true });
  const rng = createRng(seed);
  const make = (n: number) => Array.from({ length: n }, (_, i) => ({ planes: randomBytes(3072, seed * 1000 + i + n), coarse: rng.int(20), fine: rng.int(100) }));
  const train = make(trainCount);
  const test = make(testCount);
  for (const [file, recs] of [['train.bin', train], ['test.bin', test]] as const) {
    writeFileSync(join(dir, file), Buffer.concat(recs.map((r) => cifarRecord([r.coarse, r.fine], r.planes))));
  }
  writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n') + '\n');
  writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n');
  return { train, test };
}

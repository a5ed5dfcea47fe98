import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { appendRecord, cellKey, dedupeRecords, loadRecords, packBits, unpackBits } from '../../src/eval/records.ts';
import { fakeRecord } from './fixtures.ts';

describe('bit packing', () => {
  it('round-trips any boolean vector', () => {
    fc.assert(fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 70 }), (bits) => {
      const back = unpackBits(packBits(bits), bits.length);
      expect([...back].map(Boolean)).toEqual(bits);
    }));
  });
  it('rejects a bitmap of the wrong length', () => {
    expect(() => unpackBits(packBits([1, 1, 1]), 9)).toThrow(/expected 2 bytes/);
  });
});

describe('cellKey', () => {
  it('ignores parameter order and distinguishes eps, mode and seed', () => {
    const a = fakeRecord({ attackParams: { steps: 5, stepSize: 0.1 } });
    const b = fakeRecord({ attackParams: { stepSize: 0.1, steps: 5 } });
    expect(cellKey(a)).toBe(cellKey(b));
    expect(cellKey(a)).not.toBe(cellKey({ ...a, threat: { ...a.threat, epsLabel: '2/255' } }));
    expect(cellKey(a)).not.toBe(cellKey({ ...a, jpegMode: 'hard' }));
    expect(cellKey(a)).not.toBe(cellKey({ ...a, modelSeed: 1 }));
  });
});

describe('records file', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'jpegdl-rec-'));

  it('appends and reloads records in order', () => {
    const p = join(dir(), 'r.jsonl');
    appendRecord(p, fakeRecord({ attack: 'a' }));
    appendRecord(p, fakeRecord({ attack: 'b' }));
    const { records, droppedTail } = loadRecords(p);
    expect(records.map((r) => r.attack)).toEqual(['a', 'b']);
    expect(droppedTail).toBeUndefined();
  });

  it('drops a torn last line from a kill mid-append, repairs the file, and appends cleanly after', () => {
    const p = join(dir(), 'r.jsonl');
    appendRecord(p, fakeRecord({ attack: 'a' }));
    const full = JSON.stringify(fakeRecord({ attack: 'b' }));
    appendFileSync(p, full.slice(0, 37)); // the kill: half a line, no newline
    const { records, droppedTail } = loadRecords(p, { repair: true });
    expect(records.map((r) => r.attack)).toEqual(['a']);
    expect(droppedTail).toBe(full.slice(0, 37));
    appendRecord(p, fakeRecord({ attack: 'c' }));
    expect(loadRecords(p).records.map((r) => r.attack)).toEqual(['a', 'c']);
    expect(readFileSync(p, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('treats a complete JSON last line without newline as torn (append always ends with newline)', () => {
    const p = join(dir(), 'r.jsonl');
    writeFileSync(p, JSON.stringify(fakeRecord()));
    expect(loadRecords(p).records).toHaveLength(0);
  });

  it('refuses a file corrupt in the middle', () => {
    const p = join(dir(), 'r.jsonl');
    writeFileSync(p, JSON.stringify(fakeRecord()) + '\n{broken\n' + JSON.stringify(fakeRecord()) + '\n');
    expect(() => loadRecords(p)).toThrow(/r\.jsonl:2: corrupt record/);
  });

  it('refuses records of another schema or with inconsistent counts', () => {
    const p = join(dir(), 'r.jsonl');
    writeFileSync(p, JSON.stringify({ ...fakeRecord(), schema: 99 }) + '\n' + JSON.stringify(fakeRecord()) + '\n');
    expect(() => loadRecords(p)).toThrow(/schema 99/);
    writeFileSync(p, JSON.stringify({ ...fakeRecord(), correct: 9 }) + '\n' + JSON.stringify(fakeRecord()) + '\n');
    expect(() => loadRecords(p)).toThrow(/inconsistent n=4 correct=9/);
  });

  it('keeps the latest record of a cell', () => {
    const r = dedupeRecords([fakeRecord({ accuracy: 0.5, correct: 2 }), fakeRecord({ accuracy: 0.75 })]);
    expect(r).toHaveLength(1);
    expect(r[0].accuracy).toBe(0.75);
  });

  it('returns nothing for a missing file', () => {
    expect(loadRecords(join(dir(), 'none.jsonl')).records).toEqual([]);
  });
});

// Regression baselines on certified accuracy: `check` reads certify.json like a report.json.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CertifyRecord } from '../../src/certify/evaluate.ts';
import { writeCertifyReport } from '../../src/certify/report.ts';
import { cli } from '../cli/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-certify-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => { process.exitCode = undefined; });

const rec = (model: string, index: number, radius: number, o: Partial<CertifyRecord> = {}): CertifyRecord => ({
  schema: 1, kind: 'certify', model, variant: model, modelSeed: 0, jpegMode: null, sigma: 0.25, sigmaLabel: '0.25', n0: 100, samples: 1000, alpha: 0.001, batchSize: 500,
  dataset: 'tiny', images: 10, seed: 0, index, label: 1, prediction: radius >= 0 ? 1 : -1, count: 900, pLower: 0.9, radius: Math.max(0, radius), correct: radius >= 0, basePrediction: 1, seconds: 0, ...o,
});
/** 10 images per model; `drop` images of "jpeg-dl" lose their certificate (abstain). */
const records = (drop = 0, samples = 1000) => ['baseline', 'jpeg-dl'].flatMap((m) => Array.from({ length: 10 }, (_, i) => rec(m, i, m === 'jpeg-dl' && i < drop ? -1 : 0.05 * i, { samples })));
const radii = [{ value: 0, label: '0' }, { value: 0.25, label: '0.25' }];

describe('check on certification reports', () => {
  it('writes a baseline with the smoothed accuracy at radius 0 kept, passes, fails on a move, refuses other parameters', async () => {
    const write = (name: string, recs: CertifyRecord[]) => writeCertifyReport(join(tmp, name), recs, radii, { title: name, dataset: 'tiny', split: 'test', n: 10 }).json;
    const base = write('base', records());
    const b = join(tmp, 'baseline.json');
    const w = await cli('check', base, '--write-baseline', b, '--tolerance', '5');
    expect(w.code, w.text).toBe(0);
    const cells = JSON.parse(readFileSync(b, 'utf8')).cells;
    // Per model: the base classifier's clean accuracy, and certified accuracy at radius 0 and 0.25.
    expect(cells.map((c: { model: string; attack: string; eps: string; accuracy: number }) => `${c.model} ${c.attack} ${c.eps} ${c.accuracy}`).sort()).toEqual([
      'baseline certify:sigma=0.25 0 1', 'baseline certify:sigma=0.25 0.25 0.5', 'baseline clean 0 1',
      'jpeg-dl certify:sigma=0.25 0 1', 'jpeg-dl certify:sigma=0.25 0.25 0.5', 'jpeg-dl clean 0 1',
    ]);
    expect((await cli('check', write('same', records()), '--baseline', b)).text).toMatch(/^OK: 6 cells within tolerance/);
    const moved = await cli('check', write('moved', records(2)), '--baseline', b);
    expect(moved.code).toBe(1);
    expect(moved.text).toContain('✗ jpeg-dl | certify:sigma=0.25 | 0: baseline 100.00% -> 80.00% -20.00 pts = 2 images of 10 (tolerance ±5.00 pts)');
    const other = await cli('check', write('other', records(0, 2000)), '--baseline', b);
    expect(other.code).toBe(2);
    expect(other.text).toMatch(/different configurations[\s\S]*attacks: .*samples/);
  });
});

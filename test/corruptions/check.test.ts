// Regression baselines on corruption accuracy: `check` reads corruptions.json like a report.json.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CorruptionRecord } from '../../src/corruptions/evaluate.ts';
import { writeCorruptionReport } from '../../src/corruptions/report.ts';
import { cli } from '../cli/helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-corr-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => { process.exitCode = undefined; });

const rec = (model: string, mode: 'soft' | null, corruption: string, severity: number, correct: number): CorruptionRecord => ({
  schema: 1, kind: 'corruption', model, variant: model === 'baseline' ? 'baseline' : 'jpeg-dl', modelSeed: 0, jpegMode: mode, corruption, severity, dataset: 'tiny', n: 50, seed: 0, correct, accuracy: correct / 50, correctBits: '', seconds: 0,
});
function records(shift = 0, severities = [1, 3]): CorruptionRecord[] {
  const out = [rec('baseline', null, 'clean', 0, 40), rec('jpeg-dl', 'soft', 'clean', 0, 38)];
  for (const c of ['fog', 'contrast']) for (const s of severities) out.push(rec('baseline', null, c, s, 30 - s), rec('jpeg-dl', 'soft', c, s, 35 - s + (c === 'fog' && s === 3 ? shift : 0)));
  return out;
}

describe('check on corruption reports', () => {
  it('writes a baseline, passes against it, fails naming a moved cell, refuses other severities', async () => {
    const write = (name: string, recs: CorruptionRecord[]) => writeCorruptionReport(join(tmp, name), recs, { title: name, dataset: 'tiny', split: 'test', n: 50 }).json;
    const base = write('base', records());
    const b = join(tmp, 'baseline.json');
    const w = await cli('check', base, '--write-baseline', b, '--tolerance', '3');
    expect(w.code, w.text).toBe(0);
    // clean x 2 series + 2 corruptions x 2 severities x 2 series.
    expect(JSON.parse(readFileSync(b, 'utf8')).cells).toHaveLength(10);
    expect((await cli('check', write('same', records()), '--baseline', b)).text).toMatch(/^OK: 10 cells within tolerance/);
    const moved = await cli('check', write('moved', records(-3)), '--baseline', b);
    expect(moved.code).toBe(1);
    expect(moved.text).toContain('✗ jpeg-dl [soft] | corruption:fog | severity 3: baseline 64.00% -> 58.00% -6.00 pts = 3 images of 50 (tolerance ±3.00 pts)');
    const other = await cli('check', write('other', records(0, [1, 5])), '--baseline', b);
    expect(other.code).toBe(2);
    expect(other.text).toMatch(/different configurations[\s\S]*epsilons: baseline \["severity 1","severity 3"\], report \["severity 1","severity 5"\]/);
    // A corruptions.json can be the baseline itself.
    expect((await cli('check', write('again', records()), '--baseline', base)).text).toMatch(/^OK: 10 cells/);
  });
});

// `jpegdl-robust report`: re-render a report directory from its records.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers.ts';
import { buildReport } from '../../../src/report/model.ts';
import { writeReport } from '../../../src/report/write.ts';
import { fixedInput } from '../../report/fixtures.ts';

afterEach(() => { process.exitCode = undefined; });

describe('jpegdl-robust report', () => {
  it('re-renders md/html/json/txt from records, keeping title, config, tables and training, ignoring a torn line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-rerender-'));
    const training = [{ model: 'baseline', variant: 'baseline', epochs: [{ epoch: 1, lr: 0.05, trainLoss: 1.5, trainAcc: 0.4, testAcc: { plain: 0.45 }, seconds: 3, imagesPerSec: 100 }] }];
    const input = { ...fixedInput(), training };
    writeReport(dir, buildReport(input));
    writeFileSync(join(dir, 'records.jsonl'), input.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    appendFileSync(join(dir, 'records.jsonl'), '{"schema":1,"mod');
    rmSync(join(dir, 'report.html'));
    const r = await cli('report', dir);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toContain('ignored a torn last line');
    expect(r.text).toMatch(/fgsm\s*│\s*4\/255\s*│\s*35\.0 ± 7\.1/);
    expect(existsSync(join(dir, 'report.html'))).toBe(true);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(json.title).toBe('Test report');
    expect(json.config.command).toBe('jpegdl-robust evaluate --test');
    expect(json.tables).toHaveLength(1);
    expect(json.training).toEqual(training);
    expect(json.createdAt).toBe('2026-01-01T00:00:00Z'); // the sweep's date survives re-rendering
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<h2>Training</h2>');
    expect(json.records).toHaveLength(input.records.length);
  });

  it('says what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-rerender-'));
    expect((await cli('report', join(dir, 'nope'))).text).toMatch(/is not a directory/);
    expect((await cli('report', dir)).text).toMatch(/no records\.jsonl in/);
  });
});

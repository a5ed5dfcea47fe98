// `jpegdl-robust check` exit codes and messages on report files built from fixed records.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers.ts';
import { buildReport } from '../../../src/report/model.ts';
import { fixedInput } from '../../report/fixtures.ts';

afterEach(() => { process.exitCode = undefined; });

describe('jpegdl-robust check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jpegdl-check-cli-'));
  const reportPath = join(dir, 'report.json');
  writeFileSync(reportPath, JSON.stringify(buildReport(fixedInput())));

  it('writes a baseline, passes against it (exit 0), fails on a moved cell (exit 1), refuses another config (exit 2)', async () => {
    const basePath = join(dir, 'baseline.json');
    const w = await cli('check', reportPath, '--write-baseline', basePath, '--tolerance', '1');
    expect(w.code, w.text).toBe(0);
    expect(w.text).toMatch(/baseline with 14 cells \(tolerance ±1 pts\)/);
    const ok = await cli('check', reportPath, '--baseline', basePath);
    expect(ok.code).toBe(0);
    expect(ok.text).toMatch(/^OK: 14 cells/);

    const moved = JSON.parse(readFileSync(basePath, 'utf8'));
    moved.cells[3].accuracy += 0.05;
    writeFileSync(join(dir, 'moved.json'), JSON.stringify(moved));
    const bad = await cli('check', reportPath, '--baseline', join(dir, 'moved.json'));
    expect(bad.code).toBe(1);
    expect(bad.text).toMatch(/FAIL: 1 of 14 cells moved beyond tolerance\n {2}✗ .*-5\.00 pts = 0\.5 images of 10 \(tolerance ±1\.00 pts\)/);

    const other = JSON.parse(readFileSync(basePath, 'utf8'));
    other.config.n = 500;
    writeFileSync(join(dir, 'other.json'), JSON.stringify(other));
    const inc = await cli('check', reportPath, '--baseline', join(dir, 'other.json'));
    expect(inc.code).toBe(2);
    expect(inc.text).toMatch(/different configurations[\s\S]*n: baseline 500, report 10/);
  });

  it('clear errors for missing files and options', async () => {
    expect((await cli('check', join(dir, 'none.json'), '--baseline', 'x')).text).toMatch(/report: file .*none\.json does not exist/);
    expect((await cli('check', reportPath)).text).toMatch(/give --baseline/);
    expect((await cli('check', reportPath, '--baseline', join(dir, 'missing.json'))).text).toMatch(/--baseline: file .*missing\.json does not exist/);
    expect((await cli('check', reportPath, '--baseline', reportPath, '--tolerance', '-1')).text).toMatch(/--tolerance/);
  });
});

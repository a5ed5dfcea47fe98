// The project's own regression check (issue 6): a small seeded run of the embedded default,
// compared cell by cell with the committed baseline. A change that alters attack strength,
// training or the JPEG layer moves these numbers and fails here with a readable diff.
// Regenerate deliberately with `npm run baseline:ci` and commit the new reports/baselines/ci.json.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendInfo } from '../../src/backend.ts';
import { checkReport, formatCheck, readBaseline, readReport } from '../../src/report/check.ts';

const baselinePath = 'reports/baselines/ci.json';

describe('CI regression baseline (preset ci on the embedded Fashion-MNIST subset)', () => {
  // The baseline was produced on the native backend; other backends train slightly differently.
  it.skipIf(backendInfo()?.name !== 'tensorflow')('matches reports/baselines/ci.json within its per-cell tolerances', () => {
    const out = mkdtempSync(join(tmpdir(), 'jpegdl-ci-'));
    try {
      execFileSync(process.execPath, ['bin/jpegdl-robust.js', 'run', '--preset', 'ci', '--name', 'ci', '--out', out, '--no-progress'], {
        stdio: 'pipe',
        env: { ...process.env, JPEGDL_BACKEND: 'tensorflow' },
      });
      const report = readReport(join(out, 'ci', 'report.json'));
      const result = checkReport(report, readBaseline(baselinePath));
      expect(result.ok, formatCheck(result)).toBe(true);
      // The comparison covered every cell of the baseline (clean, FGSM, PGD, BPDA, worst case).
      expect(formatCheck(result)).toMatch(/19 cells within tolerance/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

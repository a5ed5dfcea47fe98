import type { Command } from 'commander';
import { writeJsonAtomic } from '../../io/atomic.ts';
import { checkReport, formatCheck, IncompatibleBaselineError, makeBaseline, readBaseline, readReport } from '../../report/check.ts';

/** `jpegdl-robust check`: compare a report with a committed baseline (exit 1 on regression, 2 on incompatible config). */
export function register(program: Command): void {
  program
    .command('check <report>')
    .description('compare report.json with a baseline JSON cell by cell; exit 1 when accuracy moved beyond tolerance, 2 when the configs differ')
    .option('--baseline <file>', 'baseline JSON (or another report.json)')
    .option('--tolerance <points>', 'tolerance in percentage points for --write-baseline, or when --baseline is a report.json', '2')
    .option('--write-baseline <file>', 'write a baseline from this report instead of checking (keeps an existing file only if writing fails)')
    .action((reportPath: string, o: { baseline?: string; tolerance: string; writeBaseline?: string }) => {
      const tol = Number(o.tolerance);
      if (!(tol >= 0 && tol <= 100)) throw new Error(`--tolerance: must be percentage points in [0,100], got ${o.tolerance}`);
      const report = readReport(reportPath);
      if (o.writeBaseline) {
        const b = makeBaseline(report, { tolerance: tol / 100, source: `jpegdl-robust check ${reportPath} --write-baseline ${o.writeBaseline} --tolerance ${tol}` });
        writeJsonAtomic(o.writeBaseline, b);
        console.log(`baseline with ${b.cells.length} cells (tolerance ±${tol} pts) written to ${o.writeBaseline}`);
        return;
      }
      if (!o.baseline) throw new Error('check: give --baseline <file> (or --write-baseline <file> to create one)');
      const baseline = readBaseline(o.baseline, tol / 100);
      try {
        const res = checkReport(report, baseline);
        // Backends are not compared, but numbers can differ between them: say so next to a failure.
        if (baseline.backend && baseline.backend !== report.backend) console.log(`note: baseline from ${baseline.backend}, report from ${report.backend}`);
        console.log(formatCheck(res));
        if (!res.ok) process.exitCode = 1;
      } catch (err) {
        if (err instanceof IncompatibleBaselineError) {
          console.error(`jpegdl-robust check: ${err.message}`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    });
}

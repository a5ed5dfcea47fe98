/** The report as a terminal table (drawn with the `table` package). */
import { table } from 'table';
import { mainTable, runSummary, type Report } from './model.ts';

/** Main accuracy table (percent; differences in points) with a one-line run summary above it. */
export function renderTerminal(report: Report): string {
  const { header, rows } = mainTable(report);
  const body = table([header, ...rows], {
    columns: header.map((_, j) => ({ alignment: j < 2 ? 'left' : 'right' })),
    drawHorizontalLine: (i, size) => i === 0 || i === 1 || i === size,
  });
  const checks = report.checks?.length ? `${report.checks.map((c) => `check: ${c}`).join('\n')}\n` : '';
  return `${report.title}\n${runSummary(report)}\naccuracy in %, Δ in percentage points vs ${report.series.find((s) => s.key === report.reference)?.label ?? '(no baseline)'}\n${body}${checks}`;
}

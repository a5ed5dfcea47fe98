import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.ts';
import { readReport } from '../../report/check.ts';
import { buildReport } from '../../report/model.ts';
import { renderTerminal } from '../../report/terminal.ts';
import { writeReport } from '../../report/write.ts';
import { loadRecords } from '../../eval/records.ts';
import { RECORDS_FILE } from '../../eval/sweep.ts';

/** `jpegdl-robust report`: re-render report.{md,html,json} from a directory's records (after a renderer change or an interrupted sweep). */
export function register(program: Command): void {
  program
    .command('report <dir>')
    .description('re-render report.md/html/json/txt in <dir> from its records (records.jsonl or sweep/records.jsonl) and the config in its report.json')
    .option('--title <text>', 'report title (default: the existing one)')
    .action((dir: string, o: { title?: string }) => {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`report: ${dir} is not a directory`);
      const recPath = [join(dir, RECORDS_FILE), join(dir, 'sweep', RECORDS_FILE)].find((p) => existsSync(p));
      if (!recPath) throw new Error(`report: no ${RECORDS_FILE} in ${dir} or ${join(dir, 'sweep')}`);
      const { records, droppedTail } = loadRecords(recPath);
      if (droppedTail) console.error(`note: ignored a torn last line in ${recPath} (an interrupted cell)`);
      const old = existsSync(join(dir, 'report.json')) ? readReport(join(dir, 'report.json')) : undefined;
      const report = buildReport({
        title: o.title ?? old?.title,
        records,
        config: old?.config ?? { n: records[0]?.n ?? 0, epsilons: [...new Set(records.map((r) => r.threat.epsLabel))], norm: records[0]?.threat.norm ?? 'linf', attacks: [], models: [], seed: records[0]?.seed ?? 0, batchSize: 0 },
        backend: old?.backend ?? records[0]?.backend ?? 'unknown',
        versions: old?.versions,
        tables: old?.tables,
        training: old?.training,
        notes: old?.notes,
        examples: old?.examples,
        classes: old?.classes,
        // The sweep's date, not the rendering's.
        createdAt: old?.createdAt,
      });
      const files = writeReport(dir, report);
      const terminal = renderTerminal(report);
      writeFileAtomic(join(dir, 'report.txt'), terminal + '\n');
      console.log(terminal);
      console.log(`report: ${files.markdown}\n        ${files.html}\n        ${files.json}`);
    });
}

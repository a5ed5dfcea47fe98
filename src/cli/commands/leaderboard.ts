import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { leaderboardEntries, renderLeaderboardTerminal, writeLeaderboard } from '../../report/leaderboard.ts';

/** `jpegdl-robust leaderboard`: rank the models of several reports by worst-case robust accuracy. */
export function register(program: Command): void {
  program
    .command('leaderboard <reports...>')
    .description('rank every model of several reports (run or evaluate directories, or report.json files) by worst-case robust accuracy, with clean accuracy, training, attacks used and corruption accuracy when a corruption report sits beside them')
    .option('--eps <label>', 'rank at this eps label, e.g. 4/255 (default: the largest eps every report has)')
    .option('--out <dir>', 'also write leaderboard.{md,html,json,txt} here')
    .action((reports: string[], o: { eps?: string; out?: string }) => {
      const entries = leaderboardEntries(reports);
      console.log(renderLeaderboardTerminal(entries, o.eps));
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        const files = writeLeaderboard(o.out, entries, o.eps);
        console.log(`leaderboard: ${files.markdown}\n             ${files.html}\n             ${files.json}`);
      }
    });
}

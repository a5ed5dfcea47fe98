import type { Command } from 'commander';
import { describeBackend, initBackend } from '../../backend.ts';

/** `jpegdl-robust backend`: show which compute backend would run and why others were skipped. */
export function register(program: Command): void {
  program
    .command('backend')
    .description('initialise the best available compute backend (or --backend) and print it')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--json', 'print as JSON')
    .action(async (opts: { backend: string; json?: boolean }) => {
      const info = await initBackend(opts.backend);
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else {
        console.log(`backend: ${describeBackend(info)}`);
        for (const f of info.fallbacks) console.log(`  skipped ${f}`);
      }
    });
}

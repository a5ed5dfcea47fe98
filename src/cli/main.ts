/**
 * The `jpegdl-robust` command line: a thin layer over the library. Each subcommand
 * lives in its own file under ./commands and exports `register(program)`.
 */
import { Command, CommanderError } from 'commander';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Build the program with every subcommand found in ./commands. */
export async function buildProgram(): Promise<Command> {
  const program = new Command('jpegdl-robust')
    .description('Adversarial robustness of JPEG-inspired deep learning (JPEG-DL) on TensorFlow.js')
    .showHelpAfterError()
    .exitOverride();
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort();
  for (const f of files) {
    const mod = (await import(join(dir, f))) as { register?: (p: Command) => void };
    mod.register?.(program);
  }
  return program;
}

/** Run the command line with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    console.error(`jpegdl-robust: ${(err as Error).message}`);
    if (process.env.JPEGDL_DEBUG) console.error((err as Error).stack);
    return 1;
  }
}

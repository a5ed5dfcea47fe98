// Run the command line in-process and capture what it prints, for the CLI tests.
import type { Command } from 'commander';
import { Command as Program } from 'commander';
import { vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

/** Run `jpegdl-robust <argv>` through main(); returns the exit code and console.log/error text. */
export async function cli(...argv: string[]): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation((...a) => void out.push(a.join(' ')));
  try {
    return { code: await main(argv), text: out.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}

/** Run one subcommand registered by `register` on a bare program; returns console.log text, errors propagate. */
export async function runCommand(register: (p: Command) => void, name: string, args: string[]): Promise<string> {
  const program = new Program().exitOverride();
  register(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await program.parseAsync([name, ...args], { from: 'user' });
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

#!/usr/bin/env node
// Thin launcher: runs the TypeScript command line through tsx, no build step needed.
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

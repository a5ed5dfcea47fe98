import type { Command } from 'commander';
import { table } from 'table';
import { summarizeModels } from '../../../models/summary.ts';
import { MODEL_NAMES } from '../../../models/registry.ts';
import { initBackend } from '../../backend.ts';

/** Parse "h,w,c" (or "hxwxc") into a positive-integer triple; throws naming --input-shape. */
export function parseInputShape(text: string): [number, number, number] {
  const parts = text.split(/[x,]/).map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length !== 3 || nums.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`--input-shape must be height,width,channels (e.g. 32,32,3), got '${text}'`);
  }
  return nums as [number, number, number];
}

function fmt(n: number | null): string {
  return n === null ? '-' : n.toLocaleString('en-US');
}

/** `jpegdl-robust models`: the model zoo with trainable-parameter counts, baseline and JPEG-DL. */
export function register(program: Command): void {
  program
    .command('models')
    .description('list the model zoo with parameter counts (baseline and +JPEG layer)')
    .option('--input-shape <h,w,c>', "input shape for every model (default: each model's own, e.g. 32,32,3 or 224,224,3)")
    .option('--classes <n>', 'number of classes', '100')
    .option('--models <names>', `comma-separated subset of: ${MODEL_NAMES.join(', ')}`)
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .option('--json', 'print as JSON')
    .action(async (opts: { inputShape?: string; classes: string; models?: string; backend: string; json?: boolean }) => {
      const numClasses = Number(opts.classes);
      if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`--classes must be an integer >= 2, got '${opts.classes}'`);
      const inputShape = opts.inputShape ? parseInputShape(opts.inputShape) : undefined;
      const names = opts.models?.split(',').map((s) => s.trim()).filter(Boolean);
      await initBackend(opts.backend);
      const rows = summarizeModels({ names, inputShape, numClasses });
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const data = [
        ['model', 'family', 'paper set', 'input', 'params', 'params +JPEG', 'description'],
        ...rows.map((r) => [
          r.name,
          r.family,
          r.paperSet,
          r.inputShape.join('x'),
          r.error ? (/too small/.test(r.error) ? `too small (min ${r.minInputSize})` : `error: ${r.error}`) : fmt(r.baselineParams),
          fmt(r.jpegParams),
          r.description,
        ]),
      ];
      console.log(
        table(data, {
          columns: { 4: { alignment: 'right', width: 18, wrapWord: true }, 5: { alignment: 'right' }, 6: { width: 44, wrapWord: true } },
          drawHorizontalLine: (i, n) => i === 0 || i === 1 || i === n,
        }),
      );
      console.log(`${numClasses} classes; counts are trainable parameters (BatchNorm running statistics excluded).`);
    });
}

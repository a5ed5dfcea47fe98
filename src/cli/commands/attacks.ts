import type { Command } from 'commander';
import { table } from 'table';
import { ATTACKS } from '../../../attacks/index.ts';
import { namedAttackNames, findNamedAttack } from '../../eval/named-attacks.ts';
import { TRANSFER_PARAMS } from '../../eval/records.ts';

/** One row of `jpegdl-robust attacks`: what a user needs to write an attack spec. */
export interface AttackRow {
  name: string;
  norm: string;
  /** Optional options with their defaults (eps always comes from --eps). */
  defaults: Record<string, unknown>;
  /** Takes a per-batch seed (random starts or search); deterministic otherwise. */
  seeded: boolean;
  description: string;
  paper: string;
}

/** Every attack `evaluate --attack` and sweeps accept, registry first, with norm, defaults and source. */
export function attackRows(): AttackRow[] {
  return namedAttackNames().map((name) => {
    const entry = findNamedAttack(name)!;
    const info = Object.prototype.hasOwnProperty.call(ATTACKS, name) ? ATTACKS[name] : undefined;
    return {
      name,
      norm: entry.norm ?? 'linf',
      defaults: entry.defaults,
      seeded: 'seed' in entry.defaults,
      description: info?.description ?? 'PGD through the hard JPEG path with a BPDA backward (identity or soft quantiser)',
      paper: info?.paper ?? 'Athalye, Carlini, Wagner 2018, Obfuscated Gradients Give a False Sense of Security',
    };
  });
}

/** `jpegdl-robust attacks`: the attacks, their norms and options, as `evaluate --attack name:k=v` takes them. */
export function register(program: Command): void {
  program
    .command('attacks')
    .description('list the attacks with their norm, options and defaults (for evaluate --attack name:key=value)')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      const rows = attackRows();
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const data = [
        ['attack', 'norm', 'options (defaults)', 'what it does'],
        ...rows.map((r) => [r.name, r.norm, Object.entries(r.defaults).map(([k, v]) => `${k}=${String(v)}`).join(', '), `${r.description}. ${r.paper}`]),
      ];
      console.log(table(data, { columns: { 2: { width: 34, wrapWord: true }, 3: { width: 60, wrapWord: true } }, drawHorizontalLine: (i, n) => i === 0 || i === 1 || i === n }));
      console.log(`eps comes from --eps (0-1 scale; 8/255 accepted; the L0 attacks count pixels: --eps 0,1,5,10). Any attack becomes a transfer attack with ${TRANSFER_PARAMS.map((k) => `${k}=`).join(' and ')} (see docs/reports.md).`);
      // The threat models without an eps have commands of their own.
      console.log('Not bounded by eps: rotations and shifts (Engstrom et al. 2019) with `jpegdl-robust spatial` (docs/spatial.md); common corruptions with `jpegdl-robust corruptions`; certified L2 radii with `jpegdl-robust certify`. One perturbation for every image (universal, fitted on training images) with `jpegdl-robust universal` (docs/universal.md).');
    });
}

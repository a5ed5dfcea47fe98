/**
 * Attacks a sweep can name: the registry (attacks/index.ts) plus BPDA-PGD. A name is all a worker
 * process needs to run an attack (functions cannot be sent to it), so parallel sweeps take only these.
 */
import { ATTACK_NAMES, getAttack } from '../../attacks/index.ts';
import { bpdaPgd } from '../../attacks/bpda_pgd.ts';
import type { AttackFn, RegistryEntry } from './sweep.ts';

/** A named attack with the defaults of its optional options (a 'seed' key: it takes a per-batch seed). */
export type NamedAttack = RegistryEntry & { defaults: Record<string, unknown> };

/** Attacks known besides the registry: PGD through the hard JPEG path with BPDA. */
const EXTRA_ATTACKS: Record<string, NamedAttack> = {
  'bpda-pgd': { run: bpdaPgd as AttackFn, norm: 'linf', defaults: { steps: 10, stepSize: '2.5*eps/steps', randomStart: true, restarts: 1, seed: 0, targeted: false, loss: 'ce', eotSamples: 1, backward: 'identity' } },
};

/** Every attack name a sweep (and `evaluate --attack`) accepts. */
export function namedAttackNames(): string[] {
  return [...ATTACK_NAMES, ...Object.keys(EXTRA_ATTACKS)];
}

/** The attack called `name`, or undefined. */
export function findNamedAttack(name: string): NamedAttack | undefined {
  if (Object.prototype.hasOwnProperty.call(EXTRA_ATTACKS, name)) return EXTRA_ATTACKS[name];
  if (!ATTACK_NAMES.includes(name)) return undefined;
  const info = getAttack(name);
  return { run: info.run as unknown as AttackFn, norm: info.norm, defaults: info.defaults, ...(info.minimal ? { minimal: info.minimal } : {}), ...(info.sharedSearch ? { sharedSearch: true } : {}) };
}

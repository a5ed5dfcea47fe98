// Budgets per norm for `evaluate` (--eps, --eps-l2, --eps-l1): which list each norm's attacks get, and the errors.
import { describe, expect, it } from 'vitest';
import { budgetsByNorm, DEFAULT_EPSILONS } from '../../src/eval/evaluate.ts';

const labels = (r: ReturnType<typeof budgetsByNorm>) => Object.fromEntries([...r.lists].map(([n, l]) => [n, l.map((e) => e.label)]));
const linf = { name: 'pgd', norm: 'linf' as const };
const l2 = { name: 'apgd-l2', norm: 'l2' as const };
const l1 = { name: 'apgd-l1', norm: 'l1' as const };
const l0 = { name: 'sparse-rs', norm: 'l0' as const };

describe('budgetsByNorm', () => {
  it('one norm: --eps is its list (L-inf falls back to the run\'s list, then the default)', () => {
    expect(labels(budgetsByNorm([linf], {}))).toEqual({ linf: DEFAULT_EPSILONS.split(',') });
    expect(labels(budgetsByNorm([linf], {}, '0,2/255'))).toEqual({ linf: ['0', '2/255'] });
    expect(labels(budgetsByNorm([linf], { eps: '0,8/255' }, '0,2/255'))).toEqual({ linf: ['0', '8/255'] });
    // L2 or L1 alone: --eps is read in that norm (sizes above 1 allowed), or --eps-l2 names it.
    expect(budgetsByNorm([l1], { eps: '0,4,12' })).toMatchObject({ primary: 'l1' });
    expect(labels(budgetsByNorm([l1], { eps: '0,4,12' }))).toEqual({ l1: ['0', '4', '12'] });
    expect(labels(budgetsByNorm([l2], { epsL2: '0,0.5' }))).toEqual({ l2: ['0', '0.5'] });
    expect(() => budgetsByNorm([l2], {}, '0,2/255')).toThrow('--eps: the attacks are l2 and the default budgets (this run\'s) are L-inf ones; give l2 budgets, e.g. --eps 0,0.25,0.5,1');
  });

  it('mixed norms: --eps is L-inf, --eps-l2 and --eps-l1 the others; primary is L-inf when present', () => {
    const r = budgetsByNorm([l2, linf, l1], { eps: '0,4/255', epsL2: '0,0.5,1', epsL1: '0,8' });
    expect(r.primary).toBe('linf');
    expect(labels(r)).toEqual({ linf: ['0', '4/255'], l2: ['0', '0.5', '1'], l1: ['0', '8'] });
    expect(r.lists.get('l2')!.map((e) => e.value)).toEqual([0, 0.5, 1]);
    // Without --eps the L-inf attacks take the run's (or the default) list.
    expect(labels(budgetsByNorm([linf, l2], { epsL2: '0,0.5' }))).toEqual({ linf: DEFAULT_EPSILONS.split(','), l2: ['0', '0.5'] });
    expect(budgetsByNorm([l2, l1], { epsL2: '0,0.5', epsL1: '0,8' }).primary).toBe('l2');
    // L0 (pixel counts): --eps alone, or --eps-l0 beside the others.
    expect(labels(budgetsByNorm([l0], { eps: '0,1,10' }))).toEqual({ l0: ['0', '1', '10'] });
    expect(labels(budgetsByNorm([linf, l0], { eps: '0,4/255', epsL0: '0,5' }))).toEqual({ linf: ['0', '4/255'], l0: ['0', '5'] });
    expect(() => budgetsByNorm([linf, l0], { eps: '0,4/255' })).toThrow('--eps-l0: sparse-rs is an L0 attack and --eps holds L-inf budgets; give L0 budgets, e.g. --eps-l0 0,1,5,10');
    expect(() => budgetsByNorm([linf, l0], { epsL0: '0,2/255' })).toThrow('--eps-l0: "2/255" is not an L0 budget');
  });

  it('refuses a missing list, a list no attack uses, and an L-inf budget above 1, naming the flag', () => {
    expect(() => budgetsByNorm([linf, l2], { eps: '0,4/255' })).toThrow('--eps-l2: apgd-l2 is an L2 attack and --eps holds L-inf budgets; give L2 budgets, e.g. --eps-l2 0,0.25,0.5,1');
    expect(() => budgetsByNorm([linf, l1, { name: 'fab-l1', norm: 'l1' }], {})).toThrow('--eps-l1: apgd-l1, fab-l1 are L1 attacks and --eps holds L-inf budgets; give L1 budgets, e.g. --eps-l1 0,2,4,8');
    expect(() => budgetsByNorm([linf], { epsL2: '0,0.5' })).toThrow('--eps-l2: no L2 attack among --attack (pgd (linf)) uses these budgets');
    expect(() => budgetsByNorm([l2], { eps: '0,1/255', epsL2: '0,0.5' })).toThrow('--eps: no L-inf attack among --attack (apgd-l2 (l2)) uses these budgets');
    expect(() => budgetsByNorm([linf, l2], { eps: '0,8', epsL2: '0,0.5' })).toThrow('--eps: "8" is 8 on the 0-1 pixel scale; did you mean 8/255?');
    expect(() => budgetsByNorm([linf, l2], { epsL2: '0,x' })).toThrow('--eps-l2: cannot parse "x"');
  });
});

// The attack registry.
import { describe, expect, it } from 'vitest';
import { ATTACK_NAMES, ATTACKS, getAttack } from '../../attacks/index.ts';

describe('attack registry', () => {
  it('lists every attack with its norm, defaults and paper', () => {
    expect(ATTACK_NAMES).toEqual(['fgsm', 'pgd', 'pgd-l2', 'pgd-l1', 'pgd-l0', 'mi-fgsm', 'ni-fgsm', 'si-ni-fgsm', 'vmi-fgsm', 'vni-fgsm', 'di-fgsm', 'ti-fgsm', 'apgd', 'apgd-l2', 'apgd-l1', 'fab', 'fab-l2', 'fab-l1', 'cw-l2', 'ead', 'deepfool', 'deepfool-linf', 'square', 'square-l2', 'simba', 'spsa', 'sparse-rs', 'hsja', 'hsja-linf', 'autoattack', 'autoattack-l2', 'autoattack-l1']);
    for (const info of Object.values(ATTACKS)) {
      expect(typeof info.run).toBe('function');
      expect(['linf', 'l2', 'l1', 'l0']).toContain(info.norm);
      // The name says the norm of every attack that is not L-inf (or L2 for the L2-first attacks; Sparse-RS is L0 and EAD, the elastic-net attack, L1 by name).
      if (info.norm === 'l1') expect(info.name.endsWith('-l1') || info.name === 'ead').toBe(true);
      if (info.norm === 'l0') expect(info.name.endsWith('-l0') || info.name.startsWith('sparse-')).toBe(true);
      expect(info.paper.length).toBeGreaterThan(10);
      expect(getAttack(info.name)).toBe(info);
    }
    expect(getAttack('pgd').defaults).toMatchObject({ steps: 10, randomStart: true, restarts: 1 });
    expect(getAttack('apgd').defaults).toMatchObject({ steps: 100 });
    expect(getAttack('fab').defaults).toMatchObject({ steps: 100, restarts: 1, targetClasses: 0, alphaMax: 0.1, eta: 1.05, beta: 0.9 });
    expect(getAttack('autoattack').defaults).toMatchObject({ targetClasses: 9, fab: true });
    expect(getAttack('square-l2')).toMatchObject({ norm: 'l2', defaults: { queries: 5000, pInit: 0.8, loss: 'margin' } });
    expect(getAttack('autoattack-l2')).toMatchObject({ norm: 'l2', defaults: getAttack('autoattack').defaults });
    expect(getAttack('apgd-l1')).toMatchObject({ norm: 'l1', defaults: { steps: 100, epsSchedule: false } });
    expect(getAttack('pgd-l1')).toMatchObject({ norm: 'l1', defaults: { quantile: 0.99 } });
    expect(getAttack('pgd-l0')).toMatchObject({ norm: 'l0', defaults: { steps: 10, stepSize: 0.15, randomStart: false } });
    expect(getAttack('sparse-rs')).toMatchObject({ norm: 'l0', defaults: { queries: 5000, alphaInit: 0.3, loss: 'margin' } });
    expect(getAttack('spsa')).toMatchObject({ norm: 'linf', defaults: { steps: 100, samples: 128, delta: 0.01, lr: 0.01, loss: 'margin' } });
    // The transfer family differs only in decay, look-ahead, scales, variance samples, diversity and smoothing.
    expect(getAttack('mi-fgsm')).toMatchObject({ norm: 'linf', defaults: { steps: 10, stepSize: 'eps/steps', decay: 1, nesterov: false, diversityProb: 0, kernelSize: 1, randomStart: false } });
    expect(getAttack('ni-fgsm').defaults).toMatchObject({ decay: 1, nesterov: true, diversityProb: 0, kernelSize: 1 });
    expect(getAttack('si-ni-fgsm').defaults).toMatchObject({ decay: 1, nesterov: true, scales: 5, varianceSamples: 0 });
    expect(getAttack('vmi-fgsm').defaults).toMatchObject({ decay: 1, nesterov: false, scales: 1, varianceSamples: 20, varianceBeta: 1.5 });
    expect(getAttack('vni-fgsm').defaults).toMatchObject({ nesterov: true, varianceSamples: 20 });
    expect(getAttack('di-fgsm').defaults).toMatchObject({ decay: 0, nesterov: false, diversityProb: 0.5, resizeRate: 0.9, kernelSize: 1 });
    expect(getAttack('ti-fgsm').defaults).toMatchObject({ decay: 0, diversityProb: 0.5, kernelSize: 15, kernelSigma: 3 });
    expect(getAttack('autoattack-l1')).toMatchObject({ norm: 'l1', defaults: { targetClasses: 5, fab: false, queries: 0 } });
  });
  it('rejects unknown names, listing the known ones', () => {
    expect(() => getAttack('cw')).toThrow(/unknown attack "cw"; known attacks: fgsm, pgd, pgd-l2, pgd-l1, pgd-l0, mi-fgsm, ni-fgsm, si-ni-fgsm, vmi-fgsm, vni-fgsm, di-fgsm, ti-fgsm, apgd, apgd-l2, apgd-l1, fab, fab-l2, fab-l1, cw-l2, ead, deepfool, deepfool-linf, square, square-l2, simba, spsa, sparse-rs, hsja, hsja-linf, autoattack, autoattack-l2, autoattack-l1/);
    expect(() => getAttack('toString')).toThrow(/unknown attack/);
  });
});

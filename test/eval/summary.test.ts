import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { aggregate, attackLabels, meanStd, robustAccuracy, transferAttackLabels, WORST_CASE } from '../../src/eval/summary.ts';
import { packBits, type CellRecord } from '../../src/eval/records.ts';
import { fakeRecord } from './fixtures.ts';

const rec = (attack: string, bits: number[], over: Partial<CellRecord> = {}): CellRecord => {
  const correct = bits.reduce((s, b) => s + b, 0);
  return fakeRecord({ attack, n: bits.length, correct, accuracy: correct / bits.length, correctBits: packBits(bits), ...over });
};
const clean = (bits: number[], over: Partial<CellRecord> = {}) => rec('clean', bits, { threat: { norm: 'linf', eps: 0, epsLabel: '0', bounds: [0, 1] }, ...over });

describe('robustAccuracy (per-example worst case)', () => {
  it('is the AND over attacks and clean, not the min of accuracies', () => {
    // fgsm and pgd each keep 3/4 correct, but different ones: the worst case keeps only 1.
    const rs = [clean([1, 1, 1, 1]), rec('fgsm', [1, 1, 1, 0]), rec('pgd', [0, 1, 1, 1]), rec('pgd', [0, 0, 0, 0], { threat: { norm: 'linf', eps: 2 / 255, epsLabel: '2/255', bounds: [0, 1] } })];
    const r = robustAccuracy(rs);
    expect(r).toHaveLength(2);
    const at1 = r.find((c) => c.epsLabel === '1/255')!;
    expect(at1.correct).toBe(2);
    expect(at1.accuracy).toBe(0.5);
    expect(at1.attacks).toEqual(['fgsm', 'pgd']);
    expect(r.find((c) => c.epsLabel === '2/255')!.accuracy).toBe(0);
  });

  it('counts a clean-wrong image as not robust even if the attack happened to fix it', () => {
    const r = robustAccuracy([clean([0, 1]), rec('fgsm', [1, 1])]);
    expect(r[0].correct).toBe(1);
  });

  it('never exceeds the smallest accuracy of the attacks (property)', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }), { minLength: 1, maxLength: 4 }), (sets) => {
      const rs = sets.map((s, i) => rec(`a${i}`, s.map(Number)));
      const r = robustAccuracy(rs)[0];
      expect(r.accuracy).toBeLessThanOrEqual(Math.min(...rs.map((x) => x.accuracy)) + 1e-12);
      const expected = Array.from({ length: 9 }, (_, i) => sets.every((s) => s[i])).filter(Boolean).length;
      expect(r.correct).toBe(expected);
    }));
  });

  it('keeps model instances and modes apart', () => {
    const rs = [rec('fgsm', [1, 1]), rec('fgsm', [0, 0], { modelSeed: 1 }), rec('fgsm', [1, 0], { jpegMode: 'hard' })];
    expect(robustAccuracy(rs).map((c) => c.accuracy).sort()).toEqual([0, 0.5, 1]);
  });
});

describe('aggregation over seeds', () => {
  it('meanStd matches the closed form (sample std, n-1)', () => {
    const { mean, std } = meanStd([0.7, 0.8, 0.9]);
    expect(mean).toBeCloseTo(0.8, 12);
    expect(std).toBeCloseTo(0.1, 12);
    expect(meanStd([0.5]).std).toBeNull();
    expect(() => meanStd([])).toThrow(/no values/);
  });

  it('groups seeds of one series/attack/eps, including the worst-case rows', () => {
    const rs = [rec('fgsm', [1, 1, 0, 0], { modelSeed: 0 }), rec('fgsm', [1, 1, 1, 1], { modelSeed: 1 }), rec('fgsm', [1, 0, 0, 0], { modelSeed: 2 })];
    const agg = aggregate(rs);
    const f = agg.find((a) => a.attack === 'fgsm')!;
    expect(f.seeds).toEqual([0, 1, 2]);
    expect(f.values).toEqual([0.5, 1, 0.25]);
    expect(f.mean).toBeCloseTo(0.5833333333, 8);
    const m = (0.5 + 1 + 0.25) / 3;
    expect(f.std).toBeCloseTo(Math.sqrt(((0.5 - m) ** 2 + (1 - m) ** 2 + (0.25 - m) ** 2) / 2), 12);
    const w = agg.find((a) => a.attack === WORST_CASE)!;
    expect(w.mean).toBeCloseTo(f.mean, 12);
  });

  it('labels attacks by name unless the same name has several parameter sets', () => {
    const l = attackLabels([rec('pgd', [1], { attackParams: { steps: 5 } }), rec('pgd', [1], { attackParams: { steps: 50 } }), rec('fgsm', [1])]);
    expect([...l.values()].sort()).toEqual(['fgsm', 'pgd(steps=5)', 'pgd(steps=50)']);
    // Transfer runs keep the attack's own label and say where the images were crafted.
    const t = attackLabels([rec('pgd', [1], { attackParams: { steps: 5 } }), rec('pgd', [1], { attackParams: { steps: 5, surrogate: 'baseline' } }), rec('fgsm', [1], { attackParams: { surrogate: 'jpeg-dl', surrogateMode: 'soft' } })]);
    expect([...t.values()].sort()).toEqual(['fgsm from jpeg-dl [soft]', 'pgd', 'pgd from baseline']);
    expect([...transferAttackLabels([rec('pgd', [1]), rec('pgd', [1], { attackParams: { surrogate: 'baseline' } })])]).toEqual(['pgd from baseline']);
  });
});

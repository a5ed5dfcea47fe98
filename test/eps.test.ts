import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { epsilonFromNumber, parseEpsilon, parseEpsilonList } from '../src/eps.ts';

describe('epsilon parsing', () => {
  it('reads fractions and decimals on the 0-1 scale', () => {
    expect(parseEpsilon('8/255')).toEqual({ value: 8 / 255, label: '8/255' });
    expect(parseEpsilon(' 0.5 ')).toEqual({ value: 0.5, label: '0.5' });
    expect(parseEpsilon('0')).toEqual({ value: 0, label: '0' });
    expect(parseEpsilonList('0,1/255, 8/255').map((e) => e.label)).toEqual(['0', '1/255', '8/255']);
  });

  it('names the argument and the problem for bad input', () => {
    expect(() => parseEpsilon('-1/255', '--eps')).toThrow(/--eps: cannot parse/);
    expect(() => parseEpsilon('-0.1', '--eps')).toThrow(/--eps: "-0.1" must be a finite number >= 0/);
    expect(() => parseEpsilon('8', '--eps')).toThrow(/did you mean 8\/255/);
    // An L2 budget may exceed 1 (the box's L2 diameter is sqrt(pixels)); still finite and >= 0.
    expect(parseEpsilonList('0,0.5,3', '--eps', 'l2')).toEqual([{ value: 0, label: '0' }, { value: 0.5, label: '0.5' }, { value: 3, label: '3' }]);
    expect(() => parseEpsilon('-3', '--eps', 'l2')).toThrow(/must be a finite number >= 0/);
    expect(() => parseEpsilon('abc')).toThrow(/eps: cannot parse "abc"/);
    expect(() => parseEpsilon('1/0')).toThrow(/divides by zero/);
    expect(() => parseEpsilonList(' , ', '--eps')).toThrow(/--eps: the epsilon list is empty/);
    expect(() => epsilonFromNumber(NaN)).toThrow(/finite/);
  });

  it('reads L0 budgets as whole numbers of pixels and refuses anything else, naming the argument', () => {
    expect(parseEpsilonList('0,1, 5,10', '--eps', 'l0')).toEqual([{ value: 0, label: '0' }, { value: 1, label: '1' }, { value: 5, label: '5' }, { value: 10, label: '10' }]);
    for (const bad of ['8/255', '0.5', '-1', '1e3', 'x']) {
      expect(() => parseEpsilon(bad, '--eps-l0', 'l0')).toThrow(`--eps-l0: "${bad}" is not an L0 budget; L0 budgets count changed pixels, so give whole numbers such as 0,1,5,10`);
    }
    expect(() => parseEpsilon('99999999999999999999', '--eps', 'l0')).toThrow('--eps: "99999999999999999999" is too large');
  });

  it('labels n/255 values as fractions and round-trips them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 255 }), (n) => {
        const e = epsilonFromNumber(n / 255);
        expect(e.label).toBe(`${n}/255`);
        expect(parseEpsilon(e.label).value).toBe(n / 255);
      }),
    );
  });
});

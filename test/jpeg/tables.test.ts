import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  STANDARD_CHROMA,
  STANDARD_LUMA,
  ZIGZAG,
  fromZigzag,
  qualityScale,
  scaleTable,
  standardTables,
  toZigzag,
} from '../../src/jpeg/tables.ts';

describe('standard tables and IJG quality scaling', () => {
  it('quality 50 gives the Annex K tables, 100 gives all ones', () => {
    expect(standardTables(50)).toEqual({ luma: [...STANDARD_LUMA], chroma: [...STANDARD_CHROMA] });
    expect(standardTables(100).luma.every((v) => v === 1)).toBe(true);
    expect(standardTables(100).chroma.every((v) => v === 1)).toBe(true);
  });

  it('follows floor((b*s+50)/100) clamped to [1,255], with s = 5000/Q below 50 and 200-2Q above', () => {
    expect(qualityScale(10)).toBe(500);
    expect(qualityScale(75)).toBe(50);
    // Hand-computed: 16*500 = 8000 -> 80; 99*500 -> 495 -> clamped to 255; 16*50 -> 8.5 -> 8.
    expect(standardTables(10).luma[0]).toBe(80);
    expect(standardTables(10).chroma[63]).toBe(255);
    expect(standardTables(75).luma[0]).toBe(8);
    expect(standardTables(1).luma.every((v) => v === 255 || v >= 160)).toBe(true);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), (q) => {
        const t = standardTables(q);
        return [...t.luma, ...t.chroma].every((v) => Number.isInteger(v) && v >= 1 && v <= 255);
      }),
    );
  });

  it('table entries never decrease as quality falls', () => {
    for (let q = 2; q <= 100; q++) {
      const hi = scaleTable(STANDARD_LUMA, q);
      const lo = scaleTable(STANDARD_LUMA, q - 1);
      expect(hi.every((v, k) => v <= lo[k])).toBe(true);
    }
  });

  it('zigzag order starts (0,0),(0,1),(1,0),(2,0),(1,1),(0,2) and ends at (7,7); inverse round trips', () => {
    expect(ZIGZAG.slice(0, 6)).toEqual([0, 1, 8, 16, 9, 2]);
    expect(ZIGZAG[63]).toBe(63);
    expect([...ZIGZAG].sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 64, maxLength: 64 }), (t) => {
        expect(fromZigzag(toZigzag(t))).toEqual(t);
      }),
    );
  });

  it('rejects bad quality and bad tables with clear errors', () => {
    expect(() => standardTables(0)).toThrow(/quality: must be an integer from 1 to 100, got 0/);
    expect(() => standardTables(101)).toThrow(/got 101/);
    expect(() => standardTables(50.5)).toThrow(/got 50.5/);
    expect(() => toZigzag([1, 2, 3])).toThrow(/expected 64 values.*got 3/);
    expect(() => toZigzag(Array(64).fill(NaN))).toThrow(/not a finite number/);
  });
});

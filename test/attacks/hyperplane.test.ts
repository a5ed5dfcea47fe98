// FAB's projection onto a hyperplane inside the pixel box: constraint, box, and least norm, against an
// independent float64 reference (bisection on the norm, not the sorted-breakpoint solve), plus closed forms.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hyperplaneStep } from '../../attacks/hyperplane.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import type { Norm } from '../../src/types.ts';

/**
 * Float64 reference by bisection: the least t (L-inf) or lambda (L2) whose delta reaches c, or null when
 * the whole box cannot. delta_i = s_i·min(t, u_i) (L-inf) or s_i·min(lambda·|w_i|, u_i) (L2), signs
 * flipped so that c >= 0.
 */
function reference(p: number[], w: number[], c: number, norm: Norm): number[] | null {
  const flip = c < 0 ? -1 : 1;
  const wf = w.map((v) => v * flip);
  const room = wf.map((v, i) => (v > 0 ? 1 - p[i] : p[i]));
  if (norm === 'l1') {
    // Greedy by |w|, one pixel at a time (a different route from the backend's threshold-and-ties solve).
    let rest = Math.abs(c);
    const delta = w.map(() => 0);
    for (const i of wf.map((_, k) => k).filter((k) => wf[k] !== 0).sort((a, b) => Math.abs(wf[b]) - Math.abs(wf[a]))) {
      if (rest <= 0) break;
      const t = Math.min(room[i], rest / Math.abs(wf[i]));
      delta[i] = Math.sign(wf[i]) * t;
      rest -= Math.abs(wf[i]) * t;
    }
    return rest > 1e-9 * (1 + Math.abs(c)) ? null : delta;
  }
  const delta = (t: number) => wf.map((v, i) => Math.sign(v) * Math.min(norm === 'linf' ? t : t * Math.abs(v), room[i]));
  const reach = (t: number) => delta(t).reduce((acc, di, i) => acc + di * wf[i], 0);
  const target = Math.abs(c);
  if (target === 0) return w.map(() => 0);
  let hi = 1;
  while (reach(hi) < target && hi < 1e12) hi *= 2;
  if (reach(hi) < target) return null;
  let lo = 0;
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    if (reach(mid) < target) lo = mid;
    else hi = mid;
  }
  return delta(hi);
}

const normOf = (v: ArrayLike<number>, norm: Norm) => (norm === 'linf' ? Math.max(0, ...Array.from(v, Math.abs)) : norm === 'l2' ? Math.sqrt(Array.from(v).reduce((a, b) => a + b * b, 0)) : Array.from(v).reduce((a, b) => a + Math.abs(b), 0));

// Nonzero magnitudes from 1e-3 up: the backend flushes float32 denormals to zero, the reference would not.
const signed = (max: number) => fc.tuple(fc.boolean(), fc.double({ min: 1e-3, max, noNaN: true })).map(([neg, v]) => (neg ? -v : v));

const rowArb = fc.integer({ min: 1, max: 40 }).chain((d) =>
  fc.record({
    // Pixels with some exactly on the box bounds, weights with some exact zeros.
    p: fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: d, maxLength: d }),
    w: fc.array(fc.oneof(fc.constant(0), signed(3)), { minLength: d, maxLength: d }),
    c: fc.oneof(fc.constant(0), signed(4)),
  }),
);

describe('hyperplaneStep', () => {
  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: on the hyperplane, inside the box, and of least norm (float64 reference)`, () => {
      fc.assert(
        fc.property(fc.array(rowArb, { minLength: 1, maxLength: 3 }).filter((rows) => rows.every((r) => r.p.length === rows[0].p.length)), (rows) => {
          const d = rows[0].p.length;
          // Weights and points as the backend sees them (float32), so the reference solves the same problem.
          const p32 = rows.map((r) => Array.from(Float32Array.from(r.p)));
          const w32 = rows.map((r) => Array.from(Float32Array.from(r.w)));
          const c32 = rows.map((r) => Math.fround(r.c));
          const out = tf.tidy(() => hyperplaneStep(tf.tensor2d(p32), tf.tensor2d(w32), tf.tensor1d(c32), norm).arraySync());
          rows.forEach((_, i) => {
            const delta = out[i];
            const scale = Math.abs(c32[i]) + w32[i].reduce((a, b) => a + Math.abs(b), 0);
            for (let j = 0; j < d; j++) {
              expect(p32[i][j] + delta[j]).toBeGreaterThanOrEqual(-1e-6);
              expect(p32[i][j] + delta[j]).toBeLessThanOrEqual(1 + 1e-6);
            }
            const ref = reference(p32[i], w32[i], c32[i], norm);
            if (ref === null) {
              // Out of reach: every pixel with a weight goes to the bound that raises w·delta towards c.
              for (let j = 0; j < d; j++) expect(delta[j]).toBeCloseTo(w32[i][j] === 0 ? 0 : Math.sign(w32[i][j] * c32[i]) * (w32[i][j] * Math.sign(c32[i]) > 0 ? 1 - p32[i][j] : p32[i][j]), 5);
              return;
            }
            const reached = delta.reduce((acc, v, j) => acc + v * w32[i][j], 0);
            expect(Math.abs(reached - c32[i])).toBeLessThanOrEqual(1e-4 * scale + 1e-6);
            expect(Math.abs(normOf(delta, norm) - normOf(ref, norm))).toBeLessThanOrEqual(1e-4 * (normOf(ref, norm) + 1e-3));
          });
        }),
        { numRuns: 150, seed: 7 },
      );
    });
  }

  it('closed forms away from the box: L-inf |c|/||w||_1 along sign(w), L2 c·w/||w||²', () => {
    const d = 64;
    const w = Array.from({ length: d }, (_, j) => Math.sin(3 * j + 1));
    const p = Array.from({ length: d }, () => 0.5);
    const c = 0.05;
    const l1 = w.reduce((a, b) => a + Math.abs(b), 0);
    const sq = w.reduce((a, b) => a + b * b, 0);
    const [linf, l2] = tf.tidy(() => (['linf', 'l2'] as const).map((norm) => hyperplaneStep(tf.tensor2d([p]), tf.tensor2d([w]), tf.tensor1d([c]), norm).arraySync()[0]));
    for (let j = 0; j < d; j++) {
      expect(linf[j]).toBeCloseTo((Math.sign(w[j]) * c) / l1, 6);
      expect(l2[j]).toBeCloseTo((c * w[j]) / sq, 6);
    }
  });

  it('a point on the hyperplane does not move; a saturated pixel is used before the norm grows', () => {
    const zero = tf.tidy(() => hyperplaneStep(tf.tensor2d([[0.2, 0.7]]), tf.tensor2d([[1, -2]]), tf.tensor1d([0]), 'linf').arraySync()[0]);
    expect(zero.map(Math.abs)).toEqual([0, 0]);
    // Pixel 0 can rise by 0.1 only; reaching c = 0.5 with weights (1, 1) in L-inf takes t = 0.4 on pixel 1.
    const step = tf.tidy(() => hyperplaneStep(tf.tensor2d([[0.9, 0.1]]), tf.tensor2d([[1, 1]]), tf.tensor1d([0.5]), 'linf').arraySync()[0]);
    expect(step[0]).toBeCloseTo(0.1, 6);
    expect(step[1]).toBeCloseTo(0.4, 6);
  });

  it('rejects mismatched shapes, naming them', () => {
    expect(() => hyperplaneStep(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 4]) as tf.Tensor2D, tf.zeros([2]) as tf.Tensor1D, 'linf')).toThrow(/p \[2,3\] and w \[2,4\]/);
    expect(() => hyperplaneStep(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([3]) as tf.Tensor1D, 'l2')).toThrow(/c \[3\] must be \[rows=2\]/);
  });

  it('leaks no tensor', async () => {
    const p = tf.randomUniform([4, 30], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([4, 30], 0, 1, 'float32', 2) as tf.Tensor2D;
    const c = tf.tensor1d([0.5, -0.3, 0, 9]);
    for (const norm of ['linf', 'l2'] as const) await assertNoTensorLeak(() => hyperplaneStep(p, w, c, norm), { label: `hyperplaneStep ${norm}` });
    tf.dispose([p, w, c]);
  });
});

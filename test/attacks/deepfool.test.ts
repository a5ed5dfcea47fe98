// DeepFool: on affine models one step lands at (1 + overshoot) times the exact distance (L2 and L-inf);
// the budgeted form, the candidate classes, option errors and leaks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { deepfool, deepfoolLinf, deepfoolMinimal } from '../../attacks/deepfool.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { affineSetting, perExampleDistances, planeDistances } from './helpers.ts';

const setting = affineSetting;

describe('deepfool on affine models', () => {
  for (const norm of ['l2', 'linf'] as const) {
    it(`${norm}: every example sits at (1 + overshoot) times the exact distance to misclassification`, () => {
      const { W, b, model, xs, x, y, labels } = setting(3);
      const exact = planeDistances(xs, W, b, labels, norm).map((row) => Math.min(...row));
      // The box must not bind for the closed form: the linf step moves every pixel by the distance.
      // Pixels lie in [0.4, 0.6] and no pixel moves further than the distance itself.
      expect(Math.max(...exact) * 1.1).toBeLessThan(0.4);
      const r = deepfoolMinimal(model, x, y, { eps: 0, norm, overshoot: 0.1 });
      r.norms.forEach((v, i) => expect(v / (1.1 * exact[i])).toBeCloseTo(1, 3));
      const back = perExampleDistances(r.adversarial.dataSync(), xs, 6)[norm];
      back.forEach((v, i) => expect(v).toBeCloseTo(r.norms[i], 5));
      Array.from(tf.argMax(model(r.adversarial), 1).dataSync()).forEach((p, i) => expect(p).not.toBe(labels[i]));
      tf.dispose([x, y, r.adversarial]);
    });
  }

  it('with two candidate classes it can only aim for the most likely wrong class (maybe farther than the closest boundary)', () => {
    const { W, b, model, xs, x, y, labels } = setting(6);
    const planes = planeDistances(xs, W, b, labels, 'l2');
    const z = model(x).arraySync() as number[][];
    const r = deepfoolMinimal(model, x, y, { eps: 0, candidates: 2 });
    r.norms.forEach((v, i) => {
      const likely = [0, 1, 2].filter((k) => k !== labels[i]).sort((a, c) => z[i][c] - z[i][a])[0];
      expect(v / (1.02 * planes[i][likely])).toBeCloseTo(1, 3);
    });
    tf.dispose([x, y, r.adversarial]);
  });

  it('budgeted: fools exactly the images within eps of the boundary, returns the others clean bit for bit', () => {
    const { W, b, model, xs, x, y, labels } = setting(3);
    const exact = planeDistances(xs, W, b, labels, 'l2').map((row) => Math.min(...row));
    // eps halfway between the 3rd and 4th distances: the found point (1.02 x the distance, along the
    // boundary normal) projected onto the ball crosses the boundary iff the distance is below eps.
    const sorted = [...exact].sort((a, c) => a - c);
    const eps = (sorted[2] + sorted[3]) / 2;
    const adv = deepfool(model, x, y, { eps });
    const a = adv.dataSync();
    const pred = Array.from(tf.argMax(model(adv), 1).dataSync());
    exact.forEach((e, i) => {
      expect(pred[i] !== labels[i]).toBe(e < eps);
      if (e > eps) expect(Array.from(a.slice(i * 16, (i + 1) * 16))).toEqual(Array.from(xs.slice(i * 16, (i + 1) * 16)));
    });
    perExampleDistances(a, xs, 6).l2.forEach((v) => expect(v).toBeLessThanOrEqual(eps + 1e-6));
    tf.dispose([x, y, adv]);
  });

  it('names the bad option before any model call, and leaks nothing', async () => {
    let calls = 0;
    const { model: inner, x, y } = setting(3);
    const model = (v: tf.Tensor4D) => (calls++, inner(v));
    expect(() => deepfool(model, x, y, { eps: 0.1, steps: 0 })).toThrow('deepfool: steps: must be an integer >= 1, got 0');
    expect(() => deepfool(model, x, y, { eps: 0.1, overshoot: -0.1 })).toThrow('deepfool: overshoot: must be a finite number >= 0, got -0.1');
    expect(() => deepfool(model, x, y, { eps: 0.1, candidates: 1 })).toThrow('deepfool: candidates: must be an integer >= 2, got 1');
    expect(() => deepfool(model, x, y, { eps: 0.1, norm: 'l1' as never })).toThrow('deepfool: norm must be "linf" or "l2", got l1');
    expect(() => deepfoolLinf(model, x, y, { eps: 0.1, norm: 'l2' } as never)).toThrow('deepfool-linf: do not pass norm (it is always linf)');
    expect(calls).toBe(0);
    await assertNoTensorLeak(() => deepfool(inner, x, y, { eps: 0.2, steps: 3 }), { label: 'deepfool' });
    await assertNoTensorLeak(() => deepfoolLinf(inner, x, y, { eps: 0.05, steps: 3 }), { label: 'deepfool-linf' });
    tf.dispose([x, y]);
  });
});

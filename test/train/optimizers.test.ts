import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { withNativeFastPaths } from '../../src/native/fast-grads.ts';
import { Adam, HOST_UPDATE_MAX, SgdMomentum } from '../../src/train/optimizers.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i])));
};

describe('SgdMomentum (PyTorch SGD, coupled weight decay)', () => {
  it('matches the closed form over three steps with constant gradient', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const opt = new SgdMomentum([w], 0.1, 0.9, [0.01]);
    const g = tf.tensor1d([0.3, 0, -1]);
    // Plain-number replica of torch.optim.SGD(lr=.1, momentum=.9, weight_decay=.01).
    let ref = [1, -2, 0.5];
    let buf = [0, 0, 0];
    const gv = [0.3, 0, -1];
    for (let s = 0; s < 3; s++) {
      opt.apply([g]);
      const d = ref.map((r, i) => gv[i] + 0.01 * r);
      buf = buf.map((b, i) => 0.9 * b + d[i]);
      ref = ref.map((r, i) => r - 0.1 * buf[i]);
    }
    close(w.dataSync(), ref);
    opt.dispose();
    tf.dispose([w, g]);
  });

  it('zero gradient: weight decay alone shrinks by (1 - lr*wd) on the first step, and not where wd = 0', () => {
    const a = tf.variable(tf.tensor1d([2, -4]));
    const b = tf.variable(tf.tensor1d([3]));
    const opt = new SgdMomentum([a, b], 0.5, 0.9, [0.1, 0]);
    const z = [tf.zeros([2]), tf.zeros([1])];
    opt.apply(z);
    close(a.dataSync(), [2 * 0.95, -4 * 0.95]);
    close(b.dataSync(), [3]);
    opt.dispose();
    tf.dispose([a, b, ...z]);
  });

  it('state round-trips exactly and the step leaks no tensors', async () => {
    const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1));
    const g = tf.randomNormal([4, 3], 0, 1, 'float32', 2);
    const opt = new SgdMomentum([w], 0.05, 0.9, [5e-4]);
    await assertNoTensorLeak(() => opt.apply([g]), { label: 'sgd step' });
    const st = await opt.getState();
    const w2 = tf.variable(w.clone());
    const opt2 = new SgdMomentum([w2], 0.05, 0.9, [5e-4]);
    opt2.setState(st);
    opt.apply([g]);
    opt2.apply([g]);
    expect(Array.from(w2.dataSync())).toEqual(Array.from(w.dataSync()));
    expect(() => opt2.setState({ ...st, kind: 'adam' })).toThrow(/adam/);
    expect(() => opt2.setState({ ...st, slots: [{ name: 'momentum0', shape: [3, 4], values: new Float32Array(12) }] })).toThrow(/shape/);
    opt.dispose();
    opt2.dispose();
    tf.dispose([w, w2, g]);
  });
});

describe.skipIf(tf.getBackend() !== 'tensorflow')('SgdMomentum host-side updates (native CPU backend)', () => {
  it('are bit-identical to the tensor-op updates over random sizes, rates and decays (small vars on the host, large ones not)', () => {
    fc.assert(fc.property(
      fc.record({
        sizes: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 4 }),
        lr: fc.double({ min: 1e-4, max: 0.5, noNaN: true }), mu: fc.double({ min: 0, max: 0.99, noNaN: true }),
        wd: fc.constantFrom(0, 5e-4, 0.013), seed: fc.nat(1000),
      }),
      ({ sizes, lr, mu, wd, seed }) => {
        // One parameter above the host limit as well, so both routes run in the same step.
        const shapes = [...sizes.map((n) => [n]), [HOST_UPDATE_MAX + 1]];
        const run = () => {
          const vars = shapes.map((sh, i) => tf.variable(tf.randomNormal(sh, 0, 1, 'float32', seed + 1 + i)));
          const opt = new SgdMomentum(vars, lr, mu, vars.map(() => wd));
          for (let step = 0; step < 3; step++) {
            // (Seeds start at 1: tfjs treats seed 0 as "no seed".)
            const grads = shapes.map((sh, i) => tf.randomNormal(sh, 0, 1, 'float32', seed + 100 * (step + 1) + i));
            opt.apply(grads);
            tf.dispose(grads);
          }
          const out = vars.map((v) => Array.from(v.dataSync()));
          opt.dispose();
          tf.dispose(vars);
          return out;
        };
        const host = withNativeFastPaths(true, run);
        const ops = withNativeFastPaths(false, run);
        expect(host).toEqual(ops);
      },
    ), { numRuns: 15 });
  });

  it('small parameters really take the host route (no arithmetic kernels), large ones the tensor ops', async () => {
    const arithmetic = async (size: number, on: boolean) => {
      const v = tf.variable(tf.ones([size]));
      const g = tf.ones([size]);
      const opt = new SgdMomentum([v], 0.1, 0.9, [5e-4]);
      const info = await tf.profile(() => withNativeFastPaths(on, () => opt.apply([g])));
      opt.dispose();
      tf.dispose([v, g]);
      return info.kernels.filter((k) => ['Multiply', 'Add', 'Sub'].includes(k.name)).length;
    };
    expect(await arithmetic(8, true)).toBe(0);
    expect(await arithmetic(8, false)).toBeGreaterThan(0);
    expect(await arithmetic(HOST_UPDATE_MAX + 1, true)).toBeGreaterThan(0);
  });

  it('host-side step leaks no tensors', async () => {
    const w = tf.variable(tf.randomNormal([5, 7], 0, 1, 'float32', 3));
    const g = tf.randomNormal([5, 7], 0, 1, 'float32', 4);
    const opt = new SgdMomentum([w], 0.05, 0.9, [5e-4]);
    await assertNoTensorLeak(() => withNativeFastPaths(true, () => opt.apply([g])), { label: 'host sgd step' });
    opt.dispose();
    tf.dispose([w, g]);
  });
});

describe('Adam (PyTorch semantics)', () => {
  it('first step moves every coordinate by lr*g/(|g|+eps) and matches a float64 replica after 5 steps', () => {
    const p = tf.variable(tf.tensor1d([10, 5, 1]));
    const opt = new Adam([p], 0.003);
    const gs = [[0.2, -1e-3, 4], [0.1, 0.5, -2], [0, 0, 0], [1, -1, 1], [-0.3, 0.2, 0.1]];
    let ref = [10, 5, 1];
    let m = [0, 0, 0];
    let v = [0, 0, 0];
    gs.forEach((gv, s) => {
      const g = tf.tensor1d(gv);
      opt.apply([g]);
      g.dispose();
      const t = s + 1;
      m = m.map((mi, i) => 0.9 * mi + 0.1 * gv[i]);
      v = v.map((vi, i) => 0.999 * vi + 0.001 * gv[i] * gv[i]);
      ref = ref.map((r, i) => r - (0.003 / (1 - 0.9 ** t)) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8)));
      if (t === 1) close(p.dataSync(), [10 - 0.003, 5 + 0.003, 1 - 0.003], 1e-6);
    });
    close(p.dataSync(), ref, 1e-6);
    opt.dispose();
    p.dispose();
  });

  it('state round-trips (moments and step count) and the step leaks no tensors', async () => {
    const p = tf.variable(tf.randomNormal([8, 8], 0, 1, 'float32', 3));
    const g = tf.randomNormal([8, 8], 0, 1, 'float32', 4);
    const opt = new Adam([p], 0.01);
    await assertNoTensorLeak(() => opt.apply([g]), { label: 'adam step' });
    const st = await opt.getState();
    expect(st.step).toBe(4);
    const p2 = tf.variable(p.clone());
    const opt2 = new Adam([p2], 0.01);
    opt2.setState(st);
    opt.apply([g]);
    opt2.apply([g]);
    expect(Array.from(p2.dataSync())).toEqual(Array.from(p.dataSync()));
    opt.dispose();
    opt2.dispose();
    tf.dispose([p, p2, g]);
  });
});

// FAB / FAB-T: least-norm adversarial examples against the closed-form boundary distance of linear
// models, the budget semantics of the registry attack, restarts, option checks.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { fab, fabMinimal } from '../../attacks/fab.ts';
import type { Norm } from '../../src/types.ts';
import { accuracy, linearModel, perExampleDistances, randomMlp, randomWeights, rng, trainedModel } from './helpers.ts';

const ETA = 1.05;

/** Images near mid-grey (the box never binds at these distances), [n, 4, 4, 1]. */
function midImages(seed: number, n: number): tf.Tensor4D {
  const r = rng(seed);
  return tf.tensor4d(Float32Array.from({ length: n * 16 }, () => 0.4 + 0.2 * r()), [n, 4, 4, 1]);
}

/**
 * Per image, the exact distance in `norm` from x to the boundary of class y and class s of a linear model:
 * (z_y - z_s) / ||W_y - W_s||_dual for L-inf and L2 (the box does not bind near mid-grey); for L1 the box
 * binds (the best move is on few pixels), so the least L1 move is the fractional knapsack filled by |W_y - W_s|.
 */
function boundaryDistance(x: ArrayLike<number>, i: number, W: number[][], b: number[], y: number, s: number, norm: Norm): number {
  const d = W.length;
  const z = (c: number) => W.reduce((acc, row, j) => acc + x[i * d + j] * row[c], b[c]);
  const g = W.map((row) => row[y] - row[s]);
  if (norm === 'l1') {
    let rest = z(y) - z(s);
    let cost = 0;
    for (const j of g.map((_, k) => k).sort((p, q) => Math.abs(g[q]) - Math.abs(g[p]))) {
      if (rest <= 0) break;
      const t = Math.min(g[j] > 0 ? x[i * d + j] : 1 - x[i * d + j], rest / Math.abs(g[j]));
      rest -= Math.abs(g[j]) * t;
      cost += t;
    }
    return rest > 1e-12 ? Infinity : cost;
  }
  const dual = norm === 'linf' ? g.reduce((a, v) => a + Math.abs(v), 0) : Math.sqrt(g.reduce((a, v) => a + v * v, 0));
  return (z(y) - z(s)) / dual;
}

/** Labels = the linear model's own predictions, and per image the exact least distance to any other class. */
function setup(seed: number, n: number, classes: number, norm: Norm) {
  const W = randomWeights(seed, 16, classes);
  const b = Array.from({ length: classes }, (_, c) => 0.1 * c);
  const model = linearModel(W, b);
  const x = midImages(seed + 1, n);
  const y = tf.tidy(() => tf.argMax(model(x), 1).toInt() as tf.Tensor1D);
  const flat = x.dataSync();
  const labels = Array.from(y.dataSync());
  const others = (i: number) => Array.from({ length: classes }, (_, s) => s).filter((s) => s !== labels[i]);
  const exact = labels.map((yi, i) => Math.min(...others(i).map((s) => boundaryDistance(flat, i, W, b, yi, s, norm))));
  return { W, b, model, x, y, labels, exact, others, flat };
}

describe('fabMinimal on linear models (closed form)', () => {
  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: every norm between the exact boundary distance and eta times it, and the point is adversarial at that distance`, () => {
      const { model, x, y, labels, exact } = setup(3, 12, 4, norm);
      const { adversarial, norms } = fabMinimal(model, x, y, { eps: 0.1, norm, steps: 30 });
      const pred = tf.tidy(() => Array.from(tf.argMax(model(adversarial), 1).dataSync()));
      const dist = perExampleDistances(adversarial.dataSync(), x.dataSync(), 12);
      labels.forEach((yi, i) => {
        // No point closer than the exact distance is adversarial for a linear model; FAB's first step overshoots by eta at most.
        expect(norms[i]).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
        expect(norms[i]).toBeLessThanOrEqual(exact[i] * ETA * (1 + 1e-4));
        // Backward steps then bring it to within 1% (the fixed point of eta = 1.05, beta = 0.9 is about 1.005).
        expect(norms[i]).toBeLessThanOrEqual(exact[i] * 1.01);
        expect(pred[i]).not.toBe(yi);
        expect(dist[norm][i]).toBeCloseTo(norms[i], 5);
      });
      tf.dispose([adversarial, x, y]);
    });
  }

  it('FAB-T: one target gives at least that class\'s boundary distance; all targets give the closest boundary', () => {
    const { W, b, model, x, y, labels, exact, flat } = setup(5, 10, 5, 'linf');
    const logits = tf.tidy(() => model(x).arraySync());
    const mostLikelyWrong = labels.map((yi, i) => logits[i].map((v, k) => [v, k]).filter(([, k]) => k !== yi).sort((p, q) => q[0] - p[0])[0][1]);
    const one = fabMinimal(model, x, y, { eps: 0.1, steps: 30, targetClasses: 1 });
    const all = fabMinimal(model, x, y, { eps: 0.1, steps: 30, targetClasses: 4 });
    labels.forEach((yi, i) => {
      const toTarget = boundaryDistance(flat, i, W, b, yi, mostLikelyWrong[i], 'linf');
      expect(one.norms[i]).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
      // The target's boundary may be crossed through a third class's region first; never later than eta past it.
      expect(one.norms[i]).toBeLessThanOrEqual(toTarget * ETA * (1 + 1e-4));
      expect(all.norms[i]).toBeGreaterThanOrEqual(exact[i] * (1 - 1e-4));
      expect(all.norms[i]).toBeLessThanOrEqual(exact[i] * ETA * (1 + 1e-4));
      expect(all.norms[i]).toBeLessThanOrEqual(one.norms[i]);
    });
    tf.dispose([one.adversarial, all.adversarial, x, y]);
  });

  it('images misclassified already get norm 0 and stay clean', () => {
    const { model, x, y, labels } = setup(7, 6, 3, 'linf');
    const wrong = tf.tensor1d(labels.map((v, i) => (i % 2 === 0 ? (v + 1) % 3 : v)), 'int32');
    const { adversarial, norms } = fabMinimal(model, x, wrong, { eps: 0.1, steps: 5 });
    const a = adversarial.dataSync();
    const clean = x.dataSync();
    for (let i = 0; i < 6; i += 2) {
      expect(norms[i]).toBe(0);
      expect(Array.from(a.subarray(i * 16, (i + 1) * 16))).toEqual(Array.from(clean.subarray(i * 16, (i + 1) * 16)));
    }
    for (let i = 1; i < 6; i += 2) expect(norms[i]).toBeGreaterThan(0);
    tf.dispose([adversarial, x, y, wrong]);
  });
});

describe('fab (budgeted)', () => {
  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: fools exactly what a linear model allows (every image with exact distance <= eps/eta, none beyond eps), clean images otherwise`, () => {
      const { model, x, y, labels, exact } = setup(11, 16, 4, norm);
      const sorted = [...exact].sort((p, q) => p - q);
      const eps = sorted[8];
      const adv = fab(model, x, y, { eps, norm, steps: 30 });
      const pred = tf.tidy(() => Array.from(tf.argMax(model(adv), 1).dataSync()));
      const a = adv.dataSync();
      const clean = x.dataSync();
      const dist = perExampleDistances(a, clean, 16);
      let fooled = 0;
      labels.forEach((yi, i) => {
        expect(dist[norm][i]).toBeLessThanOrEqual(eps + 1e-6);
        if (exact[i] > eps) {
          expect(pred[i]).toBe(yi);
          expect(Array.from(a.subarray(i * 16, (i + 1) * 16))).toEqual(Array.from(clean.subarray(i * 16, (i + 1) * 16)));
        }
        if (exact[i] * ETA <= eps) expect(pred[i]).not.toBe(yi);
        if (pred[i] !== yi) fooled++;
      });
      expect(fooled).toBeGreaterThanOrEqual(exact.filter((e) => e * ETA <= eps).length);
      expect(fooled).toBeGreaterThan(0);
      tf.dispose([adv, x, y]);
    });
  }

  it('agrees with fabMinimal: an image whose least norm found is within eps is fooled', async () => {
    const { model, x, y } = await trainedModel();
    const { adversarial, norms } = fabMinimal(model, x, y, { eps: 0.3, steps: 20 });
    const finite = Array.from(norms).filter((v) => v > 0 && Number.isFinite(v)).sort((p, q) => p - q);
    expect(finite.length).toBeGreaterThan(10);
    const eps = finite[Math.floor(finite.length / 2)];
    const adv = fab(model, x, y, { eps, steps: 20 });
    const pred = tf.tidy(() => Array.from(tf.argMax(model.predict(adv) as tf.Tensor2D, 1).dataSync()));
    const labels = Array.from(y.dataSync());
    norms.forEach((v, i) => {
      if (v <= eps) expect(pred[i]).not.toBe(labels[i]);
    });
    // So accuracy under fab(eps) is at most the share of images FAB could not bring within eps.
    expect(accuracy(model, adv, y)).toBeLessThanOrEqual(Array.from(norms).filter((v) => v > eps).length / norms.length + 1e-9);
    tf.dispose([adversarial, adv, x, y]);
    model.dispose();
  });

  it('restarts: a random start finds what the clean start cannot (zero gradient there), seeded', () => {
    // Class 1's logit is 10·Σ relu(x_j - 0.55): flat at the mid-grey image, so the first run (from the
    // clean image) has no boundary to step to. Any image fooling it has L-inf distance >= 0.55 + 0.05/160 - 0.5.
    const model = (v: tf.Tensor4D) => tf.tidy(() => {
      const bump = tf.mul(tf.sum(tf.relu(tf.sub(tf.reshape(v, [v.shape[0], -1]), 0.55)), 1, true), 10);
      return tf.concat([tf.fill([v.shape[0], 1], 0.05), bump], 1) as tf.Tensor2D;
    });
    const x = tf.fill([3, 4, 4, 1], 0.5) as tf.Tensor4D;
    const y = tf.zeros([3], 'int32') as tf.Tensor1D;
    const bound = 0.05 + 0.05 / 160;
    const one = fabMinimal(model, x, y, { eps: 0.2, steps: 10 });
    expect(Array.from(one.norms)).toEqual([Infinity, Infinity, Infinity]);
    const three = fabMinimal(model, x, y, { eps: 0.2, steps: 10, restarts: 3, seed: 4 });
    const again = fabMinimal(model, x, y, { eps: 0.2, steps: 10, restarts: 3, seed: 4 });
    const other = fabMinimal(model, x, y, { eps: 0.2, steps: 10, restarts: 3, seed: 5 });
    for (const v of three.norms) {
      expect(v).toBeGreaterThanOrEqual(bound * (1 - 1e-5));
      expect(v).toBeLessThan(0.2);
    }
    expect(Array.from(again.norms)).toEqual(Array.from(three.norms));
    expect(Array.from(again.adversarial.dataSync())).toEqual(Array.from(three.adversarial.dataSync()));
    expect(Array.from(other.norms)).not.toEqual(Array.from(three.norms));
    // The budgeted attack: robust to the clean start, fooled with restarts.
    const a1 = fab(model, x, y, { eps: 0.2, steps: 10 });
    const a3 = fab(model, x, y, { eps: 0.2, steps: 10, restarts: 3, seed: 4 });
    expect(accuracy(model, a1, y)).toBe(1);
    expect(accuracy(model, a3, y)).toBe(0);
    tf.dispose([one.adversarial, three.adversarial, again.adversarial, other.adversarial, a1, a3, x, y]);
  });

  it('eps 0 returns the clean images', () => {
    const { model, x, y } = setup(13, 4, 3, 'linf');
    const adv = fab(model, x, y, { eps: 0 });
    expect(Array.from(adv.dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([adv, x, y]);
  });

  it('bad options are errors naming the option, before the model is called', () => {
    const x = midImages(1, 2);
    const y = tf.tensor1d([0, 1], 'int32');
    const model = () => {
      throw new Error('model called');
    };
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ eps: 0.1, steps: 0 }, /fab: steps: must be an integer >= 1/],
      [{ eps: 0.1, restarts: 1.5 }, /fab: restarts: must be an integer >= 1/],
      [{ eps: 0.1, targetClasses: -1 }, /fab: targetClasses: must be an integer >= 0/],
      [{ eps: 0.1, alphaMax: 2 }, /fab: alphaMax must lie in \[0, 1\]/],
      [{ eps: 0.1, beta: -0.1 }, /fab: beta: must be a finite number >= 0/],
      [{ eps: 0.1, eta: 0 }, /fab: eta: must be a finite number > 0/],
      [{ eps: 0.1, norm: 'l0' }, /fab: norm must be "linf", "l2" or "l1"/],
      [{ eps: -1 }, /fab: eps: must be a finite number >= 0/],
      [{ eps: 0.1, step: 3 }, /fab: unknown option "step"/],
    ];
    for (const [options, message] of bad) {
      expect(() => fab(model as never, x, y, options as never)).toThrow(message);
      expect(() => fabMinimal(model as never, x, y, options as never)).toThrow(message);
    }
    tf.dispose([x, y]);
  });
});

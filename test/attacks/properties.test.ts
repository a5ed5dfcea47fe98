// Every attack, on random small models, inputs and budgets: budget, box, shape, dtype, non-mutation, no leak;
// batch independence (no random start) and seeded determinism.
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apgd } from '../../attacks/apgd.ts';
import { apgdL1 } from '../../attacks/apgd_l1.ts';
import { autoAttack, autoAttackL1, autoAttackL2 } from '../../attacks/autoattack.ts';
import { bpda } from '../../attacks/bpda.ts';
import { cw } from '../../attacks/cw.ts';
import { ead } from '../../attacks/ead.ts';
import { deepfool, deepfoolLinf } from '../../attacks/deepfool.ts';
import { fab, fabL1 } from '../../attacks/fab.ts';
import { diFgsm } from '../../attacks/difgsm.ts';
import { fgsm } from '../../attacks/fgsm.ts';
import { miFgsm } from '../../attacks/mifgsm.ts';
import { niFgsm } from '../../attacks/nifgsm.ts';
import { tiFgsm } from '../../attacks/tifgsm.ts';
import { vmiFgsm } from '../../attacks/vmifgsm.ts';
import { vniFgsm } from '../../attacks/vnifgsm.ts';
import { pgdL0 } from '../../attacks/pgd_l0.ts';
import { pgdL1 } from '../../attacks/pgd_l1.ts';
import { hsja, hsjaLinf } from '../../attacks/hsja.ts';
import { ATTACKS } from '../../attacks/index.ts';
import { pgd } from '../../attacks/pgd.ts';
import { siNiFgsm } from '../../attacks/sinifgsm.ts';
import { pgdL2 } from '../../attacks/pgd_l2.ts';
import { simba } from '../../attacks/simba.ts';
import { sparseRs } from '../../attacks/sparse_rs.ts';
import { spsa } from '../../attacks/spsa.ts';
import { square, squareL2 } from '../../attacks/square.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import type { Classifier, Norm } from '../../src/types.ts';
import { perExampleDistances, randomImages, randomLabels, randomMlp, rng } from './helpers.ts';

type Run = (model: Classifier, x: tf.Tensor4D, y: tf.Tensor1D, eps: number, seed: number, classes: number) => tf.Tensor4D;

/** Targets = (label + 1) mod classes, built from the labels' values. */
function shiftedTargets(y: tf.Tensor1D, classes: number): tf.Tensor1D {
  return tf.tensor1d(Array.from(y.dataSync(), (v) => (v + 1) % classes), 'int32');
}

function withTargets(y: tf.Tensor1D, classes: number, f: (t: tf.Tensor1D) => tf.Tensor4D): tf.Tensor4D {
  const t = shiftedTargets(y, classes);
  try {
    return f(t);
  } finally {
    t.dispose();
  }
}

// A randomised model for the EOT variants: Gaussian input noise drawn from a JS stream on every call.
function noisy(model: (x: tf.Tensor4D) => tf.Tensor2D, seed: number): Classifier {
  const r = rng(seed);
  return (x) => tf.tidy(() => model(tf.add(x, tf.mul(tf.tensor(Array.from({ length: x.size }, () => r() - 0.5), x.shape), 0.1)) as tf.Tensor4D));
}

/** Input diversity on square images (growing, so even 1-pixel images have a side to draw); none otherwise. */
const diversity = (x: tf.Tensor4D) => (x.shape[1] === x.shape[2] ? { diversityProb: 0.7, resizeRate: 2.5 } : { diversityProb: 0 });

const CASES: Array<{ name: string; norm: Norm; run: Run }> = [
  { name: 'fgsm', norm: 'linf', run: (m, x, y, eps) => fgsm(m, x, y, { eps }) },
  { name: 'fgsm targeted', norm: 'linf', run: (m, x, y, eps, _s, c) => withTargets(y, c, (t) => fgsm(m, x, y, { eps, targeted: true, targets: t })) },
  { name: 'pgd', norm: 'linf', run: (m, x, y, eps, seed) => pgd(m, x, y, { eps, steps: 3, seed }) },
  { name: 'pgd restarts', norm: 'linf', run: (m, x, y, eps, seed) => pgd(m, x, y, { eps, steps: 2, restarts: 2, seed }) },
  { name: 'pgd targeted margin', norm: 'linf', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => pgd(m, x, y, { eps, steps: 3, seed, targeted: true, targets: t, loss: 'margin' })) },
  { name: 'pgd eot', norm: 'linf', run: (m, x, y, eps, seed) => pgd(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, steps: 2, seed, eotSamples: 2 }) },
  { name: 'pgd-l2', norm: 'l2', run: (m, x, y, eps, seed) => pgdL2(m, x, y, { eps, steps: 3, seed }) },
  { name: 'pgd-l2 restarts targeted', norm: 'l2', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => pgdL2(m, x, y, { eps, steps: 2, restarts: 2, seed, targeted: true, targets: t })) },
  { name: 'apgd', norm: 'linf', run: (m, x, y, eps, seed) => apgd(m, x, y, { eps, steps: 6, seed }) },
  { name: 'apgd l2 restarts', norm: 'l2', run: (m, x, y, eps, seed) => apgd(m, x, y, { eps, steps: 5, seed, norm: 'l2', restarts: 2 }) },
  { name: 'apgd margin targeted', norm: 'linf', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => apgd(m, x, y, { eps, steps: 5, seed, loss: 'margin', targeted: true, targets: t })) },
  { name: 'fab', norm: 'linf', run: (m, x, y, eps) => fab(m, x, y, { eps, steps: 4 }) },
  { name: 'fab-t restarts', norm: 'linf', run: (m, x, y, eps, seed) => fab(m, x, y, { eps, steps: 3, restarts: 2, targetClasses: 2, seed }) },
  { name: 'fab l2', norm: 'l2', run: (m, x, y, eps, seed) => fab(m, x, y, { eps, norm: 'l2', steps: 3, restarts: 2, seed }) },
  { name: 'cw-l2', norm: 'l2', run: (m, x, y, eps) => cw(m, x, y, { eps, steps: 4, searchSteps: 2, initialConst: 1 }) },
  { name: 'cw-l2 targeted confidence', norm: 'l2', run: (m, x, y, eps, _s, c) => withTargets(y, c, (t) => cw(m, x, y, { eps, steps: 3, searchSteps: 2, confidence: 0.5, targeted: true, targets: t })) },
  { name: 'ead', norm: 'l1', run: (m, x, y, eps) => ead(m, x, y, { eps, steps: 4, searchSteps: 2, initialConst: 1 }) },
  { name: 'ead l1 rule targeted confidence', norm: 'l1', run: (m, x, y, eps, _s, c) => withTargets(y, c, (t) => ead(m, x, y, { eps, steps: 3, searchSteps: 2, beta: 0.01, decisionRule: 'l1', confidence: 0.5, targeted: true, targets: t })) },
  { name: 'deepfool', norm: 'l2', run: (m, x, y, eps) => deepfool(m, x, y, { eps, steps: 4 }) },
  { name: 'deepfool-linf candidates', norm: 'linf', run: (m, x, y, eps) => deepfoolLinf(m, x, y, { eps, steps: 3, candidates: 2, overshoot: 0 }) },
  { name: 'square', norm: 'linf', run: (m, x, y, eps, seed) => square(m, x, y, { eps, queries: 8, seed }) },
  { name: 'square targeted ce', norm: 'linf', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => square(m, x, y, { eps, queries: 6, seed, loss: 'ce', targeted: true, targets: t })) },
  { name: 'square eot', norm: 'linf', run: (m, x, y, eps, seed) => square(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, queries: 5, seed, eotSamples: 2, pInit: 0.3 }) },
  { name: 'hsja', norm: 'l2', run: (m, x, y, eps, seed) => hsja(m, x, y, { eps, steps: 2, initEvals: 8, initTries: 5, seed }) },
  { name: 'hsja-linf', norm: 'linf', run: (m, x, y, eps, seed) => hsjaLinf(m, x, y, { eps, steps: 2, initEvals: 8, initTries: 5, seed }) },
  { name: 'autoattack', norm: 'linf', run: (m, x, y, eps, seed) => autoAttack(m, x, y, { eps, steps: 3, targetClasses: 2, queries: 5, seed }) },
  { name: 'square-l2', norm: 'l2', run: (m, x, y, eps, seed) => squareL2(m, x, y, { eps, queries: 8, seed }) },
  { name: 'square-l2 targeted ce', norm: 'l2', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => squareL2(m, x, y, { eps, queries: 6, seed, loss: 'ce', targeted: true, targets: t, pInit: 0.3 })) },
  { name: 'simba', norm: 'l2', run: (m, x, y, eps, seed) => simba(m, x, y, { eps, queries: 8, seed }) },
  { name: 'simba pixel targeted ce eot', norm: 'l2', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => simba(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, queries: 6, seed, basis: 'pixel', stepSize: 0.3, loss: 'ce', targeted: true, targets: t, eotSamples: 2 })) },
  { name: 'autoattack l2', norm: 'l2', run: (m, x, y, eps, seed) => autoAttack(m, x, y, { eps, norm: 'l2', steps: 3, targetClasses: 1, queries: 5, seed }) },
  { name: 'autoattack-l2 (registry function)', norm: 'l2', run: (m, x, y, eps, seed) => autoAttackL2(m, x, y, { eps, steps: 2, targetClasses: 2, queries: 4, seed }) },
  { name: 'pgd-l1', norm: 'l1', run: (m, x, y, eps, seed) => pgdL1(m, x, y, { eps, steps: 3, seed, quantile: 0.5 }) },
  { name: 'pgd-l1 restarts targeted eot', norm: 'l1', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => pgdL1(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, steps: 2, restarts: 2, seed, targeted: true, targets: t, eotSamples: 2 })) },
  { name: 'apgd-l1', norm: 'l1', run: (m, x, y, eps, seed) => apgdL1(m, x, y, { eps, steps: 6, seed }) },
  { name: 'apgd-l1 schedule restarts', norm: 'l1', run: (m, x, y, eps, seed) => apgdL1(m, x, y, { eps, steps: 4, seed, epsSchedule: true, restarts: 2 }) },
  { name: 'apgd-l1 margin targeted', norm: 'l1', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => apgdL1(m, x, y, { eps, steps: 5, seed, loss: 'margin', targeted: true, targets: t, randomStart: false })) },
  { name: 'fab-l1 restarts targeted', norm: 'l1', run: (m, x, y, eps, seed) => fabL1(m, x, y, { eps, steps: 3, restarts: 2, targetClasses: 1, seed }) },
  { name: 'autoattack-l1', norm: 'l1', run: (m, x, y, eps, seed) => autoAttackL1(m, x, y, { eps, steps: 3, targetClasses: 2, restarts: 2, seed }) },
  { name: 'pgd-l0', norm: 'l0', run: (m, x, y, eps, seed) => pgdL0(m, x, y, { eps, steps: 3, seed }) },
  { name: 'pgd-l0 random start', norm: 'l0', run: (m, x, y, eps, seed) => pgdL0(m, x, y, { eps, steps: 2, seed, randomStart: true, restarts: 2 }) },
  { name: 'pgd-l0 restarts targeted eot', norm: 'l0', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => pgdL0(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, steps: 2, restarts: 2, seed, targeted: true, targets: t, eotSamples: 2, stepSize: 0.3 })) },
  { name: 'spsa', norm: 'linf', run: (m, x, y, eps, seed) => spsa(m, x, y, { eps, steps: 3, samples: 4, seed }) },
  { name: 'spsa targeted ce eot', norm: 'linf', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => spsa(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, steps: 2, samples: 3, seed, loss: 'ce', targeted: true, targets: t, eotSamples: 2, queryBatch: 4 })) },
  { name: 'mi-fgsm', norm: 'linf', run: (m, x, y, eps, seed) => miFgsm(m, x, y, { eps, steps: 3, seed }) },
  { name: 'ni-fgsm random start targeted eot', norm: 'linf', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => niFgsm(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, steps: 2, seed, randomStart: true, targeted: true, targets: t, eotSamples: 2 })) },
  { name: 'si-ni-fgsm', norm: 'linf', run: (m, x, y, eps, seed) => siNiFgsm(m, x, y, { eps, steps: 2, seed, scales: 3 }) },
  { name: 'vmi-fgsm random start', norm: 'linf', run: (m, x, y, eps, seed) => vmiFgsm(m, x, y, { eps, steps: 2, seed, varianceSamples: 3, randomStart: true }) },
  { name: 'vni-fgsm margin diversity', norm: 'linf', run: (m, x, y, eps, seed) => vniFgsm(m, x, y, { eps, steps: 2, seed, varianceSamples: 2, loss: 'margin', ...diversity(x) }) },
  { name: 'di-fgsm momentum', norm: 'linf', run: (m, x, y, eps, seed) => diFgsm(m, x, y, { eps, steps: 3, seed, decay: 1, ...diversity(x) }) },
  { name: 'ti-fgsm margin', norm: 'linf', run: (m, x, y, eps, seed) => tiFgsm(m, x, y, { eps, steps: 3, seed, kernelSize: 3, loss: 'margin', ...diversity(x) }) },
  { name: 'sparse-rs', norm: 'l0', run: (m, x, y, eps, seed) => sparseRs(m, x, y, { eps, queries: 8, seed }) },
  { name: 'sparse-rs targeted ce eot', norm: 'l0', run: (m, x, y, eps, seed, c) => withTargets(y, c, (t) => sparseRs(noisy(m as (x: tf.Tensor4D) => tf.Tensor2D, seed), x, y, { eps, queries: 6, seed, loss: 'ce', targeted: true, targets: t, eotSamples: 2, alphaInit: 1 })) },
  {
    name: 'pgd through bpda(rounding)', norm: 'linf',
    run: (m, x, y, eps, seed) => pgd(bpda((v) => tf.div(tf.round(tf.mul(v, 4)), 4), 'identity', m), x, y, { eps, steps: 2, seed }),
  },
];

const caseArb = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 4 }),
  w: fc.integer({ min: 1, max: 4 }),
  c: fc.constantFrom(1, 3),
  classes: fc.integer({ min: 2, max: 5 }),
  eps: fc.oneof(fc.constant(0), fc.double({ min: 1e-4, max: 0.6, noNaN: true }), fc.double({ min: 0.6, max: 3, noNaN: true })),
  seed: fc.integer({ min: 0, max: 1_000_000 }),
});

describe('every attack: budget, box, shape, dtype, non-mutation', () => {
  for (const { name, norm, run } of CASES) {
    it(name, () => {
      fc.assert(
        fc.property(caseArb, ({ batch, h, w, c, classes, eps: rawEps, seed }) => {
          // L0 budgets are whole pixel counts (0 to 9 here, beyond the image's pixels too).
          const eps = norm === 'linf' ? Math.min(rawEps, 1) : norm === 'l0' ? Math.round(rawEps * 3) : rawEps;
          const x = randomImages(seed, [batch, h, w, c]);
          const y = randomLabels(seed + 1, batch, classes);
          const model = randomMlp(seed + 2, h * w * c, classes);
          const before = x.dataSync().slice();
          const adv = run(model, x, y, eps, seed, classes);
          try {
            expect(adv.shape).toEqual(x.shape);
            expect(adv.dtype).toBe('float32');
            expect(adv).not.toBe(x);
            const a = adv.dataSync();
            for (const v of a) expect(v >= 0 && v <= 1).toBe(true);
            const d = perExampleDistances(a, before, batch, c);
            for (const dist of d[norm]) expect(dist).toBeLessThanOrEqual(eps + 1e-6);
            expect(x.isDisposed).toBe(false);
            expect(Array.from(x.dataSync())).toEqual(Array.from(before));
            expect(y.isDisposed).toBe(false);
          } finally {
            tf.dispose([adv, x, y]);
          }
        }),
        { numRuns: 12, seed: 42 },
      );
    });
  }
});

describe('every attack: no tensor leaked per call', () => {
  for (const { name, norm, run } of CASES) {
    it(name, async () => {
      const x = randomImages(7, [2, 3, 3, 1]);
      const y = randomLabels(8, 2, 3);
      const model = randomMlp(9, 9, 3);
      await assertNoTensorLeak(() => run(model, x, y, norm === 'l0' ? 2 : 0.1, 1, 3), { label: name });
      tf.dispose([x, y]);
    });
  }
});

describe('batch independence (no random start)', () => {
  const deterministic: Array<[string, Run]> = [
    ['fgsm', (m, x, y, eps) => fgsm(m, x, y, { eps })],
    ['pgd', (m, x, y, eps) => pgd(m, x, y, { eps, steps: 4, randomStart: false })],
    ['pgd-l2', (m, x, y, eps) => pgdL2(m, x, y, { eps: eps * 3, steps: 4, randomStart: false })],
    ['apgd', (m, x, y, eps) => apgd(m, x, y, { eps, steps: 8, randomStart: false })],
    // Diversity draws are keyed by the image's index: only the first image's path is batch-independent there.
    ['mi-fgsm', (m, x, y, eps) => miFgsm(m, x, y, { eps, steps: 4 })],
    ['ni-fgsm', (m, x, y, eps) => niFgsm(m, x, y, { eps, steps: 4 })],
    ['si-ni-fgsm', (m, x, y, eps) => siNiFgsm(m, x, y, { eps, steps: 3 })],
    ['ti-fgsm without diversity', (m, x, y, eps) => tiFgsm(m, x, y, { eps, steps: 4, kernelSize: 3, diversityProb: 0 })],
  ];
  for (const [name, run] of deterministic) {
    it(`${name}: a batch of 4 equals the 4 examples attacked alone`, () => {
      const x = randomImages(11, [4, 3, 3, 3]);
      const y = randomLabels(12, 4, 4);
      const model = randomMlp(13, 27, 4);
      const whole = run(model, x, y, 0.1, 0, 4);
      const joint = whole.dataSync();
      const per = 27;
      for (let i = 0; i < 4; i++) {
        const xi = tf.slice(x, [i, 0, 0, 0], [1, 3, 3, 3]);
        const yi = tf.slice(y, [i], [1]);
        const alone = run(model, xi, yi, 0.1, 0, 4);
        const got = alone.dataSync();
        for (let j = 0; j < per; j++) expect(Math.abs(got[j] - joint[i * per + j])).toBeLessThanOrEqual(1e-6);
        tf.dispose([xi, yi, alone]);
      }
      tf.dispose([x, y, whole]);
    });
  }
});

describe('seeded determinism', () => {
  for (const info of Object.values(ATTACKS)) {
    it(`${info.name}: same seed same images, another seed other images (random start)`, () => {
      const x = randomImages(21, [3, 4, 4, 1]);
      const model = randomMlp(23, 16, 3);
      // Square returns images the model already gets wrong untouched: label them as predicted.
      const [isSquare, isAuto, isHsja, isSpsa] = [info.name.startsWith('square') || info.name === 'sparse-rs' || info.name === 'simba', info.name.startsWith('autoattack'), info.name.startsWith('hsja'), info.name === 'spsa'];
      const y = isSquare || isAuto || isHsja || isSpsa ? (tf.argMax(model(x), 1).toInt() as tf.Tensor1D) : randomLabels(22, 3, 3);
      // HopSkipJump is minimal-norm: a budget as large as the box keeps whatever point it found.
      const iterations = isHsja ? { steps: 2, initEvals: 10, eps: info.norm === 'l2' ? 4 : 1 } : isSquare ? { queries: 3 } : isAuto ? { steps: 3, ...(info.norm === 'l1' ? {} : { queries: 3 }), eps: info.norm === 'l2' ? 1.5 : info.norm === 'l1' ? 3 : 0.5 } : info.name === 'cw-l2' || info.name === 'ead' ? { steps: 3, searchSteps: 2 } : isSpsa ? { steps: 3, samples: 4 } : { steps: 3 };
      const opts = info.name === 'fgsm' ? { eps: 0.1 } : { eps: info.norm === 'l2' ? 0.5 : info.norm === 'l1' ? 1 : info.norm === 'l0' ? 2 : 0.1, ...iterations };
      // FGSM, C&W and EAD have no randomness (and no seed option): determinism is all there is to check.
      const seeded = 'seed' in info.defaults;
      const a = info.run(model, x, y, { ...opts, ...(seeded ? { seed: 5 } : {}) });
      const b = info.run(model, x, y, { ...opts, ...(seeded ? { seed: 5 } : {}) });
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      // FAB's first run starts at the clean image (no randomness); its restarts' seeds: test/attacks/fab.test.ts.
      if (seeded && !info.name.startsWith('fab')) {
        // Starts differ, so after 1 short step the images differ too (APGD's first step is 2·eps: use its start).
        // (Square's first query is its seeded stripes; SimBA's first directions, pixel by pixel, are seeded.)
        // (AutoAttack returns the points its APGD-CE start found: eps 0.5 fools these images, from seeded starts.)
        // (HopSkipJump's start is seeded uniform noise: one step from different starts ends elsewhere.)
        // (PGD-L0 starts at x by default: its random start is the seeded part.)
        // (SPSA's start is seeded uniform noise in the ball, its directions seeded too.)
        // (The transfer family starts at x by default: its random start is the seeded part.)
        const short = isHsja || isSpsa ? { steps: 1 } : info.name.endsWith('i-fgsm') ? { steps: 1, randomStart: true } : info.name === 'simba' ? { queries: 2, basis: 'pixel' } : isSquare ? { queries: 1 } : info.name === 'pgd-l0' ? { steps: 1, randomStart: true } : isAuto ? (info.norm === 'l1' ? { steps: 3, targetClasses: 0, restarts: 1 } : { steps: 1, queries: 0, targetClasses: 0 }) : info.name.startsWith('apgd') ? { steps: 1, eps: opts.eps } : { steps: 1, stepSize: opts.eps / 10 };
        const c = info.run(model, x, y, { ...opts, ...short, seed: 6 });
        const d = info.run(model, x, y, { ...opts, ...short, seed: 5 });
        expect(Array.from(c.dataSync())).not.toEqual(Array.from(d.dataSync()));
        tf.dispose([c, d]);
      }
      tf.dispose([a, b, x, y]);
    });
  }
});

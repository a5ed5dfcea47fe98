// `jpegdl-robust attack` end to end: a saved model with a JpegLayer, the embedded dataset, a JSON result.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeMinimalNorms, describeQueries } from '../../src/cli/commands/attack.ts';
import { main } from '../../src/cli/main.ts';
import { loadDataset, subset } from '../../src/data/index.ts';
import { JpegLayer } from '../../src/jpeg/layer.ts';
import { saveModel } from '../../src/io/model-io.ts';

describe('jpegdl-robust attack', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jpegdl-attack-'));
    const model = tf.sequential({
      layers: [
        new JpegLayer({ inputShape: [28, 28, 1], quality: 50, name: 'jpeg' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.randomNormal({ seed: 1, stddev: 0.05 }) }),
      ],
    });
    await saveModel(model, join(dir, 'model'));
    model.dispose();
    // A second, differently initialised model: the surrogate of the transfer test.
    const other = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.randomNormal({ seed: 9, stddev: 0.05 }) })],
    });
    await saveModel(other, join(dir, 'other'));
    other.dispose();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
    const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
    try {
      const code = await main(args);
      return { code, out: out.join('\n'), err: err.join('\n') };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  }

  it('writes per-eps results whose eps-0 accuracy is the clean accuracy, non-increasing with BPDA PGD', async () => {
    const outFile = join(dir, 'res.json');
    const r = await run(['attack', '--model', join(dir, 'model'), '--attack', 'pgd', '--eps', '0,4/255,0.3', '-n', '20', '--steps', '3', '--bpda', 'identity', '--batch-size', '8', '--out', outFile]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/pgd \(linf\) on 20 /);
    const res = JSON.parse(readFileSync(outFile, 'utf8'));
    expect(res.results.map((x: { threat: { epsLabel: string } }) => x.threat.epsLabel)).toEqual(['0', '4/255', '0.3']);
    expect(res.bpda).toBe('identity');
    // Clean accuracy of the hard-quantised model on the same seeded subset.
    const model = await (await import('../../src/io/model-io.ts')).loadModel(join(dir, 'model'));
    (model.layers[0] as JpegLayer).mode = 'hard';
    const { test } = await loadDataset({ name: 'fashion-mnist-embedded', seed: 0 });
    const d = subset(test, 20, 0);
    const acc = tf.tidy(() => {
      const p = tf.argMax(model.predict(tf.tensor4d(d.images, [20, 28, 28, 1])) as tf.Tensor2D, 1).dataSync();
      return Array.from(p).filter((v, i) => v === d.labels[i]).length / 20;
    });
    expect(res.results[0].accuracy).toBe(acc);
    expect(res.results[1].accuracy).toBeLessThanOrEqual(res.results[0].accuracy);
    expect(res.results[2].accuracy).toBeLessThanOrEqual(res.results[1].accuracy);
    model.dispose();
  });

  it('--examples writes the attacked images as a PNG grid and a JSON that agrees with the results', async () => {
    const outFile = join(dir, 'ex.json');
    const exDir = join(dir, 'examples');
    const r = await run(['attack', '--model', join(dir, 'model'), '--attack', 'pgd', '--eps', '0,0.1,0.3', '-n', '10', '--steps', '3', '--batch-size', '4', '--examples', exDir, '--examples-n', '6', '--out', outFile]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`wrote ${join(exDir, 'examples.png')}`);
    const res = JSON.parse(readFileSync(outFile, 'utf8'));
    const ex = JSON.parse(readFileSync(join(exDir, 'examples.json'), 'utf8'));
    expect(ex).toMatchObject({ attack: 'pgd', norm: 'linf', dataset: 'fashion-mnist-embedded' });
    expect(ex.rows.map((x: { kind: string; epsLabel?: string }) => `${x.kind}${x.epsLabel ? ' ' + x.epsLabel : ''}`)).toEqual(['clean', 'adversarial 0.1', 'perturbation 0.1', 'adversarial 0.3', 'perturbation 0.3']);
    expect(ex.examples).toHaveLength(6);
    ex.examples.forEach((e: { label: number; cleanPrediction: number; perEps: { fooled: boolean; linf: number; prediction: number }[] }, i: number) => {
      // The pictured images are the judged ones: "fooled" is the negation of the recorded correctness.
      e.perEps.forEach((p, k) => {
        expect(p.fooled).toBe(res.results[k].correct[i] === 0);
        expect(p.linf).toBeLessThanOrEqual([0, 0.1, 0.3][k] + 1e-6);
      });
      expect(e.cleanPrediction).toBe(e.perEps[0].prediction);
    });
    const png = PNG.sync.read(readFileSync(join(exDir, 'examples.png')));
    // 28x28 images drawn at 3x: 6 columns, 5 rows, 2-pixel gaps.
    expect([png.width, png.height]).toEqual([6 * 84 + 7 * 2, 5 * 84 + 6 * 2]);
    const bad = await run(['attack', '--model', join(dir, 'model'), '--attack', 'fab', '--minimal', '--examples', exDir]);
    expect(bad.code).toBe(1);
    expect(bad.err + bad.out).toMatch(/--examples: not with --minimal/);
    const bad2 = await run(['attack', '--model', join(dir, 'model'), '--examples', exDir, '--examples-n', '0']);
    expect(bad2.err + bad2.out).toMatch(/--examples-n: must be an integer >= 1, got 0/);
  });

  it('runs the gradient-free Square attack on the hard-quantised model (no BPDA needed)', async () => {
    const sq = join(dir, 'square.json');
    const pg = join(dir, 'pgd-hard.json');
    const common = ['--model', join(dir, 'model'), '--eps', '0,0.3', '-n', '20', '--jpeg-mode', 'hard', '--batch-size', '10'];
    const r = await run(['attack', ...common, '--attack', 'square', '--queries', '30', '--out', sq]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    await run(['attack', ...common, '--attack', 'pgd', '--steps', '3', '--out', pg]);
    const [s, p] = [sq, pg].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(s.options).toEqual({ seed: 0, queries: 30 });
    expect(s.results[0].accuracy).toBe(p.results[0].accuracy);
    // Hard rounding has a zero gradient almost everywhere; the random search needs none (the model here is
    // untrained, so this is wiring: test/attacks/square.test.ts shows the gap on a model built for it).
    expect(s.results[1].accuracy).toBeLessThanOrEqual(p.results[1].accuracy);
    expect(s.results[1].accuracy).toBeLessThan(s.results[0].accuracy);
    expect((await run(['attack', ...common, '--attack', 'pgd', '--queries', '5'])).err).toMatch(/--queries: pgd has no such option \(it takes: steps, stepSize/);
    expect((await run(['attack', ...common, '--attack', 'square', '--steps', '5'])).err).toMatch(/--steps: square has no such option \(it takes: queries, pInit/);
    // Checked before anything loads: a missing model is not reached.
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'square', '--restarts', '2'])).err).toMatch(/^jpegdl-robust: --restarts: square has no such option/);
    const aa = join(dir, 'aa.json');
    const ra = await run(['attack', ...common, '--attack', 'autoattack', '--steps', '2', '--target-classes', '1', '--queries', '10', '--out', aa]);
    expect(ra.err).toBe('');
    const a = JSON.parse(readFileSync(aa, 'utf8'));
    expect(a.options).toEqual({ seed: 0, steps: 2, queries: 10, targetClasses: 1 });
    // What each stage fooled, printed as AutoAttack prints it and kept in the JSON.
    expect(ra.out).toMatch(/autoattack at 0\.3: apgd-ce fooled \d+/);
    const st = a.results[1].stages as Record<string, number>;
    expect(Object.values(st).reduce((x, v) => x + v, 0) + Math.round(a.results[1].accuracy * 20)).toBe(Math.round(a.results[0].accuracy * 20));
    expect(a.results[0].stages).toBeUndefined();
    expect(a.results[0].accuracy).toBe(p.results[0].accuracy);
    expect(a.results[1].accuracy).toBeLessThanOrEqual(a.results[0].accuracy);
    // The L2 ensemble: every result recorded as L2, Square-L2 among the stages it ran.
    const a2 = join(dir, 'aa-l2.json');
    const r2 = await run(['attack', '--model', join(dir, 'model'), '--eps', '0,1.5', '-n', '20', '--batch-size', '10', '--attack', 'autoattack-l2', '--steps', '2', '--target-classes', '1', '--queries', '10', '--out', a2]);
    expect(r2.err).toBe('');
    const l2 = JSON.parse(readFileSync(a2, 'utf8'));
    expect(l2.norm).toBe('l2');
    expect(l2.results.map((x: { threat: { norm: string } }) => x.threat.norm)).toEqual(['l2', 'l2']);
    expect(l2.results[1].accuracy).toBeLessThanOrEqual(l2.results[0].accuracy);
    // AutoAttack's versions: plus records its stages from the six it runs; a bad version fails before loading.
    const ap = join(dir, 'aa-plus.json');
    const rp = await run(['attack', '--model', join(dir, 'model'), '--eps', '0,0.3', '-n', '20', '--batch-size', '10', '--attack', 'autoattack', '--autoattack-version', 'plus', '--steps', '2', '--restarts', '1', '--target-classes', '1', '--queries', '5', '--out', ap]);
    expect(rp.err).toBe('');
    const plus = JSON.parse(readFileSync(ap, 'utf8'));
    expect(plus.options).toEqual({ seed: 0, steps: 2, restarts: 1, queries: 5, targetClasses: 1, version: 'plus' });
    for (const k of Object.keys(plus.results[1].stages)) expect(['apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t']).toContain(k);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'autoattack', '--autoattack-version', 'fast'])).err).toMatch(/^jpegdl-robust: --autoattack-version: must be one of standard, plus, rand, got "fast"/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'pgd', '--autoattack-version', 'plus'])).err).toMatch(/--autoattack-version: pgd has no such option/);
  });

  it('runs FAB-T and L2 FAB from the command line, with their options checked before loading', async () => {
    const common = ['--model', join(dir, 'model'), '--eps', '0,0.05,0.3', '-n', '12', '--batch-size', '6'];
    const out = join(dir, 'fab.json');
    const r = await run(['attack', ...common, '--attack', 'fab', '--steps', '4', '--target-classes', '2', '--out', out]);
    expect(r.err).toBe('');
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.options).toEqual({ seed: 0, steps: 4, targetClasses: 2 });
    expect(f.norm).toBe('linf');
    expect(f.results[1].accuracy).toBeLessThanOrEqual(f.results[0].accuracy);
    expect(f.results[2].accuracy).toBeLessThanOrEqual(f.results[1].accuracy);
    // --minimal: one least-norm run answers every eps; the budgeted runs fool at least those images.
    const mo = join(dir, 'fab-min.json');
    const rm = await run(['attack', ...common, '--attack', 'fab', '--steps', '4', '--target-classes', '2', '--minimal', '--out', mo]);
    expect(rm.err).toBe('');
    expect(rm.out).toMatch(/least-norm perturbation \(linf\)/);
    const m = JSON.parse(readFileSync(mo, 'utf8'));
    expect(m.minimalNorms).toHaveLength(12);
    expect(m.results[0].accuracy).toBe(f.results[0].accuracy);
    m.results.forEach((r: { accuracy: number }, i: number) => expect(r.accuracy).toBeGreaterThanOrEqual(f.results[i].accuracy));
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'pgd', '--minimal'])).err).toMatch(/--minimal: only the minimal-norm attacks fab, fab-l2, fab-l1, cw-l2, ead, deepfool, deepfool-linf, hsja, hsja-linf take it, not pgd/);
    const l2 = join(dir, 'fab-l2.json');
    expect((await run(['attack', ...common, '--attack', 'fab-l2', '--steps', '3', '--out', l2])).err).toBe('');
    expect(JSON.parse(readFileSync(l2, 'utf8')).results.map((x: { threat: { norm: string } }) => x.threat.norm)).toEqual(['l2', 'l2', 'l2']);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'fab', '--step-size', '0.1'])).err).toMatch(/^jpegdl-robust: --step-size: fab has no such option \(it takes: steps, restarts, targetClasses/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'fab', '--no-random-start'])).err).toMatch(/--no-random-start: fab has no such option/);
  });

  it('runs the L1 attacks (L1 budgets above 1 accepted), records norm l1 and stays within it; L1-only flags checked before loading', async () => {
    const common = ['--model', join(dir, 'other'), '--eps', '0,2,8', '-n', '12', '--batch-size', '6'];
    const out = join(dir, 'apgd-l1.json');
    const r = await run(['attack', ...common, '--attack', 'apgd-l1', '--steps', '6', '--eps-schedule', '--out', out, '--examples', join(dir, 'ex-l1'), '--examples-n', '4']);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/apgd-l1 \(l1\) on 12 /);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.norm).toBe('l1');
    expect(f.options).toEqual({ seed: 0, steps: 6, epsSchedule: true });
    expect(f.results.map((x: { threat: { norm: string; epsLabel: string } }) => `${x.threat.norm} ${x.threat.epsLabel}`)).toEqual(['l1 0', 'l1 2', 'l1 8']);
    expect(f.results[2].accuracy).toBeLessThanOrEqual(f.results[1].accuracy);
    // The example pictures carry each perturbation's L1 size: within its eps.
    const ex = JSON.parse(readFileSync(join(dir, 'ex-l1', 'examples.json'), 'utf8'));
    for (const e of ex.examples) for (const p of e.perEps) expect(p.l1).toBeLessThanOrEqual(p.eps + 1e-6);
    const slide = await run(['attack', ...common, '--attack', 'pgd-l1', '--steps', '4', '--quantile', '0.9']);
    expect(slide.err).toBe('');
    // FAB in L1: one least-norm run answers every eps; its sizes are L1 sizes (no x/255).
    const fm = join(dir, 'fab-l1.json');
    const minimal = await run(['attack', ...common, '--attack', 'fab-l1', '--steps', '5', '--minimal', '--out', fm]);
    expect(minimal.err).toBe('');
    expect(minimal.out).toMatch(/least-norm perturbation \(l1\)/);
    expect(minimal.out).not.toMatch(/\/255\)/);
    const m1 = JSON.parse(readFileSync(fm, 'utf8'));
    expect(m1.minimalNorms).toHaveLength(12);
    m1.results.forEach((r: { threat: { eps: number }; accuracy: number }) => {
      const correct = m1.minimalNorms.filter((v: number | null) => v === null || v > r.threat.eps).length;
      expect(r.accuracy).toBeCloseTo(correct / 12, 10);
    });
    const m = join(dir, 'nope');
    expect((await run(['attack', '--model', m, '--attack', 'pgd', '--quantile', '0.9'])).err).toMatch(/--quantile: pgd has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'apgd', '--eps-schedule'])).err).toMatch(/--eps-schedule: apgd has no such option/);
  });

  it('runs the L0 attacks (budgets in pixels) on the hard-quantised model, records norm l0, stays within it; L0 flags checked before loading', async () => {
    const common = ['--model', join(dir, 'model'), '--jpeg-mode', 'hard', '--eps', '0,1,4', '-n', '12', '--batch-size', '6'];
    const out = join(dir, 'sparse-rs.json');
    const r = await run(['attack', ...common, '--attack', 'sparse-rs', '--queries', '20', '--alpha-init', '0.5', '--out', out, '--examples', join(dir, 'ex-l0'), '--examples-n', '4']);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/sparse-rs \(l0\) on 12 /);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.norm).toBe('l0');
    expect(f.options).toEqual({ seed: 0, queries: 20, alphaInit: 0.5 });
    expect(f.results.map((x: { threat: { norm: string; epsLabel: string; eps: number } }) => `${x.threat.norm} ${x.threat.epsLabel} ${x.threat.eps}`)).toEqual(['l0 0 0', 'l0 1 1', 'l0 4 4']);
    const ex = JSON.parse(readFileSync(join(dir, 'ex-l0', 'examples.json'), 'utf8'));
    for (const e of ex.examples) for (const p of e.perEps) expect(p.l0).toBeLessThanOrEqual(p.eps);
    expect((await run(['attack', ...common, '--attack', 'pgd-l0', '--steps', '3', '--step-size', '0.2'])).err).toBe('');
    const m = join(dir, 'nope');
    expect((await run(['attack', '--model', m, '--attack', 'sparse-rs', '--eps', '0,8/255'])).err).toMatch(/--eps: "8\/255" is not an L0 budget; L0 budgets count changed pixels/);
    expect((await run(['attack', '--model', m, '--attack', 'sparse-rs'])).err).toMatch(/--eps: sparse-rs is an l0 attack and the default budgets are L-inf ones; give l0 budgets, e.g. --eps 0,1,5,10/);
    expect((await run(['attack', '--model', m, '--attack', 'square', '--alpha-init', '0.5', '--eps', '0,0.1'])).err).toMatch(/--alpha-init: square has no such option/);
  });

  it('runs SPSA on the hard-quantised model with its own flags, recorded; its flags refused for other attacks before loading', async () => {
    const out = join(dir, 'spsa.json');
    const r = await run(['attack', '--model', join(dir, 'model'), '--jpeg-mode', 'hard', '--attack', 'spsa', '--eps', '0,0.1', '-n', '12', '--batch-size', '6', '--steps', '4', '--samples', '8', '--delta', '0.05', '--lr', '0.02', '--out', out]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/spsa \(linf\) on 12 /);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.options).toEqual({ seed: 0, steps: 4, samples: 8, delta: 0.05, lr: 0.02 });
    expect(f.results.map((x: { threat: { norm: string; epsLabel: string } }) => `${x.threat.norm} ${x.threat.epsLabel}`)).toEqual(['linf 0', 'linf 0.1']);
    expect(f.results[1].accuracy).toBeLessThanOrEqual(f.results[0].accuracy);
    const m = join(dir, 'nope');
    expect((await run(['attack', '--model', m, '--attack', 'pgd', '--samples', '8'])).err).toMatch(/--samples: pgd has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'square', '--lr', '0.1'])).err).toMatch(/--lr: square has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'spsa', '--delta', 'small'])).err).toMatch(/--delta: "small" is not a number/);
  });

  it('runs SimBA on the hard-quantised model with --basis, --freq-dim, --step-size and --queries, recorded in L2; its flags refused for other attacks before loading', async () => {
    const out = join(dir, 'simba.json');
    const r = await run(['attack', '--model', join(dir, 'model'), '--jpeg-mode', 'hard', '--attack', 'simba', '--eps', '0,1', '-n', '12', '--batch-size', '6', '--queries', '40', '--step-size', '0.5', '--freq-dim', '2', '--stride', '3', '--out', out]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/simba \(l2\) on 12 /);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.options).toEqual({ seed: 0, stepSize: 0.5, queries: 40, freqDim: 2, stride: 3 });
    expect(f.results.map((x: { threat: { norm: string; epsLabel: string } }) => `${x.threat.norm} ${x.threat.epsLabel}`)).toEqual(['l2 0', 'l2 1']);
    expect(f.results[1].accuracy).toBeLessThanOrEqual(f.results[0].accuracy);
    // The query trace: printed for eps > 0 and kept per image in the JSON, agreeing with the correctness.
    expect(r.out).toMatch(/simba at 1: (no image fooled|\d+ images fooled) within 40 queries/);
    expect(f.results[1].queries.budget).toBe(40);
    f.results[1].queries.fooledAt.forEach((t: number, i: number) => expect(t === -1).toBe(f.results[1].correct[i] === 1));
    const m = join(dir, 'nope');
    expect((await run(['attack', '--model', m, '--attack', 'square', '--basis', 'pixel', '--eps', '0,1'])).err).toMatch(/--basis: square has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'pgd-l2', '--freq-dim', '2', '--eps', '0,1'])).err).toMatch(/--freq-dim: pgd-l2 has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'simba', '--freq-dim', 'low', '--eps', '0,1'])).err).toMatch(/--freq-dim: "low" is not a number/);
    expect((await run(['attack', '--model', m, '--attack', 'square', '--stride', '2', '--eps', '0,1'])).err).toMatch(/--stride: square has no such option/);
    expect((await run(['attack', '--model', join(dir, 'model'), '--attack', 'simba', '--basis', 'pixel', '--stride', '2', '--eps', '0,1', '-n', '4'])).err).toMatch(/simba: freqDim and stride belong to basis "dct", not "pixel"/);
  });

  it('runs C&W L2 budgeted and --minimal (deterministic: no seed), its flags checked before loading', async () => {
    const common = ['--model', join(dir, 'model'), '--attack', 'cw-l2', '--eps', '0,0.5,2', '-n', '12', '--batch-size', '6', '--steps', '10', '--search-steps', '2'];
    const out = join(dir, 'cw.json');
    const r = await run(['attack', ...common, '--out', out]);
    expect(r.err).toBe('');
    const c = JSON.parse(readFileSync(out, 'utf8'));
    expect(c.options).toEqual({ steps: 10, searchSteps: 2 });
    expect(c.results.map((x: { threat: { norm: string } }) => x.threat.norm)).toEqual(['l2', 'l2', 'l2']);
    const mo = join(dir, 'cw-min.json');
    const rm = await run(['attack', ...common, '--minimal', '--out', mo]);
    expect(rm.err).toBe('');
    expect(rm.out).toMatch(/least-norm perturbation \(l2\)/);
    const m = JSON.parse(readFileSync(mo, 'utf8'));
    // The same deterministic search: the budgeted run fools exactly the images the least-norm run found within eps.
    m.results.forEach((x: { correct: number[] }, i: number) => expect(x.correct).toEqual(c.results[i].correct));
    // DeepFool the same way (deterministic too): budgeted and least-norm runs agree image by image.
    const df = join(dir, 'df.json');
    const dfm = join(dir, 'df-min.json');
    const dcommon = ['--model', join(dir, 'model'), '--attack', 'deepfool-linf', '--eps', '0,0.05,0.2', '-n', '12', '--batch-size', '6', '--steps', '5', '--overshoot', '0.05', '--candidates', '4'];
    expect((await run(['attack', ...dcommon, '--out', df])).err).toBe('');
    expect((await run(['attack', ...dcommon, '--minimal', '--out', dfm])).err).toBe('');
    const [dj, dm] = [df, dfm].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(dj.norm).toBe('linf');
    expect(dj.options).toEqual({ steps: 5, overshoot: 0.05, candidates: 4 });
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'pgd', '--overshoot', '0.1'])).err).toMatch(/--overshoot: pgd has no such option/);
    expect(dm.minimalNorms).toHaveLength(12);
    dm.results.forEach((x: { correct: number[] }, i: number) => expect(x.correct.reduce((a, v) => a + v, 0)).toBeGreaterThanOrEqual(dj.results[i].correct.reduce((a: number, v: number) => a + v, 0)));
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'cw-l2', '--search-steps', 'x'])).err).toMatch(/--search-steps: "x" is not a number/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'pgd', '--confidence', '1'])).err).toMatch(/--confidence: pgd has no such option/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'cw-l2', '--restarts', '2'])).err).toMatch(/--restarts: cw-l2 has no such option/);
  });

  it('runs EAD in the L1 ball budgeted and --minimal with --beta and --decision-rule, its flags checked before loading', async () => {
    const common = ['--model', join(dir, 'model'), '--attack', 'ead', '--eps', '0,2,8', '-n', '12', '--batch-size', '6', '--steps', '10', '--search-steps', '2', '--beta', '0.01', '--decision-rule', 'l1'];
    const [out, mo] = [join(dir, 'ead.json'), join(dir, 'ead-min.json')];
    expect((await run(['attack', ...common, '--out', out])).err).toBe('');
    const rm = await run(['attack', ...common, '--minimal', '--out', mo]);
    expect(rm.err).toBe('');
    expect(rm.out).toMatch(/least-norm perturbation \(l1\)/);
    const [c, m] = [out, mo].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(c.options).toEqual({ steps: 10, searchSteps: 2, beta: 0.01, decisionRule: 'l1' });
    expect(c.results.map((x: { threat: { norm: string } }) => x.threat.norm)).toEqual(['l1', 'l1', 'l1']);
    // Deterministic: the budgeted run fools at least the images the least-norm run found within eps
    // (and the projection of a larger example into the ball may fool more).
    m.results.forEach((x: { correct: number[] }, i: number) => x.correct.forEach((v, j) => { if (!v) expect(Number(c.results[i].correct[j])).toBe(0); }));
    expect(m.results[2].correct.filter((v: number) => !v).length).toBeGreaterThan(0);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'ead', '--beta', 'big'])).err).toMatch(/--beta: "big" is not a number/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'cw-l2', '--beta', '0.1', '--eps', '0,1'])).err).toMatch(/--beta: cw-l2 has no such option/);
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'ead'])).err).toMatch(/--eps: ead is an l1 attack and the default budgets are L-inf ones/);
  });

  it('runs HopSkipJump (labels only), budgeted and --minimal, and they agree image by image', async () => {
    const common = ['--model', join(dir, 'other'), '--attack', 'hsja', '--eps', '0,1,3', '-n', '30', '--batch-size', '10', '--steps', '3'];
    const out = join(dir, 'hsja.json');
    const mo = join(dir, 'hsja-min.json');
    const r = await run(['attack', ...common, '--out', out]);
    expect(r.err).toBe('');
    const rm = await run(['attack', ...common, '--minimal', '--out', mo]);
    expect(rm.err).toBe('');
    expect(rm.out).toMatch(/least-norm perturbation \(l2\)/);
    const [h, m] = [out, mo].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(h.options).toEqual({ seed: 0, steps: 3 });
    expect(h.results.map((x: { threat: { norm: string } }) => x.threat.norm)).toEqual(['l2', 'l2', 'l2']);
    expect(h.results[2].accuracy).toBeLessThanOrEqual(h.results[1].accuracy);
    expect(h.results[2].accuracy).toBeLessThan(h.results[0].accuracy);
    // The same seeded search per batch: the budgeted run fools exactly the images found within eps.
    m.results.forEach((x: { correct: number[] }, i: number) => expect(x.correct).toEqual(h.results[i].correct));
    expect((await run(['attack', '--model', join(dir, 'nope'), '--attack', 'hsja', '--restarts', '2'])).err).toMatch(/^jpegdl-robust: --restarts: hsja has no such option \(it takes: steps, initEvals, maxEvals, gamma, initTries, queries, seed\)/);
  });

  it('runs FGSM (deterministic: no per-batch seed is passed to it)', async () => {
    const out = join(dir, 'fgsm.json');
    const r = await run(['attack', '--model', join(dir, 'model'), '--attack', 'fgsm', '--eps', '0,0.1', '-n', '12', '--batch-size', '5', '--out', out]);
    expect(r.err).toBe('');
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.options).toEqual({});
    expect(f.results[1].accuracy).toBeLessThanOrEqual(f.results[0].accuracy);
  });

  it('transfer (--surrogate): crafted on the surrogate, judged by --model; crafting on the model itself is the white-box attack', async () => {
    const common = ['--model', join(dir, 'model'), '--attack', 'fgsm', '--eps', '0,0.1,0.3', '-n', '20', '--batch-size', '10'];
    const [white, self, other] = ['white', 'self', 'other'].map((k) => join(dir, `tr-${k}.json`));
    expect((await run(['attack', ...common, '--out', white])).err).toBe('');
    const rs = await run(['attack', ...common, '--surrogate', join(dir, 'model'), '--surrogate-jpeg-mode', 'soft', '--out', self]);
    expect(rs.err).toBe('');
    expect(rs.out).toMatch(/crafted on .*model \[soft\]/);
    expect((await run(['attack', ...common, '--surrogate', join(dir, 'other'), '--out', other])).err).toBe('');
    const [w, s, o] = [white, self, other].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(s.results.map((r: { correct: number[] }) => r.correct)).toEqual(w.results.map((r: { correct: number[] }) => r.correct));
    expect(o.surrogate).toBe(join(dir, 'other'));
    expect(o.results[0].accuracy).toBe(w.results[0].accuracy);
    expect(o.results.slice(1).map((r: { correct: number[] }) => r.correct)).not.toEqual(w.results.slice(1).map((r: { correct: number[] }) => r.correct));
    // Several surrogates: the logit ensemble; two copies of one model are that model.
    const [twice, both] = ['twice', 'both'].map((k) => join(dir, `tr-${k}.json`));
    expect((await run(['attack', ...common, '--surrogate', `${join(dir, 'other')},${join(dir, 'other')}`, '--out', twice])).err).toBe('');
    const rb = await run(['attack', ...common, '--surrogate', `${join(dir, 'other')},${join(dir, 'model')}`, '--surrogate-jpeg-mode', 'soft', '--out', both]);
    expect(rb.err).toBe('');
    const [t2, b2] = [twice, both].map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(t2.results.map((r: { correct: number[] }) => r.correct)).toEqual(o.results.map((r: { correct: number[] }) => r.correct));
    expect(b2.surrogate).toBe(`${join(dir, 'other')},${join(dir, 'model')}`);
    expect(b2.results.slice(1).map((r: { correct: number[] }) => r.correct)).not.toEqual(o.results.slice(1).map((r: { correct: number[] }) => r.correct));
    expect((await run(['attack', ...common, '--surrogate', `${join(dir, 'other')},${join(dir, 'nope')}`])).err).toMatch(/nope/);
    expect((await run(['attack', ...common, '--surrogate-jpeg-mode', 'soft'])).err).toMatch(/--surrogate-jpeg-mode: needs --surrogate/);
    expect((await run(['attack', ...common, '--surrogate', join(dir, 'other'), '--surrogate-jpeg-mode', 'hard'])).err).toMatch(/--surrogate-jpeg-mode: the model in .*other has no JpegLayer/);
  });

  it('runs the transfer family (di-fgsm with momentum, smoothing and look-ahead; vni-fgsm with scales) crafted on a surrogate, its flags recorded; refused for other attacks before loading', async () => {
    const out = join(dir, 'difgsm.json');
    const r = await run(['attack', '--model', join(dir, 'model'), '--surrogate', join(dir, 'other'), '--attack', 'di-fgsm', '--eps', '0,0.1,0.3', '-n', '12', '--batch-size', '6', '--decay', '1', '--nesterov', '--diversity-prob', '0.8', '--resize-rate', '1.2', '--kernel-size', '3', '--kernel-sigma', '2', '--steps', '4', '--out', out]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/di-fgsm \(linf\) on 12 /);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    expect(f.options).toEqual({ seed: 0, steps: 4, decay: 1, nesterov: true, diversityProb: 0.8, resizeRate: 1.2, kernelSize: 3, kernelSigma: 2 });
    expect(f.surrogate).toBe(join(dir, 'other'));
    expect(f.results.map((x: { threat: { norm: string; epsLabel: string } }) => `${x.threat.norm} ${x.threat.epsLabel}`)).toEqual(['linf 0', 'linf 0.1', 'linf 0.3']);
    const vout = join(dir, 'vnifgsm.json');
    expect((await run(['attack', '--model', join(dir, 'model'), '--attack', 'vni-fgsm', '--eps', '0,0.1', '-n', '6', '--batch-size', '6', '--steps', '2', '--variance-samples', '2', '--variance-beta', '1', '--scales', '2', '--out', vout])).err).toBe('');
    expect(JSON.parse(readFileSync(vout, 'utf8')).options).toEqual({ seed: 0, steps: 2, scales: 2, varianceSamples: 2, varianceBeta: 1 });
    const m = join(dir, 'nope');
    expect((await run(['attack', '--model', m, '--attack', 'pgd', '--decay', '1'])).err).toMatch(/--decay: pgd has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'square', '--variance-samples', '4'])).err).toMatch(/--variance-samples: square has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'apgd', '--kernel-size', '5'])).err).toMatch(/--kernel-size: apgd has no such option/);
    expect((await run(['attack', '--model', m, '--attack', 'mi-fgsm', '--diversity-prob', 'half'])).err).toMatch(/--diversity-prob: "half" is not a number/);
    expect((await run(['attack', '--model', join(dir, 'model'), '--attack', 'ti-fgsm', '--kernel-size', '4', '-n', '4'])).err).toMatch(/ti-fgsm: kernelSize must be an odd integer >= 1/);
  });

  it('summarises least-norm sizes: quartiles over the images fooled, x/255 only for L-inf', () => {
    const sizes = Float64Array.from([0, 0.1, 0.2, 0.3, Infinity]);
    expect(describeMinimalNorms(sizes, 'l2')).toBe('least-norm perturbation (l2) over the 3 images fooled: median 0.200, quartiles 0.150 - 0.250; 1 misclassified clean, 1 with none found');
    expect(describeMinimalNorms(sizes, 'linf')).toBe('least-norm perturbation (linf) over the 3 images fooled: median 0.200 (51.00/255), quartiles 0.150 (38.25/255) - 0.250 (63.75/255); 1 misclassified clean, 1 with none found');
    expect(describeMinimalNorms(Float64Array.from([Infinity]), 'l2')).toBe('least-norm perturbation (l2): no image fooled; 0 misclassified clean, 1 with none found');
  });

  it('summarises a query trace: mean, median and quartiles over the images fooled, and the late ones', () => {
    expect(describeQueries([0, -1, 1, 3, 10, 90], 100)).toBe('4 images fooled within 100 queries: mean 26.0, median 6.5, quartiles 2.5 - 30; 1 after half the budget (still finding images: more queries would likely fool more); 1 misclassified clean');
    expect(describeQueries([2, 4], 10)).toBe('2 images fooled within 10 queries: mean 3.0, median 3, quartiles 2.5 - 3.5; 0 after half the budget; 0 misclassified clean');
    expect(describeQueries([0, -1], 10)).toBe('no image fooled within 10 queries; 1 misclassified clean');
  });

  it('--defence attacks the model behind an input defence: PGD is stuck on 2-bit colour, BPDA moves it', async () => {
    const common = ['attack', '--model', join(dir, 'other'), '--attack', 'pgd', '--eps', '0,0.3', '-n', '40', '--steps', '5', '--no-random-start', '--defence', 'bits:2'];
    const stuck = await run([...common, '--out', join(dir, 'def1.json')]);
    expect(stuck.code, stuck.err).toBe(0);
    expect(stuck.out).toMatch(/behind bits:2/);
    const a = JSON.parse(readFileSync(join(dir, 'def1.json'), 'utf8'));
    expect(a.defence).toBe('bits:2');
    // Rounding's gradient is zero: without a random start PGD leaves every image as it was.
    expect(a.results[0].accuracy).toBeGreaterThan(0);
    expect(a.results[1].correct).toEqual(a.results[0].correct);
    const moved = await run([...common, '--bpda', 'identity', '--out', join(dir, 'def2.json')]);
    expect(moved.code, moved.err).toBe(0);
    const b = JSON.parse(readFileSync(join(dir, 'def2.json'), 'utf8'));
    expect(b.results[0].accuracy).toBe(a.results[0].accuracy);
    expect(b.results[1].accuracy).toBeLessThan(b.results[0].accuracy);
    expect((await run(['attack', '--model', join(dir, 'model'), '--defence', 'jpeg:75'])).err).toMatch(/--defence: the model in .* already has a JpegLayer/);
    expect((await run([...common.slice(0, -2), '--defence', 'blur:3'])).err).toMatch(/--defence: "blur:3" is not a defence/);
    expect((await run([...common, '--jpeg-mode', 'hard'])).err).toMatch(/--jpeg-mode: the model in .*other behind bits:2 has no JpegLayer/);
  });

  it('--defence rjpeg draws its qualities from --seed: the same command gives the same numbers, with BPDA and EOT through it', async () => {
    const cmd = (out: string) => ['attack', '--model', join(dir, 'other'), '--attack', 'pgd', '--eps', '0,0.3', '-n', '20', '--steps', '3', '--defence', 'rjpeg:20-60:block', '--bpda', 'identity', '--eot', '2', '--out', join(dir, out)];
    const first = await run(cmd('rj1.json'));
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/behind rjpeg:20-60:block, BPDA identity/);
    expect((await run(cmd('rj2.json'))).code).toBe(0);
    const [a, b] = ['rj1.json', 'rj2.json'].map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    expect(b.results).toEqual(a.results);
    expect(a.options.eotSamples).toBe(2);
    expect(a.results[1].accuracy).toBeLessThan(a.results[0].accuracy);
    expect(first.err).not.toMatch(/draws new randomness/);
    // Without --eot the command says what EOT is for.
    const one = await run(cmd('rj3.json').filter((v, i, all) => v !== '--eot' && all[i - 1] !== '--eot'));
    expect(one.code, one.err).toBe(0);
    expect(one.err).toMatch(/note: the model behind rjpeg:20-60:block draws new randomness on every call .* --eot 10/);
    // An attack without EOT is told so instead of being pointed at a flag it rejects.
    const df = await run(['attack', '--model', join(dir, 'other'), '--attack', 'deepfool', '--eps', '0,0.3', '-n', '10', '--defence', 'rjpeg:20-60', '--bpda', 'identity']);
    expect(df.code, df.err).toBe(0);
    expect(df.err).toMatch(/deepfool cannot average over draws; judge the model by an attack that can/);
  });

  it('--defence rrp draws its resizes and offsets from --seed: the same command gives the same numbers, EOT through it, no BPDA needed', async () => {
    const cmd = (out: string, ...extra: string[]) => ['attack', '--model', join(dir, 'other'), '--attack', 'pgd', '--eps', '0,0.3', '-n', '20', '--steps', '3', '--defence', 'rrp:20-28:bilinear', ...extra, '--out', join(dir, out)];
    const first = await run(cmd('rrp1.json', '--eot', '2'));
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/behind rrp:20-28:bilinear/);
    expect((await run(cmd('rrp2.json', '--eot', '2'))).code).toBe(0);
    const [a, b] = ['rrp1.json', 'rrp2.json'].map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    expect(b.results).toEqual(a.results);
    expect(a.results[1].accuracy).toBeLessThan(a.results[0].accuracy);
    expect(first.err).not.toMatch(/draws new randomness/);
    const one = await run(cmd('rrp3.json'));
    expect(one.err).toMatch(/note: the model behind rrp:20-28:bilinear draws new randomness on every call .* --eot 10/);
    const bpda = await run(cmd('rrp4.json', '--bpda', 'identity'));
    expect(bpda.err).toMatch(/--bpda: the model in .*other behind rrp:20-28:bilinear has no JpegLayer or squeezing layer to approximate \(that defence is differentiable; attack it without --bpda\)/);
  });

  it('--defence tvm with --bpda identity and --eot (Athalye et al.\'s attack on it): seeded masks, the same command gives the same numbers, and without --eot it is told to add it', async () => {
    const cmd = (out: string, ...extra: string[]) => ['attack', '--model', join(dir, 'other'), '--attack', 'pgd', '--eps', '0,0.3', '-n', '20', '--steps', '3', '--defence', 'tvm:0.5', ...extra, '--out', join(dir, out)];
    const first = await run(cmd('tvm1.json', '--bpda', 'identity', '--eot', '2'));
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/behind tvm:0\.5, BPDA identity/);
    expect(first.err).not.toMatch(/draws new randomness/);
    expect((await run(cmd('tvm2.json', '--bpda', 'identity', '--eot', '2'))).code).toBe(0);
    const [a, b] = ['tvm1.json', 'tvm2.json'].map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    expect(b.results).toEqual(a.results);
    expect(a.results[1].accuracy).toBeLessThan(a.results[0].accuracy);
    expect(a.results.map((r: { threat: { norm: string; epsLabel: string } }) => `${r.threat.norm} ${r.threat.epsLabel}`)).toEqual(['linf 0', 'linf 0.3']);
    const one = await run(cmd('tvm3.json'));
    expect(one.err).toMatch(/note: the model behind tvm:0\.5 draws new randomness on every call .* --eot 10/);
  });

  it('rejects bad flags with a message naming them', async () => {
    const m = join(dir, 'model');
    expect((await run(['attack', '--model', m, '--attack', 'cw'])).err).toMatch(/unknown attack "cw"/);
    expect((await run(['attack', '--model', m, '--eps', '8'])).err).toMatch(/--eps: "8" .* did you mean 8\/255/);
    expect((await run(['attack', '--model', m, '--attack', 'apgd-l1'])).err).toMatch(/--eps: apgd-l1 is an l1 attack and the default budgets are L-inf ones; give l1 budgets, e.g. --eps 0,2,4,8/);
    expect((await run(['attack', '--model', m, '--attack', 'deepfool'])).err).toMatch(/--eps: deepfool is an l2 attack .* e.g. --eps 0,0.25,0.5,1/);
    expect((await run(['attack', '--model', m, '--bpda', 'round'])).err).toMatch(/--bpda: must be identity or soft/);
    expect((await run(['attack', '--model', m, '--steps', 'ten'])).err).toMatch(/--steps: "ten" is not a number/);
    expect((await run(['attack', '--model', m, '--attack', 'fgsm', '--steps', '3'])).err).toMatch(/fgsm takes no --steps/);
    expect((await run(['attack', '--model', join(dir, 'nope')])).err).toMatch(/nope/);
  });
});

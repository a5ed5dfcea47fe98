import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSweep, cellSeed, mergeStages, type AttackFn, type SweepOptions } from '../../src/eval/sweep.ts';
import { getAttack } from '../../attacks/index.ts';
import { loadRecords, unpackBits, type CellRecord } from '../../src/eval/records.ts';
import { parseEpsilonList } from '../../src/eps.ts';
import { resizePadDefended } from '../../src/defences/resize-pad.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

// A 2-class linear model on 2x2x1 images: logit_k = <w_k, x>. Under an L-inf FGSM step of size eps
// (no clipping: pixels stay in [0.3,0.7]) the margin of the true class drops by exactly eps*||w_y - w_o||_1.
const W = [[1, -2], [0.5, 1], [-1, 0.25], [2, -1]]; // [4 pixels, 2 classes]
const linear = (x: tf.Tensor4D) => tf.tidy(() => x.reshape([x.shape[0], 4]).matMul(tf.tensor2d(W)) as tf.Tensor2D);

/** Tiny FGSM injected instead of the registry: x + eps*sign(grad CE), clipped to [0,1]. */
const tinyFgsm: AttackFn = (model, images, labels, options) => tf.tidy(() => {
  const f = model as (x: tf.Tensor4D) => tf.Tensor2D;
  const g = tf.grad((x: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels.toInt(), 2), f(x as tf.Tensor4D)))(images);
  return images.add(g.sign().mul(options.eps as number)).clipByValue(0, 1) as tf.Tensor4D;
});

function data(n = 24, seed = 3) {
  const x = tf.randomUniform([n, 2, 2, 1], 0.3, 0.7, 'float32', seed) as tf.Tensor4D;
  const y = tf.tidy(() => linear(x).argMax(-1).add(tf.randomUniform([n], 0, 1, 'float32', seed + 1).greater(0.8).toInt()).mod(2).toFloat()) as tf.Tensor1D;
  return { x, y };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'jpegdl-sweep-'));
const EPS = parseEpsilonList('0,4/255,32/255,64/255'); // x in [0.3,0.7]: no clipping up to 64/255

function options(over: Partial<SweepOptions> & Pick<SweepOptions, 'images' | 'labels'>): SweepOptions {
  return { models: [{ name: 'lin', variant: 'baseline', model: linear }], attacks: [{ name: 'tiny', fn: tinyFgsm }], epsilons: EPS, batchSize: 7, seed: 1, outDir: tmp(), progressBar: false, ...over };
}

describe('runSweep', () => {
  it('matches the closed form of FGSM on a linear binary classifier', async () => {
    const { x, y } = data();
    const res = await runSweep(options({ images: x, labels: y }));
    expect(res.records).toHaveLength(1 + EPS.length);
    const xs = x.dataSync(), ys = y.dataSync();
    for (const r of res.records) {
      let correct = 0;
      for (let i = 0; i < ys.length; i++) {
        const yi = ys[i], o = 1 - yi;
        let margin = 0, l1 = 0;
        for (let p = 0; p < 4; p++) { margin += xs[i * 4 + p] * (W[p][yi] - W[p][o]); l1 += Math.abs(W[p][yi] - W[p][o]); }
        if (margin - r.threat.eps * l1 > 0) correct++;
      }
      expect(r.correct, `${r.attack} ${r.threat.epsLabel}`).toBe(correct);
      expect(r.accuracy).toBeCloseTo(correct / ys.length, 12);
      // sign steps have size exactly eps on every pixel (no clipping here)
      expect(r.maxNorm).toBeCloseTo(r.threat.eps, 6);
      expect(r.meanNorm).toBeCloseTo(r.threat.eps, 6);
    }
    // not vacuous: the attack changes the outcome at the larger budgets
    expect(new Set(res.records.map((r) => r.correct)).size).toBeGreaterThan(1);
    const clean = res.records.find((r) => r.attack === 'clean')!;
    const at0 = res.records.find((r) => r.attack === 'tiny' && r.threat.eps === 0)!;
    expect(at0.correctBits).toBe(clean.correctBits);
    // success rate = clean-correct images flipped / clean-correct images
    const big = res.records.find((r) => r.threat.epsLabel === '64/255')!;
    const cb = unpackBits(clean.correctBits, 24), ab = unpackBits(big.correctBits, 24);
    let flipped = 0;
    for (let i = 0; i < 24; i++) if (cb[i] && !ab[i]) flipped++;
    expect(big.successRate).toBeCloseTo(flipped / clean.correct, 12);
    expect(big.threat).toEqual({ norm: 'linf', eps: 64 / 255, epsLabel: '64/255', bounds: [0, 1] });
    tf.dispose([x, y]);
  });

  it('resumes after a kill: keeps finished cells, drops the torn line, redoes only that cell, same numbers', async () => {
    const { x, y } = data();
    let calls = 0;
    const counting: AttackFn = (m, a, b, o) => { calls++; return tinyFgsm(m, a, b, o); };
    const outDir = tmp();
    const opts = options({ images: x, labels: y, outDir, attacks: [{ name: 'tiny', fn: counting }] });
    const first = await runSweep(opts);
    const path = first.recordsPath;
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(5);
    // Simulate the kill: the last cell was half-written.
    writeFileSync(path, lines.slice(0, 4).join('\n') + '\n');
    appendFileSync(path, lines[4].slice(0, 50));
    calls = 0;
    const second = await runSweep(opts);
    expect(second.ran).toBe(1);
    expect(second.skipped).toBe(4);
    expect(second.droppedTail).toBe(lines[4].slice(0, 50));
    expect(calls).toBe(Math.ceil(24 / 7)); // one cell's batches
    const strip = (rs: typeof first.records) => rs.map(({ wallTimeMs, finishedAt, ...r }) => r);
    expect(strip(second.records)).toEqual(strip(first.records));
    expect(loadRecords(path).records).toHaveLength(5);
    // A third run does nothing.
    calls = 0;
    const third = await runSweep(opts);
    expect([third.ran, calls]).toEqual([0, 0]);
    tf.dispose([x, y]);
  });

  it('is deterministic for a seed, and derives distinct cell seeds', async () => {
    const { x, y } = data();
    const seen: number[] = [];
    const noisy: AttackFn = (m, a, b, o) => { seen.push(o.seed as number); return tf.tidy(() => a.add(tf.randomUniform(a.shape, -1, 1, 'float32', o.seed as number).sign().mul(o.eps as number)).clipByValue(0, 1) as tf.Tensor4D); };
    const run = async () => (await runSweep(options({ images: x, labels: y, attacks: [{ name: 'noise', fn: noisy, seeded: true }] }))).records.map((r) => r.correctBits);
    const a = await run();
    const seedsA = seen.splice(0);
    const b = await run();
    expect(b).toEqual(a);
    expect(seen).toEqual(seedsA);
    expect(new Set(seedsA).size).toBe(seedsA.length);
    expect(cellSeed(1, 'a')).not.toBe(cellSeed(2, 'a'));
    tf.dispose([x, y]);
  });

  it('switches JPEG modes per column and restores the mode', async () => {
    const { x, y } = data();
    let mode = 'soft';
    const modes: string[] = [];
    const model = (t: tf.Tensor4D) => { modes.push(mode); return linear(mode === 'hard' ? (t.mul(0) as tf.Tensor4D) : t); };
    const res = await runSweep(options({ images: x, labels: y, epsilons: parseEpsilonList('0'), models: [{ name: 'j', variant: 'jpeg-dl', model, jpegModes: ['soft', 'hard'], setJpegMode: (m) => { mode = m; } }] }));
    expect(res.records.map((r) => r.jpegMode)).toEqual(['soft', 'soft', 'hard', 'hard']);
    expect(new Set(modes)).toEqual(new Set(['soft', 'hard']));
    const hard = res.records.find((r) => r.jpegMode === 'hard')!;
    expect(hard.correct).toBe(Array.from(y.dataSync()).filter((v) => v === 0).length); // zero input: logits tie -> argmax 0
    tf.dispose([x, y]);
  });

  it('transfer attacks: crafted on the surrogate, judged by each model (closed form); the surrogate keys never reach the attack', async () => {
    const { x, y } = data();
    const W2 = [[-1, 2], [1, 0.5], [0.5, -1], [-2, 1]];
    const other = (t: tf.Tensor4D) => tf.tidy(() => t.reshape([t.shape[0], 4]).matMul(tf.tensor2d(W2)) as tf.Tensor2D);
    const seen: Record<string, unknown>[] = [];
    const spy: AttackFn = (m, a, b, o) => (seen.push(o), tinyFgsm(m, a, b, o));
    const res = await runSweep(options({
      images: x, labels: y,
      models: [{ name: 'lin', variant: 'baseline', model: linear }, { name: 'other', variant: 'baseline', model: other }],
      attacks: [{ name: 'tiny', fn: spy }, { name: 'tiny', fn: spy, params: { surrogate: 'other' } }, { name: 'tiny', fn: spy, params: { surrogate: 'lin' } }, { name: 'tiny', fn: spy, params: { surrogate: 'other+lin' } }],
    }));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((o) => !('surrogate' in o) && !('surrogateMode' in o))).toBe(true);
    const xs = x.dataSync();
    const ys = Array.from(y.dataSync());
    // FGSM on a 2-class linear surrogate moves each pixel by eps·sign(w_other - w_label) (no clipping here).
    const expected = (judge: number[][], from: number[][], eps: number) => ys.map((yi, i) => {
      const o = 1 - yi;
      const adv = [0, 1, 2, 3].map((j) => xs[i * 4 + j] + eps * Math.sign(from[j][o] - from[j][yi]));
      const z = [0, 1].map((c) => adv.reduce((s, v, j) => s + v * judge[j][c], 0));
      return (z[1] > z[0] ? 1 : 0) === yi ? 1 : 0;
    });
    // The ensemble "other+lin" crafts on the mean of the two models' logits: a linear model with the mean weights.
    const Ws: Record<string, number[][]> = { lin: W, other: W2, 'other+lin': W.map((row, j) => row.map((v, c) => (v + W2[j][c]) / 2)) };
    for (const r of res.records.filter((q) => q.attack === 'tiny' && q.threat.eps > 0)) {
      const from = (r.attackParams.surrogate as string | undefined) ?? r.model;
      expect(Array.from(unpackBits(r.correctBits, r.n))).toEqual(expected(Ws[r.model], Ws[from], r.threat.eps));
    }
    // Crafting on the evaluated model itself is the white-box attack, in its own cell.
    const cell = (model: string, sur: string | undefined, eps: string) => res.records.find((q) => q.model === model && q.attack === 'tiny' && q.attackParams.surrogate === sur && q.threat.epsLabel === eps)!;
    expect(cell('lin', 'lin', '32/255').correctBits).toBe(cell('lin', undefined, '32/255').correctBits);
    expect(cell('lin', 'other', '32/255').correctBits).not.toBe(cell('lin', undefined, '32/255').correctBits);
    await expect(runSweep(options({ images: x, labels: y, attacks: [{ name: 'tiny', fn: tinyFgsm, params: { surrogate: 'nope' } }] }))).rejects.toThrow('attack "tiny": surrogate "nope" is not a model of this sweep (models: lin)');
    await expect(runSweep(options({ images: x, labels: y, attacks: [{ name: 'tiny', fn: tinyFgsm, params: { surrogate: 'lin', surrogateMode: 'hard' } }] }))).rejects.toThrow('attack "tiny": surrogateMode "hard" given but surrogate "lin" has no JpegLayer');
    await expect(runSweep(options({ images: x, labels: y, attacks: [{ name: 'tiny', fn: tinyFgsm, params: { surrogate: 'lin+nope' } }] }))).rejects.toThrow('attack "tiny": surrogate "lin+nope": "nope" is not a model of this sweep (models: lin)');
    await expect(runSweep(options({ images: x, labels: y, attacks: [{ name: 'tiny', fn: tinyFgsm, params: { surrogate: 'lin+lin' } }] }))).rejects.toThrow('attack "tiny": surrogate "lin+lin" names a model twice');
    tf.dispose([x, y]);
  });

  it('rejects bad input before writing anything', async () => {
    const { x, y } = data(6);
    const outDir = tmp();
    await expect(runSweep(options({ images: x, labels: y, outDir, epsilons: [] }))).rejects.toThrow(/epsilon list is empty/);
    await expect(runSweep(options({ images: x, labels: y, outDir, attacks: [{ name: 'nope' }], resolveAttack: () => { throw new Error('no such attack'); } }))).rejects.toThrow(/unknown attack "nope"/);
    await expect(runSweep(options({ images: x, labels: y.slice(0, 3), outDir }))).rejects.toThrow(/labels shape/);
    await expect(runSweep(options({ images: x.mul(2) as tf.Tensor4D, labels: y, outDir }))).rejects.toThrow(/\[0,1\]/);
    await expect(runSweep(options({ images: x, labels: y, outDir, batchSize: 0 }))).rejects.toThrow(/batchSize/);
    await expect(runSweep(options({ images: x, labels: y, outDir, attacks: [{ name: 'tiny', fn: tinyFgsm, params: { norm: 'l2' } }] }))).rejects.toThrow('attack "tiny": params.norm is l2 but the attack\'s records are linf; use the attack registered for that norm (e.g. apgd-l2, square-l2, autoattack-l2)');

    expect(() => readFileSync(join(outDir, 'records.jsonl'))).toThrow();
    tf.dispose([x, y]);
  });

  it('L1 budgets above 1 run and are recorded in L1 (sizes within eps); an L-inf attack refuses them before any work', async () => {
    const { x, y } = data(6);
    const eps = parseEpsilonList('0,0.5,3', 'eps', 'l1');
    const res = await runSweep(options({ images: x, labels: y, epsilons: eps, attacks: [{ name: 'apgd-l1', params: { steps: 4 } }] }));
    const cells = res.records.filter((r) => r.attack === 'apgd-l1' && r.threat.eps > 0);
    expect(cells.map((r) => `${r.threat.norm} ${r.threat.epsLabel}`)).toEqual(['l1 0.5', 'l1 3']);
    for (const r of cells) expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-6);
    // Not vacuous: the attack moved the images by more than the smaller budget allows.
    expect(cells[1].maxNorm).toBeGreaterThan(0.5);
    const outDir = tmp();
    await expect(runSweep(options({ images: x, labels: y, outDir, epsilons: eps, attacks: [{ name: 'tiny', fn: tinyFgsm }] }))).rejects.toThrow('runSweep: eps 3 = 3 is outside [0,1], the L-inf budget of attack "tiny" (only L2 and L1 budgets exceed 1)');
    expect(() => readFileSync(join(outDir, 'records.jsonl'))).toThrow();
    tf.dispose([x, y]);
  });

  it('mixes norms: each attack runs at its own list (closed forms of L-inf FGSM and L2 FGM), resumes, and refuses inconsistent lists before any work', async () => {
    const { x, y } = data();
    const l2Eps = parseEpsilonList('0,0.1,0.3', 'eps-l2', 'l2');
    // L2 fast gradient step: x + eps * g / ||g||_2 (no clipping: pixels stay in [0, 1]).
    const tinyFgm: AttackFn = (model, images, labels, o) => tf.tidy(() => {
      const f = model as (v: tf.Tensor4D) => tf.Tensor2D;
      const g = tf.grad((v: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels.toInt(), 2), f(v as tf.Tensor4D)))(images);
      const norm = g.reshape([g.shape[0], -1]).norm(2, 1).reshape([-1, 1, 1, 1]);
      return images.add(g.div(norm).mul(o.eps as number)).clipByValue(0, 1) as tf.Tensor4D;
    });
    const outDir = tmp();
    const attacks = [{ name: 'tiny', fn: tinyFgsm }, { name: 'tiny-l2', fn: tinyFgm, norm: 'l2' as const, epsilons: l2Eps }];
    const res = await runSweep(options({ images: x, labels: y, outDir, attacks }));
    expect(res.records.map((r) => `${r.attack} ${r.threat.norm} ${r.threat.epsLabel}`)).toEqual([
      'clean linf 0', ...EPS.map((e) => `tiny linf ${e.label}`), ...l2Eps.map((e) => `tiny-l2 l2 ${e.label}`),
    ]);
    const xs = x.dataSync(), ys = y.dataSync();
    for (const r of res.records.filter((c) => c.attack !== 'clean')) {
      let correct = 0;
      for (let i = 0; i < ys.length; i++) {
        const yi = ys[i], o = 1 - yi;
        let margin = 0, l1 = 0, l2 = 0;
        for (let p = 0; p < 4; p++) { const d = W[p][yi] - W[p][o]; margin += xs[i * 4 + p] * d; l1 += Math.abs(d); l2 += d * d; }
        // The worst L-inf step lowers the margin by eps * ||d||_1, the worst L2 step by eps * ||d||_2.
        if (margin - r.threat.eps * (r.threat.norm === 'l2' ? Math.sqrt(l2) : l1) > 0) correct++;
      }
      expect(r.correct, `${r.attack} ${r.threat.epsLabel}`).toBe(correct);
      expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-5);
    }
    // Not vacuous: the L2 step at 0.3 breaks images.
    expect(res.records.find((r) => r.attack === 'tiny-l2' && r.threat.epsLabel === '0.3')!.correct).toBeLessThan(res.records[0].correct);
    const again = await runSweep(options({ images: x, labels: y, outDir, attacks }));
    expect([again.ran, again.skipped]).toEqual([0, res.records.length]);
    expect(again.records).toEqual(res.records);

    const fresh = tmp();
    const bad = (over: Partial<SweepOptions>) => runSweep(options({ images: x, labels: y, outDir: fresh, ...over }));
    await expect(bad({ attacks: [{ name: 'tiny', fn: tinyFgsm }, { name: 'tiny2', fn: tinyFgsm, epsilons: parseEpsilonList('0,8/255') }] })).rejects.toThrow('runSweep: attack "tiny2" has eps 0, 8/255 but another linf attack has 0, 4/255, 32/255, 64/255; attacks of one norm share one list (the worst case is taken over them per eps)');
    await expect(bad({ attacks: [{ name: 'tiny-l2', fn: tinyFgm, norm: 'l2', epsilons: [] }] })).rejects.toThrow('runSweep: the epsilon list of attack "tiny-l2" is empty');
    await expect(bad({ attacks: [{ name: 'tiny', fn: tinyFgsm, epsilons: l2Eps.concat(l2Eps) }] })).rejects.toThrow('runSweep: the epsilon list of attack "tiny" has duplicates');
    await expect(bad({ attacks: [{ name: 'tiny', fn: tinyFgsm, epsilons: parseEpsilonList('0,2', 'eps', 'l2') }] })).rejects.toThrow('runSweep: eps 2 = 2 is outside [0,1], the L-inf budget of attack "tiny"');
    // Every attack with its own list: the sweep's list is not needed.
    const own = await runSweep(options({ images: x, labels: y, epsilons: [], attacks: [{ name: 'tiny-l2', fn: tinyFgm, norm: 'l2', epsilons: l2Eps }] }));
    expect(own.records.map((r) => r.threat.epsLabel)).toEqual(['0', '0', '0.1', '0.3']);
    expect(() => readFileSync(join(fresh, 'records.jsonl'))).toThrow();
    tf.dispose([x, y]);
  });

  it('refuses to resume on different data and keeps what was written', async () => {
    const { x, y } = data(6);
    const outDir = tmp();
    await runSweep(options({ images: x, labels: y, outDir }));
    const before = readFileSync(join(outDir, 'records.jsonl'), 'utf8');
    const other = data(6, 99);
    await expect(runSweep(options({ images: other.x, labels: other.y, outDir }))).rejects.toThrow(/different data/);
    expect(readFileSync(join(outDir, 'records.jsonl'), 'utf8')).toBe(before);
    tf.dispose([x, y, other.x, other.y]);
  });

  it('stops on an attack that leaves its budget, keeping finished cells', async () => {
    const { x, y } = data(6);
    const cheat: AttackFn = (_m, a, _b, o) => tf.tidy(() => a.add(2 * (o.eps as number)).clipByValue(0, 1) as tf.Tensor4D);
    const outDir = tmp();
    await expect(runSweep(options({ images: x, labels: y, outDir, attacks: [{ name: 'cheat', fn: cheat }] }))).rejects.toThrow(/exceeds eps/);
    expect(loadRecords(join(outDir, 'records.jsonl')).records.map((r) => r.threat.epsLabel)).toEqual(['0', '0']);
    tf.dispose([x, y]);
  });

  it('uses the real attack registry: fgsm equals the closed form, pgd gets per-batch seeds, unknown names list the known ones', async () => {
    const { x, y } = data(12);
    const viaRegistry = await runSweep(options({ images: x, labels: y, attacks: [{ name: 'fgsm' }, { name: 'pgd', params: { steps: 3 } }] }));
    const viaTiny = await runSweep(options({ images: x, labels: y }));
    const fg = viaRegistry.records.filter((r) => r.attack === 'fgsm').map((r) => r.correctBits);
    expect(fg).toEqual(viaTiny.records.filter((r) => r.attack === 'tiny').map((r) => r.correctBits));
    const p = viaRegistry.records.filter((r) => r.attack === 'pgd' && r.threat.eps > 0);
    for (const r of p) expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-6);
    // PGD is at least as strong as FGSM on a linear model up to ties: never more than 1 image better
    for (const r of p) expect(r.correct).toBeLessThanOrEqual(viaRegistry.records.find((q) => q.attack === 'fgsm' && q.threat.epsLabel === r.threat.epsLabel)!.correct + 1);
    await expect(runSweep(options({ images: x, labels: y, attacks: [{ name: 'fgsmm' }] }))).rejects.toThrow(/unknown attack "fgsmm".*known attacks: fgsm, pgd/);
    tf.dispose([x, y]);
  });

  it('passes eotSamples to the attack on a randomised model only: on a deterministic one the k draws are one gradient, computed once', async () => {
    const { x, y } = data(8);
    const head = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 2, kernelInitializer: 'ones' })] });
    const rrp = resizePadDefended(head, { minSize: 1, maxSize: 2 });
    const seen: { model: string; eot: unknown }[] = [];
    const spy: AttackFn = (model, images, labels, o) => {
      seen.push({ model: model === rrp ? 'rrp' : 'head', eot: o.eotSamples });
      return images.clone();
    };
    const r = await runSweep(options({ images: x, labels: y, models: [{ name: 'head', variant: 'baseline', model: head }, { name: 'rrp', variant: 'random-resize-pad', model: rrp }], attacks: [{ name: 'pgd', params: { eotSamples: 5 }, fn: spy }] }));
    expect(new Set(seen.filter((s) => s.model === 'head').map((s) => s.eot))).toEqual(new Set([1]));
    expect(new Set(seen.filter((s) => s.model === 'rrp').map((s) => s.eot))).toEqual(new Set([5]));
    // The records still name the attack as asked.
    expect(r.records.filter((q) => q.attack === 'pgd').map((q) => q.attackParams)).toEqual(Array(2 * EPS.length).fill({ eotSamples: 5 }));
    rrp.dispose();
    head.dispose();
    tf.dispose([x, y]);
  });

  it('minimal-norm attacks (DeepFool) run one search per batch for every eps, with the records of the budgeted attack run per eps', async () => {
    const { x, y } = data(12);
    let calls = 0;
    const counting = (v: tf.Tensor4D) => (calls++, linear(v));
    const eps = parseEpsilonList('0,0.1,0.3,1', 'l2');
    const run = async (attack: SweepOptions['attacks'][number]) => {
      calls = 0;
      const res = await runSweep(options({ images: x, labels: y, epsilons: eps, models: [{ name: 'lin', variant: 'baseline', model: counting }], attacks: [attack] }));
      return { res, calls };
    };
    const sharedRun = await run({ name: 'deepfool', params: { steps: 5 } });
    // The registry's own function passed with its name (as evaluate and run pass it) is shared too.
    const passed = await run({ name: 'deepfool', params: { steps: 5 }, fn: getAttack('deepfool').run as AttackFn, norm: 'l2' });
    expect(passed.calls).toBe(sharedRun.calls);
    // Another function under that name is run as given, per eps, as any attack.
    const perEps = await run({ name: 'deepfool', params: { steps: 5 }, fn: ((m, xx, yy, o) => getAttack('deepfool').run(m, xx, yy, o as { eps: number })) as AttackFn, norm: 'l2' });
    const essence = (r: CellRecord) => [r.threat.epsLabel, r.threat.norm, r.correctBits, r.meanNorm, r.maxNorm, r.successRate];
    expect(sharedRun.res.records.map(essence)).toEqual(perEps.res.records.map(essence));
    // Not vacuous: the budget matters, and the search ran once instead of three times.
    expect(new Set(sharedRun.res.records.map((r) => r.correct)).size).toBeGreaterThan(2);
    expect(sharedRun.calls).toBeLessThan(perEps.calls / 2);
    tf.dispose([x, y]);
  });

  it('a shared search (HopSkipJump) resumed with more eps computes only the new ones, with the numbers of a sweep that had them all', async () => {
    const { x, y } = data(12);
    const attacks = [{ name: 'hsja', params: { steps: 3, initEvals: 10 } }];
    const outDir = tmp();
    const first = await runSweep(options({ images: x, labels: y, attacks, epsilons: parseEpsilonList('0,0.2', 'l2'), outDir }));
    const resumed = await runSweep(options({ images: x, labels: y, attacks, epsilons: parseEpsilonList('0,0.2,1', 'l2'), outDir }));
    const whole = await runSweep(options({ images: x, labels: y, attacks, epsilons: parseEpsilonList('0,0.2,1', 'l2') }));
    expect(first.ran).toBe(3);
    expect(resumed.ran).toBe(1);
    const bits = (res: typeof whole) => res.records.map((r) => [r.attack, r.threat.epsLabel, r.correctBits, r.maxNorm]);
    // The search's seed does not depend on which eps are still missing.
    expect(bits(resumed)).toEqual(bits(whole));
    for (const r of whole.records) expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-6);
    expect(whole.records.at(-1)!.correct).toBeLessThan(whole.records[0].correct);
    tf.dispose([x, y]);
  });

  it('records what each AutoAttack stage fooled, summed over batches in running order; other attacks record none', async () => {
    const { x, y } = data();
    const res = await runSweep(options({ images: x, labels: y, attacks: [{ name: 'fgsm' }, { name: 'autoattack', params: { steps: 3, queries: 5 } }] }));
    const aa = res.records.filter((r) => r.attack === 'autoattack' && r.threat.eps > 0);
    expect(aa).toHaveLength(3);
    for (const r of aa) {
      // Two classes: no APGD-T (targeted DLR needs 4); FAB-T has the one other class as target.
      expect(Object.keys(r.stages!)).toEqual(['apgd-ce', 'fab-t', 'square'].slice(0, Object.keys(r.stages!).length));
      // Every clean-correct image is fooled by exactly one stage or still correct.
      expect(Object.values(r.stages!).reduce((a, b) => a + b, 0) + r.correct).toBe(r.cleanCorrect);
    }
    expect(aa.at(-1)!.stages!['apgd-ce']).toBeGreaterThan(0);
    for (const r of res.records.filter((rec) => rec.attack !== 'autoattack' || rec.threat.eps === 0)) expect(r.stages).toBeUndefined();
    // The records file carries them too (resume and re-render keep them).
    expect(loadRecords(res.recordsPath).records.filter((r) => r.stages).map((r) => r.stages)).toEqual(aa.map((r) => r.stages));
    expect(mergeStages([undefined, { a: 1 }, { a: 2, b: 1 }, undefined])).toEqual({ a: 3, b: 1 });
    expect(mergeStages([undefined, undefined])).toBeUndefined();
    tf.dispose([x, y]);
  });

  it('records when each image fell to a query-based search, consistent with its bits, over batches and across a resume; none for transfer or gradient attacks', async () => {
    const { x, y } = data();
    const attacks = [{ name: 'fgsm' }, { name: 'square', params: { queries: 30 } }, { name: 'square', params: { queries: 30, surrogate: 'lin' } }];
    const outDir = tmp();
    const res = await runSweep(options({ images: x, labels: y, attacks, outDir }));
    const sq = res.records.filter((r) => r.attack === 'square' && r.threat.eps > 0 && !r.attackParams.surrogate);
    expect(sq).toHaveLength(3);
    const clean = unpackBits(res.records[0].correctBits, 24);
    for (const r of sq) {
      expect(r.queries!.budget).toBe(30);
      const bits = unpackBits(r.correctBits, r.n);
      // A deterministic model: the search's own verdicts are the record's (0 = wrong clean, -1 = still right).
      r.queries!.fooledAt.forEach((t, i) => expect(t === 0 ? 'clean-wrong' : t === -1 ? 'right' : t >= 1 && t <= 30 ? 'fooled' : 'bad').toBe(!clean[i] ? 'clean-wrong' : bits[i] ? 'right' : 'fooled'));
    }
    expect(sq.at(-1)!.queries!.fooledAt.some((t) => t >= 1)).toBe(true);
    for (const r of res.records.filter((rec) => !sq.includes(rec))) expect(r.queries).toBeUndefined();
    // Resumed: the finished cells keep their traces; a sweep that computes them anew gets the same.
    const again = await runSweep(options({ images: x, labels: y, attacks, outDir }));
    expect(again.ran).toBe(0);
    expect(again.records.map((r) => r.queries)).toEqual(res.records.map((r) => r.queries));
    expect(loadRecords(res.recordsPath).records.map((r) => r.queries)).toEqual(res.records.map((r) => r.queries));
    const fresh = await runSweep(options({ images: x, labels: y, attacks }));
    expect(fresh.records.map((r) => r.queries)).toEqual(res.records.map((r) => r.queries));
    tf.dispose([x, y]);
  });

  it('leaks no tensors per sweep', async () => {
    const { x, y } = data(10);
    await assertNoTensorLeak(() => runSweep(options({ images: x, labels: y })).then(() => undefined), { reps: 2, label: 'runSweep' });
    // The shared-search path (one HopSkipJump search for every eps) too.
    const shared = { attacks: [{ name: 'hsja', params: { steps: 2, initEvals: 5 } }], epsilons: parseEpsilonList('0,0.2,1', 'l2') };
    await assertNoTensorLeak(() => runSweep(options({ images: x, labels: y, ...shared })).then(() => undefined), { reps: 2, label: 'runSweep (shared search)' });
    tf.dispose([x, y]);
  });
});

// `jpegdl-robust evaluate` end to end on the embedded default with two tiny checkpoints, through main().
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, truncateSync, cpSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers.ts';
import { buildModel } from '../../../models/registry.ts';
import { saveModel } from '../../../src/io/model-io.ts';
import { loadRecords } from '../../../src/eval/records.ts';
import { parseAttackSpec } from '../../../src/eval/evaluate.ts';
import { parseAdversarialSpec, trainingMetadata } from '../../../src/train/adversarial.ts';

let dir: string;


beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-eval-cli-'));
  await saveModel(buildModel('small_cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), join(dir, 'baseline'), { variant: 'baseline', model: 'small_cnn' });
  await saveModel(buildModel('small_cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1, jpeg: { quality: 50 } }), join(dir, 'jpeg'), { variant: 'jpeg-dl', model: 'small_cnn', ...trainingMetadata(parseAdversarialSpec('pgd:eps=2/255')) });
});
afterEach(() => { process.exitCode = undefined; });

const base = () => ['evaluate', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '10', '--eps', '0,8/255', '--attack', 'fgsm', '--batch-size', '10', '--no-progress', '--jpeg-modes', 'soft'];

describe('jpegdl-robust evaluate', () => {
  it('writes records and the report; a rerun resumes with nothing to do', async () => {
    const o = join(dir, 'out1');
    const first = await cli(...base(), '--out', o);
    expect(first.code, first.text).toBe(0);
    expect(first.text).toMatch(/6 cell\(s\) run, 0 already done/);
    expect(first.text).toMatch(/║ fgsm\s+│ 8\/255/);
    for (const f of ['records.jsonl', 'report.json', 'report.md', 'report.html', 'report.txt']) expect(existsSync(join(o, f)), f).toBe(true);
    const report = JSON.parse(readFileSync(join(o, 'report.json'), 'utf8'));
    expect(report.config.n).toBe(10);
    expect(report.config.dataset).toBe('fashion-mnist-embedded');
    expect(report.config.epsilons).toEqual(['0', '8/255']);
    expect(report.tables.map((t: { channel: string }) => t.channel)).toEqual(['luma']);
    expect(report.tables[0].learned).toHaveLength(64);
    // What each model's training did comes from its saved metadata (absent for models saved without it).
    expect(report.config.models.map((m: { training?: string }) => m.training)).toEqual([undefined, 'PGD-10 adversarial training, L-inf eps 2/255 (step 0.00196)']);
    // The evaluated images' classes (class-balanced: one of each at n = 10) and the per-class table, whose
    // size-weighted mean is the clean cell of the main table.
    expect(report.classes.names).toHaveLength(10);
    expect([...report.classes.labels].sort((a: number, b: number) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(report.perClass.rows.map((r: { n: number }) => r.n)).toEqual(new Array(10).fill(1));
    report.series.forEach((s: { key: string }, i: number) => {
      const clean = report.cells.find((c: { attack: string; model: string; variant: string; jpegMode: string | null }) => c.attack === 'clean' && JSON.stringify([c.model, c.variant, c.jpegMode]) === s.key);
      expect(report.perClass.rows.reduce((a: number, r: { values: { clean: number }[] }) => a + r.values[i].clean, 0) / 10).toBeCloseTo(clean.mean, 12);
    });
    expect(readFileSync(join(o, 'report.md'), 'utf8')).toContain('## Accuracy per class (%)');
    const again = await cli(...base(), '--out', o);
    expect(again.code).toBe(0);
    expect(again.text).toMatch(/0 cell\(s\) run, 6 already done/);
    // re-render from records, keeping the classes
    const rr = await cli('report', o);
    expect(rr.code, rr.text).toBe(0);
    expect(rr.text).toContain('robust (worst case)');
    expect(JSON.parse(readFileSync(join(o, 'report.json'), 'utf8')).perClass).toEqual(report.perClass);
  });

  it('rejects bad input with clear errors before any work, losing nothing already written', async () => {
    const o = join(dir, 'out2');
    expect((await cli(...base(), '--out', o)).code).toBe(0);
    const before = readFileSync(join(o, 'records.jsonl'), 'utf8');
    const r1 = await cli(...base(), '--out', o, '--eps', '');
    expect(r1.code).toBe(1);
    expect(r1.text).toMatch(/--eps: the epsilon list is empty/);
    const r2 = await cli(...base(), '--out', o, '--eps', '0,eight');
    expect(r2.text).toMatch(/--eps: cannot parse "eight"/);
    const r3 = await cli(...base(), '--out', o, '--attack', 'fgsmx');
    expect(r3.code).toBe(1);
    expect(r3.text).toMatch(/unknown attack "fgsmx"; known attacks: fgsm, pgd, .*bpda-pgd/);
    const r4 = await cli(...base(), '--out', o, '--attack', 'pgd:stepz=3');
    expect(r4.text).toMatch(/unknown option "stepz" for pgd; options: steps, stepSize/);
    // L1/L2 attacks need their own budgets: --eps when they are the only norm, --eps-l1/--eps-l2 beside L-inf attacks.
    const mixed = await cli(...base(), '--out', o, '--attack', 'apgd-l1');
    expect(mixed.code).toBe(1);
    expect(mixed.text).toMatch(/--eps-l1: apgd-l1 is an L1 attack and --eps holds L-inf budgets; give L1 budgets, e.g. --eps-l1 0,2,4,8/);
    const l1 = ['evaluate', '--baseline', join(dir, 'baseline'), '-n', '10', '--attack', 'apgd-l1:steps=2', '--no-progress', '--out', o];
    expect((await cli(...l1)).text).toMatch(/--eps: the attacks are l1 and the default budgets are L-inf ones; give l1 budgets, e.g. --eps 0,2,4,8/);
    expect((await cli(...base(), '--out', o, '--eps-l2', '0,0.5')).text).toMatch(/--eps-l2: no L2 attack among --attack \(fgsm \(linf\)\) uses these budgets/);
    expect((await cli(...base(), '--out', o, '--attack', 'pgd-l2', '--eps-l2', '0,-1')).text).toMatch(/--eps-l2: "-1" must be a finite number >= 0/);
    const r5 = await cli('evaluate', '--baseline', join(dir, 'nope'), '--out', o);
    expect(r5.text).toMatch(/--baseline .*nope: model directory .* does not exist/);
    // a corrupt checkpoint: truncated weights
    const bad = join(dir, 'bad');
    cpSync(join(dir, 'baseline'), bad, { recursive: true });
    truncateSync(join(bad, 'weights.bin'), Math.floor(statSync(join(bad, 'weights.bin')).size / 2));
    const r6 = await cli('evaluate', '--baseline', bad, '-n', '10', '--out', o, '--no-progress');
    expect(r6.code).toBe(1);
    expect(r6.text).toMatch(/--baseline .*bad: cannot load the checkpoint .*corrupt or truncated/);
    const r7 = await cli('evaluate', '--jpeg-dl', join(dir, 'baseline'), '-n', '10', '--out', o, '--no-progress');
    expect(r7.text).toMatch(/has no JpegLayer/);
    const r8 = await cli('evaluate', '--out', o);
    expect(r8.text).toMatch(/give --run <dir> or at least one --baseline/);
    // a different image set cannot be mixed into the same records
    const r9 = await cli(...base(), '--out', o, '--seed', '5');
    expect(r9.text).toMatch(/holds a sweep with different data/);
    for (const w of ['0', 'two', '1.5']) {
      const r10 = await cli(...base(), '--out', o, '--workers', w);
      expect(r10.code).toBe(1);
      expect(r10.text).toContain(`--workers: expected a positive integer or "auto", got "${w}"`);
    }
    expect(readFileSync(join(o, 'records.jsonl'), 'utf8')).toBe(before);
    expect(loadRecords(join(o, 'records.jsonl')).records).toHaveLength(3 * 2);
  });

  it('--workers N runs the sweep on N worker processes with the same records as --workers 1', async () => {
    const one = await cli(...base(), '--attack', 'pgd:steps=2', '--out', join(dir, 'w1'), '--workers', '1');
    const two = await cli(...base(), '--attack', 'pgd:steps=2', '--out', join(dir, 'w2'), '--workers', '2');
    expect(one.code, one.text).toBe(0);
    expect(two.code, two.text).toBe(0);
    expect(one.text).not.toMatch(/worker processes/);
    expect(two.text).toMatch(/on 2 worker processes ->/);
    const essence = (o: string) => loadRecords(join(dir, o, 'records.jsonl')).records.map((r) => [r.model, r.jpegMode, r.attack, r.threat.epsLabel, r.correctBits, r.meanNorm]);
    expect(essence('w2')).toEqual(essence('w1'));
    expect(essence('w1')).toHaveLength(2 * (1 + 2 * 2)); // 2 series x (clean + 2 attacks x 2 eps)
  });

  it('--jpeg-defence puts each baseline behind fixed JPEG at each quality, as a model of its own, on workers too', async () => {
    const args = ['evaluate', '--baseline', join(dir, 'baseline'), '-n', '10', '--eps', '0,8/255', '--attack', 'pgd:steps=2', '--attack', 'bpda-pgd:steps=2', '--batch-size', '10', '--no-progress', '--jpeg-modes', 'hard', '--jpeg-defence', '75,30'];
    const r = await cli(...args, '--out', join(dir, 'def1'), '--workers', '1');
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/jpeg-q75 \[hard\]/);
    const recs = loadRecords(join(dir, 'def1', 'records.jsonl')).records;
    expect([...new Set(recs.map((x) => `${x.model}/${x.variant}/${x.jpegMode}`))]).toEqual(['baseline/baseline/null', 'jpeg-q75/jpeg-defence/hard', 'jpeg-q30/jpeg-defence/hard']);
    const report = JSON.parse(readFileSync(join(dir, 'def1', 'report.json'), 'utf8'));
    expect(report.config.models.map((m: { name: string; checkpoint: string }) => m.name)).toEqual(['baseline', 'jpeg-q75', 'jpeg-q30']);
    expect(report.config.models[1].checkpoint).toMatch(/baseline behind JPEG q75$/);
    // Worker processes rebuild the wrapped model and write the same records.
    const two = await cli(...args, '--out', join(dir, 'def2'), '--workers', '2');
    expect(two.code, two.text).toBe(0);
    const essence = (o: string) => loadRecords(join(dir, o, 'records.jsonl')).records.map((x) => [x.model, x.jpegMode, x.attack, x.threat.epsLabel, x.correctBits, x.meanNorm]);
    expect(essence('def2')).toEqual(essence('def1'));
    // Checked before anything runs.
    expect((await cli(...args.slice(0, -1), '75,101', '--out', join(dir, 'def3'))).text).toMatch(/--jpeg-defence: qualities must be integers in 1\.\.100, got 101/);
    expect((await cli(...args.slice(0, -1), '75,x', '--out', join(dir, 'def3'))).text).toMatch(/--jpeg-defence: "x" is not a number/);
    expect((await cli('evaluate', '--jpeg-dl', join(dir, 'jpeg'), '--jpeg-defence', '75', '--out', join(dir, 'def3'))).text).toMatch(/--jpeg-defence: needs a baseline checkpoint/);
    expect(existsSync(join(dir, 'def3'))).toBe(false);
  });

  it('--examples k draws each model on the first k images and shows the pictures in the report, kept by a re-render', async () => {
    const o = join(dir, 'ex1');
    const r = await cli(...base(), '--examples', '3', '--out', o);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/drew adversarial examples of 2 model\(s\)/);
    for (const s of ['baseline', 'jpeg-dl-soft']) for (const f of ['examples.png', 'examples.json']) expect(existsSync(join(o, 'examples', s, f)), `${s}/${f}`).toBe(true);
    const meta = JSON.parse(readFileSync(join(o, 'examples', 'jpeg-dl-soft', 'examples.json'), 'utf8'));
    expect([meta.series, meta.attack, meta.examples.length]).toEqual(['jpeg-dl [soft]', 'fgsm', 3]);
    const html = () => readFileSync(join(o, 'report.html'), 'utf8');
    expect(html()).toContain('<img src="examples/baseline/examples.png"');
    expect(readFileSync(join(o, 'report.md'), 'utf8')).toContain('![jpeg-dl [soft]: fgsm](examples/jpeg-dl-soft/examples.png)');
    expect((await cli('report', o)).code).toBe(0);
    expect(html()).toContain('<img src="examples/jpeg-dl-soft/examples.png"');
    for (const bad of ['-1', 'x', '1.5']) {
      const b = await cli(...base(), '--examples', bad, '--out', join(dir, 'ex2'));
      expect(b.text).toContain(`--examples: must be a non-negative integer (images per picture), got "${bad}"`);
    }
    expect(existsSync(join(dir, 'ex2'))).toBe(false);
  });

  it('--defence puts each baseline behind JPEG, randomised JPEG, random resize-and-pad (averaged over draws), TV minimisation, bit-depth reduction and a median filter, each a model of its own, on workers too', async () => {
    const args = ['evaluate', '--baseline', join(dir, 'baseline'), '-n', '10', '--eps', '0,8/255', '--attack', 'pgd:steps=2', '--attack', 'bpda-pgd:steps=2', '--batch-size', '5', '--no-progress', '--jpeg-modes', 'hard', '--defence', 'bits:3,median:2,jpeg:50,rjpeg:30-90:block,rrp:24-30:draws=2,tvm:0.5'];
    const r = await cli(...args, '--out', join(dir, 'sq1'), '--workers', '1');
    expect(r.code, r.text).toBe(0);
    const recs = loadRecords(join(dir, 'sq1', 'records.jsonl')).records;
    expect([...new Set(recs.map((x) => `${x.model}/${x.variant}/${x.jpegMode}`))]).toEqual(['baseline/baseline/null', 'bits-3/feature-squeezing/null', 'median-2x2/feature-squeezing/null', 'jpeg-q50/jpeg-defence/hard', 'rjpeg-q30-90-block/random-jpeg/hard', 'rrp-24-30-avg2/random-resize-pad/null', 'tvm-0.5-0.03/tv-minimisation/null']);
    const report = JSON.parse(readFileSync(join(dir, 'sq1', 'report.json'), 'utf8'));
    expect(report.config.models[1].checkpoint).toMatch(/baseline behind bits-3$/);
    // The randomised models were attacked without EOT: the report says so, for them alone.
    expect(report.checks.filter((c: string) => c.includes('averaged its gradient over draws'))).toEqual([expect.stringMatching(/^rjpeg-q30-90-block \[hard\], rrp-24-30-avg2, tvm-0\.5-0\.03: these models draw new randomness/)]);
    // Worker processes rebuild the squeezing, random JPEG, resize-and-pad, TV-minimisation and draw-averaging layers and write the same records (the random draws included: two batches per cell).
    const two = await cli(...args, '--out', join(dir, 'sq2'), '--workers', '2');
    expect(two.code, two.text).toBe(0);
    const essence = (o: string) => loadRecords(join(dir, o, 'records.jsonl')).records.map((x) => [x.model, x.jpegMode, x.attack, x.threat.epsLabel, x.correctBits, x.meanNorm]);
    expect(essence('sq2')).toEqual(essence('sq1'));
    // Checked before anything runs.
    const bad = async (...extra: string[]) => (await cli(...args.slice(0, -2), ...extra, '--out', join(dir, 'sq3'))).text;
    expect(await bad('--defence', 'bits:9')).toMatch(/--defence: bits needs an integer in 1\.\.8, got "9"/);
    expect(await bad('--defence', 'blur:3')).toMatch(/--defence: "blur:3" is not a defence/);
    expect(await bad('--defence', 'jpeg:75', '--jpeg-defence', '75')).toMatch(/--defence: jpeg-q75 is listed twice/);
    expect((await cli('evaluate', '--jpeg-dl', join(dir, 'jpeg'), '--defence', 'bits:4', '--out', join(dir, 'sq3'))).text).toMatch(/--defence: needs a baseline checkpoint/);
    expect(existsSync(join(dir, 'sq3'))).toBe(false);
  });

  it('mixes norms: each attack at its own norm\'s budgets, worst case per norm, tables and baselines naming the norm', async () => {
    const o = join(dir, 'mixed');
    const args = ['evaluate', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '10', '--batch-size', '10', '--no-progress', '--jpeg-modes', 'soft',
      '--attack', 'pgd-l2:steps=3', '--attack', 'fgsm', '--eps', '0,4/255', '--eps-l2', '0,0.5', '--examples', '1', '--out', o];
    const r = await cli(...args);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/2 attack\(s\) x eps per norm \(L-inf 2, L2 2\)/);
    expect(r.text).toMatch(/L-inf and L2 threat models/);
    expect(r.text).toMatch(/║ fgsm\s+│ 4\/255 L-inf/);
    expect(r.text).toMatch(/║ pgd-l2\s+│ 0\.5 L2/);
    expect(r.text).toMatch(/║ robust \(worst case\)\s+│ 0\.5 L2/);
    const recs = loadRecords(join(o, 'records.jsonl')).records;
    // Each attack ran at its own list only: 2 models x (clean + 2 attacks x 2 eps).
    expect(recs).toHaveLength(10);
    expect(new Set(recs.filter((x) => x.attack === 'fgsm').map((x) => `${x.threat.norm} ${x.threat.epsLabel}`))).toEqual(new Set(['linf 0', 'linf 4/255']));
    expect(new Set(recs.filter((x) => x.attack === 'pgd-l2').map((x) => `${x.threat.norm} ${x.threat.epsLabel}`))).toEqual(new Set(['l2 0', 'l2 0.5']));
    for (const x of recs.filter((y) => y.attack === 'pgd-l2' && y.threat.eps > 0)) expect(x.maxNorm).toBeLessThanOrEqual(0.5 + 1e-4);
    const report = JSON.parse(readFileSync(join(o, 'report.json'), 'utf8'));
    expect(report.config.norm).toBe('mixed');
    expect(report.config.epsilonsByNorm).toEqual({ linf: ['0', '4/255'], l2: ['0', '0.5'] });
    // The L2 worst case is the L2 attack's own cell (the only L2 attack), not mixed with the L-inf one.
    const worst = (norm: string) => report.cells.find((c: { attack: string; model: string; norm: string; eps: number }) => c.attack === 'worst-case' && c.model === 'baseline' && c.norm === norm && c.eps > 0);
    const own = (attack: string) => recs.find((x) => x.attack === attack && x.model === 'baseline' && x.threat.eps > 0)!;
    expect(worst('l2').mean).toBe(own('pgd-l2').accuracy);
    expect(worst('linf').mean).toBe(own('fgsm').accuracy);
    // The pictures show the first attack's norm (pgd-l2 here) at its own budgets.
    const ex = JSON.parse(readFileSync(join(o, 'examples', 'baseline', 'examples.json'), 'utf8'));
    expect([ex.attack, ex.norm, ex.examples[0].perEps.map((e: { epsLabel: string }) => e.epsLabel)]).toEqual(['pgd-l2', 'l2', ['0.5']]);
    // Resumes with nothing to do; a baseline from the report checks it, naming the norm of its L2 cells.
    expect((await cli(...args)).text).toMatch(/0 cell\(s\) run, 10 already done/);
    const b = join(dir, 'mixed-baseline.json');
    expect((await cli('check', join(o, 'report.json'), '--write-baseline', b)).code).toBe(0);
    const cells = JSON.parse(readFileSync(b, 'utf8')).cells as { attack: string; eps: string }[];
    expect(cells.filter((c) => c.attack === 'worst-case').map((c) => c.eps).sort()).toEqual(['0.5 L2', '0.5 L2', '4/255 L-inf', '4/255 L-inf']);
    const ok = await cli('check', join(o, 'report.json'), '--baseline', b);
    expect(ok.code, ok.text).toBe(0);
  });

  it('takes models, dataset, eval settings and initial tables from a run directory', async () => {
    const run = join(dir, 'run');
    cpSync(join(dir, 'baseline'), join(run, 'models', 'baseline'), { recursive: true });
    cpSync(join(dir, 'jpeg'), join(run, 'models', 'jpeg-dl'), { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ run: { dataset: { name: 'fashion-mnist-embedded' }, model: 'small_cnn', modelSeed: 3, eval: { n: 10, epsilons: ['0', '4/255'], attacks: [{ name: 'fgsm', params: {} }], seed: 1, batchSize: 5 } } }));
    writeFileSync(join(run, 'jpeg-init.json'), JSON.stringify({ tables: { luma: Array.from({ length: 64 }, (_, i) => 1 + i) }, label: 'test init' }));
    const o = join(dir, 'out3');
    const r = await cli('evaluate', '--run', run, '--out', o, '--no-progress', '--jpeg-modes', 'hard');
    expect(r.code, r.text).toBe(0);
    const report = JSON.parse(readFileSync(join(o, 'report.json'), 'utf8'));
    expect(report.config.n).toBe(10);
    expect(report.config.epsilons).toEqual(['0', '4/255']);
    expect(report.config.batchSize).toBe(5);
    expect(report.seeds).toEqual([3]);
    expect(report.jpegModes).toEqual([null, 'hard']);
    expect(report.tables[0].initialLabel).toBe('test init');
    expect(report.tables[0].initial[63]).toBe(64);
    expect(report.config.models.every((m: { arch: string }) => m.arch === 'small_cnn')).toBe(true);
    const bad = await cli('evaluate', '--run', join(dir, 'nope'), '--out', o);
    expect(bad.text).toMatch(/--run: .*config\.json does not exist/);
  });

  it('parses attack specs with typed values', () => {
    expect(parseAttackSpec('pgd:steps=5,randomStart=false,loss=margin')).toEqual({ name: 'pgd', params: { steps: 5, randomStart: false, loss: 'margin' } });
    expect(parseAttackSpec('autoattack-l2:version=plus,restarts=2')).toEqual({ name: 'autoattack-l2', params: { version: 'plus', restarts: 2 } });
    expect(() => parseAttackSpec('square-l2:steps=3')).toThrow(/unknown option "steps" for square-l2/);
    expect(() => parseAttackSpec('pgd:eps=3')).toThrow(/eps comes from --eps/);
    expect(() => parseAttackSpec('pgd:steps')).toThrow(/not key=value/);
  });
});

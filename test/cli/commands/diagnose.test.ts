import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../../src/io/model-io.ts';
import { JpegLayer } from '../../../src/jpeg/layer.ts';
import { cli } from '../helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-diagnose-cli-'));
  const make = (jpeg: boolean, seed: number) => tf.sequential({
    layers: [
      ...(jpeg ? [new JpegLayer({ inputShape: [28, 28, 1], quality: 50 })] : []),
      tf.layers.flatten(jpeg ? {} : { inputShape: [28, 28, 1] }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.randomNormal({ seed, stddev: 0.05 }) }),
    ],
  });
  await saveModel(make(false, 1), join(dir, 'baseline'), { variant: 'baseline', training: 'standard training' });
  await saveModel(make(true, 2), join(dir, 'jpeg'), { variant: 'jpeg-dl' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = () => ['diagnose', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '10', '--steps', '1,2', '--directions', '2', '--surfaces', '1', '--surface-size', '5', '--batch-size', '5'];

describe('jpegdl-robust diagnose', () => {
  it('writes records, the table with findings, plots and surfaces; a rerun finds every record done and gives the same report', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Gradient-masking diagnostics: fashion-mnist-embedded test, 10 images/);
    expect(r.text).toMatch(/║ images with a zero input gradient \(%\)\s+│\s+0\.0 │\s+0\.0 │\s+100\.0 │\s+0\.0 ║/);
    expect(r.text).toMatch(/finding: jpeg-dl \[hard\]: the input gradient is exactly zero on 100\.0% of the images/);
    for (const f of ['records.jsonl', 'diagnose.json', 'diagnose.md', 'diagnose.txt', 'diagnose.html']) expect(existsSync(join(out, f)), f).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'diagnose.json'), 'utf8'));
    // (probe + 2 step counts + unbounded) x (baseline, jpeg-dl soft, hard, bpda-identity).
    expect(json.records).toHaveLength(16);
    expect(json.summary.series.map((s: { label: string }) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]', 'jpeg-dl [bpda-identity]']);
    expect(json.findings.length).toBeGreaterThan(0);
    expect(json.notes.join(' ')).toContain('(standard training)');
    const html = readFileSync(join(out, 'diagnose.html'), 'utf8');
    // Two plots (profile, convergence) and one surface per series.
    expect(html.match(/<svg/g)).toHaveLength(2 + 4);
    const md = readFileSync(join(out, 'diagnose.md'), 'utf8');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8');
    const again = await cli(...base(), '--out', out);
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8')).toBe(lines);
    expect(readFileSync(join(out, 'diagnose.md'), 'utf8')).toBe(md);
  });

  it('diagnose.json works as a regression baseline for `check`: clean and every attack run are cells', async () => {
    const out = join(dir, 'out');
    if (!existsSync(join(out, 'diagnose.json'))) expect((await cli(...base(), '--out', out)).code).toBe(0);
    const b = join(dir, 'diagnose-baseline.json');
    expect((await cli('check', join(out, 'diagnose.json'), '--write-baseline', b)).code).toBe(0);
    const baseline = JSON.parse(readFileSync(b, 'utf8'));
    // 4 series x (clean + 2 step counts + unbounded).
    expect(baseline.cells).toHaveLength(16);
    expect([...new Set(baseline.cells.map((c: { attack: string }) => c.attack))].sort()).toEqual(['clean', 'diagnose:pgd-1', 'diagnose:pgd-2', 'diagnose:pgd-2-unbounded']);
    expect(baseline.cells.find((c: { attack: string }) => c.attack === 'diagnose:pgd-2-unbounded').eps).toBe('1');
    const same = await cli('check', join(out, 'diagnose.json'), '--baseline', b);
    expect(same.code, same.text).toBe(0);
    // A run that got weaker: the hard mode's 2-step PGD now leaves every image correct.
    const json = JSON.parse(readFileSync(join(out, 'diagnose.json'), 'utf8'));
    json.records = json.records.map((r: { kind: string; jpegMode: string; steps: number; unbounded: boolean; n: number }) =>
      (r.kind === 'diagnose-attack' && r.jpegMode === 'bpda-identity' && r.steps === 2 && !r.unbounded ? { ...r, correct: r.n, accuracy: 1, correctBits: Buffer.alloc(2, 255).toString('base64') } : r));
    const moved = join(dir, 'moved.json');
    writeFileSync(moved, JSON.stringify(json));
    const worse = await cli('check', moved, '--baseline', b);
    expect(worse.code, worse.text).toBe(1);
    expect(worse.text).toMatch(/jpeg-dl \[bpda-identity\].*diagnose:pgd-2/);
    // Other step counts are another configuration.
    const other = join(dir, 'out-steps');
    expect((await cli(...base().map((a) => (a === '1,2' ? '1,3' : a)), '--out', other)).code).toBe(0);
    const res = await cli('check', join(other, 'diagnose.json'), '--baseline', b);
    expect(res.code, res.text).toBe(2);
    expect(res.text).toMatch(/different configurations/);
  });

  it('refuses bad input with the flag and the reason, before any work', async () => {
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--eps', '8'], /--eps: "8" is 8 on the 0-1 pixel scale; did you mean 8\/255\?/],
      [['--fd-step', 'x'], /--fd-step: cannot parse "x"/],
      [['--directions', '1.5'], /--directions: must be an integer, got "1.5"/],
      [['--steps', '1,two'], /--steps: must be an integer, got "two"/],
      [['--attack', 'square'], /attack: "square" cannot draw a convergence curve/],
      [['--loss', 'mse'], /loss: must be "ce", "margin" or "dlr"/],
      [['--unbounded-eps', '4/255'], /unboundedEps: 0.0156\d* is not above eps/],
      [['--jpeg-modes', 'fast'], /--jpeg-modes: unknown mode "fast"/],
      [['--restarts', '0'], /restarts: must be an integer >= 1/],
      [['-n', '0'], /-n: must be an integer >= 1, got 0/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(...base(), ...extra, '--out', out);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.text).toMatch(msg);
    }
    const none = await cli('diagnose', '--out', out);
    expect(none.text).toMatch(/give --run <dir> or at least one --baseline/);
    expect(existsSync(out)).toBe(false);
  });
});

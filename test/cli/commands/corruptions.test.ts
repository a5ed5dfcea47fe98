import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../../src/io/model-io.ts';
import { JpegLayer } from '../../../src/jpeg/layer.ts';
import { cli } from '../helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-corr-cli-'));
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

const base = () => ['corruptions', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '20', '--corruptions', 'contrast,jpeg_compression', '--severities', '1,5', '--batch-size', '10'];

describe('jpegdl-robust corruptions', () => {
  it('writes records and the tables; a rerun finds every cell done and gives the same report', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Common corruptions: fashion-mnist-embedded test, 20 images/);
    expect(r.text).toMatch(/║ contrast\s+│/);
    expect(r.text).toMatch(/relative corruption error \(baseline = 1\.00\)/);
    for (const f of ['records.jsonl', 'corruptions.json', 'corruptions.md', 'corruptions.txt', 'corruptions.html', 'corruption-examples.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const html = readFileSync(join(out, 'corruptions.html'), 'utf8');
    expect(html.match(/<svg/g)).toHaveLength(3); // the mean plot and one per corruption
    expect(html).toContain('<img alt="corrupted examples" src="corruption-examples.png">');
    // Rows: the 2 corruptions; columns: clean + 2 severities; 28 px drawn at 3x with 2 px gaps.
    const png = PNG.sync.read(readFileSync(join(out, 'corruption-examples.png')));
    expect([png.width, png.height]).toEqual([3 * 84 + 4 * 2, 2 * 84 + 3 * 2]);
    const json = JSON.parse(readFileSync(join(out, 'corruptions.json'), 'utf8'));
    // clean + 2 corruptions x 2 severities for baseline, jpeg-dl soft and hard.
    expect(json.records).toHaveLength(15);
    expect(json.summary.series.map((s: { label: string }) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    expect(json.notes.join(' ')).toContain('(standard training)');
    const md = readFileSync(join(out, 'corruptions.md'), 'utf8');
    expect(md).toContain('## Per severity (mean over corruptions)');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8');
    const again = await cli(...base(), '--out', out);
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8')).toBe(lines); // nothing recomputed
    expect(readFileSync(join(out, 'corruptions.md'), 'utf8')).toBe(md);
  });

  it('--defence adds each baseline behind input defences; 8-bit squeezing of 8-bit images changes no answer', async () => {
    const out = join(dir, 'def');
    const r = await cli(...base(), '--jpeg-modes', 'hard', '--defence', 'bits:8,bits:1,median:3,jpeg:50', '--out', out);
    expect(r.code, r.text).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'corruptions.json'), 'utf8'));
    expect(json.summary.series.map((x: { label: string }) => x.label)).toEqual(['baseline', 'jpeg-dl [hard]', 'bits-8', 'bits-1', 'median-3x3', 'jpeg-q50 [hard]']);
    type Rec = { model: string; variant: string; corruption: string; severity: number; correctBits: string };
    const recs: Rec[] = json.records;
    expect([...new Set(recs.map((x) => `${x.model}/${x.variant}`))]).toEqual(['baseline/baseline', 'jpeg-dl/jpeg-dl', 'bits-8/feature-squeezing', 'bits-1/feature-squeezing', 'median-3x3/feature-squeezing', 'jpeg-q50/jpeg-defence']);
    // The corrupted images are stored as 8-bit values: rounding to 256 levels is the identity on them.
    const bitsOf = (m: string) => recs.filter((x) => x.model === m).map((x) => `${x.corruption}/${x.severity}:${x.correctBits}`);
    expect(bitsOf('bits-8')).toHaveLength(5);
    expect(bitsOf('bits-8')).toEqual(bitsOf('baseline'));
    expect(bitsOf('bits-1')).not.toEqual(bitsOf('baseline'));
    const bad = await cli(...base(), '--defence', 'median:9', '--out', join(dir, 'def2'));
    expect(bad.text).toMatch(/--defence: median needs an integer in 2\.\.5, got "9"/);
    const noBase = await cli('corruptions', '--jpeg-dl', join(dir, 'jpeg'), '--defence', 'bits:4', '--out', join(dir, 'def2'));
    expect(noBase.text).toMatch(/--defence: needs a baseline model/);
    expect(existsSync(join(dir, 'def2'))).toBe(false);
  });

  it('refuses bad input with the flag and the reason, before any work', async () => {
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--corruptions', 'frost'], /corruption "frost": not available \(needs the frost photographs/],
      [['--corruptions', 'saturate'], /saturate is defined for colour images only/],
      [['--severities', '0,6'], /severities: each must be an integer 1-5, got 0/],
      [['--severities', 'two'], /--severities: must be an integer, got "two"/],
      [['-n', '0'], /-n: must be an integer >= 1, got 0/],
      [['--jpeg-modes', 'bpda-identity'], /--jpeg-modes: corruptions run a model as it is deployed, soft or hard/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(...base(), ...extra, '--out', out);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.text).toMatch(msg);
    }
    const none = await cli('corruptions', '--out', out);
    expect(none.text).toMatch(/give --run <dir> or at least one --baseline/);
    expect(existsSync(join(out, 'records.jsonl'))).toBe(false);
  });
});

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
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-spatial-cli-'));
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

const base = () => ['spatial', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '20', '--max-rotation', '10', '--rotations', '3', '--max-translation', '2', '--translations', '3', '--samples', '2', '--batch-size', '10'];

describe('jpegdl-robust spatial', () => {
  it('writes records, tables, plots and the example picture; a rerun finds every cell done and gives the same report', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Spatial robustness: fashion-mnist-embedded test, 20 images/);
    expect(r.text).toMatch(/║ grid: worst of 27 \(rotation and shift\)\s+│/);
    for (const f of ['records.jsonl', 'spatial.json', 'spatial.md', 'spatial.txt', 'spatial.html', 'spatial-examples.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'spatial.json'), 'utf8'));
    // (27 grid transforms + 2 draws) x (baseline, jpeg-dl soft, jpeg-dl hard).
    expect(json.records).toHaveLength(87);
    expect(json.summary.series.map((s: { label: string }) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    expect(json.notes.join(' ')).toContain('(standard training)');
    const html = readFileSync(join(out, 'spatial.html'), 'utf8');
    expect(html.match(/<svg/g)).toHaveLength(3);
    expect(html).toContain('<img alt="transformed examples" src="spatial-examples.png">');
    // Rows: 4 images; columns: clean, ±rotation, 4 shifts, one combined; 28 px drawn at 3x with 2 px gaps.
    const png = PNG.sync.read(readFileSync(join(out, 'spatial-examples.png')));
    expect([png.width, png.height]).toEqual([8 * 84 + 9 * 2, 4 * 84 + 5 * 2]);
    const md = readFileSync(join(out, 'spatial.md'), 'utf8');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8');
    const again = await cli(...base(), '--out', out);
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8')).toBe(lines);
    expect(readFileSync(join(out, 'spatial.md'), 'utf8')).toBe(md);
  });

  it('refuses bad input with the flag and the reason, before any work', async () => {
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--max-rotation', 'ten'], /--max-rotation: must be a number, got "ten"/],
      [['--rotations', '1'], /rotations is 1 but maxRotation is 10/],
      [['--translations', '2.5'], /--translations: must be an integer, got "2.5"/],
      [['--samples', '-1'], /samples: must be an integer >= 0/],
      [['--fill', 'wrap'], /fill must be one of zeros, edge, reflect/],
      [['--interpolation', 'cubic'], /interpolation must be one of bilinear, nearest/],
      [['-n', '0'], /-n: must be an integer >= 1, got 0/],
      [['--jpeg-modes', 'bpda-identity'], /--jpeg-modes: a spatial evaluation runs a model as it is deployed, soft or hard/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(...base(), ...extra, '--out', out);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.text).toMatch(msg);
    }
    const none = await cli('spatial', '--out', out);
    expect(none.text).toMatch(/give --run <dir> or at least one --baseline/);
    expect(existsSync(out)).toBe(false);
  });
});

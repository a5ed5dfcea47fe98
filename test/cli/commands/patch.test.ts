import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../../src/io/model-io.ts';
import { JpegLayer } from '../../../src/jpeg/layer.ts';
import { cli } from '../helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-patch-cli-'));
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

const base = () => ['patch', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '20', '--fit-n', '30', '--sizes', '8,4', '--epochs', '2', '--batch-size', '10'];

describe('jpegdl-robust patch', () => {
  it('writes records, patches, tables, plots and the picture; a rerun fits nothing and gives the same report; check reads patch.json', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Adversarial patches: fashion-mnist-embedded, 20 test images, fitted on 30 training images/);
    expect(r.text).toMatch(/║ 8 px fitted on jpeg-dl \[soft\]\s+│/);
    for (const f of ['records.jsonl', 'patch.json', 'patch.md', 'patch.txt', 'patch.html', 'patches.png']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readdirSync(join(out, 'patches')).sort()).toEqual(['baseline_0_4px.json', 'baseline_0_8px.json', 'jpeg-dl_0_soft_4px.json', 'jpeg-dl_0_soft_8px.json']);
    const json = JSON.parse(readFileSync(join(out, 'patch.json'), 'utf8'));
    // 3 clean + 2 sizes x 3 sources (two fitted, noise) x 3 series; --no-noise drops the control.
    expect(json.records).toHaveLength(21);
    expect(json.records[0].settings).toEqual({ epochs: 2, batchSize: 32, stepSize: 0.05, stepDecay: 0.8, beta: 10, target: null, gridStride: null });
    // Grid one side apart on 28 px: 4 px -> 7 x 7 corners, 8 px -> 0, 8, 16, 20 -> 4 x 4.
    expect(json.records.filter((x: { source: unknown }) => x.source).map((x: { size: number; grid: { positions: number } }) => `${x.size}:${x.grid.positions}`)).toContain('4:49');
    expect(json.records.find((x: { size: number }) => x.size === 8).grid.positions).toBe(16);
    expect(json.notes.join(' ')).toContain('(standard training)');
    // Rows: 2 sources; per size the patch alone and an image with it; 28 px drawn at 3x with 2 px gaps.
    const png = PNG.sync.read(readFileSync(join(out, 'patches.png')));
    expect([png.width, png.height]).toEqual([4 * 84 + 5 * 2, 2 * 84 + 3 * 2]);
    const md = readFileSync(join(out, 'patch.md'), 'utf8');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8');
    const again = await cli(...base(), '--out', out);
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8')).toBe(lines);
    expect(readFileSync(join(out, 'patch.md'), 'utf8')).toBe(md);
    const check = await cli('check', join(out, 'patch.json'), '--baseline', join(out, 'patch.json'));
    expect(check.code, check.text).toBe(0);
    // 3 clean cells + 18 at the random position + 18 at the worst grid position.
    expect(check.text).toMatch(/OK: 39 cells within tolerance/);
    const plain = await cli(...base(), '--no-noise', '--sizes', '4', '--grid-stride', '0', '--per-image', '--per-image-steps', '2', '--per-image-restarts', '1', '--out', join(dir, 'plain'));
    expect(plain.code, plain.text).toBe(0);
    expect(plain.text).toMatch(/║ 4 px per image \(white-box, 1 places x 2 steps\)\s+│/);
    const recs = JSON.parse(readFileSync(join(dir, 'plain', 'patch.json'), 'utf8')).records;
    // 3 clean + 2 fitted sources x 3 series + the per-image attack on each series.
    expect(recs).toHaveLength(12);
    expect(recs.every((x: { grid: unknown }) => x.grid === null)).toBe(true);
    expect(recs.filter((x: { perImage?: unknown }) => x.perImage).map((x: { perImage: unknown }) => x.perImage)).toEqual([
      { steps: 2, restarts: 1, stepSize: 0.1, craftMode: null }, { steps: 2, restarts: 1, stepSize: 0.1, craftMode: 'soft' }, { steps: 2, restarts: 1, stepSize: 0.1, craftMode: 'bpda-identity' },
    ]);
  });

  it('refuses bad input with the flag and the reason, before any work', async () => {
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--sizes', '4,x'], /--sizes: must be an integer, got "x"/],
      [['--sizes', '30'], /sizes: a patch side is an integer from 1 to the image's side \(28\), got 30/],
      [['--epochs', '0'], /epochs: must be an integer >= 1, got 0/],
      [['--step-decay', '0'], /stepDecay: must be in \(0, 1\], got 0/],
      [['--grid-stride', '-2'], /gridStride: must be an integer >= 0 \(0: no grid\), got -2/],
      [['--fit-n', '0'], /--fit-n: must be an integer >= 1, got 0/],
      [['--per-image', '--per-image-steps', '0'], /perImage.steps: must be an integer >= 1, got 0/],
      [['--jpeg-modes', 'bpda-identity'], /--jpeg-modes: models are evaluated as they are deployed, soft or hard/],
      [['--craft-modes', 'fuzzy'], /--craft-modes: unknown JPEG mode "fuzzy"/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(...base(), ...extra, '--out', out);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.text).toMatch(msg);
    }
    const none = await cli('patch', '--out', out);
    expect(none.text).toMatch(/give --run <dir> or at least one --baseline/);
    expect(existsSync(out)).toBe(false);
  });
});

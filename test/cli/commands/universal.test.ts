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
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-universal-cli-'));
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

const base = () => ['universal', '--baseline', join(dir, 'baseline'), '--jpeg-dl', join(dir, 'jpeg'), '-n', '20', '--fit-n', '30', '--eps', '8/255,16/255', '--epochs', '2', '--batch-size', '10'];

describe('jpegdl-robust universal', () => {
  it('writes records, perturbations, tables, plots and the picture; a rerun fits nothing and gives the same report', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Universal perturbations: fashion-mnist-embedded, 20 test images, fitted on 30 training images/);
    expect(r.text).toMatch(/║ 16\/255 fitted on jpeg-dl \[soft\]\s+│/);
    for (const f of ['records.jsonl', 'universal.json', 'universal.md', 'universal.txt', 'universal.html', 'universal-perturbations.png']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readdirSync(join(out, 'perturbations')).sort()).toEqual(['baseline_0_16_255.json', 'baseline_0_8_255.json', 'jpeg-dl_0_soft_16_255.json', 'jpeg-dl_0_soft_8_255.json']);
    const json = JSON.parse(readFileSync(join(out, 'universal.json'), 'utf8'));
    // 3 clean + 2 eps x 4 sources (two fitted, uniform ±eps) x 3 series; --no-constants drops the shifts.
    expect(json.records).toHaveLength(27);
    expect(json.settings).toMatchObject({ norm: 'linf', method: 'sgd', epochs: 2, batchSize: 32, stepFraction: 0.25, stepDecay: 0.8, beta: 10, target: null });
    expect(json.notes.join(' ')).toContain('(standard training)');
    // Rows: 2 sources; per eps the perturbation and an image with it; 28 px drawn at 3x with 2 px gaps.
    const png = PNG.sync.read(readFileSync(join(out, 'universal-perturbations.png')));
    expect([png.width, png.height]).toEqual([4 * 84 + 5 * 2, 2 * 84 + 3 * 2]);
    const md = readFileSync(join(out, 'universal.md'), 'utf8');
    const lines = readFileSync(join(out, 'records.jsonl'), 'utf8');
    const again = await cli(...base(), '--out', out);
    expect(again.code).toBe(0);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8')).toBe(lines);
    expect(readFileSync(join(out, 'universal.md'), 'utf8')).toBe(md);
    const check = await cli('check', join(out, 'universal.json'), '--baseline', join(out, 'universal.json'));
    expect(check.code, check.text).toBe(0);
    const plain = await cli(...base(), '--no-constants', '--eps', '8/255', '--out', join(dir, 'plain'));
    expect(plain.code, plain.text).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'plain', 'universal.json'), 'utf8')).records).toHaveLength(9);
  });

  it('refuses bad input with the flag and the reason, before any work', async () => {
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--eps', '8'], /--eps: "8" is 8 on the 0-1 pixel scale; did you mean 8\/255\?/],
      [['--norm', 'l1'], /--norm: a universal perturbation is linf or l2, got "l1"/],
      [['--method', 'boundary'], /method: must be one of sgd, deepfool, got boundary/],
      [['--epochs', '0'], /epochs: must be an integer >= 1, got 0/],
      [['--step-decay', '0'], /stepDecay: must be in \(0, 1\], got 0/],
      [['--target', '2', '--method', 'deepfool'], /target: a targeted universal perturbation needs method sgd/],
      [['--fit-n', '0'], /--fit-n: must be an integer >= 1, got 0/],
      [['--jpeg-modes', 'bpda-identity'], /--jpeg-modes: models are evaluated as they are deployed, soft or hard/],
      [['--craft-modes', 'fuzzy'], /--craft-modes: unknown JPEG mode "fuzzy"/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(...base(), ...extra, '--out', out);
      expect(r.code, extra.join(' ')).toBe(1);
      expect(r.text).toMatch(msg);
    }
    const none = await cli('universal', '--out', out);
    expect(none.text).toMatch(/give --run <dir> or at least one --baseline/);
    expect(existsSync(out)).toBe(false);
  });
});

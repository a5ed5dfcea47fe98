import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../../src/io/model-io.ts';
import { cli } from '../helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jpegdl-certify-cli-'));
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.randomNormal({ seed: 1, stddev: 0.05 }) })] });
  await saveModel(model, join(dir, 'baseline'), { variant: 'baseline' });
  model.dispose();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = () => ['certify', '--baseline', join(dir, 'baseline'), '-n', '4', '--n0', '10', '--samples', '100', '--radii', '0,8/255,0.1'];

describe('jpegdl-robust certify', () => {
  it('prints the certified-accuracy table and writes the report; a defended baseline is a column of its own', async () => {
    const out = join(dir, 'out');
    const r = await cli(...base(), '--sigma', '0.12,0.25', '--defence', 'bits:5', '--out', out);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/Randomised smoothing certificates: fashion-mnist-embedded test, 4 images/);
    expect(r.text).toMatch(/baseline, σ = 0\.12 │ baseline, σ = 0\.25 │ bits-5, σ = 0\.12 │ bits-5, σ = 0\.25/);
    expect(r.text).toMatch(/║ 8\/255\s+│/);
    for (const f of ['records.jsonl', 'certify.json', 'certify.md', 'certify.txt', 'certify.html']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'records.jsonl'), 'utf8').trim().split('\n')).toHaveLength(16);
    // A rerun finds every image done and prints the same table.
    const again = await cli(...base(), '--sigma', '0.12,0.25', '--defence', 'bits:5', '--out', out);
    expect(again.text).toBe(r.text);
  });

  it('names the bad argument', async () => {
    const out = join(dir, 'bad');
    expect((await cli(...base(), '--out', out)).code).not.toBe(0); // --sigma is required
    const bad = async (...a: string[]) => (await cli(...base(), '--out', out, ...a)).text;
    expect(await bad('--sigma', '0.25', '--alpha', 'often')).toMatch(/--alpha: not a number: "often"/);
    expect(await bad('--sigma', '0.25', '--samples', '1e3x')).toMatch(/--samples: must be an integer, got "1e3x"/);
    expect(await bad('--sigma', '-1')).toMatch(/--sigma: "-1" must be a finite number >= 0|--sigma: cannot parse "-1"/);
    expect(await bad('--sigma', '0.25', '--jpeg-modes', 'bpda')).toMatch(/--jpeg-modes: certification runs a model as it is deployed/);
  });
});

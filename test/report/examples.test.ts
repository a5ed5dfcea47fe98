import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleGridPng, gridRows, writeAdversarialExamples, type ExampleGrid } from '../../src/report/examples.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-examples-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Two 2x3 grey images; eps 0.1 moves pixel 0 of image 0 up by 0.1 and pixel 5 of image 1 down by 0.05. */
function grid(): ExampleGrid {
  const clean = Float32Array.from([0, 0.2, 0.4, 0.6, 0.8, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  const adv = clean.slice();
  adv[0] += 0.1;
  adv[11] -= 0.05;
  return {
    height: 2, width: 3, channels: 1, clean, labels: Int32Array.from([1, 2]), indices: [10, 11], classNames: ['a', 'b', 'c'],
    perEps: [
      { epsLabel: '0', eps: 0, images: clean.slice(), predictions: Int32Array.from([1, 2]) },
      { epsLabel: '0.1', eps: 0.1, images: adv, predictions: Int32Array.from([0, 2]) },
    ],
  };
}

const pixel = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4));

describe('adversarial example grids', () => {
  it('rows: clean, then adversarial and perturbation per eps > 0, scaled by the largest change', () => {
    expect(gridRows(grid())).toEqual([{ kind: 'clean' }, { kind: 'adversarial', epsLabel: '0.1' }, { kind: 'perturbation', epsLabel: '0.1', scale: expect.closeTo(0.1, 6) }]);
  });

  it('draws each pixel as a scale x scale square: clean values, adversarial values, perturbations around grey', () => {
    const png = PNG.sync.read(Buffer.from(exampleGridPng(grid(), 2)));
    // 2 columns of 3x2 images at scale 2 (6x4 cells) with 2-pixel gaps; 3 rows.
    expect([png.width, png.height]).toEqual([2 * 6 + 3 * 2, 3 * 4 + 4 * 2]);
    const at = (row: number, col: number, y: number, x: number) => pixel(png, 2 + col * 8 + 2 * x + 1, 2 + row * 6 + 2 * y + 1);
    expect(at(0, 0, 0, 1)).toEqual([51, 51, 51, 255]); // 0.2
    expect(at(0, 0, 1, 2)).toEqual([255, 255, 255, 255]); // 1.0
    expect(at(1, 0, 0, 0)).toEqual([26, 26, 26, 255]); // 0 + 0.1
    expect(at(2, 0, 0, 0)).toEqual([255, 255, 255, 255]); // +scale: white
    expect(at(2, 0, 0, 1)).toEqual([128, 128, 128, 255]); // unchanged: grey
    expect(at(2, 1, 1, 2)).toEqual([64, 64, 64, 255]); // -scale/2: a quarter up from black
    expect(pixel(png, 0, 0)).toEqual([255, 255, 255, 255]); // gap
  });

  it('writes the PNG and a JSON naming rows, labels, predictions and perturbation sizes', () => {
    const paths = writeAdversarialExamples(join(tmp, 'out'), grid(), { attack: 'pgd' });
    const json = JSON.parse(readFileSync(paths.json, 'utf8'));
    expect(json.attack).toBe('pgd');
    expect(json.rows.map((r: { kind: string }) => r.kind)).toEqual(['clean', 'adversarial', 'perturbation']);
    expect(json.examples[0]).toMatchObject({ index: 10, label: 1, labelName: 'b', cleanPrediction: 1 });
    expect(json.examples[0].perEps[1]).toMatchObject({ epsLabel: '0.1', prediction: 0, predictionName: 'a', fooled: true });
    expect(json.examples[0].perEps[1].linf).toBeCloseTo(0.1, 6);
    expect(json.examples[1].perEps[1].l2).toBeCloseTo(0.05, 6);
    expect(json.examples[1].perEps[1].fooled).toBe(false);
    expect(json.examples.map((e: { perEps: { l0: number }[] }) => e.perEps.map((p) => p.l0))).toEqual([[0, 1], [0, 1]]);
    // Default scale: cells of at least 64 pixels.
    expect(PNG.sync.read(readFileSync(paths.png)).width).toBe(2 * 3 * 32 + 3 * 2);
  });

  it('counts L0 in pixels: a colour pixel with several changed channels counts once', () => {
    const clean = new Float32Array(2 * 2 * 3).fill(0.5);
    const adv = clean.slice();
    adv[0] = 0; adv[1] = 1; adv[2] = 0.25; // pixel 0: three channels
    adv[10] = 0.75; // pixel 3: one channel
    const g: ExampleGrid = { height: 2, width: 2, channels: 3, clean, labels: Int32Array.from([0]), perEps: [{ epsLabel: '2', eps: 2, images: adv, predictions: Int32Array.from([1]) }] };
    const json = JSON.parse(readFileSync(writeAdversarialExamples(join(tmp, 'l0'), g).json, 'utf8'));
    expect(json.examples[0].perEps[0].l0).toBe(2);
    expect(json.examples[0].perEps[0].l1).toBeCloseTo(0.5 + 0.5 + 0.25 + 0.25, 6);
  });

  it('refuses inconsistent input, naming what is wrong', () => {
    const g = grid();
    expect(() => exampleGridPng({ ...g, clean: g.clean.subarray(1) })).toThrow(/examples: clean holds 11 values, 2 images of 6 need 12/);
    expect(() => exampleGridPng({ ...g, channels: 2 })).toThrow(/channels must be 1 or 3/);
    expect(() => exampleGridPng({ ...g, perEps: [{ ...g.perEps[1], predictions: Int32Array.from([1]) }] })).toThrow(/eps 0.1 has 1 predictions for 2 images/);
    expect(() => exampleGridPng({ ...g, labels: new Int32Array(0), clean: new Float32Array(0) })).toThrow(/no images to draw/);
    expect(() => exampleGridPng(g, 0)).toThrow(/scale must be an integer >= 1/);
  });
});

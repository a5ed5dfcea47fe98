import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { register } from '../../../src/cli/commands/train.ts';
import { runCommand } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-train-cmd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const run = (args: string[]) => runCommand(register, 'train', args);
const tiny = ['--model', 'small_cnn', '--dataset', 'synthetic', '--train-size', '32', '--test-size', '16', '--image-size', '16', '--epochs', '1', '--batch-size', '16', '--no-progress'];

describe('jpegdl-robust train --adversarial', () => {
  afterEach(() => vi.restoreAllMocks());

  it('trains adversarially, logs the recipe and saves it with the model and the run config', async () => {
    const out = join(tmp, 'adv');
    const text = await run(['--out', out, ...tiny, '--jpeg', '--adversarial', 'pgd:eps=8/255,steps=2']);
    expect(text).toContain('jpeg-dl: PGD-2 adversarial training, L-inf eps 8/255 (step 0.0392)');
    expect(text).toMatch(/finished: 1\/1 epochs/);
    const meta = JSON.parse(readFileSync(join(out, 'model', 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta).toMatchObject({ variant: 'jpeg-dl', training: 'PGD-2 adversarial training, L-inf eps 8/255 (step 0.0392)', adversarial: { method: 'pgd', epsLabel: '8/255', steps: 2 } });
    // The best robust epoch is kept too (one epoch here: that one).
    const best = JSON.parse(readFileSync(join(out, 'model-best', 'model.json'), 'utf8')).userDefinedMetadata;
    expect(best).toMatchObject({ variant: 'jpeg-dl', bestEpoch: 1, testRobustAcc: { attack: 'pgd-10', epsLabel: '8/255', n: 16 } });
    const spec = JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8'));
    expect(spec.train.adversarial).toMatchObject({ method: 'pgd', eps: 8 / 255, stepSize: (2.5 * 8) / 255 / 2, ratio: 1 });
    // Standard training says so too.
    const plain = join(tmp, 'plain');
    await run(['--out', plain, ...tiny]);
    expect(JSON.parse(readFileSync(join(plain, 'model', 'model.json'), 'utf8')).userDefinedMetadata.training).toBe('standard training');
    expect(existsSync(join(plain, 'model-best'))).toBe(false);
  }, 120_000);

  it('a bad spec fails before anything is written', async () => {
    const out = join(tmp, 'bad');
    await expect(run(['--out', out, ...tiny, '--adversarial', 'pgd:eps=8/255,ratio=2'])).rejects.toThrow(/--adversarial: ratio must be in \(0, 1\], got 2/);
    await expect(run(['--out', out, ...tiny, '--adversarial', 'madry'])).rejects.toThrow(/--adversarial: unknown method "madry"/);
    expect(existsSync(out)).toBe(false);
  });
});

// The benchmark driver: option checks, a tiny end-to-end run, the report and the PyTorch twin's parameter count.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, countTrainableParams } from '../../models/registry.ts';
import { renderMarkdown } from '../../src/bench/report.ts';
import { defaultBenchOptions, parallelLabel, runBench, validateBenchOptions } from '../../src/bench/run.ts';
import { TORCH_SCRIPT } from '../../src/bench/torch-peer.ts';

/** Parameter counts from the PyTorch twin, or undefined when python3 cannot import torch (exit 3). */
function torchParams(): Record<string, number> | undefined {
  try {
    return JSON.parse(execFileSync('python3', [TORCH_SCRIPT, '--threads', '1', '--params-only'], { encoding: 'utf8', stdio: 'pipe', timeout: 120_000 })).params;
  } catch (err) {
    if ((err as { status?: number }).status === 3) return undefined;
    throw err;
  }
}

describe('bench options', () => {
  it('rejects bad options before any work, naming them', () => {
    const d = defaultBenchOptions();
    expect(() => validateBenchOptions({ ...d, batch: 0 })).toThrow(/batch must be an integer >= 1, got 0/);
    expect(() => validateBenchOptions({ ...d, repeats: 1.5 })).toThrow(/repeats/);
    expect(() => validateBenchOptions({ ...d, models: ['nope'] })).toThrow(/unknown model 'nope'/);
    expect(() => validateBenchOptions({ ...d, backends: ['webgl' as never] })).toThrow(/unknown backend 'webgl'/);
    expect(() => validateBenchOptions({ ...d, threads: 0 })).toThrow(/threads/);
  });
});

describe('bench run (tiny, native backend only, no PyTorch)', () => {
  it('measures positive finite throughput and writes JSON + Markdown', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    const report = await runBench({
      models: ['small_cnn'], batch: 2, size: 8, backends: ['tensorflow'], warmup: 1, repeats: 2, steps: 1, threads: 1,
      torch: false, outDir: out, log: () => {},
    });
    expect(report.results).toHaveLength(1);
    const r = report.results[0];
    expect(r.backend).toBe('tensorflow');
    expect(r.trainStepSeconds).toHaveLength(2);
    expect(r.trainImagesPerSecond).toBeGreaterThan(0);
    expect(Number.isFinite(r.attackImagesPerSecond)).toBe(true);
    // images/s is batch over the median step time.
    const sorted = [...r.trainStepSeconds].sort((a, b) => a - b);
    expect(r.trainImagesPerSecond).toBeCloseTo(2 / ((sorted[0] + sorted[1]) / 2), 6);
    expect(report.skipped).toContainEqual({ what: 'PyTorch', reason: 'disabled (--no-torch)' });
    expect(report.params.small_cnn.tfjs).toBe(countTrainableParams(buildModel('small_cnn', { inputShape: [8, 8, 3], numClasses: 10 })));
    const json = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8'));
    expect(json.results[0].trainImagesPerSecond).toBe(r.trainImagesPerSecond);
    const md = readFileSync(join(out, 'bench.md'), 'utf8');
    expect(md).toBe(renderMarkdown(report));
    expect(md).toMatch(/\| small_cnn \| tfjs tensorflow \| \d+ \| 2 \|/);
    expect(md).toContain(report.machine.cpuModel);
  });

  it('with 2+ threads also times attack steps on the parallel sweep workers (attack only, one batch per worker)', async () => {
    const report = await runBench({
      models: ['small_cnn'], batch: 2, size: 8, backends: ['tensorflow'], warmup: 1, repeats: 2, steps: 1, threads: 2,
      torch: false, outDir: undefined, log: () => {},
    });
    expect(report.results.map((r) => r.backend)).toEqual(['tensorflow', parallelLabel(2)]);
    const p = report.results[1];
    expect(p.attackStepSeconds).toHaveLength(2);
    expect(p.attackImagesPerSecond).toBeGreaterThan(0);
    expect(p.attackImagesPerSecond).toBeCloseTo(2 / ((p.attackStepSeconds[0] + p.attackStepSeconds[1]) / 2), 6);
    expect(Number.isNaN(p.trainImagesPerSecond)).toBe(true);
    expect(renderMarkdown(report)).toMatch(/\| small_cnn \| tfjs tensorflow, 2 worker processes x 1 thread \(parallel sweep; attack only\) \| 2 \| 2 \| - \| [\d.]+ \|/);
  });
});

describe('PyTorch twin (scripts/bench_torch.py)', () => {
  it('builds the same architectures: parameter counts equal the tfjs registry models (skipped where python3 cannot import torch)', (ctx) => {
    const params = torchParams();
    if (!params) return ctx.skip();
    for (const name of ['small_cnn', 'resnet20']) {
      const tfjs = countTrainableParams(buildModel(name, { inputShape: [32, 32, 3], numClasses: 10 }));
      expect(params[name], name).toBe(tfjs);
    }
    // Closed form for the small CNN: 4 convs (no bias) + 4 BN (gamma, beta) + fc 4096->128 + fc 128->10.
    expect(params.small_cnn).toBe(27 * 32 + 288 * 32 + 288 * 64 + 576 * 64 + 2 * (32 + 32 + 64 + 64) + 4096 * 128 + 128 + 128 * 10 + 10);
  });

  it('rejects an unknown model before importing torch, naming it', () => {
    expect(() => execFileSync('python3', [TORCH_SCRIPT, '--threads', '1', '--params-only', '--models', 'vgg99'], { encoding: 'utf8', stdio: 'pipe' })).toThrow(/unknown model 'vgg99'/);
  });
});

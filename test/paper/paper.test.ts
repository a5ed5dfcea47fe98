import { describe, expect, it } from 'vitest';
import { PAPER_NUMBERS, PAPER_ROBUSTNESS_SETTING, canonicalDataset, paperNumbersFor } from '../../src/paper/numbers.ts';
import { paperComparison, paperText } from '../../src/paper/compare.ts';
import { buildReport } from '../../src/report/model.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderHtml } from '../../src/report/html.ts';
import { packBits } from '../../src/eval/records.ts';
import { fixedInput } from '../report/fixtures.ts';

describe('paper numbers', () => {
  it('every number has a status and a source, and a value or a range', () => {
    for (const p of PAPER_NUMBERS) {
      expect(['verified', 'third-party', 'from-memory', 'code-log']).toContain(p.status);
      expect(p.source.length).toBeGreaterThan(10);
      expect(p.value !== null || p.range !== undefined).toBe(true);
      if (p.range) expect(p.range[0]).toBeLessThan(p.range[1]);
    }
    expect(new Set(PAPER_NUMBERS.map((p) => p.id)).size).toBe(PAPER_NUMBERS.length);
  });

  it('carries only what the spec lists as verified as verified, and no per-eps robustness values', () => {
    expect(PAPER_NUMBERS.filter((p) => p.status === 'verified').map((p) => p.id).sort()).toEqual(['abstract-extra-params', 'abstract-finegrained-gain']);
    const robust = PAPER_NUMBERS.filter((p) => p.attack);
    expect(robust.map((p) => p.quantity)).toEqual(['robust-gain-max', 'robust-gain-max']);
    expect(robust.every((p) => p.status === 'third-party')).toBe(true);
    expect(PAPER_NUMBERS.filter((p) => p.status === 'from-memory').every((p) => p.variant === 'baseline' && p.dataset === 'cifar100')).toBe(true);
  });

  it('the robustness setting uses eps = linspace(1,4,10)/255', () => {
    const e = PAPER_ROBUSTNESS_SETTING.epsilons;
    expect(e).toHaveLength(10);
    expect(e[0] * 255).toBeCloseTo(1, 12);
    expect(e[9] * 255).toBeCloseTo(4, 12);
    expect((e[1] - e[0]) * 255).toBeCloseTo(1 / 3, 12);
  });

  it('finds numbers by dataset name in any spelling', () => {
    expect(canonicalDataset('CIFAR-100')).toBe('cifar100');
    expect(canonicalDataset('cifar100 (/data/cifar-100-binary)')).toBe('cifar100');
    expect(paperNumbersFor('CIFAR-100', 'ResNet56').map((p) => p.id)).toContain('cifar100-resnet56-baseline');
    expect(paperNumbersFor('cifar100', 'resnet56').map((p) => p.id)).not.toContain('cifar100-vgg13-gain');
    expect(paperText(PAPER_NUMBERS.find((p) => p.id === 'cifar100-gain-range')!)).toBe('+0.67 to +1.55');
  });
});

describe('paper vs this run', () => {
  it('says plainly when no paper setting matches', () => {
    const c = buildReport(fixedInput()).paper;
    expect(c.matched).toBe(false);
    expect(c.summary).toMatch(/No paper number for dataset "fashion-mnist-embedded"/);
  });

  it('matches a CIFAR-100 ResNet-56 run: clean accuracies, gain and max robust gain over eps <= 4/255', () => {
    const input = fixedInput();
    input.config = { ...input.config, dataset: 'cifar100', models: input.config.models.map((m) => ({ ...m, arch: 'resnet56' })) };
    const r = buildReport(input);
    expect(r.paper.matched).toBe(true);
    const row = (id: string) => r.paper.rows.find((x) => x.paper.id === id)!;
    expect(row('cifar100-resnet56-baseline').paperText).toBe('72.34');
    expect(row('cifar100-resnet56-baseline').run).toBeCloseTo(75, 10);
    expect(row('cifar100-resnet56-jpegdl-log').paperText).toBe('72.53 to 73.12');
    expect(row('cifar100-gain-range').run).toBeCloseTo(10, 10);
    // fgsm: diffs +20 at 1/255 (jpeg 8.5-0.5... see fixture) and +30 at 4/255 -> max 30 at 4/255
    expect(row('cifar100-resnet56-fgsm-gain-max').runText).toBe('+30.00 (at 4/255)');
    expect(row('cifar100-resnet56-pgd-gain-max').run).not.toBeNull();
    expect(r.paper.summary).toContain('no per-eps values were found');
    const md = renderMarkdown(r);
    expect(md).toContain('| cifar100 resnet56 top-1 baseline (%) | 72.34 | 75.00 | from-memory |');
    expect(renderHtml(r)).toContain('<table class="paper">');
  });

  it('leaves transfer cells out of the paper\'s (white-box) robust gains', () => {
    const input = fixedInput();
    input.config = { ...input.config, dataset: 'cifar100', models: input.config.models.map((m) => ({ ...m, arch: 'resnet56' })) };
    // FGSM crafted on the baseline, labelled "fgsm(targeted=false) from baseline": all JPEG-DL images
    // stay correct, all baseline ones fall; counted, it would make the max FGSM gain +100 points.
    const transfer = input.records.filter((r) => r.attack === 'fgsm').map((r) => {
      const ok = r.variant === 'jpeg-dl' || r.threat.eps === 0 ? r.cleanCorrect : 0;
      return { ...r, attackParams: { targeted: false, surrogate: 'baseline' }, correct: ok, accuracy: ok / r.n, correctBits: packBits(Array.from({ length: r.n }, (_, i) => (i < ok ? 1 : 0))) };
    });
    input.records = [...input.records, ...transfer];
    const r = buildReport(input);
    expect(r.attacks).toContain('fgsm(targeted=false) from baseline');
    expect(r.paper.rows.find((x) => x.paper.id === 'cifar100-resnet56-fgsm-gain-max')!.runText).toBe('+30.00 (at 4/255)');
  });

  it('makes no paper comparison for adversarially trained models (run config or saved model metadata)', () => {
    const input = fixedInput();
    const cifar = { ...input.config, dataset: 'cifar100', models: input.config.models.map((m) => ({ ...m, arch: 'resnet56' })) };
    input.config = { ...cifar, train: { epochs: 1, adversarial: { method: 'pgd', eps: 8 / 255 } } };
    const run = buildReport(input).paper;
    expect([run.matched, run.rows.length]).toEqual([false, 0]);
    expect(run.summary).toBe('No paper comparison: both models were trained adversarially, and the paper reports standard (non-adversarial) training only.');
    input.config = { ...cifar, models: cifar.models.map((m, i) => ({ ...m, training: i === 0 ? 'standard training' : 'TRADES (beta 6, 10 KL-ascent steps, step 0.00196), L-inf eps 2/255' })) };
    expect(buildReport(input).paper.summary).toMatch(/^No paper comparison: adversarially trained models \(standard training; TRADES \(beta 6/);
    // Standard training recorded as such keeps the comparison.
    input.config = { ...cifar, models: cifar.models.map((m) => ({ ...m, training: 'standard training' })) };
    expect(buildReport(input).paper.matched).toBe(true);
  });

  it('empty comparison without a dataset', () => {
    const input = fixedInput();
    input.config = { ...input.config, dataset: undefined };
    expect(paperComparison(buildReport(input)).rows).toEqual([]);
  });
});

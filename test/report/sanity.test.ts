// The report's evaluation checks, on hand-made cells with known answers.
import { describe, expect, it } from 'vitest';
import { eotAttackLabels, type AggregateCell } from '../../src/eval/summary.ts';
import { buildReport } from '../../src/report/model.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { evaluationChecks } from '../../src/report/sanity.ts';
import { fixedInput } from './fixtures.ts';

const EPS = [{ label: '0', value: 0 }, { label: '1/255', value: 1 / 255 }, { label: '4/255', value: 4 / 255 }];

/** Cells of one series "m" from accuracy % per attack and eps label (n = 200 images). */
function checks(acc: Record<string, Record<string, number>>): string[] {
  const cells = Object.entries(acc).flatMap(([attack, byEps]) =>
    Object.entries(byEps).map(([epsLabel, pct]) => ({ model: 'm', variant: 'jpeg-dl', jpegMode: 'soft', attack, epsLabel, eps: EPS.find((e) => e.label === epsLabel)!.value, mean: pct / 100, n: 200 }) as unknown as AggregateCell));
  return evaluationChecks({ series: [{ key: 'm', label: 'm [soft]' }], attacks: ['clean', ...Object.keys(acc)], epsilons: EPS, cells, seriesKeyOf: () => 'm' });
}

describe('evaluation checks', () => {
  it('asks for an adaptive attack when only FGSM / PGD ran', () => {
    expect(checks({ fgsm: { '1/255': 50 }, pgd: { '1/255': 45 } })[0]).toMatch(/^m \[soft\]: only fgsm, pgd were run\. .*--attack autoattack/);
    for (const adaptive of ['apgd', 'fab', 'square', 'square-l2', 'sparse-rs', 'spsa', 'hsja', 'hsja-linf', 'autoattack', 'autoattack-l2', 'bpda-pgd']) expect(checks({ pgd: { '1/255': 45 }, [adaptive]: { '1/255': 45 } })).toEqual([]);
  });

  it('judges each series by its own attacks (BPDA on the hard column does not cover the soft one)', () => {
    const cells = [
      { model: 'j', variant: 'jpeg-dl', jpegMode: 'soft', attack: 'pgd', epsLabel: '1/255', eps: 1 / 255, mean: 0.5, n: 200 },
      { model: 'j', variant: 'jpeg-dl', jpegMode: 'hard', attack: 'bpda-pgd', epsLabel: '1/255', eps: 1 / 255, mean: 0.1, n: 200 },
    ] as unknown as AggregateCell[];
    const out = evaluationChecks({
      series: [{ key: 'soft', label: 'j [soft]' }, { key: 'hard', label: 'j [hard]' }], attacks: ['clean', 'pgd', 'bpda-pgd'], epsilons: EPS, cells,
      seriesKeyOf: (c) => c.jpegMode as string,
    });
    expect(out).toEqual([expect.stringMatching(/^j \[soft\]: only pgd was run\./)]);
  });

  it('flags accuracy that rises with eps', () => {
    expect(checks({ apgd: { '1/255': 50, '4/255': 60 } })).toEqual([
      'm [soft], apgd: accuracy rises from 50.0% at 1/255 to 60.0% at 4/255. A larger budget can only help an attack, so it is not converging (more steps or restarts) or its gradient is masked.',
    ]);
    expect(checks({ apgd: { '1/255': 50, '4/255': 50 } })).toEqual([]);
  });

  it('flags Square beating every gradient attack by at least 1 point and 2 images', () => {
    const out = checks({ pgd: { '1/255': 50 }, apgd: { '1/255': 45 }, square: { '1/255': 40 } });
    expect(out).toContain('m [soft] at 1/255: Square, which uses no gradients, leaves 10 fewer images correct (40.0%) than the best gradient attack (apgd, 45.0%). The gradients may be masked; judge this model on the worst case.');
    // One image (0.5 points at n = 200) is sampling luck, not masking.
    expect(checks({ apgd: { '1/255': 45 }, square: { '1/255': 44.5 } })).toEqual([]);
    // SPSA follows a gradient estimated from outputs only: it is read the same way.
    expect(checks({ pgd: { '1/255': 50 }, spsa: { '1/255': 42 } })).toContain('m [soft] at 1/255: SPSA, which uses no gradients, leaves 16 fewer images correct (42.0%) than the best gradient attack (pgd, 50.0%). The gradients may be masked; judge this model on the worst case.');
  });

  it('compares Square-L2 with the L2 gradient attacks only', () => {
    const cell = (attack: string, norm: string, pct: number) => ({ model: 'm', variant: 'jpeg-dl', jpegMode: 'soft', attack, norm, epsLabel: '1/255', eps: 1 / 255, mean: pct / 100, n: 200 }) as unknown as AggregateCell;
    const run = (cells: AggregateCell[]) => evaluationChecks({ series: [{ key: 'm', label: 'm' }], attacks: ['clean', ...cells.map((c) => c.attack)], epsilons: EPS, cells, seriesKeyOf: () => 'm' });
    expect(run([cell('apgd-l2', 'l2', 45), cell('square-l2', 'l2', 40)])).toContain('m at 1/255: square-l2, which uses no gradients, leaves 10 fewer images correct (40.0%) than the best gradient attack (apgd-l2, 45.0%). The gradients may be masked; judge this model on the worst case.');
    // An L-inf attack at the same label measures another budget: no comparison.
    expect(run([cell('pgd', 'linf', 60), cell('square-l2', 'l2', 40)]).filter((c) => c.includes('no gradients'))).toEqual([]);
    expect(run([cell('pgd-l2', 'l2', 60), cell('square', 'linf', 40)]).filter((c) => c.includes('no gradients'))).toEqual([]);
    // L0: Sparse-RS against PGD-L0, read with the caveat that a pixel search beats gradients on undefended models too.
    expect(run([cell('pgd-l0', 'l0', 45), cell('sparse-rs', 'l0', 40)])).toEqual(['m at 1/255: Sparse-RS, which uses no gradients, leaves 10 fewer images correct (40.0%) than the best gradient attack (pgd-l0, 45.0%). In L0 a search over pixels often beats gradient attacks on undefended models too, so read this as masking only where the gap is far larger than the reference model\'s; judge this model on the worst case.']);
    expect(run([cell('pgd', 'linf', 60), cell('sparse-rs', 'l0', 40)]).filter((c) => c.includes('no gradients'))).toEqual([]);
  });

  it('flags a transfer attack that beats every white-box gradient attack (masking), and names attacks by their base name', () => {
    const cell = (attack: string, pct: number) => ({ model: 'm', variant: 'jpeg-dl', jpegMode: 'soft', attack, norm: 'linf', epsLabel: '1/255', eps: 1 / 255, mean: pct / 100, n: 200 }) as unknown as AggregateCell;
    const run = (cells: AggregateCell[], transfer: string[]) => evaluationChecks({ series: [{ key: 'm', label: 'm' }], attacks: ['clean', ...cells.map((c) => c.attack)], epsilons: EPS, cells, seriesKeyOf: () => 'm', transfer: new Set(transfer) });
    const out = run([cell('pgd(steps=5)', 60), cell('apgd', 50), cell('pgd from baseline', 45)], ['pgd from baseline']);
    expect(out).toEqual(['m at 1/255: pgd from baseline, crafted on another model, leaves 10 fewer images correct (45.0%) than the best white-box gradient attack (apgd, 50.0%). This model\'s own gradients are likely masked; judge it on the worst case.']);
    // Not below the best white-box one: nothing to say. A transfer run alone does not count as adaptive.
    expect(run([cell('apgd', 50), cell('pgd from baseline', 55)], ['pgd from baseline'])).toEqual([]);
    expect(run([cell('pgd', 50), cell('apgd from baseline', 55)], ['apgd from baseline'])[0]).toMatch(/^m: only pgd, apgd from baseline were run\./);
    // "apgd(steps=50)" is APGD: adaptive, and a white-box gradient attack for the Square comparison.
    expect(run([cell('pgd', 50), cell('apgd(steps=50)', 50)], [])).toEqual([]);
    // Gradient-free attacks by base name too: Square with parameters, HopSkipJump (labels only).
    expect(run([cell('apgd', 50), cell('square(queries=1000)', 45)], [])[0]).toMatch(/^m at 1\/255: square\(queries=1000\), which uses no gradients, leaves 10 fewer images correct/);
    expect(run([cell('pgd', 50), cell('hsja-linf', 44)], [])).toEqual(['m at 1/255: hsja-linf, which uses no gradients, leaves 12 fewer images correct (44.0%) than the best gradient attack (pgd, 50.0%). The gradients may be masked; judge this model on the worst case.']);
    expect(run([cell('apgd(steps=50)', 50), cell('square', 40)], [])[0]).toMatch(/Square, which uses no gradients, leaves 20 fewer images correct \(40.0%\) than the best gradient attack \(apgd\(steps=50\), 50.0%\)/);
  });

  it('asks for EOT on a randomised model when no attack averaged over draws, per series', () => {
    const cell = (model: string, variant: string, attack: string) => ({ model, variant, jpegMode: 'hard', attack, norm: 'linf', epsLabel: '1/255', eps: 1 / 255, mean: 0.5, n: 200 }) as unknown as AggregateCell;
    const series = [{ key: 'r', label: 'rjpeg-q50-90 [hard]', variant: 'random-jpeg' }, { key: 'b', label: 'baseline', variant: 'baseline' }];
    const run = (cells: AggregateCell[], eot: string[]) => evaluationChecks({ series, attacks: ['clean', ...new Set(cells.map((c) => c.attack))], epsilons: EPS, cells, seriesKeyOf: (c) => (c.model === 'rjpeg' ? 'r' : 'b'), eot: new Set(eot) });
    const noEot = run([cell('rjpeg', 'random-jpeg', 'bpda-pgd'), cell('base', 'baseline', 'bpda-pgd')], []);
    expect(noEot).toEqual([expect.stringMatching(/^rjpeg-q50-90 \[hard\]: this model draws new randomness on every call, and no attack averaged its gradient over draws\. .*--attack bpda-pgd:eotSamples=10 or autoattack:version=rand/)]);
    // A differentiable randomised defence (resize and pad) is told to average plain PGD/APGD, not BPDA.
    const rrp = evaluationChecks({ series: [{ key: 'p', label: 'rrp-28-32', variant: 'random-resize-pad' }], attacks: ['clean', 'apgd'], epsilons: EPS, cells: [cell('rrp', 'random-resize-pad', 'apgd')], seriesKeyOf: () => 'p' });
    expect(rrp).toEqual([expect.stringMatching(/^rrp-28-32: this model draws new randomness on every call, .*--attack pgd:eotSamples=10, apgd:eotSamples=10 or autoattack:version=rand/)]);
    // EOT run on the randomised series: nothing to say; EOT on another series only does not count.
    expect(run([cell('rjpeg', 'random-jpeg', 'bpda-pgd(eotSamples=10)'), cell('rjpeg', 'random-jpeg', 'pgd')], ['bpda-pgd(eotSamples=10)'])).toEqual([]);
    expect(run([cell('rjpeg', 'random-jpeg', 'apgd'), cell('base', 'baseline', 'apgd(eotSamples=5)')], ['apgd(eotSamples=5)'])).toHaveLength(1);
    // Deterministic series never ask for it.
    expect(run([cell('base', 'baseline', 'apgd')], [])).toEqual([]);
  });

  it('knows which records averaged over draws: eotSamples > 1, or AutoAttack rand (20 unless told)', () => {
    const rec = (attack: string, attackParams: Record<string, unknown>) => ({ attack, attackParams });
    const labels = eotAttackLabels([rec('pgd', {}), rec('pgd', { eotSamples: 8 }), rec('apgd', { eotSamples: 1 }), rec('autoattack', { version: 'rand' }), rec('autoattack', { version: 'rand', eotSamples: 1 }), rec('square', {})]);
    expect([...labels].sort()).toEqual(['autoattack(version="rand")', 'pgd(eotSamples=8)']);
  });

  it('flags an iterative attack that one FGSM step beats by at least 1 point and 2 images, at the same eps', () => {
    const out = checks({ fgsm: { '1/255': 40, '4/255': 30 }, 'pgd(steps=5)': { '1/255': 40.5, '4/255': 35 }, apgd: { '1/255': 39, '4/255': 29 } });
    expect(out.filter((c) => c.includes('single FGSM step'))).toEqual([
      'm [soft] at 4/255: pgd(steps=5) leaves 10 more images correct (35.0%) than a single FGSM step (30.0%). An iterative attack should do at least as well: it is not converging (more steps, another step size, or APGD) or the gradient it follows misleads it.',
    ]);
    // Without FGSM, or with the iterative attack at or below it, nothing to say.
    expect(checks({ pgd: { '1/255': 40 }, apgd: { '1/255': 39 } }).filter((c) => c.includes('FGSM'))).toEqual([]);
    expect(checks({ fgsm: { '1/255': 45 }, pgd: { '1/255': 43.5 }, apgd: { '1/255': 45 } }).filter((c) => c.includes('FGSM'))).toEqual([]);
  });

  it('flags an attack (not FGSM) 5+ points above the worst case, once, at its largest gap', () => {
    const out = checks({ fgsm: { '1/255': 70, '4/255': 60 }, pgd: { '1/255': 52, '4/255': 53 }, autoattack: { '1/255': 50, '4/255': 35.5 }, 'worst-case': { '1/255': 50, '4/255': 35.5 } });
    expect(out.filter((c) => c.includes('above the worst case'))).toEqual([
      'm [soft], pgd: 53.0% at 4/255, 17.5 points above the worst case over all attacks (35.5%). Robust accuracy read from pgd alone would overstate it.',
    ]);
  });

  it('are part of the report data and its Markdown', () => {
    const report = buildReport(fixedInput());
    // The fixture runs FGSM and PGD only, and its baseline's PGD misses another image than FGSM
    // (one of 10 images: 10 points between PGD and the worst case).
    expect(report.checks).toEqual([
      expect.stringMatching(/^baseline, jpeg-dl \[soft\]: only fgsm, pgd were run\./),
      'baseline, pgd: 55.0% at 1/255, 10.0 points above the worst case over all attacks (45.0%). Robust accuracy read from pgd alone would overstate it.',
    ]);
    expect(renderMarkdown(report)).toContain(`## Evaluation checks\n\n- ${report.checks![0]}`);
  });
});

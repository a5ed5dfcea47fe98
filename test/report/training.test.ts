import { describe, expect, it } from 'vitest';
import { renderHtml, trainingPlotsSvg } from '../../src/report/html.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { buildReport, trainingTableRows, trainingView } from '../../src/report/model.ts';
import { fixedInput } from './fixtures.ts';

const epoch = (e: number, acc: number, robust?: number) => ({
  epoch: e, lr: 0.05, trainLoss: 2 - e / 10, trainAcc: acc, testAcc: { plain: acc - 0.05 }, seconds: 2, imagesPerSec: 500, tables: [],
  ...(robust !== undefined ? { testRobustAcc: { attack: 'pgd-10', epsLabel: '4/255', n: 500, accuracy: robust } } : {}),
});

describe('training in the report', () => {
  const base = trainingView('baseline', 'baseline', [epoch(1, 0.5, 0.3), epoch(2, 0.6, 0.45), epoch(3, 0.7, 0.4)], 'PGD-10 adversarial training, L-inf eps 4/255 (step 0.00392)');
  const jpeg = trainingView('jpeg-dl', 'jpeg-dl', [1, 2, 3].map((e) => ({ ...epoch(e, 0.4 + e / 10, 0.2), testAcc: { soft: 0.5, hard: 0.1 } })));

  it('keeps every epoch without the tables, and summarises the last and the best robust epoch', () => {
    expect(base.epochs[1]).toEqual({ epoch: 2, lr: 0.05, trainLoss: 1.8, trainAcc: 0.6, testAcc: { plain: 0.6 - 0.05 }, testRobustAcc: { attack: 'pgd-10', epsLabel: '4/255', n: 500, accuracy: 0.45 }, seconds: 2, imagesPerSec: 500 });
    const t = trainingTableRows([base, jpeg]);
    expect(t.header).toEqual(['model', 'training', 'epochs', 'final train loss', 'final train acc %', 'final test acc %', 'final robust acc %', 'best robust acc % (epoch)', 'mean s/epoch']);
    expect(t.rows[0]).toEqual(['baseline', 'PGD-10 adversarial training, L-inf eps 4/255 (step 0.00392)', '3', '1.7000', '70.0', '65.0', '40.0 (pgd-10 at 4/255)', '45.0 (2)', '2.0']);
    expect(t.rows[1].slice(0, 6)).toEqual(['jpeg-dl', '–', '3', '1.7000', '70.0', 'soft 50.0, hard 10.0']);
    expect(trainingTableRows([{ ...jpeg, epochs: jpeg.epochs.map(({ testRobustAcc, ...e }) => e) }]).header).not.toContain('final robust acc %');
  });

  it('is rendered in Markdown and HTML (plots of train, test and robust accuracy), and absent when not given', () => {
    const report = buildReport({ ...fixedInput(), training: [base, jpeg] });
    expect(renderMarkdown(report)).toContain('## Training');
    const html = renderHtml(report);
    expect(html).toContain('<h2>Training</h2>');
    for (const title of ['Training accuracy (augmented batches, training mode)', 'Test accuracy after each epoch', 'Robust test accuracy (pgd-10 at 4/255, 500 images)']) expect(html).toContain(`<title>${title}</title>`);
    // Test accuracy: the baseline and both JPEG modes, one line each.
    const test = trainingPlotsSvg([base, jpeg])[1];
    expect(test).toContain('jpeg-dl [soft]');
    expect(test).toContain('jpeg-dl [hard]');
    expect(test.match(/<polyline/g)).toHaveLength(3);
    expect(test).toContain('baseline, epoch 2: 55.0%');
    const plain = buildReport(fixedInput());
    expect(plain.training).toBeUndefined();
    expect(renderMarkdown(plain)).not.toContain('## Training');
    expect(renderHtml(plain)).not.toContain('<h2>Training</h2>');
  });

  it('long schedules: epoch labels thinned to about 12, no point markers', () => {
    const long = trainingView('baseline', 'baseline', Array.from({ length: 240 }, (_, i) => epoch(i + 1, 0.5)));
    const svg = trainingPlotsSvg([long])[0];
    expect(svg.match(/<circle/g)).toHaveLength(1); // the legend's only
    const labels = [...svg.matchAll(/font-size="11">(\d+)<\/text>/g)].map((m) => Number(m[1])).filter((v) => v > 100 || v === 1);
    expect(labels[0]).toBe(1);
    expect(labels).toContain(240);
  });
});

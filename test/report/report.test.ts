import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport, mainTable, fmtDiff, findCell, stageTable, stageTableRows } from '../../src/report/model.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderTerminal } from '../../src/report/terminal.ts';
import { renderHtml } from '../../src/report/html.ts';
import { heatColor, heatmapSvg } from '../../src/report/svg.ts';
import { writeReport } from '../../src/report/write.ts';
import { fmtNorm } from '../../src/report/format.ts';
import { checkBalanced, fixedInput } from './fixtures.ts';

describe('buildReport', () => {
  const r = buildReport(fixedInput());

  it('orders series baseline first and takes differences against it', () => {
    expect(r.series.map((s) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]']);
    expect(r.reference).toBe(r.series[0].key);
    expect(r.attacks).toEqual(['clean', 'fgsm', 'pgd', 'worst-case']);
    expect(r.epsilons.map((e) => e.label)).toEqual(['0', '1/255', '4/255']);
    expect(r.seeds).toEqual([0, 1]);
  });

  it('aggregates seeds and computes differences in points', () => {
    // baseline clean: 8/10 (seed 0), 7/10 (seed 1) -> 75.0 ± 7.1; jpeg-dl 9, 8 -> 85.0 ± 7.1
    const b = findCell(r, r.series[0].key, 'clean', '0')!, j = findCell(r, r.series[1].key, 'clean', '0')!;
    expect(b.mean).toBeCloseTo(0.75, 12);
    expect(b.std).toBeCloseTo(Math.SQRT1_2 / 10, 12);
    expect(fmtDiff(j, b)).toBe('+10.0');
    const { header, rows } = mainTable(r);
    expect(header).toEqual(['attack', 'eps', 'baseline', 'jpeg-dl [soft]', 'Δ jpeg-dl [soft] (pts)']);
    expect(rows[0]).toEqual(['clean', '0', '75.0 ± 7.1', '85.0 ± 7.1', '+10.0']);
    // fgsm 4/255: baseline 8-4=4, 7-4=3 -> 35.0; jpeg-dl 9-2=7, 8-2=6 -> 65.0
    expect(rows.find((x) => x[0] === 'fgsm' && x[1] === '4/255')).toEqual(['fgsm', '4/255', '35.0 ± 7.1', '65.0 ± 7.1', '+30.0']);
    // no eps=0 attack rows (they repeat the clean row)
    expect(rows.filter((x) => x[1] === '0')).toHaveLength(1);
  });

  it('has a robust accuracy row at or below every attack, strictly below when attacks miss different images', () => {
    const rows = mainTable(r).rows;
    const robust = rows.find((x) => x[0] === 'robust (worst case)' && x[1] === '1/255')!;
    // baseline at 1/255: fgsm keeps images 0..6 (seed 0), pgd keeps 1..6 minus 0 plus 6 -> AND = 1..5 = 5? checked by bitmaps
    const wc = findCell(r, r.series[0].key, 'worst-case', '1/255')!;
    const f = findCell(r, r.series[0].key, 'fgsm', '1/255')!, p = findCell(r, r.series[0].key, 'pgd', '1/255')!;
    expect(wc.mean).toBeLessThan(Math.min(f.mean, p.mean));
    expect(robust[2]).toBe(`${(100 * wc.mean).toFixed(1)} ± ${(100 * wc.std!).toFixed(1)}`);
  });

  it('refuses to build from no records', () => {
    expect(() => buildReport({ ...fixedInput(), records: [] })).toThrow(/no records/);
  });
});

describe('renderers', () => {
  const r = buildReport(fixedInput());

  it('markdown: side-by-side table, robust row, backend, jpeg mode and n', () => {
    const md = renderMarkdown(r);
    expect(md).toContain('| attack | eps | baseline | jpeg-dl [soft] | Δ jpeg-dl [soft] (pts) |');
    expect(md).toContain('| fgsm | 4/255 | 35.0 ± 7.1 | 65.0 ± 7.1 | +30.0 |');
    expect(md).toMatch(/\| robust \(worst case\) \| 4\/255 \|/);
    expect(md).toContain('backend tensorflow (test)');
    expect(md).toContain('JPEG mode soft');
    expect(md).toContain('n = 10 images per cell');
    expect(md).toContain('mean ± std (sample, n-1) over 2 separately trained seeds');
    expect(md).toContain('## Paper vs this run');
    expect(md).toContain('### jpeg-dl: luma, learned');
  });

  it('terminal: same numbers in a drawn table', () => {
    const t = renderTerminal(r);
    expect(t).toMatch(/fgsm\s*│\s*4\/255\s*│\s*35\.0 ± 7\.1\s*│\s*65\.0 ± 7\.1\s*│\s*\+30\.0/);
    expect(t).toContain('Δ in percentage points vs baseline');
  });

  it('html: tables, one plot per attack plus worst case, heat maps, well formed, no scripts or remote URLs', () => {
    const html = renderHtml(r);
    expect((html.match(/<svg [^>]*class="plot"/g) ?? []).length).toBe(3);
    expect((html.match(/<svg [^>]*class="heatmap"/g) ?? []).length).toBe(2);
    expect((html.match(/<table/g) ?? []).length).toBe(3); // main + paired comparison + details (no paper setting matches fashion-mnist)
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    checkBalanced(html);
    // each plot has one polyline per series with as many points as eps
    const plot = html.split('<svg').find((s) => s.includes('Accuracy under fgsm'))!;
    const lines = [...plot.matchAll(/<polyline[^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').length);
    expect(lines).toEqual([3, 3]);
  });

  it('ensemble stages: a table from the records that carry them, in Markdown and HTML; none without', () => {
    const input = fixedInput();
    expect(buildReport(input).stages).toBeUndefined();
    expect(renderMarkdown(buildReport(input))).not.toContain('## Ensemble stages');
    // Pretend the PGD cells were an ensemble: stages + still correct = correct clean.
    input.records = input.records.map((r) => (r.attack === 'pgd' && r.threat.eps > 0 ? { ...r, stages: { 'apgd-ce': r.cleanCorrect - r.correct - (r.cleanCorrect > r.correct ? 1 : 0), square: r.cleanCorrect > r.correct ? 1 : 0 } } : r));
    const report = buildReport(input);
    const t = stageTable(report.records)!;
    expect(t.names).toEqual(['apgd-ce', 'square']);
    expect(t.rows).toHaveLength(input.records.filter((r) => r.stages).length);
    for (const row of t.rows) expect(Object.values(row.fooledBy).reduce((a, b) => a + b, 0) + row.correct).toBe(row.cleanCorrect);
    const { header, rows } = stageTableRows(t);
    expect(header).toEqual(['model', 'seed', 'attack', 'eps', 'correct clean', 'fooled by apgd-ce', 'fooled by square', 'still correct']);
    expect(rows[0].length).toBe(header.length);
    const md = renderMarkdown(report);
    expect(md).toContain('## Ensemble stages');
    expect(md).toContain('| fooled by apgd-ce |');
    const html = renderHtml(report);
    expect(html).toContain('<h2>Ensemble stages</h2>');
    checkBalanced(html);
  });

  it('escapes hostile names in HTML', () => {
    const input = fixedInput();
    input.records = input.records.map((x) => ({ ...x, model: x.model === 'baseline' ? '<b>&"x' : x.model }));
    const html = renderHtml(buildReport(input));
    expect(html).toContain('&lt;b&gt;&amp;&quot;x');
    checkBalanced(html);
  });

  it('writes report.json with every number, config and records, plus md and html', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-report-'));
    const files = writeReport(dir, r);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.schema).toBe('jpegdl-robust-report/1');
    expect(json.records).toHaveLength(r.records.length);
    expect(json.config.command).toBe('jpegdl-robust evaluate --test');
    expect(json.backend).toBe('tensorflow (test)');
    expect(json.cells.length).toBe(r.cells.length);
    expect(json.timings.totalCellMs).toBe(r.records.reduce((s, x) => s + x.wallTimeMs, 0));
    expect(readFileSync(files.markdown, 'utf8')).toBe(renderMarkdown(r));
    expect(readFileSync(files.html, 'utf8')).toContain('<svg');
  });
});

describe('fmtNorm', () => {
  it('shows x/255 for L-inf sizes only (L2 and L1 sizes sum over pixels)', () => {
    expect(fmtNorm(8 / 255)).toBe('0.0314 (8.00/255)');
    expect(fmtNorm(8 / 255, 'linf')).toBe('0.0314 (8.00/255)');
    expect(fmtNorm(3.64541, 'l1')).toBe('3.6454');
    expect(fmtNorm(0.5, 'l2')).toBe('0.5000');
    expect(fmtNorm(null, 'l1')).toBe('–');
  });
});

describe('svg pieces', () => {
  it('heat map needs 64 values and darkens monotonically with the step', () => {
    expect(() => heatmapSvg([1, 2], { title: 't', min: 1, max: 2 })).toThrow(/64 values/);
    const lum = (c: string) => { const [r, g, b] = c.match(/\d+/g)!.map(Number); return 0.299 * r + 0.587 * g + 0.114 * b; };
    const ls = [0, 0.25, 0.5, 0.75, 1].map((t) => lum(heatColor(t)));
    for (let i = 1; i < ls.length; i++) expect(ls[i]).toBeLessThan(ls[i - 1]);
  });
});

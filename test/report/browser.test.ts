// Opens report.html in headless Chromium (file://, no network): tables and plots render, no console errors.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildReport } from '../../src/report/model.ts';
import { writeReport } from '../../src/report/write.ts';
import { fixedInput } from './fixtures.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`report.html browser test SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);

describe.skipIf(!hasChromium)('report.html in headless Chromium', () => {
  it('shows the tables and SVG plots with no console errors or network requests', async () => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'jpegdl-html-'));
    const files = writeReport(dir, buildReport(fixedInput()));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => { if (!r.url().startsWith('file://')) requests.push(r.url()); });
      await page.goto(pathToFileURL(files.html).href, { waitUntil: 'load' });
      expect(await page.title()).toBe('Test report');
      const mainRows = await page.locator('table.main tbody tr').count();
      expect(mainRows).toBe(1 + 3 * 2); // clean + (fgsm, pgd, worst case) x 2 eps
      expect(await page.locator('table.main th').allTextContents()).toEqual(['attack', 'eps', 'baseline', 'jpeg-dl [soft]', 'Δ jpeg-dl [soft] (pts)']);
      // plots and heat maps are laid out with a real size and hold their lines
      const plots = page.locator('svg.plot');
      expect(await plots.count()).toBe(3);
      for (let i = 0; i < 3; i++) {
        const box = await plots.nth(i).boundingBox();
        expect(box!.width).toBeGreaterThan(300);
        expect(box!.height).toBeGreaterThan(200);
        expect(await plots.nth(i).locator('polyline.series').count()).toBe(2);
      }
      expect(await page.locator('svg.heatmap rect').count()).toBe(128);
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      if (process.env.JPEGDL_SCREENSHOT) await page.screenshot({ path: process.env.JPEGDL_SCREENSHOT, fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

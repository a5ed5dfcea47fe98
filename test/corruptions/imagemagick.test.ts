// Motion blur against ImageMagick itself (the reference's Wand calls MotionBlurImage): bit for bit.
// Needs `convert` (Debian's imagemagick, installed by .ci/run); skipped with a visible reason without it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { motionBlur } from '../../src/corruptions/functions.ts';
import { Sampler } from '../../src/corruptions/random.ts';

let hasConvert = false;
try {
  hasConvert = /ImageMagick/.test(execFileSync('convert', ['-version'], { encoding: 'utf8' }));
} catch {
  hasConvert = false;
}
if (!hasConvert) console.warn('motion blur vs ImageMagick SKIPPED: no `convert` on PATH (apt-get install -y imagemagick)');

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-im-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!hasConvert)('motion blur equals ImageMagick', () => {
  it('on colour and grey images, at the CIFAR-10-C settings and random angles', () => {
    const r = new Sampler(21);
    for (const [channels, radius, sigma, angle] of [[3, 6, 1, 30], [3, 9, 2.5, -40], [1, 8, 2, 0], [3, 6, 1.5, -123], [1, 14, 12, -100], [3, 10, 4, 17.3]]) {
      const h = 20, w = 24;
      const data = Float32Array.from({ length: h * w * channels }, () => Math.floor(r.uniform() * 256) / 255);
      const png = new PNG({ width: w, height: h });
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < 3; k++) png.data[p * 4 + k] = Math.round(data[p * channels + (channels === 1 ? 0 : k)] * 255);
        png.data[p * 4 + 3] = 255;
      }
      const inPath = join(tmp, 'in.png');
      const outPath = join(tmp, 'out.png');
      writeFileSync(inPath, PNG.sync.write(png));
      execFileSync('convert', [inPath, '-motion-blur', `${radius}x${sigma}+${angle}`, '-depth', '8', `PNG24:${outPath}`]);
      const ref = PNG.sync.read(readFileSync(outPath));
      const got = motionBlur({ data, height: h, width: w, channels }, radius, sigma, angle);
      let differ = 0;
      for (let p = 0; p < h * w; p++) for (let k = 0; k < channels; k++) if (Math.round(got[p * channels + k] * 255) !== ref.data[p * 4 + k]) differ++;
      expect(differ, `${channels} channel(s), ${radius}x${sigma}+${angle}`).toBe(0);
    }
  });
});

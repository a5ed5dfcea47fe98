/** Fixed records for report tests: baseline and JPEG-DL (soft), 2 seeds, fgsm and pgd at 3 eps, n = 10. */
import { packBits, RECORD_SCHEMA, type CellRecord, type Variant } from '../../src/eval/records.ts';
import type { ReportConfig, ReportInput } from '../../src/report/model.ts';

const EPS: [string, number][] = [['0', 0], ['1/255', 1 / 255], ['4/255', 4 / 255]];

/** Correct images (first k of 10) for a cell: simple, so every expected number is easy to derive. */
function k(variant: Variant, seed: number, attack: string, eps: number): number {
  const clean = variant === 'baseline' ? 8 : 9;
  if (attack === 'clean' || eps === 0) return clean - seed; // seed 1 one worse
  const drop = Math.round(eps * 255) * (attack === 'pgd' ? 2 : 1) * (variant === 'baseline' ? 1 : 0.5);
  return Math.max(0, Math.floor(clean - seed - drop));
}

function record(model: string, variant: Variant, jpegMode: string | null, seed: number, attack: string, eps: [string, number], params: Record<string, unknown>): CellRecord {
  const n = 10;
  const correct = k(variant, seed, attack, eps[1]);
  const cleanCorrect = k(variant, seed, 'clean', 0);
  // pgd misses a different image than fgsm at 4/255 for the baseline, so the worst case is below both
  const bits = Array.from({ length: n }, (_, i) => (i < correct ? 1 : 0));
  if (variant === 'baseline' && attack === 'pgd' && eps[1] > 0 && correct > 0) { bits[0] = 0; bits[n - 1] = 1; }
  return {
    schema: RECORD_SCHEMA, model, variant, modelSeed: seed, jpegMode, attack, attackParams: params,
    threat: { norm: 'linf', eps: eps[1], epsLabel: eps[0], bounds: [0, 1] }, n, correct, accuracy: correct / n, cleanCorrect,
    successRate: attack === 'clean' ? null : (cleanCorrect - Math.min(correct, cleanCorrect)) / cleanCorrect,
    meanNorm: eps[1] * 0.9, maxNorm: eps[1], wallTimeMs: 100 + seed, seed: 7, backend: 'tensorflow (test)', correctBits: packBits(bits), finishedAt: '2026-01-01T00:00:00Z',
  };
}

/** All records of the fixed sweep. */
export function fixedRecords(): CellRecord[] {
  const out: CellRecord[] = [];
  for (const [model, variant, mode] of [['baseline', 'baseline', null], ['jpeg-dl', 'jpeg-dl', 'soft']] as const) {
    for (const seed of [0, 1]) {
      out.push(record(model, variant, mode, seed, 'clean', ['0', 0], {}));
      for (const [attack, params] of [['fgsm', {}], ['pgd', { steps: 5 }]] as const) for (const e of EPS) out.push(record(model, variant, mode, seed, attack, e, params));
    }
  }
  return out;
}

export const fixedConfig: ReportConfig = {
  dataset: 'fashion-mnist-embedded', split: 'test', n: 10, epsilons: EPS.map((e) => e[0]), norm: 'linf',
  attacks: [{ name: 'fgsm', params: {} }, { name: 'pgd', params: { steps: 5 } }],
  models: [{ name: 'baseline', variant: 'baseline', seed: 0 }, { name: 'baseline', variant: 'baseline', seed: 1 }, { name: 'jpeg-dl', variant: 'jpeg-dl', seed: 0, jpegModes: ['soft'] }, { name: 'jpeg-dl', variant: 'jpeg-dl', seed: 1, jpegModes: ['soft'] }],
  seed: 7, batchSize: 5, command: 'jpegdl-robust evaluate --test',
};

/** A full report input including one learned/initial table pair. */
export function fixedInput(): ReportInput {
  const initial = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
  return {
    title: 'Test report', records: fixedRecords(), config: fixedConfig, backend: 'tensorflow (test)', versions: { jpegdl: '0.1.0' },
    tables: [{ model: 'jpeg-dl', channel: 'luma', learned: initial.map((q, i) => q * (0.5 + (i % 8) / 8)), initial, initialLabel: 'standard JPEG, quality 50' }],
    createdAt: '2026-01-01T00:00:00Z',
  };
}

/** Minimal well-formedness check: every non-void tag is closed in order, attributes quoted. */
export function checkBalanced(html: string): void {
  const VOID = new Set(['meta', 'br', 'hr', 'img', 'link', 'input']);
  const stack: string[] = [];
  const body = html.replace(/<!DOCTYPE[^>]*>/i, '').replace(/<style>[\s\S]*?<\/style>/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:="[^"<>]*")?)*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self || VOID.has(name.toLowerCase())) continue;
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new Error(`</${name}> closes <${top}>`);
    } else stack.push(name);
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(' ')}`);
  const stray = body.replace(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:="[^"<>]*")?)*)\s*(\/?)>/g, '');
  if (/[<>]/.test(stray)) throw new Error(`unescaped < or > near: ${stray.slice(Math.max(0, stray.search(/[<>]/) - 40), stray.search(/[<>]/) + 40)}`);
}

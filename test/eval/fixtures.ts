/** Hand-made records for tests of records, summaries and reports. */
import { packBits, RECORD_SCHEMA, type CellRecord } from '../../src/eval/records.ts';

/** A valid record (4 images, 3 correct) with fields overridden by `over`. */
export function fakeRecord(over: Partial<CellRecord> = {}): CellRecord {
  const bits = over.correctBits ? undefined : [1, 0, 1, 1];
  return {
    schema: RECORD_SCHEMA, model: 'baseline', variant: 'baseline', modelSeed: 0, jpegMode: null, attack: 'fgsm', attackParams: {},
    threat: { norm: 'linf', eps: 1 / 255, epsLabel: '1/255', bounds: [0, 1] }, n: 4, correct: 3, accuracy: 0.75, cleanCorrect: 4,
    successRate: 0.25, meanNorm: 0.003, maxNorm: 1 / 255, wallTimeMs: 5, seed: 1, backend: 'test', correctBits: bits ? packBits(bits) : '', finishedAt: '2026-01-01T00:00:00Z',
    ...over,
  };
}


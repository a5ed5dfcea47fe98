/** Per-epoch training records (history.json): what the reports plot, tables included. */
import type { readTables } from './jpeg-params.ts';

/** Snapshot of every JPEG layer's tables (empty for the baseline). */
export type TableSnapshot = ReturnType<typeof readTables>;

/** One completed epoch. */
export interface EpochRecord {
  /** 1-based number of the completed epoch. */
  epoch: number;
  /** Backbone SGD learning rate used in this epoch. */
  lr: number;
  /** JPEG-table Adam learning rate used in this epoch (null when the model has no JPEG layer). */
  jpegLr: number | null;
  /** Mean training cross-entropy over the epoch (nats), with BatchNorm in training mode. */
  trainLoss: number;
  /** Training accuracy over the epoch in [0,1] (on augmented batches, training mode). */
  trainAcc: number;
  /** Images seen in the epoch. */
  images: number;
  /** Wall time of the epoch's training steps in seconds, and the resulting throughput. */
  seconds: number;
  imagesPerSec: number;
  /** Clean test accuracy in [0,1] after the epoch, per JPEG mode ('plain' for models without a JPEG layer). */
  testAcc?: Partial<Record<'plain' | 'soft' | 'hard', number>>;
  /** Adversarial training: test accuracy after the epoch under PGD at the training budget (JPEG-DL: soft mode). */
  testRobustAcc?: { attack: string; epsLabel: string; n: number; accuracy: number };
  /** JPEG tables after the epoch. */
  tables: TableSnapshot;
}

/** Robust accuracy of an epoch under adversarial training (history.json `testRobustAcc`). */
export type RobustRecord = NonNullable<EpochRecord['testRobustAcc']>;

/** The last and the best (earliest on ties) robust accuracy over the epochs that measured one, or null when none did. */
export function robustSummary(epochs: { epoch: number; testRobustAcc?: RobustRecord }[]): { last: RobustRecord; best: RobustRecord; bestEpoch: number } | null {
  const measured = epochs.filter((e) => e.testRobustAcc);
  if (!measured.length) return null;
  const best = measured.reduce((a, e) => (e.testRobustAcc!.accuracy > a.testRobustAcc!.accuracy ? e : a));
  return { last: measured[measured.length - 1].testRobustAcc!, best: best.testRobustAcc!, bestEpoch: best.epoch };
}

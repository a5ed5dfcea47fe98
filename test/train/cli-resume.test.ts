// Kills a real `jpegdl-robust train` child process mid-run, resumes it, and checks the final
// weights equal those of an uninterrupted in-process run with the same options and seed.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { defaultTrainConfig, scaledMilestones } from '../../src/train/config.ts';
import { runTrainingJob, type TrainJobSpec } from '../../src/train/job.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-train-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(import.meta.dirname, '..', '..');
const EPOCHS = 4;
const args = (out: string) => [
  'bin/jpegdl-robust.js', 'train', '--out', out, '--model', 'small_cnn', '--dataset', 'synthetic', '--train-size', '48', '--test-size', '16',
  '--image-size', '16', '--jpeg', '--epochs', String(EPOCHS), '--batch-size', '16', '--seed', '5', '--no-progress',
];

function runCli(argv: string[]): { done: Promise<number | null>; kill: () => void } {
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', () => {});
  const done = new Promise<number | null>((res) => child.on('exit', (code) => (code && code !== 0 ? (console.error(err), res(code)) : res(code))));
  return { done, kill: () => child.kill('SIGKILL') };
}

const epochOf = (dir: string) => {
  try {
    return JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')).epoch as number;
  } catch {
    return 0;
  }
};

describe('train CLI: kill and --resume', () => {
  it('a SIGKILLed run resumed with --resume ends with the same weights as an uninterrupted run', async () => {
    const out = join(tmp, 'killed');
    const first = runCli(args(out));
    let killedAt = -1;
    const exited = first.done.then(() => 'exited');
    for (;;) {
      const e = epochOf(out);
      if (e >= 1) {
        first.kill();
        killedAt = e;
        break;
      }
      if ((await Promise.race([exited, new Promise((r) => setTimeout(() => r('wait'), 50))])) === 'exited') break;
    }
    await first.done;
    expect(killedAt).toBeGreaterThanOrEqual(1);
    expect(killedAt).toBeLessThan(EPOCHS);
    expect(existsSync(join(out, 'model'))).toBe(false); // not finished
    const resumed = runCli([...args(out), '--resume']);
    expect(await resumed.done).toBe(0);
    expect(epochOf(out)).toBe(EPOCHS);
    expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);

    // The same spec, uninterrupted, in this process.
    const train = defaultTrainConfig({ epochs: EPOCHS, milestones: scaledMilestones(EPOCHS), batchSize: 16, lr: 0.05, seed: 5 });
    const spec: TrainJobSpec = {
      dataset: { name: 'synthetic', trainSize: 48, testSize: 16, imageSize: 16 },
      model: 'small_cnn',
      jpeg: { alpha: 5, quality: 50 },
      modelSeed: 5,
      train,
      evalBatchSize: 256,
    };
    // Without resume the killed run's directory is refused before any work.
    await expect(runTrainingJob(spec, out, { progress: false })).rejects.toThrow(/--resume/);
    const ref = join(tmp, 'uninterrupted');
    await runTrainingJob(spec, ref, { progress: false });
    expect(JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(spec)));
    const a = readCheckpoint(join(out, 'checkpoint'));
    const b = readCheckpoint(join(ref, 'checkpoint'));
    expect(a.weights.length).toBe(b.weights.length);
    a.weights.forEach((w, i) => expect(Array.from(w.values)).toEqual(Array.from(b.weights[i].values)));
    expect(a.state.history.map((h) => h.trainLoss)).toEqual(b.state.history.map((h) => h.trainLoss));
    expect(a.state.tables).toEqual(b.state.tables);
  });
});

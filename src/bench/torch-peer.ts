/**
 * The PyTorch side of the benchmark: scripts/bench_torch.py run as a long-lived child
 * answering JSON-lines timing requests, so tfjs and PyTorch repeats can alternate
 * (both see the same machine load).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch.py', import.meta.url));

export interface TorchInfo {
  torchVersion: string;
  python: string;
  threads: number;
  mkldnn: boolean;
}

export interface TorchRequest {
  model: string;
  kind: 'train' | 'attack';
  channelsLast: boolean;
  /** Attack on the eval model with conv+BN folded (torch.fx fuse), as the tfjs attacks fold BN. */
  foldBn?: boolean;
  steps: number;
  warmup: number;
}

/** A running bench_torch.py --serve. */
export class TorchPeer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterableIterator<string>,
    private readonly rl: Interface,
    readonly info: TorchInfo,
  ) {}

  /**
   * Start the peer; resolves to `{skipped: reason}` when python3 or torch is missing
   * (the benchmark then says so instead of failing).
   */
  static async start(opts: { python: string; threads: number; batch: number; size: number; classes: number }): Promise<TorchPeer | { skipped: string }> {
    const child = spawn(opts.python, [TORCH_SCRIPT, '--serve', '--threads', String(opts.threads), '--batch', String(opts.batch), '--size', String(opts.size), '--classes', String(opts.classes)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: String(opts.threads), MKL_NUM_THREADS: String(opts.threads) },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const spawnError = new Promise<string>((resolve) => child.on('error', (e) => resolve(`${opts.python} could not start: ${e.message}`)));
    const rl = createInterface({ input: child.stdout });
    const lines = rl[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next().then((r) => (r.done ? undefined : r.value)), spawnError.then((m) => ({ error: m }))]);
    if (first === undefined || typeof first !== 'string') {
      child.kill();
      const reason = typeof first === 'object' ? first.error : `bench_torch.py exited: ${stderr.trim().split('\n').pop() ?? ''}`;
      return { skipped: reason };
    }
    const info = JSON.parse(first) as TorchInfo & { error?: string };
    if (info.error) {
      child.kill();
      return { skipped: info.error.startsWith('torch not importable') ? 'skipped: torch not importable' : info.error };
    }
    return new TorchPeer(child, lines, rl, info);
  }

  /** Per-step seconds of `req.steps` steps (after `req.warmup` untimed ones), and the model's parameter count. */
  async time(req: TorchRequest): Promise<{ seconds: number[]; params: number }> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error('bench_torch.py stopped answering');
    return JSON.parse(r.value) as { seconds: number[]; params: number };
  }

  /** Stop the child. */
  close(): void {
    this.child.stdin.end();
    this.rl.close();
  }
}

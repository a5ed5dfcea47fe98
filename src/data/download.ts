/**
 * `datasets download cifar10|cifar100`: fetch the official binary archive, verify the MD5 the
 * dataset's page publishes, and unpack it (with the `tar` package) into <dest>/<official folder>.
 * The unpacked folder appears atomically, only after the checksum matched and every expected file
 * was found; a failed or killed download leaves at most a `.part` file behind.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import * as tar from 'tar';
import { replaceDirAtomic } from '../io/atomic.ts';
import { CIFAR_LAYOUT, cifarExpectedFiles, resolveCifarDir, type CifarVariant } from './cifar.ts';

/** The official archives (https://www.cs.toronto.edu/~kriz/cifar.html) and their published MD5 sums. */
export const CIFAR_ARCHIVES: Record<CifarVariant, { file: string; md5: string; bytes: number }> = {
  cifar10: { file: 'cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530', bytes: 170_052_171 },
  cifar100: { file: 'cifar-100-binary.tar.gz', md5: '03b5dce01913d631647c71ecec9e9cb8', bytes: 168_513_733 },
};

/** Where the archives are published. */
export const CIFAR_BASE_URL = 'https://www.cs.toronto.edu/~kriz';

/** Options for `downloadCifar`. */
export interface DownloadOptions {
  /** Folder to unpack into (the dataset lands in <dest>/<official folder>). */
  dest: string;
  /** Replaces CIFAR_BASE_URL (mirrors; tests serve from 127.0.0.1). */
  baseUrl?: string;
  /** Replaces the published MD5 (only for mirrors serving a different archive; tests). */
  md5?: string;
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** Download again even when a complete folder is already there. */
  force?: boolean;
  /** Keep the verified archive next to the folder (default: delete it). */
  keepArchive?: boolean;
}

/** What `downloadCifar` did. */
export interface DownloadResult {
  dir: string;
  url: string;
  md5: string;
  bytes: number;
  skipped: boolean;
}

/** Download (if needed), verify and unpack CIFAR-10 or CIFAR-100 binary; returns the dataset folder. */
export async function downloadCifar(variant: CifarVariant, opts: DownloadOptions): Promise<DownloadResult> {
  if (!(variant in CIFAR_ARCHIVES)) throw new Error(`dataset: can only download cifar10 or cifar100, not "${variant}"`);
  if (!opts.dest) throw new Error('dest: a destination folder is required');
  const archive = CIFAR_ARCHIVES[variant];
  const expected = (opts.md5 ?? archive.md5).toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(expected)) throw new Error(`md5: "${opts.md5}" is not a 32-digit hex MD5`);
  const base = (opts.baseUrl ?? CIFAR_BASE_URL).replace(/\/+$/, '');
  const url = `${base}/${archive.file}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`baseUrl: "${opts.baseUrl}" does not make a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`baseUrl: only http and https are supported, got ${parsed.protocol}`);
  const folder = CIFAR_LAYOUT[variant].folder;
  const dir = join(opts.dest, folder);
  if (!opts.force && existsSync(dir)) {
    try {
      resolveCifarDir(dir, variant);
      return { dir, url, md5: expected, bytes: 0, skipped: true };
    } catch {
      // Incomplete folder: download again and replace it.
    }
  }
  mkdirSync(opts.dest, { recursive: true });
  const part = join(opts.dest, `${archive.file}.part`);
  const { md5, bytes } = await fetchToFile(url, part, opts.progress ?? Boolean(process.stderr.isTTY));
  if (md5 !== expected) {
    rmSync(part, { force: true });
    throw new Error(`${url}: MD5 mismatch, expected ${expected} but the ${bytes} bytes received hash to ${md5}; nothing was unpacked`);
  }
  await replaceDirAtomic(dir, async (tmp) => {
    // Only regular files and folders under the official top folder; strip that folder.
    await tar.x({
      file: part,
      cwd: tmp,
      strip: 1,
      filter: (p, entry) => {
        const type = 'type' in entry ? entry.type : 'File';
        return (p === folder || p === `${folder}/` || p.startsWith(`${folder}/`)) && (type === 'File' || type === 'Directory');
      },
    });
    for (const f of cifarExpectedFiles(variant)) {
      if (!existsSync(join(tmp, f))) throw new Error(`${url}: the archive has no ${folder}/${f}; nothing was unpacked`);
    }
  });
  if (opts.keepArchive) {
    const { renameSync } = await import('node:fs');
    renameSync(part, join(opts.dest, archive.file));
  } else rmSync(part, { force: true });
  return { dir, url, md5, bytes, skipped: false };
}

/** Stream `url` into `file`, hashing it; throws on HTTP errors or a short body. */
async function fetchToFile(url: string, file: string, progress: boolean): Promise<{ md5: string; bytes: number }> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${url}: download failed (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok || !res.body) throw new Error(`${url}: download failed with HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || 0;
  const hash = createHash('md5');
  const out = createWriteStream(file);
  const bar = progress
    ? new cliProgress.SingleBar(
        {
          format: `${url.split('/').pop()} [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta}s`,
          stream: process.stderr,
          // Asked for explicitly on a non-terminal (logs): print a line every 2 s instead of nothing.
          noTTYOutput: true,
          notTTYSchedule: 2000,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(total, 0);
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      bar?.update(bytes);
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    rmSync(file, { force: true });
    throw new Error(`${url}: download interrupted after ${bytes} bytes (${(err as Error).message})`);
  } finally {
    bar?.stop();
  }
  if (total && bytes !== total) {
    rmSync(file, { force: true });
    throw new Error(`${url}: truncated download, ${bytes} of ${total} bytes`);
  }
  return { md5: hash.digest('hex'), bytes };
}

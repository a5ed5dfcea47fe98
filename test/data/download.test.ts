import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCifarDir } from '../../src/data/cifar.ts';
import { CIFAR_ARCHIVES, downloadCifar } from '../../src/data/download.ts';
import { tempDir, writeCifar10, writeCifar100 } from './fixtures.ts';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe('datasets download (over loopback only)', () => {
  const root = tempDir();
  const files = new Map<string, Buffer>();
  let server: Server;
  let base = '';
  let requests = 0;

  beforeAll(async () => {
    // Real-format tiny archives: the official top folder with every expected file inside.
    const src10 = join(root, 'src10');
    const src100 = join(root, 'src100');
    writeCifar10(src10, 1, 2);
    writeCifar100(src100, 3, 2);
    await tar.c({ gzip: true, file: join(root, 'c10.tgz'), cwd: src10 }, ['cifar-10-batches-bin']);
    await tar.c({ gzip: true, file: join(root, 'c100.tgz'), cwd: src100 }, ['cifar-100-binary']);
    // An archive with the right folder but a file missing.
    const partial = join(root, 'partial');
    writeCifar10(partial, 1, 1);
    writeFileSync(join(partial, 'cifar-10-batches-bin', 'data_batch_3.bin'), '');
    await tar.c({ gzip: true, file: join(root, 'partial.tgz'), cwd: partial }, ['cifar-10-batches-bin/data_batch_1.bin', 'cifar-10-batches-bin/batches.meta.txt']);
    files.set('/ok/cifar-10-binary.tar.gz', readFileSync(join(root, 'c10.tgz')));
    files.set('/ok/cifar-100-binary.tar.gz', readFileSync(join(root, 'c100.tgz')));
    files.set('/partial/cifar-10-binary.tar.gz', readFileSync(join(root, 'partial.tgz')));
    server = createServer((req, res) => {
      requests++;
      const body = files.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/gzip' });
      // Two chunks, so the streaming path is exercised.
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads, verifies the MD5, unpacks, and the result loads exactly like the source folder', async () => {
    const dest = join(root, 'dest');
    const body = files.get('/ok/cifar-10-binary.tar.gz')!;
    const res = await downloadCifar('cifar10', { dest, baseUrl: `${base}/ok/`, md5: md5(body), progress: false });
    expect(res).toMatchObject({ dir: join(dest, 'cifar-10-batches-bin'), md5: md5(body), bytes: body.length, skipped: false });
    expect(res.url).toBe(`${base}/ok/cifar-10-binary.tar.gz`);
    const got = loadCifarDir(dest, 'cifar10');
    const want = loadCifarDir(join(root, 'src10'), 'cifar10');
    expect(got.train.images).toEqual(want.train.images);
    expect(got.test.labels).toEqual(want.test.labels);
    // Only the folder is left: no .part, no archive.
    expect(readdirSync(dest)).toEqual(['cifar-10-batches-bin']);
    // A second call finds the complete folder and does not download.
    const before = requests;
    expect((await downloadCifar('cifar10', { dest, baseUrl: `${base}/ok`, md5: md5(body), progress: false })).skipped).toBe(true);
    expect(requests).toBe(before);
  });

  it('CIFAR-100 too, keeping the archive on request, with a progress bar', async () => {
    const dest = join(root, 'dest100');
    const body = files.get('/ok/cifar-100-binary.tar.gz')!;
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await downloadCifar('cifar100', { dest, baseUrl: `${base}/ok`, md5: md5(body).toUpperCase(), progress: true, keepArchive: true });
    } finally {
      spy.mockRestore();
    }
    expect(written.join('')).toContain(`100% | ${body.length}/${body.length} bytes`);
    expect(readdirSync(dest).sort()).toEqual(['cifar-100-binary', 'cifar-100-binary.tar.gz']);
    expect(loadCifarDir(dest, 'cifar100').train.labels.length).toBe(3);
  });

  it('a wrong MD5 (e.g. the published one for a different file) unpacks nothing and leaves nothing behind', async () => {
    const dest = join(root, 'bad-md5');
    await expect(downloadCifar('cifar10', { dest, baseUrl: `${base}/ok`, progress: false })).rejects.toThrow(
      new RegExp(`cifar-10-binary\\.tar\\.gz: MD5 mismatch, expected ${CIFAR_ARCHIVES.cifar10.md5} but the \\d+ bytes received hash to [0-9a-f]{32}; nothing was unpacked`),
    );
    expect(readdirSync(dest)).toEqual([]);
  });

  it('an archive without the expected files, an HTTP error, and bad options fail clearly', async () => {
    const dest = join(root, 'partial-dest');
    const body = files.get('/partial/cifar-10-binary.tar.gz')!;
    await expect(downloadCifar('cifar10', { dest, baseUrl: `${base}/partial`, md5: md5(body), progress: false })).rejects.toThrow(
      /the archive has no cifar-10-batches-bin\/data_batch_2\.bin; nothing was unpacked/,
    );
    expect(existsSync(join(dest, 'cifar-10-batches-bin'))).toBe(false);
    await expect(downloadCifar('cifar10', { dest, baseUrl: `${base}/missing`, progress: false })).rejects.toThrow(/missing\/cifar-10-binary\.tar\.gz: download failed with HTTP 404/);
    await expect(downloadCifar('cifar10', { dest, md5: 'xyz' })).rejects.toThrow(/md5: "xyz" is not a 32-digit hex MD5/);
    await expect(downloadCifar('cifar10', { dest, baseUrl: 'ftp://127.0.0.1' })).rejects.toThrow(/baseUrl: only http and https/);
    await expect(downloadCifar('mnist' as never, { dest })).rejects.toThrow(/can only download cifar10 or cifar100/);
  });

  it('replaces an incomplete existing folder', async () => {
    const dest = join(root, 'incomplete');
    mkdirSync(join(dest, 'cifar-10-batches-bin'), { recursive: true });
    writeFileSync(join(dest, 'cifar-10-batches-bin', 'data_batch_1.bin'), 'junk');
    const body = files.get('/ok/cifar-10-binary.tar.gz')!;
    const res = await downloadCifar('cifar10', { dest, baseUrl: `${base}/ok`, md5: md5(body), progress: false });
    expect(res.skipped).toBe(false);
    expect(loadCifarDir(dest, 'cifar10').train.labels.length).toBe(5);
  });
});

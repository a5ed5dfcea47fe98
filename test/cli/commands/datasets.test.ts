import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runCommand } from '../helpers.ts';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { register } from '../../../src/cli/commands/datasets.ts';
import { tempDir, writeCifar10 } from '../../data/fixtures.ts';


const run = (args: string[]) => runCommand(register, 'datasets', args);

describe('jpegdl-robust datasets', () => {
  const root = tempDir();

  it('list names every dataset and where its files are', async () => {
    const rows = JSON.parse(await run(['list', '--json'])) as { name: string; status: string }[];
    expect(rows.map((r) => r.name)).toEqual(['fashion-mnist-embedded', 'fashion-mnist', 'cifar10', 'cifar100', 'folder', 'synthetic']);
    expect(rows[0].status).toMatch(/^found: .*data[/\\]fashion-mnist-subset$/);
    expect(await run(['list'])).toMatch(/fashion-mnist-embedded[\s\S]*synthetic/);
  });

  it('info loads the dataset and prints per-class counts', async () => {
    const out = await run(['info', 'fashion-mnist-embedded']);
    expect(out).toMatch(/6000 train \+ 1000 test images of 28x28x1, 10 classes/);
    expect(out).toMatch(/Ankle boot\s*│\s*600\s*│\s*100/);
    const j = JSON.parse(await run(['info', 'synthetic', '--seed', '3', '--train-size', '60', '--test-size', '12', '--json']));
    expect(j.train.perClass).toEqual([10, 10, 10, 10, 10, 10]);
    expect(j.test.images).toBe(12);
    await expect(run(['info', 'synthetic', '--train-size', '0'])).rejects.toThrow(/--train-size: must be a positive integer, got "0"/);
    expect(j.train.shape).toEqual([32, 32, 3]);
    await expect(run(['info', 'imagenet'])).rejects.toThrow(/unknown name "imagenet"/);
    await expect(run(['info', 'cifar10', '--data-dir', join(root, 'none')])).rejects.toThrow(/none: directory does not exist/);
  });

  it('download fetches, verifies and unpacks from a loopback mirror', async () => {
    const src = join(root, 'src');
    writeCifar10(src, 1, 1);
    await tar.c({ gzip: true, file: join(root, 'a.tgz'), cwd: src }, ['cifar-10-batches-bin']);
    const body = readFileSync(join(root, 'a.tgz'));
    const server = createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const md5 = createHash('md5').update(body).digest('hex');
      const out = await run(['download', 'cifar10', '--dest', join(root, 'd'), '--base-url', url, '--md5', md5, '--no-progress']);
      expect(out).toMatch(new RegExp(`cifar10: ${body.length} bytes from .*MD5 ${md5} verified, unpacked to`));
      expect(await run(['download', 'cifar10', '--dest', join(root, 'd'), '--base-url', url, '--md5', md5])).toMatch(/already complete/);
      const info = JSON.parse(await run(['info', 'cifar10', '--data-dir', join(root, 'd'), '--json']));
      expect(info.train.images).toBe(5);
      await expect(run(['download', 'cifar10', '--dest', join(root, 'e'), '--base-url', url, '--no-progress'])).rejects.toThrow(/MD5 mismatch/);
      await expect(run(['download', 'folder'])).rejects.toThrow(/can only download cifar10 or cifar100/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

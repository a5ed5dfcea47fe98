import type { Command } from 'commander';
import { table } from 'table';
import { initBackend } from '../../backend.ts';
import { downloadCifar } from '../../data/download.ts';
import { DATASET_DESCRIPTIONS, defaultDataHome, loadDataset, locateDataset } from '../../data/load.ts';
import { classCounts, DATASET_NAMES, type DatasetName, type ImageDataset } from '../../data/types.ts';

// Lines only under the header and around the table: compact output.
const compact = { drawHorizontalLine: (i: number, n: number) => i === 0 || i === 1 || i === n };

function checkName(name: string): DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) throw new Error(`dataset: unknown name "${name}" (known: ${DATASET_NAMES.join(', ')})`);
  return name as DatasetName;
}

function positiveInt(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: must be a positive integer, got "${v}"`);
  return n;
}

/** Summary numbers of one split, for `datasets info`. */
function summarise(ds: ImageDataset) {
  let sum = 0;
  for (const v of ds.images) sum += v;
  return {
    images: ds.labels.length,
    shape: [ds.height, ds.width, ds.channels],
    numClasses: ds.numClasses,
    perClass: classCounts(ds),
    pixelMean: ds.images.length ? sum / ds.images.length : 0,
    source: ds.source,
  };
}

/** `jpegdl-robust datasets list|info|download`: what data is available, what it holds, and fetching CIFAR. */
export function register(program: Command): void {
  const cmd = program.command('datasets').description('list, inspect and download datasets');

  cmd
    .command('list')
    .description('list the dataset names and whether their files are found')
    .option('--data-dir <dir>', 'look here for the files instead of the default places')
    .option('--json', 'print as JSON')
    .action((opts: { dataDir?: string; json?: boolean }) => {
      const rows = DATASET_NAMES.map((name) => {
        const loc = locateDataset(name, opts.dataDir);
        const status =
          name === 'synthetic' ? 'generated' : loc.dir ? `found: ${loc.dir}` : name === 'folder' ? 'needs --data-dir' : `not found (looked in ${loc.looked.join(', ')})`;
        return { name, description: DATASET_DESCRIPTIONS[name], status };
      });
      if (opts.json) console.log(JSON.stringify(rows, null, 2));
      else {
        console.log(table([['name', 'description', 'files'], ...rows.map((r) => [r.name, r.description, r.status])], {
          ...compact,
          columns: { 1: { width: 50, wrapWord: true }, 2: { width: 40, wrapWord: true } },
        }));
        console.log(`downloads go to ${defaultDataHome()} (set JPEGDL_DATA_HOME or pass --dest to change)`);
      }
    });

  cmd
    .command('info <name>')
    .description('load a dataset and print its sizes, classes and per-class counts')
    .option('--data-dir <dir>', 'folder holding the files (fashion-mnist, cifar10, cifar100, folder)')
    .option('--image-size <n>', 'resize to n x n')
    .option('--label <which>', 'cifar100: fine or coarse', 'fine')
    .option('--seed <n>', 'seed (synthetic generator, folder split, subsets)', '0')
    .option('--train-size <n>', 'seeded class-balanced subset of the training images (synthetic: how many to generate)')
    .option('--test-size <n>', 'same for the test images')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { dataDir?: string; imageSize?: string; label: string; seed: string; trainSize?: string; testSize?: string; json?: boolean }) => {
      const dsName = checkName(name);
      const seed = Number(opts.seed);
      if (!Number.isFinite(seed)) throw new Error(`--seed: must be a number, got "${opts.seed}"`);
      if (opts.label !== 'fine' && opts.label !== 'coarse') throw new Error(`--label: must be fine or coarse, got "${opts.label}"`);
      const imageSize = opts.imageSize === undefined ? undefined : positiveInt(opts.imageSize, '--image-size');
      const trainSize = opts.trainSize === undefined ? undefined : positiveInt(opts.trainSize, '--train-size');
      const testSize = opts.testSize === undefined ? undefined : positiveInt(opts.testSize, '--test-size');
      if (dsName === 'folder' || imageSize !== undefined) await initBackend(); // resizing runs on TensorFlow.js
      const t0 = performance.now();
      const { train, test } = await loadDataset({ name: dsName, dataDir: opts.dataDir, imageSize, label: opts.label, seed, trainSize, testSize });
      const seconds = (performance.now() - t0) / 1000;
      const info = { name: dsName, classNames: train.classNames, train: summarise(train), test: summarise(test), loadSeconds: seconds };
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      console.log(`${dsName}: ${info.train.images} train + ${info.test.images} test images of ${train.height}x${train.width}x${train.channels}, ${train.numClasses} classes (loaded in ${seconds.toFixed(2)} s)`);
      console.log(`train: ${info.train.source}`);
      console.log(`test:  ${info.test.source}`);
      const shown = train.classNames.slice(0, 20);
      console.log(table([['label', 'class', 'train', 'test'], ...shown.map((c, i) => [String(i), c, String(info.train.perClass[i]), String(info.test.perClass[i])])], compact));
      if (train.numClasses > shown.length) console.log(`(${train.numClasses - shown.length} more classes; use --json for all)`);
      console.log(`pixel mean: train ${info.train.pixelMean.toFixed(4)}, test ${info.test.pixelMean.toFixed(4)}`);
    });

  cmd
    .command('download <name>')
    .description('download cifar10 or cifar100 (binary version), verify its published MD5 and unpack it')
    .option('--dest <dir>', 'folder to unpack into', defaultDataHome())
    .option('--base-url <url>', 'fetch from this mirror instead of https://www.cs.toronto.edu/~kriz')
    .option('--md5 <hex>', 'expect this MD5 instead of the published one (mirrors serving another archive)')
    .option('--force', 'download again even if the folder is complete')
    .option('--keep-archive', 'keep the verified .tar.gz next to the folder')
    .option('--no-progress', 'no progress bar')
    .action(async (name: string, opts: { dest: string; baseUrl?: string; md5?: string; force?: boolean; keepArchive?: boolean; progress: boolean }) => {
      if (name !== 'cifar10' && name !== 'cifar100') throw new Error(`dataset: can only download cifar10 or cifar100, not "${name}"`);
      const res = await downloadCifar(name, {
        dest: opts.dest,
        baseUrl: opts.baseUrl,
        md5: opts.md5,
        force: opts.force,
        keepArchive: opts.keepArchive,
        progress: opts.progress && Boolean(process.stderr.isTTY),
      });
      if (res.skipped) console.log(`${name}: already complete in ${res.dir} (use --force to download again)`);
      else console.log(`${name}: ${res.bytes} bytes from ${res.url}, MD5 ${res.md5} verified, unpacked to ${res.dir}`);
    });
}

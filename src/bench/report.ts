/** Markdown and terminal renderings of a benchmark report. */
import { table } from 'table';
import type { BenchReport } from './run.ts';

/** " (2 worker processes)" for the parallel-sweep row's backend label, else empty. */
const workersTag = (backend: string) => (backend.includes('worker processes') ? ` (${backend.split(',')[1].trim().split(' x ')[0]})` : '');

const f1 = (v: number | null) => (v == null || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toPrecision(3));

/** Rows: model, framework/backend, threads, batch, train img/s, attack img/s, ratios (tfjs rows). */
export function resultRows(r: BenchReport): string[][] {
  return r.results.map((x) => {
    const ratio = r.ratios.find((q) => q.model === x.model && q.backend === x.backend && x.framework === 'tfjs');
    return [
      x.model,
      x.framework === 'tfjs' ? `tfjs ${x.backend}` : `PyTorch ${x.backend}`,
      String(x.threads),
      String(x.batch),
      f1(x.trainImagesPerSecond),
      f1(x.attackImagesPerSecond),
      ratio && Number.isFinite(ratio.train) ? ratio.train.toFixed(2) : '',
      ratio && Number.isFinite(ratio.attack) ? ratio.attack.toFixed(2) : '',
    ];
  });
}

const HEADER = ['model', 'framework / backend', 'threads', 'batch', 'train img/s', 'attack img/s', 'train tfjs/PyTorch', 'attack tfjs/PyTorch'];

/** Terminal table of the results. */
export function renderTable(r: BenchReport): string {
  return table([HEADER, ...resultRows(r)]);
}

/** The Markdown report committed under reports/bench/. */
export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const v = r.versions;
  const lines = [
    '# Throughput benchmark: tfjs vs PyTorch',
    '',
    `Run ${r.createdAt} with \`npm run bench\`. Images/s are medians over timed repeats (higher is better);`,
    'ratios are tfjs / the faster PyTorch memory format on the same machine, model, batch and thread count (> 1: tfjs faster).',
    '',
    `- Machine: ${m.cpuModel}, ${m.cores} logical cores, ${m.os}; Node ${m.node}`,
    `- Load average (1/5/15 min): ${m.loadAvgStart.join(' / ')} at start, ${m.loadAvgEnd?.join(' / ') ?? '?'} at end`,
    `- tfjs ${v.tfjs}${v.tensorflow ? `, native TensorFlow ${v.tensorflow}` : ''}${v.torch ? `; PyTorch ${v.torch} (Python ${v.python}, oneDNN ${v.torchMkldnn ? 'on' : 'off'})` : ''}`,
    `- Input ${r.config.inputShape.join('x')}, ${r.config.numClasses} classes, batch ${r.config.batch}; threads ${r.config.threads} (TensorFlow intra-op pool and torch.set_num_threads)`,
    `- Protocol: ${r.config.protocol.warmup} warm-up steps, ${r.config.protocol.repeats} timed repeats x ${r.config.protocol.stepsPerRepeat} steps (native tfjs and PyTorch, interleaved); wasm ${r.config.protocol.wasmRepeats} repeats x 1 step`,
    '- Train step: forward (BN in training mode) + softmax cross-entropy + backward + SGD momentum update. Attack step: forward (inference mode) + gradient w.r.t. the input only (one FGSM/PGD step).',
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map(() => '---').join('|')}|`,
    ...resultRows(r).map((row) => `| ${row.join(' | ')} |`),
    '',
    ...(r.ratios.some((q) => q.attackVsFolded !== undefined)
      ? [
          'The tfjs attack step runs the BN-folded inference copy attacks use (src/inference/fold-batchnorm.ts); the headline attack ratio is against PyTorch eager as run by default. ' +
            'Against PyTorch with conv+BN folded as well (torch.fx fuse, channels-last): ' +
            r.ratios.filter((q) => q.attackVsFolded !== undefined).map((q) => `${q.model}${workersTag(q.backend)} ${q.attackVsFolded!.toFixed(2)}`).join(', ') + '.',
          '',
        ]
      : []),
    '## Parameters (identical architectures)',
    '',
    '| model | tfjs | PyTorch |',
    '|---|---|---|',
    ...Object.entries(r.params).map(([k, p]) => `| ${k} | ${p.tfjs} | ${p.pytorch ?? 'not run'} |`),
  ];
  const notes = r.results.filter((x) => x.note).map((x) => `- ${x.model} ${x.framework === 'tfjs' ? 'tfjs' : 'PyTorch'} ${x.backend}: ${x.note}`);
  if (notes.length) lines.push('', '## Notes', '', ...notes);
  if (r.skipped.length) lines.push('', '## Skipped', '', ...r.skipped.map((s) => `- ${s.what}: ${s.reason}`));
  if (r.warnings.length) lines.push('', '## Warnings', '', ...r.warnings.map((w) => `- ${w}`));
  return `${lines.join('\n')}\n`;
}

import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeBackend, initBackend } from '../../backend.ts';
import { importModel, type ImportOptions } from '../../io/import-model.ts';
import { loadKerasModel } from '../../io/keras.ts';
import { loadModel, saveModel } from '../../io/model-io.ts';
import { loadOnnxModelWithInfo } from '../../io/onnx.ts';

/** Parse a comma-separated list of finite numbers; throws naming the flag. */
export function parseNumberList(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (s === '' ? Number.NaN : Number(s)));
  const bad = parts.findIndex((_, i) => !Number.isFinite(nums[i]));
  if (bad >= 0) throw new Error(`${flag}: '${parts[bad]}' is not a number (give comma-separated numbers, e.g. 0.485,0.456,0.406)`);
  return nums;
}

interface ImportCliOptions {
  model: string;
  out: string;
  inputScale: string;
  mean?: string;
  std?: string;
  bgr?: boolean;
  outputs: string;
  name?: string;
  training?: string;
  backend: string;
}

/** `jpegdl-robust import`: wrap a user's tfjs layers model as a [0,1]-pixel, logits model every command takes. */
export function register(program: Command): void {
  program
    .command('import')
    .description('bring your own model: wrap a PyTorch model exported to ONNX, a Keras 3 .keras file or a tfjs layers model so it takes [0,1] NHWC pixels and returns logits')
    .requiredOption('--model <path>', 'an .onnx file (torch.onnx.export, NCHW, eval mode), a Keras 3 .keras file, or a directory with a tfjs layers model.json and its weight files')
    .requiredOption('--out <dir>', 'where to write the imported model (replaced atomically)')
    .option('--input-scale <s>', 'pixel scale the model was trained on: 1 for 0-1 pixels, 255 for 0-255', '1')
    .option('--mean <list>', "per-channel mean the model's pipeline subtracted, on its input scale and in its channel order (one value or one per channel)")
    .option('--std <list>', "per-channel std the model's pipeline divided by, on its input scale and in its channel order")
    .option('--bgr', 'the model was trained on BGR pixels (Caffe-style)')
    .option('--outputs <kind>', "auto: remove a final softmax and refuse probability outputs; logits: take the outputs as logits unchecked", 'auto')
    .option('--name <name>', 'name of the imported model')
    .option('--training <text>', "how the model was trained, e.g. 'PGD-10 adversarial training at 8/255'; shown in reports and leaderboards")
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .action(async (o: ImportCliOptions) => {
      // Everything checked before the model loads.
      const inputScale = Number(o.inputScale);
      if (!Number.isFinite(inputScale) || inputScale <= 0) throw new Error(`--input-scale: must be a number > 0 (1 for 0-1 pixels, 255 for 0-255), got '${o.inputScale}'`);
      const mean = o.mean === undefined ? undefined : parseNumberList(o.mean, '--mean');
      const std = o.std === undefined ? undefined : parseNumberList(o.std, '--std');
      std?.forEach((s) => {
        if (s <= 0) throw new Error(`--std: every std must be > 0, got ${s}`);
      });
      if (o.outputs !== 'auto' && o.outputs !== 'logits') throw new Error(`--outputs: must be auto or logits, got '${o.outputs}'`);
      if (resolve(o.out) === resolve(o.model)) throw new Error('--out: must differ from --model (the source model is left as it is)');
      if (!existsSync(o.model)) throw new Error(`--model: ${o.model} does not exist`);
      if (o.training !== undefined && o.training.trim() === '') throw new Error('--training: give a description of how the model was trained, or leave the flag out');

      const backend = await initBackend(o.backend);
      let source;
      let onnx;
      try {
        if (o.model.endsWith('.onnx')) ({ model: source, info: onnx } = await loadOnnxModelWithInfo(o.model));
        else source = o.model.endsWith('.keras') ? await loadKerasModel(o.model) : await loadModel(o.model);
      } catch (err) {
        throw new Error(`--model ${o.model}: ${(err as Error).message.replace(/^load(Keras|Onnx)?Model: (.*?\.(keras|onnx): )?/, '')}`);
      }
      const opts: ImportOptions = {
        inputScale,
        ...(mean ? { mean } : {}),
        ...(std ? { std } : {}),
        channelOrder: o.bgr ? 'bgr' : 'rgb',
        outputs: o.outputs,
        ...(o.name ? { name: o.name } : {}),
      };
      let imported;
      try {
        imported = await importModel(source, opts);
      } catch (err) {
        throw new Error(`--model ${o.model}: ${(err as Error).message.replace(/^importModel: /, '')}`);
      } finally {
        source.dispose();
      }
      const { model, summary } = imported;
      try {
        const format = onnx ? { format: 'onnx', onnx: { producer: onnx.producer, opset: onnx.opset, nodes: onnx.nodes, ops: onnx.ops } } : { format: o.model.endsWith('.keras') ? 'keras' : 'tfjs-layers' };
        await saveModel(model, o.out, {
          model: `imported:${summary.sourceName}`,
          imported: { ...summary, source: resolve(o.model), ...format },
          ...(o.training ? { training: o.training.trim() } : {}),
        });
      } finally {
        model.dispose();
      }
      const pre = [
        summary.channelOrder === 'bgr' ? 'RGB -> BGR' : null,
        summary.inputScale !== 1 ? `x ${summary.inputScale}` : null,
        summary.mean.some((m) => m !== 0) ? `- [${summary.mean.join(', ')}]` : null,
        summary.std.some((s) => s !== 1) ? `/ [${summary.std.join(', ')}]` : null,
      ].filter(Boolean);
      console.log(`backend: ${describeBackend(backend)}`);
      console.log(`imported ${o.model} (${summary.sourceName}) -> ${o.out}`);
      if (onnx) console.log(`  ONNX: ${onnx.producer}, opset ${onnx.opset}, ${onnx.nodes} nodes (${onnx.ops.join(', ')}); NCHW input [${onnx.inputShape.slice(1).join(', ')}] read as NHWC`);
      console.log(`  input: [0,1] pixels ${summary.inputShape.map((d) => d ?? '?').join('x')}${pre.length ? `, then ${pre.join(' ')} inside the model` : ' (as the model takes them)'}`);
      console.log(
        `  output: ${summary.classes} logits${summary.strippedSoftmax ? `; removed the final softmax of ${summary.strippedSoftmax} (softmax of the new logits = the old output, max difference ${summary.stripError.toExponential(1)})` : summary.outputs === 'logits' ? ' (taken as logits, unchecked)' : ' (no softmax found, outputs checked not to be probabilities)'}`,
      );
      console.log(`next: jpegdl-robust attack --model ${o.out} --attack apgd --dataset <name>, or evaluate --baseline ${o.out} --dataset <name>`);
    });
}

import * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import { table } from 'table';
import { quantileSeq } from 'mathjs';
import { accuracyFromMinimalNorms, evaluateAttackOnDataset, minimalNormsOnDataset } from '../../../attacks/epsilons.ts';
import { bpdaModel, hasBpdaLayers } from '../../../attacks/bpda.ts';
import { ensembleModel } from '../../../attacks/ensemble.ts';
import { findJpegModeLayers } from '../../jpeg/modes.ts';
import { isRandomised, reseedRandomLayers } from '../../layers/random.ts';
import { defended, parseDefenceSpec } from '../../defences/index.ts';
import { AUTOATTACK_VERSIONS } from '../../../attacks/autoattack.ts';
import { ATTACK_NAMES, getAttack } from '../../../attacks/index.ts';
import { backendInfo, describeBackend, initBackend } from '../../backend.ts';
import { loadDataset, subset } from '../../data/index.ts';
import type { DatasetName } from '../../data/types.ts';
import { exampleBudgets, parseEpsilonList } from '../../eps.ts';
import { writeJsonAtomic } from '../../io/atomic.ts';
import { assertLogitOutputs, declaredLogits } from '../../io/import-model.ts';
import { loadModel, loadModelMetadata } from '../../io/model-io.ts';
import { writeAdversarialExamples } from '../../report/examples.ts';
import { queryStats } from '../../report/queries.ts';
import { asLogitsFn, type Classifier } from '../../types.ts';

interface AttackCliOptions {
  model: string;
  attack: string;
  eps: string;
  dataset: string;
  dataDir?: string;
  imageSize?: string;
  channels?: string;
  split: string;
  n: string;
  batchSize: string;
  steps?: string;
  stepSize?: string;
  restarts?: string;
  queries?: string;
  targetClasses?: string;
  randomStart: boolean;
  loss?: string;
  eot?: string;
  autoattackVersion?: string;
  searchSteps?: string;
  confidence?: string;
  beta?: string;
  decisionRule?: string;
  overshoot?: string;
  candidates?: string;
  quantile?: string;
  alphaInit?: string;
  samples?: string;
  delta?: string;
  lr?: string;
  decay?: string;
  nesterov?: boolean;
  scales?: string;
  varianceSamples?: string;
  varianceBeta?: string;
  diversityProb?: string;
  resizeRate?: string;
  kernelSize?: string;
  kernelSigma?: string;
  basis?: string;
  freqDim?: string;
  stride?: string;
  epsSchedule?: boolean;
  surrogate?: string;
  surrogateJpegMode?: string;
  seed: string;
  defence?: string;
  bpda?: string;
  jpegMode?: string;
  minimal?: boolean;
  out?: string;
  examples?: string;
  examplesN: string;
  backend: string;
}

/** Parse a CLI number option, naming the flag when it is not a number. */
function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v)) throw new Error(`${flag}: "${value}" is not a number`);
  return v;
}


/** `jpegdl-robust attack`: attack a saved model on a dataset subset over a list of eps and print accuracy per eps. */
export function register(program: Command): void {
  program
    .command('attack')
    .description('attack a saved model (model.json + weights.bin) over a list of eps; prints robust accuracy per eps')
    .requiredOption('--model <dir>', 'directory written by saveModel (tfjs layers format)')
    .option('--attack <name>', `one of ${ATTACK_NAMES.join(', ')}`, 'pgd')
    .option('--eps <list>', 'comma-separated budgets on the 0-1 scale, e.g. 0,2/255,8/255 (L2 and L1 attacks: sizes summed over pixels, e.g. 0,0.5 or 0,12; L0 attacks pgd-l0 and sparse-rs: numbers of changed pixels, e.g. 0,1,5,10)', '0,2/255,4/255,8/255')
    .option('--dataset <name>', 'fashion-mnist-embedded | fashion-mnist | cifar10 | cifar100 | folder | synthetic', 'fashion-mnist-embedded')
    .option('--data-dir <dir>', 'directory holding the dataset files')
    .option('--image-size <px>', 'resize images to this size (must match the model input)')
    .option('--channels <c>', 'convert images to 1 or 3 channels (must match the model input)')
    .option('--split <split>', 'test | train', 'test')
    .option('-n, --n <n>', 'images (class-balanced, seeded subset)', '200')
    .option('--batch-size <n>', 'images per attack batch', '50')
    .option('--steps <n>', 'attack iterations (pgd and the mi/ni/di/ti/si-ni/vmi/vni-fgsm family default 10, apgd, fab and spsa default 100, hsja default 40; cw-l2 and ead: iterations per constant, default 1000)')
    .option('--step-size <a>', 'PGD step length on the 0-1 scale (default 2.5*eps/steps; the *-fgsm family: eps/steps; simba: L2 length of each step, default min(0.2, eps))')
    .option('--restarts <n>', 'random restarts, worst case kept per image (default 1)')
    .option('--queries <n>', 'square, square-l2, autoattack, autoattack-l2: model evaluations per image for Square (default 5000); simba: model evaluations per image (default 10000); hsja, hsja-linf: stop an image after this many label queries (default: no cap)')
    .option('--target-classes <n>', 'autoattack, autoattack-l2: APGD-T and FAB-T target classes, most likely wrong ones first (default 9); fab: FAB-T over that many classes (default 0: untargeted FAB)')
    .option('--autoattack-version <v>', 'autoattack, autoattack-l2: standard (default) | plus (adds APGD-DLR and FAB, 5 restarts) | rand (APGD-CE and APGD-DLR with EOT over 20 calls, for randomised defences)')
    .option('--search-steps <n>', 'cw-l2, ead: binary-search steps over the constant c (default 9)')
    .option('--confidence <k>', 'cw-l2, ead: margin κ in logits an adversarial example must reach (default 0)')
    .option('--beta <b>', 'ead: weight of the L1 term and shrinkage threshold, 0-1 pixel scale (default 0.001)')
    .option('--decision-rule <rule>', 'ead: en (default: keep the example of least ||δ||₂² + β||δ||₁) | l1 (least L1 norm)')
    .option('--overshoot <f>', 'deepfool, deepfool-linf: step (1 + f) times past the linearised boundary (default 0.02)')
    .option('--candidates <k>', 'deepfool, deepfool-linf: classes considered, the most likely ones (default 10)')
    .option('--quantile <q>', 'pgd-l1: move the pixels with |gradient| at or above this quantile each step (default 0.99)')
    .option('--alpha-init <a>', 'sparse-rs: initial share of the eps pixels swapped per query (default 0.3)')
    .option('--samples <n>', 'spsa: random ±1 direction pairs per step, 2 model evaluations each (default 128)')
    .option('--delta <h>', 'spsa: finite-difference radius on the 0-1 scale (default 0.01)')
    .option('--lr <a>', 'spsa: Adam learning rate on the 0-1 scale (default 0.01); ead: first FISTA step size, decayed as lr·sqrt(1 - k/steps) (default 0.01)')
    .option('--decay <mu>', 'the *-fgsm transfer family (mi, ni, si-ni, vmi, vni, di, ti): momentum decay (default 1; 0 for di/ti, where --decay 1 gives M-DI²-FGSM and TI-DIM)')
    .option('--nesterov', 'the *-fgsm family: take each gradient at the Nesterov look-ahead point (ni, si-ni and vni-fgsm always do)')
    .option('--scales <m>', 'the *-fgsm family: average the gradient over the copies x/2^i, i < m (default 5 for si-ni-fgsm, 1 for the others)')
    .option('--variance-samples <n>', 'the *-fgsm family: gradients sampled around each iterate for the variance correction (default 20 for vmi/vni, 0 = off for the others)')
    .option('--variance-beta <b>', 'the *-fgsm family: the variance samples lie within ± b·eps (default 1.5)')
    .option('--diversity-prob <p>', 'the *-fgsm family: chance per image and gradient call of a random resize-and-pad (default 0.5 for di/ti, 0 for the others)')
    .option('--resize-rate <r>', 'the *-fgsm family: diversity resize range, below 1 shrinks to [r·side, side) and pads, above 1 grows to [side, r·side) and pads (default 0.9)')
    .option('--kernel-size <k>', 'the *-fgsm family: odd side in pixels of the Gaussian kernel smoothing the gradient (default 15 for ti, 1 = none for the others)')
    .option('--kernel-sigma <s>', 'the *-fgsm family: the kernel spans ± this many standard deviations (default 3)')
    .option('--basis <b>', 'simba: dct (default: whole-image DCT directions, low frequencies first) or pixel')
    .option('--freq-dim <n>', 'simba: side of the lowest-frequency DCT block searched first (default min(h, w) / 8 rounded)')
    .option('--stride <n>', 'simba: width of each ring of higher DCT frequencies searched after the first block, in random order within a ring (default 1)')
    .option('--eps-schedule', 'apgd-l1: AutoAttack\'s L1 schedule (30% of the steps at 3·eps, 30% at 2·eps, 40% at eps)')
    .option('--no-random-start', 'start PGD/APGD at the clean image')
    .option('--loss <name>', 'ce | margin | dlr')
    .option('--eot <k>', 'EOT: average loss gradients over k calls of a randomised model')
    .option('--seed <n>', 'seed of the image subset and of random starts', '0')
    .option('--defence <spec>', 'attack the model behind an input defence: jpeg:<quality 1-100> (real JPEG, hard rounding), rjpeg:<lo>-<hi>[:block] (JPEG at a random quality per image or 8x8 block, drawn from --seed; add --eot k), rrp:<lo>-<hi>[:bilinear] (random resize to lo..hi pixels and random zero padding, drawn from --seed; add --eot k), tvm:<drop share>[:<weight>] (random pixel dropout and total variation minimisation; add --bpda identity and --eot k, as Athalye et al.), any randomised one ending in :draws=k to predict by the mean over k draws, bits:<1-8> (colour bit depth) or median:<2-5> (median filter); combine with --bpda to attack through it')
    .option('--bpda <backward>', 'identity | soft: run JPEG layers (and --defence squeezers) hard forward, with this backward (BPDA); accuracy is then that of the hard-quantised model')
    .option('--jpeg-mode <mode>', 'soft | hard: JpegLayer mode for the whole run (ignored with --bpda)')
    .option('--surrogate <dir[,dir...]>', 'transfer attack: craft the adversarial images on this saved model (several, comma-separated: on the mean of their logits) and judge them by --model (e.g. PGD from the baseline against JPEG-DL)')
    .option('--surrogate-jpeg-mode <mode>', 'soft | hard: JpegLayer mode of the surrogate (of every one with JPEG layers) while it crafts')
    .option('--minimal', 'fab, fab-l2, fab-l1, cw-l2, ead, deepfool, deepfool-linf, hsja, hsja-linf: one least-norm run per image answers every eps (accuracy at eps = images with no adversarial example found within it); prints the sizes found')
    .option('--out <file>', 'also write the results as JSON (atomically)')
    .option('--examples <dir>', 'also write the first --examples-n attacked images as a PNG grid (clean, then per eps the adversarial image and its amplified perturbation) with examples.json (labels, predictions, norms)')
    .option('--examples-n <k>', 'images in the --examples grid', '8')
    .option('--backend <name>', 'auto | tensorflow-gpu | tensorflow | wasm | cpu', 'auto')
    .action(async (o: AttackCliOptions, cmd: Command) => {
      // Check everything cheap before loading anything.
      const info = getAttack(o.attack);
      // Default (L-inf) budgets under another norm are refused below, after the option checks.
      const defaultEps = info.norm !== 'linf' && cmd.getOptionValueSource('eps') === 'default';
      const epsilons = defaultEps ? [] : parseEpsilonList(o.eps, '--eps', info.norm);
      const n = num(o.n, '--n')!;
      const seed = num(o.seed, '--seed')!;
      const batchSize = num(o.batchSize, '--batch-size')!;
      if (!Number.isInteger(n) || n < 1) throw new Error(`--n: must be an integer >= 1, got ${o.n}`);
      if (o.bpda !== undefined && o.bpda !== 'identity' && o.bpda !== 'soft') throw new Error(`--bpda: must be identity or soft, got "${o.bpda}"`);
      if (o.jpegMode !== undefined && o.jpegMode !== 'soft' && o.jpegMode !== 'hard') throw new Error(`--jpeg-mode: must be soft or hard, got "${o.jpegMode}"`);
      if (o.split !== 'test' && o.split !== 'train') throw new Error(`--split: must be test or train, got "${o.split}"`);
      const minimalFn = info.minimal;
      if (o.minimal && !minimalFn) throw new Error(`--minimal: only the minimal-norm attacks ${ATTACK_NAMES.filter((a) => getAttack(a).minimal).join(', ')} take it, not ${info.name}`);
      if (o.surrogateJpegMode !== undefined && o.surrogateJpegMode !== 'soft' && o.surrogateJpegMode !== 'hard') throw new Error(`--surrogate-jpeg-mode: must be soft or hard, got "${o.surrogateJpegMode}"`);
      if (o.surrogateJpegMode !== undefined && o.surrogate === undefined) throw new Error('--surrogate-jpeg-mode: needs --surrogate');
      const examplesN = num(o.examplesN, '--examples-n')!;
      if (!Number.isInteger(examplesN) || examplesN < 1) throw new Error(`--examples-n: must be an integer >= 1, got ${o.examplesN}`);
      if (o.examples !== undefined && o.minimal) throw new Error('--examples: not with --minimal (the least-norm runs keep sizes, not images)');
      if (o.surrogate !== undefined && (o.minimal || o.bpda)) throw new Error(`--surrogate: cannot be combined with ${o.minimal ? '--minimal' : '--bpda'} (wrap the surrogate yourself in the library)`);
      const defence = o.defence === undefined ? undefined : parseDefenceSpec(o.defence, '--defence');
      const options: Record<string, unknown> = { seed };
      const setIf = (key: string, v: unknown) => v !== undefined && (options[key] = v);
      if (info.name !== 'fgsm') {
        setIf('steps', num(o.steps, '--steps'));
        setIf('restarts', num(o.restarts, '--restarts'));
        if (!o.randomStart) options.randomStart = false;
        if (!info.name.startsWith('apgd')) setIf('stepSize', num(o.stepSize, '--step-size'));
      } else {
        delete options.seed; // FGSM is deterministic
        if (o.steps || o.restarts || o.stepSize || !o.randomStart) throw new Error('fgsm takes no --steps, --step-size, --restarts or --no-random-start');
      }
      setIf('queries', num(o.queries, '--queries'));
      setIf('targetClasses', num(o.targetClasses, '--target-classes'));
      setIf('loss', o.loss);
      setIf('eotSamples', num(o.eot, '--eot'));
      if (o.autoattackVersion !== undefined && !(AUTOATTACK_VERSIONS as readonly string[]).includes(o.autoattackVersion)) {
        throw new Error(`--autoattack-version: must be one of ${AUTOATTACK_VERSIONS.join(', ')}, got "${o.autoattackVersion}"`);
      }
      setIf('version', o.autoattackVersion);
      setIf('searchSteps', num(o.searchSteps, '--search-steps'));
      setIf('confidence', num(o.confidence, '--confidence'));
      setIf('beta', num(o.beta, '--beta'));
      setIf('decisionRule', o.decisionRule);
      setIf('overshoot', num(o.overshoot, '--overshoot'));
      setIf('candidates', num(o.candidates, '--candidates'));
      setIf('quantile', num(o.quantile, '--quantile'));
      setIf('alphaInit', num(o.alphaInit, '--alpha-init'));
      setIf('samples', num(o.samples, '--samples'));
      setIf('delta', num(o.delta, '--delta'));
      setIf('lr', num(o.lr, '--lr'));
      setIf('decay', num(o.decay, '--decay'));
      if (o.nesterov) options.nesterov = true;
      setIf('scales', num(o.scales, '--scales'));
      setIf('varianceSamples', num(o.varianceSamples, '--variance-samples'));
      setIf('varianceBeta', num(o.varianceBeta, '--variance-beta'));
      setIf('diversityProb', num(o.diversityProb, '--diversity-prob'));
      setIf('resizeRate', num(o.resizeRate, '--resize-rate'));
      setIf('kernelSize', num(o.kernelSize, '--kernel-size'));
      setIf('kernelSigma', num(o.kernelSigma, '--kernel-sigma'));
      setIf('basis', o.basis);
      setIf('freqDim', num(o.freqDim, '--freq-dim'));
      setIf('stride', num(o.stride, '--stride'));
      if (o.epsSchedule) options.epsSchedule = true;
      // A flag the chosen attack does not take is an error now, before the model and data load.
      const flagOf: Record<string, string> = {
        steps: '--steps', restarts: '--restarts', randomStart: '--no-random-start', stepSize: '--step-size',
        queries: '--queries', targetClasses: '--target-classes', loss: '--loss', eotSamples: '--eot', version: '--autoattack-version', searchSteps: '--search-steps', confidence: '--confidence', beta: '--beta', decisionRule: '--decision-rule', overshoot: '--overshoot', candidates: '--candidates',
        quantile: '--quantile', alphaInit: '--alpha-init', samples: '--samples', delta: '--delta', lr: '--lr', epsSchedule: '--eps-schedule',
        decay: '--decay', nesterov: '--nesterov', scales: '--scales', varianceSamples: '--variance-samples', varianceBeta: '--variance-beta', diversityProb: '--diversity-prob', resizeRate: '--resize-rate', kernelSize: '--kernel-size', kernelSigma: '--kernel-sigma', basis: '--basis', freqDim: '--freq-dim', stride: '--stride',
      };
      // Deterministic attacks (FGSM, C&W) take no seed.
      if (!('seed' in info.defaults)) delete options.seed;
      for (const key of Object.keys(options)) {
        if (key !== 'seed' && !(key in info.defaults)) throw new Error(`${flagOf[key] ?? key}: ${info.name} has no such option (it takes: ${Object.keys(info.defaults).join(', ')})`);
      }

      // The default budgets are L-inf ones (8/255 means nothing as an L1 size or a pixel count).
      if (defaultEps) {
        throw new Error(`--eps: ${info.name} is an ${info.norm} attack and the default budgets are L-inf ones; give ${info.norm} budgets, e.g. --eps ${exampleBudgets(info.norm as Exclude<typeof info.norm, 'linf'>)}`);
      }

      const backend = await initBackend(o.backend);
      const loaded = await loadModel(o.model);
      // Losses are taken on logits: a softmax output would make every attack look weaker than it is.
      if (!declaredLogits(loadModelMetadata(o.model))) assertLogitOutputs(loaded, `--model ${o.model}`);
      if (defence && findJpegModeLayers(loaded).length > 0) throw new Error(`--defence: the model in ${o.model} already has a JpegLayer (it is a JPEG-DL model, not an undefended one)`);
      // The defended model is a wrapper sharing the loaded model's weights.
      const model = defence ? defended(loaded, defence) : loaded;
      const jpegLayers = findJpegModeLayers(model);
      if (o.jpegMode && jpegLayers.length === 0) throw new Error(`--jpeg-mode: the model in ${o.model}${defence ? ` behind ${o.defence}` : ''} has no JpegLayer`);
      if (o.bpda && !hasBpdaLayers(model)) {
        throw new Error(defence ? `--bpda: the model in ${o.model} behind ${o.defence} has no JpegLayer or squeezing layer to approximate (that defence is differentiable; attack it without --bpda)` : `--bpda: the model in ${o.model} has no JpegLayer (give --defence to put one in front of it)`);
      }
      if (o.jpegMode && !o.bpda) for (const l of jpegLayers) l.mode = o.jpegMode;
      const classifier: Classifier = o.bpda ? bpdaModel(model, { backward: o.bpda as 'identity' | 'soft' }) : model;
      // A randomised defence (rjpeg, rrp) draws its qualities from --seed.
      reseedRandomLayers(model, seed);
      const averaged = typeof options.eotSamples === 'number' ? options.eotSamples > 1 : options.version === 'rand';
      if (isRandomised(model) && !averaged) {
        const advice = 'eotSamples' in info.defaults ? 'average over draws with --eot k (EOT), e.g. --eot 10' : `${info.name} cannot average over draws; judge the model by an attack that can (pgd, apgd, square, autoattack --autoattack-version rand, or --bpda with --eot)`;
        console.error(`note: the model${defence ? ` behind ${o.defence}` : ''} draws new randomness on every call and this attack follows one draw per gradient; ${advice}`);
      }
      // Transfer: another model (or the logit ensemble of several) crafts, --model judges; all must take the same images and classes.
      const surrogateDirs = o.surrogate === undefined ? [] : o.surrogate.split(',');
      const surrogates: tf.LayersModel[] = [];
      for (const dir of surrogateDirs) {
        const m = await loadModel(dir);
        surrogates.push(m);
        if (!declaredLogits(loadModelMetadata(dir))) assertLogitOutputs(m, `--surrogate ${dir}`);
        const [a, b] = [m.inputs[0].shape.slice(1).join('x'), model.inputs[0].shape.slice(1).join('x')];
        if (a !== b) throw new Error(`--surrogate: the model in ${dir} takes ${a} images but --model takes ${b}`);
        const [ca, cb] = [m.outputs[0].shape.at(-1), model.outputs[0].shape.at(-1)];
        if (ca !== cb) throw new Error(`--surrogate: the model in ${dir} has ${ca} classes but --model has ${cb}`);
      }
      if (o.surrogateJpegMode) {
        const layers = surrogates.flatMap((m) => findJpegModeLayers(m));
        if (layers.length === 0) throw new Error(`--surrogate-jpeg-mode: the model in ${o.surrogate} has no JpegLayer`);
        for (const l of layers) l.mode = o.surrogateJpegMode;
      }
      const surrogate = surrogates.length === 0 ? undefined : surrogates.length === 1 ? surrogates[0] : ensembleModel(surrogates);

      const splits = await loadDataset({
        name: o.dataset as DatasetName,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
        ...(o.imageSize ? { imageSize: num(o.imageSize, '--image-size') } : {}),
        ...(o.channels ? { channels: num(o.channels, '--channels') as 1 | 3 } : {}),
        seed,
      });
      const full = o.split === 'test' ? splits.test : splits.train;
      const data = subset(full, Math.min(n, full.labels.length), seed);
      const inShape = model.inputs[0].shape.slice(1);
      if (inShape.join() !== [data.height, data.width, data.channels].join()) {
        throw new Error(`--dataset: images are ${data.height}x${data.width}x${data.channels} but the model expects ${inShape.join('x')} (use --image-size/--channels)`);
      }

      const t0 = performance.now();
      // --minimal: one FAB run per image gives its least-norm adversarial example, which answers every
      // eps at once; restarts start within the largest eps, as a budgeted run at that eps would.
      const minimalNorms = o.minimal
        ? minimalNormsOnDataset(minimalFn!, classifier, data, {
            batchSize, options: { ...options, eps: Math.max(...epsilons.map((e) => e.value)) }, seeded: 'seed' in info.defaults,
          })
        : undefined;
      const results = minimalNorms ? accuracyFromMinimalNorms(minimalNorms, epsilons, info.norm) : evaluateAttackOnDataset(info, classifier, data, epsilons, { batchSize, options, surrogate, examples: o.examples !== undefined ? examplesN : 0 });
      const seconds = (performance.now() - t0) / 1000;
      console.log(`backend: ${describeBackend(backendInfo() ?? backend)}`);
      console.log(`${info.name} (${info.norm}) on ${data.labels.length} ${full.name} ${o.split} images, options ${JSON.stringify(options)}${o.defence ? `, behind ${o.defence}` : ''}${o.bpda ? `, BPDA ${o.bpda}` : ''}${surrogate ? `, crafted on ${o.surrogate}${o.surrogateJpegMode ? ` [${o.surrogateJpegMode}]` : ''}` : ''}, ${seconds.toFixed(1)} s`);
      console.log(table([['eps', 'value', 'accuracy'], ...results.map((r) => [r.threat.epsLabel, r.threat.eps.toPrecision(4), `${(100 * r.accuracy).toFixed(2)}%`])]));
      if (minimalNorms) console.log(describeMinimalNorms(minimalNorms, info.norm));
      // Ensembles: which stage fooled how many images, as AutoAttack prints it.
      for (const r of results) {
        if (r.stages) console.log(`${info.name} at ${r.threat.epsLabel}: ${Object.entries(r.stages).map(([k, v]) => `${k} fooled ${v}`).join(', ')}; ${Math.round(r.accuracy * data.labels.length)} still correct`);
        // Query-based searches: what the images they fooled cost, as black-box papers report it.
        if ('queries' in r && r.queries && r.threat.eps > 0) console.log(`${info.name} at ${r.threat.epsLabel}: ${describeQueries(r.queries.fooledAt, r.queries.budget)}`);
      }
      if (o.examples !== undefined) {
        const k = Math.min(examplesN, data.labels.length);
        const pixels = data.height * data.width * data.channels;
        const clean = data.images.slice(0, k * pixels);
        const cleanPredictions = tf.tidy(() => {
          const x = tf.tensor4d(clean, [k, data.height, data.width, data.channels]);
          return Int32Array.from(tf.argMax(asLogitsFn(classifier)(x), 1).dataSync());
        });
        const paths = writeAdversarialExamples(o.examples, {
          height: data.height, width: data.width, channels: data.channels, clean, labels: data.labels.slice(0, k), cleanPredictions, classNames: full.classNames,
          perEps: results.map((r) => ({ epsLabel: r.threat.epsLabel, eps: r.threat.eps, ...r.examples! })),
        }, { model: o.model, attack: info.name, norm: info.norm, options, dataset: full.name, split: o.split, seed });
        console.log(`wrote ${paths.png} and ${paths.json}`);
      }
      if (o.out) {
        writeJsonAtomic(o.out, {
          model: o.model, dataset: full.name, split: o.split, n: data.labels.length, seed,
          attack: info.name, norm: info.norm, options, defence: o.defence ?? null, bpda: o.bpda ?? null, jpegMode: o.jpegMode ?? null,
          surrogate: o.surrogate ?? null, surrogateJpegMode: o.surrogateJpegMode ?? null,
          backend: describeBackend(backend), seconds,
          results: results.map((r) => ({
            threat: r.threat, accuracy: r.accuracy, correct: Array.from(r.correct), ...('stages' in r && r.stages ? { stages: r.stages } : {}),
            // Per image: the query that first fooled it (0: wrong clean, -1: none), as the sweep's records keep it.
            ...('queries' in r && r.queries ? { queries: { budget: r.queries.budget, fooledAt: Array.from(r.queries.fooledAt) } } : {}),
          })),
          // Least-norm sizes per image (0: misclassified clean; null: none found), with --minimal.
          ...(minimalNorms ? { minimalNorms: Array.from(minimalNorms, (v) => (Number.isFinite(v) ? v : null)) } : {}),
        });
        console.log(`wrote ${o.out}`);
      }
      if (model !== loaded) model.dispose();
      loaded.dispose();
      for (const m of surrogates) m.dispose();
    });
}

/** One line on a query-based search's trace: images it fooled, their mean / median / quartile queries, and how many fell after half the budget. */
export function describeQueries(fooledAt: ArrayLike<number>, budget: number): string {
  const spent = Array.from(fooledAt).filter((t) => t >= 1);
  const wrong = Array.from(fooledAt).filter((t) => t === 0).length;
  if (spent.length === 0) return `no image fooled within ${budget} queries; ${wrong} misclassified clean`;
  const [q1, q3] = quantileSeq(spent, [0.25, 0.75]) as number[];
  const { meanQueries, medianQueries, lateFooled: late } = queryStats(spent, budget);
  return `${spent.length} images fooled within ${budget} queries: mean ${meanQueries!.toFixed(1)}, median ${medianQueries}, quartiles ${q1} - ${q3}; ${late} after half the budget${late > 0 ? ' (still finding images: more queries would likely fool more)' : ''}; ${wrong} misclassified clean`;
}

/** One line on least-norm perturbation sizes (0-1 scale, L-inf also in x/255): quartiles over the images fooled, and the counts left out. */
export function describeMinimalNorms(norms: Float64Array, norm: string): string {
  const found = Array.from(norms).filter((v) => v > 0 && Number.isFinite(v));
  const wrong = Array.from(norms).filter((v) => v === 0).length;
  const none = norms.length - found.length - wrong;
  // x/255 reads naturally for L-inf budgets only (an L2 size is summed over pixels).
  const fmt = (v: number) => (norm === 'linf' ? `${v.toPrecision(3)} (${(v * 255).toFixed(2)}/255)` : v.toPrecision(3));
  const spread = found.length > 0
    ? (quantileSeq(found, [0.25, 0.5, 0.75]) as number[]).map(fmt)
    : [];
  const counts = `${wrong} misclassified clean, ${none} with none found`;
  return found.length > 0
    ? `least-norm perturbation (${norm}) over the ${found.length} images fooled: median ${spread[1]}, quartiles ${spread[0]} - ${spread[2]}; ${counts}`
    : `least-norm perturbation (${norm}): no image fooled; ${counts}`;
}

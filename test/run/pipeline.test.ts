// The main job end to end on the smoke preset (in-process), and a real kill + --resume of the CLI.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRecords } from '../../src/eval/records.ts';
import { resolveRunConfig } from '../../src/run/options.ts';
import { runJob, validateRunConfig } from '../../src/run/pipeline.ts';
import { getPreset, paperEpsilonLabels, PRESET_NAMES } from '../../src/run/presets.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';

const tmp = mkdtempSync(join(tmpdir(), 'jpegdl-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(import.meta.dirname, '..', '..');
const quiet = () => {};

/** Cells as comparable data (no timings). */
const cells = (dir: string) =>
  loadRecords(join(dir, 'sweep', 'records.jsonl'))
    .records.map((r) => `${r.model}|${r.jpegMode}|${r.attack}|${r.threat.epsLabel}|${r.correct}|${r.correctBits}`)
    .sort();

let smokeDir = '';

describe('jpegdl-robust run --preset smoke', () => {
  it('trains both models, attacks them and writes every report file with the expected cells', async () => {
    const res = await runJob({ config: getPreset('smoke'), outRoot: tmp, name: 'smoke', progress: false, log: quiet });
    smokeDir = res.runDir;
    expect(res.finished).toBe(true);
    for (const f of ['config.json', 'report.md', 'report.json', 'report.html', 'report.txt', 'verdict.json', 'run.json', 'jpeg-init.json', 'clean.json', 'baseline/history.json', 'jpeg-dl/history.json', 'models/baseline/model.json', 'models/jpeg-dl/model.json']) {
      expect(existsSync(join(res.runDir, f)), f).toBe(true);
    }
    const md = readFileSync(res.files.markdown, 'utf8');
    for (const s of ['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]', 'fgsm', 'pgd', 'bpda-pgd', '2/255', '8/255', 'VERDICT']) expect(md, s).toContain(s);
    expect(res.terminal).toContain('bpda-pgd');
    expect(readFileSync(res.files.html, 'utf8')).toContain('<svg');
    // Learned tables (luma and the shared chroma table) are in the report next to their initial values.
    const json = JSON.parse(readFileSync(res.files.json, 'utf8'));
    expect(json.tables.map((t: { channel: string }) => t.channel)).toEqual(['luma', 'chroma']);
    // Both models' training, epoch by epoch, as history.json has it (tables aside).
    const jpegHistory = JSON.parse(readFileSync(join(res.runDir, 'jpeg-dl', 'history.json'), 'utf8'));
    expect(json.training.map((t: { model: string; training: string }) => `${t.model}: ${t.training}`)).toEqual(['baseline: standard training', 'jpeg-dl: standard training']);
    expect(json.training[1].epochs.map((e: { trainLoss: number }) => e.trainLoss)).toEqual(jpegHistory.map((h: { trainLoss: number }) => h.trainLoss));
    expect(readFileSync(res.files.html, 'utf8')).toContain('<title>Test accuracy after each epoch</title>');
    for (const t of json.tables) expect(t.learned).toHaveLength(64);
    // The attacked images' classes, and per class each series' clean and worst-case accuracy (all three series).
    expect(json.classes.labels).toHaveLength(json.config.n);
    expect(json.perClass.series.map((x: { label: string }) => x.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    expect(md).toContain('## Accuracy per class (%)');
    // Every (series, attack, eps) cell: clean + 2 plain attacks x 3 eps on baseline/soft/hard, BPDA x 3 eps on hard.
    const recs = loadRecords(join(res.runDir, 'sweep', 'records.jsonl')).records;
    const key = (m: string, mode: string | null, a: string, e: string) => recs.find((r) => r.model === m && r.jpegMode === mode && r.attack === a && r.threat.epsLabel === e);
    for (const e of ['0', '2/255', '8/255']) {
      for (const a of ['fgsm', 'pgd']) {
        expect(key('baseline', null, a, e), `baseline ${a} ${e}`).toBeDefined();
        expect(key('jpeg-dl', 'soft', a, e), `soft ${a} ${e}`).toBeDefined();
        expect(key('jpeg-dl', 'hard', a, e), `hard ${a} ${e}`).toBeDefined();
      }
      expect(key('jpeg-dl', 'hard', 'bpda-pgd', e), `bpda ${e}`).toBeDefined();
    }
    // Robust accuracy can never exceed clean accuracy on the same images (eps-0 cells equal clean).
    for (const r of recs) {
      const clean = key(r.model, r.jpegMode, 'clean', '0')!;
      expect(r.correct).toBeLessThanOrEqual(clean.correct);
      if (r.threat.eps === 0) expect(r.correct).toBe(clean.correct);
      expect(r.maxNorm).toBeLessThanOrEqual(r.threat.eps + 1e-5);
    }
    // The report states plainly whether JPEG-DL came out more robust.
    const verdict = JSON.parse(readFileSync(join(res.runDir, 'verdict.json'), 'utf8'));
    expect(verdict.headline).toMatch(/JPEG-DL (came out MORE robust|did NOT come out)/);
    expect(md).toContain(verdict.headline);
    // The JPEG tables moved during training and were logged each epoch.
    const hist = JSON.parse(readFileSync(join(res.runDir, 'jpeg-dl', 'history.json'), 'utf8'));
    const init = JSON.parse(readFileSync(join(res.runDir, 'jpeg-init.json'), 'utf8'));
    expect(hist).toHaveLength(2);
    const learned: number[] = hist[1].tables[0].weights[0].values;
    expect(learned.some((v: number, i: number) => Math.abs(v - init.tables.luma[i]) > 1e-4)).toBe(true);
    // Baseline and JPEG-DL saw the same data order: same images per epoch.
    const base = JSON.parse(readFileSync(join(res.runDir, 'baseline', 'history.json'), 'utf8'));
    expect(base.map((h: { images: number }) => h.images)).toEqual(hist.map((h: { images: number }) => h.images));
    // A second run into the same directory is refused unless --resume.
    await expect(runJob({ config: getPreset('smoke'), outRoot: tmp, name: 'smoke', log: quiet })).rejects.toThrow(/--resume/);
  });

  it('a SIGKILLed CLI run continued with --resume gives the same weights and attack results', async () => {
    expect(smokeDir).not.toBe('');
    const name = 'killed';
    const dir = join(tmp, name);
    const argv = ['bin/jpegdl-robust.js', 'run', '--preset', 'smoke', '--out', tmp, '--name', name, '--no-progress'];
    const child = spawn(process.execPath, argv, { cwd: root, stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let killed = false;
    // Kill once the JPEG-DL model has a checkpoint (baseline finished, JPEG-DL mid-training or later).
    for (;;) {
      if (existsSync(join(dir, 'jpeg-dl', 'checkpoint', 'state.json'))) {
        killed = child.kill('SIGKILL');
        break;
      }
      if (await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 25))])) break;
    }
    await exited;
    expect(killed).toBe(true);
    expect(existsSync(join(dir, 'report.md'))).toBe(false);
    const res = await runJob({ config: getPreset('smoke'), outRoot: tmp, name, resume: true, progress: false, log: quiet });
    expect(res.finished).toBe(true);
    for (const v of ['baseline', 'jpeg-dl']) {
      const a = readCheckpoint(join(dir, v, 'checkpoint'));
      const b = readCheckpoint(join(smokeDir, v, 'checkpoint'));
      a.weights.forEach((w, i) => expect(Array.from(w.values), `${v} weight ${i}`).toEqual(Array.from(b.weights[i].values)));
    }
    expect(cells(dir)).toEqual(cells(smokeDir));
  });
});

describe('run options and presets', () => {
  it('every preset is valid; paper-cifar100 is the reference robustness setting', () => {
    for (const p of PRESET_NAMES) validateRunConfig(getPreset(p));
    const paper = getPreset('paper-cifar100');
    expect(paper.model).toBe('resnet56');
    expect(paper.dataset.name).toBe('cifar100');
    expect(paper.train).toMatchObject({ epochs: 240, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, jpegLr: 0.001, milestones: [150, 180, 210] });
    expect(paper.jpeg).toMatchObject({ method: 'sensitivity', qMax: 20, alpha: 5 });
    const pgd = paper.eval.attacks.find((a) => a.name === 'pgd')!;
    expect(pgd.params).toMatchObject({ steps: 5, randomStart: true });
    const eps = paperEpsilonLabels();
    expect(eps).toHaveLength(11);
    expect(eps[1]).toBe('1/255');
    expect(eps[10]).toBe('4/255');
  });

  it('overrides are checked before any work and rescale the schedule', () => {
    const c = resolveRunConfig({ preset: 'smoke', epochs: '24', eps: '0,1/255', dataset: 'cifar10', seed: '3' });
    expect(c.train.milestones).toEqual([15, 18, 21]);
    expect(c.eval.epsilons).toEqual(['0', '1/255']);
    expect(c.dataset).toEqual({ name: 'cifar10', seed: 0 });
    expect(c.train.seed).toBe(3);
    expect(() => resolveRunConfig({ preset: 'nope' })).toThrow(/--preset.*smoke/);
    expect(() => resolveRunConfig({ epochs: '0' })).toThrow(/--epochs/);
    expect(() => resolveRunConfig({ lr: '-1' })).toThrow(/--lr/);
    expect(() => resolveRunConfig({ batchSize: '0' })).toThrow(/--batch-size/);
    expect(() => resolveRunConfig({ dataset: 'mnist' })).toThrow(/--dataset/);
    expect(() => resolveRunConfig({ eps: '8' })).toThrow(/--eps/);
    expect(() => resolveRunConfig({ jpegInit: 'zeros' })).toThrow(/--jpeg-init/);
    expect(resolveRunConfig({ preset: 'smoke', adversarial: 'trades:eps=2/255' }).train.adversarial).toMatchObject({ method: 'trades', epsLabel: '2/255', beta: 6 });
    expect(resolveRunConfig({ preset: 'smoke', corruptions: true, corruptionN: '20' }).corruptions).toEqual({ n: 20, severities: [1, 2, 3, 4, 5] });
    expect(getPreset('smoke').corruptions).toBeUndefined();
    expect(() => resolveRunConfig({ corruptionN: '20' })).toThrow(/--corruption-n: only with --corruptions/);
    expect(() => resolveRunConfig({ corruptions: true, corruptionN: '0' })).toThrow(/--corruption-n: must be an integer >= 1/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), corruptions: { n: 10, severities: [1], names: ['frost'] } })).toThrow(/corruption "frost": not available/);
    expect(getPreset('smoke').train.adversarial).toBeUndefined();
    expect(() => resolveRunConfig({ adversarial: 'pgd:eps=8' })).toThrow(/--adversarial eps: "8".*8\/255/);
    expect(resolveRunConfig({ preset: 'smoke', noiseSd: '0.25' }).train.noiseSd).toBe(0.25);
    expect(resolveRunConfig({ preset: 'smoke', noiseSd: '64/255' }).train.noiseSd).toBe(64 / 255);
    expect(getPreset('smoke').train.noiseSd).toBeUndefined();
    expect(() => resolveRunConfig({ noiseSd: 'loud' })).toThrow(/--noise-sd: cannot parse "loud"/);
    expect(() => resolveRunConfig({ noiseSd: '0.25', adversarial: 'pgd:eps=2/255' })).toThrow(/--noise-sd: cannot be combined with --adversarial/);
    expect(resolveRunConfig({ preset: 'smoke', certify: '0.12, 0.25' }).certify).toEqual({ sigmas: ['0.12', '0.25'], n: 100, samples: 10000, radii: ['0', '0.25', '0.5', '0.75', '1', '1.25', '1.5'] });
    expect(resolveRunConfig({ preset: 'smoke', certify: '0.25', certifyN: '20', certifySamples: '500' }).certify).toMatchObject({ n: 20, samples: 500 });
    expect(getPreset('smoke').certify).toBeUndefined();
    expect(resolveRunConfig({ preset: 'smoke', spatial: true }).spatial).toEqual({ n: 500 });
    expect(resolveRunConfig({ preset: 'smoke', spatial: true, spatialN: '40' }).spatial).toEqual({ n: 40 });
    expect(() => resolveRunConfig({ spatialN: '40' })).toThrow(/--spatial-n: only with --spatial/);
    expect(() => resolveRunConfig({ spatial: true, spatialN: '0' })).toThrow(/--spatial-n: must be an integer >= 1/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), spatial: { n: 10, grid: { rotations: 1 } } })).toThrow(/spatial: rotations is 1 but maxRotation is 30/);
    expect(resolveRunConfig({ preset: 'smoke', universal: true }).universal).toEqual({ n: 500, fitN: 1000 });
    expect(resolveRunConfig({ preset: 'smoke', universal: true, universalN: '40' }).universal).toEqual({ n: 40, fitN: 1000 });
    expect(() => resolveRunConfig({ universalN: '40' })).toThrow(/--universal-n: only with --universal/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), universal: { n: 10, fitN: 0 } })).toThrow(/universal.fitN: must be an integer >= 1, got 0/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), universal: { n: 10, fitN: 10, epochs: 0 } })).toThrow(/epochs: must be an integer >= 1, got 0/);
    expect(resolveRunConfig({ preset: 'smoke', patch: true }).patch).toEqual({ n: 500, fitN: 1000 });
    expect(resolveRunConfig({ preset: 'smoke', patch: true, patchN: '40' }).patch).toEqual({ n: 40, fitN: 1000 });
    expect(() => resolveRunConfig({ patchN: '40' })).toThrow(/--patch-n: only with --patch/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), patch: { n: 0, fitN: 10 } })).toThrow(/patch.n: must be an integer >= 1, got 0/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), patch: { n: 10, fitN: 10, sizes: [2, 2] } })).toThrow(/sizes: 2,2 lists a size twice/);
    expect(resolveRunConfig({ preset: 'smoke', diagnose: true }).diagnose).toEqual({ n: 100 });
    expect(resolveRunConfig({ preset: 'smoke', diagnose: true, diagnoseN: '30' }).diagnose).toEqual({ n: 30 });
    expect(() => resolveRunConfig({ diagnoseN: '30' })).toThrow(/--diagnose-n: only with --diagnose/);
    expect(() => resolveRunConfig({ diagnose: true, diagnoseN: 'x' })).toThrow(/--diagnose-n/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), diagnose: { n: 10, eps: '8' } })).toThrow(/diagnose.eps: "8" is 8 on the 0-1 pixel scale/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), diagnose: { n: 10, steps: [0] } })).toThrow(/steps: must be a list of integers >= 1/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), diagnose: { n: 0 } })).toThrow(/diagnose.n: must be an integer >= 1/);
    expect(() => resolveRunConfig({ certifyN: '20' })).toThrow(/--certify-n, --certify-samples: only with --certify/);
    expect(() => resolveRunConfig({ certify: '0' })).toThrow(/--certify: noise standard deviation 0 must be > 0/);
    expect(() => resolveRunConfig({ certify: '0.25', certifySamples: '0' })).toThrow(/--certify-samples: must be an integer >= 1/);
    expect(() => validateRunConfig({ ...getPreset('smoke'), certify: { sigmas: ['0.25'], n: 10, samples: 100, radii: ['0.5', '0.1'] } })).toThrow(/certify.radii: must increase/);
  });

  it('--adversarial trains both models adversarially and says so in the models, the notes and the paper section', async () => {
    const config = resolveRunConfig({ preset: 'smoke', adversarial: 'fgsm-rs:eps=4/255' });
    const res = await runJob({ config, outRoot: tmp, name: 'smoke-adv', progress: false, log: quiet });
    expect(res.finished).toBe(true);
    const what = 'FGSM-RS adversarial training, L-inf eps 4/255 (step 0.0196)';
    for (const m of ['baseline', 'jpeg-dl']) {
      const meta = JSON.parse(readFileSync(join(res.runDir, 'models', m, 'model.json'), 'utf8')).userDefinedMetadata;
      expect(meta.training).toBe(what);
      expect(meta.adversarial).toMatchObject({ method: 'fgsm-rs', eps: 4 / 255, steps: 1 });
      expect(readCheckpoint(join(res.runDir, m, 'checkpoint')).state.config.adversarial).toEqual(config.train.adversarial);
    }
    const json = JSON.parse(readFileSync(res.files.json, 'utf8'));
    expect(json.notes.find((n: string) => n.startsWith('Training:'))).toContain(`both ${what}`);
    expect(json.paper.summary).toMatch(/^No paper comparison: both models were trained adversarially/);
    expect(existsSync(join(res.runDir, 'corruptions'))).toBe(false); // not asked for
    // Robust accuracy was watched after every epoch, on the same fixed test subset for both models.
    expect(json.notes.find((n: string) => n.startsWith('Robust test accuracy while training'))).toMatch(/\(pgd-10 at 4\/255 on 48 test images.*baseline \d+\.\d% after the last epoch \(best .*epoch \d\), JPEG-DL/);
    const hist = JSON.parse(readFileSync(join(res.runDir, 'jpeg-dl', 'history.json'), 'utf8'));
    expect(hist.map((h: { testRobustAcc?: { n: number } }) => h.testRobustAcc?.n)).toEqual([48, 48]);
  }, 300_000);

  it('--corruptions, --certify, --spatial, --universal, --patch and --diagnose measure both models on the same corrupted, noised, transformed, perturbed, patched or probed test images and note it in the report', async () => {
    const config = {
      ...resolveRunConfig({ preset: 'smoke', corruptions: true, corruptionN: '16', certify: '0.25', certifyN: '6', certifySamples: '60' }),
      corruptions: { n: 16, severities: [1, 5], names: ['contrast', 'saturate'] },
      spatial: { n: 12, grid: { maxRotation: 10, rotations: 3, maxTranslation: 2, translations: 3 }, samples: 2 },
      diagnose: { n: 8, steps: [1, 2], directions: 2, surfaces: 1 },
      universal: { n: 10, fitN: 16, epochs: 1 },
      patch: { n: 10, fitN: 16, epochs: 1, sizes: [6] },
    };
    const res = await runJob({ config, outRoot: tmp, name: 'smoke-corr', progress: false, log: quiet });
    expect(res.finished).toBe(true);
    const dir = join(res.runDir, 'corruptions');
    for (const f of ['records.jsonl', 'corruptions.md', 'corruptions.html', 'corruptions.json', 'corruption-examples.png']) expect(existsSync(join(dir, f)), f).toBe(true);
    const corr = JSON.parse(readFileSync(join(dir, 'corruptions.json'), 'utf8'));
    // clean + 2 corruptions x 2 severities, for baseline, jpeg-dl soft and hard.
    expect(corr.records).toHaveLength(15);
    expect(corr.summary.series.map((s: { label: string }) => s.label)).toEqual(['baseline', 'jpeg-dl [soft]', 'jpeg-dl [hard]']);
    const json = JSON.parse(readFileSync(res.files.json, 'utf8'));
    expect(json.notes.find((n: string) => n.startsWith('Common corruptions'))).toMatch(/^Common corruptions \(16 test images, 2 corruptions x severities 1, 5; corruptions\/corruptions.md\): mean accuracy baseline \d+\.\d%, JPEG-DL soft \d+\.\d% \(relative corruption error \d\.\d\d\), hard \d+\.\d%\.$/);
    // Certificates: 6 images x baseline, JPEG-DL soft and hard, one record each, and the tables.
    const cdir = join(res.runDir, 'certify');
    for (const f of ['records.jsonl', 'certify.md', 'certify.html', 'certify.json']) expect(existsSync(join(cdir, f)), f).toBe(true);
    const cert = JSON.parse(readFileSync(join(cdir, 'certify.json'), 'utf8'));
    expect(cert.records.map((r: { model: string; jpegMode: string | null; samples: number }) => `${r.model} ${r.jpegMode} ${r.samples}`)).toEqual([...Array(6).fill('baseline null 60'), ...Array(6).fill('jpeg-dl soft 60'), ...Array(6).fill('jpeg-dl hard 60')]);
    expect(json.notes.find((n: string) => n.startsWith('Certified L2'))).toMatch(/^Certified L2 robustness by randomised smoothing \(6 test images, 60 noise samples, alpha 0\.001; certify\/certify\.md\): at sigma 0\.25, certified accuracy at radius 0\.25 baseline \d+\.\d%, JPEG-DL soft \d+\.\d%, hard \d+\.\d% \(average certified radius [\d.]+, [\d.]+, [\d.]+\)\. The models were not trained with Gaussian noise/);
    // Rotations and shifts: (27 grid transforms + 2 draws) x baseline, JPEG-DL soft and hard.
    const sdir = join(res.runDir, 'spatial');
    for (const f of ['records.jsonl', 'spatial.md', 'spatial.html', 'spatial.json', 'spatial-examples.png']) expect(existsSync(join(sdir, f)), f).toBe(true);
    const sp = JSON.parse(readFileSync(join(sdir, 'spatial.json'), 'utf8'));
    expect(sp.records).toHaveLength(87);
    expect(sp.records.every((r: { n: number; seed: number }) => r.n === 12 && r.seed === config.eval.seed)).toBe(true);
    expect(json.notes.find((n: string) => n.startsWith('Rotations and shifts'))).toMatch(/^Rotations and shifts \(12 test images; spatial\/spatial\.md\): accuracy under the worst transform of the grid baseline \d+\.\d%, JPEG-DL soft \d+\.\d%, hard \d+\.\d% \(clean \d+\.\d%, \d+\.\d%, \d+\.\d%\)\.$/);
    // Universal perturbations at the run's eps > 0: (baseline, JPEG-DL soft and BPDA fits, uniform ±eps) x baseline, JPEG-DL soft and hard, plus the clean cells.
    const udir = join(res.runDir, 'universal');
    for (const f of ['records.jsonl', 'universal.md', 'universal.html', 'universal.json', 'universal-perturbations.png']) expect(existsSync(join(udir, f)), f).toBe(true);
    const uni = JSON.parse(readFileSync(join(udir, 'universal.json'), 'utf8'));
    const positive = config.eval.epsilons.filter((e: string) => e !== '0');
    expect(uni.records).toHaveLength(3 + positive.length * 5 * 3);
    expect(uni.records.every((r: { n: number; fitN: number; seed: number }) => r.n === 10 && r.fitN === 16 && r.seed === config.eval.seed)).toBe(true);
    expect(readdirSync(join(udir, 'perturbations'))).toHaveLength(positive.length * 3);
    expect(json.notes.find((n: string) => n.startsWith('Universal perturbations'))).toMatch(new RegExp(`^Universal perturbations \\(10 test images, fitted on 16 training images; universal/universal\\.md\\): accuracy under the worst of 5 universal perturbations at ${positive.at(-1)} baseline \\d+\\.\\d%, JPEG-DL soft \\d+\\.\\d%, hard \\d+\\.\\d% \\(clean \\d+\\.\\d%, \\d+\\.\\d%, \\d+\\.\\d%\\)\\.$`));
    // Patches of 6 px: (baseline, JPEG-DL soft and BPDA fits, noise) x baseline, JPEG-DL soft and hard, plus the clean cells.
    const pdir = join(res.runDir, 'patch');
    for (const f of ['records.jsonl', 'patch.md', 'patch.html', 'patch.json', 'patches.png']) expect(existsSync(join(pdir, f)), f).toBe(true);
    const pt = JSON.parse(readFileSync(join(pdir, 'patch.json'), 'utf8'));
    expect(pt.records).toHaveLength(3 + 4 * 3);
    expect(pt.records.every((r: { n: number; fitN: number; seed: number }) => r.n === 10 && r.fitN === 16 && r.seed === config.eval.seed)).toBe(true);
    expect(readdirSync(join(pdir, 'patches'))).toHaveLength(3);
    expect(json.notes.find((n: string) => n.startsWith('Adversarial patches'))).toMatch(/^Adversarial patches \(10 test images, fitted on 16 training images; patch\/patch\.md\): accuracy under the worst of 4 patches of 6 px at every position tried baseline \d+\.\d%, JPEG-DL soft \d+\.\d%, hard \d+\.\d% \(clean \d+\.\d%, \d+\.\d%, \d+\.\d%\)\.$/);
    // Diagnostics: (probe + 2 step counts + unbounded) x baseline, JPEG-DL soft, hard and BPDA, at the run's largest eps.
    const ddir = join(res.runDir, 'diagnose');
    for (const f of ['records.jsonl', 'diagnose.md', 'diagnose.html', 'diagnose.json', 'diagnose.txt']) expect(existsSync(join(ddir, f)), f).toBe(true);
    const dg = JSON.parse(readFileSync(join(ddir, 'diagnose.json'), 'utf8'));
    expect(dg.records).toHaveLength(16);
    expect(dg.records.every((r: { n: number; seed: number; epsLabel: string }) => r.n === 8 && r.seed === config.eval.seed && r.epsLabel === config.eval.epsilons[config.eval.epsilons.length - 1])).toBe(true);
    expect(json.notes.find((n: string) => n.startsWith('Gradient-masking diagnostics'))).toMatch(/^Gradient-masking diagnostics \(8 test images at [\d/.]+; diagnose\/diagnose\.md\): median finite-difference error of the gradient baseline \d\.\d\d, JPEG-DL soft \d\.\d\d; zero input gradient on \d+\.\d% of the images in hard mode; pgd with an unbounded budget leaves baseline \d+\.\d%, soft \d+\.\d%, hard \d+\.\d%, BPDA \d+\.\d% correct \(a working attack reaches 0%\); (\d+ findings? in the report|no findings)\.$/);
    expect(JSON.parse(readFileSync(join(res.runDir, 'run-state.json'), 'utf8')).done).toEqual(['baseline', 'init', 'jpeg-dl', 'clean', 'sweep', 'corruptions', 'certify', 'spatial', 'universal', 'patch', 'diagnose', 'report']);
  }, 300_000);

  it('--defence evaluates the trained baseline behind input defences with every attack, in the same records and report', async () => {
    const config = resolveRunConfig({ preset: 'smoke', defence: 'jpeg:60, bits:4,tvm:0.5' });
    expect(config.eval.defences).toEqual(['jpeg:60', 'bits:4', 'tvm:0.5']);
    const res = await runJob({ config, outRoot: tmp, name: 'smoke-def', progress: false, log: quiet });
    expect(res.finished).toBe(true);
    const recs = loadRecords(join(res.runDir, 'sweep', 'records.jsonl')).records;
    const series = (model: string) => recs.filter((r) => r.model === model);
    // Each defence: clean + 3 attacks (FGSM, PGD, BPDA-PGD) x 3 eps; JPEG in hard mode, the others as they are.
    for (const [model, variant, mode] of [['jpeg-q60', 'jpeg-defence', 'hard'], ['bits-4', 'feature-squeezing', null], ['tvm-0.5-0.03', 'tv-minimisation', null]] as const) {
      expect(series(model).map((r) => `${r.variant} ${r.jpegMode} ${r.attack}`).sort(), model).toEqual([`${variant} ${mode} clean`, ...['bpda-pgd', 'fgsm', 'pgd'].flatMap((a) => Array(3).fill(`${variant} ${mode} ${a}`))].sort());
    }
    // Bit depth has a zero gradient: PGD through it is its random start only, and BPDA's identity backward does better.
    const at8 = (model: string, attack: string) => series(model).find((r) => r.attack === attack && r.threat.epsLabel === '8/255')!;
    expect(at8('bits-4', 'bpda-pgd').correct).toBeLessThan(at8('bits-4', 'pgd').correct);
    // The baseline and JPEG-DL cells are those of a run without defences (same seeds, same images).
    const plain = cells(smokeDir);
    expect(cells(res.runDir).filter((c) => c.startsWith('baseline|') || c.startsWith('jpeg-dl|'))).toEqual(plain);
    const json = JSON.parse(readFileSync(res.files.json, 'utf8'));
    expect(json.config.models.map((m: { name: string }) => m.name)).toEqual(['baseline', 'jpeg-dl', 'jpeg-q60', 'bits-4', 'tvm-0.5-0.03']);
    expect(json.config.models[2].checkpoint).toMatch(/models\/baseline behind jpeg-q60$/);
    expect(res.terminal).toMatch(/tvm-0\.5-0\.03/);
    expect(() => resolveRunConfig({ defence: 'blur:3' })).toThrow(/--defence: "blur:3" is not a defence/);
    expect(() => resolveRunConfig({ defence: 'bits:4,bits:4' })).toThrow('--defence: bits-4 is listed twice');
    expect(() => validateRunConfig({ ...getPreset('smoke'), eval: { ...getPreset('smoke').eval, defences: ['median:9'] } })).toThrow('eval.defences: median needs an integer in 2..5, got "9"');
  }, 300_000);

  it('a bad model or a missing dataset fails before the run directory is claimed', async () => {
    await expect(runJob({ config: { ...getPreset('smoke'), model: 'nope' }, outRoot: tmp, name: 'bad-model', log: quiet })).rejects.toThrow(/unknown model 'nope'/);
    expect(existsSync(join(tmp, 'bad-model'))).toBe(false);
    const cfg = getPreset('smoke');
    cfg.dataset = { name: 'cifar10', dataDir: join(tmp, 'no-such-dir') };
    await expect(runJob({ config: cfg, outRoot: tmp, name: 'bad-data', log: quiet })).rejects.toThrow(/no-such-dir|cifar/i);
    expect(existsSync(join(tmp, 'bad-data', 'config.json'))).toBe(false);
    await expect(runJob({ config: getPreset('smoke'), outRoot: tmp, resume: true, log: quiet })).rejects.toThrow(/--name/);
  });
});

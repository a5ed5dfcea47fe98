// The public library entry (src/index.ts): what the README's library section uses is there and typed.
import { describe, expect, it } from 'vitest';
import * as lib from '../src/index.ts';

describe('library entry', () => {
  it('exports the attacks (universal perturbations included), training (adversarial included), corruptions, reports and the main job', () => {
    const fns = [
      lib.initBackend, lib.buildModel, lib.loadDataset, lib.parseEpsilon, lib.attacks.pgd, lib.attacks.bpdaModel, lib.attacks.autoAttack, lib.attacks.diFgsm, lib.attacks.ensembleModel,
      lib.train.trainModel, lib.train.defaultTrainConfig, lib.train.parseAdversarialSpec, lib.train.robustAccuracy,
      lib.corruptions.evaluateCorruptions, lib.corruptions.corruptImage, lib.corruptions.runCorruptionJob,
      lib.buildReport, lib.writeReport, lib.leaderboardEntries, lib.pairedComparisons, lib.mcnemarExact, lib.perClassTable, lib.perClassRows, lib.writeAdversarialExamples,
      lib.evaluate, lib.runJob, lib.checkReport, lib.defences.defended, lib.defences.jpegDefended, lib.defences.squeezeDefended, lib.defences.randomJpegDefended, lib.defences.resizePadDefended, lib.defences.tvMinDefended, lib.medianFilter, lib.tvMinimise,
      lib.certify.certifySmoothed, lib.certify.predictSmoothed, lib.certify.runCertifyJob, lib.certify.clopperPearsonLower,
      lib.importModel, lib.assertLogitOutputs, lib.loadKerasModel, lib.loadOnnxModel, lib.inspectOnnxModel,
      lib.diagnose.probeBatch, lib.diagnose.lossSurface, lib.diagnose.evaluateDiagnose, lib.diagnose.summarizeDiagnose, lib.diagnose.diagnoseFindings, lib.diagnose.runDiagnoseJob,
      lib.attacks.fitUniversal, lib.attacks.applyUniversal, lib.universal.evaluateUniversal, lib.universal.runUniversalJob, lib.universal.summarizeUniversal,
    ];
    for (const f of fns) expect(typeof f).toBe('function');
    expect(lib.train.parseAdversarialSpec('pgd:eps=8/255,steps=7')).toMatchObject({ method: 'pgd', steps: 7, epsLabel: '8/255' });
    expect(lib.corruptions.CORRUPTIONS.map((c) => c.name)).toContain('jpeg_compression');
    expect(lib.defences.parseDefenceList('bits:5,median:2,rrp:24-28:draws=10,tvm:0.5').map(lib.defences.defenceName)).toEqual(['bits-5', 'median-2x2', 'rrp-24-28-avg10', 'tvm-0.5-0.03']);
  });
});

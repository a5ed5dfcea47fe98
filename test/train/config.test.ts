import { describe, expect, it } from 'vitest';
import { defaultTrainConfig, referenceLr, scaledMilestones, stepLr, validateTrainConfig } from '../../src/train/config.ts';

describe('train config', () => {
  it('defaults are the reference CIFAR-100 recipe', () => {
    const c = defaultTrainConfig();
    expect(c).toMatchObject({ epochs: 240, batchSize: 64, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, gamma: 0.1, jpegLr: 0.003 });
    expect(c.milestones).toEqual([150, 180, 210]);
    expect(referenceLr('mobilenetv2')).toBe(0.01);
    expect(referenceLr('ShuffleV2')).toBe(0.01);
    expect(referenceLr('resnet56')).toBe(0.05);
  });

  it('scaled milestones keep the 150/180/210-of-240 shape', () => {
    expect(scaledMilestones(24)).toEqual([15, 18, 21]);
    expect(scaledMilestones(8)).toEqual([5, 6, 7]);
    expect(scaledMilestones(1)).toEqual([]);
  });

  it('step schedule multiplies by gamma at each milestone', () => {
    const ms = [150, 180, 210];
    expect(stepLr(0.05, 0, ms, 0.1)).toBe(0.05);
    expect(stepLr(0.05, 149, ms, 0.1)).toBe(0.05);
    expect(stepLr(0.05, 150, ms, 0.1)).toBeCloseTo(0.005, 12);
    expect(stepLr(0.05, 180, ms, 0.1)).toBeCloseTo(0.0005, 12);
    expect(stepLr(0.05, 239, ms, 0.1)).toBeCloseTo(0.00005, 12);
  });

  it('bad arguments are rejected with the argument named', () => {
    expect(() => validateTrainConfig(defaultTrainConfig({ epochs: 0 }))).toThrow(/epochs/);
    expect(() => validateTrainConfig(defaultTrainConfig({ epochs: 2.5 }))).toThrow(/epochs/);
    expect(() => validateTrainConfig(defaultTrainConfig({ batchSize: 0 }))).toThrow(/batchSize/);
    expect(() => validateTrainConfig(defaultTrainConfig({ lr: 0 }))).toThrow(/lr/);
    expect(() => validateTrainConfig(defaultTrainConfig({ lr: -1 }))).toThrow(/lr/);
    expect(() => validateTrainConfig(defaultTrainConfig({ jpegLr: 0 }))).toThrow(/jpegLr/);
    expect(() => validateTrainConfig(defaultTrainConfig({ momentum: 1 }))).toThrow(/momentum/);
    expect(() => validateTrainConfig(defaultTrainConfig({ weightDecay: -1 }))).toThrow(/weightDecay/);
    expect(() => validateTrainConfig(defaultTrainConfig({ jpegSchedule: 'cosine' as never }))).toThrow(/jpegSchedule/);
    expect(() => validateTrainConfig(defaultTrainConfig())).not.toThrow();
  });
});

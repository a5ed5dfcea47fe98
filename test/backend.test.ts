import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, describeBackend, initBackend } from '../src/backend.ts';
import { assertNoTensorLeak } from '../src/testing/memory.ts';

describe('backend', () => {
  it('runs on the native backend unless JPEGDL_BACKEND says otherwise', async () => {
    const info = backendInfo()!;
    expect(info).toBeDefined();
    const want = process.env.JPEGDL_BACKEND ?? 'auto';
    if (want === 'auto') {
      // CI installs the native backend (npm run setup:native); falling back silently would hide a broken install.
      expect(info.name, `fell back: ${info.fallbacks.join('; ')}`).toMatch(/^tensorflow/);
      expect(info.tensorflowVersion).toMatch(/^\d+\.\d+/);
    } else expect(info.name).toBe(want);
    expect(tf.getBackend()).toBe(info.tfBackend);
    expect(describeBackend(info)).toContain(info.tfjsVersion);
  });

  it('rejects an unknown backend name', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(/--backend: unknown backend "tpu"/);
  });
});

describe('assertNoTensorLeak', () => {
  it('passes a clean step and catches a leaking one', async () => {
    await assertNoTensorLeak(() => tf.tidy(() => tf.ones([2]).add(1)));
    const kept: tf.Tensor[] = [];
    await expect(assertNoTensorLeak(() => void kept.push(tf.ones([2])), { label: 'leaky' })).rejects.toThrow(
      /leaky leaked 1 tensors per call/,
    );
    tf.dispose(kept);
  });
});

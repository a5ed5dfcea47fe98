import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { convertChannels, parseImageSize, resizeDataset, resizeImage } from '../../src/data/transform.ts';
import type { ImageDataset } from '../../src/data/types.ts';

describe('transforms', () => {
  it('bilinear resize with half-pixel centres: halving averages neighbour pairs; constant stays constant', () => {
    // 1x4 rows [0, 0.2, 0.6, 1] on 2 rows; down to 2x2: sample x = (j+0.5)*2-0.5 = 0.5, 2.5.
    const src = Float32Array.from([0, 0.2, 0.6, 1, 0, 0.2, 0.6, 1]);
    const out = resizeImage(src, 2, 4, 1, 2, 2);
    expect(Array.from(out)).toEqual([0.1, 0.8, 0.1, 0.8].map(Math.fround));
    const flat = resizeImage(new Float32Array(5 * 7 * 3).fill(0.3), 5, 7, 3, 11, 2);
    for (const v of flat) expect(v).toBeCloseTo(0.3, 6);
  });

  it('upsampling keeps values between the neighbours and in [0,1], without leaking tensors', () => {
    const before = tf.memory().numTensors;
    const ds: ImageDataset = {
      name: 't', images: Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => (i % 5) / 4), labels: Int32Array.from([0, 1]),
      height: 3, width: 3, channels: 1, numClasses: 2, classNames: ['a', 'b'], source: 's',
    };
    const big = resizeDataset(ds, 8, 6);
    expect(tf.memory().numTensors).toBe(before);
    expect(big.images.length).toBe(2 * 8 * 6);
    expect(Math.min(...big.images)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...big.images)).toBeLessThanOrEqual(1);
    expect(big.source).toContain('resized to 8x6');
  });

  it('channel conversion: grey -> RGB replicates, RGB -> grey is BT.601 luma', () => {
    const g: ImageDataset = {
      name: 'g', images: Float32Array.from([0.25, 0.5]), labels: Int32Array.from([0]),
      height: 1, width: 2, channels: 1, numClasses: 1, classNames: ['a'], source: 's',
    };
    const rgb = convertChannels(g, 3);
    expect(Array.from(rgb.images)).toEqual([0.25, 0.25, 0.25, 0.5, 0.5, 0.5]);
    const back = convertChannels(rgb, 1);
    expect(back.images[0]).toBeCloseTo(0.25, 6); // the weights sum to 1
    const c = convertChannels({ ...rgb, images: Float32Array.from([1, 0, 0, 0, 0, 1]) }, 1);
    expect(c.images[0]).toBeCloseTo(0.299, 6);
    expect(c.images[1]).toBeCloseTo(0.114, 6);
  });

  it('rejects bad sizes', () => {
    expect(parseImageSize(32)).toEqual([32, 32]);
    expect(() => parseImageSize(0)).toThrow(/imageSize: must be an integer 1\.\.4096/);
    expect(() => parseImageSize(2.5, '--image-size')).toThrow(/--image-size/);
  });
});

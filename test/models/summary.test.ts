import { describe, expect, it } from 'vitest';
import { jpegLayerParams, summarizeModels } from '../../models/summary.ts';

describe('summarizeModels', () => {
  it('counts baseline and +JPEG parameters (RepDistiller resnet8 with 10 classes: 78,042)', () => {
    const [r8, cnn] = summarizeModels({ names: ['resnet8', 'small_cnn'], numClasses: 10 });
    expect(r8.inputShape).toEqual([32, 32, 3]);
    expect(r8.baselineParams).toBe(78_042);
    expect(r8.jpegParams).toBe(78_042 + 128);
    expect(cnn.inputShape).toEqual([28, 28, 1]); // the model's own default input
    expect(cnn.jpegParams! - cnn.baselineParams!).toBe(64);
    expect(r8.error).toBeNull();
  });

  it('reports an input too small for a model instead of failing the whole listing', () => {
    const [d] = summarizeModels({ names: ['densenet121'], inputShape: [16, 16, 3], numClasses: 10 });
    expect(d.baselineParams).toBeNull();
    expect(d.error).toMatch(/too small for densenet121.*>= 29/);
  });

  it('rejects unknown names before building anything', () => {
    expect(() => summarizeModels({ names: ['resnet8', 'resnet9'] })).toThrow(/unknown model 'resnet9'/);
  });

  it('JPEG layer parameters: 64 per table, one luma + one shared chroma table per round', () => {
    expect(jpegLayerParams([16, 16, 3])).toBe(128);
    expect(jpegLayerParams([16, 16, 1])).toBe(64);
    expect(jpegLayerParams([16, 16, 3], { rounds: 2 })).toBe(256);
  });
});

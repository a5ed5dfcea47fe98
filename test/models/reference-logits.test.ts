// Architecture equivalence with the reference PyTorch implementations, not just equal parameter
// counts: every weight of the tfjs model and of the reference module is filled with the same
// deterministic pattern (in the reference's parameter order and layout), BN running statistics too,
// and the eval-mode logits for the same patterned image must agree. The expected logits were computed
// from the reference modules (RepDistiller models/, CS-KD CIFAR_ResNet18 as shipped in
// JPEG-Inspired-DL models/resnet.py, torchvision 0.28 resnet18/34, densenet121, squeezenet1_1;
// torch 2.13 CPU, 10 classes, batch 1) by a throwaway script kept outside this repository.
// This pins down layer order, padding alignment, ceil-mode pooling, count_include_pad, channel
// shuffle order, grouped convolutions, and the VGG 64-px pool rule.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LayerFactory } from '../../models/common.ts';
import { _specFor } from '../../models/registry.ts';

const REFERENCE: Record<string, { size: number; logits: number[] }> = {
  'resnet8': { size: 32, logits: [-0.2229974, -0.5034987, 0.02920149, 0.3880149, -0.09077352, -0.5722777, -0.1947752, 0.4081949, 0.2212679, -0.3677681] },
  'resnet20': { size: 32, logits: [18.41207, 3.56409, -17.58228, -7.656124, 15.88122, 11.53844, -13.00214, -14.44224, 9.735539, 16.82911] },
  'vgg8': { size: 32, logits: [0.8238021, 1.060296, 0.4310408, -0.5686527, -1.13504, -0.8179351, 0.109227, 0.8771728, 0.8577122, 0.08263593] },
  'vgg8@64': { size: 64, logits: [0.8248107, 1.060614, 0.4304047, -0.5697165, -1.135651, -0.8175876, 0.1102453, 0.8780191, 0.8576862, 0.08175908] },
  'vgg13': { size: 32, logits: [0.68745, 0.9372656, 0.3487785, -0.5974144, -1.115329, -0.7644761, 0.1839832, 0.9690512, 0.9664602, 0.2018751] },
  'mobilenetv2': { size: 32, logits: [0.652303, 1.184995, -2.152225, 2.143681, -0.5747684, -1.001224, 2.285367, -2.035726, 0.7131526, 1.008043] },
  'shufflenetv1': { size: 32, logits: [5.344125, -7.260385, 8.784186, -9.920436, 10.83346, -11.03026, 11.14471, -10.43226, 9.659435, -8.2207] },
  'shufflenetv2': { size: 32, logits: [0.2390007, 1.247567, -0.7834139, -0.5087751, 1.329584, -0.1466292, -1.137162, 0.8694555, 0.5141236, -1.350248] },
  'preact_resnet18': { size: 32, logits: [2.616881, 1.114471, -1.298645, -2.650818, -1.846572, 0.4299638, 2.283753, 2.178685, 0.2091248, -1.979182] },
  'resnet18': { size: 64, logits: [1.91041, 3.713411, 2.424239, -0.8648157, -3.407217, -3.078549, -0.1374502, 2.986629, 3.703434, 1.406261] },
  'resnet34': { size: 64, logits: [5.169081, 6.329739, 2.248357, -3.722045, -6.661256, -4.15104, 1.72544, 6.108435, 5.383083, 0.1693967] },
  'densenet121': { size: 64, logits: [1.071587, 2.278998, -2.249296, -0.632146, 2.84428, -1.014721, -2.162607, 2.322783, 0.5795044, -2.883416] },
  'squeezenet1_1': { size: 67, logits: [0, 0, 0, 0.1605216, 0.2210216, 0.03129105, 0, 0, 0, 0.1425505] },
};

// Cheap enough for every run; the rest only with JPEGDL_SLOW=1.
const FAST = new Set(['resnet8', 'vgg8@64', 'mobilenetv2', 'shufflenetv1', 'shufflenetv2', 'squeezenet1_1']);
const SLOW = !!process.env.JPEGDL_SLOW;

/** off + amp * sin(0.37 k + 1.3 t) for k = 0..n-1, in float32 (the shared fill pattern, t = tensor index). */
function wave(n: number, t: number, amp: number, off = 0, abs = false): Float32Array {
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const s = Math.sin(0.37 * k + 1.3 * t);
    out[k] = off + amp * (abs ? Math.abs(s) : s);
  }
  return out;
}

/**
 * Fill the factory's weighted layers in reference order. Torch conv weights are [out, in/groups, kh, kw]
 * (tfjs [kh, kw, in, out]; depthwise [kh, kw, C, 1]); a grouped torch conv maps to `groups` tfjs convs.
 */
function fillLikeReference(f: LayerFactory): void {
  let t = 0;
  const layers = f.weighted;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const cls = l.getClassName();
    if (cls === 'BatchNormalization') {
      const n = l.getWeights()[0].shape[0];
      l.setWeights([wave(n, t++, 0.2, 1), wave(n, t++, 0.1), wave(n, t++, 0.1), wave(n, t++, 0.5, 1, true)].map((v) => tf.tensor1d(v)));
    } else if (cls === 'Dense') {
      const [fanIn, units] = l.getWeights()[0].shape;
      const w = tf.tensor2d(wave(units * fanIn, t++, 1.2 / Math.sqrt(fanIn)), [units, fanIn]).transpose();
      l.setWeights(l.getWeights().length > 1 ? [w, tf.tensor1d(wave(units, t++, 0.1))] : [w]);
    } else if (cls === 'DepthwiseConv2D') {
      const [kh, kw, c] = l.getWeights()[0].shape;
      l.setWeights([tf.tensor4d(wave(c * kh * kw, t++, 1.2 / Math.sqrt(kh * kw)), [c, 1, kh, kw]).transpose([2, 3, 0, 1])]);
    } else if (cls === 'Conv2D') {
      // Consecutive convs named <base>_g<k> are the groups of one torch conv.
      const base = l.name.replace(/_g0$/, '');
      const group = l.name.endsWith('_g0') ? layers.slice(i).filter((x, j) => x.name === `${base}_g${j}`) : [l];
      const [kh, kw, ipg, og] = group[0].getWeights()[0].shape;
      const out = og * group.length;
      const w = tf.tensor4d(wave(out * ipg * kh * kw, t++, 1.2 / Math.sqrt(ipg * kh * kw)), [out, ipg, kh, kw]);
      const hasBias = group[0].getWeights().length > 1;
      const b = hasBias ? tf.tensor1d(wave(out, t++, 0.1)) : null;
      group.forEach((g, k) => {
        const wk = w.slice([k * og, 0, 0, 0], [og, ipg, kh, kw]).transpose([2, 3, 1, 0]);
        g.setWeights(b ? [wk, b.slice(k * og, og)] : [wk]);
      });
      i += group.length - 1;
    } else {
      throw new Error(`unexpected weighted layer ${cls}`);
    }
  }
}

describe('logits equal the PyTorch reference implementations (same patterned weights and input)', () => {
  for (const [key, ref] of Object.entries(REFERENCE)) {
    const name = key.split('@')[0];
    it.skipIf(!SLOW && !FAST.has(key))(`${key} (${ref.size}x${ref.size})`, () => {
      const spec = _specFor(name)!;
      const s = ref.size;
      const input = tf.input({ shape: [s, s, 3] });
      const f = new LayerFactory(0, spec.init);
      const model = tf.model({ inputs: input, outputs: spec.build(input, 10, f) });
      tf.tidy(() => fillLikeReference(f));
      const got = tf.tidy(() => {
        const x = tf.tensor4d(wave(3 * s * s, 0, 0.5, 0.5), [1, 3, s, s]).transpose([0, 2, 3, 1]);
        return Array.from((model.predict(x) as tf.Tensor).dataSync());
      });
      const scale = Math.max(...ref.logits.map(Math.abs));
      got.forEach((v, i) => expect(Math.abs(v - ref.logits[i])).toBeLessThan(1e-4 * scale + 1e-5));
      model.dispose();
    });
  }
});

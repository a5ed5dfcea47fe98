// Every registered model, both variants: parameter counts against the reference implementations,
// output shape, gradients reaching the input pixels, and tensor-leak-free forward passes.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, countTrainableParams, MODEL_NAMES } from '../../models/registry.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';

/**
 * Reference trainable-parameter counts for 100 classes: sum(p.numel() for p in model.parameters())
 * of the reference PyTorch modules (torch 2.13 CPU), counted with a throwaway script outside this repo:
 *  - resnet8..110, vgg8/13 (= vgg8_bn/vgg13_bn), mobilenetv2 (= mobile_half), shufflenetv1/v2 (= ShuffleV1/ShuffleV2):
 *    HobbitLong/RepDistiller models/ (the CRD code base; JPEG-DL's models_cifar100/ is a copy of it).
 *  - preact_resnet18: JpegInspiredDl/JPEG-Inspired-DL models/resnet.py CIFAR_ResNet18 (from CS-KD).
 *  - resnet18/34, densenet121, squeezenet1_1: torchvision.models (0.28) with num_classes=100.
 * Sanity anchors: CIFAR ResNet-56 ~0.86M; torchvision resnet18 with 1000 classes is the well-known 11,689,512.
 */
const REFERENCE_PARAMS_100: Record<string, number> = {
  resnet8: 83_892,
  resnet20: 278_324,
  resnet32: 472_756,
  resnet56: 861_620,
  resnet110: 1_736_564,
  vgg8: 3_965_028,
  vgg13: 9_462_180,
  mobilenetv2: 812_836,
  shufflenetv1: 949_258,
  shufflenetv2: 1_355_528,
  preact_resnet18: 11_217_444,
  resnet18: 11_227_812,
  resnet34: 21_335_972,
  densenet121: 7_056_356,
  squeezenet1_1: 773_796,
};

/** small_cnn is this project's own model: closed form (bias-free convs, BN gamma+beta, two fc layers). */
function smallCnnParams(h: number, w: number, c: number, k: number): number {
  const conv = (cin: number, cout: number) => 9 * cin * cout + 2 * cout; // bias-free conv + BN
  const flat = Math.floor(Math.floor(h / 2) / 2) * Math.floor(Math.floor(w / 2) / 2) * 64;
  return conv(c, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + (flat * 128 + 128) + (128 * k + k);
}

// Slow on CPU: their JPEG-DL variants are built (and all forward passes run through the JPEG layer) only with JPEGDL_SLOW=1.
const BIG = new Set(['resnet18', 'resnet34', 'densenet121', 'preact_resnet18', 'vgg13']);
const HUGE = new Set(['resnet18', 'resnet34', 'preact_resnet18']);
const SLOW = !!process.env.JPEGDL_SLOW;

describe('model zoo', () => {
  it('covers every registered model with a reference count', () => {
    expect([...MODEL_NAMES].sort()).toEqual([...Object.keys(REFERENCE_PARAMS_100), 'small_cnn'].sort());
  });

  for (const name of MODEL_NAMES) {
    describe(name, () => {
      const colour = name !== 'small_cnn';
      const shape: [number, number, number] = colour ? [32, 32, 3] : [28, 28, 1];
      const numClasses = 100;
      let base: tf.LayersModel;
      let jpeg: tf.LayersModel | undefined;
      const withJpeg = SLOW || !HUGE.has(name);
      const heavy = !SLOW && BIG.has(name);
      beforeAll(() => {
        base = buildModel(name, { inputShape: shape, numClasses, seed: 1 });
        if (withJpeg) jpeg = buildModel(name, { inputShape: shape, numClasses, seed: 1, jpeg: {} });
      });
      afterAll(() => {
        base.dispose();
        jpeg?.dispose();
      });

      it('has the reference parameter count; JPEG-DL adds exactly the JPEG tables', () => {
        const expected = name === 'small_cnn' ? smallCnnParams(28, 28, 1, numClasses) : REFERENCE_PARAMS_100[name];
        expect(countTrainableParams(base)).toBe(expected);
        if (!jpeg) return;
        // One 8x8 luma table, plus one 8x8 chroma table shared by Cb/Cr for colour input.
        expect(countTrainableParams(jpeg) - countTrainableParams(base)).toBe(colour ? 128 : 64);
        const jpegLayer = jpeg.getLayer('jpeg');
        expect(jpegLayer.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0)).toBe(colour ? 128 : 64);
      });

      it('orders layers input -> [jpeg] -> normalize -> backbone', () => {
        expect(base.layers[1].name).toBe('normalize');
        expect(base.outputs[0].shape).toEqual([null, numClasses]);
        if (!jpeg) return;
        expect(jpeg.layers[1].name).toBe('jpeg');
        expect(jpeg.layers[2].name).toBe('normalize');
      });

      it('maps [2,h,w,c] images to finite [2, classes] logits; gradients reach every input pixel batch', () => {
        for (const model of heavy || !jpeg ? [base] : [base, jpeg]) {
          const x = tf.randomUniform([2, ...shape], 0, 1, 'float32', 7) as tf.Tensor4D;
          const y = model.apply(x, { training: false }) as tf.Tensor;
          expect(y.shape).toEqual([2, numClasses]);
          expect(y.isFinite().all().dataSync()[0]).toBe(1);
          // d(sum of logits of class 0 and a mixture)/dx must be finite and non-zero for each image.
          const g = tf.grad((inp: tf.Tensor) => {
            const out = model.apply(inp, { training: false }) as tf.Tensor2D;
            return tf.sum(tf.mul(out, tf.linspace(-1, 1, numClasses)));
          })(x);
          expect(g.shape).toEqual(x.shape);
          const perImage = tf.sum(tf.abs(g), [1, 2, 3]).dataSync();
          expect(g.isFinite().all().dataSync()[0]).toBe(1);
          expect(perImage[0]).toBeGreaterThan(0);
          expect(perImage[1]).toBeGreaterThan(0);
          tf.dispose([x, y, g]);
        }
      });

      it('forward pass leaks no tensors', async () => {
        const x = tf.randomUniform([1, ...shape], 0, 1, 'float32', 3);
        await assertNoTensorLeak(() => base.apply(x, { training: false }), { reps: 2, label: `${name} forward` });
        if (jpeg && !heavy) await assertNoTensorLeak(() => jpeg!.apply(x, { training: false }), { reps: 2, label: `${name}+jpeg forward` });
        x.dispose();
      });
    });
  }
});

/**
 * Training kernels the stock wasm backend (tfjs-backend-wasm 4.22) lacks. A CNN's
 * backward pass needs, besides what wasm has: Conv2DBackpropFilter (every conv),
 * DepthwiseConv2dNativeBackpropFilter / ...BackpropInput (MobileNetV2, ShuffleNet),
 * and UnsortedSegmentSum (the gradient of tf.gather, e.g. table look-ups).
 * Each is composed from kernels wasm does have; see conv-backprop.ts. Also replaces
 * wasm's slow loop-based Conv2DBackpropInput by a transposed XNNPACK Conv2D, and fixes
 * the binary and pad kernels' silent garbage on rank-7 inputs (see rank-limits.ts), which
 * the JPEG layer's soft quantiser produces.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel, depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './conv-backprop.ts';
import { wrapWasmRankLimitedKernels } from './rank-limits.ts';
import { unsortedSegmentSumKernel } from './unsorted-segment-sum.ts';

/** Kernel names this module adds to the wasm backend. */
export const WASM_TRAINING_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
] as const;

/**
 * Register the missing training kernels for 'wasm' (or `backendName`) and make its
 * binary and pad kernels rank-7 safe; idempotent, and a kernel the backend already has is
 * left alone. Call after '@tensorflow/tfjs-backend-wasm' is imported (it registers
 * the kernels wrapped here), before or after the backend is initialised.
 * Returns the names of kernels added or wrapped.
 */
export function registerWasmTrainingKernels(backendName = 'wasm'): string[] {
  const makers: Record<(typeof WASM_TRAINING_KERNELS)[number], (b: string) => tf.KernelFunc> = {
    Conv2DBackpropFilter: (b) => conv2DBackpropFilterKernel(b) as unknown as tf.KernelFunc,
    DepthwiseConv2dNativeBackpropFilter: (b) => depthwiseBackpropFilterKernel(b) as unknown as tf.KernelFunc,
    DepthwiseConv2dNativeBackpropInput: (b) => depthwiseBackpropInputKernel(b) as unknown as tf.KernelFunc,
    UnsortedSegmentSum: (b) => unsortedSegmentSumKernel(b) as unknown as tf.KernelFunc,
  };
  const added: string[] = [];
  for (const name of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(name, backendName)) continue;
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: makers[name](backendName) });
    added.push(name);
  }
  // Replace wasm's loop-based Conv2DBackpropInput by the XNNPACK-backed composition.
  const stock = tf.getKernel('Conv2DBackpropInput', backendName);
  if (stock && !(stock.kernelFunc as { composed?: boolean }).composed) {
    const kernelFunc = conv2DBackpropInputKernel(backendName) as unknown as tf.KernelFunc & { composed?: boolean };
    kernelFunc.composed = true;
    tf.unregisterKernel('Conv2DBackpropInput', backendName);
    tf.registerKernel({ kernelName: 'Conv2DBackpropInput', backendName, kernelFunc });
    added.push('Conv2DBackpropInput (replaced)');
  }
  return [...added, ...wrapWasmRankLimitedKernels(backendName)];
}

/**
 * SqueezeNet 1.1 (torchvision layout): 3x3/2 stem conv (64, no padding), ceil-mode 3x3/2 max pools,
 * eight Fire modules (squeeze 1x1 -> expand 1x1 || expand 3x3), dropout 0.5, 1x1 conv classifier,
 * ReLU, global average pooling. As in the reference, the logits pass through that final ReLU.
 */
import type { ArchitectureSpec, InitScheme, LayerFactory, SymbolicTensor } from './common.ts';

function fire(f: LayerFactory, x: SymbolicTensor, squeeze: number, e1: number, e3: number, name: string): SymbolicTensor {
  const s = f.relu(f.conv(x, { filters: squeeze, kernel: 1, pad: 0, bias: true }, `${name}_squeeze`), `${name}_squeeze_relu`);
  const a = f.relu(f.conv(s, { filters: e1, kernel: 1, pad: 0, bias: true }, `${name}_expand1x1`), `${name}_expand1x1_relu`);
  const b = f.relu(f.conv(s, { filters: e3, kernel: 3, pad: 1, bias: true }, `${name}_expand3x3`), `${name}_expand3x3_relu`);
  return f.concat([a, b], `${name}_cat`);
}

function squeezeNet11(x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor {
  let h = f.relu(f.conv(x, { filters: 64, kernel: 3, stride: 2, pad: 0, bias: true }, 'conv1'), 'relu1');
  h = f.maxPool(h, { size: 3, stride: 2, ceil: true }, 'pool1');
  h = fire(f, h, 16, 64, 64, 'fire2');
  h = fire(f, h, 16, 64, 64, 'fire3');
  h = f.maxPool(h, { size: 3, stride: 2, ceil: true }, 'pool3');
  h = fire(f, h, 32, 128, 128, 'fire4');
  h = fire(f, h, 32, 128, 128, 'fire5');
  h = f.maxPool(h, { size: 3, stride: 2, ceil: true }, 'pool5');
  h = fire(f, h, 48, 192, 192, 'fire6');
  h = fire(f, h, 48, 192, 192, 'fire7');
  h = fire(f, h, 64, 256, 256, 'fire8');
  h = fire(f, h, 64, 256, 256, 'fire9');
  h = f.dropout(h, 0.5, 'drop');
  // torchvision initialises only the classifier conv with N(0, 0.01).
  const finalInit = { kind: 'normal', std: 0.01 } as const;
  h = f.relu(f.conv(h, { filters: numClasses, kernel: 1, pad: 0, bias: true, kernelInit: finalInit }, 'classifier_conv'), 'relu_final');
  return f.gap(h, 'pool');
}

/** torchvision SqueezeNet init: kaiming_uniform (a=0, fan_in) convs (classifier conv overridden above), zero biases. */
const SQUEEZENET_INIT: InitScheme = {
  conv: (kh, kw, inPerGroup) => ({ kind: 'uniform', bound: Math.sqrt(6 / (kh * kw * inPerGroup)) }),
  convBias: () => ({ kind: 'zeros' }),
  dense: (fanIn) => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }),
  denseBias: () => ({ kind: 'zeros' }),
};

/** SqueezeNet 1.1, the ImageNet set. */
export const SQUEEZENET_SPECS: ArchitectureSpec[] = [
  {
    name: 'squeezenet1_1',
    family: 'squeezenet',
    paperSet: 'imagenet',
    description: 'SqueezeNet 1.1 (torchvision; logits pass through the reference\'s final ReLU)',
    reference: 'torchvision.models.squeezenet1_1',
    defaultInputShape: [224, 224, 3],
    // Stem (k3/s2, no pad) then three ceil-mode k3/s2 pools each needing >= 3 px: 25 -> 12 -> 6 -> 3 -> 1.
    minInputSize: 25,
    init: SQUEEZENET_INIT,
    build: squeezeNet11,
  },
];

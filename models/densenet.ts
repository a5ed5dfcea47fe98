/**
 * DenseNet-BC-121 (growth 32, blocks 6/12/24/16, bottleneck 4k, compression 0.5; torchvision layout),
 * the fine-grained set's DenseNet: 7x7/2 stem + 3x3/2 max pool, dense blocks of BN-ReLU-1x1-BN-ReLU-3x3
 * layers, BN-ReLU-1x1-avgpool transitions, final BN + ReLU, global pooling, linear head.
 */
import { TORCH_DEFAULT_INIT, channelsOf, type ArchitectureSpec, type InitScheme, type LayerFactory, type SymbolicTensor } from './common.ts';

function denseLayer(f: LayerFactory, x: SymbolicTensor, growth: number, bnSize: number, name: string): SymbolicTensor {
  let h = f.conv(f.relu(f.bn(x, `${name}_norm1`), `${name}_relu1`), { filters: bnSize * growth, kernel: 1, pad: 0 }, `${name}_conv1`);
  h = f.conv(f.relu(f.bn(h, `${name}_norm2`), `${name}_relu2`), { filters: growth, kernel: 3 }, `${name}_conv2`);
  return h;
}

function denseNet(growth: number, blocks: number[], initFeatures: number, bnSize = 4) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: initFeatures, kernel: 7, stride: 2, pad: 3 }, 'conv0'), 'norm0'), 'relu0');
    h = f.maxPool(h, { size: 3, stride: 2, pad: 1 }, 'pool0');
    blocks.forEach((n, bi) => {
      for (let l = 0; l < n; l++) {
        const name = `block${bi + 1}_layer${l + 1}`;
        h = f.concat([h, denseLayer(f, h, growth, bnSize, name)], `${name}_cat`);
      }
      if (bi !== blocks.length - 1) {
        const t = `transition${bi + 1}`;
        h = f.conv(f.relu(f.bn(h, `${t}_norm`), `${t}_relu`), { filters: Math.floor(channelsOf(h) / 2), kernel: 1, pad: 0 }, `${t}_conv`);
        h = f.avgPool(h, { size: 2, stride: 2 }, `${t}_pool`);
      }
    });
    h = f.relu(f.bn(h, 'norm5'), 'relu5');
    return f.dense(f.gap(h, 'pool'), numClasses, 'classifier');
  };
}

/** torchvision DenseNet init: kaiming_normal (fan_in, ReLU gain) convs, default Linear weight, zero Linear bias. */
const DENSENET_INIT: InitScheme = {
  ...TORCH_DEFAULT_INIT,
  conv: (kh, kw, inPerGroup) => ({ kind: 'normal', std: Math.sqrt(2 / (kh * kw * inPerGroup)) }),
  denseBias: () => ({ kind: 'zeros' }),
};

/** DenseNet-121, the fine-grained set. */
export const DENSENET_SPECS: ArchitectureSpec[] = [
  {
    name: 'densenet121',
    family: 'densenet',
    paperSet: 'fine-grained',
    description: 'DenseNet-BC-121 (growth 32, blocks 6/12/24/16, 64 stem features)',
    reference: 'torchvision.models.densenet121 = JpegInspiredDl/JPEG-Inspired-DL models/densenet.py densenet121',
    defaultInputShape: [224, 224, 3],
    // conv0 and pool0 halve (ceil) the size, then three floor-mode 2x2 transitions need >= 8 px: 29 -> 15 -> 8 -> 4 -> 2 -> 1.
    minInputSize: 29,
    init: DENSENET_INIT,
    build: denseNet(32, [6, 12, 24, 16], 64),
  },
];

/**
 * PreAct ResNet-18 as in the CS-KD code base the paper's fine-grained recipe comes from
 * (`CIFAR_ResNet18`): 3x3 stem conv + BN + ReLU, four stages of two pre-activation blocks
 * (64/128/256/512), bias-free 1x1 projection shortcuts without BN, global pooling, linear head.
 */
import { TORCH_DEFAULT_INIT, channelsOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

function preActBlock(f: LayerFactory, x: SymbolicTensor, planes: number, stride: number, name: string): SymbolicTensor {
  const pre = f.relu(f.bn(x, `${name}_bn1`), `${name}_relu1`);
  let h = f.conv(pre, { filters: planes, kernel: 3, stride }, `${name}_conv1`);
  h = f.conv(f.relu(f.bn(h, `${name}_bn2`), `${name}_relu2`), { filters: planes, kernel: 3 }, `${name}_conv2`);
  // As in the reference, the identity shortcut carries the pre-activated input relu(bn1(x)), not x.
  const shortcut =
    stride !== 1 || channelsOf(x) !== planes ? f.conv(pre, { filters: planes, kernel: 1, stride, pad: 0 }, `${name}_shortcut`) : pre;
  return f.add([h, shortcut], `${name}_add`);
}

function preActResNet(blocks: number[]) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: 64, kernel: 3 }, 'stem_conv'), 'stem_bn'), 'stem_relu');
    [64, 128, 256, 512].forEach((planes, si) => {
      for (let b = 0; b < blocks[si]; b++) h = preActBlock(f, h, planes, si > 0 && b === 0 ? 2 : 1, `s${si + 1}_b${b + 1}`);
    });
    // Reference: avg_pool2d(4) on the 4x4 map of a 32 px input; global pooling generalises it to any size.
    return f.dense(f.gap(h, 'pool'), numClasses, 'linear');
  };
}

/** PreAct ResNet-18, the fine-grained set's ResNet in the issue (the released code trains torchvision resnet18). */
export const PREACT_RESNET_SPECS: ArchitectureSpec[] = [
  {
    name: 'preact_resnet18',
    family: 'preact_resnet',
    paperSet: 'fine-grained',
    description: 'PreAct ResNet-18 (CS-KD CIFAR_ResNet18: 3x3 stem, 4 stages x 2 pre-activation blocks)',
    reference: 'JpegInspiredDl/JPEG-Inspired-DL models/resnet.py CIFAR_ResNet18 (from CS-KD)',
    defaultInputShape: [32, 32, 3],
    minInputSize: 1,
    init: TORCH_DEFAULT_INIT,
    build: preActResNet([2, 2, 2, 2]),
  },
];

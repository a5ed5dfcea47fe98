/**
 * ImageNet ResNet-18/34 (torchvision layout): 7x7/2 stem, 3x3/2 max pool, four stages of
 * post-activation BasicBlocks (64/128/256/512), 1x1 conv + BN projections, global pooling, fc.
 */
import { KAIMING_FAN_OUT_INIT, channelsOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

function basicBlock(f: LayerFactory, x: SymbolicTensor, planes: number, stride: number, name: string): SymbolicTensor {
  let h = f.relu(f.bn(f.conv(x, { filters: planes, kernel: 3, stride }, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
  h = f.bn(f.conv(h, { filters: planes, kernel: 3 }, `${name}_conv2`), `${name}_bn2`);
  const identity =
    stride !== 1 || channelsOf(x) !== planes
      ? f.bn(f.conv(x, { filters: planes, kernel: 1, stride, pad: 0 }, `${name}_down_conv`), `${name}_down_bn`)
      : x;
  return f.relu(f.add([h, identity], `${name}_add`), `${name}_out`);
}

function imagenetResNet(blocks: number[]) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: 64, kernel: 7, stride: 2, pad: 3 }, 'stem_conv'), 'stem_bn'), 'stem_relu');
    h = f.maxPool(h, { size: 3, stride: 2, pad: 1 }, 'stem_pool');
    [64, 128, 256, 512].forEach((planes, si) => {
      for (let b = 0; b < blocks[si]; b++) h = basicBlock(f, h, planes, si > 0 && b === 0 ? 2 : 1, `s${si + 1}_b${b + 1}`);
    });
    return f.dense(f.gap(h, 'pool'), numClasses, 'fc');
  };
}

const REF = 'torchvision.models.resnet (also JpegInspiredDl/JPEG-Inspired-DL models/resnet.py resnet18/34)';

/** ResNet-18 (fine-grained and ImageNet sets) and ResNet-34 (ImageNet set). */
export const RESNET_IMAGENET_SPECS: ArchitectureSpec[] = [
  {
    name: 'resnet18',
    family: 'resnet_imagenet',
    paperSet: 'imagenet',
    description: 'ResNet-18 (torchvision, BasicBlocks 2/2/2/2); also the fine-grained ResNet of the released code',
    reference: REF,
    defaultInputShape: [224, 224, 3],
    minInputSize: 1,
    init: KAIMING_FAN_OUT_INIT,
    build: imagenetResNet([2, 2, 2, 2]),
  },
  {
    name: 'resnet34',
    family: 'resnet_imagenet',
    paperSet: 'imagenet',
    description: 'ResNet-34 (torchvision, BasicBlocks 3/4/6/3)',
    reference: REF,
    defaultInputShape: [224, 224, 3],
    minInputSize: 1,
    init: KAIMING_FAN_OUT_INIT,
    build: imagenetResNet([3, 4, 6, 3]),
  },
];

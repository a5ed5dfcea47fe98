/**
 * CIFAR ResNets (He et al. 2016, 3 stages of 16/32/64 channels, depth 6n+2) as defined in the
 * CRD/RepDistiller code base the paper's CIFAR-100 table uses: post-activation BasicBlocks,
 * 1x1 conv + BN projection shortcut on stride/width change, global average pooling, linear head.
 */
import { KAIMING_FAN_OUT_INIT, channelsOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

function basicBlock(f: LayerFactory, x: SymbolicTensor, planes: number, stride: number, name: string): SymbolicTensor {
  let out = f.conv(x, { filters: planes, kernel: 3, stride }, `${name}_conv1`);
  out = f.relu(f.bn(out, `${name}_bn1`), `${name}_relu1`);
  out = f.bn(f.conv(out, { filters: planes, kernel: 3 }, `${name}_conv2`), `${name}_bn2`);
  let shortcut = x;
  if (stride !== 1 || channelsOf(x) !== planes) {
    shortcut = f.bn(f.conv(x, { filters: planes, kernel: 1, stride, pad: 0 }, `${name}_down_conv`), `${name}_down_bn`);
  }
  return f.relu(f.add([out, shortcut], `${name}_add`), `${name}_out`);
}

/** Backbone builder for a CIFAR ResNet of the given depth (6n+2) and stage widths. */
export function cifarResNet(depth: number, widths: [number, number, number, number] = [16, 16, 32, 64]) {
  if ((depth - 2) % 6 !== 0) throw new Error(`CIFAR ResNet depth must be 6n+2, got ${depth}`);
  const n = (depth - 2) / 6;
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: widths[0], kernel: 3 }, 'stem_conv'), 'stem_bn'), 'stem_relu');
    for (let stage = 0; stage < 3; stage++) {
      for (let b = 0; b < n; b++) {
        const stride = stage > 0 && b === 0 ? 2 : 1;
        h = basicBlock(f, h, widths[stage + 1], stride, `s${stage + 1}_b${b + 1}`);
      }
    }
    // Reference: AvgPool2d(8) on the 8x8 map of a 32x32 input; global pooling is identical there and works at any size.
    return f.dense(f.gap(h, 'pool'), numClasses, 'fc');
  };
}

const REF = 'HobbitLong/RepDistiller models/resnet.py (CRD); layout of fb.resnet.torch';

function spec(depth: number, paperSet: ArchitectureSpec['paperSet']): ArchitectureSpec {
  return {
    name: `resnet${depth}`,
    family: 'resnet_cifar',
    paperSet,
    description: `CIFAR ResNet-${depth} (3 stages 16/32/64, ${(depth - 2) / 6} BasicBlocks each)`,
    reference: REF,
    defaultInputShape: [32, 32, 3],
    minInputSize: 1,
    init: KAIMING_FAN_OUT_INIT,
    build: cifarResNet(depth),
  };
}

/** ResNet-8/20 (small, fast) and ResNet-32/56/110 (the paper's CIFAR-100 set). */
export const RESNET_CIFAR_SPECS: ArchitectureSpec[] = [
  spec(8, 'small'),
  spec(20, 'small'),
  spec(32, 'cifar100'),
  spec(56, 'cifar100'),
  spec(110, 'cifar100'),
];

/**
 * VGG-8 / VGG-13 with batch norm as the CRD/RepDistiller code base defines them for CIFAR: five
 * conv blocks (conv3x3 with bias + BN + ReLU), max-pooling after blocks 0-2 (after block 3 only for
 * 64-pixel inputs, as in the reference), global average pooling, and a single 512->classes linear layer.
 */
import { CRD_NORMAL_INIT, spatialOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

const CFG: Record<'vgg8' | 'vgg13', number[][]> = {
  vgg8: [[64], [128], [256], [512], [512]], // config "S"
  vgg13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]], // config "B"
};

function vgg(cfg: number[][]) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    const inputHeight = spatialOf(x)[0];
    let h = x;
    cfg.forEach((block, bi) => {
      block.forEach((filters, li) => {
        h = f.conv(h, { filters, kernel: 3, bias: true }, `b${bi}_conv${li + 1}`);
        h = f.relu(f.bn(h, `b${bi}_bn${li + 1}`), `b${bi}_relu${li + 1}`);
      });
      // Reference pools after blocks 0, 1, 2 always and after block 3 only when the input is 64 px high.
      if (bi < 3 || (bi === 3 && inputHeight === 64)) h = f.maxPool(h, { size: 2, stride: 2 }, `pool${bi}`);
    });
    return f.dense(f.gap(h, 'pool4'), numClasses, 'classifier');
  };
}

const REF = 'HobbitLong/RepDistiller models/vgg.py (vgg8_bn = cfg S, vgg13_bn = cfg B)';

/** VGG-8 and VGG-13 (BN), the paper's CIFAR-100 set. */
export const VGG_SPECS: ArchitectureSpec[] = (['vgg8', 'vgg13'] as const).map((name) => ({
  name,
  family: 'vgg',
  paperSet: 'cifar100' as const,
  description: `${name === 'vgg8' ? 'VGG-8' : 'VGG-13'} with BN, CIFAR variant (no FC stack, 512->classes head)`,
  reference: REF,
  defaultInputShape: [32, 32, 3] as [number, number, number],
  // Three 2x2 floor-mode max pools must leave at least one pixel.
  minInputSize: 8,
  init: CRD_NORMAL_INIT,
  build: vgg(CFG[name]),
}));

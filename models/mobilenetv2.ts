/**
 * MobileNetV2 as the CRD/RepDistiller code base defines "MobileNetV2" for CIFAR-100 (`mobile_half`:
 * expansion T=6, width 0.5): a stride-2 stem, inverted residual blocks whose first block also has
 * a 1x1 expansion conv, ReLU (not ReLU6), a 1x1 conv to 1280 channels, global pooling, linear head.
 */
import { CRD_NORMAL_INIT, channelsOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

function invertedResidual(f: LayerFactory, x: SymbolicTensor, out: number, stride: number, expand: number, name: string): SymbolicTensor {
  const inp = channelsOf(x);
  const hidden = inp * expand;
  let h = f.relu(f.bn(f.conv(x, { filters: hidden, kernel: 1, pad: 0 }, `${name}_pw`), `${name}_pw_bn`), `${name}_pw_relu`);
  h = f.relu(f.bn(f.depthwise(h, { kernel: 3, stride }, `${name}_dw`), `${name}_dw_bn`), `${name}_dw_relu`);
  h = f.bn(f.conv(h, { filters: out, kernel: 1, pad: 0 }, `${name}_pwl`), `${name}_pwl_bn`);
  return stride === 1 && inp === out ? f.add([x, h], `${name}_add`) : h;
}

/** Backbone builder for the CRD MobileNetV2 with expansion T and width multiplier. */
export function mobileNetV2(T = 6, widthMult = 0.5) {
  // [expansion, channels, repeats, first stride]
  const setting: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [T, 24, 2, 1],
    [T, 32, 3, 2],
    [T, 64, 4, 2],
    [T, 96, 3, 1],
    [T, 160, 3, 2],
    [T, 320, 1, 1],
  ];
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.conv(x, { filters: Math.trunc(32 * widthMult), kernel: 3, stride: 2 }, 'stem_conv');
    h = f.relu(f.bn(h, 'stem_bn'), 'stem_relu');
    setting.forEach(([t, c, n, s], bi) => {
      const out = Math.trunc(c * widthMult);
      for (let i = 0; i < n; i++) h = invertedResidual(f, h, out, i === 0 ? s : 1, t, `b${bi}_${i}`);
    });
    const last = widthMult > 1 ? Math.trunc(1280 * widthMult) : 1280;
    h = f.relu(f.bn(f.conv(h, { filters: last, kernel: 1, pad: 0 }, 'head_conv'), 'head_bn'), 'head_relu');
    // Reference: AvgPool2d(input/16, ceil_mode) = global pooling of the 2x2 map at 32 px.
    return f.dense(f.gap(h, 'pool'), numClasses, 'classifier');
  };
}

/** MobileNetV2 (CRD "mobile_half"), the paper's CIFAR-100 set. */
export const MOBILENETV2_SPECS: ArchitectureSpec[] = [
  {
    name: 'mobilenetv2',
    family: 'mobilenetv2',
    paperSet: 'cifar100',
    description: 'MobileNetV2 (CRD mobile_half: T=6, width 0.5, ReLU), CIFAR variant',
    reference: 'HobbitLong/RepDistiller models/mobilenetv2.py (mobile_half)',
    defaultInputShape: [32, 32, 3],
    minInputSize: 1,
    init: CRD_NORMAL_INIT,
    build: mobileNetV2(6, 0.5),
  },
];

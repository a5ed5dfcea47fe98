/**
 * ShuffleNetV1 (g=3) and ShuffleNetV2 (1x) as the CRD/RepDistiller code base defines them for
 * CIFAR: a 1x1 stem conv to 24 channels (no stem pooling), three stages, global pooling, linear head.
 * Both use PyTorch's default initialisation (the reference sets none).
 */
import { TORCH_DEFAULT_INIT, channelsOf, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

// ---------- V1 ----------

function v1Bottleneck(f: LayerFactory, x: SymbolicTensor, outPlanes: number, stride: number, groups: number, name: string): SymbolicTensor {
  const inPlanes = channelsOf(x);
  const mid = Math.trunc(outPlanes / 4);
  // The reference does not group the first 1x1 conv when it reads the 24-channel stem.
  const g = inPlanes === 24 ? 1 : groups;
  let h = f.relu(f.bn(f.conv(x, { filters: mid, kernel: 1, pad: 0, groups: g }, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
  if (g > 1) h = f.shuffle(h, g, `${name}_shuffle`);
  h = f.relu(f.bn(f.depthwise(h, { kernel: 3, stride }, `${name}_conv2`), `${name}_bn2`), `${name}_relu2`);
  h = f.bn(f.conv(h, { filters: outPlanes, kernel: 1, pad: 0, groups }, `${name}_conv3`), `${name}_bn3`);
  if (stride === 2) {
    const res = f.avgPool(x, { size: 3, stride: 2, pad: 1 }, `${name}_shortcut`);
    return f.relu(f.concat([h, res], `${name}_cat`), `${name}_out`);
  }
  return f.relu(f.add([h, x], `${name}_add`), `${name}_out`);
}

function shuffleNetV1(outPlanes: number[], numBlocks: number[], groups: number) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: 24, kernel: 1, pad: 0 }, 'stem_conv'), 'stem_bn'), 'stem_relu');
    outPlanes.forEach((planes, si) => {
      for (let i = 0; i < numBlocks[si]; i++) {
        // First block of a stage downsamples and concatenates the pooled input, so its conv branch is narrower.
        const branch = i === 0 ? planes - channelsOf(h) : planes;
        h = v1Bottleneck(f, h, branch, i === 0 ? 2 : 1, groups, `s${si + 1}_b${i + 1}`);
      }
    });
    return f.dense(f.gap(h, 'pool'), numClasses, 'linear');
  };
}

// ---------- V2 ----------

function v2Basic(f: LayerFactory, x: SymbolicTensor, name: string): SymbolicTensor {
  const c = channelsOf(x);
  const half = Math.trunc(c * 0.5);
  const x1 = f.slice(x, 0, half, `${name}_split1`);
  const x2 = f.slice(x, half, c - half, `${name}_split2`);
  const w = c - half;
  let h = f.relu(f.bn(f.conv(x2, { filters: w, kernel: 1, pad: 0 }, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
  h = f.bn(f.depthwise(h, { kernel: 3 }, `${name}_conv2`), `${name}_bn2`);
  h = f.relu(f.bn(f.conv(h, { filters: w, kernel: 1, pad: 0 }, `${name}_conv3`), `${name}_bn3`), `${name}_relu3`);
  return f.shuffle(f.concat([x1, h], `${name}_cat`), 2, `${name}_shuffle`);
}

function v2Down(f: LayerFactory, x: SymbolicTensor, out: number, name: string): SymbolicTensor {
  const mid = Math.trunc(out / 2);
  let a = f.bn(f.depthwise(x, { kernel: 3, stride: 2 }, `${name}_conv1`), `${name}_bn1`);
  a = f.relu(f.bn(f.conv(a, { filters: mid, kernel: 1, pad: 0 }, `${name}_conv2`), `${name}_bn2`), `${name}_relu2`);
  let b = f.relu(f.bn(f.conv(x, { filters: mid, kernel: 1, pad: 0 }, `${name}_conv3`), `${name}_bn3`), `${name}_relu3`);
  b = f.bn(f.depthwise(b, { kernel: 3, stride: 2 }, `${name}_conv4`), `${name}_bn4`);
  b = f.relu(f.bn(f.conv(b, { filters: mid, kernel: 1, pad: 0 }, `${name}_conv5`), `${name}_bn5`), `${name}_relu5`);
  return f.shuffle(f.concat([a, b], `${name}_cat`), 2, `${name}_shuffle`);
}

function shuffleNetV2(outChannels: number[], numBlocks: number[]) {
  return (x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor => {
    let h = f.relu(f.bn(f.conv(x, { filters: 24, kernel: 1, pad: 0 }, 'stem_conv'), 'stem_bn'), 'stem_relu');
    for (let si = 0; si < 3; si++) {
      h = v2Down(f, h, outChannels[si], `s${si + 1}_down`);
      for (let i = 0; i < numBlocks[si]; i++) h = v2Basic(f, h, `s${si + 1}_b${i + 1}`);
    }
    h = f.relu(f.bn(f.conv(h, { filters: outChannels[3], kernel: 1, pad: 0 }, 'head_conv'), 'head_bn'), 'head_relu');
    // Reference: avg_pool2d(4) on the 4x4 map of a 32x32 input = global pooling.
    return f.dense(f.gap(h, 'pool'), numClasses, 'linear');
  };
}

const REF = 'HobbitLong/RepDistiller models/ShuffleNetv1.py, models/ShuffleNetv2.py';

/** ShuffleNetV1 and ShuffleNetV2, the paper's CIFAR-100 set. */
export const SHUFFLENET_SPECS: ArchitectureSpec[] = [
  {
    name: 'shufflenetv1',
    family: 'shufflenet',
    paperSet: 'cifar100',
    description: 'ShuffleNetV1 (g=3, stages 240/480/960 x 4/8/4 blocks), CRD CIFAR variant',
    reference: `${REF} (ShuffleV1)`,
    defaultInputShape: [32, 32, 3],
    minInputSize: 1,
    init: TORCH_DEFAULT_INIT,
    build: shuffleNetV1([240, 480, 960], [4, 8, 4], 3),
  },
  {
    name: 'shufflenetv2',
    family: 'shufflenet',
    paperSet: 'cifar100',
    description: 'ShuffleNetV2 1x (116/232/464 x 3/7/3 blocks, 1024-channel head), CRD CIFAR variant',
    reference: `${REF} (ShuffleV2, net_size 1)`,
    defaultInputShape: [32, 32, 3],
    minInputSize: 1,
    init: TORCH_DEFAULT_INIT,
    build: shuffleNetV2([116, 232, 464, 1024], [3, 7, 3]),
  },
];

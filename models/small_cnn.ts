/**
 * Compact CNN for the fast embedded default (28x28 grayscale Fashion-MNIST, 32x32 colour): two
 * stages of two conv3x3+BN+ReLU (32, then 64 channels) each followed by 2x2 max pooling, then a
 * 128-unit hidden layer and the linear head. Not from the paper; sized to train in seconds on CPU.
 */
import { KAIMING_FAN_OUT_INIT, type ArchitectureSpec, type LayerFactory, type SymbolicTensor } from './common.ts';

function smallCnn(x: SymbolicTensor, numClasses: number, f: LayerFactory): SymbolicTensor {
  let h = x;
  [32, 64].forEach((filters, si) => {
    for (let i = 1; i <= 2; i++) {
      h = f.relu(f.bn(f.conv(h, { filters, kernel: 3 }, `s${si + 1}_conv${i}`), `s${si + 1}_bn${i}`), `s${si + 1}_relu${i}`);
    }
    h = f.maxPool(h, { size: 2, stride: 2 }, `s${si + 1}_pool`);
  });
  h = f.relu(f.dense(f.flatten(h, 'flatten'), 128, 'fc1'), 'fc1_relu');
  return f.dense(h, numClasses, 'fc2');
}

/** The compact CNN (small set). */
export const SMALL_CNN_SPECS: ArchitectureSpec[] = [
  {
    name: 'small_cnn',
    family: 'small_cnn',
    paperSet: 'small',
    description: 'Compact CNN: 2x(conv32) pool 2x(conv64) pool, fc128, fc (for 28x28x1 / 32x32x3)',
    reference: 'this project (not in the paper)',
    defaultInputShape: [28, 28, 1],
    // Two floor-mode 2x2 pools must leave at least one pixel.
    minInputSize: 4,
    init: KAIMING_FAN_OUT_INIT,
    build: smallCnn,
  },
];

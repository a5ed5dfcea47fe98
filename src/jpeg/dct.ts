/**
 * Orthonormal 8x8 DCT-II on blocks, as two matrix products: C = D X D^T with
 * D[u][x] = c_u cos((2x+1) u pi / 16), c_0 = 1/sqrt(8), c_u = 1/2. Row index u of C is the
 * vertical frequency, so coefficient tensors are [..., u, v], like the tables.
 */
import * as tf from '@tensorflow/tfjs';

/** The orthonormal n x n DCT-II matrix D[u][x] = c_u cos((2x+1) u pi / 2n) (c_0 = sqrt(1/n), c_u = sqrt(2/n)) as plain float64 numbers; JPEG's 8x8 by default. */
export function dctMatrix(n = 8): number[][] {
  const d: number[][] = [];
  for (let u = 0; u < n; u++) {
    const c = Math.sqrt((u === 0 ? 1 : 2) / n);
    d.push(Array.from({ length: n }, (_, x) => c * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n))));
  }
  return d;
}

const cache = new Map<string, { d: tf.Tensor2D; dt: tf.Tensor2D }>();

// D and D^T are built once per backend and kept, so a forward pass allocates no constants.
function matrices() {
  const key = tf.getBackend();
  let m = cache.get(key);
  if (!m || m.d.isDisposed) {
    const d = dctMatrix();
    m = {
      d: tf.keep(tf.tensor2d(d, [8, 8], 'float32')),
      dt: tf.keep(tf.tensor2d(d[0].map((_, j) => d.map((r) => r[j])), [8, 8], 'float32')),
    };
    cache.set(key, m);
  }
  return m;
}

// Y[..., i, k] = sum_j X[..., i, j] M[j, k], as one 2-D matMul over all rows.
function rightMul(x: tf.Tensor, m: tf.Tensor2D): tf.Tensor {
  const shape = x.shape;
  return tf.matMul(x.reshape([-1, 8]), m).reshape(shape);
}

function swapLast(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return x.transpose(perm);
}

/** Forward 2-D DCT of every trailing 8x8 block [..., x, y] -> [..., u, v] (orthonormal). */
export function dct2<T extends tf.Tensor>(blocks: T): T {
  checkBlocks(blocks, 'dct2');
  const { dt } = matrices();
  // (X D^T) gives [x][v]; transpose to [v][x], times D^T gives [v][u]; transpose to [u][v].
  return tf.tidy(() => swapLast(rightMul(swapLast(rightMul(blocks, dt)), dt))) as T;
}

/** Inverse 2-D DCT of every trailing 8x8 block [..., u, v] -> [..., x, y] (X = D^T C D). */
export function idct2<T extends tf.Tensor>(coeffs: T): T {
  checkBlocks(coeffs, 'idct2');
  const { d } = matrices();
  return tf.tidy(() => swapLast(rightMul(swapLast(rightMul(coeffs, d)), d))) as T;
}

function checkBlocks(x: tf.Tensor, name: string): void {
  const r = x.rank;
  if (r < 2 || x.shape[r - 1] !== 8 || x.shape[r - 2] !== 8) {
    throw new Error(`${name}: expected trailing 8x8 blocks, got shape [${x.shape.join(',')}]`);
  }
}

/** Splitting NHWC images into 8x8 blocks per channel (zero padding right/bottom) and back. */
import * as tf from '@tensorflow/tfjs';

/** Rank-6 tensor (tfjs exports no Tensor6D alias). */
export type Tensor6D = tf.Tensor<tf.Rank.R6>;

/** Block edge in pixels. */
export const BLOCK = 8;

/** Size of an image after zero padding to a multiple of 8. */
export function paddedSize(h: number, w: number): [number, number] {
  return [Math.ceil(h / BLOCK) * BLOCK, Math.ceil(w / BLOCK) * BLOCK];
}

/** [N,H,W,C] -> [N, H8/8, W8/8, C, 8, 8] blocks (row-major [x][y] inside), zero-padded right/bottom. */
export function blockify(x: tf.Tensor4D): Tensor6D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const [hp, wp] = paddedSize(h, w);
    const padded = hp === h && wp === w ? x : tf.pad(x, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]]);
    return padded
      .reshape([n, hp / BLOCK, BLOCK, wp / BLOCK, BLOCK, c])
      .transpose([0, 1, 3, 5, 2, 4]) as Tensor6D;
  });
}

/** Inverse of blockify: [N,Hb,Wb,C,8,8] -> [N,H,W,C], cropping the padding to `height` x `width`. */
export function deblockify(blocks: Tensor6D, height: number, width: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, hb, wb, c] = blocks.shape;
    if (hb * BLOCK < height || wb * BLOCK < width || hb * BLOCK - height >= BLOCK || wb * BLOCK - width >= BLOCK) {
      throw new Error(`deblockify: ${hb}x${wb} blocks cannot hold a ${height}x${width} image`);
    }
    const img = blocks.transpose([0, 1, 4, 2, 5, 3]).reshape([n, hb * BLOCK, wb * BLOCK, c]) as tf.Tensor4D;
    return hb * BLOCK === height && wb * BLOCK === width ? img : img.slice([0, 0, 0, 0], [n, height, width, c]);
  });
}

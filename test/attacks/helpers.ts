// Test fixtures for the attack tests: small linear / MLP classifiers, images, and a tiny trained model.
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/data/rng.ts';

/** Deterministic uniform [0,1) stream (mulberry32), so fixtures never depend on tf's RNG. */
export function rng(seed: number): () => number {
  return mulberry32(seed >>> 0);
}

/** A linear classifier logits = flatten(x)·W + b with W as plain numbers [d][classes]. */
export function linearModel(W: number[][], b: number[]): (x: tf.Tensor4D) => tf.Tensor2D {
  const w = tf.keep(tf.tensor2d(W));
  const bias = tf.keep(tf.tensor1d(b));
  return (x) => tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), w), bias) as tf.Tensor2D);
}

/** Random weights [d][classes] in [-scale, scale]. */
export function randomWeights(seed: number, d: number, classes: number, scale = 1): number[][] {
  const r = rng(seed);
  return Array.from({ length: d }, () => Array.from({ length: classes }, () => (2 * r() - 1) * scale));
}

/** A random one-hidden-layer tanh MLP on flattened images (a smooth nonlinear classifier). */
export function randomMlp(seed: number, d: number, classes: number, hidden = 8): (x: tf.Tensor4D) => tf.Tensor2D {
  const w1 = tf.keep(tf.tensor2d(randomWeights(seed, d, hidden, 2 / Math.sqrt(d))));
  const w2 = tf.keep(tf.tensor2d(randomWeights(seed + 1, hidden, classes, 3)));
  return (x) => tf.tidy(() => tf.matMul(tf.tanh(tf.matMul(tf.reshape(x, [x.shape[0], -1]), w1)), w2) as tf.Tensor2D);
}

/** Random images in [0,1] with some pixels exactly 0 or 1 (to exercise the box constraint). */
export function randomImagesData(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    return u < 0.1 ? 0 : u > 0.9 ? 1 : r();
  });
}

export function randomImages(seed: number, shape: [number, number, number, number]): tf.Tensor4D {
  return tf.tensor4d(randomImagesData(seed, shape.reduce((a, b) => a * b, 1)), shape);
}

export function randomLabels(seed: number, n: number, classes: number): tf.Tensor1D {
  const r = rng(seed);
  return tf.tensor1d(Array.from({ length: n }, () => Math.floor(r() * classes)), 'int32');
}

/** Per-example max |a - b|, L2 ||a - b|| and L1 sum |a - b| in float64. */
export function perExampleDistances(a: ArrayLike<number>, b: ArrayLike<number>, batch: number, channels = 1): { linf: number[]; l2: number[]; l1: number[]; l0: number[] } {
  const per = a.length / batch;
  const linf: number[] = [];
  const l2: number[] = [];
  const l1: number[] = [];
  const l0: number[] = [];
  for (let i = 0; i < batch; i++) {
    let m = 0;
    let s = 0;
    let t = 0;
    let pixels = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      const d = Math.abs(a[j] - b[j]);
      m = Math.max(m, d);
      s += d * d;
      t += d;
    }
    // L0 counts pixels (groups of `channels` values) with any change.
    for (let q = i * per; q < (i + 1) * per; q += channels) {
      let changed = false;
      for (let ch = 0; ch < channels; ch++) if (a[q + ch] !== b[q + ch]) changed = true;
      if (changed) pixels++;
    }
    linf.push(m);
    l2.push(Math.sqrt(s));
    l1.push(t);
    l0.push(pixels);
  }
  return { linf, l2, l1, l0 };
}

/** An easy synthetic task: 4 classes of 4x4x1 images = class prototype + Gaussian-ish noise, clipped to [0,1]. */
export function syntheticTask(seed: number, n: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const r = rng(seed);
  const proto = rng(12345); // prototypes fixed across train/test
  const protos = Array.from({ length: 4 }, () => Array.from({ length: 16 }, () => 0.2 + 0.6 * proto()));
  const xs = new Float32Array(n * 16);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    ys[i] = c;
    for (let j = 0; j < 16; j++) {
      const noise = (r() + r() + r() - 1.5) * 0.12;
      xs[i * 16 + j] = Math.min(1, Math.max(0, protos[c][j] + noise));
    }
  }
  return { x: tf.tensor4d(xs, [n, 4, 4, 1]), y: tf.tensor1d(ys, 'int32') };
}

/** A small MLP (LayersModel) trained on the synthetic task in well under a second; returns test data too. */
export async function trainedModel(): Promise<{ model: tf.LayersModel; x: tf.Tensor4D; y: tf.Tensor1D; cleanAccuracy: number }> {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [4, 4, 1] }),
      tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: tf.losses.softmaxCrossEntropy });
  const train = syntheticTask(1, 400);
  const yTrain = tf.oneHot(train.y, 4);
  await model.fit(train.x, yTrain, { epochs: 30, batchSize: 100, shuffle: false, verbose: 0 });
  tf.dispose([train.x, train.y, yTrain]);
  const test = syntheticTask(2, 100);
  const acc = accuracy(model, test.x, test.y);
  return { model, x: test.x, y: test.y, cleanAccuracy: acc };
}

/** Fraction of examples the model classifies correctly. */
export function accuracy(model: tf.LayersModel | ((x: tf.Tensor4D) => tf.Tensor2D), x: tf.Tensor4D, y: tf.Tensor1D): number {
  return tf.tidy(() => {
    const logits = typeof model === 'function' ? model(x) : (model.predict(x) as tf.Tensor2D);
    return tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32')).dataSync()[0];
  });
}

/** Per image and wrong class k: the exact distance to the hyperplane f_y = f_k of an affine model, in L2 (dual L2) or L-inf (dual L1); Infinity for k = y. */
export function planeDistances(xs: ArrayLike<number>, W: number[][], b: number[], labels: number[], norm: 'l2' | 'linf'): number[][] {
  const d = W.length;
  return labels.map((y, i) => {
    const z = b.map((bc, c) => W.reduce((s, row, j) => s + xs[i * d + j] * row[c], bc));
    return b.map((_, k) => {
      if (k === y) return Infinity;
      const diff = W.map((row) => row[y] - row[k]);
      const dual = norm === 'l2' ? Math.sqrt(diff.reduce((s, v) => s + v * v, 0)) : diff.reduce((s, v) => s + Math.abs(v), 0);
      return (z[y] - z[k]) / dual;
    });
  });
}

/** A 3-class affine model on 4x4x1 images and 6 images in [0.4, 0.6] labelled as the model predicts (boundaries well inside the box). */
export function affineSetting(seed: number) {
  const W = randomWeights(seed, 16, 3, 5);
  const b = [0, 0.2, -0.2];
  const model = linearModel(W, b);
  const xs = Float32Array.from(randomImagesData(seed + 1, 6 * 16), (v) => 0.4 + 0.2 * v);
  const x = tf.tensor4d(xs, [6, 4, 4, 1]);
  const labels = Array.from(tf.tidy(() => tf.argMax(model(x), 1).dataSync()));
  return { W, b, model, xs, x, y: tf.tensor1d(labels, 'int32'), labels };
}

/**
 * Largest drop of v·x' over x' = x + delta in the box [0,1]^d with ||delta||_1 <= eps: a fractional
 * knapsack (the budget goes to the pixels with the largest |v_i| first, each up to its room to the box
 * edge against v's sign), exact in float64. For a linear model, v = w_y - w_o gives the least margin
 * of class y over class o an L1 attack can reach.
 */
export function l1MaxDrop(v: ArrayLike<number>, x: ArrayLike<number>, eps: number): number {
  const items = Array.from(v, (vi, i) => ({ gain: Math.abs(vi), room: vi > 0 ? x[i] : 1 - x[i] })).sort((a, b) => b.gain - a.gain);
  let left = eps;
  let drop = 0;
  for (const it of items) {
    if (left <= 0) break;
    const t = Math.min(it.room, left);
    drop += it.gain * t;
    left -= t;
  }
  return drop;
}

/** A linear model on [n,4,4,3] images with labels = its clean predictions, and per example the least margin over each wrong class within eps (exact). */
export function linearL1Task(seed: number, n: number, classes: number, eps: number) {
  const d = 48;
  const W = randomWeights(seed, d, classes, 1);
  const b = Array.from({ length: classes }, () => 0);
  const model = linearModel(W, b);
  const xs = randomImagesData(seed + 1, n * d);
  const x = tf.tensor4d(xs, [n, 4, 4, 3]);
  const logits = tf.tidy(() => model(x).arraySync() as number[][]);
  const labels = logits.map((z) => z.indexOf(Math.max(...z)));
  // Least margin z_y - z_o over the L1 ball and box, per wrong class o; the example is robust iff all are > 0.
  const leastMargins = labels.map((y, i) => {
    const xi = xs.subarray(i * d, (i + 1) * d);
    return Array.from({ length: classes }, (_, o) => {
      if (o === y) return Infinity;
      const v = W.map((row) => row[y] - row[o]);
      return logits[i][y] - logits[i][o] - l1MaxDrop(v, xi, eps);
    });
  });
  return { model, W, x, xs, y: tf.tensor1d(labels, 'int32'), labels, logits, leastMargins, d };
}

/**
 * The largest margin any image with at most k changed pixels (of c channels) in [0,1] can have under a
 * linear model: per wrong class, the margin at x plus the k largest pixel gains, a pixel's gain being the
 * sum over its channels of the best end of the box (a linear objective is maximised at a corner).
 */
export function l0MarginBound(x: ArrayLike<number>, W: number[][], b: number[], labels: number[], k: number, c: number): number[] {
  const d = W.length;
  const p = d / c;
  return labels.map((y, i) => {
    let best = -Infinity;
    for (let cls = 0; cls < b.length; cls++) {
      if (cls === y) continue;
      let m = b[cls] - b[y];
      for (let j = 0; j < d; j++) m += x[i * d + j] * (W[j][cls] - W[j][y]);
      const gains = Array.from({ length: p }, (_, q) => {
        let g = 0;
        for (let ch = 0; ch < c; ch++) {
          const j = q * c + ch;
          const a = W[j][cls] - W[j][y];
          g += Math.max(a * (1 - x[i * d + j]), -a * x[i * d + j]);
        }
        return g;
      }).sort((u, v) => v - u);
      best = Math.max(best, m + gains.slice(0, k).reduce((s, g) => s + g, 0));
    }
    return best;
  });
}

/**
 * A classifier whose gradient is zero almost everywhere (gradient masking in miniature): class 0's logit
 * is 0, class 1's is the number of values that round to 1 minus `threshold`.
 */
export function roundingCounter(threshold: number): (x: tf.Tensor4D) => tf.Tensor2D {
  return (v) => tf.tidy(() => {
    const ones = tf.reshape(tf.sum(tf.round(v), [1, 2, 3]), [-1, 1]);
    return tf.concat([tf.zerosLike(ones), tf.sub(ones, threshold)], 1) as tf.Tensor2D;
  });
}

/** How many images of `adv` the model does not put in class 0. */
export function notClass0(model: (x: tf.Tensor4D) => tf.Tensor2D, adv: tf.Tensor4D): number {
  return tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(model(adv), 1), 0).toInt()).dataSync()[0]);
}

/** Margin max_{j != y} z_j - z_y of a linear model at flat images (float64). */
export function margins(x: ArrayLike<number>, W: number[][], b: number[], labels: number[]): number[] {
  const d = W.length;
  return labels.map((y, i) => {
    const z = b.map((bc, c) => W.reduce((s, row, j) => s + x[i * d + j] * row[c], bc));
    return Math.max(...z.filter((_, c) => c !== y)) - z[y];
  });
}

/**
 * The largest margin any image of {||x' - x||_inf <= eps} ∩ [0,1]^d can have under a linear model:
 * max over wrong classes j of the margin at x plus, per pixel, the best end of [max(-eps, -x), min(eps, 1 - x)].
 */
export function marginUpperBound(x: ArrayLike<number>, W: number[][], b: number[], labels: number[], eps: number): number[] {
  const d = W.length;
  const logits = labels.map((_, i) => b.map((bc, c) => W.reduce((s, row, j) => s + x[i * d + j] * row[c], bc)));
  return labels.map((y, i) => {
    let best = -Infinity;
    for (let c = 0; c < b.length; c++) {
      if (c === y) continue;
      let m = logits[i][c] - logits[i][y];
      for (let j = 0; j < d; j++) {
        const a = W[j][c] - W[j][y];
        const lo = Math.max(-eps, -x[i * d + j]);
        const hi = Math.min(eps, 1 - x[i * d + j]);
        m += a > 0 ? a * hi : a * lo;
      }
      best = Math.max(best, m);
    }
    return best;
  });
}

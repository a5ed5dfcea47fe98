// Tiny model, a stand-in JPEG-table layer and seeded data so training tests take seconds
// and do not depend on the model/data/JPEG modules.
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/data/rng.ts';
import type { Batch } from '../../src/train/evaluate.ts';
import type { TrainData } from '../../src/train/trainer.ts';

/** Deterministic uniform [0,1) stream (mulberry32), so fixtures never depend on tf's RNG. */
export function rng(seed: number): () => number {
  return mulberry32(seed >>> 0);
}

/**
 * Stand-in for the JPEG layer (same class name, so the trainer treats its 64 weights as tables):
 * multiplies each pixel by table[r%8][c%8]/4 (identity at the init value 4), so every entry gets a gradient.
 */
export class FakeJpegLayer extends tf.layers.Layer {
  static className = 'JpegLayer';
  mode: 'soft' | 'hard' | 'bpda-identity' | 'bpda-soft' = 'soft';
  private table!: tf.LayerVariable;
  constructor(private readonly init = 4) {
    super({ name: undefined });
  }
  override build(): void {
    this.table = this.addWeight('table', [8, 8], 'float32', tf.initializers.constant({ value: this.init }), undefined, true);
    this.built = true;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [, h, w] = x.shape;
      let t = this.table.read();
      // 'hard' mode rounds the scale, so hard and soft evaluation can differ.
      if (this.mode === 'hard') t = tf.round(t);
      const tiled = tf.tile(t, [Math.ceil(h / 8), Math.ceil(w / 8)]).slice([0, 0], [h, w]);
      return tf.mul(x, tf.reshape(tf.div(tiled, 4), [1, h, w, 1]));
    });
  }
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return s;
  }
  override getClassName(): string {
    return 'JpegLayer';
  }
}

/** A small conv net with BatchNorm on 8x8x1 inputs, optionally behind the stand-in JPEG layer. */
export function tinyModel(opts: { jpeg: boolean; seed?: number; classes?: number }): tf.LayersModel {
  const seed = opts.seed ?? 1;
  const classes = opts.classes ?? 4;
  const input = tf.input({ shape: [8, 8, 1] });
  let h: tf.SymbolicTensor = input;
  if (opts.jpeg) h = new FakeJpegLayer().apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Seeded synthetic images: class k is bright in one 4x4 quadrant, plus noise. */
export function tinyData(n: number, seed: number, classes = 4): { images: Float32Array; labels: Int32Array } {
  const r = rng(seed);
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    labels[i] = k;
    for (let p = 0; p < 64; p++) {
      const row = Math.floor(p / 8);
      const col = p % 8;
      const q = (row < 4 ? 0 : 2) + (col < 4 ? 0 : 1);
      images[i * 64 + p] = Math.min(1, Math.max(0, (q === k % 4 ? 0.7 : 0.2) + 0.3 * (r() - 0.5)));
    }
  }
  return { images, labels };
}

/** TrainData over tinyData: per-epoch shuffle and random horizontal flips, both from (seed, epoch). */
export function tinyTrainData(n = 64, dataSeed = 7): TrainData & { images: Float32Array; labels: Int32Array } {
  const { images, labels } = tinyData(n, dataSeed);
  return {
    images,
    labels,
    size: n,
    *batches(epoch, { batchSize, seed, augment }) {
      const r = rng(seed * 1000003 + epoch);
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let s = 0; s < n; s += batchSize) {
        const idx = order.slice(s, s + batchSize);
        const xb = new Float32Array(idx.length * 64);
        idx.forEach((src, b) => {
          const flip = augment && r() < 0.5;
          for (let p = 0; p < 64; p++) {
            const row = Math.floor(p / 8);
            const col = p % 8;
            xb[b * 64 + p] = images[src * 64 + row * 8 + (flip ? 7 - col : col)];
          }
        });
        yield { x: tf.tensor4d(xb, [idx.length, 8, 8, 1]), y: tf.tensor1d(Int32Array.from(idx.map((i) => labels[i])), 'int32') } as Batch;
      }
    },
  };
}

/** Unshuffled evaluation batches over tinyData. */
export function tinyEvalBatches(n = 32, seed = 99, batchSize = 16): () => Iterable<Batch> {
  const { images, labels } = tinyData(n, seed);
  return function* () {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      yield { x: tf.tensor4d(images.slice(s * 64, (s + m) * 64), [m, 8, 8, 1]), y: tf.tensor1d(labels.slice(s, s + m), 'int32') };
    }
  };
}

/** All weights of a model as plain arrays (for exact comparisons). */
export function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => w.read().dataSync().slice() as Float32Array);
}

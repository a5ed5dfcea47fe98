/**
 * A randomised defence as deployed: the prediction averaged over k draws. Xie et al. (2018) classify
 * each image by the mean of the softmax outputs over 30 random resizings and paddings; the same
 * ensemble serves randomised JPEG. Two weightless layers build it around any randomised layer and
 * classifier: `RepeatDraws` stacks k copies of the batch (draw-major: copy d of image i is row d·N + i),
 * the randomised layer draws for every row, and `MeanOfDraws` turns the k·N logits back into N rows of
 * log(mean_d softmax(logits_d)): logits whose softmax is the ensemble's mean probability, so losses on
 * them (cross-entropy = -log of the mean probability of the label) and argmax are the ensemble's.
 */
import * as tf from '@tensorflow/tfjs';

type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** Options of RepeatDraws and MeanOfDraws. */
export interface DrawsArgs extends BaseLayerArgs {
  /** Number of draws k (an integer >= 1). */
  draws: number;
}

function checkDraws(draws: unknown, who: string): number {
  if (!Number.isInteger(draws) || (draws as number) < 1) throw new Error(`${who}: draws must be an integer >= 1, got ${String(draws)}`);
  return draws as number;
}

/** A weightless layer with a number of draws, serialised by getConfig. */
abstract class DrawsLayer extends tf.layers.Layer {
  readonly draws: number;

  constructor(args: DrawsArgs, who: string) {
    super({ ...args, trainable: false });
    this.draws = checkDraws(args?.draws, who);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), draws: this.draws };
  }
}

/** k copies of the batch, draw-major: [N, ...] -> [k·N, ...] (row d·N + i is image i). */
export class RepeatDraws extends DrawsLayer {
  static className = 'RepeatDraws';

  constructor(args: DrawsArgs) {
    super(args, 'RepeatDraws');
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return this.draws === 1 ? tf.clone(x) : tf.concat(Array<tf.Tensor>(this.draws).fill(x), 0);
  }
}
tf.serialization.registerClass(RepeatDraws);

/** [k·N, C] logits (draw-major) -> [N, C] = log of the mean over the k draws of their softmax. */
export class MeanOfDraws extends DrawsLayer {
  static className = 'MeanOfDraws';

  constructor(args: DrawsArgs) {
    super(args, 'MeanOfDraws');
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 2) throw new Error(`MeanOfDraws: input must be [batch, classes] logits, got [${shape.join(',')}]`);
    return shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const logits = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
    const [rows, classes] = logits.shape;
    const k = this.draws;
    if (rows % k !== 0) throw new Error(`MeanOfDraws: ${rows} rows are not ${k} draws of one batch`);
    return tf.tidy(() => {
      const perDraw = tf.reshape(tf.logSoftmax(logits), [k, rows / k, classes]);
      // log mean_d p_d = logsumexp_d(log p_d) - log k, computed stably.
      return tf.sub(tf.logSumExp(perDraw, 0), Math.log(k));
    });
  }
}
tf.serialization.registerClass(MeanOfDraws);

/**
 * The two optimisers of joint training, written out (not tf.train.*) so that their state is
 * explicit, serialisable into checkpoints, and their arithmetic matches PyTorch exactly:
 * - backbone: torch.optim.SGD(momentum, weight_decay) - coupled L2: g <- g + wd*w, buf <- mu*buf + g, w <- w - lr*buf;
 * - JPEG tables: torch.optim.Adam with bias correction, w <- w - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
 */
import * as tf from '@tensorflow/tfjs';
import { nativeCpuPathsActive } from '../native/fast-grads.ts';

/** Optimiser state as plain arrays (for checkpoints). */
export interface OptimizerState {
  kind: 'sgd-momentum' | 'adam';
  /** Steps taken so far (Adam's bias correction needs it). */
  step: number;
  /** One entry per slot per parameter, in parameter order. */
  slots: { name: string; shape: number[]; values: Float32Array }[];
}

/** A stateful optimiser over a fixed, ordered list of variables. */
export interface ParamOptimizer {
  readonly vars: tf.Variable[];
  /** Current learning rate (per step). */
  lr: number;
  /** Apply one update; `grads[i]` belongs to `vars[i]`. Does not dispose the gradients. */
  apply(grads: tf.Tensor[]): void;
  /** Copy the state out to host memory. */
  getState(): Promise<OptimizerState>;
  /** Restore state saved by getState (shapes are checked). */
  setState(s: OptimizerState): void;
  dispose(): void;
}

function slotVars(vars: tf.Variable[]): tf.Variable[] {
  return vars.map((v) => {
    const zeros = tf.zerosLike(v);
    const slot = tf.variable(zeros, false);
    zeros.dispose();
    return slot;
  });
}

async function dumpSlots(prefix: string, slots: tf.Variable[]): Promise<OptimizerState['slots']> {
  const out: OptimizerState['slots'] = [];
  for (let i = 0; i < slots.length; i++) {
    out.push({ name: `${prefix}${i}`, shape: slots[i].shape.slice(), values: (await slots[i].data()) as Float32Array });
  }
  return out;
}

function loadSlots(kind: string, prefix: string, slots: tf.Variable[], saved: OptimizerState['slots']): void {
  slots.forEach((slot, i) => {
    const entry = saved.find((s) => s.name === `${prefix}${i}`);
    if (!entry) throw new Error(`${kind} state: missing slot ${prefix}${i}`);
    if (entry.shape.join('x') !== slot.shape.join('x')) {
      throw new Error(`${kind} state: slot ${prefix}${i} has shape [${entry.shape}] but the parameter has [${slot.shape}]`);
    }
    tf.tidy(() => slot.assign(tf.tensor(entry.values, slot.shape, 'float32')));
  });
}

/**
 * Largest parameter (elements) updated on the host. On native TensorFlow on CPU every eager op
 * costs 30-50 us of dispatch, more than the arithmetic of a small tensor, and SGD is 4-6 ops per
 * parameter; reading the three arrays, one JS loop and two writes is cheaper up to about this size.
 */
export const HOST_UPDATE_MAX = 1 << 16;

/**
 * True when small updates should run on the host: native TensorFlow on CPU (a GPU would pay
 * copies) with the native fast paths on (JPEGDL_NATIVE_FAST_PATHS=0 or withNativeFastPaths(false) keep the ops).
 */
function hostUpdates(): boolean {
  return nativeCpuPathsActive();
}

/** SGD with heavy-ball momentum and coupled L2 weight decay (PyTorch semantics, dampening 0). */
export class SgdMomentum implements ParamOptimizer {
  private readonly buf: tf.Variable[];
  step = 0;
  constructor(
    readonly vars: tf.Variable[],
    public lr: number,
    readonly momentum: number,
    /** Weight decay per variable (0 for any that should not decay). */
    readonly weightDecay: number[],
  ) {
    if (weightDecay.length !== vars.length) throw new Error('SgdMomentum: weightDecay must have one entry per variable');
    this.buf = slotVars(vars);
  }
  apply(grads: tf.Tensor[]): void {
    const lr = this.lr;
    const host = hostUpdates();
    tf.tidy(() => {
      this.vars.forEach((v, i) => {
        if (host && v.size <= HOST_UPDATE_MAX && grads[i].dtype === 'float32') {
          this.applyOnHost(i, grads[i], lr);
          return;
        }
        let g = grads[i];
        if (this.weightDecay[i] > 0) g = tf.add(g, tf.mul(v, this.weightDecay[i]));
        const b = tf.add(tf.mul(this.buf[i], this.momentum), g);
        this.buf[i].assign(b);
        v.assign(tf.sub(v, tf.mul(b, lr)));
      });
    });
    this.step++;
  }
  /**
   * The same update as the tensor ops above, bit for bit: every product and sum is rounded to
   * float32 as each TensorFlow op rounds it (JS scalars become float32 tensors there, hence fround).
   */
  private applyOnHost(i: number, grad: tf.Tensor, lr: number): void {
    const v = this.vars[i];
    const f = Math.fround;
    const w = v.dataSync() as Float32Array;
    const g = grad.dataSync() as Float32Array;
    const b = this.buf[i].dataSync() as Float32Array;
    const wd = f(this.weightDecay[i]);
    const mu = f(this.momentum);
    const rate = f(lr);
    const nb = new Float32Array(w.length);
    const nw = new Float32Array(w.length);
    for (let k = 0; k < w.length; k++) {
      const gk = wd > 0 ? f(g[k] + f(w[k] * wd)) : g[k];
      const bk = f(f(b[k] * mu) + gk);
      nb[k] = bk;
      nw[k] = f(w[k] - f(bk * rate));
    }
    this.buf[i].assign(tf.tensor(nb, this.buf[i].shape, 'float32'));
    v.assign(tf.tensor(nw, v.shape, 'float32'));
  }
  async getState(): Promise<OptimizerState> {
    return { kind: 'sgd-momentum', step: this.step, slots: await dumpSlots('momentum', this.buf) };
  }
  setState(s: OptimizerState): void {
    if (s.kind !== 'sgd-momentum') throw new Error(`SgdMomentum: checkpoint holds ${s.kind} state`);
    loadSlots('SgdMomentum', 'momentum', this.buf, s.slots);
    this.step = s.step;
  }
  dispose(): void {
    tf.dispose(this.buf);
  }
}

/** Adam (PyTorch semantics, no weight decay), used for the JPEG quantisation tables. */
export class Adam implements ParamOptimizer {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  step = 0;
  constructor(
    readonly vars: tf.Variable[],
    public lr: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    this.m = slotVars(vars);
    this.v = slotVars(vars);
  }
  apply(grads: tf.Tensor[]): void {
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const stepSize = this.lr / bc1;
    tf.tidy(() => {
      this.vars.forEach((p, i) => {
        const g = grads[i];
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), this.epsilon);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      });
    });
    this.step = t;
  }
  async getState(): Promise<OptimizerState> {
    return { kind: 'adam', step: this.step, slots: [...(await dumpSlots('m', this.m)), ...(await dumpSlots('v', this.v))] };
  }
  setState(s: OptimizerState): void {
    if (s.kind !== 'adam') throw new Error(`Adam: checkpoint holds ${s.kind} state`);
    loadSlots('Adam', 'm', this.m, s.slots);
    loadSlots('Adam', 'v', this.v, s.slots);
    this.step = s.step;
  }
  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

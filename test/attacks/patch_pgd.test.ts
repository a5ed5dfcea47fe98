// Per-image adversarial patches: the exact threshold on a two-class linear model (a patch that can flip
// the image does, one that cannot does not), changes confined to one square per image, success flags
// equal to the model's predictions, restarts only add, targeted success, leaks and named errors.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { applyPatch } from '../../attacks/patch.ts';
import { patchPgd } from '../../attacks/patch_pgd.ts';
import { assertNoTensorLeak } from '../../src/testing/memory.ts';
import { linearModel, randomImages, randomLabels, randomMlp } from './helpers.ts';

const [H, W, C] = [5, 6, 2];

describe('patchPgd', () => {
  // Channel 0 pushes towards class 1, channel 1 towards class 0, 0.1 per pixel: on a grey image the best
  // s x s patch (channel 0 at 1, channel 1 at 0) moves z1 - z0 by 0.1·s², against a bias of 0.35.
  const w2 = Array.from({ length: H * W * C }, (_, q) => (q % C === 0 ? [0, 0.1] : [0.1, 0]));
  const lin = linearModel(w2, [0.35, 0]);
  const grey = tf.fill([6, H, W, C], 0.5) as tf.Tensor4D;
  const zeros = tf.zeros([6], 'int32') as tf.Tensor1D;

  it('fools every image when the best patch can (2 px: 0.4 > 0.35) and none when it cannot (1 px: 0.1), changing only one square per image', () => {
    const two = patchPgd(lin, grey, zeros, { size: 2, steps: 10, stepSize: 0.1, restarts: 1 });
    expect(Array.from(two.success)).toEqual([1, 1, 1, 1, 1, 1]);
    const adv = two.adversarial.dataSync();
    for (let i = 0; i < 6; i++) {
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let k = 0; k < C; k++) {
        const inside = y >= two.rows[i] && y < two.rows[i] + 2 && x >= two.cols[i] && x < two.cols[i] + 2;
        if (!inside) expect(adv[((i * H + y) * W + x) * C + k]).toBe(0.5);
      }
    }
    const margin = tf.tidy(() => tf.sub(tf.slice(lin(two.adversarial), [0, 1], [-1, 1]), tf.slice(lin(two.adversarial), [0, 0], [-1, 1])).dataSync());
    for (const v of margin) expect(v).toBeGreaterThan(0);
    const one = patchPgd(lin, grey, zeros, { size: 1, steps: 20, restarts: 3 });
    expect(Array.from(one.success)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(one.adversarial.dataSync())).toEqual(Array.from(grey.dataSync()));
    expect(Array.from(one.rows)).toEqual([-1, -1, -1, -1, -1, -1]);
    tf.dispose([two.adversarial, one.adversarial]);
  });

  it('keeps exactly the patched images it reports: success equals the prediction, the square at the reported place, the rest untouched', () => {
    const model = randomMlp(3, H * W * C, 4);
    const x = randomImages(4, [12, H, W, C]);
    const y = randomLabels(5, 12, 4);
    const r = patchPgd(model, x, y, { size: 3, steps: 8, restarts: 2, seed: 7 });
    const pred = tf.tidy(() => tf.argMax(model(r.adversarial), 1).dataSync());
    const labels = y.dataSync();
    const xs = x.dataSync();
    const adv = r.adversarial.dataSync();
    const cleanPred = tf.tidy(() => tf.argMax(model(x), 1).dataSync());
    for (let i = 0; i < 12; i++) {
      expect(r.success[i]).toBe(Number(pred[i] !== labels[i]));
      const img = adv.subarray(i * H * W * C, (i + 1) * H * W * C);
      const orig = xs.subarray(i * H * W * C, (i + 1) * H * W * C);
      if (r.rows[i] < 0) {
        // No patch kept: the clean image, bit for bit (already misclassified ones included).
        expect(Array.from(img)).toEqual(Array.from(orig));
        continue;
      }
      expect(cleanPred[i]).toBe(labels[i]);
      // Outside the reported square nothing moved; inside, values stay in [0,1].
      const again = applyPatch(x.slice([i, 0, 0, 0], [1, -1, -1, -1]), r.adversarial.slice([i, r.rows[i], r.cols[i], 0], [1, 3, 3, -1]), { rows: Int32Array.of(r.rows[i]), cols: Int32Array.of(r.cols[i]) });
      expect(Array.from(again.dataSync())).toEqual(Array.from(img));
      for (const v of img) expect(v >= 0 && v <= 1).toBe(true);
      again.dispose();
    }
    // More restarts only add successes: the first restart draws the same positions and starts.
    const more = patchPgd(model, x, y, { size: 3, steps: 8, restarts: 4, seed: 7 });
    for (let i = 0; i < 12; i++) if (r.success[i]) expect(more.success[i]).toBe(1);
    tf.dispose([r.adversarial, more.adversarial, x, y]);
  });

  it('targeted: success means predicted as the target', () => {
    const ones = tf.ones([6], 'int32') as tf.Tensor1D;
    // Towards class 1 with a patch of 2 px: the same closed form, now descending class 1's cross-entropy.
    const r = patchPgd(lin, grey, ones, { size: 2, steps: 10, target: 1 });
    expect(Array.from(r.success)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(tf.tidy(() => tf.argMax(lin(r.adversarial), 1).dataSync()))).toEqual([1, 1, 1, 1, 1, 1]);
    tf.dispose([r.adversarial, ones]);
  });

  it('does not leak tensors', async () => {
    const model = randomMlp(3, H * W * C, 4);
    const x = randomImages(4, [5, H, W, C]);
    const y = randomLabels(5, 5, 4);
    await assertNoTensorLeak(() => patchPgd(model, x, y, { size: 2, steps: 3, restarts: 2 }).adversarial, { label: 'patch-pgd' });
    tf.dispose([x, y]);
  });

  it('names the bad option or argument before calling the model', () => {
    let calls = 0;
    const counting = (t: tf.Tensor4D) => {
      calls++;
      return lin(t);
    };
    const bad: [object, RegExp][] = [
      [{}, /patch-pgd: size: must be an integer >= 1, got undefined/],
      [{ size: 7 }, /patch-pgd: size 7 does not fit in 5x6 images/],
      [{ size: 2, steps: 0 }, /patch-pgd: steps: must be an integer >= 1, got 0/],
      [{ size: 2, restarts: 1.5 }, /patch-pgd: restarts: must be an integer >= 1, got 1.5/],
      [{ size: 2, eps: 1 }, /patch-pgd: unknown option "eps"/],
    ];
    for (const [o, re] of bad) expect(() => patchPgd(counting, grey, zeros, o as never)).toThrow(re);
    expect(calls).toBe(0);
    expect(() => patchPgd(lin, grey, zeros, { size: 2, target: 2 })).toThrow(/patch-pgd: target 2 is not a class of the model \(2 classes\)/);
  });
});

/**
 * Randomised layers (randomised input defences): layers drawing fresh randomness on every call from
 * a seeded stream that `reseed` restarts. A sweep reseeds them before every batch from the batch's
 * seed, so what a batch draws does not depend on which process ran the batches before it.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../data/rng.ts';
import { findLayers } from './internals.ts';

/** A layer with a stream of random draws that `reseed(seed)` restarts. */
export interface Reseedable {
  reseed(seed: number): void;
}

/** A randomised layer's seeded stream of draws, which `restart` begins again (what `reseed` does). */
export class SeededStream {
  private current: number;
  private stream: Rng;

  /** `who` names the layer in the error for a seed that is not an integer. */
  constructor(seed: number, who: string) {
    this.current = SeededStream.check(seed, who);
    this.stream = createRng(seed);
  }

  private static check(seed: number, who: string): number {
    if (!Number.isInteger(seed)) throw new Error(`${who}: seed must be an integer, got ${String(seed)}`);
    return seed;
  }

  /** The seed the stream last started from (what getConfig saves). */
  get seed(): number {
    return this.current;
  }

  /** The draws. */
  get rng(): Rng {
    return this.stream;
  }

  /** Start again from `seed`: the next draws are those of a fresh stream with this seed. */
  restart(seed: number, who: string): void {
    this.current = SeededStream.check(seed, who);
    this.stream = createRng(seed);
  }
}

/** Whether `layer` draws randomness that `reseed` restarts. */
export function isReseedable(layer: unknown): layer is Reseedable {
  return typeof (layer as Partial<Reseedable>)?.reseed === 'function';
}

/** Every randomised layer of `model` (a LayersModel; none for a plain function), nested models included, in layer order. */
export function randomLayersOf(model: unknown): (tf.layers.Layer & Reseedable)[] {
  if (!(model instanceof tf.LayersModel)) return [];
  return findLayers(model, (l): l is tf.layers.Layer & Reseedable => isReseedable(l));
}

/** Whether `model` draws randomness on each call (its predictions may differ between calls on the same images). */
export function isRandomised(model: unknown): boolean {
  return randomLayersOf(model).length > 0;
}

/**
 * Restart every randomised layer of `model` from `seed` (an integer); a no-op for deterministic
 * models. The first layer takes `seed` itself, later ones a mix of it with their index, so two
 * layers never draw the same stream.
 */
export function reseedRandomLayers(model: unknown, seed: number): void {
  randomLayersOf(model).forEach((l, i) => l.reseed(i === 0 ? seed : (seed ^ Math.imul(i, 0x9e3779b1)) | 0));
}

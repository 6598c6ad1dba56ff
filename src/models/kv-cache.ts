// Keys and values of earlier positions, per layer, so that generation runs one forward pass per new token.
import { Tensor, keep } from '../engine/tensor.js';
import type { CausalLMConfig } from './config.js';

export class KVCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** positions filled so far */
  length = 0;
  /** 1 where a cached position may be attended (0 for padding), [batch × capacity] */
  readonly keyMask: Int32Array;

  constructor(
    readonly config: CausalLMConfig,
    readonly batch: number,
    readonly capacity: number,
  ) {
    const shape = [batch, config.numKvHeads, capacity, config.headDim];
    this.k = Array.from({ length: config.numLayers }, () => keep(Tensor.zeros(shape)));
    this.v = Array.from({ length: config.numLayers }, () => keep(Tensor.zeros(shape)));
    this.keyMask = new Int32Array(batch * capacity);
  }

  /** Appends T new positions' mask (length batch·T; all ones when absent). */
  appendMask(T: number, mask?: Int32Array): void {
    if (this.length + T > this.capacity) throw new Error(`KV cache full: ${this.length} + ${T} > capacity ${this.capacity}`);
    for (let b = 0; b < this.batch; b++) for (let t = 0; t < T; t++) this.keyMask[b * this.capacity + this.length + t] = mask ? mask[b * T + t]! : 1;
  }

  /** The key mask over the first n positions, laid out [batch × n]. */
  maskPrefix(n: number): Int32Array {
    const out = new Int32Array(this.batch * n);
    for (let b = 0; b < this.batch; b++) out.set(this.keyMask.subarray(b * this.capacity, b * this.capacity + n), b * n);
    return out;
  }

  /**
   * A cache of batch·n rows in which every row of this one appears n times in a row (row b → rows b·n..b·n+n−1),
   * with the filled positions, key mask and length copied: the samples of a prompt that was prefilled once.
   */
  repeatRows(n: number): KVCache {
    const out = new KVCache(this.config, this.batch * n, this.capacity);
    const H = this.config.numKvHeads,
      D = this.config.headDim,
      cap = this.capacity;
    const filled = this.length * D; // per head, only the positions written so far
    for (let l = 0; l < this.k.length; l++) {
      for (const [src, dst] of [
        [this.k[l]!, out.k[l]!],
        [this.v[l]!, out.v[l]!],
      ] as const) {
        const s = src.data,
          d = dst.data;
        for (let b = 0; b < this.batch; b++)
          for (let h = 0; h < H; h++) {
            const head = s.subarray((b * H + h) * cap * D, (b * H + h) * cap * D + filled);
            for (let r = 0; r < n; r++) d.set(head, ((b * n + r) * H + h) * cap * D);
          }
      }
    }
    for (let b = 0; b < this.batch; b++) {
      const m = this.keyMask.subarray(b * this.capacity, (b + 1) * this.capacity);
      for (let r = 0; r < n; r++) out.keyMask.set(m, (b * n + r) * this.capacity);
    }
    out.length = this.length;
    return out;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

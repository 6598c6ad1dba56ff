// Keys and values of earlier positions, per layer, so that generation runs one forward pass per new token.
// Stored in float32, or in bfloat16 (half the bytes; the attention kernel widens each key block back to fp32
// exactly): decoding many rows reads the whole cache every step, and that stream is what bf16 halves.
import { attentionKernels } from '../engine/ops/attention.js';
import { core } from '../engine/native.js';
import { Tensor, allocStorage, isGradEnabled, keep } from '../engine/tensor.js';
import type { CausalLMConfig } from './config.js';

/** How the cache stores keys and values: float32, or bf16 (rounded to nearest even as they are written). */
export type KVCacheDtype = 'fp32' | 'bf16';

export class KVCache {
  /** keys per layer, [batch × kvHeads × capacity × headDim]: float32 values, or bf16 bit patterns */
  readonly k: (Float32Array | Uint16Array)[];
  /** values per layer, laid out as the keys */
  readonly v: (Float32Array | Uint16Array)[];
  /** positions filled so far */
  length = 0;
  /** 1 where a cached position may be attended (0 for padding), [batch × capacity] */
  readonly keyMask: Int32Array;
  /** the float32 arrays' owners (the tensor cache's storage) */
  private readonly tensors: Tensor[] = [];

  constructor(
    readonly config: CausalLMConfig,
    readonly batch: number,
    readonly capacity: number,
    readonly dtype: KVCacheDtype = 'fp32',
  ) {
    if (dtype !== 'fp32' && dtype !== 'bf16') throw new Error(`KVCache: dtype must be 'fp32' or 'bf16', got '${String(dtype)}'`);
    const shape = [batch, config.numKvHeads, capacity, config.headDim];
    const make = (): Float32Array | Uint16Array => {
      if (dtype === 'bf16') return new Uint16Array(batch * config.numKvHeads * capacity * config.headDim);
      const t = keep(Tensor.zeros(shape));
      this.tensors.push(t);
      return t.data;
    };
    this.k = Array.from({ length: config.numLayers }, make);
    this.v = Array.from({ length: config.numLayers }, make);
    this.keyMask = new Int32Array(batch * capacity);
  }

  /** Element strides of a layer's keys or values, [batch, head, position, feature]. */
  private strides(): number[] {
    const D = this.config.headDim;
    return [this.config.numKvHeads * this.capacity * D, this.capacity * D, D, 1];
  }

  /** Appends T new positions' mask (length batch·T; all ones when absent). */
  appendMask(T: number, mask?: Int32Array): void {
    if (this.length + T > this.capacity) throw new Error(`KV cache full: ${this.length} + ${T} > capacity ${this.capacity}`);
    for (let b = 0; b < this.batch; b++) for (let t = 0; t < T; t++) this.keyMask[b * this.capacity + this.length + t] = mask ? mask[b * T + t]! : 1;
  }

  /** The key mask over the first n positions, laid out [batch × n], as the attention kernel reads it (1 = may attend). */
  maskPrefix(n: number): Uint8Array {
    const out = new Uint8Array(this.batch * n);
    for (let b = 0; b < this.batch; b++) for (let j = 0; j < n; j++) out[b * n + j] = this.keyMask[b * this.capacity + j] ? 1 : 0;
    return out;
  }

  /**
   * Causal attention of layer i's queries q [batch, heads, T, D] over the cached positions and the T new ones,
   * whose keys and values k, v [batch, kvHeads, T, D] (any views with a unit inner stride) are written into the
   * cache first, at positions length … length + T − 1. keyMask is maskPrefix(length + T) (one per step, shared
   * by the layers).
   * Returns [batch, heads, T, D] laid out [batch, T, heads, D], as `attention` does. No gradient.
   */
  attend(i: number, q: Tensor, k: Tensor, v: Tensor, keyMask: Uint8Array): Tensor {
    const [B, Hq, T, D] = q.shape as [number, number, number, number];
    const Hkv = this.config.numKvHeads;
    if (isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad)) throw new Error('KVCache.attend: generation through a KV cache runs without gradients (call it under noGrad)');
    if (B !== this.batch || D !== this.config.headDim || k.shape[1] !== Hkv || k.shape[2] !== T || v.shape.some((d, j) => d !== k.shape[j]))
      throw new Error(`KVCache.attend: q [${q.shape}], k [${k.shape}] and v [${v.shape}] do not fit a cache of ${this.batch} rows, ${Hkv} kv heads of ${this.config.headDim}`);
    if (this.length + T > this.capacity) throw new Error(`KV cache full: ${this.length} + ${T} > capacity ${this.capacity}`);
    for (const [t, name] of [
      [q, 'q'],
      [k, 'k'],
      [v, 'v'],
    ] as const)
      if (t.strides[3] !== 1 && D > 1) throw new Error(`KVCache.attend: ${name} needs a unit inner stride`);
    const past = this.length,
      Tk = past + T,
      cs = this.strides();
    if (keyMask.length !== B * Tk) throw new Error(`KVCache.attend: keyMask has ${keyMask.length} entries, expected batch·(length + T) = ${B * Tk}`);
    // the new positions, into the cache (rounded to bf16 when it holds bf16)
    core.copyStrided(k.data, k.offset, k.shape, k.strides, this.k[i]!, past * D, cs);
    core.copyStrided(v.data, v.offset, v.shape, v.strides, this.v[i]!, past * D, cs);
    const outStrides = [T * Hq * D, D, Hq * D, 1];
    const out = new Tensor(allocStorage(B * T * Hq * D), [B, Hq, T, D], outStrides, 0); // every row is written
    if (out.size > 0)
      attentionKernels.attentionForward(
        q.data,
        q.offset,
        q.strides,
        this.k[i]!,
        0,
        cs,
        this.v[i]!,
        0,
        cs,
        [B, Hq, Hkv, T, Tk, D],
        keyMask,
        true,
        past,
        1 / Math.sqrt(D),
        out.data,
        0,
        outStrides,
        new Float32Array(B * Hq * T),
      );
    return out;
  }

  /**
   * A cache of batch·n rows in which every row of this one appears n times in a row (row b → rows b·n..b·n+n−1),
   * with the filled positions, key mask and length copied: the samples of a prompt that was prefilled once.
   */
  repeatRows(n: number): KVCache {
    const out = new KVCache(this.config, this.batch * n, this.capacity, this.dtype);
    const H = this.config.numKvHeads,
      D = this.config.headDim,
      cap = this.capacity;
    const filled = this.length * D; // per head, only the positions written so far
    for (let l = 0; l < this.k.length; l++) {
      for (const [s, d] of [
        [this.k[l]!, out.k[l]!],
        [this.v[l]!, out.v[l]!],
      ] as const) {
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
    for (const t of this.tensors) t.dispose();
    if (this.dtype === 'bf16') for (const a of [...this.k, ...this.v]) core.release(a);
  }
}

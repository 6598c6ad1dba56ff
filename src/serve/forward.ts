// The serving forward pass: one step over a ragged batch of sequences, each with its own KV cache. A step takes
// any mix of segments — a whole prompt being prefilled, or the one new token of a sequence being decoded — and
// runs the layers' linear parts on all their rows at once (rows.ts: each row's result is independent of the
// others) while attention runs per sequence over its own cache. So a request's numbers never depend on what else
// is in the batch, and requests can join and leave between any two steps (continuous batching).
//
// The weights are the loaded model's own tensors where they are already [in, out] (GPT-2's Conv1D); [out, in]
// weights (Llama's, the LM head) are held transposed. LoRA adapters of several named models share one base: the
// rows of each adapter's requests get their own low-rank update on top of the shared base product.
import { attentionKernels, rope } from '../engine/ops/attention.js';
import { core } from '../engine/native.js';
import { add, gelu, scale, swiglu } from '../engine/ops/elementwise.js';
import { embedding, layerNorm, rmsNorm } from '../engine/ops/norm.js';
import { Tensor, keep, noGrad, tidy } from '../engine/tensor.js';
import type { CausalLMConfig } from '../models/config.js';
import type { Transformer } from '../models/transformer.js';
import { type RowWeight, rowLinear, rowMatmul, rowWeight } from './rows.js';

/** The keys and values of one sequence, per layer [1, kvHeads, capacity, headDim]. */
export class SeqCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  length = 0;
  constructor(
    readonly config: CausalLMConfig,
    readonly capacity: number,
  ) {
    const shape = [1, config.numKvHeads, capacity, config.headDim];
    this.k = Array.from({ length: config.numLayers }, () => keep(Tensor.zeros(shape)));
    this.v = Array.from({ length: config.numLayers }, () => keep(Tensor.zeros(shape)));
  }
  /** Bytes one cached position takes (every layer, keys and values). */
  static bytesPerToken(c: CausalLMConfig): number {
    return 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
  }
  /** This cache's filled positions, copied (a sample of a prompt that was prefilled once). */
  copyFrom(src: SeqCache): void {
    if (src.length > this.capacity) throw new Error(`SeqCache.copyFrom: ${src.length} positions into a capacity of ${this.capacity}`);
    noGrad(() =>
      tidy(() => {
        for (let l = 0; l < this.k.length; l++) {
          this.k[l]!.slice(2, 0, src.length).copyFrom(src.k[l]!.slice(2, 0, src.length));
          this.v[l]!.slice(2, 0, src.length).copyFrom(src.v[l]!.slice(2, 0, src.length));
        }
      }),
    );
    this.length = src.length;
  }
  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

/** A LoRA adapter's update of one module, padded to at least 16 ranks (see rows.ts: no matrix-vector path). */
interface LoraUpdate {
  /** Aᵀ [in, r'] */
  a: Tensor;
  /** Bᵀ [r', out] */
  b: Tensor;
  scaling: number;
}

/** One named adapter: its updates by module name. */
type AdapterWeights = Map<string, LoraUpdate>;

/** Rows of one step: `ids` appended to `cache` (positions cache.length …), under adapter `adapter` (-1: base). */
export interface Segment {
  cache: SeqCache;
  ids: readonly number[];
  adapter: number;
  /** which rows' next-token logits are wanted: the last, every row (log-probs of a prompt), or none */
  logits: 'last' | 'all';
}

interface StepResult {
  /** next-token logits [rows, V]: for segment i, rows first[i] … first[i] + count[i] − 1 */
  logits: Tensor;
  first: number[];
  count: number[];
}

export class ServeModel {
  readonly config: CausalLMConfig;
  private readonly lin = new Map<string, RowWeight>();
  private readonly params = new Map<string, Tensor>();
  private readonly head: RowWeight;
  private readonly embed: Tensor;
  readonly adapters: AdapterWeights[] = [];
  private readonly owned: Tensor[] = [];

  /** Takes over the model's weights (the model must not be used afterwards except to load adapters). */
  constructor(private readonly model: Transformer) {
    this.config = model.config;
    const c = this.config;
    for (const m of model.linearModules()) {
      const w = model.p(m.name + '.weight');
      const rw = rowWeight(w, model.params.get(m.name + '.bias') ?? null, m.layout);
      if (rw.w !== w) this.owned.push(rw.w);
      this.lin.set(m.name, rw);
    }
    for (const [n, t] of model.params) if (t.ndim === 1) this.params.set(n, t);
    this.embed = model.embedWeight;
    if (c.arch === 'gpt2') this.params.set('transformer.wpe.weight', model.p('transformer.wpe.weight'));
    this.head = rowWeight(model.lmHeadWeight, null, 'out_in');
    this.owned.push(this.head.w);
  }

  /** Frees the [out, in] originals that are now held transposed (after every adapter was loaded). */
  dropOriginals(): void {
    if (this.config.arch !== 'llama') return;
    for (const m of this.model.linearModules()) this.model.p(m.name + '.weight').dispose();
    if (!this.config.tieWordEmbeddings) this.model.p('lm_head.weight').dispose();
  }

  /**
   * Registers the LoRA adapters attached to `withAdapters` (the same base model, see loadAdapter) under a new
   * index and detaches them from it.
   */
  addAdapters(withAdapters: Transformer): number {
    const upd: AdapterWeights = new Map();
    for (const [name, ad] of withAdapters.adapters) {
      if (!this.lin.has(name)) throw new Error(`adapter module ${name} is not a linear layer of the base model`);
      const r = ad.A.shape[0]!,
        rp = Math.max(16, r);
      const inF = ad.A.shape[1]!,
        outF = ad.B.shape[0]!;
      const a = keep(Tensor.zeros([inF, rp])),
        b = keep(Tensor.zeros([rp, outF]));
      const A = ad.A.data,
        B = ad.B.data,
        ao = ad.A.offset,
        bo = ad.B.offset;
      for (let i = 0; i < r; i++) for (let j = 0; j < inF; j++) a.data[j * rp + i] = A[ao + i * inF + j]!;
      for (let o = 0; o < outF; o++) for (let i = 0; i < r; i++) b.data[i * outF + o] = B[bo + o * r + i]!;
      this.owned.push(a, b);
      upd.set(name, { a, b, scaling: ad.scaling });
    }
    for (const ad of withAdapters.adapters.values()) ad.dispose();
    withAdapters.adapters.clear();
    this.adapters.push(upd);
    return this.adapters.length - 1;
  }

  private p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no parameter '${name}'`);
    return t;
  }

  /**
   * One step over the segments (in any order; each segment's cache grows by its ids). Returns the logits of
   * the rows each segment asks for.
   */
  step(segments: readonly Segment[]): StepResult {
    return noGrad(() => tidy(() => this.stepImpl(segments)));
  }

  private stepImpl(segments: readonly Segment[]): StepResult {
    const c = this.config;
    // rows grouped by adapter (contiguous groups), in the given order otherwise
    const order = segments.map((_, i) => i).sort((a, b) => segments[a]!.adapter - segments[b]!.adapter || a - b);
    const start = new Array<number>(segments.length);
    let R = 0;
    for (const i of order) {
      const s = segments[i]!;
      if (s.ids.length === 0) throw new Error('serve step: a segment without tokens');
      if (s.cache.length + s.ids.length > s.cache.capacity) throw new Error(`serve step: ${s.cache.length} + ${s.ids.length} positions exceed the sequence's capacity ${s.cache.capacity}`);
      start[i] = R;
      R += s.ids.length;
    }
    const ids = new Int32Array(R),
      pos = new Int32Array(R);
    for (const i of order) {
      const s = segments[i]!;
      for (let t = 0; t < s.ids.length; t++) {
        const id = s.ids[t]!;
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`serve step: token id ${id} is outside the vocabulary (${c.vocabSize})`);
        ids[start[i]! + t] = id;
        pos[start[i]! + t] = s.cache.length + t;
      }
      if (c.arch === 'gpt2' && s.cache.length + s.ids.length > c.maxPositions) throw new Error(`serve step: position ${s.cache.length + s.ids.length - 1} is beyond n_positions ${c.maxPositions}`);
    }
    const groups: { adapter: number; r0: number; r1: number }[] = [];
    for (const i of order) {
      const s = segments[i]!,
        g = groups[groups.length - 1];
      if (g && g.adapter === s.adapter) g.r1 = start[i]! + s.ids.length;
      else groups.push({ adapter: s.adapter, r0: start[i]!, r1: start[i]! + s.ids.length });
    }
    const linear = (module: string, x: Tensor): Tensor => {
      const y = rowLinear(x, this.lin.get(module)!);
      for (const g of groups) {
        const u = g.adapter >= 0 ? this.adapters[g.adapter]!.get(module) : undefined;
        if (!u) continue;
        const xg = x.slice(0, g.r0, g.r1);
        const d = scale(rowMatmul(rowMatmul(xg, u.a), u.b), u.scaling);
        const yg = y.slice(0, g.r0, g.r1);
        yg.copyFrom(add(yg, d));
      }
      return y;
    };

    let x = embedding(this.embed, ids, [R]);
    if (c.arch === 'gpt2') x = add(x, embedding(this.p('transformer.wpe.weight'), pos, [R]));
    const segs = order.map((i) => ({ s: segments[i]!, r0: start[i]! }));
    for (let l = 0; l < c.numLayers; l++) {
      if (c.arch === 'gpt2') {
        const h = `transformer.h.${l}.`,
          C = c.hiddenSize,
          H = c.numHeads,
          D = c.headDim;
        const a = layerNorm(x, this.p(h + 'ln_1.weight'), this.p(h + 'ln_1.bias'), c.normEps);
        const qkv = linear(h + 'attn.c_attn', a);
        const [q, k, v] = qkv
          .reshape([1, R, 3 * C])
          .split(2, [C, C, C])
          .map((t) => t.reshape([1, R, H, D]).transpose(1, 2)) as [Tensor, Tensor, Tensor];
        const att = this.attend(l, q, k, v, segs, R);
        x = add(x, linear(h + 'attn.c_proj', att));
        const m = layerNorm(x, this.p(h + 'ln_2.weight'), this.p(h + 'ln_2.bias'), c.normEps);
        const f = gelu(linear(h + 'mlp.c_fc', m), c.activation === 'gelu' ? 'none' : 'tanh');
        x = add(x, linear(h + 'mlp.c_proj', f));
      } else {
        const p = `model.layers.${l}.`,
          D = c.headDim;
        const a = rmsNorm(x, this.p(p + 'input_layernorm.weight'), c.normEps);
        const proj = (n: string, heads: number): Tensor =>
          linear(p + `self_attn.${n}_proj`, a)
            .reshape([1, R, heads, D])
            .transpose(1, 2);
        const q = rope(proj('q', c.numHeads), pos, c.ropeTheta);
        const k = rope(proj('k', c.numKvHeads), pos, c.ropeTheta);
        const att = this.attend(l, q, k, proj('v', c.numKvHeads), segs, R);
        x = add(x, linear(p + 'self_attn.o_proj', att));
        const m = rmsNorm(x, this.p(p + 'post_attention_layernorm.weight'), c.normEps);
        x = add(x, linear(p + 'mlp.down_proj', swiglu(linear(p + 'mlp.gate_proj', m), linear(p + 'mlp.up_proj', m))));
      }
    }
    const h = c.arch === 'gpt2' ? layerNorm(x, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), c.normEps) : rmsNorm(x, this.p('model.norm.weight'), c.normEps);
    for (const { s } of segs) s.cache.length += s.ids.length;

    // the LM head on the wanted rows only, in the segments' given order
    const first: number[] = [],
      count: number[] = [],
      rows: number[] = [];
    segments.forEach((s, i) => {
      first.push(rows.length);
      const n = s.logits === 'all' ? s.ids.length : 1;
      count.push(n);
      for (let t = s.ids.length - n; t < s.ids.length; t++) rows.push(start[i]! + t);
    });
    const sel = embedding(h.reshape([R, c.hiddenSize]), Int32Array.from(rows), [rows.length]);
    return { logits: rowMatmul(sel, this.head.w), first, count };
  }

  /**
   * Writes each segment's keys and values into its cache and attends over it; → [R, heads·D]. q, k and v are
   * [1, heads, R, D] views; the kernels are called on them and on the caches directly (no view objects per
   * sequence: with 32 sequences and 12 layers that bookkeeping cost more than the attention itself).
   */
  private attend(l: number, q: Tensor, k: Tensor, v: Tensor, segs: readonly { s: Segment; r0: number }[], R: number): Tensor {
    const c = this.config,
      H = c.numHeads,
      Hkv = c.numKvHeads,
      D = c.headDim;
    for (const t of [q, k, v]) if (t.strides[3] !== 1) throw new Error('serve attention: q, k and v need a unit inner stride');
    const out = Tensor.empty([R, H * D]);
    const outStrides = [R * H * D, D, H * D, 1];
    const scale = 1 / Math.sqrt(D);
    for (const { s, r0 } of segs) {
      const T = s.ids.length,
        past = s.cache.length,
        cap = s.cache.capacity;
      const ck = s.cache.k[l]!,
        cv = s.cache.v[l]!;
      const cs = [Hkv * cap * D, cap * D, D, 1];
      core.copyStrided(k.data, k.offset + r0 * k.strides[2]!, [1, Hkv, T, D], k.strides, ck.data, ck.offset + past * D, cs);
      core.copyStrided(v.data, v.offset + r0 * v.strides[2]!, [1, Hkv, T, D], v.strides, cv.data, cv.offset + past * D, cs);
      attentionKernels.attentionForward(
        q.data,
        q.offset + r0 * q.strides[2]!,
        q.strides,
        ck.data,
        ck.offset,
        cs,
        cv.data,
        cv.offset,
        cs,
        [1, H, Hkv, T, past + T, D],
        null,
        true,
        past,
        scale,
        out.data,
        out.offset + r0 * H * D,
        outStrides,
        new Float32Array(H * T),
      );
    }
    return out;
  }

  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
    this.model.dispose();
  }
}

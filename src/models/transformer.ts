// A decoder-only transformer in the two layouts Hugging Face checkpoints use: GPT-2 (learned positions,
// LayerNorm, GELU MLP, fused qkv Conv1D) and Llama (RoPE, RMSNorm, SwiGLU, grouped-query attention), with
// parameters named exactly as transformers names them, so state dicts load and save unchanged.
import { add, gelu, swiglu } from '../engine/ops/elementwise.js';
import { attention, rope } from '../engine/ops/attention.js';
import { embedding, layerNorm, rmsNorm } from '../engine/ops/norm.js';
import { matmul } from '../engine/ops/matmul.js';
import { Random } from '../engine/random.js';
import { Tensor, isGradEnabled, shapeStr, tidy } from '../engine/tensor.js';
import type { WeightLayout } from '../nn/linear.js';
import { LoraAdapter, type LoraConfig, loraLinear } from '../nn/lora.js';
import { type CausalLMConfig, validateConfig } from './config.js';
import type { KVCache } from './kv-cache.js';
import { parameterShapes } from './parameters.js';

export interface ForwardOptions {
  /** [B·T], 1 for real tokens, 0 for padding (keys at 0 are never attended). */
  attentionMask?: Int32Array;
  /** [B·T] position of each token; default 0..T−1 in every row (as transformers without position_ids). */
  positions?: Int32Array;
  /** Generation: read and extend this cache (no gradient). */
  cache?: KVCache;
}

/** Random initialisation as transformers does it: N(0, 0.02) matrices, zero biases, unit norms. */
function initParameter(name: string, shape: number[], rng: Random, numLayers: number): Tensor {
  if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(name)) return Tensor.ones(shape);
  if (name.endsWith('.bias')) return Tensor.zeros(shape);
  // GPT-2 scales the residual projections by 1/sqrt(2·layers)
  const std = /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * numLayers) : 0.02;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
  return Tensor.from(data, shape);
}

export class Transformer {
  readonly params = new Map<string, Tensor>();
  /** LoRA adapters by module name (e.g. `model.layers.0.self_attn.q_proj`) */
  readonly adapters = new Map<string, LoraAdapter>();
  adaptersEnabled = true;
  /** training mode turns adapter dropout on */
  training = true;
  /** seed for dropout masks; advance it between steps for fresh masks */
  dropoutSeed = 0;

  constructor(readonly config: CausalLMConfig) {
    validateConfig(config);
  }

  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no parameter '${name}'`);
    return t;
  }
  private maybe(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }

  /** A linear module by its transformers name (weight, optional bias, optional LoRA adapter). */
  private lin(module: string, x: Tensor, layout: WeightLayout): Tensor {
    return loraLinear(x, this.p(module + '.weight'), this.maybe(module + '.bias'), layout, this.adapters.get(module), this.adaptersEnabled, this.training, this.dropoutSeed);
  }

  /** Names of the linear modules, with their layout and [in, out] sizes. */
  linearModules(): { name: string; layout: WeightLayout; inFeatures: number; outFeatures: number }[] {
    const out: { name: string; layout: WeightLayout; inFeatures: number; outFeatures: number }[] = [];
    for (const [n, t] of this.params) {
      if (!n.endsWith('.weight') || t.ndim !== 2 || /(wte|wpe|embed_tokens|lm_head)\.weight$/.test(n)) continue;
      const layout: WeightLayout = this.config.arch === 'gpt2' ? 'in_out' : 'out_in';
      const [a, b] = t.shape as [number, number];
      out.push({ name: n.slice(0, -'.weight'.length), layout, inFeatures: layout === 'in_out' ? a : b, outFeatures: layout === 'in_out' ? b : a });
    }
    return out;
  }

  /**
   * Adds LoRA adapters to the linear modules whose names end in one of cfg.targetModules and freezes every
   * base parameter: only the adapters train, and with adaptersEnabled = false the same weights are the
   * frozen reference model (no second copy).
   */
  addLora(cfg: LoraConfig, seed = 0): LoraAdapter[] {
    const rng = new Random(seed);
    const made: LoraAdapter[] = [];
    for (const m of this.linearModules()) {
      if (!cfg.targetModules.some((t) => m.name === t || m.name.endsWith('.' + t))) continue;
      const ad = new LoraAdapter(m.inFeatures, m.outFeatures, cfg, rng, m.name, made.length);
      this.adapters.set(m.name, ad);
      made.push(ad);
    }
    if (!made.length) throw new Error(`LoRA: no linear module matches target_modules [${cfg.targetModules.join(', ')}]`);
    for (const p of this.params.values()) p.requiresGrad = false;
    return made;
  }

  /** Runs fn with the adapters off (the frozen base model, e.g. as the DPO/PPO reference). */
  withoutAdapters<T>(fn: () => T): T {
    const prev = this.adaptersEnabled;
    this.adaptersEnabled = false;
    try {
      return fn();
    } finally {
      this.adaptersEnabled = prev;
    }
  }

  /** Runs fn with training off (no dropout), restoring the mode afterwards (evaluation, rollouts, references). */
  evalMode<T>(fn: () => T): T {
    const prev = this.training;
    this.training = false;
    try {
      return fn();
    } finally {
      this.training = prev;
    }
  }

  /** Folds every adapter into its base weight and removes the adapters. */
  mergeLora(): void {
    for (const m of this.linearModules()) {
      const ad = this.adapters.get(m.name);
      if (ad) ad.mergeInto(this.p(m.name + '.weight'), m.layout);
    }
    for (const ad of this.adapters.values()) ad.dispose();
    this.adapters.clear();
  }

  /** What the optimiser should update: the adapters when there are any, else every parameter. */
  trainableParameters(): Tensor[] {
    if (this.adapters.size) return [...this.adapters.values()].flatMap((a) => [a.A, a.B]);
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** The input embedding matrix (also the LM head when tied). */
  get embedWeight(): Tensor {
    return this.p(this.config.arch === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight');
  }
  get lmHeadWeight(): Tensor {
    return this.config.tieWordEmbeddings ? this.embedWeight : this.p('lm_head.weight');
  }

  /** Final hidden states [B, T, C] for token ids [B·T]. */
  hidden(ids: Int32Array, B: number, T: number, o: ForwardOptions = {}): Tensor {
    const c = this.config;
    if (ids.length !== B * T) throw new Error(`forward: ${ids.length} ids do not fill [${B}, ${T}]`);
    if (o.attentionMask && o.attentionMask.length !== B * T) throw new Error(`forward: attention mask has ${o.attentionMask.length} entries, expected ${B * T}`);
    const past = o.cache?.length ?? 0;
    const positions = o.positions ?? defaultPositions(B, T, past);
    if (o.cache) o.cache.appendMask(T, o.attentionMask);
    const keyMask = o.cache ? o.cache.maskPrefix(past + T) : o.attentionMask;
    let x: Tensor;
    if (c.arch === 'gpt2') {
      for (const p of positions) if (p >= c.maxPositions) throw new Error(`position ${p} is beyond n_positions ${c.maxPositions}`);
      x = add(embedding(this.embedWeight, ids, [B, T]), embedding(this.p('transformer.wpe.weight'), positions, [B, T]));
    } else {
      x = embedding(this.embedWeight, ids, [B, T]);
    }
    // Without gradients nothing needs a layer's intermediates once it has run: each layer runs in its own tidy
    // and its input is released, so a reference forward or a prefill holds one layer's activations, not all.
    const free = !isGradEnabled();
    for (let i = 0; i < c.numLayers; i++) {
      const block = () => (c.arch === 'gpt2' ? this.gpt2Block(i, x, B, T, keyMask, o.cache) : this.llamaBlock(i, x, B, T, positions, keyMask, o.cache));
      if (!free) {
        x = block();
        continue;
      }
      const next = tidy(block);
      x.dispose();
      x = next;
    }
    if (o.cache) o.cache.length += T;
    return c.arch === 'gpt2' ? layerNorm(x, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), c.normEps) : rmsNorm(x, this.p('model.norm.weight'), c.normEps);
  }

  /** Next-token logits [B, T, V]. */
  logits(hidden: Tensor): Tensor {
    return matmul(hidden, this.lmHeadWeight.transpose(0, 1));
  }

  /**
   * Logits at selected positions only: rows (indices b·T + t into hidden [B, T, C] flattened) → [R, V]. The LM
   * head runs on those R rows alone; values and gradients equal those rows of logits(hidden).
   */
  logitsAt(hidden: Tensor, rows: Int32Array): Tensor {
    const C = hidden.shape[hidden.ndim - 1]!;
    const flat = hidden.reshape([-1, C]);
    for (const r of rows) if (!(r >= 0 && r < flat.shape[0]!)) throw new Error(`logitsAt: row ${r} is outside the ${flat.shape[0]} positions of ${hidden.describe()}`);
    return this.logits(embedding(flat, rows, [rows.length]));
  }

  forward(ids: Int32Array, B: number, T: number, o: ForwardOptions = {}): Tensor {
    return this.logits(this.hidden(ids, B, T, o));
  }

  private gpt2Block(i: number, x: Tensor, B: number, T: number, keyMask: Int32Array | Uint8Array | undefined, cache?: KVCache): Tensor {
    const c = this.config,
      C = c.hiddenSize,
      H = c.numHeads,
      D = c.headDim,
      h = `transformer.h.${i}.`;
    const a = layerNorm(x, this.p(h + 'ln_1.weight'), this.p(h + 'ln_1.bias'), c.normEps);
    const qkv = this.lin(h + 'attn.c_attn', a, 'in_out');
    const [q, k, v] = qkv.split(2, [C, C, C]).map((t) => t.reshape([B, T, H, D]).transpose(1, 2)) as [Tensor, Tensor, Tensor];
    const att = this.attend(i, q, k, v, B, T, keyMask, cache);
    x = add(x, this.lin(h + 'attn.c_proj', att, 'in_out'));
    const m = layerNorm(x, this.p(h + 'ln_2.weight'), this.p(h + 'ln_2.bias'), c.normEps);
    const f = gelu(this.lin(h + 'mlp.c_fc', m, 'in_out'), c.activation === 'gelu' ? 'none' : 'tanh');
    return add(x, this.lin(h + 'mlp.c_proj', f, 'in_out'));
  }

  private llamaBlock(i: number, x: Tensor, B: number, T: number, positions: Int32Array, keyMask: Int32Array | Uint8Array | undefined, cache?: KVCache): Tensor {
    const c = this.config,
      D = c.headDim,
      l = `model.layers.${i}.`;
    const a = rmsNorm(x, this.p(l + 'input_layernorm.weight'), c.normEps);
    const proj = (n: string, heads: number): Tensor =>
      this.lin(l + `self_attn.${n}_proj`, a, 'out_in')
        .reshape([B, T, heads, D])
        .transpose(1, 2);
    const q = rope(proj('q', c.numHeads), positions, c.ropeTheta);
    const k = rope(proj('k', c.numKvHeads), positions, c.ropeTheta);
    const att = this.attend(i, q, k, proj('v', c.numKvHeads), B, T, keyMask, cache);
    x = add(x, this.lin(l + 'self_attn.o_proj', att, 'out_in'));
    const m = rmsNorm(x, this.p(l + 'post_attention_layernorm.weight'), c.normEps);
    const gate = this.lin(l + 'mlp.gate_proj', m, 'out_in');
    const up = this.lin(l + 'mlp.up_proj', m, 'out_in');
    return add(x, this.lin(l + 'mlp.down_proj', swiglu(gate, up), 'out_in'));
  }

  /** Causal attention over [B, H, T, D] heads (through the cache when generating) → [B, T, H·D]. */
  private attend(i: number, q: Tensor, k: Tensor, v: Tensor, B: number, T: number, keyMask: Int32Array | Uint8Array | undefined, cache?: KVCache): Tensor {
    const out = cache ? cache.attend(i, q, k, v, keyMask as Uint8Array) : attention(q, k, v, { causal: true, keyMask });
    return out.transpose(1, 2).reshape([B, T, this.config.numHeads * this.config.headDim]);
  }

  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** Creates every parameter with transformers' random initialisation. */
  static random(config: CausalLMConfig, seed = 0): Transformer {
    const m = new Transformer(config);
    const rng = new Random(seed);
    for (const [name, shape] of parameterShapes(config)) m.params.set(name, Tensor.param(initParameter(name, shape, rng, config.numLayers), name));
    return m;
  }

  /**
   * Builds the model from a state dict (float32 arrays by name; arrays that own their buffer are taken over,
   * not copied, so the caller must not reuse them). Every expected parameter must be present
   * with its shape; names it does not know are returned so the caller can decide (e.g. a score head).
   */
  static fromStateDict(config: CausalLMConfig, sd: Map<string, { shape: readonly number[]; data: Float32Array }>): { model: Transformer; unused: string[] } {
    const m = new Transformer(config);
    const want = parameterShapes(config);
    const known = new Set(want.map(([n]) => n));
    for (const [name, shape] of want) {
      const e = sd.get(name) ?? sd.get(stripPrefix(name));
      if (!e) throw new Error(`checkpoint has no tensor '${name}'`);
      if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) throw new Error(`checkpoint tensor '${name}' has shape ${shapeStr(e.shape)}, expected ${shapeStr(shape)}`);
      m.params.set(name, Tensor.param(Tensor.adopt(e.data, shape), name)); // takes the loaded array, no copy
    }
    const unused = [...sd.keys()].filter((k) => !known.has(k) && !known.has(withPrefix(config, k)));
    return { model: m, unused };
  }

  /** The parameters as a state dict in transformers' names (views of the live data, not copies). */
  stateDict(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of this.params) out.set(n, { shape: [...t.shape], data: t.data.subarray(t.offset, t.offset + t.size) });
    return out;
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
    for (const a of this.adapters.values()) a.dispose();
    this.adapters.clear();
  }
}

function defaultPositions(B: number, T: number, past: number): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = past + t;
  return p;
}

// GPT-2 checkpoints saved from GPT2Model lack the `transformer.` prefix.
function stripPrefix(name: string): string {
  return name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
}
function withPrefix(c: CausalLMConfig, name: string): string {
  return c.arch === 'gpt2' && !name.startsWith('transformer.') ? 'transformer.' + name : name;
}

// Hugging Face parameter names for the supported architectures: the names and shapes a checkpoint must hold,
// normalisation of common variants (GPT-2 with or without `transformer.`, Llama bodies saved without `model.`,
// old attention-mask / rotary buffers, a tied lm_head that was saved anyway), and a check with one clear error.
// Shapes are as stored: GPT-2's Conv1D weights are [in, out]; Llama's Linear weights are [out, in].
import type { LlamaFamilyConfig, ModelConfig } from './config.js';

export interface NamedShape {
  shape: readonly number[];
}

/** Every parameter a checkpoint for `cfg` holds, in the order transformers lists them, with stored shapes. */
export function expectedParameterShapes(cfg: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const E = cfg.hiddenSize;
  if (cfg.family === 'gpt2') {
    const I = cfg.innerSize;
    m.set('transformer.wte.weight', [cfg.vocabSize, E]);
    m.set('transformer.wpe.weight', [cfg.maxPositions, E]);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `transformer.h.${l}.`;
      m.set(p + 'ln_1.weight', [E]);
      m.set(p + 'ln_1.bias', [E]);
      m.set(p + 'attn.c_attn.weight', [E, 3 * E]);
      m.set(p + 'attn.c_attn.bias', [3 * E]);
      m.set(p + 'attn.c_proj.weight', [E, E]);
      m.set(p + 'attn.c_proj.bias', [E]);
      m.set(p + 'ln_2.weight', [E]);
      m.set(p + 'ln_2.bias', [E]);
      m.set(p + 'mlp.c_fc.weight', [E, I]);
      m.set(p + 'mlp.c_fc.bias', [I]);
      m.set(p + 'mlp.c_proj.weight', [I, E]);
      m.set(p + 'mlp.c_proj.bias', [E]);
    }
    m.set('transformer.ln_f.weight', [E]);
    m.set('transformer.ln_f.bias', [E]);
  } else {
    const q = cfg.numHeads * cfg.headDim,
      kv = cfg.numKvHeads * cfg.headDim,
      I = cfg.intermediateSize;
    m.set('model.embed_tokens.weight', [cfg.vocabSize, E]);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}.`;
      m.set(p + 'input_layernorm.weight', [E]);
      for (const [proj, out] of [['q_proj', q], ['k_proj', kv], ['v_proj', kv]] as const) {
        m.set(`${p}self_attn.${proj}.weight`, [out, E]);
        if (cfg.qkvBias) m.set(`${p}self_attn.${proj}.bias`, [out]);
      }
      m.set(p + 'self_attn.o_proj.weight', [E, q]);
      if (cfg.oBias) m.set(p + 'self_attn.o_proj.bias', [E]);
      m.set(p + 'post_attention_layernorm.weight', [E]);
      for (const [proj, shape] of [['gate_proj', [I, E]], ['up_proj', [I, E]], ['down_proj', [E, I]]] as const) {
        m.set(`${p}mlp.${proj}.weight`, [...shape]);
        if (cfg.mlpBias) m.set(`${p}mlp.${proj}.bias`, [shape[0]]);
      }
    }
    m.set('model.norm.weight', [E]);
  }
  if (cfg.task === 'sequence-classification') m.set('score.weight', [cfg.numLabels, E]);
  else if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [cfg.vocabSize, E]);
  return m;
}

/** The name of the token embedding (what a tied LM head reads). */
export function embeddingName(cfg: ModelConfig): string {
  return cfg.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
}

const GPT2_BODY = /^(h\.\d+\.|wte\.|wpe\.|ln_f\.)/;
const GPT2_BUFFER = /^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/;
const LLAMA_BODY = /^(layers\.\d+\.|embed_tokens\.|norm\.)/;
const LLAMA_BUFFER = /\.rotary_emb\.inv_freq$/;

/**
 * The same tensors under the names expectedParameterShapes uses: adds a missing `transformer.` / `model.` prefix,
 * drops non-parameter buffers (GPT-2 `attn.bias`/`attn.masked_bias` masks, Llama `rotary_emb.inv_freq`) and drops
 * lm_head.weight when the embeddings are tied (transformers ignores it then). Values are shared, not copied.
 */
export function normalizeParameterNames<T>(cfg: ModelConfig, sd: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, v] of sd) {
    let n = name;
    if (cfg.family === 'gpt2') {
      if (GPT2_BUFFER.test(n)) continue;
      if (GPT2_BODY.test(n)) n = 'transformer.' + n;
    } else {
      if (LLAMA_BUFFER.test(n)) continue;
      if (LLAMA_BODY.test(n)) n = 'model.' + n;
    }
    if (n === 'lm_head.weight' && cfg.task === 'causal-lm' && cfg.tieWordEmbeddings) continue;
    if (out.has(n)) throw new Error(`checkpoint holds both "${n}" and an unprefixed copy of it`);
    out.set(n, v);
  }
  return out;
}

/**
 * A Llama-family config with its bias flags read from the weights present (a checkpoint is the authority:
 * e.g. a Llama config without attention_bias whose weights carry q/k/v biases). Names must be normalised.
 */
export function reconcileConfigWithWeights<C extends ModelConfig>(cfg: C, names: Iterable<string>): C {
  if (cfg.family !== 'llama') return cfg;
  const set = new Set(names);
  const c: LlamaFamilyConfig = { ...cfg };
  c.qkvBias = set.has('model.layers.0.self_attn.q_proj.bias');
  c.oBias = set.has('model.layers.0.self_attn.o_proj.bias');
  c.mlpBias = set.has('model.layers.0.mlp.gate_proj.bias');
  return c as C;
}

/** Throws one error listing missing, unexpected and mis-shaped parameters (normalised names expected). */
export function checkParameters(cfg: ModelConfig, sd: Map<string, NamedShape>, source = 'checkpoint'): void {
  const want = expectedParameterShapes(cfg);
  const problems: string[] = [];
  for (const [name, shape] of want) {
    const got = sd.get(name);
    if (!got) problems.push(`missing ${name} ${JSON.stringify(shape)}`);
    else if (got.shape.length !== shape.length || got.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name}: shape ${JSON.stringify(got.shape)}, expected ${JSON.stringify(shape)}`);
    }
  }
  for (const name of sd.keys()) if (!want.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 12).join('; ') + (problems.length > 12 ? `; ... (${problems.length - 12} more)` : '');
    throw new Error(`${source} does not match ${cfg.architecture} (${cfg.numLayers} layers, width ${cfg.hiddenSize}): ${shown}`);
  }
}

// Hugging Face parameter names for the supported architectures: the names and shapes a checkpoint must hold,
// normalisation of common variants (GPT-2 with or without `transformer.`, Llama bodies saved without `model.`,
// old attention-mask / rotary buffers, a tied lm_head that was saved anyway), and a check with one clear error.
// Shapes are as stored: GPT-2's Conv1D weights are [in, out]; Llama's Linear weights are [out, in].
import { type LayoutConfig, parameterShapes } from '../models/parameters.js';
import type { LlamaFamilyConfig, ModelConfig } from './config.js';

export interface NamedShape {
  shape: readonly number[];
}

/**
 * Every parameter a checkpoint for `cfg` holds, with stored shapes: the model's own layout (one description for
 * both), plus `score.weight` and no LM head for a *ForSequenceClassification checkpoint.
 */
export function expectedParameterShapes(cfg: ModelConfig): Map<string, number[]> {
  const seqCls = cfg.task === 'sequence-classification';
  const layout: LayoutConfig = {
    arch: cfg.family === 'gpt2' ? 'gpt2' : 'llama',
    vocabSize: cfg.vocabSize,
    hiddenSize: cfg.hiddenSize,
    numLayers: cfg.numLayers,
    numHeads: cfg.numHeads,
    numKvHeads: cfg.family === 'gpt2' ? cfg.numHeads : cfg.numKvHeads,
    headDim: cfg.headDim,
    intermediateSize: cfg.family === 'gpt2' ? cfg.innerSize : cfg.intermediateSize,
    maxPositions: cfg.maxPositions,
    tieWordEmbeddings: seqCls || cfg.tieWordEmbeddings,
    qkvBias: cfg.family === 'gpt2' || cfg.qkvBias,
    oBias: cfg.family === 'gpt2' || cfg.oBias,
    mlpBias: cfg.family === 'gpt2' || cfg.mlpBias,
  };
  const m = new Map(parameterShapes(layout));
  if (seqCls) m.set('score.weight', [cfg.numLabels, cfg.hiddenSize]);
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

// Hugging Face parameter names for the supported architectures: the names and shapes a checkpoint must hold,
// normalisation of common variants (GPT-2 with or without `transformer.`, Llama bodies saved without `model.`,
// old attention-mask / rotary buffers, a tied lm_head that was saved anyway), and a check with one clear error.
// Shapes are as stored: GPT-2's Conv1D weights are [in, out]; Llama's Linear weights are [out, in].
import type { CausalLMConfig } from '../models/config.js';
import { parameterShapes } from '../models/parameters.js';
import type { HfConfig } from './config.js';

interface NamedShape {
  shape: readonly number[];
}

/**
 * Every parameter a checkpoint for `cfg` holds, with stored shapes: the model's own layout (one description for
 * both), plus `score.weight` and no LM head for a *ForSequenceClassification checkpoint.
 */
export function expectedParameterShapes(cfg: HfConfig): Map<string, number[]> {
  const seqCls = cfg.task === 'sequence-classification';
  const m = new Map(parameterShapes({ ...cfg.model, tieWordEmbeddings: seqCls || cfg.model.tieWordEmbeddings }));
  if (seqCls) m.set('score.weight', [cfg.numLabels, cfg.model.hiddenSize]);
  return m;
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
export function normalizeParameterNames<T>(cfg: HfConfig, sd: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, v] of sd) {
    let n = name;
    if (cfg.model.arch === 'gpt2') {
      if (GPT2_BUFFER.test(n)) continue;
      if (GPT2_BODY.test(n)) n = 'transformer.' + n;
    } else {
      if (LLAMA_BUFFER.test(n)) continue;
      if (LLAMA_BODY.test(n)) n = 'model.' + n;
    }
    if (n === 'lm_head.weight' && cfg.task === 'causal-lm' && cfg.model.tieWordEmbeddings) continue;
    if (out.has(n)) throw new Error(`checkpoint holds both "${n}" and an unprefixed copy of it`);
    out.set(n, v);
  }
  return out;
}

/**
 * A Llama-family model config with its bias flags read from the weights present (a checkpoint is the authority:
 * e.g. a Llama config without attention_bias whose weights carry q/k/v biases). Names must be normalised.
 */
export function reconcileConfigWithWeights(cfg: CausalLMConfig, names: Iterable<string>): CausalLMConfig {
  if (cfg.arch !== 'llama') return cfg;
  const set = new Set(names);
  return {
    ...cfg,
    qkvBias: set.has('model.layers.0.self_attn.q_proj.bias'),
    oBias: set.has('model.layers.0.self_attn.o_proj.bias'),
    mlpBias: set.has('model.layers.0.mlp.gate_proj.bias'),
  };
}

/** Throws one error listing missing, unexpected and mis-shaped parameters (normalised names expected). */
export function checkParameters(cfg: HfConfig, sd: Map<string, NamedShape>, source = 'checkpoint'): void {
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
    throw new Error(`${source} does not match ${cfg.architecture} (${cfg.model.numLayers} layers, width ${cfg.model.hiddenSize}): ${shown}`);
  }
}

// Hugging Face config.json → a typed ModelConfig for the architectures alignkit runs (GPT-2 and the Llama
// family: Llama, Mistral, Qwen2; causal LM and sequence classification heads), and back (configToJSON keeps
// the original's unknown keys so transformers still reads every setting it wrote).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeJsonFile } from './json-file.js';

export const SUPPORTED_ARCHITECTURES = [
  'GPT2LMHeadModel',
  'GPT2ForSequenceClassification',
  'LlamaForCausalLM',
  'LlamaForSequenceClassification',
  'MistralForCausalLM',
  'MistralForSequenceClassification',
  'Qwen2ForCausalLM',
  'Qwen2ForSequenceClassification',
] as const;

export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];
export type ModelType = 'gpt2' | 'llama' | 'mistral' | 'qwen2';
/** causal-lm: an LM head over the vocabulary; sequence-classification: `score` head read at the last non-pad token. */
export type ModelTask = 'causal-lm' | 'sequence-classification';

const ARCH_INFO: Record<Architecture, { modelType: ModelType; task: ModelTask }> = {
  GPT2LMHeadModel: { modelType: 'gpt2', task: 'causal-lm' },
  GPT2ForSequenceClassification: { modelType: 'gpt2', task: 'sequence-classification' },
  LlamaForCausalLM: { modelType: 'llama', task: 'causal-lm' },
  LlamaForSequenceClassification: { modelType: 'llama', task: 'sequence-classification' },
  MistralForCausalLM: { modelType: 'mistral', task: 'causal-lm' },
  MistralForSequenceClassification: { modelType: 'mistral', task: 'sequence-classification' },
  Qwen2ForCausalLM: { modelType: 'qwen2', task: 'causal-lm' },
  Qwen2ForSequenceClassification: { modelType: 'qwen2', task: 'sequence-classification' },
};

interface CommonConfig {
  architecture: Architecture;
  modelType: ModelType;
  task: ModelTask;
  vocabSize: number;
  /** Model width (GPT-2 n_embd, Llama hidden_size). */
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** GPT-2: n_positions (a hard limit, the wpe table); Llama family: max_position_embeddings (advisory). */
  maxPositions: number;
  /** LM head shares the token embedding (then checkpoints omit lm_head.weight). */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** One id or several (any of them ends generation). */
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** Outputs of the sequence-classification head (1 for a reward model); from num_labels or id2label, default 2. */
  numLabels: number;
  /** The checkpoint's declared dtype ("float32", "bfloat16", ...) from `dtype` or `torch_dtype`; null if absent. */
  dtype: string | null;
  /** The JSON read (unknown keys are written back by configToJSON); {} for a config made in code. */
  raw: Record<string, unknown>;
}

/** GPT-2 activations by their computed function: gelu_tanh (gelu_new, gelu_pytorch_tanh, gelu_fast), exact gelu (erf). */
export type Gpt2Activation = 'gelu_tanh' | 'gelu' | 'relu' | 'silu';

const GPT2_ACTIVATIONS: Record<string, Gpt2Activation> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu: 'gelu',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
};

export interface Gpt2Config extends CommonConfig {
  family: 'gpt2';
  modelType: 'gpt2';
  /** MLP width: n_inner, or 4·n_embd when null. */
  innerSize: number;
  layerNormEps: number;
  activation: Gpt2Activation;
  /** activation_function as written (written back by configToJSON). */
  activationName: string;
  /** Scores divided by sqrt(head_dim) (true in every released GPT-2). */
  scaleAttnWeights: boolean;
  /** Scores further divided by (layer index + 1). */
  scaleAttnByInverseLayerIdx: boolean;
}

export interface LlamaFamilyConfig extends CommonConfig {
  family: 'llama';
  modelType: 'llama' | 'mistral' | 'qwen2';
  intermediateSize: number;
  /** Key/value heads (grouped-query attention); numHeads when absent. */
  numKvHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  hiddenAct: 'silu';
  /** q/k/v projections have biases (Llama attention_bias, always for Qwen2). */
  qkvBias: boolean;
  /** o_proj has a bias (Llama attention_bias only). */
  oBias: boolean;
  /** gate/up/down projections have biases (Llama mlp_bias). */
  mlpBias: boolean;
  /**
   * Sliding-window attention width when at least one layer uses it (Mistral sliding_window, Qwen2 with
   * use_sliding_window), else null. Attention is only changed for sequences longer than this: alignkit runs full
   * causal attention, so checkSequenceLength refuses longer sequences.
   */
  slidingWindow: number | null;
}

export type ModelConfig = Gpt2Config | LlamaFamilyConfig;

/** A config problem, naming the source and the field. */
function configError(source: string, msg: string): Error {
  return new Error(`config ${source}: ${msg}`);
}

type Raw = Record<string, unknown>;

class Fields {
  constructor(
    readonly raw: Raw,
    readonly source: string,
  ) {}

  has(k: string): boolean {
    return this.raw[k] !== undefined && this.raw[k] !== null;
  }

  /** A positive integer field; required unless a default is given. */
  posInt(k: string, dflt?: number): number {
    const v = this.raw[k];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw configError(this.source, `missing required field "${k}"`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw configError(this.source, `"${k}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  }

  posNum(k: string, dflt: number): number {
    const v = this.raw[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw configError(this.source, `"${k}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(k: string, dflt: boolean): boolean {
    const v = this.raw[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw configError(this.source, `"${k}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A token id (non-negative integer) or null. */
  tokenId(k: string, dflt: number | null): number | null {
    const v = this.raw[k];
    if (v === undefined) return dflt;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw configError(this.source, `"${k}" must be a token id, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A token id, a list of them, or null. */
  tokenIds(k: string, dflt: number | null): number | number[] | null {
    const v = this.raw[k];
    if (Array.isArray(v)) {
      if (!v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) throw configError(this.source, `"${k}" must hold token ids, got ${JSON.stringify(v)}`);
      return v.slice() as number[];
    }
    return this.tokenId(k, dflt);
  }

  str(k: string): string | null {
    const v = this.raw[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw configError(this.source, `"${k}" must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
}

function resolveArchitecture(f: Fields): Architecture {
  const archs = f.raw.architectures;
  const supported = `supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === 'string')) {
      throw configError(f.source, `"architectures" must be a non-empty list of names, got ${JSON.stringify(archs)}`);
    }
    const found = (archs as string[]).find((a): a is Architecture => a in ARCH_INFO);
    if (!found) throw configError(f.source, `unsupported architecture ${archs.join(', ')} (${supported})`);
    const mt = f.raw.model_type;
    if (typeof mt === 'string' && mt !== ARCH_INFO[found].modelType) {
      throw configError(f.source, `model_type "${mt}" does not match architecture ${found} (expects "${ARCH_INFO[found].modelType}")`);
    }
    return found;
  }
  // No architectures list: the causal LM of the model_type.
  const mt = f.raw.model_type;
  const byType: Record<string, Architecture> = { gpt2: 'GPT2LMHeadModel', llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' };
  if (typeof mt === 'string' && byType[mt]) return byType[mt]!;
  throw configError(f.source, `unsupported model_type ${JSON.stringify(mt ?? null)} and no "architectures" (${supported})`);
}

function numLabelsOf(f: Fields): number {
  if (f.has('num_labels')) return f.posInt('num_labels');
  const id2label = f.raw.id2label;
  if (id2label && typeof id2label === 'object') {
    const n = Object.keys(id2label).length;
    if (n > 0) return n;
  }
  return 2; // transformers' default
}

function common(f: Fields, arch: Architecture) {
  return {
    architecture: arch,
    task: ARCH_INFO[arch].task,
    vocabSize: f.posInt('vocab_size'),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    padTokenId: f.tokenId('pad_token_id', null),
    numLabels: numLabelsOf(f),
    dtype: f.str('dtype') ?? f.str('torch_dtype'),
    raw: f.raw,
  };
}

function parseGpt2(f: Fields, arch: Architecture): Gpt2Config {
  const hiddenSize = f.posInt('n_embd');
  const numHeads = f.posInt('n_head');
  if (hiddenSize % numHeads !== 0) throw configError(f.source, `n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`);
  const activationName = f.str('activation_function') ?? 'gelu_new';
  const activation = GPT2_ACTIVATIONS[activationName];
  if (!activation) {
    throw configError(f.source, `unsupported activation_function "${activationName}" (supported: ${Object.keys(GPT2_ACTIVATIONS).join(', ')})`);
  }
  if (f.bool('add_cross_attention', false)) throw configError(f.source, 'add_cross_attention (encoder-decoder GPT-2) is not supported');
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    ...common(f, arch),
    hiddenSize,
    numLayers: f.posInt('n_layer'),
    numHeads,
    headDim: hiddenSize / numHeads,
    maxPositions: f.posInt('n_positions'),
    innerSize: f.posInt('n_inner', 4 * hiddenSize),
    layerNormEps: f.posNum('layer_norm_epsilon', 1e-5),
    activation,
    activationName,
    scaleAttnWeights: f.bool('scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: f.bool('scale_attn_by_inverse_layer_idx', false),
    bosTokenId: f.tokenId('bos_token_id', 50256),
    eosTokenId: f.tokenIds('eos_token_id', 50256),
  };
}

/** rope θ from `rope_theta` or transformers 5's `rope_parameters`; any scaling other than "default" is refused. */
function parseRope(f: Fields, dflt: number): number {
  const scaling = f.raw.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== 'object' || Array.isArray(scaling)) throw configError(f.source, `"rope_scaling" must be an object, got ${JSON.stringify(scaling)}`);
    const s = scaling as Raw;
    const type = s.rope_type ?? s.type;
    if (type !== 'default') throw configError(f.source, `unsupported rope scaling ${JSON.stringify(type ?? scaling)} (only plain RoPE is implemented)`);
  }
  let fromParams: number | undefined;
  const params = f.raw.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) throw configError(f.source, `"rope_parameters" must be an object, got ${JSON.stringify(params)}`);
    const p = params as Raw;
    if (!('rope_type' in p) && !('rope_theta' in p)) {
      throw configError(f.source, `per-layer-type "rope_parameters" (${Object.keys(p).join(', ')}) are not supported`);
    }
    const type = p.rope_type ?? 'default';
    if (type !== 'default') throw configError(f.source, `unsupported rope scaling ${JSON.stringify(type)} in rope_parameters (only plain RoPE is implemented)`);
    const prf = p.partial_rotary_factor;
    if (prf !== undefined && prf !== null && prf !== 1) throw configError(f.source, `unsupported partial_rotary_factor ${JSON.stringify(prf)}`);
    if (p.rope_theta !== undefined && p.rope_theta !== null) {
      fromParams = new Fields(p, `${f.source} rope_parameters`).posNum('rope_theta', dflt);
    }
  }
  const top = f.has('rope_theta') ? f.posNum('rope_theta', dflt) : undefined;
  if (top !== undefined && fromParams !== undefined && top !== fromParams) {
    throw configError(f.source, `rope_theta ${top} disagrees with rope_parameters.rope_theta ${fromParams}`);
  }
  return fromParams ?? top ?? dflt;
}

/** The sliding window that some layer actually applies, or null. */
function parseSlidingWindow(f: Fields, modelType: LlamaFamilyConfig['modelType'], numLayers: number): number | null {
  if (modelType === 'llama') return null;
  const raw = f.raw.sliding_window;
  // transformers' MistralConfig defaults sliding_window to 4096 when the key is absent; Qwen2's is off unless use_sliding_window.
  let window: number | null = raw === undefined ? (modelType === 'mistral' ? 4096 : null) : raw === null ? null : f.posInt('sliding_window');
  if (window === null) return null;
  const layerTypes = f.raw.layer_types;
  if (Array.isArray(layerTypes)) return layerTypes.includes('sliding_attention') ? window : null;
  if (modelType === 'qwen2') {
    if (!f.bool('use_sliding_window', false)) return null;
    // layers from max_window_layers on use the window (transformers' default 28; 0 = every layer)
    const firstSliding = f.raw.max_window_layers ?? 28;
    if (typeof firstSliding !== 'number' || !Number.isInteger(firstSliding) || firstSliding < 0) {
      throw configError(f.source, `"max_window_layers" must be a non-negative integer, got ${JSON.stringify(firstSliding)}`);
    }
    if (firstSliding >= numLayers) window = null;
  }
  return window;
}

function parseLlama(f: Fields, arch: Architecture): LlamaFamilyConfig {
  const modelType = ARCH_INFO[arch].modelType as LlamaFamilyConfig['modelType'];
  const hiddenSize = f.posInt('hidden_size');
  const numHeads = f.posInt('num_attention_heads');
  const numKvHeads = f.posInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw configError(f.source, `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  let headDim: number;
  if (f.has('head_dim')) headDim = f.posInt('head_dim');
  else {
    if (hiddenSize % numHeads !== 0) throw configError(f.source, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`);
    headDim = hiddenSize / numHeads;
  }
  const act = f.str('hidden_act') ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw configError(f.source, `unsupported hidden_act "${act}" (supported: silu)`);
  const numLayers = f.posInt('num_hidden_layers');
  let qkvBias = false,
    oBias = false,
    mlpBias = false;
  if (modelType === 'llama') {
    qkvBias = oBias = f.bool('attention_bias', false);
    mlpBias = f.bool('mlp_bias', false);
  } else if (modelType === 'qwen2') {
    qkvBias = true;
  }
  const defaults = { llama: [2048, 1, 2], mistral: [4096 * 32, 1, 2], qwen2: [32768, null, null] } as const;
  const [maxPos, bos, eos] = defaults[modelType];
  return {
    family: 'llama',
    modelType,
    ...common(f, arch),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositions: f.posInt('max_position_embeddings', maxPos),
    intermediateSize: f.posInt('intermediate_size'),
    rmsNormEps: f.posNum('rms_norm_eps', 1e-6),
    ropeTheta: parseRope(f, 10000),
    hiddenAct: 'silu',
    qkvBias,
    oBias,
    mlpBias,
    slidingWindow: parseSlidingWindow(f, modelType, numLayers),
    bosTokenId: f.tokenId('bos_token_id', bos),
    eosTokenId: f.tokenIds('eos_token_id', eos),
  };
}

/** Parses a config.json object; `source` names it in errors (a path, or "config"). */
export function parseConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw configError(source, 'is not a JSON object');
  const f = new Fields(json as Raw, source);
  const arch = resolveArchitecture(f);
  return ARCH_INFO[arch].modelType === 'gpt2' ? parseGpt2(f, arch) : parseLlama(f, arch);
}

/** Reads `config.json` from a model directory (or the file itself). */
export function readConfig(dirOrFile: string): ModelConfig {
  const path = existsSync(dirOrFile) && statSync(dirOrFile).isDirectory() ? join(dirOrFile, 'config.json') : dirOrFile;
  return parseConfig(readJsonFile(path, 'config.json'), path);
}

/**
 * Refuses a sequence length the model cannot run as alignkit implements it: beyond GPT-2's position table, or
 * beyond a sliding window (alignkit's attention is full causal, identical to the windowed one only up to the
 * window).
 */
export function checkSequenceLength(cfg: ModelConfig, seqLen: number): void {
  if (cfg.family === 'gpt2' && seqLen > cfg.maxPositions) {
    throw new Error(`${cfg.architecture}: sequence length ${seqLen} exceeds n_positions ${cfg.maxPositions}`);
  }
  if (cfg.family === 'llama' && cfg.slidingWindow !== null && seqLen > cfg.slidingWindow) {
    throw new Error(`${cfg.architecture}: sequence length ${seqLen} exceeds sliding_window ${cfg.slidingWindow}; sliding-window attention is not implemented`);
  }
}

function labelMaps(cfg: ModelConfig, out: Raw): void {
  const raw = cfg.raw.id2label;
  const rawCount = raw && typeof raw === 'object' ? Object.keys(raw).length : 0;
  if (rawCount === cfg.numLabels) return; // keep the original names
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (let i = 0; i < cfg.numLabels; i++) {
    id2label[String(i)] = `LABEL_${i}`;
    label2id[`LABEL_${i}`] = i;
  }
  out.id2label = id2label;
  out.label2id = label2id;
  delete out.num_labels;
}

/**
 * A config.json object transformers accepts: the original keys (unknown ones included) with every typed field
 * written over them. rope θ goes where the original had it (rope_theta and/or rope_parameters; both for a config
 * without either); the dtype under the key the original used (both when absent).
 */
export function configToJSON(cfg: ModelConfig): Record<string, unknown> {
  const out: Raw = { ...cfg.raw };
  out.architectures = [cfg.architecture];
  out.model_type = cfg.modelType;
  out.vocab_size = cfg.vocabSize;
  out.tie_word_embeddings = cfg.tieWordEmbeddings;
  out.bos_token_id = cfg.bosTokenId;
  out.eos_token_id = cfg.eosTokenId;
  out.pad_token_id = cfg.padTokenId;
  if (cfg.dtype !== null) {
    const hadTorch = 'torch_dtype' in cfg.raw,
      hadDtype = 'dtype' in cfg.raw;
    if (hadTorch) out.torch_dtype = cfg.dtype;
    if (hadDtype || !hadTorch) out.dtype = cfg.dtype;
    if (!hadTorch && !hadDtype) out.torch_dtype = cfg.dtype;
  }
  if (cfg.task === 'sequence-classification' || 'id2label' in cfg.raw || cfg.numLabels !== 2) labelMaps(cfg, out);
  if (cfg.family === 'gpt2') {
    if (cfg.headDim * cfg.numHeads !== cfg.hiddenSize) throw new Error(`configToJSON: GPT-2 needs headDim·numHeads = hiddenSize (${cfg.headDim}·${cfg.numHeads} ≠ ${cfg.hiddenSize})`);
    Object.assign(out, {
      n_embd: cfg.hiddenSize,
      n_layer: cfg.numLayers,
      n_head: cfg.numHeads,
      n_positions: cfg.maxPositions,
      n_inner: cfg.innerSize === 4 * cfg.hiddenSize && (cfg.raw.n_inner ?? null) === null ? null : cfg.innerSize,
      layer_norm_epsilon: cfg.layerNormEps,
      activation_function: cfg.activationName,
      scale_attn_weights: cfg.scaleAttnWeights,
      scale_attn_by_inverse_layer_idx: cfg.scaleAttnByInverseLayerIdx,
    });
    return out;
  }
  Object.assign(out, {
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    max_position_embeddings: cfg.maxPositions,
    rms_norm_eps: cfg.rmsNormEps,
    hidden_act: cfg.hiddenAct,
  });
  const hadParams = cfg.raw.rope_parameters !== undefined && cfg.raw.rope_parameters !== null;
  const hadTheta = 'rope_theta' in cfg.raw;
  if (hadParams || !hadTheta) {
    out.rope_parameters = { ...((cfg.raw.rope_parameters as Raw | undefined) ?? {}), rope_type: 'default', rope_theta: cfg.ropeTheta };
  }
  if (hadTheta || !hadParams) out.rope_theta = cfg.ropeTheta;
  if (cfg.modelType === 'llama') {
    if (cfg.qkvBias !== cfg.oBias) throw new Error('configToJSON: Llama has one attention_bias flag for q/k/v and o; qkvBias and oBias differ');
    out.attention_bias = cfg.qkvBias;
    out.mlp_bias = cfg.mlpBias;
  } else {
    const want = cfg.modelType === 'qwen2';
    if (cfg.qkvBias !== want || cfg.oBias || cfg.mlpBias) {
      throw new Error(`configToJSON: ${cfg.modelType} has fixed biases (q/k/v: ${want}, o: false, mlp: false)`);
    }
  }
  if (cfg.modelType === 'mistral') out.sliding_window = cfg.slidingWindow;
  if (cfg.modelType === 'qwen2' && cfg.slidingWindow !== null) {
    out.use_sliding_window = true;
    out.sliding_window = cfg.slidingWindow;
  }
  return out;
}

/** Writes `config.json` into `dir` (sorted keys, 2-space indent, as transformers writes it), atomically. */
export function writeConfig(dir: string, cfg: ModelConfig): void {
  writeJsonFile(join(dir, 'config.json'), configToJSON(cfg));
}

// Hugging Face config.json ↔ the description the models are built from (models/config.ts's CausalLMConfig), for
// GPT-2 and the Llama family (Llama, Mistral, Qwen2; causal LM and sequence classification heads). One table per
// family (GPT2_MAPPING, LLAMA_MAPPING) says which config.json key holds which CausalLMConfig field; parseConfig
// reads through it and configToJSON writes through it. What is not about the network (the transformers class,
// the head, the dtype, a sliding window) sits beside the model in HfConfig, with the JSON read, so that
// configToJSON writes back every key transformers wrote, unknown ones included.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CausalLMConfig } from '../models/config.js';
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

/** config.json as parsed: the network, and the Hugging Face facts around it. */
export interface HfConfig {
  /** What the Transformer is built from (Llama, Mistral and Qwen2 are all arch 'llama'). */
  model: CausalLMConfig;
  /** The transformers class (written back as the only entry of `architectures`). */
  architecture: Architecture;
  modelType: ModelType;
  task: ModelTask;
  /** Outputs of the sequence-classification head (1 for a reward model); from num_labels or id2label, default 2. */
  numLabels: number;
  /** The checkpoint's declared dtype ("float32", "bfloat16", ...) from `dtype` or `torch_dtype`; null if absent. */
  dtype: string | null;
  /**
   * Sliding-window attention width when at least one layer uses it (Mistral sliding_window, Qwen2 with
   * use_sliding_window), else null. Attention is only changed for sequences longer than this: alignkit runs full
   * causal attention, so checkSequenceLength refuses longer sequences.
   */
  slidingWindow: number | null;
  /** The JSON read (unknown keys are written back by configToJSON); {} for a config made in code. */
  raw: Record<string, unknown>;
}

/** A config problem, naming the source and the field. */
function configError(source: string, msg: string): Error {
  return new Error(`config ${source}: ${msg}`);
}

type Raw = Record<string, unknown>;
type Model = CausalLMConfig;

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
function parseSlidingWindow(f: Fields, modelType: ModelType, numLayers: number): number | null {
  if (modelType === 'gpt2' || modelType === 'llama') return null;
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

// ---------------------------------------------------------------------------------------------------------------
// The mapping: one row per config.json setting, read in order (a row's defaults may use the fields read above it)

/**
 * One correspondence between config.json and CausalLMConfig: `read` returns the fields it sets from the JSON;
 * `write` puts the same fields back (`raw` is the JSON read, to keep its spelling) or refuses values config.json
 * cannot express for this model type.
 */
interface Row {
  read(f: Fields, c: Partial<Model>, modelType: ModelType): Partial<Model>;
  write(c: Model, out: Raw, raw: Raw, modelType: ModelType): void;
}

/** The key `json` holds the field `field`; `encode` gives the JSON value (default: the field, null when unset). */
function key<K extends keyof Model>(
  json: string,
  field: K,
  decode: (f: Fields, k: string, c: Partial<Model>, modelType: ModelType) => Model[K],
  encode: (v: Model[K], c: Model, raw: Raw) => unknown = (v) => v ?? null,
): Row {
  return {
    read: (f, c, mt) => ({ [field]: decode(f, json, c, mt) }) as Partial<Model>,
    write: (c, out, raw) => {
      out[json] = encode(c[field], c, raw);
    },
  };
}

/** A field config.json does not hold for this model type: fixed or derived; writing refuses any other value. */
function fixed<K extends keyof Model>(field: K, value: (c: Partial<Model>) => Model[K], why: string): Row {
  return {
    read: (_f, c) => ({ [field]: value(c) }) as Partial<Model>,
    write: (c) => {
      if (c[field] !== value(c)) throw new Error(`configToJSON: ${why} (${field} is ${JSON.stringify(c[field])})`);
    },
  };
}

/** A switch with one supported setting: any other is refused naming the key; written back as that setting when `write`. */
function only(json: string, value: boolean, what: string, write = true): Row {
  return {
    read: (f) => {
      if (f.bool(json, value) !== value) throw configError(f.source, `"${json}": ${!value} is not supported (${what})`);
      return {};
    },
    write: (_c, out) => {
      if (write) out[json] = value;
    },
  };
}

/**
 * The activation: config.json names → the function the models compute. Written back under the name read when it
 * computes the same function, else under the first name of it.
 */
function activation(json: string, names: Record<string, Model['activation']>, dflt: string): Row {
  return key(
    json,
    'activation',
    (f, k) => {
      const name = f.str(k) ?? dflt;
      const a = names[name];
      if (!a) throw configError(f.source, `unsupported ${k} "${name}" (supported: ${Object.keys(names).join(', ')})`);
      return a;
    },
    (v, _c, raw) => {
      const was = raw[json];
      if (typeof was === 'string' && names[was] === v) return was;
      const name = Object.keys(names).find((n) => names[n] === v);
      if (name === undefined) throw new Error(`configToJSON: ${json} cannot express activation ${JSON.stringify(v)} (supported: ${Object.keys(names).join(', ')})`);
      return name;
    },
  );
}

/** transformers' defaults that differ by model type. */
const DEFAULTS: Record<ModelType, { tie: boolean; bos: number | null; eos: number | null; maxPositions?: number }> = {
  gpt2: { tie: true, bos: 50256, eos: 50256 },
  llama: { tie: false, bos: 1, eos: 2, maxPositions: 2048 },
  mistral: { tie: false, bos: 1, eos: 2, maxPositions: 4096 * 32 },
  qwen2: { tie: false, bos: null, eos: null, maxPositions: 32768 },
};

const posInt = (f: Fields, k: string) => f.posInt(k);

/** Settings every supported model type spells the same way. */
const COMMON: Row[] = [
  key('vocab_size', 'vocabSize', posInt),
  key('tie_word_embeddings', 'tieWordEmbeddings', (f, k, _c, mt) => f.bool(k, DEFAULTS[mt].tie)),
  key('bos_token_id', 'bosTokenId', (f, k, _c, mt) => f.tokenId(k, DEFAULTS[mt].bos)),
  key(
    'eos_token_id',
    'eosTokenId',
    (f, k, _c, mt) => f.tokenIds(k, DEFAULTS[mt].eos),
    (v) => (Array.isArray(v) ? v.slice() : (v ?? null)),
  ),
  key('pad_token_id', 'padTokenId', (f, k) => f.tokenId(k, null)),
];

const GPT2_SCALING = 'GPT-2 attention scaling other than 1/sqrt(head_dim)';

const GPT2_MAPPING: Row[] = [
  fixed('arch', () => 'gpt2', 'model_type gpt2 is the gpt2 architecture'),
  ...COMMON,
  key('n_embd', 'hiddenSize', posInt),
  key('n_layer', 'numLayers', posInt),
  key('n_head', 'numHeads', (f, k, c) => {
    const h = f.posInt(k);
    if (c.hiddenSize! % h !== 0) throw configError(f.source, `n_embd ${c.hiddenSize} is not divisible by n_head ${h}`);
    return h;
  }),
  fixed('numKvHeads', (c) => c.numHeads!, 'GPT-2 has no grouped-query attention: numKvHeads must equal numHeads'),
  fixed('headDim', (c) => c.hiddenSize! / c.numHeads!, 'GPT-2 needs headDim·numHeads = hiddenSize'),
  key('n_positions', 'maxPositions', posInt),
  key(
    'n_inner',
    'intermediateSize',
    (f, k, c) => f.posInt(k, 4 * c.hiddenSize!),
    // null (= 4·n_embd) stays null
    (v, c, raw) => (v === 4 * c.hiddenSize && (raw.n_inner ?? null) === null ? null : v),
  ),
  key('layer_norm_epsilon', 'normEps', (f, k) => f.posNum(k, 1e-5)),
  activation('activation_function', { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new', gelu: 'gelu' }, 'gelu_new'),
  fixed('ropeTheta', () => 0, 'GPT-2 has no rotary embeddings: ropeTheta must be 0'),
  fixed('qkvBias', () => true, 'GPT-2 projections all have biases'),
  fixed('oBias', () => true, 'GPT-2 projections all have biases'),
  fixed('mlpBias', () => true, 'GPT-2 projections all have biases'),
  only('scale_attn_weights', true, GPT2_SCALING),
  only('scale_attn_by_inverse_layer_idx', false, GPT2_SCALING),
  only('add_cross_attention', false, 'encoder-decoder GPT-2', false),
];

/** q/k/v, o and MLP biases: Llama's attention_bias (q/k/v and o) and mlp_bias; always q/k/v for Qwen2; none for Mistral. */
const LLAMA_BIASES: Row = {
  read: (f, _c, mt) => {
    if (mt !== 'llama') return { qkvBias: mt === 'qwen2', oBias: false, mlpBias: false };
    const attn = f.bool('attention_bias', false);
    return { qkvBias: attn, oBias: attn, mlpBias: f.bool('mlp_bias', false) };
  },
  write: (c, out, _raw, mt) => {
    if (mt === 'llama') {
      if (c.qkvBias !== c.oBias) throw new Error('configToJSON: Llama has one attention_bias flag for q/k/v and o; qkvBias and oBias differ');
      out.attention_bias = c.qkvBias;
      out.mlp_bias = c.mlpBias;
      return;
    }
    const want = mt === 'qwen2';
    if (c.qkvBias !== want || c.oBias || c.mlpBias) throw new Error(`configToJSON: ${mt} has fixed biases (q/k/v: ${want}, o: false, mlp: false)`);
  },
};

/** rope θ: read from rope_theta and/or rope_parameters; written where the original had it (both for a config made in code). */
const ROPE: Row = {
  read: (f) => ({ ropeTheta: parseRope(f, 10000) }),
  write: (c, out, raw) => {
    const hadParams = raw.rope_parameters !== undefined && raw.rope_parameters !== null;
    const hadTheta = 'rope_theta' in raw;
    if (hadParams || !hadTheta) out.rope_parameters = { ...((raw.rope_parameters as Raw | undefined) ?? {}), rope_type: 'default', rope_theta: c.ropeTheta };
    if (hadTheta || !hadParams) out.rope_theta = c.ropeTheta;
  },
};

const LLAMA_MAPPING: Row[] = [
  fixed('arch', () => 'llama', 'the Llama family (llama, mistral, qwen2) is the llama architecture'),
  ...COMMON,
  key('hidden_size', 'hiddenSize', posInt),
  key('num_hidden_layers', 'numLayers', posInt),
  key('num_attention_heads', 'numHeads', posInt),
  key('num_key_value_heads', 'numKvHeads', (f, k, c) => {
    const kv = f.posInt(k, c.numHeads);
    if (c.numHeads! % kv !== 0) throw configError(f.source, `num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${kv}`);
    return kv;
  }),
  key('head_dim', 'headDim', (f, k, c) => {
    if (f.has(k)) return f.posInt(k);
    if (c.hiddenSize! % c.numHeads! !== 0) throw configError(f.source, `hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numHeads} and no head_dim is given`);
    return c.hiddenSize! / c.numHeads!;
  }),
  key('max_position_embeddings', 'maxPositions', (f, k, _c, mt) => f.posInt(k, DEFAULTS[mt].maxPositions)),
  key('intermediate_size', 'intermediateSize', posInt),
  key('rms_norm_eps', 'normEps', (f, k) => f.posNum(k, 1e-6)),
  activation('hidden_act', { silu: 'silu', swish: 'silu' }, 'silu'),
  ROPE,
  LLAMA_BIASES,
];

const MAPPING = { gpt2: GPT2_MAPPING, llama: LLAMA_MAPPING } as const;
const mappingOf = (mt: ModelType): Row[] => MAPPING[mt === 'gpt2' ? 'gpt2' : 'llama'];

/** Parses a config.json object; `source` names it in errors (a path, or "config"). */
export function parseConfig(json: unknown, source = 'config.json'): HfConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw configError(source, 'is not a JSON object');
  const f = new Fields(json as Raw, source);
  const architecture = resolveArchitecture(f);
  const { modelType, task } = ARCH_INFO[architecture];
  const model: Partial<Model> = {};
  for (const row of mappingOf(modelType)) Object.assign(model, row.read(f, model, modelType));
  return {
    model: model as Model,
    architecture,
    modelType,
    task,
    numLabels: numLabelsOf(f),
    dtype: f.str('dtype') ?? f.str('torch_dtype'),
    slidingWindow: parseSlidingWindow(f, modelType, model.numLayers!),
    raw: f.raw,
  };
}

/** Reads `config.json` from a model directory (or the file itself). */
export function readConfig(dirOrFile: string): HfConfig {
  const path = existsSync(dirOrFile) && statSync(dirOrFile).isDirectory() ? join(dirOrFile, 'config.json') : dirOrFile;
  return parseConfig(readJsonFile(path, 'config.json'), path);
}

/**
 * The *ForSequenceClassification config of a causal LM (same model type, `numLabels` outputs, the other keys
 * kept), e.g. for a reward model made from a policy.
 */
export function asSequenceClassifier(cfg: HfConfig, numLabels: number): HfConfig {
  if (cfg.task !== 'causal-lm') throw new Error(`cannot make a sequence classifier from ${cfg.architecture}: it is not a causal LM`);
  const architecture = SUPPORTED_ARCHITECTURES.find((a) => ARCH_INFO[a].modelType === cfg.modelType && ARCH_INFO[a].task === 'sequence-classification')!;
  return { ...cfg, model: { ...cfg.model }, architecture, task: 'sequence-classification', numLabels, raw: { ...cfg.raw } };
}

/**
 * Refuses a sequence length the model cannot run as alignkit implements it: beyond GPT-2's position table, or
 * beyond a sliding window (alignkit's attention is full causal, identical to the windowed one only up to the
 * window).
 */
export function checkSequenceLength(cfg: HfConfig, seqLen: number): void {
  if (cfg.modelType === 'gpt2' && seqLen > cfg.model.maxPositions) {
    throw new Error(`${cfg.architecture}: sequence length ${seqLen} exceeds n_positions ${cfg.model.maxPositions}`);
  }
  if (cfg.slidingWindow !== null && seqLen > cfg.slidingWindow) {
    throw new Error(`${cfg.architecture}: sequence length ${seqLen} exceeds sliding_window ${cfg.slidingWindow}; sliding-window attention is not implemented`);
  }
}

function labelMaps(cfg: HfConfig, out: Raw): void {
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
 * written over them through the same mapping parseConfig reads with. rope θ goes where the original had it
 * (rope_theta and/or rope_parameters; both for a config without either); the dtype under the key the original
 * used (both when absent).
 */
export function configToJSON(cfg: HfConfig): Record<string, unknown> {
  const info = ARCH_INFO[cfg.architecture];
  if (!info || info.modelType !== cfg.modelType || info.task !== cfg.task) {
    throw new Error(`configToJSON: architecture ${cfg.architecture} is not model_type ${cfg.modelType} with a ${cfg.task} head`);
  }
  const out: Raw = { ...cfg.raw };
  out.architectures = [cfg.architecture];
  out.model_type = cfg.modelType;
  for (const row of mappingOf(cfg.modelType)) row.write(cfg.model, out, cfg.raw, cfg.modelType);
  if (cfg.dtype !== null) {
    const hadTorch = 'torch_dtype' in cfg.raw,
      hadDtype = 'dtype' in cfg.raw;
    if (hadTorch) out.torch_dtype = cfg.dtype;
    if (hadDtype || !hadTorch) out.dtype = cfg.dtype;
    if (!hadTorch && !hadDtype) out.torch_dtype = cfg.dtype;
  }
  if (cfg.task === 'sequence-classification' || 'id2label' in cfg.raw || cfg.numLabels !== 2) labelMaps(cfg, out);
  if (cfg.modelType === 'mistral') out.sliding_window = cfg.slidingWindow;
  if (cfg.modelType === 'qwen2' && cfg.slidingWindow !== null) {
    out.use_sliding_window = true;
    out.sliding_window = cfg.slidingWindow;
    // a window read from a config.json keeps its layer split; one made in code applies to every layer
    if (!('max_window_layers' in cfg.raw) && !('layer_types' in cfg.raw)) out.max_window_layers = 0;
  }
  return out;
}

/** Writes `config.json` into `dir` (sorted keys, 2-space indent, as transformers writes it), atomically. */
export function writeConfig(dir: string, cfg: HfConfig): void {
  writeJsonFile(join(dir, 'config.json'), configToJSON(cfg));
}

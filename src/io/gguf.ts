// Writes a model (Hugging Face parameter names, float32 weights) as a GGUF file that llama.cpp loads, for three of
// llama.cpp's architectures:
//  - `llama` (Llama, Mistral): q/k rows permuted from HF's rotate-half RoPE layout to the interleaved pairs
//    llama.cpp's `llama` RoPE rotates;
//  - `qwen2`: the llama layout plus q/k/v biases; llama.cpp rotates qwen2 in the NeoX (rotate-half) layout, HF's
//    own, so nothing is permuted;
//  - `gpt2`: learned positions, LayerNorm with biases, fused qkv; HF stores GPT-2's Conv1D weights [in, out], which
//    are transposed to the [out, in] rows llama.cpp multiplies by (as llama.cpp's converter does).
// GGUF dims are the row-major shape reversed (ne[0] is the fastest dimension). f32 or f16 weights: 1-D tensors
// (norms, biases) stay f32 as llama.cpp's converter keeps them. Hyper-parameters under `<arch>.*`, the tokenizer
// metadata from gguf-tokenizer.ts. The file is written atomically (temporary file + rename).
import { f32ArrayToF16 } from './half.js';
import { GgmlType, GgufType, writeGgufFile, type GgufMetadata, type GgufTensorSpec } from './gguf-file.js';
import { ggufTokenizerMetadata, type GgufTokenizerInfo } from './gguf-tokenizer.js';

/** llama.cpp architectures the writer produces (`general.architecture`). */
export type GgufArchitecture = 'llama' | 'qwen2' | 'gpt2';
const GGUF_ARCHITECTURES: readonly GgufArchitecture[] = ['llama', 'qwen2', 'gpt2'];

/**
 * Hyper-parameters (a plain object: a CausalLMConfig's size fields fit as they are; rmsNormEps is another name for normEps).
 * For gpt2 `maxPositions` is n_positions (the rows of wpe), `normEps` the LayerNorm epsilon, `ropeTheta` unused.
 */
export interface GgufModelConfig {
  /** Default 'llama'. */
  architecture?: GgufArchitecture;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention); numHeads when absent. GPT-2 has none (= numHeads). */
  numKvHeads?: number;
  /** hiddenSize / numHeads when absent. */
  headDim?: number;
  intermediateSize: number;
  /** Written as <arch>.context_length. */
  maxPositions: number;
  /** RMSNorm (llama, qwen2) or LayerNorm (gpt2) epsilon (`rmsNormEps` is accepted as well). */
  normEps?: number;
  rmsNormEps?: number;
  /** RoPE base (llama, qwen2). */
  ropeTheta?: number;
  /**
   * GPT-2's MLP activation: llama.cpp's gpt2 computes the tanh approximation (HF gelu_new, gelu_pytorch_tanh,
   * gelu_fast); exact-erf 'gelu' and others are refused. Default 'gelu_tanh'.
   */
  activation?: string;
  tieWordEmbeddings: boolean;
  bosTokenId?: number | null;
  eosTokenId?: number | readonly number[] | null;
  padTokenId?: number | null;
}

/** The config type of the first (llama-only) version of this writer. */
export type GgufLlamaConfig = GgufModelConfig;

export interface GgufTensor {
  shape: number[];
  data: Float32Array;
}

export type GgufDtype = 'f32' | 'f16';

interface WriteGgufOptions {
  config: GgufModelConfig;
  /** Hugging Face parameter names → row-major float32 data (as in safetensors). */
  tensors: Map<string, GgufTensor>;
  /** The parsed tokenizer.json. */
  tokenizer: unknown;
  /** The parsed tokenizer_config.json (chat template, add_bos_token, special token strings). */
  tokenizerConfig?: Record<string, unknown> | null;
  /** A chat template (e.g. the content of chat_template.jinja); wins over tokenizerConfig.chat_template. */
  chatTemplate?: string | null;
  /** Weight type of the matrices: 'f32' (general.file_type 0) or 'f16' (1, 1-D tensors stay f32). */
  dtype: GgufDtype;
  /** tokenizer.ggml.pre override for byte-level BPE tokenizers (detected when omitted). */
  pre?: string;
  /** general.name. */
  name?: string;
  /** general.alignment (a power of two >= 8; default 32). */
  alignment?: number;
}

export interface WriteGgufResult {
  path: string;
  bytes: number;
  architecture: GgufArchitecture;
  /** GGUF tensor names in file order. */
  tensorNames: string[];
  tokenizer: GgufTokenizerInfo;
}

/** How one HF tensor becomes one GGUF tensor. */
interface TensorPlan {
  hf: string;
  /** The HF (stored) shape. */
  shape: number[];
  gguf: string;
  /** Row permutation for RoPE (heads of the q or k projection), or a transpose of a [in, out] Conv1D weight. */
  transform: { kind: 'rope'; heads: number } | { kind: 'transpose' } | null;
}

const LLAMA_FIXED: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const LLAMA_BLOCK: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const QWEN2_BLOCK: Record<string, string> = {
  ...LLAMA_BLOCK,
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
};
const GPT2_FIXED: Record<string, string> = {
  'transformer.wte.weight': 'token_embd.weight',
  'transformer.wpe.weight': 'position_embd.weight',
  'transformer.ln_f.weight': 'output_norm.weight',
  'transformer.ln_f.bias': 'output_norm.bias',
  'lm_head.weight': 'output.weight',
};
const GPT2_BLOCK: Record<string, string> = {
  'ln_1.weight': 'attn_norm.weight',
  'ln_1.bias': 'attn_norm.bias',
  'attn.c_attn.weight': 'attn_qkv.weight',
  'attn.c_attn.bias': 'attn_qkv.bias',
  'attn.c_proj.weight': 'attn_output.weight',
  'attn.c_proj.bias': 'attn_output.bias',
  'ln_2.weight': 'ffn_norm.weight',
  'ln_2.bias': 'ffn_norm.bias',
  'mlp.c_fc.weight': 'ffn_up.weight',
  'mlp.c_fc.bias': 'ffn_up.bias',
  'mlp.c_proj.weight': 'ffn_down.weight',
  'mlp.c_proj.bias': 'ffn_down.bias',
};

/** HF parameter name → GGUF tensor name for `arch` (default llama); null for names that architecture lacks. */
export function ggufTensorName(hfName: string, arch: GgufArchitecture = 'llama'): string | null {
  const fixed = arch === 'gpt2' ? GPT2_FIXED : LLAMA_FIXED;
  if (hfName in fixed) return fixed[hfName]!;
  const m = (arch === 'gpt2' ? /^transformer\.h\.(\d+)\.(.+)$/ : /^model\.layers\.(\d+)\.(.+)$/).exec(hfName);
  if (!m) return null;
  const part = (arch === 'gpt2' ? GPT2_BLOCK : arch === 'qwen2' ? QWEN2_BLOCK : LLAMA_BLOCK)[m[2]!];
  return part === undefined ? null : `blk.${Number(m[1])}.${part}`;
}

/**
 * Reorders the rows of a q or k projection ([heads·headDim, in], row-major) from HF's rotate-half RoPE layout
 * (dimension i pairs with i + headDim/2) to interleaved pairs (2i with 2i+1): within each head, new row 2i+s is
 * old row s·headDim/2 + i. This is the permutation llama.cpp's HF converter applies for the llama architecture
 * (with the kv-head count for k).
 */
export function permuteRopeRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  if (data.length !== rows * cols) throw new Error(`permuteRopeRows: data has ${data.length} elements, not ${rows}x${cols}`);
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) throw new Error(`permuteRopeRows: ${rows} rows do not split into ${heads} heads of even size`);
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const src = (h * hd + s * half + i) * cols;
        out.set(data.subarray(src, src + cols), (h * hd + 2 * i + s) * cols);
      }
    }
  }
  return out;
}

/** The transpose of a row-major [rows, cols] matrix. */
export function transposeRows(data: Float32Array, rows: number, cols: number): Float32Array {
  if (data.length !== rows * cols) throw new Error(`transposeRows: data has ${data.length} elements, not ${rows}x${cols}`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[o + c]!;
  }
  return out;
}

function posInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) throw new Error(`writeGguf: config.${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function posNum(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`writeGguf: config.${what} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

const GPT2_TANH_GELU = ['gelu_tanh', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

/** The checked hyper-parameters used for the export. */
function checkConfig(c: GgufModelConfig) {
  const arch = c.architecture ?? 'llama';
  if (!GGUF_ARCHITECTURES.includes(arch)) throw new Error(`writeGguf: config.architecture must be one of ${GGUF_ARCHITECTURES.join(', ')}, got ${JSON.stringify(arch)}`);
  const numHeads = posInt(c.numHeads, 'numHeads');
  const hiddenSize = posInt(c.hiddenSize, 'hiddenSize');
  const numKvHeads = posInt(c.numKvHeads ?? numHeads, 'numKvHeads');
  if (numHeads % numKvHeads !== 0) throw new Error(`writeGguf: numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (c.headDim === undefined && hiddenSize % numHeads !== 0) throw new Error(`writeGguf: hiddenSize ${hiddenSize} is not a multiple of numHeads ${numHeads}`);
  const headDim = posInt(c.headDim ?? hiddenSize / numHeads, 'headDim');
  if (arch !== 'gpt2' && headDim % 2 !== 0) throw new Error(`writeGguf: headDim ${headDim} must be even (RoPE rotates pairs)`);
  // llama.cpp's gpt2 and qwen2 graphs size the attention output projection [hiddenSize, hiddenSize]
  if (arch !== 'llama' && numHeads * headDim !== hiddenSize) {
    throw new Error(`writeGguf: ${arch} needs numHeads·headDim = hiddenSize, got ${numHeads}·${headDim} != ${hiddenSize}`);
  }
  if (arch === 'gpt2') {
    if (numKvHeads !== numHeads) throw new Error(`writeGguf: gpt2 has no grouped-query attention (numKvHeads ${numKvHeads} != numHeads ${numHeads})`);
    const act = c.activation ?? 'gelu_tanh';
    if (!GPT2_TANH_GELU.includes(act)) {
      throw new Error(`writeGguf: gpt2 activation "${act}" cannot be exported: llama.cpp's gpt2 computes the tanh GELU (${GPT2_TANH_GELU.slice(1).join(', ')})`);
    }
  }
  return {
    arch,
    vocabSize: posInt(c.vocabSize, 'vocabSize'),
    hiddenSize,
    numLayers: posInt(c.numLayers, 'numLayers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: posInt(c.intermediateSize, 'intermediateSize'),
    maxPositions: posInt(c.maxPositions, 'maxPositions'),
    normEps: posNum(c.normEps ?? c.rmsNormEps, 'normEps'),
    ropeTheta: arch === 'gpt2' ? 0 : posNum(c.ropeTheta, 'ropeTheta'),
    tie: c.tieWordEmbeddings === true,
  };
}

type Checked = ReturnType<typeof checkConfig>;

/** Every HF tensor the architecture needs, in file order, with its GGUF name and transform. */
function tensorPlan(c: Checked): TensorPlan[] {
  const { vocabSize: V, hiddenSize: H, intermediateSize: I, headDim: hd } = c;
  const out: TensorPlan[] = [];
  const add = (hf: string, shape: number[], transform: TensorPlan['transform'] = null) => {
    out.push({ hf, shape, gguf: ggufTensorName(hf, c.arch)!, transform });
  };
  if (c.arch === 'gpt2') {
    add('transformer.wte.weight', [V, H]);
    add('transformer.wpe.weight', [c.maxPositions, H]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}.`;
      add(p + 'ln_1.weight', [H]);
      add(p + 'ln_1.bias', [H]);
      add(p + 'attn.c_attn.weight', [H, 3 * H], { kind: 'transpose' });
      add(p + 'attn.c_attn.bias', [3 * H]);
      add(p + 'attn.c_proj.weight', [H, H], { kind: 'transpose' });
      add(p + 'attn.c_proj.bias', [H]);
      add(p + 'ln_2.weight', [H]);
      add(p + 'ln_2.bias', [H]);
      add(p + 'mlp.c_fc.weight', [H, I], { kind: 'transpose' });
      add(p + 'mlp.c_fc.bias', [I]);
      add(p + 'mlp.c_proj.weight', [I, H], { kind: 'transpose' });
      add(p + 'mlp.c_proj.bias', [H]);
    }
    add('transformer.ln_f.weight', [H]);
    add('transformer.ln_f.bias', [H]);
  } else {
    const qRows = c.numHeads * hd;
    const kvRows = c.numKvHeads * hd;
    // llama's RoPE rotates adjacent pairs: permute q/k; qwen2's rotates halves, as HF does: leave them
    const rope = (heads: number): TensorPlan['transform'] => (c.arch === 'llama' ? { kind: 'rope', heads } : null);
    add('model.embed_tokens.weight', [V, H]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      add(p + 'input_layernorm.weight', [H]);
      add(p + 'self_attn.q_proj.weight', [qRows, H], rope(c.numHeads));
      add(p + 'self_attn.k_proj.weight', [kvRows, H], rope(c.numKvHeads));
      add(p + 'self_attn.v_proj.weight', [kvRows, H]);
      if (c.arch === 'qwen2') {
        add(p + 'self_attn.q_proj.bias', [qRows]);
        add(p + 'self_attn.k_proj.bias', [kvRows]);
        add(p + 'self_attn.v_proj.bias', [kvRows]);
      }
      add(p + 'self_attn.o_proj.weight', [H, qRows]);
      add(p + 'post_attention_layernorm.weight', [H]);
      add(p + 'mlp.gate_proj.weight', [I, H]);
      add(p + 'mlp.up_proj.weight', [I, H]);
      add(p + 'mlp.down_proj.weight', [H, I]);
    }
    add('model.norm.weight', [H]);
  }
  if (!c.tie) add('lm_head.weight', [V, H]);
  return out;
}

/** Buffers some checkpoints carry that are not parameters (recomputed by llama.cpp). */
function isBuffer(name: string, arch: GgufArchitecture): boolean {
  if (arch === 'gpt2') return /^transformer\.h\.\d+\.attn\.(masked_)?bias$/.test(name);
  return name.endsWith('.rotary_emb.inv_freq');
}

/** The `<arch>.*` hyper-parameters llama.cpp reads. */
function archMetadata(md: GgufMetadata, c: Checked): void {
  const u32 = (k: string, v: number) => md.set(`${c.arch}.${k}`, { type: GgufType.UINT32, value: v });
  const f32 = (k: string, v: number) => md.set(`${c.arch}.${k}`, { type: GgufType.FLOAT32, value: v });
  u32('vocab_size', c.vocabSize);
  u32('context_length', c.maxPositions);
  u32('embedding_length', c.hiddenSize);
  u32('block_count', c.numLayers);
  u32('feed_forward_length', c.intermediateSize);
  u32('attention.head_count', c.numHeads);
  u32('attention.head_count_kv', c.numKvHeads);
  if (c.arch === 'gpt2') {
    f32('attention.layer_norm_epsilon', c.normEps);
    return;
  }
  u32('attention.key_length', c.headDim);
  u32('attention.value_length', c.headDim);
  f32('attention.layer_norm_rms_epsilon', c.normEps);
  f32('rope.freq_base', c.ropeTheta);
  u32('rope.dimension_count', c.headDim);
}

/**
 * Exports a model to `path` (GGUF v3) as `config.architecture` (default llama). See WriteGgufOptions; throws
 * naming the tensor/field on bad input, before anything is written.
 */
export function writeGguf(path: string, opts: WriteGgufOptions): WriteGgufResult {
  const c = checkConfig(opts.config);
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new Error(`writeGguf: dtype must be 'f32' or 'f16', got ${JSON.stringify(opts.dtype)}`);
  const plan = tensorPlan(c);
  const planned = new Set(plan.map((t) => t.hf));

  const unknown: string[] = [];
  for (const name of opts.tensors.keys()) {
    if (planned.has(name) || isBuffer(name, c.arch)) continue;
    if (c.tie && name === 'lm_head.weight') continue; // tied: llama.cpp reuses token_embd
    unknown.push(name);
  }
  if (unknown.length > 0) {
    const hint = c.arch === 'llama' ? ' (attention/MLP biases and other layouts are not supported)' : '';
    throw new Error(`writeGguf: tensors the ${c.arch} GGUF export does not know${hint}: ${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}`);
  }

  const specs: GgufTensorSpec[] = [];
  for (const { hf, shape, gguf: ggufName, transform } of plan) {
    const t = opts.tensors.get(hf);
    if (t === undefined) throw new Error(`writeGguf: missing tensor "${hf}" (shape [${shape.join(', ')}])`);
    if (!(t.data instanceof Float32Array)) throw new Error(`writeGguf: tensor "${hf}" data must be a Float32Array`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`writeGguf: tensor "${hf}" has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`writeGguf: tensor "${hf}" has ${t.data.length} elements, shape [${shape.join(', ')}] holds ${n}`);
    // the row-major shape written: a transposed [in, out] weight becomes [out, in]; GGUF dims are it reversed
    const stored = transform?.kind === 'transpose' ? [shape[1]!, shape[0]!] : shape;
    const type = opts.dtype === 'f16' && shape.length >= 2 ? GgmlType.F16 : GgmlType.F32;
    specs.push({
      name: ggufName,
      dims: [...stored].reverse(),
      type,
      bytes: () => {
        let rows = t.data;
        if (transform?.kind === 'rope') rows = permuteRopeRows(t.data, shape[0]!, shape[1]!, transform.heads);
        else if (transform?.kind === 'transpose') rows = transposeRows(t.data, shape[0]!, shape[1]!);
        const out = type === GgmlType.F16 ? f32ArrayToF16(rows) : rows;
        return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      },
    });
  }

  const { metadata: tok, info } = ggufTokenizerMetadata(opts.tokenizer, {
    vocabSize: c.vocabSize,
    tokenizerConfig: opts.tokenizerConfig ?? null,
    chatTemplate: opts.chatTemplate ?? null,
    pre: opts.pre,
    bosTokenId: opts.config.bosTokenId ?? null,
    eosTokenId: opts.config.eosTokenId ?? null,
    padTokenId: opts.config.padTokenId ?? null,
  });

  const md: GgufMetadata = new Map();
  const u32 = (k: string, v: number) => md.set(k, { type: GgufType.UINT32, value: v });
  md.set('general.architecture', { type: GgufType.STRING, value: c.arch });
  if (opts.name !== undefined) md.set('general.name', { type: GgufType.STRING, value: opts.name });
  u32('general.file_type', opts.dtype === 'f16' ? 1 : 0); // LLAMA_FTYPE_ALL_F32 / LLAMA_FTYPE_MOSTLY_F16
  u32('general.quantization_version', 2);
  u32('general.alignment', opts.alignment ?? 32);
  archMetadata(md, c);
  for (const [k, v] of tok) md.set(k, v);

  const bytes = writeGgufFile(path, md, specs);
  return { path, bytes, architecture: c.arch, tensorNames: specs.map((s) => s.name), tokenizer: info };
}

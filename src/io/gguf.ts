// Exports a llama-architecture model (Hugging Face parameter names, float32 weights) as a GGUF file that llama.cpp
// loads: llama.cpp tensor names, GGUF dims order (ne[0] = the fastest dimension, i.e. the HF shape reversed),
// q/k rows permuted from HF's rotate-half RoPE layout to the interleaved-pairs layout llama.cpp's `llama` RoPE
// uses, f32 or f16 weights (norm vectors stay f32, as llama.cpp's converter keeps them), llama.* hyper-parameters
// and the tokenizer metadata (gguf-tokenizer.ts). The file is written atomically (temporary file + rename).
import { f32ArrayToF16 } from './half.js';
import { GgmlType, GgufType, writeGgufFile, type GgufMetadata, type GgufTensorSpec } from './gguf-file.js';
import { ggufTokenizerMetadata, type GgufTokenizerInfo } from './gguf-tokenizer.js';

/** Llama hyper-parameters (a plain object; io/config.ts's LlamaFamilyConfig fits: rmsNormEps is read too). */
export interface GgufLlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (grouped-query attention); numHeads when absent. */
  numKvHeads?: number;
  /** hiddenSize / numHeads when absent. */
  headDim?: number;
  intermediateSize: number;
  /** Written as llama.context_length. */
  maxPositions: number;
  /** RMSNorm epsilon (`rmsNormEps` is accepted as well). */
  normEps?: number;
  rmsNormEps?: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  bosTokenId?: number | null;
  eosTokenId?: number | readonly number[] | null;
  padTokenId?: number | null;
}

export interface GgufTensor {
  shape: number[];
  data: Float32Array;
}

export type GgufDtype = 'f32' | 'f16';

export interface WriteGgufOptions {
  config: GgufLlamaConfig;
  /** Hugging Face parameter names → row-major float32 data (as in safetensors). */
  tensors: Map<string, GgufTensor>;
  /** The parsed tokenizer.json. */
  tokenizer: unknown;
  /** The parsed tokenizer_config.json (chat template, add_bos_token, special token strings). */
  tokenizerConfig?: Record<string, unknown> | null;
  /** A chat template (e.g. the content of chat_template.jinja); wins over tokenizerConfig.chat_template. */
  chatTemplate?: string | null;
  /** Weight type of the matrices: 'f32' (general.file_type 0) or 'f16' (1, norms stay f32). */
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
  /** GGUF tensor names in file order. */
  tensorNames: string[];
  tokenizer: GgufTokenizerInfo;
}

/** HF parameter name (llama layout) → GGUF tensor name; null for names the exporter does not know. */
export function ggufTensorName(hfName: string): string | null {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (hfName in fixed) return fixed[hfName]!;
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hfName);
  if (!m) return null;
  const block: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    post_attention_layernorm: 'ffn_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  const part = block[m[2]!];
  return part === undefined ? null : `blk.${Number(m[1])}.${part}.weight`;
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

function posInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) throw new Error(`writeGguf: config.${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function posNum(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`writeGguf: config.${what} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** The checked hyper-parameters used for the export. */
function checkConfig(c: GgufLlamaConfig) {
  const numHeads = posInt(c.numHeads, 'numHeads');
  const hiddenSize = posInt(c.hiddenSize, 'hiddenSize');
  const numKvHeads = posInt(c.numKvHeads ?? numHeads, 'numKvHeads');
  if (numHeads % numKvHeads !== 0) throw new Error(`writeGguf: numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (c.headDim === undefined && hiddenSize % numHeads !== 0) throw new Error(`writeGguf: hiddenSize ${hiddenSize} is not a multiple of numHeads ${numHeads}`);
  const headDim = posInt(c.headDim ?? hiddenSize / numHeads, 'headDim');
  if (headDim % 2 !== 0) throw new Error(`writeGguf: headDim ${headDim} must be even (RoPE rotates pairs)`);
  return {
    vocabSize: posInt(c.vocabSize, 'vocabSize'),
    hiddenSize,
    numLayers: posInt(c.numLayers, 'numLayers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: posInt(c.intermediateSize, 'intermediateSize'),
    maxPositions: posInt(c.maxPositions, 'maxPositions'),
    normEps: posNum(c.normEps ?? c.rmsNormEps, 'normEps'),
    ropeTheta: posNum(c.ropeTheta, 'ropeTheta'),
    tie: c.tieWordEmbeddings === true,
  };
}

/** Exports a llama model to `path` (GGUF v3). See WriteGgufOptions; throws naming the tensor/field on bad input. */
export function writeGguf(path: string, opts: WriteGgufOptions): WriteGgufResult {
  const c = checkConfig(opts.config);
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new Error(`writeGguf: dtype must be 'f32' or 'f16', got ${JSON.stringify(opts.dtype)}`);
  const { vocabSize: V, hiddenSize: H, headDim: hd, intermediateSize: I } = c;
  const qRows = c.numHeads * hd;
  const kvRows = c.numKvHeads * hd;

  // expected HF tensors and shapes
  const expected = new Map<string, number[]>();
  expected.set('model.embed_tokens.weight', [V, H]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    expected.set(p + 'input_layernorm.weight', [H]);
    expected.set(p + 'self_attn.q_proj.weight', [qRows, H]);
    expected.set(p + 'self_attn.k_proj.weight', [kvRows, H]);
    expected.set(p + 'self_attn.v_proj.weight', [kvRows, H]);
    expected.set(p + 'self_attn.o_proj.weight', [H, qRows]);
    expected.set(p + 'post_attention_layernorm.weight', [H]);
    expected.set(p + 'mlp.gate_proj.weight', [I, H]);
    expected.set(p + 'mlp.up_proj.weight', [I, H]);
    expected.set(p + 'mlp.down_proj.weight', [H, I]);
  }
  expected.set('model.norm.weight', [H]);
  if (!c.tie) expected.set('lm_head.weight', [V, H]);

  const unknown: string[] = [];
  for (const name of opts.tensors.keys()) {
    if (expected.has(name)) continue;
    if (name.endsWith('.rotary_emb.inv_freq')) continue; // a buffer some checkpoints carry, recomputed by llama.cpp
    if (c.tie && name === 'lm_head.weight') continue; // tied: llama.cpp reuses token_embd
    unknown.push(name);
  }
  if (unknown.length > 0) {
    throw new Error(`writeGguf: tensors the llama GGUF export does not know (biases and other layouts are not supported): ${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}`);
  }

  const specs: GgufTensorSpec[] = [];
  for (const [name, shape] of expected) {
    const t = opts.tensors.get(name);
    if (t === undefined) throw new Error(`writeGguf: missing tensor "${name}" (shape [${shape.join(', ')}])`);
    if (!(t.data instanceof Float32Array)) throw new Error(`writeGguf: tensor "${name}" data must be a Float32Array`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`writeGguf: tensor "${name}" has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`writeGguf: tensor "${name}" has ${t.data.length} elements, shape [${shape.join(', ')}] holds ${n}`);
    const ggufName = ggufTensorName(name)!;
    let heads = 0;
    if (name.endsWith('self_attn.q_proj.weight')) heads = c.numHeads;
    else if (name.endsWith('self_attn.k_proj.weight')) heads = c.numKvHeads;
    const type = opts.dtype === 'f16' && shape.length >= 2 ? GgmlType.F16 : GgmlType.F32;
    specs.push({
      name: ggufName,
      dims: [...shape].reverse(),
      type,
      bytes: () => {
        const rows = heads > 0 ? permuteRopeRows(t.data, shape[0]!, shape[1]!, heads) : t.data;
        const out = type === GgmlType.F16 ? f32ArrayToF16(rows) : rows;
        return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      },
    });
  }

  const { metadata: tok, info } = ggufTokenizerMetadata(opts.tokenizer, {
    vocabSize: V,
    tokenizerConfig: opts.tokenizerConfig ?? null,
    chatTemplate: opts.chatTemplate ?? null,
    pre: opts.pre,
    bosTokenId: opts.config.bosTokenId ?? null,
    eosTokenId: opts.config.eosTokenId ?? null,
    padTokenId: opts.config.padTokenId ?? null,
  });

  const md: GgufMetadata = new Map();
  const u32 = (k: string, v: number) => md.set(k, { type: GgufType.UINT32, value: v });
  const f32 = (k: string, v: number) => md.set(k, { type: GgufType.FLOAT32, value: v });
  md.set('general.architecture', { type: GgufType.STRING, value: 'llama' });
  if (opts.name !== undefined) md.set('general.name', { type: GgufType.STRING, value: opts.name });
  u32('general.file_type', opts.dtype === 'f16' ? 1 : 0); // LLAMA_FTYPE_ALL_F32 / LLAMA_FTYPE_MOSTLY_F16
  u32('general.quantization_version', 2);
  u32('general.alignment', opts.alignment ?? 32);
  u32('llama.vocab_size', V);
  u32('llama.context_length', c.maxPositions);
  u32('llama.embedding_length', H);
  u32('llama.block_count', c.numLayers);
  u32('llama.feed_forward_length', I);
  u32('llama.attention.head_count', c.numHeads);
  u32('llama.attention.head_count_kv', c.numKvHeads);
  u32('llama.attention.key_length', hd);
  u32('llama.attention.value_length', hd);
  f32('llama.attention.layer_norm_rms_epsilon', c.normEps);
  f32('llama.rope.freq_base', c.ropeTheta);
  u32('llama.rope.dimension_count', hd);
  for (const [k, v] of tok) md.set(k, v);

  const bytes = writeGgufFile(path, md, specs);
  return { path, bytes, tensorNames: specs.map((s) => s.name), tokenizer: info };
}

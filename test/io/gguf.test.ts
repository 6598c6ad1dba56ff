// GGUF export of llama models (GPT-2 and Qwen2: gguf-export.test.ts): bytes read back with @huggingface/gguf
// (metadata, tensor infos, data incl. the q/k permutation and f16 rounding), input errors, atomic replacement, and
// llama.cpp (node-llama-cpp, CPU; skipped when absent, failing in CI: gguf-llama-cpp.ts) loading the files:
// tokenization equal to Hugging Face's, next-token distributions and greedy continuations equal to a float64
// reference llama forward written here (anchored to PyTorch's logits from the tiny-llama fixture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync, writeFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate } from '../../src/models/generate.js';
import { writeGguf, permuteRopeRows, ggufTensorName, type GgufLlamaConfig, type GgufTensor } from '../../src/io/gguf.js';
import { writeGgufFile, GgufType, GgmlType } from '../../src/io/gguf-file.js';
import { ggufTokenizerMetadata, detectPreTokenizer, TOKEN_TYPE } from '../../src/io/gguf-tokenizer.js';
import { readSafetensors, toFloat32, toInt32 } from '../../src/io/safetensors.js';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.js';
import { Random } from '../../src/engine/random.js';
import { fixture, withTmp } from './paths.js';
import { llamaTest, withLlamaModel, llamaGreedy, llamaLogProbs } from './gguf-llama-cpp.js';

// ---------------------------------------------------------------------------------------------------------------
// fixtures

type Json = Record<string, any>;
const tokJson = (): Json => JSON.parse(readFileSync(fixture('tok-bytelevel', 'tokenizer.json'), 'utf8'));
const tokConfig = (): Json => JSON.parse(readFileSync(fixture('tok-bytelevel', 'tokenizer_config.json'), 'utf8'));
const chatTemplate = () => readFileSync(fixture('tok-bytelevel', 'chat_template.jinja'), 'utf8');
const tokSamples = (): { text: string; ids: number[] }[] => JSON.parse(readFileSync(fixture('tok-bytelevel', 'expected.json'), 'utf8')).samples;

/**
 * The first `n` ids of a byte-level BPE tokenizer: the vocab entries below n and the merges whose parts and result
 * are all below n. With the vocab laid out as specials, the 256 bytes, then one token per merge in merge order
 * (as here), this is exactly the tokenizer that training would have produced had it stopped after n tokens.
 */
function truncateTokenizer(tj: Json, n: number): Json {
  const out = structuredClone(tj);
  const vocab = tj.model.vocab as Record<string, number>;
  out.model.vocab = Object.fromEntries(Object.entries(vocab).filter(([, id]) => id < n));
  out.model.merges = (tj.model.merges as [string, string][]).filter(([a, b]) => (vocab[a] ?? n) < n && (vocab[b] ?? n) < n && (vocab[a + b] ?? n) < n);
  out.added_tokens = (tj.added_tokens as Json[]).filter((t) => t.id < n);
  return out;
}

interface Cfg {
  V: number;
  H: number;
  L: number;
  nH: number;
  nKv: number;
  hd: number;
  I: number;
  eps: number;
  theta: number;
  tie: boolean;
}

function ggufConfig(c: Cfg, extra: Partial<GgufLlamaConfig> = {}): GgufLlamaConfig {
  return {
    vocabSize: c.V,
    hiddenSize: c.H,
    numLayers: c.L,
    numHeads: c.nH,
    numKvHeads: c.nKv,
    headDim: c.hd,
    intermediateSize: c.I,
    maxPositions: 64,
    normEps: c.eps,
    ropeTheta: c.theta,
    tieWordEmbeddings: c.tie,
    bosTokenId: 0,
    eosTokenId: 0,
    padTokenId: null,
    ...extra,
  };
}

/** The tiny-llama fixture (HF weights, vocab 1000, untied) and its config. */
function fixtureModel(): { cfg: Cfg; tensors: Map<string, GgufTensor> } {
  const hf = JSON.parse(readFileSync(fixture('tiny-llama', 'config.json'), 'utf8'));
  const cfg: Cfg = {
    V: hf.vocab_size,
    H: hf.hidden_size,
    L: hf.num_hidden_layers,
    nH: hf.num_attention_heads,
    nKv: hf.num_key_value_heads,
    hd: hf.head_dim,
    I: hf.intermediate_size,
    eps: hf.rms_norm_eps,
    theta: hf.rope_parameters?.rope_theta ?? hf.rope_theta,
    tie: hf.tie_word_embeddings,
  };
  const st = readSafetensors(fixture('tiny-llama', 'model.safetensors'));
  const tensors = new Map<string, GgufTensor>();
  for (const [name, e] of st.tensors) tensors.set(name, { shape: e.shape, data: toFloat32(e, name) });
  return { cfg, tensors };
}

/** A random llama with weights large enough for confident (well-separated) greedy choices. */
function randomModel(cfg: Cfg, seed: number): Map<string, GgufTensor> {
  const rng = new Random(seed);
  const t = new Map<string, GgufTensor>();
  const mat = (name: string, rows: number, cols: number, std: number) => {
    const d = new Float32Array(rows * cols);
    for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
    t.set(name, { shape: [rows, cols], data: d });
  };
  const vec = (name: string, n: number) => {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = 1 + 0.2 * rng.normal();
    t.set(name, { shape: [n], data: d });
  };
  const { V, H, L, nH, nKv, hd, I } = cfg;
  mat('model.embed_tokens.weight', V, H, 0.4);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    vec(p + 'input_layernorm.weight', H);
    mat(p + 'self_attn.q_proj.weight', nH * hd, H, 1.5 / Math.sqrt(H));
    mat(p + 'self_attn.k_proj.weight', nKv * hd, H, 1.5 / Math.sqrt(H));
    mat(p + 'self_attn.v_proj.weight', nKv * hd, H, 1 / Math.sqrt(H));
    mat(p + 'self_attn.o_proj.weight', H, nH * hd, 1 / Math.sqrt(nH * hd));
    vec(p + 'post_attention_layernorm.weight', H);
    mat(p + 'mlp.gate_proj.weight', I, H, 1 / Math.sqrt(H));
    mat(p + 'mlp.up_proj.weight', I, H, 1 / Math.sqrt(H));
    mat(p + 'mlp.down_proj.weight', H, I, 1 / Math.sqrt(I));
  }
  vec('model.norm.weight', H);
  if (!cfg.tie) mat('lm_head.weight', V, H, 0.4);
  return t;
}

/** The same tensors with every matrix rounded to f16 (what an f16 export stores; norm vectors stay f32). */
function roundMatricesToF16(t: Map<string, GgufTensor>): Map<string, GgufTensor> {
  const out = new Map<string, GgufTensor>();
  for (const [k, v] of t) out.set(k, v.shape.length >= 2 ? { shape: v.shape, data: f16ArrayToF32(f32ArrayToF16(v.data)) } : v);
  return out;
}

/** Runs async fn with a fresh temporary folder, removed once fn has settled. */
async function withTmpAsync<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-gguf-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// float64 reference llama forward (HF semantics: RMSNorm, rotate-half RoPE with inv_freq = θ^(−2i/d), GQA causal
// attention, SwiGLU MLP, tied or untied head)

function refLogits(cfg: Cfg, w: Map<string, GgufTensor>, ids: readonly number[]): Float64Array[] {
  const { V, H, L, nH, nKv, hd, I, eps, theta } = cfg;
  const T = ids.length;
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`refLogits: missing ${n}`);
    return t.data;
  };
  const matvec = (W: Float32Array, x: Float64Array, rows: number, cols: number) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let c = 0; c < cols; c++) s += W[o + c]! * x[c]!;
      y[r] = s;
    }
    return y;
  };
  const rmsnorm = (x: Float64Array, g: Float32Array) => {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[i]! * x[i]!;
    const inv = 1 / Math.sqrt(ss / H + eps);
    return x.map((v, i) => v * inv * g[i]!);
  };
  const half = hd / 2;
  const invFreq = Array.from({ length: half }, (_, i) => 1 / Math.pow(theta, (2 * i) / hd));
  const rope = (v: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const a = v[h * hd + i]!;
        const b = v[h * hd + i + half]!;
        const ang = pos * invFreq[i]!;
        const c = Math.cos(ang);
        const s = Math.sin(ang);
        v[h * hd + i] = a * c - b * s;
        v[h * hd + i + half] = b * c + a * s;
      }
    }
  };
  const emb = get('model.embed_tokens.weight');
  const x = ids.map((id) => Float64Array.from(emb.subarray(id * H, (id + 1) * H)));
  const group = nH / nKv;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = rmsnorm(x[t]!, get(p + 'input_layernorm.weight'));
      const q = matvec(get(p + 'self_attn.q_proj.weight'), h, nH * hd, H);
      const k = matvec(get(p + 'self_attn.k_proj.weight'), h, nKv * hd, H);
      rope(q, nH, t);
      rope(k, nKv, t);
      qs.push(q);
      ks.push(k);
      vs.push(matvec(get(p + 'self_attn.v_proj.weight'), h, nKv * hd, H));
    }
    for (let t = 0; t < T; t++) {
      const att = new Float64Array(nH * hd);
      for (let h = 0; h < nH; h++) {
        const g = Math.floor(h / group);
        const sc = new Float64Array(t + 1);
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let i = 0; i < hd; i++) d += qs[t]![h * hd + i]! * ks[s]![g * hd + i]!;
          sc[s] = d / Math.sqrt(hd);
          mx = Math.max(mx, sc[s]!);
        }
        let z = 0;
        for (let s = 0; s <= t; s++) z += sc[s] = Math.exp(sc[s]! - mx);
        for (let s = 0; s <= t; s++) for (let i = 0; i < hd; i++) att[h * hd + i] += (sc[s]! / z) * vs[s]![g * hd + i]!;
      }
      const o = matvec(get(p + 'self_attn.o_proj.weight'), att, H, nH * hd);
      for (let i = 0; i < H; i++) x[t]![i] += o[i]!;
      const h2 = rmsnorm(x[t]!, get(p + 'post_attention_layernorm.weight'));
      const gate = matvec(get(p + 'mlp.gate_proj.weight'), h2, I, H);
      const up = matvec(get(p + 'mlp.up_proj.weight'), h2, I, H);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
      const d = matvec(get(p + 'mlp.down_proj.weight'), act, H, I);
      for (let i = 0; i < H; i++) x[t]![i] += d[i]!;
    }
  }
  const head = cfg.tie ? emb : get('lm_head.weight');
  return x.map((xt) => matvec(head, rmsnorm(xt, get('model.norm.weight')), V, H));
}

function logSoftmax(z: Float64Array): Float64Array {
  let mx = -Infinity;
  for (const v of z) mx = Math.max(mx, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - mx);
  const lse = mx + Math.log(s);
  return z.map((v) => v - lse);
}

function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i]! > z[best]!) best = i;
  return best;
}

/** Gap between the largest and second largest entries. */
function top2Gap(z: ArrayLike<number>): number {
  const i = argmax(z);
  let second = -Infinity;
  for (let j = 0; j < z.length; j++) if (j !== i) second = Math.max(second, z[j]!);
  return z[i]! - second;
}

/** Greedy continuation by the reference (full recompute per step; the models are tiny). */
function refGreedy(cfg: Cfg, w: Map<string, GgufTensor>, prompt: readonly number[], n: number): { tokens: number[]; gaps: number[] } {
  const ids = [...prompt];
  const gaps: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = refLogits(cfg, w, ids).at(-1)!;
    gaps.push(top2Gap(logits));
    ids.push(argmax(logits));
  }
  return { tokens: ids.slice(prompt.length), gaps };
}

/** max |a − b| over the entries where b (the reference log-prob) is above `floor`. */
function maxLogProbDiff(a: Float64Array, b: Float64Array, floor = -20): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) if (b[i]! > floor) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Raw tensor bytes from a GGUF file. */
function readBytes(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// pure-TS checks

test('reference forward reproduces PyTorch logits of the tiny-llama fixture', () => {
  const { cfg, tensors } = fixtureModel();
  const ex = readSafetensors(fixture('tiny-llama', 'expected.safetensors')).tensors;
  const ids = toInt32(ex.get('input_ids')!);
  const mask = toInt32(ex.get('attention_mask')!);
  const logits = toFloat32(ex.get('logits')!);
  const T = 16;
  let worst = 0;
  for (const row of [0, 2]) {
    const rowIds = Array.from(ids.subarray(row * T, (row + 1) * T));
    const ours = refLogits(cfg, tensors, rowIds);
    for (let t = 0; t < T; t++) {
      if (mask[row * T + t] === 0) continue; // right padding: earlier positions do not see it
      for (let v = 0; v < cfg.V; v++) worst = Math.max(worst, Math.abs(ours[t]![v]! - logits[(row * T + t) * cfg.V + v]!));
    }
  }
  assert.ok(worst < 2e-5, `max |ref − torch| = ${worst}`);
});

test('q/k permutation equals llama.cpp converter (reshape(h, 2, d/2, in).swapaxes(1, 2)) and turns rotate-half RoPE into pair RoPE', () => {
  // index form: rows × 1 column holding the row number
  const heads = 3;
  const hd = 8;
  const rows = heads * hd;
  const idx = Float32Array.from({ length: rows }, (_, i) => i);
  const p = permuteRopeRows(idx, rows, 1, heads);
  // reshape(heads, 2, hd/2) then swap axes 1 and 2: element [h, i, s] of the result is source [h, s, i]
  const expected: number[] = [];
  for (let h = 0; h < heads; h++) for (let i = 0; i < hd / 2; i++) for (let s = 0; s < 2; s++) expected.push(h * hd + s * (hd / 2) + i);
  assert.deepEqual(Array.from(p), expected);
  // with several columns each row moves whole
  const rng = new Random(3);
  const cols = 5;
  const m = Float32Array.from({ length: rows * cols }, () => rng.normal());
  const pm = permuteRopeRows(m, rows, cols, heads);
  for (let r = 0; r < rows; r++) assert.deepEqual(pm.subarray(r * cols, (r + 1) * cols), m.subarray(expected[r]! * cols, (expected[r]! + 1) * cols));
  // semantics: rotate-half RoPE on q = W x equals (pair RoPE on (P W) x) un-permuted
  const x = Float32Array.from({ length: cols }, () => rng.normal());
  const mv = (W: Float32Array) => Array.from({ length: rows }, (_, r) => W.subarray(r * cols, (r + 1) * cols).reduce((s, w, c) => s + w * x[c]!, 0));
  const q = mv(m);
  const qp = mv(pm);
  const pos = 7;
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const ang = pos * Math.pow(10000, (-2 * i) / hd);
      const [c, s] = [Math.cos(ang), Math.sin(ang)];
      const [a, b] = [q[h * hd + i]!, q[h * hd + i + half]!];
      const [pa, pb] = [qp[h * hd + 2 * i]!, qp[h * hd + 2 * i + 1]!];
      assert.ok(Math.abs(a * c - b * s - (pa * c - pb * s)) < 1e-12);
      assert.ok(Math.abs(b * c + a * s - (pb * c + pa * s)) < 1e-12);
    }
  }
  assert.throws(() => permuteRopeRows(new Float32Array(12), 12, 1, 4), /even size/);
});

test('tensor names map to llama.cpp names', () => {
  assert.equal(ggufTensorName('model.embed_tokens.weight'), 'token_embd.weight');
  assert.equal(ggufTensorName('model.layers.11.self_attn.o_proj.weight'), 'blk.11.attn_output.weight');
  assert.equal(ggufTensorName('model.layers.0.mlp.down_proj.weight'), 'blk.0.ffn_down.weight');
  assert.equal(ggufTensorName('model.layers.3.post_attention_layernorm.weight'), 'blk.3.ffn_norm.weight');
  assert.equal(ggufTensorName('lm_head.weight'), 'output.weight');
  assert.equal(ggufTensorName('model.norm.weight'), 'output_norm.weight');
  assert.equal(ggufTensorName('model.layers.0.self_attn.q_proj.bias'), null);
  // qwen2: the llama names plus q/k/v biases (llama.cpp's create_tensor_qkv)
  assert.equal(ggufTensorName('model.layers.2.self_attn.k_proj.bias', 'qwen2'), 'blk.2.attn_k.bias');
  assert.equal(ggufTensorName('model.layers.2.mlp.gate_proj.weight', 'qwen2'), 'blk.2.ffn_gate.weight');
  assert.equal(ggufTensorName('model.layers.2.self_attn.o_proj.bias', 'qwen2'), null);
  // gpt2: learned positions, fused qkv, LayerNorm biases, no gate
  assert.equal(ggufTensorName('transformer.wpe.weight', 'gpt2'), 'position_embd.weight');
  assert.equal(ggufTensorName('transformer.h.3.attn.c_attn.weight', 'gpt2'), 'blk.3.attn_qkv.weight');
  assert.equal(ggufTensorName('transformer.h.3.attn.c_attn.bias', 'gpt2'), 'blk.3.attn_qkv.bias');
  assert.equal(ggufTensorName('transformer.h.0.mlp.c_fc.weight', 'gpt2'), 'blk.0.ffn_up.weight');
  assert.equal(ggufTensorName('transformer.h.0.mlp.c_proj.bias', 'gpt2'), 'blk.0.ffn_down.bias');
  assert.equal(ggufTensorName('transformer.h.0.ln_2.bias', 'gpt2'), 'blk.0.ffn_norm.bias');
  assert.equal(ggufTensorName('transformer.ln_f.bias', 'gpt2'), 'output_norm.bias');
  assert.equal(ggufTensorName('model.embed_tokens.weight', 'gpt2'), null);
});

test('tokenizer metadata: byte-level BPE → gpt2 with merges, pre "gpt-2", control tokens, padding rows', () => {
  const tj = tokJson();
  assert.equal(detectPreTokenizer(tj), 'gpt-2');
  const { metadata, info } = ggufTokenizerMetadata(tj, { vocabSize: 2003, tokenizerConfig: tokConfig(), chatTemplate: chatTemplate() });
  assert.deepEqual(info, { model: 'gpt2', pre: 'gpt-2', tokenizerSize: 2000 });
  const tokens = metadata.get('tokenizer.ggml.tokens')!.value as string[];
  const types = metadata.get('tokenizer.ggml.token_type')!.value as number[];
  const merges = metadata.get('tokenizer.ggml.merges')!.value as string[];
  assert.equal(tokens.length, 2003);
  assert.equal(tokens[0], '<|endoftext|>');
  assert.equal(tokens[1999], 'bo');
  assert.equal(tokens[2001], '[PAD2001]');
  assert.deepEqual(types.slice(0, 5), [TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.NORMAL]);
  assert.equal(types[2002], TOKEN_TYPE.UNUSED);
  assert.equal(merges.length, 1740);
  assert.equal(merges[0], 'Ġ Ġ');
  // ids from tokenizer_config's token strings when the model config gives none
  assert.equal(metadata.get('tokenizer.ggml.bos_token_id')!.value, 0);
  assert.equal(metadata.get('tokenizer.ggml.eos_token_id')!.value, 0);
  assert.equal(metadata.get('tokenizer.ggml.add_bos_token')!.value, false);
  assert.equal(metadata.get('tokenizer.chat_template')!.value, chatTemplate());
  // errors
  assert.throws(() => ggufTokenizerMetadata(tj, { vocabSize: 1999 }), /id 1999 >= the model's vocab size 1999/);
  assert.throws(() => ggufTokenizerMetadata({ ...tj, model: { ...tj.model, type: 'WordPiece' } }, { vocabSize: 2000 }), /"WordPiece" is not supported/);
  const odd = { ...tj, pre_tokenizer: { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Isolated', invert: false } };
  assert.throws(() => ggufTokenizerMetadata(odd, { vocabSize: 2000 }), /pass the "pre" option/);
  assert.equal(ggufTokenizerMetadata(odd, { vocabSize: 2000, pre: 'default' }).info.pre, 'default');
  assert.throws(() => ggufTokenizerMetadata(tj, { vocabSize: 2000, bosTokenId: 2000 }), /bos token id 2000 is outside/);
});

/** A Llama-2-style tokenizer.json: <unk> <s> </s>, 256 byte tokens, "▁" "a" "b" and three merges. */
function spmTokenizer(): Json {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const t of ['▁', 'a', 'b', 'ab', '▁ab', 'ba']) vocab[t] = Object.keys(vocab).length;
  return {
    model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab, merges: ['a b', '▁ ab', 'b a'] },
    added_tokens: [
      { id: 0, content: '<unk>', special: true },
      { id: 1, content: '<s>', special: true },
      { id: 2, content: '</s>', special: true },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] },
    decoder: { type: 'Sequence', decoders: [] },
  };
}

test('tokenizer metadata: SentencePiece-style BPE (byte_fallback) → llama with merge-rank scores and byte tokens', () => {
  const tj = spmTokenizer();
  const { metadata, info } = ggufTokenizerMetadata(tj, { vocabSize: 266, bosTokenId: 1, eosTokenId: [2, 1] });
  assert.equal(info.model, 'llama');
  const types = metadata.get('tokenizer.ggml.token_type')!.value as number[];
  const scores = metadata.get('tokenizer.ggml.scores')!.value as number[];
  assert.deepEqual(types.slice(0, 4), [TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.BYTE]);
  assert.equal(types[258], TOKEN_TYPE.BYTE);
  assert.equal(types[259], TOKEN_TYPE.NORMAL);
  assert.deepEqual(scores.slice(259, 265), [0, 0, 0, -1, -2, -3]);
  assert.equal(types[265], TOKEN_TYPE.UNUSED);
  assert.equal(metadata.get('tokenizer.ggml.eos_token_id')!.value, 2);
  assert.equal(metadata.get('tokenizer.ggml.unknown_token_id')!.value, 0);
  assert.equal(metadata.get('tokenizer.ggml.add_bos_token')!.value, true);
  assert.equal(metadata.get('tokenizer.ggml.add_space_prefix')!.value, true);
  assert.equal(metadata.has('tokenizer.ggml.merges'), false);
});

test('GGUF container: typed values, alignment, atomic replacement', async () => {
  await withTmpAsync(async (dir) => {
    const path = join(dir, 'x.gguf');
    writeFileSync(path, 'old');
    const md = new Map([
      ['general.architecture', { type: GgufType.STRING, value: 'test' }],
      ['general.alignment', { type: GgufType.UINT32, value: 64 }],
      ['t.i8', { type: GgufType.INT8, value: -5 }],
      ['t.u64', { type: GgufType.UINT64, value: 1n << 40n }],
      ['t.f64', { type: GgufType.FLOAT64, value: Math.PI }],
      ['t.bool', { type: GgufType.BOOL, value: true }],
      ['t.arr', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: [1, -2, 3] }],
    ] as const) as never;
    const a = Float32Array.from([1, 2, 3]);
    const size = writeGgufFile(path, md, [
      { name: 'a', dims: [3], type: GgmlType.F32, bytes: () => new Uint8Array(a.buffer) },
      { name: 'b', dims: [2, 1], type: GgmlType.F16, bytes: () => new Uint8Array(f32ArrayToF16(Float32Array.from([0.5, -2])).buffer) },
    ]);
    assert.equal(statSync(path).size, size);
    const r = await gguf(path, { allowLocalFile: true });
    const m = r.metadata as Json;
    assert.equal(m['t.i8'], -5);
    assert.equal(m['t.u64'], 1n << 40n);
    assert.equal(m['t.f64'], Math.PI);
    assert.equal(m['t.bool'], true);
    assert.deepEqual(m['t.arr'], [1, -2, 3]);
    assert.equal(Number(r.tensorDataOffset) % 64, 0);
    assert.deepEqual(
      r.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)]),
      [
        ['a', [3], 0, 0],
        ['b', [2, 1], 1, 64],
      ],
    );
    const base = Number(r.tensorDataOffset);
    assert.deepEqual(new Float32Array(readBytes(path, base, 12).buffer), a);
    assert.deepEqual(Array.from(f16ArrayToF32(new Uint16Array(readBytes(path, base + 64, 4).buffer))), [0.5, -2]);
    // a failure while writing leaves the old file and no temporary behind
    assert.throws(
      () =>
        writeGgufFile(path, md, [
          {
            name: 'a',
            dims: [3],
            type: GgmlType.F32,
            bytes: () => {
              throw new Error('disk on fire');
            },
          },
        ]),
      /disk on fire/,
    );
    assert.equal(statSync(path).size, size);
    assert.deepEqual(readdirSync(dir), ['x.gguf']);
    // bad inputs
    assert.throws(() => writeGgufFile(path, new Map([['k', { type: GgufType.UINT8, value: 300 }]]), []), /"k": value 300 is not a valid UINT8/);
    assert.throws(() => writeGgufFile(path, new Map([['general.alignment', { type: GgufType.UINT32, value: 12 }]]), []), /power of two/);
    assert.throws(() => writeGgufFile(path, new Map(), [{ name: 'x', dims: [2], type: GgmlType.F32, bytes: () => new Uint8Array(4) }]), /produced 4 bytes/);
  });
});

test('writeGguf rejects bad models naming the tensor', () => {
  const { cfg, tensors } = fixtureModel();
  const tok = truncateTokenizer(tokJson(), cfg.V);
  const base = { config: ggufConfig(cfg), tokenizer: tok, dtype: 'f32' as const };
  withTmp((dir) => {
    const p = join(dir, 'm.gguf');
    const missing = new Map(tensors);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    assert.throws(() => writeGguf(p, { ...base, tensors: missing }), /missing tensor "model.layers.1.mlp.up_proj.weight" \(shape \[176, 64\]\)/);
    const bad = new Map(tensors);
    bad.set('model.layers.0.self_attn.k_proj.weight', { shape: [64, 64], data: new Float32Array(4096) });
    assert.throws(() => writeGguf(p, { ...base, tensors: bad }), /"model.layers.0.self_attn.k_proj.weight" has shape \[64, 64\], the config needs \[32, 64\]/);
    const extra = new Map(tensors);
    extra.set('model.layers.0.self_attn.q_proj.bias', { shape: [64], data: new Float32Array(64) });
    assert.throws(() => writeGguf(p, { ...base, tensors: extra }), /does not know .*q_proj.bias/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { numKvHeads: 3 }) }), /numHeads 4 is not a multiple of numKvHeads 3/);
    assert.throws(() => writeGguf(p, { ...base, tensors, tokenizer: tokJson() }), /vocab size 1000/);
    // architecture rules from llama.cpp's graphs
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'mpt' as never }) }), /architecture must be one of llama, qwen2, gpt2, got "mpt"/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'qwen2', headDim: 32 }) }), /qwen2 needs numHeads·headDim = hiddenSize, got 4·32 != 64/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'qwen2' }) }), /missing tensor "model.layers.0.self_attn.q_proj.bias" \(shape \[64\]\)/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'gpt2' }) }), /gpt2 has no grouped-query attention \(numKvHeads 2 != numHeads 4\)/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'gpt2', numKvHeads: 4, activation: 'relu' }) }), /gpt2 activation "relu" cannot be exported/);
    assert.throws(() => writeGguf(p, { ...base, tensors, config: ggufConfig(cfg, { architecture: 'gpt2', numKvHeads: 4 }) }), /gpt2 GGUF export does not know: model\.embed_tokens\.weight/);
    assert.equal(existsSync(p), false);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// export, read back, run in llama.cpp

/**
 * llama.cpp's greedy continuation (8 tokens) of the tiny-llama fixture from the prompt TINY_LLAMA_PROMPT (the first
 * 5 ids of the fixture's input_ids row 0, no BOS), recorded from the f32 and f16 exports; equal to the float64
 * reference's. alignkit's own greedy generation on the fixture should give the same tokens.
 */
const TINY_LLAMA_PROMPT = [845, 139, 124, 368, 263];
const TINY_LLAMA_GREEDY = [522, 320, 152, 533, 634, 152, 864, 320];

/** Exports the tiny-llama fixture (its tokenizer cut to the model's 1000 ids) to dir/tiny-<dtype>.gguf. */
function exportTinyLlama(dir: string, dtype: 'f32' | 'f16') {
  const { cfg, tensors } = fixtureModel();
  const tok = truncateTokenizer(tokJson(), cfg.V);
  const path = join(dir, `tiny-${dtype}.gguf`);
  const res = writeGguf(path, { config: ggufConfig(cfg), tensors, tokenizer: tok, tokenizerConfig: tokConfig(), chatTemplate: chatTemplate(), dtype, name: 'tiny-llama' });
  return { cfg, tensors, path, res };
}

test('tiny-llama fixture → GGUF f32 and f16: metadata, tensor infos and every byte read back', async () => {
  await withTmpAsync(async (dir) => {
    for (const dtype of ['f32', 'f16'] as const) {
      const { cfg, tensors, path, res } = exportTinyLlama(dir, dtype);
      assert.equal(statSync(path).size, res.bytes);

      // --- read back with @huggingface/gguf
      const r = await gguf(path, { allowLocalFile: true });
      const m = r.metadata as Json;
      const f32 = (x: number) => Math.fround(x);
      const want: Json = {
        version: 3,
        'general.architecture': 'llama',
        'general.name': 'tiny-llama',
        'general.file_type': dtype === 'f16' ? 1 : 0,
        'general.alignment': 32,
        'llama.vocab_size': 1000,
        'llama.context_length': 64,
        'llama.embedding_length': 64,
        'llama.block_count': 2,
        'llama.feed_forward_length': 176,
        'llama.attention.head_count': 4,
        'llama.attention.head_count_kv': 2,
        'llama.attention.key_length': 16,
        'llama.attention.value_length': 16,
        'llama.attention.layer_norm_rms_epsilon': f32(1e-6),
        'llama.rope.freq_base': 10000,
        'llama.rope.dimension_count': 16,
        'tokenizer.ggml.model': 'gpt2',
        'tokenizer.ggml.pre': 'gpt-2',
        'tokenizer.ggml.bos_token_id': 0,
        'tokenizer.ggml.eos_token_id': 0,
        'tokenizer.ggml.add_bos_token': false,
        'tokenizer.chat_template': chatTemplate(),
      };
      for (const [k, v] of Object.entries(want)) assert.equal(m[k], v, k);
      assert.equal(m['tokenizer.ggml.tokens'].length, 1000);
      assert.equal(m['tokenizer.ggml.merges'].length, 740);
      assert.equal(Number(r.metadata.tensor_count), 2 + 9 * cfg.L + (cfg.tie ? 0 : 1));
      const base = Number(r.tensorDataOffset);
      assert.equal(base % 32, 0);
      for (const info of r.tensorInfos) {
        const hfName = [...tensors.keys()].find((n) => ggufTensorName(n) === info.name);
        assert.ok(hfName, `unexpected tensor ${info.name}`);
        const src = tensors.get(hfName)!;
        assert.deepEqual(info.shape.map(Number), [...src.shape].reverse(), info.name);
        const isMat = src.shape.length === 2;
        const type = dtype === 'f16' && isMat ? 1 : 0;
        assert.equal(info.dtype, type, info.name);
        assert.equal(Number(info.offset) % 32, 0, info.name);
        // the bytes: (permuted for q/k) f32 data or its f16 rounding
        const heads = info.name.endsWith('attn_q.weight') ? cfg.nH : info.name.endsWith('attn_k.weight') ? cfg.nKv : 0;
        const rows = heads ? permuteRopeRows(src.data, src.shape[0]!, src.shape[1]!, heads) : src.data;
        const n = rows.length;
        const raw = readBytes(path, base + Number(info.offset), n * (type === 1 ? 2 : 4));
        if (type === 1) assert.deepEqual(new Uint16Array(raw.buffer), f32ArrayToF16(rows), info.name);
        else assert.deepEqual(new Float32Array(raw.buffer), rows, info.name);
      }
    }
  });
});

llamaTest('tiny-llama fixture → GGUF f32 and f16: llama.cpp matches the reference and alignkit', async () => {
  const aligned = loadPretrained(fixture('tiny-llama')).model;
  const alignkitGreedy = generate(aligned, [TINY_LLAMA_PROMPT], { maxNewTokens: 8, doSample: false }).tokens[0]!;
  aligned.dispose();
  await withTmpAsync(async (dir) => {
    for (const dtype of ['f32', 'f16'] as const) {
      const { cfg, tensors, path } = exportTinyLlama(dir, dtype);
      // --- llama.cpp: teacher-forced next-token distributions on a fixture row, then greedy continuation
      const ex = readSafetensors(fixture('tiny-llama', 'expected.safetensors')).tensors;
      const row = Array.from(toInt32(ex.get('input_ids')!).subarray(0, 16));
      const refW = dtype === 'f16' ? roundMatricesToF16(tensors) : tensors;
      const ref = refLogits(cfg, refW, row).map(logSoftmax);
      const prompt = row.slice(0, 5);
      assert.deepEqual(prompt, TINY_LLAMA_PROMPT);
      const expected = refGreedy(cfg, refW, prompt, 8);
      const { lp, greedy } = await withLlamaModel(path, async (model) => ({
        lp: await llamaLogProbs(model, row, cfg.V),
        greedy: await llamaGreedy(model, prompt, 8),
      }));
      const worst = Math.max(...lp.map((l, t) => maxLogProbDiff(l, ref[t]!)));
      // f32: float32 arithmetic vs float64; f16: llama.cpp also rounds activations to f16 inside the matmuls
      assert.ok(worst < (dtype === 'f32' ? 1e-4 : 2e-3), `${dtype}: max |log p(llama.cpp) − log p(ref)| = ${worst}`);
      console.log(
        `# tiny-llama ${dtype}: max |Δ log p| = ${worst.toExponential(2)}; greedy ${JSON.stringify(greedy)}; ref ${JSON.stringify(expected.tokens)}; min ref top-2 gap ${Math.min(...expected.gaps).toExponential(2)}`,
      );
      // the fixture's HF init (std 0.02) gives nearly flat logits: require equal tokens while the reference's
      // top-2 logit gap exceeds the error bound, which holds for the whole continuation here
      const bound = dtype === 'f32' ? 1e-4 : 4e-3;
      for (let i = 0; i < 8 && expected.gaps[i]! > bound; i++) assert.equal(greedy[i], expected.tokens[i], `${dtype} greedy token ${i}`);
      if (dtype === 'f32') assert.deepEqual(greedy, expected.tokens);
      assert.deepEqual(greedy, TINY_LLAMA_GREEDY, `${dtype}: recorded llama.cpp continuation`);
      // and alignkit's own KV-cache generation on the same checkpoint gives llama.cpp's continuation
      assert.deepEqual(alignkitGreedy, greedy, `${dtype}: alignkit's greedy continuation vs llama.cpp on the export`);
    }
  });
});

llamaTest('random llama (vocab 2000, tied embeddings, full tokenizer) → GGUF: HF tokenization, greedy f32 exact, f16 close', async () => {
  const cfg: Cfg = { V: 2000, H: 64, L: 2, nH: 4, nKv: 2, hd: 16, I: 176, eps: 1e-5, theta: 10000, tie: true };
  const tensors = randomModel(cfg, 42);
  const samples = tokSamples();
  const prompt = samples[0]!.ids; // "Hello world" as Hugging Face tokenizes it
  const N = 10;
  await withTmpAsync(async (dir) => {
    const f32 = refGreedy(cfg, tensors, prompt, N);
    for (const dtype of ['f32', 'f16'] as const) {
      const path = join(dir, `rand-${dtype}.gguf`);
      writeGguf(path, { config: ggufConfig(cfg, { eosTokenId: [0] }), tensors, tokenizer: tokJson(), tokenizerConfig: tokConfig(), dtype });
      const r = await gguf(path, { allowLocalFile: true });
      assert.equal(
        r.tensorInfos.some((t) => t.name === 'output.weight'),
        false,
        'tied: no output.weight',
      );
      const refW = dtype === 'f16' ? roundMatricesToF16(tensors) : tensors;
      const expected = dtype === 'f16' ? refGreedy(cfg, refW, prompt, N) : f32;
      const got = await withLlamaModel(path, async (model) => {
        if (dtype === 'f32') {
          for (const s of samples) assert.deepEqual(Array.from(model.tokenize(s.text, true)), s.ids, `tokenize ${JSON.stringify(s.text)}`);
          assert.equal(model.detokenize(prompt as never), samples[0]!.text);
          assert.equal(model.tokens.shouldPrependBosToken, false);
          assert.equal(model.tokens.bos, 0);
        }
        const lp = await llamaLogProbs(model, [...prompt, ...expected.tokens], cfg.V);
        const ref = refLogits(cfg, refW, [...prompt, ...expected.tokens]).map(logSoftmax);
        const worst = Math.max(...lp.map((l, t) => maxLogProbDiff(l, ref[t]!)));
        return { greedy: await llamaGreedy(model, prompt, N), worst };
      });
      console.log(
        `# random ${dtype}: max |Δ log p| = ${got.worst.toExponential(2)}; greedy ${JSON.stringify(got.greedy)}; ref ${JSON.stringify(expected.tokens)}; f32 ref ${JSON.stringify(f32.tokens)}; min gap ${Math.min(...expected.gaps).toFixed(3)}`,
      );
      assert.ok(got.worst < (dtype === 'f32' ? 1e-3 : 5e-2), `${dtype}: max |Δ log p| = ${got.worst}`);
      // f32: the whole continuation equals the reference's. f16: equal to the reference run on the f16-rounded
      // weights for the whole continuation, and to the f32 reference for at least the first 4 tokens.
      assert.deepEqual(got.greedy, expected.tokens, `${dtype} greedy`);
      if (dtype === 'f16') assert.deepEqual(got.greedy.slice(0, 4), f32.tokens.slice(0, 4));
    }
  });
});

llamaTest('SentencePiece-style GGUF loads in llama.cpp and tokenizes in BPE merge order with byte fallback', async () => {
  const cfg: Cfg = { V: 266, H: 32, L: 1, nH: 2, nKv: 1, hd: 16, I: 48, eps: 1e-5, theta: 10000, tie: true };
  await withTmpAsync(async (dir) => {
    const path = join(dir, 'spm.gguf');
    writeGguf(path, { config: ggufConfig(cfg, { bosTokenId: 1, eosTokenId: 2 }), tensors: randomModel(cfg, 5), tokenizer: spmTokenizer(), dtype: 'f32' });
    await withLlamaModel(path, async (model) => {
      // "▁ab▁bac": a+b (rank 0), ▁+ab (rank 1), b+a (rank 2); "c" is not in the vocab → byte token <0x63>
      assert.deepEqual(Array.from(model.tokenize('ab bac')), [263, 259, 264, 3 + 0x63]); // node-llama-cpp's tokenize adds no BOS
      assert.equal(model.detokenize([263, 259, 264, 3 + 0x63] as never), 'ab bac');
      assert.equal(model.tokens.bos, 1);
      assert.equal(model.tokens.eos, 2);
      assert.equal(model.tokens.shouldPrependBosToken, true); // add_bos_token from the TemplateProcessing post-processor
    });
  });
});

// exportGguf (a model directory → a GGUF file) for GPT-2 and Qwen2: the input checks, the file read back with
// @huggingface/gguf (metadata, tensor names, dims, types, and the bytes of the transposed / biased tensors), a
// LoRA adapter directory merged on export, and llama.cpp (node-llama-cpp, CPU) running the f32 and f16 exports:
// next-token log-probabilities close to alignkit's own forward and a greedy continuation equal to alignkit's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { exportGguf } from '../../src/io/gguf-export.js';
import { ggufTensorName, transposeRows } from '../../src/io/gguf.js';
import { saveStateDict, type StateDict } from '../../src/io/checkpoint.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { saveAdapter } from '../../src/io/peft.js';
import { f32ArrayToF16, f16ArrayToF32 } from '../../src/io/half.js';
import { generate } from '../../src/models/generate.js';
import { Random } from '../../src/engine/random.js';
import { noGrad } from '../../src/engine/tensor.js';
import { logSoftmax } from '../../src/engine/ops/norm.js';
import { Tokenizer, trainByteLevelBPE } from '../../src/tokenizer/index.js';
import { fixture } from './paths.js';
import { llamaTest, withLlamaModel, llamaGreedy, llamaLogProbs } from './gguf-llama-cpp.js';

type Json = Record<string, any>;
type Arch = 'gpt2' | 'qwen2';

const V = 2000; // the byte-level fixture tokenizer's size
const H = 64;
const L = 2;
const NH = 4;
const POS = 64;

/** HF config.json of the two test architectures (GPT-2 with its own LM head, Qwen2 tied; EOS = <|endoftext|>, id 0). */
function hfConfig(arch: Arch, extra: Json = {}): Json {
  if (arch === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: V,
      n_embd: H,
      n_layer: L,
      n_head: NH,
      n_positions: POS,
      n_inner: null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: false,
      bos_token_id: 0,
      eos_token_id: 0,
      ...extra,
    };
  }
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: V,
    hidden_size: H,
    num_hidden_layers: L,
    num_attention_heads: NH,
    num_key_value_heads: 2,
    intermediate_size: 176,
    max_position_embeddings: POS,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    use_sliding_window: false,
    bos_token_id: 0,
    eos_token_id: 0,
    ...extra,
  };
}

/**
 * Random weights in HF's names and stored shapes (GPT-2 Conv1D [in, out]; Qwen2 Linear [out, in] with q/k/v
 * biases), large enough for confident, well-separated greedy choices.
 */
function randomWeights(arch: Arch, seed: number): StateDict {
  const rng = new Random(seed);
  const sd: StateDict = new Map();
  const t = (name: string, shape: number[], f: () => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    sd.set(name, { shape, data: Float32Array.from({ length: n }, f) });
  };
  const mat = (name: string, shape: number[], fanIn: number, gain = 1.5) => t(name, shape, () => (rng.normal() * gain) / Math.sqrt(fanIn));
  const gamma = (name: string) => t(name, [H], () => 1 + 0.2 * rng.normal());
  const bias = (name: string, n: number) => t(name, [n], () => 0.2 * rng.normal());
  if (arch === 'gpt2') {
    t('transformer.wte.weight', [V, H], () => 0.4 * rng.normal());
    t('transformer.wpe.weight', [POS, H], () => 0.2 * rng.normal());
    for (let l = 0; l < L; l++) {
      const p = `transformer.h.${l}.`;
      gamma(p + 'ln_1.weight');
      bias(p + 'ln_1.bias', H);
      mat(p + 'attn.c_attn.weight', [H, 3 * H], H);
      bias(p + 'attn.c_attn.bias', 3 * H);
      mat(p + 'attn.c_proj.weight', [H, H], H, 1);
      bias(p + 'attn.c_proj.bias', H);
      gamma(p + 'ln_2.weight');
      bias(p + 'ln_2.bias', H);
      mat(p + 'mlp.c_fc.weight', [H, 4 * H], H);
      bias(p + 'mlp.c_fc.bias', 4 * H);
      mat(p + 'mlp.c_proj.weight', [4 * H, H], 4 * H, 1);
      bias(p + 'mlp.c_proj.bias', H);
    }
    gamma('transformer.ln_f.weight');
    bias('transformer.ln_f.bias', H);
    t('lm_head.weight', [V, H], () => 0.4 * rng.normal());
  } else {
    const hd = H / NH,
      kv = 2 * hd,
      I = 176;
    t('model.embed_tokens.weight', [V, H], () => 0.4 * rng.normal());
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}.`;
      gamma(p + 'input_layernorm.weight');
      mat(p + 'self_attn.q_proj.weight', [H, H], H);
      mat(p + 'self_attn.k_proj.weight', [kv, H], H);
      mat(p + 'self_attn.v_proj.weight', [kv, H], H, 1);
      bias(p + 'self_attn.q_proj.bias', H);
      bias(p + 'self_attn.k_proj.bias', kv);
      bias(p + 'self_attn.v_proj.bias', kv);
      mat(p + 'self_attn.o_proj.weight', [H, H], H, 1);
      gamma(p + 'post_attention_layernorm.weight');
      mat(p + 'mlp.gate_proj.weight', [I, H], H);
      mat(p + 'mlp.up_proj.weight', [I, H], H);
      mat(p + 'mlp.down_proj.weight', [H, I], I, 1);
    }
    gamma('model.norm.weight');
  }
  return sd;
}

/** Every matrix rounded to f16 (what an f16 export stores; 1-D tensors stay f32). */
function roundMatrices(sd: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) out.set(k, v.shape.length >= 2 ? { shape: v.shape, data: f16ArrayToF32(f32ArrayToF16(v.data)) } : v);
  return out;
}

/** A model directory: config.json, model.safetensors (F32) and, unless `tokenizer` is false, the fixture tokenizer. */
function writeModelDir(dir: string, config: Json, sd: StateDict, tokenizer = true): string {
  mkdirSync(dir, { recursive: true });
  saveStateDict(dir, sd);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (tokenizer) for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(fixture('tok-bytelevel', f), join(dir, f));
  return dir;
}

async function withTmpAsync<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-gguf-export-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readAt(path: string, offset: number, length: number): Uint8Array {
  return new Uint8Array(readFileSync(path).subarray(offset, offset + length));
}

const tokSamples = (): { text: string; ids: number[] }[] => JSON.parse(readFileSync(fixture('tok-bytelevel', 'expected.json'), 'utf8')).samples;

// ---------------------------------------------------------------------------------------------------------------
// input checks

test('exportGguf refuses bad paths and models with a message naming them, writing nothing', async () => {
  await withTmpAsync(async (root) => {
    const dir = writeModelDir(join(root, 'gpt2'), hfConfig('gpt2'), randomWeights('gpt2', 1));
    const out = join(root, 'm.gguf');
    const missing = join(root, 'nope');
    assert.throws(() => exportGguf({ model: missing, out }), new RegExp(`cannot read model directory ${missing}: no such file or directory`));
    assert.throws(() => exportGguf({ model: join(dir, 'config.json'), out }), /model directory .*config\.json is a file, not a directory/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    assert.throws(() => exportGguf({ model: empty, out }), new RegExp(`${empty} has no config.json`));
    assert.throws(() => exportGguf({ model: '', out }), /model directory must be a directory path/);
    // the output may not be one of the files read, a folder, or inside a missing folder
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'chat_template.jinja']) {
      assert.throws(() => exportGguf({ model: dir, out: join(dir, f) }), new RegExp(`out .*${f.replace('.', '\\.')} is the input file`), f);
    }
    assert.throws(() => exportGguf({ model: dir, out: join(dir, '.', 'sub', '..', 'config.json') }), /is the input file/);
    assert.throws(() => exportGguf({ model: dir, out: root }), /is a directory; give the path of the \.gguf file/);
    assert.throws(() => exportGguf({ model: dir, out: join(root, 'no', 'such', 'm.gguf') }), /folder .*no\/such does not exist/);
    assert.throws(() => exportGguf({ model: dir, out, dtype: 'q8_0' as never }), /dtype must be 'f32' or 'f16', got "q8_0"/);
    assert.throws(() => exportGguf({ model: dir, out, tokenizer: join(root, 'tok') }), /cannot read tokenizer .*tok: no such file/);
    // no tokenizer
    const bare = writeModelDir(join(root, 'bare'), hfConfig('gpt2'), randomWeights('gpt2', 1), false);
    assert.throws(() => exportGguf({ model: bare, out }), /no tokenizer\.json in .*bare: a GGUF file carries its tokenizer/);
    // models llama.cpp's architectures cannot run as alignkit does
    assert.throws(() => exportGguf({ model: fixture('tiny-gpt2-rm'), out }), /GPT2ForSequenceClassification is a sequence-classification \(reward\) model/);
    const erf = writeModelDir(join(root, 'erf'), hfConfig('gpt2', { activation_function: 'gelu' }), randomWeights('gpt2', 1));
    assert.throws(() => exportGguf({ model: erf, out }), /gpt2 activation "gelu" cannot be exported: llama\.cpp's gpt2 computes the tanh GELU/);
    const scaled = writeModelDir(join(root, 'scaled'), hfConfig('gpt2', { scale_attn_by_inverse_layer_idx: true }), randomWeights('gpt2', 1));
    assert.throws(() => exportGguf({ model: scaled, out }), /attention scaling other than 1\/sqrt\(head_dim\)/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).sort(), ['chat_template.jinja', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    // a previous export in the model folder may be replaced
    writeFileSync(join(dir, 'model.gguf'), 'old');
    exportGguf({ model: dir, out: join(dir, 'model.gguf') });
    assert.ok(statSync(join(dir, 'model.gguf')).size > 1000);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// read back

const EXPECTED_METADATA: Record<Arch, Json> = {
  gpt2: {
    'general.architecture': 'gpt2',
    'gpt2.vocab_size': V,
    'gpt2.context_length': POS,
    'gpt2.embedding_length': H,
    'gpt2.block_count': L,
    'gpt2.feed_forward_length': 4 * H,
    'gpt2.attention.head_count': NH,
    'gpt2.attention.head_count_kv': NH,
    'gpt2.attention.layer_norm_epsilon': Math.fround(1e-5),
  },
  qwen2: {
    'general.architecture': 'qwen2',
    'qwen2.vocab_size': V,
    'qwen2.context_length': POS,
    'qwen2.embedding_length': H,
    'qwen2.block_count': L,
    'qwen2.feed_forward_length': 176,
    'qwen2.attention.head_count': NH,
    'qwen2.attention.head_count_kv': 2,
    'qwen2.attention.key_length': 16,
    'qwen2.attention.value_length': 16,
    'qwen2.attention.layer_norm_rms_epsilon': Math.fround(1e-6),
    'qwen2.rope.freq_base': 1e6,
    'qwen2.rope.dimension_count': 16,
  },
};

for (const arch of ['gpt2', 'qwen2'] as const) {
  test(`${arch} model directory → GGUF f32 and f16: metadata, names, dims, types and bytes read back`, async () => {
    await withTmpAsync(async (root) => {
      const sd = randomWeights(arch, 7);
      const dir = writeModelDir(join(root, arch), hfConfig(arch), sd);
      for (const dtype of ['f32', 'f16'] as const) {
        const out = join(root, `${arch}-${dtype}.gguf`);
        const res = exportGguf({ model: dir, out, dtype });
        assert.equal(res.architecture, arch);
        assert.equal(statSync(out).size, res.bytes);
        const r = await gguf(out, { allowLocalFile: true });
        const m = r.metadata as Json;
        for (const [k, v] of Object.entries({
          ...EXPECTED_METADATA[arch],
          'general.name': arch,
          'general.file_type': dtype === 'f16' ? 1 : 0,
          'tokenizer.ggml.model': 'gpt2',
          'tokenizer.ggml.pre': 'gpt-2',
          'tokenizer.ggml.eos_token_id': 0,
        })) {
          assert.equal(m[k], v, k);
        }
        assert.equal(m['tokenizer.chat_template'], readFileSync(fixture('tok-bytelevel', 'chat_template.jinja'), 'utf8'));
        // exactly one GGUF tensor per HF tensor, in llama.cpp's names (tied Qwen2: no output.weight)
        const names = r.tensorInfos.map((t) => t.name);
        assert.deepEqual([...names].sort(), [...sd.keys()].map((n) => ggufTensorName(n, arch)!).sort());
        assert.equal(names.includes('output.weight'), arch === 'gpt2');
        const base = Number(r.tensorDataOffset);
        for (const info of r.tensorInfos) {
          const hf = [...sd.keys()].find((n) => ggufTensorName(n, arch) === info.name)!;
          const src = sd.get(hf)!;
          // GPT-2's Conv1D weights [in, out] are written transposed: row-major [out, in], GGUF dims [in, out]
          const transposed = arch === 'gpt2' && src.shape.length === 2 && /\.(c_attn|c_proj|c_fc)\.weight$/.test(hf);
          const rows = transposed ? transposeRows(src.data, src.shape[0]!, src.shape[1]!) : src.data; // qwen2: no RoPE permutation
          assert.deepEqual(info.shape.map(Number), transposed ? src.shape : [...src.shape].reverse(), info.name);
          const f16 = dtype === 'f16' && src.shape.length === 2;
          assert.equal(info.dtype, f16 ? 1 : 0, info.name);
          const raw = readAt(out, base + Number(info.offset), rows.length * (f16 ? 2 : 4));
          if (f16) assert.deepEqual(new Uint16Array(raw.buffer), f32ArrayToF16(rows), info.name);
          else assert.deepEqual(new Float32Array(raw.buffer), rows, info.name);
        }
        if (arch === 'qwen2') for (const b of ['q', 'k', 'v']) assert.ok(names.includes(`blk.1.attn_${b}.bias`));
        if (arch === 'gpt2') assert.deepEqual(r.tensorInfos.find((t) => t.name === 'position_embd.weight')!.shape.map(Number), [H, POS]);
      }
    });
  });
}

test('a LoRA adapter directory is merged into its base model on export', async () => {
  await withTmpAsync(async (root) => {
    const baseDir = writeModelDir(join(root, 'base'), hfConfig('gpt2'), randomWeights('gpt2', 3));
    const p = loadPretrained(baseDir);
    const adapters = p.model.addLora({ r: 4, alpha: 8, targetModules: ['c_attn'] }, 1);
    const rng = new Random(9);
    for (const a of adapters) for (let i = 0; i < a.B.size; i++) a.B.data[a.B.offset + i] = 0.1 * rng.normal(); // B starts at zero
    const adapterDir = join(root, 'adapter');
    saveAdapter(adapterDir, p.model, { r: 4, alpha: 8, targetModules: ['c_attn'] }, baseDir); // no tokenizer: the base's is used
    p.model.mergeLora();
    const merged = p.model.stateDict().get('transformer.h.1.attn.c_attn.weight')!;
    const before = randomWeights('gpt2', 3).get('transformer.h.1.attn.c_attn.weight')!;
    assert.ok(
      merged.data.some((v, i) => Math.abs(v - before.data[i]!) > 1e-3),
      'the adapter changes the weight',
    );
    const out = join(root, 'merged.gguf');
    const res = exportGguf({ model: adapterDir, out });
    assert.equal(res.tokenizerPath, join(baseDir, 'tokenizer.json'));
    const r = await gguf(out, { allowLocalFile: true });
    const info = r.tensorInfos.find((t) => t.name === 'blk.1.attn_qkv.weight')!;
    const raw = readAt(out, Number(r.tensorDataOffset) + Number(info.offset), merged.data.length * 4);
    assert.deepEqual(new Float32Array(raw.buffer), transposeRows(merged.data, H, 3 * H));
    p.model.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// llama.cpp runs the exports as alignkit runs the directory

/** alignkit's next-token log-probs after each prefix of ids, and its greedy continuation with the top-2 gaps. */
function alignkitRun(dir: string, ids: number[], prompt: number[], n: number): { lp: Float64Array[]; greedy: number[]; minGap: number } {
  const { model } = loadPretrained(dir);
  try {
    const lp = noGrad(() => {
      const z = logSoftmax(model.forward(Int32Array.from(ids), 1, ids.length)).toArray();
      return ids.map((_, t) => Float64Array.from(z.subarray(t * V, (t + 1) * V)));
    });
    const res = generate(model, [prompt], { maxNewTokens: n, doSample: false });
    // the smallest gap between the chosen and the runner-up log-prob along the continuation
    const seq = [...prompt, ...res.tokens[0]!];
    const z = noGrad(() => logSoftmax(model.forward(Int32Array.from(seq), 1, seq.length)).toArray());
    let minGap = Infinity;
    for (let t = prompt.length - 1; t < seq.length - 1; t++) {
      const row = Array.from(z.subarray(t * V, (t + 1) * V)).sort((a, b) => b - a);
      minGap = Math.min(minGap, row[0]! - row[1]!);
    }
    return { lp, greedy: res.tokens[0]!, minGap };
  } finally {
    model.dispose();
  }
}

function maxLogProbDiff(a: Float64Array, b: Float64Array, floor = -20): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) if (b[i]! > floor) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Bounds on max |log p(llama.cpp) − log p(alignkit)| (entries above −20). GPT-2: llama.cpp's CPU GELU reads a
 * table indexed by the input rounded to f16, so even the f32 export differs by ~1e-3 in the activations.
 * f16: llama.cpp also rounds activations to f16 inside its matmuls (alignkit runs the f16-rounded weights in f32).
 */
const LOGP_BOUND: Record<Arch, Record<'f32' | 'f16', number>> = { gpt2: { f32: 1e-2, f16: 3e-2 }, qwen2: { f32: 1e-4, f16: 5e-2 } };

for (const arch of ['gpt2', 'qwen2'] as const) {
  llamaTest(`${arch} export (f32, f16) in llama.cpp: tokenizes as HF, log-probs close to alignkit's, greedy continuation equal`, async () => {
    await withTmpAsync(async (root) => {
      const sd = randomWeights(arch, 11);
      const samples = tokSamples();
      const prompt = samples[0]!.ids; // "Hello world" as Hugging Face tokenizes it
      const N = 12;
      for (const dtype of ['f32', 'f16'] as const) {
        // alignkit runs exactly the weights the file holds: for f16, a directory of f16-rounded matrices
        const dir = writeModelDir(join(root, `${arch}-${dtype}`), hfConfig(arch), dtype === 'f16' ? roundMatrices(sd) : sd);
        const out = join(root, `${arch}-${dtype}.gguf`);
        exportGguf({ model: dir, out, dtype });
        const ours = alignkitRun(dir, prompt, prompt, N);
        const teacher = [...prompt, ...ours.greedy];
        const oursTeacher = alignkitRun(dir, teacher, prompt, 0).lp;
        const got = await withLlamaModel(out, async (model) => {
          if (dtype === 'f32') for (const s of samples) assert.deepEqual(Array.from(model.tokenize(s.text, true)), s.ids, `tokenize ${JSON.stringify(s.text)}`);
          return { lp: await llamaLogProbs(model, teacher, V), greedy: await llamaGreedy(model, prompt, N) };
        });
        const worst = Math.max(...got.lp.map((l, t) => maxLogProbDiff(l, oursTeacher[t]!)));
        console.log(
          `${arch} ${dtype}: max |Δ log p| = ${worst.toExponential(2)} (bound ${LOGP_BOUND[arch][dtype]}); llama.cpp greedy ${JSON.stringify(got.greedy)}; alignkit ${JSON.stringify(ours.greedy)}; min top-2 gap ${ours.minGap.toFixed(3)}`,
        );
        assert.ok(worst < LOGP_BOUND[arch][dtype], `${arch} ${dtype}: max |log p(llama.cpp) − log p(alignkit)| = ${worst}`);
        // the comparison means something: every greedy choice wins by more than twice the log-prob error bound
        assert.ok(ours.minGap > 2 * LOGP_BOUND[arch][dtype], `${arch} ${dtype}: alignkit's choices are too close to call (gap ${ours.minGap})`);
        assert.deepEqual(got.greedy, ours.greedy, `${arch} ${dtype}: llama.cpp's greedy continuation vs alignkit's`);
      }
    });
  });
}

llamaTest('a tokenizer trained by alignkit (as the quickstart trains one) tokenizes identically in llama.cpp', async () => {
  await withTmpAsync(async (root) => {
    const corpus = ['The hotel was lovely, and the staff were kind.', 'I think the pizza is  wonderful!!', 'Room 101 cost $250 — too much?', "It's the museum's best day.\nReally."];
    const texts = Array.from({ length: 40 }, (_, i) => corpus[i % corpus.length]!);
    const trained = trainByteLevelBPE(texts, { vocabSize: 320, specialTokens: ['<|endoftext|>'], config: { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>' } });
    const dir = writeModelDir(join(root, 'gpt2'), hfConfig('gpt2'), randomWeights('gpt2', 5), false);
    trained.save(dir);
    const out = join(root, 'm.gguf');
    const res = exportGguf({ model: dir, out });
    assert.deepEqual(res.tokenizer, { model: 'gpt2', pre: 'gpt-2', tokenizerSize: trained.vocabSize });
    const tok = Tokenizer.fromPretrained(dir);
    const probes = [...corpus, '  leading spaces and trailing  ', 'unseen wörds: naïve café 42', 'tabs\tand\r\nnewlines', '<|endoftext|> after'];
    await withLlamaModel(out, async (model) => {
      for (const text of probes) assert.deepEqual(Array.from(model.tokenize(text, true)), tok.encode(text, { addSpecialTokens: false }), `tokenize ${JSON.stringify(text)}`);
      assert.equal(model.tokens.eos, tok.eosTokenId);
    });
  });
});

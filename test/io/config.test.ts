// config.json and generation_config.json: every fixture parsed into the right fields, both rope encodings,
// defaults, the refusals (architecture, rope scaling, activation, bad fields), sliding windows, and writing back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Architecture, type HfConfig, SUPPORTED_ARCHITECTURES, asSequenceClassifier, checkSequenceLength, configToJSON, parseConfig, readConfig, writeConfig } from '../../src/io/config.js';
import { generationConfigToJSON, parseGenerationConfig, readGenerationConfig, writeGenerationConfig } from '../../src/io/generation-config.js';
import { type CausalLMConfig, gpt2Config, llamaConfig } from '../../src/models/config.js';
import { fixture, withTmp } from './paths.js';

const fixtureJson = (name: string): Record<string, unknown> => JSON.parse(readFileSync(fixture(name, 'config.json'), 'utf8'));

/** The fields that matter, without `raw`. */
function fields(c: object): Record<string, unknown> {
  const { raw: _raw, ...rest } = c as { raw: unknown };
  return rest;
}

test('tiny-gpt2 and tiny-gpt2-ref config.json → GPT-2 causal LM fields', () => {
  for (const name of ['tiny-gpt2', 'tiny-gpt2-ref']) {
    const c = readConfig(fixture(name));
    assert.deepEqual(fields(c), {
      model: {
        arch: 'gpt2',
        vocabSize: 1000,
        hiddenSize: 64,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 4,
        headDim: 16,
        maxPositions: 64,
        intermediateSize: 256,
        normEps: 1e-5,
        activation: 'gelu_new',
        ropeTheta: 0,
        qkvBias: true,
        oBias: true,
        mlpBias: true,
        tieWordEmbeddings: true,
        bosTokenId: 50256,
        eosTokenId: 50256,
        padTokenId: null,
      },
      modelType: 'gpt2',
      architecture: 'GPT2LMHeadModel',
      task: 'causal-lm',
      numLabels: 2,
      dtype: 'float32',
      slidingWindow: null,
    });
  }
});

test('tiny-gpt2-rm config.json → GPT-2 sequence classification, one label, pad id 0', () => {
  const c = readConfig(fixture('tiny-gpt2-rm'));
  assert.equal(c.architecture, 'GPT2ForSequenceClassification');
  assert.equal(c.task, 'sequence-classification');
  assert.equal(c.numLabels, 1);
  assert.equal(c.model.padTokenId, 0);
  assert.equal(c.model.hiddenSize, 64);
});

test('tiny-llama config.json → Llama with GQA, rope θ from rope_parameters, untied', () => {
  for (const name of ['tiny-llama', 'tiny-llama-ref']) {
    const c = readConfig(fixture(name));
    assert.deepEqual(fields(c), {
      model: {
        arch: 'llama',
        vocabSize: 1000,
        hiddenSize: 64,
        intermediateSize: 176,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
        headDim: 16,
        maxPositions: 64,
        normEps: 1e-6,
        activation: 'silu',
        ropeTheta: 10000,
        qkvBias: false,
        oBias: false,
        mlpBias: false,
        tieWordEmbeddings: false,
        bosTokenId: 1,
        eosTokenId: 2,
        padTokenId: null,
      },
      modelType: 'llama',
      architecture: 'LlamaForCausalLM',
      task: 'causal-lm',
      numLabels: 2,
      dtype: 'float32',
      slidingWindow: null,
    });
  }
});

/** A transformers-4-style Llama config (rope_theta at top level, torch_dtype), no head_dim / kv heads. */
function llama4(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 128,
    hidden_size: 96,
    intermediate_size: 256,
    num_hidden_layers: 3,
    num_attention_heads: 6,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: null,
    torch_dtype: 'bfloat16',
    ...extra,
  };
}

test('rope θ from rope_theta (transformers 4) or rope_parameters (transformers 5); defaults filled in', () => {
  const a = parseConfig(llama4());
  assert.equal(a.model.ropeTheta, 500000);
  assert.equal(a.model.numKvHeads, 6, 'num_key_value_heads defaults to the head count');
  assert.equal(a.model.headDim, 16, 'head_dim defaults to hidden/heads');
  assert.equal(a.dtype, 'bfloat16');
  assert.equal(a.model.tieWordEmbeddings, false);
  const { rope_theta: _t, rope_scaling: _s, ...v5base } = llama4();
  const b = parseConfig({ ...v5base, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
  assert.equal(b.model.ropeTheta, 1e6);
  const c = parseConfig(v5base);
  assert.equal(c.model.ropeTheta, 10000, 'no rope key: transformers default 10000');
  assert.equal(parseConfig(llama4({ rope_parameters: { rope_type: 'default', rope_theta: 500000 } })).model.ropeTheta, 500000);
  assert.throws(() => parseConfig(llama4({ rope_parameters: { rope_type: 'default', rope_theta: 10000 } })), /rope_theta 500000 disagrees with rope_parameters\.rope_theta 10000/);
});

test('rope scaling of any kind is refused by name', () => {
  assert.throws(() => parseConfig(llama4({ rope_scaling: { rope_type: 'llama3', factor: 8.0 } })), /unsupported rope scaling "llama3"/);
  assert.throws(() => parseConfig(llama4({ rope_scaling: { type: 'linear', factor: 2.0 } })), /unsupported rope scaling "linear"/);
  assert.throws(() => parseConfig(llama4({ rope_theta: undefined, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } })), /unsupported rope scaling "yarn" in rope_parameters/);
  assert.throws(() => parseConfig(llama4({ rope_parameters: { rope_type: 'default', rope_theta: 500000, partial_rotary_factor: 0.5 } })), /partial_rotary_factor 0\.5/);
  assert.doesNotThrow(() => parseConfig(llama4({ rope_scaling: { rope_type: 'default' } })));
});

test('unsupported architecture / activation / inconsistent sizes give clear errors', () => {
  assert.throws(
    () => parseConfig({ ...fixtureJson('tiny-llama'), architectures: ['GemmaForCausalLM'], model_type: 'gemma' }, 'x/config.json'),
    (e: Error) => {
      assert.match(e.message, /^config x\/config\.json: unsupported architecture GemmaForCausalLM/);
      for (const a of SUPPORTED_ARCHITECTURES) assert.ok(e.message.includes(a), `lists ${a}`);
      return true;
    },
  );
  assert.throws(() => parseConfig({ model_type: 'bert', hidden_size: 8 }), /unsupported model_type "bert" and no "architectures"/);
  assert.equal(parseConfig({ ...fixtureJson('tiny-gpt2'), architectures: undefined }).architecture, 'GPT2LMHeadModel');
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), model_type: 'llama' }), /model_type "llama" does not match architecture GPT2LMHeadModel/);
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'quick_gelu' }), /unsupported activation_function "quick_gelu"/);
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), n_head: 5 }), /n_embd 64 is not divisible by n_head 5/);
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), n_embd: undefined }), /missing required field "n_embd"/);
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), n_layer: 2.5 }), /"n_layer" must be a positive integer, got 2\.5/);
  assert.throws(() => parseConfig(llama4({ num_key_value_heads: 4 })), /num_attention_heads 6 is not a multiple of num_key_value_heads 4/);
  assert.throws(() => parseConfig(llama4({ hidden_act: 'gelu' })), /unsupported hidden_act "gelu"/);
  assert.throws(() => parseConfig(llama4({ eos_token_id: 'x' })), /"eos_token_id" must be a token id/);
  assert.throws(() => parseConfig([1]), /is not a JSON object/);
  withTmp((dir) => assert.throws(() => readConfig(dir), /config\.json: .*config\.json does not exist/));
  // what the models cannot compute is refused at parse time, naming the file and the key
  assert.throws(
    () => parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'relu' }, 'x/config.json'),
    /^Error: config x\/config\.json: unsupported activation_function "relu" \(supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu\)$/,
  );
  assert.throws(
    () => parseConfig({ ...fixtureJson('tiny-gpt2'), scale_attn_by_inverse_layer_idx: true }, 'x/config.json'),
    /^Error: config x\/config\.json: "scale_attn_by_inverse_layer_idx": true is not supported \(GPT-2 attention scaling other than 1\/sqrt\(head_dim\)\)$/,
  );
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), scale_attn_weights: false }), /"scale_attn_weights": false is not supported/);
  assert.throws(() => parseConfig({ ...fixtureJson('tiny-gpt2'), add_cross_attention: true }), /"add_cross_attention": true is not supported \(encoder-decoder GPT-2\)/);
  assert.equal(parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'gelu' }).model.activation, 'gelu');
  assert.equal(parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'gelu_pytorch_tanh' }).model.activation, 'gelu_new');
  assert.equal(parseConfig({ ...fixtureJson('tiny-gpt2'), n_inner: 100 }).model.intermediateSize, 100);
});

test('Llama attention_bias/mlp_bias, Qwen2 q/k/v biases, Mistral none; eos lists; sequence classification', () => {
  const l = parseConfig(llama4({ attention_bias: true, mlp_bias: true })).model;
  assert.deepEqual([l.qkvBias, l.oBias, l.mlpBias], [true, true, true]);
  const q = parseConfig(llama4({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', eos_token_id: [151643, 151645] }));
  assert.deepEqual([q.modelType, q.model.arch, q.model.qkvBias, q.model.oBias, q.model.mlpBias], ['qwen2', 'llama', true, false, false]);
  assert.deepEqual(q.model.eosTokenId, [151643, 151645]);
  const m = parseConfig(llama4({ architectures: ['MistralForSequenceClassification'], model_type: 'mistral', num_labels: 1, pad_token_id: 0 }));
  assert.deepEqual([m.modelType, m.task, m.numLabels, m.model.padTokenId, m.model.qkvBias], ['mistral', 'sequence-classification', 1, 0, false]);
  const r = parseConfig(llama4({ architectures: ['LlamaForSequenceClassification'], id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
  assert.equal(r.numLabels, 3);
});

test('sliding windows: Mistral (default 4096, null = off), Qwen2 only with use_sliding_window past max_window_layers', () => {
  const mistral = (extra: Record<string, unknown>) => parseConfig(llama4({ architectures: ['MistralForCausalLM'], model_type: 'mistral', ...extra }));
  assert.equal(mistral({}).slidingWindow, 4096);
  assert.equal(mistral({ sliding_window: null }).slidingWindow, null);
  const m = mistral({ sliding_window: 32 });
  assert.equal(m.slidingWindow, 32);
  assert.doesNotThrow(() => checkSequenceLength(m, 32));
  assert.throws(() => checkSequenceLength(m, 33), /sequence length 33 exceeds sliding_window 32; sliding-window attention is not implemented/);
  const qwen = (extra: Record<string, unknown>) => parseConfig(llama4({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', sliding_window: 16, ...extra }));
  assert.equal(qwen({}).slidingWindow, null);
  assert.equal(qwen({ use_sliding_window: true, max_window_layers: 3 }).slidingWindow, null, 'no layer index >= 3 among 3 layers');
  assert.equal(qwen({ use_sliding_window: true, max_window_layers: 2 }).slidingWindow, 16);
  assert.equal(qwen({ use_sliding_window: true, max_window_layers: 0 }).slidingWindow, 16);
  assert.equal(qwen({ use_sliding_window: true }).slidingWindow, null, 'default max_window_layers 28 > 3 layers');
  assert.equal(qwen({ layer_types: ['full_attention', 'full_attention', 'full_attention'] }).slidingWindow, null);
  assert.equal(qwen({ layer_types: ['full_attention', 'sliding_attention', 'full_attention'] }).slidingWindow, 16);
  const g = readConfig(fixture('tiny-gpt2'));
  assert.doesNotThrow(() => checkSequenceLength(g, 64));
  assert.throws(() => checkSequenceLength(g, 65), /sequence length 65 exceeds n_positions 64/);
});

test('configToJSON keeps every original key and value; written files parse back to the same config', () => {
  withTmp((dir) => {
    for (const name of ['tiny-gpt2', 'tiny-gpt2-rm', 'tiny-llama']) {
      const orig = fixtureJson(name);
      const cfg = readConfig(fixture(name));
      assert.deepEqual(configToJSON(cfg), orig, `${name}: nothing lost or changed`);
      writeConfig(dir, cfg);
      const text = readFileSync(join(dir, 'config.json'), 'utf8');
      assert.deepEqual(JSON.parse(text), orig);
      assert.deepEqual(fields(readConfig(dir)), fields(cfg));
      // Python's layout: sorted keys, 2-space indent, float-typed integers keep ".0"
      assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(orig).sort());
      if (name === 'tiny-llama') assert.match(text, /"rope_theta": 10000\.0/);
    }
    assert.deepEqual(readdirSync(dir), ['config.json']);
  });
});

test('configToJSON writes edits, rope in the original form (both for a bare config), and label maps', () => {
  const v4 = parseConfig(llama4());
  const j4 = configToJSON({ ...v4, model: { ...v4.model, ropeTheta: 250000, numKvHeads: 2 } });
  assert.equal(j4.rope_theta, 250000);
  assert.equal(j4.rope_parameters, undefined);
  assert.equal(j4.num_key_value_heads, 2);
  assert.equal(j4.torch_dtype, 'bfloat16');
  assert.equal(j4.dtype, undefined);
  const fresh = configToJSON({ ...v4, raw: {} });
  assert.equal(fresh.rope_theta, 500000);
  assert.deepEqual(fresh.rope_parameters, { rope_type: 'default', rope_theta: 500000 });
  assert.deepEqual([fresh.dtype, fresh.torch_dtype], ['bfloat16', 'bfloat16']);
  assert.deepEqual(fields(parseConfig(fresh)), fields(v4));
  const rm = readConfig(fixture('tiny-gpt2'));
  const asRm = configToJSON({ ...asSequenceClassifier(rm, 1), model: { ...rm.model, padTokenId: 0 } });
  assert.deepEqual(asRm.id2label, { 0: 'LABEL_0' });
  assert.deepEqual(asRm.label2id, { LABEL_0: 0 });
  assert.deepEqual(asRm.architectures, ['GPT2ForSequenceClassification']);
  assert.equal(parseConfig(asRm).numLabels, 1);
  assert.equal(parseConfig(asRm).model.padTokenId, 0);
  // what config.json cannot say for the model type is refused rather than lost
  assert.throws(() => configToJSON({ ...v4, model: { ...v4.model, qkvBias: true } }), /one attention_bias flag/);
  assert.throws(() => configToJSON({ ...rm, model: { ...rm.model, numKvHeads: 2 } }), /GPT-2 has no grouped-query attention/);
  assert.throws(() => configToJSON({ ...rm, model: { ...rm.model, mlpBias: false } }), /GPT-2 projections all have biases/);
  assert.throws(() => configToJSON({ ...rm, model: { ...rm.model, activation: 'silu' } }), /activation_function cannot express activation "silu"/);
  assert.throws(() => configToJSON({ ...rm, model: { ...rm.model, arch: 'llama' } }), /model_type gpt2 is the gpt2 architecture/);
  assert.throws(() => configToJSON({ ...rm, modelType: 'qwen2' }), /architecture GPT2LMHeadModel is not model_type qwen2/);
  const q = parseConfig(llama4({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }));
  assert.throws(() => configToJSON({ ...q, model: { ...q.model, qkvBias: false } }), /qwen2 has fixed biases/);
});

/** A config made in code: a model-layer description and the Hugging Face facts beside it. */
function made(architecture: Architecture, model: CausalLMConfig, extra: Partial<HfConfig> = {}): HfConfig {
  const modelType = ({ GPT2: 'gpt2', Llama: 'llama', Mistral: 'mistral', Qwen2: 'qwen2' } as const)[architecture.replace(/(LMHead|For).*/, '') as 'GPT2'];
  const task = architecture.endsWith('SequenceClassification') ? 'sequence-classification' : 'causal-lm';
  return { model, architecture, modelType, task, numLabels: 2, dtype: null, slidingWindow: null, raw: {}, ...extra };
}

test('one mapping both ways: GPT-2, Llama, Qwen2, Mistral (biases, tied/untied, GQA, eos lists) survive config.json', () => {
  const ids = { bosTokenId: 1, eosTokenId: 2, padTokenId: null };
  const cases: HfConfig[] = [
    made('GPT2LMHeadModel', gpt2Config({ vocabSize: 300, hiddenSize: 48, numLayers: 2, numHeads: 4, maxPositions: 32, bosTokenId: 0, eosTokenId: [0, 7], padTokenId: 3 })),
    made('GPT2LMHeadModel', gpt2Config({ vocabSize: 300, hiddenSize: 48, numLayers: 3, numHeads: 6, intermediateSize: 100, activation: 'gelu', normEps: 1e-6, tieWordEmbeddings: false, ...ids }), {
      dtype: 'bfloat16',
    }),
    made('GPT2ForSequenceClassification', gpt2Config({ vocabSize: 300, hiddenSize: 48, numLayers: 2, numHeads: 4, ...ids, padTokenId: 0 }), { numLabels: 1 }),
    made('LlamaForCausalLM', llamaConfig({ vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 96, ropeTheta: 5e5, ...ids, eosTokenId: [2, 9] })),
    made(
      'LlamaForCausalLM',
      llamaConfig({ vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 4, headDim: 32, intermediateSize: 96, qkvBias: true, oBias: true, mlpBias: true, tieWordEmbeddings: true, ...ids }),
    ),
    made(
      'Qwen2ForCausalLM',
      llamaConfig({ vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 1, intermediateSize: 96, qkvBias: true, tieWordEmbeddings: true, ...ids, eosTokenId: [151643, 151645] }),
    ),
    made('Qwen2ForSequenceClassification', llamaConfig({ vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 96, qkvBias: true, ...ids }), {
      numLabels: 3,
      slidingWindow: 64,
    }),
    made('MistralForCausalLM', llamaConfig({ vocabSize: 256, hiddenSize: 64, numLayers: 2, numHeads: 8, numKvHeads: 2, intermediateSize: 96, normEps: 1e-5, ...ids }), { slidingWindow: 128 }),
  ];
  for (const c of cases) {
    const json = configToJSON(c);
    const back = parseConfig(json, c.architecture);
    assert.deepEqual(fields(back), fields(c), `${c.architecture}: written and read back unchanged`);
    assert.deepEqual(configToJSON(back), json, `${c.architecture}: what was read writes the same JSON`);
    // the parsed model holds every field the model layer describes (nothing left to another mapping)
    assert.deepEqual(Object.keys(back.model).sort(), Object.keys(c.model).sort());
  }
  // and config.json as transformers writes it is read and written back key for key
  const jsons: Record<string, unknown>[] = [
    {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 300,
      n_embd: 48,
      n_layer: 2,
      n_head: 4,
      n_positions: 32,
      n_inner: 100,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_pytorch_tanh',
      scale_attn_weights: true,
      scale_attn_by_inverse_layer_idx: false,
      tie_word_embeddings: false,
      bos_token_id: 0,
      eos_token_id: [0, 5],
      pad_token_id: null,
      resid_pdrop: 0.1,
    },
    {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 256,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 16,
      max_position_embeddings: 128,
      rms_norm_eps: 1e-5,
      hidden_act: 'swish',
      rope_theta: 500000,
      attention_bias: true,
      mlp_bias: true,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: [2, 3],
      pad_token_id: null,
      torch_dtype: 'bfloat16',
    },
    {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      vocab_size: 256,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 16,
      max_position_embeddings: 512,
      rms_norm_eps: 1e-6,
      hidden_act: 'silu',
      rope_theta: 1000000,
      use_sliding_window: false,
      sliding_window: 4096,
      max_window_layers: 28,
      tie_word_embeddings: true,
      bos_token_id: null,
      eos_token_id: [151643, 151645],
      pad_token_id: null,
      dtype: 'bfloat16',
      rope_parameters: { rope_type: 'default', rope_theta: 1000000 },
    },
  ];
  for (const json of jsons) {
    const c = parseConfig(json);
    assert.deepEqual(configToJSON(c), json, `${c.architecture}: nothing lost or changed`);
  }
  assert.deepEqual(
    parseConfig(jsons[2]!).model,
    llamaConfig({
      vocabSize: 256,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 1,
      intermediateSize: 96,
      maxPositions: 512,
      ropeTheta: 1e6,
      qkvBias: true,
      tieWordEmbeddings: true,
      bosTokenId: null,
      eosTokenId: [151643, 151645],
      padTokenId: null,
    }),
  );
});

test('generation_config.json: fixtures, eos lists, unknown keys kept, sampling fields typed', () => {
  const g = readGenerationConfig(fixture('tiny-llama'))!;
  assert.deepEqual([g.bosTokenId, g.eosTokenIds, g.padTokenId, g.doSample, g.temperature], [1, [2], null, null, null]);
  assert.deepEqual(readGenerationConfig(fixture('tiny-gpt2'))!.eosTokenIds, [50256]);
  assert.equal(readGenerationConfig(fixture('tiny-gpt2-rm')), null, 'absent file → null');
  assert.deepEqual(generationConfigToJSON(g), JSON.parse(readFileSync(fixture('tiny-llama', 'generation_config.json'), 'utf8')));
  const q = parseGenerationConfig({ eos_token_id: [151645, 151643], do_sample: true, temperature: 0.7, top_p: 0.8, top_k: 20, repetition_penalty: 1.05, custom: 'x' });
  assert.deepEqual([q.eosTokenIds, q.doSample, q.temperature, q.topP, q.topK, q.repetitionPenalty], [[151645, 151643], true, 0.7, 0.8, 20, 1.05]);
  assert.throws(() => parseGenerationConfig({ top_k: 1.5 }, 'g.json'), /generation config g\.json: "top_k" must be a non-negative integer/);
  assert.throws(() => parseGenerationConfig({ eos_token_id: [1, -2] }), /"eos_token_id" must hold token ids/);
  withTmp((dir) => {
    writeGenerationConfig(dir, { ...q, eosTokenIds: [7], maxNewTokens: 64, temperature: null });
    const back = JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'));
    assert.deepEqual(back.eos_token_id, [7], 'a list stays a list');
    assert.equal(back.max_new_tokens, 64);
    assert.equal(back.custom, 'x');
    assert.equal('temperature' in back, false, 'null removes the setting');
    writeGenerationConfig(dir, g);
    assert.equal(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')).eos_token_id, 2, 'a single id stays a number');
  });
});

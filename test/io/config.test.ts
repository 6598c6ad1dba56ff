// config.json and generation_config.json: every fixture parsed into the right fields, both rope encodings,
// defaults, the refusals (architecture, rope scaling, activation, bad fields), sliding windows, and writing back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SUPPORTED_ARCHITECTURES, checkSequenceLength, configToJSON, parseConfig, readConfig, writeConfig, type Gpt2Config, type LlamaFamilyConfig } from '../../src/io/config.js';
import { generationConfigToJSON, parseGenerationConfig, readGenerationConfig, writeGenerationConfig } from '../../src/io/generation-config.js';
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
      family: 'gpt2',
      modelType: 'gpt2',
      architecture: 'GPT2LMHeadModel',
      task: 'causal-lm',
      vocabSize: 1000,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      headDim: 16,
      maxPositions: 64,
      innerSize: 256,
      layerNormEps: 1e-5,
      activation: 'gelu_tanh',
      activationName: 'gelu_new',
      scaleAttnWeights: true,
      scaleAttnByInverseLayerIdx: false,
      tieWordEmbeddings: true,
      bosTokenId: 50256,
      eosTokenId: 50256,
      padTokenId: null,
      numLabels: 2,
      dtype: 'float32',
    });
  }
});

test('tiny-gpt2-rm config.json → GPT-2 sequence classification, one label, pad id 0', () => {
  const c = readConfig(fixture('tiny-gpt2-rm')) as Gpt2Config;
  assert.equal(c.architecture, 'GPT2ForSequenceClassification');
  assert.equal(c.task, 'sequence-classification');
  assert.equal(c.numLabels, 1);
  assert.equal(c.padTokenId, 0);
  assert.equal(c.hiddenSize, 64);
});

test('tiny-llama config.json → Llama with GQA, rope θ from rope_parameters, untied', () => {
  for (const name of ['tiny-llama', 'tiny-llama-ref']) {
    const c = readConfig(fixture(name));
    assert.deepEqual(fields(c), {
      family: 'llama',
      modelType: 'llama',
      architecture: 'LlamaForCausalLM',
      task: 'causal-lm',
      vocabSize: 1000,
      hiddenSize: 64,
      intermediateSize: 176,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      maxPositions: 64,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      hiddenAct: 'silu',
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      slidingWindow: null,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: null,
      numLabels: 2,
      dtype: 'float32',
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
  const a = parseConfig(llama4()) as LlamaFamilyConfig;
  assert.equal(a.ropeTheta, 500000);
  assert.equal(a.numKvHeads, 6, 'num_key_value_heads defaults to the head count');
  assert.equal(a.headDim, 16, 'head_dim defaults to hidden/heads');
  assert.equal(a.dtype, 'bfloat16');
  assert.equal(a.tieWordEmbeddings, false);
  const { rope_theta: _t, rope_scaling: _s, ...v5base } = llama4();
  const b = parseConfig({ ...v5base, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }) as LlamaFamilyConfig;
  assert.equal(b.ropeTheta, 1e6);
  const c = parseConfig(v5base) as LlamaFamilyConfig;
  assert.equal(c.ropeTheta, 10000, 'no rope key: transformers default 10000');
  assert.equal((parseConfig(llama4({ rope_parameters: { rope_type: 'default', rope_theta: 500000 } })) as LlamaFamilyConfig).ropeTheta, 500000);
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
  assert.equal((parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'gelu' }) as Gpt2Config).activation, 'gelu');
  assert.equal((parseConfig({ ...fixtureJson('tiny-gpt2'), activation_function: 'gelu_pytorch_tanh' }) as Gpt2Config).activation, 'gelu_tanh');
  assert.equal((parseConfig({ ...fixtureJson('tiny-gpt2'), n_inner: 100 }) as Gpt2Config).innerSize, 100);
});

test('Llama attention_bias/mlp_bias, Qwen2 q/k/v biases, Mistral none; eos lists; sequence classification', () => {
  const l = parseConfig(llama4({ attention_bias: true, mlp_bias: true })) as LlamaFamilyConfig;
  assert.deepEqual([l.qkvBias, l.oBias, l.mlpBias], [true, true, true]);
  const q = parseConfig(llama4({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', eos_token_id: [151643, 151645] })) as LlamaFamilyConfig;
  assert.deepEqual([q.modelType, q.qkvBias, q.oBias, q.mlpBias], ['qwen2', true, false, false]);
  assert.deepEqual(q.eosTokenId, [151643, 151645]);
  const m = parseConfig(llama4({ architectures: ['MistralForSequenceClassification'], model_type: 'mistral', num_labels: 1, pad_token_id: 0 })) as LlamaFamilyConfig;
  assert.deepEqual([m.modelType, m.task, m.numLabels, m.padTokenId, m.qkvBias], ['mistral', 'sequence-classification', 1, 0, false]);
  const r = parseConfig(llama4({ architectures: ['LlamaForSequenceClassification'], id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
  assert.equal(r.numLabels, 3);
});

test('sliding windows: Mistral (default 4096, null = off), Qwen2 only with use_sliding_window past max_window_layers', () => {
  const mistral = (extra: Record<string, unknown>) => parseConfig(llama4({ architectures: ['MistralForCausalLM'], model_type: 'mistral', ...extra })) as LlamaFamilyConfig;
  assert.equal(mistral({}).slidingWindow, 4096);
  assert.equal(mistral({ sliding_window: null }).slidingWindow, null);
  const m = mistral({ sliding_window: 32 });
  assert.equal(m.slidingWindow, 32);
  assert.doesNotThrow(() => checkSequenceLength(m, 32));
  assert.throws(() => checkSequenceLength(m, 33), /sequence length 33 exceeds sliding_window 32; sliding-window attention is not implemented/);
  const qwen = (extra: Record<string, unknown>) => parseConfig(llama4({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', sliding_window: 16, ...extra })) as LlamaFamilyConfig;
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
  const v4 = parseConfig(llama4()) as LlamaFamilyConfig;
  const j4 = configToJSON({ ...v4, ropeTheta: 250000, numKvHeads: 2 });
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
  const asRm = configToJSON({ ...rm, architecture: 'GPT2ForSequenceClassification', task: 'sequence-classification', numLabels: 1, padTokenId: 0 });
  assert.deepEqual(asRm.id2label, { 0: 'LABEL_0' });
  assert.deepEqual(asRm.label2id, { LABEL_0: 0 });
  assert.deepEqual(asRm.architectures, ['GPT2ForSequenceClassification']);
  assert.equal(parseConfig(asRm).numLabels, 1);
  assert.throws(() => configToJSON({ ...v4, qkvBias: true }), /one attention_bias flag/);
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

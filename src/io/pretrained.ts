// Hugging Face model directories ↔ alignkit models: config.json + (sharded) safetensors in, the same out.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tensor } from '../engine/tensor.js';
import type { CausalLMConfig } from '../models/config.js';
import { Transformer } from '../models/transformer.js';
import { type SaveOptions, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type ModelConfig, parseConfig } from './config.js';
import type { GenerationConfig } from './generation-config.js';
import { readJsonFile } from './json-file.js';
import { loadAdapter } from './peft.js';

/** The model-level description of a parsed config.json (refusing what the models cannot compute). */
export function toModelConfig(c: ModelConfig): CausalLMConfig {
  if (c.family === 'gpt2') {
    if (c.activation !== 'gelu_tanh' && c.activation !== 'gelu') throw new Error(`GPT-2 activation '${c.activationName}' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu)`);
    if (!c.scaleAttnWeights || c.scaleAttnByInverseLayerIdx) throw new Error('GPT-2 attention scaling other than 1/sqrt(head_dim) is not supported');
    return {
      arch: 'gpt2',
      vocabSize: c.vocabSize,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      numHeads: c.numHeads,
      numKvHeads: c.numHeads,
      headDim: c.headDim,
      intermediateSize: c.innerSize,
      maxPositions: c.maxPositions,
      normEps: c.layerNormEps,
      activation: c.activation === 'gelu' ? 'gelu' : 'gelu_new',
      ropeTheta: 0,
      tieWordEmbeddings: c.tieWordEmbeddings,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      padTokenId: c.padTokenId,
      bosTokenId: c.bosTokenId,
      eosTokenId: c.eosTokenId,
    };
  }
  return {
    arch: 'llama',
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    intermediateSize: c.intermediateSize,
    maxPositions: c.maxPositions,
    normEps: c.rmsNormEps,
    activation: 'silu',
    ropeTheta: c.ropeTheta,
    tieWordEmbeddings: c.tieWordEmbeddings,
    qkvBias: c.qkvBias,
    oBias: c.oBias,
    mlpBias: c.mlpBias,
    padTokenId: c.padTokenId,
    bosTokenId: c.bosTokenId,
    eosTokenId: c.eosTokenId,
  };
}

export interface Pretrained {
  model: Transformer;
  /** config.json as parsed (architecture, task, ids, the raw JSON) */
  hfConfig: ModelConfig;
  generation: GenerationConfig | null;
  /** `score.weight` [numLabels, C] of a *ForSequenceClassification checkpoint (a reward model), else null */
  score: Tensor | null;
}

/**
 * A new model with random weights (transformers' initialisation) from a config.json object, e.g.
 * `newPretrained({ model_type: 'gpt2', vocab_size: 384, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 64 })`:
 * what a model trained from scratch starts as.
 */
export function newPretrained(configJson: Record<string, unknown>, seed = 0): Pretrained {
  const hfConfig = parseConfig(configJson, 'config');
  return { model: Transformer.random(toModelConfig(hfConfig), seed), hfConfig, generation: null, score: null };
}

/**
 * Loads a Hugging Face model directory (config.json + model.safetensors or a sharded index). A PEFT adapter
 * directory (adapter_config.json, no config.json) loads its base model (base_model_name_or_path) with the
 * adapters attached.
 */
export function loadPretrained(dir: string): Pretrained {
  if (!existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'adapter_config.json'))) {
    const raw = readJsonFile(join(dir, 'adapter_config.json'), 'adapter_config.json') as { base_model_name_or_path?: unknown };
    const base = raw.base_model_name_or_path;
    if (typeof base !== 'string' || !base) throw new Error(`${dir}/adapter_config.json: base_model_name_or_path is not set, so the base model is unknown`);
    const baseDir = existsSync(base) ? base : resolve(dir, base);
    if (!existsSync(baseDir)) throw new Error(`${dir}/adapter_config.json: base model ${base} not found`);
    const p = loadPretrained(baseDir);
    loadAdapter(dir, p.model);
    return p;
  }
  const ck = loadCheckpoint(dir);
  const mc = toModelConfig(ck.config);
  // a *ForSequenceClassification checkpoint has a score head and no lm_head, whatever tie_word_embeddings says
  if (ck.config.task === 'sequence-classification') mc.tieWordEmbeddings = true;
  const { model } = Transformer.fromStateDict(mc, ck.weights);
  let score: Tensor | null = null;
  if (ck.config.task === 'sequence-classification') {
    const e = ck.weights.get('score.weight')!; // checkCheckpoint guarantees it
    score = Tensor.param(Tensor.from(e.data, e.shape), 'score.weight');
  }
  return { model, hfConfig: ck.config, generation: ck.generation, score };
}

/**
 * Writes a model as a Hugging Face directory that transformers loads: model.safetensors (sharded past
 * maxShardSize), config.json (the original's keys kept, dtype set to the stored one), generation_config.json.
 * A tokenizer is saved by the caller into the same directory.
 */
export function savePretrained(dir: string, p: Pretrained, opts: SaveOptions = {}): void {
  const weights = p.model.stateDict();
  if (p.score) weights.set('score.weight', { shape: [...p.score.shape], data: p.score.toArray() });
  // transformers writes generation_config.json with every model: derive one from config.json's ids when absent
  const c = p.hfConfig;
  const eos = c.eosTokenId === null ? [] : Array.isArray(c.eosTokenId) ? c.eosTokenId : [c.eosTokenId];
  const generation: GenerationConfig = p.generation ?? {
    bosTokenId: c.bosTokenId,
    eosTokenIds: eos,
    padTokenId: c.padTokenId,
    doSample: null,
    temperature: null,
    topP: null,
    topK: null,
    maxNewTokens: null,
    maxLength: null,
    repetitionPenalty: null,
    raw: {},
  };
  saveCheckpoint(dir, { config: p.hfConfig, weights, generation }, opts);
}

/**
 * Every EOS id a checkpoint names — config.json's, generation_config.json's and the tokenizer's (training appends
 * the tokenizer's, so generation must stop on it even when config.json names another) — and whether the
 * tokenizer's disagrees with the checkpoint's.
 */
export function eosTokenIds(p: Pretrained, tokenizerEos: number | null | undefined): { ids: number[]; mismatch: boolean } {
  const ids = new Set<number>();
  const c = p.hfConfig.eosTokenId;
  for (const id of [...(c === null ? [] : Array.isArray(c) ? c : [c]), ...(p.generation?.eosTokenIds ?? [])]) ids.add(id);
  let mismatch = false;
  if (tokenizerEos !== null && tokenizerEos !== undefined) {
    mismatch = ids.size > 0 && !ids.has(tokenizerEos);
    ids.add(tokenizerEos);
  }
  return { ids: [...ids].filter((id) => id < p.model.config.vocabSize), mismatch };
}

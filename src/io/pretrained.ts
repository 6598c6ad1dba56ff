// Hugging Face model directories ↔ alignkit models: config.json + (sharded) safetensors in, the same out.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tensor } from '../engine/tensor.js';
import { Transformer } from '../models/transformer.js';
import { type SaveOptions, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type HfConfig, parseConfig } from './config.js';
import { type GenerationConfig, idsOnlyGenerationConfig } from './generation-config.js';
import { readJsonFile } from './json-file.js';
import { loadAdapter } from './peft.js';

export interface Pretrained {
  model: Transformer;
  /** config.json as parsed: the network (`hfConfig.model`, what `model` was built from), architecture, task, the raw JSON */
  hfConfig: HfConfig;
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
  return { model: Transformer.random(hfConfig.model, seed), hfConfig, generation: null, score: null };
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
  // a *ForSequenceClassification checkpoint has a score head and no lm_head, whatever tie_word_embeddings says
  const seqCls = ck.config.task === 'sequence-classification';
  const { model } = Transformer.fromStateDict({ ...ck.config.model, ...(seqCls ? { tieWordEmbeddings: true } : {}) }, ck.weights);
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
  const c = p.hfConfig.model;
  const eos = c.eosTokenId == null ? [] : Array.isArray(c.eosTokenId) ? c.eosTokenId : [c.eosTokenId];
  const generation = p.generation ?? idsOnlyGenerationConfig({ bosTokenId: c.bosTokenId ?? null, eosTokenIds: eos, padTokenId: c.padTokenId ?? null });
  saveCheckpoint(dir, { config: p.hfConfig, weights, generation }, opts);
}

/**
 * Every EOS id a checkpoint names — config.json's, generation_config.json's and the tokenizer's (training appends
 * the tokenizer's, so generation must stop on it even when config.json names another) — and whether the
 * tokenizer's disagrees with the checkpoint's.
 */
export function eosTokenIds(p: Pretrained, tokenizerEos: number | null | undefined): { ids: number[]; mismatch: boolean } {
  const ids = new Set<number>();
  const c = p.hfConfig.model.eosTokenId;
  for (const id of [...(c == null ? [] : Array.isArray(c) ? c : [c]), ...(p.generation?.eosTokenIds ?? [])]) ids.add(id);
  let mismatch = false;
  if (tokenizerEos !== null && tokenizerEos !== undefined) {
    mismatch = ids.size > 0 && !ids.has(tokenizerEos);
    ids.add(tokenizerEos);
  }
  return { ids: [...ids].filter((id) => id < p.model.config.vocabSize), mismatch };
}

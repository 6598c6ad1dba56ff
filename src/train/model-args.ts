// The model side of a run: TRL's ModelConfig options (model_name_or_path, tokenizer_name_or_path and the LoRA
// options) as a field table, PEFT's LoraConfig as a trainer input, and the loading every trainer shares — a
// model given as a folder or a loaded Pretrained, a tokenizer given as a folder or a Tokenizer (default: the
// model's folder), and the check that the tokenizer fits the model before anything trains.
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.js';
import { type Pretrained, loadPretrained } from '../io/pretrained.js';
import type { LoraConfig } from '../nn/lora.js';
import type { Transformer } from '../models/transformer.js';
import { type OptionsOf, f } from '../options/fields.js';
import { Tokenizer } from '../tokenizer/index.js';

export const MODEL_FIELDS = {
  model_name_or_path: f.string('', 'the model to train: a Hugging Face model folder (config.json + safetensors) or a PEFT adapter folder', { required: true, metavar: 'DIR' }),
  tokenizer_name_or_path: f.string(null, 'the tokenizer folder (tokenizer.json); default: model_name_or_path', { nullable: true, metavar: 'DIR' }),
  use_peft: f.boolean(false, 'train LoRA adapters instead of every weight'),
  lora_r: f.integer(16, 'LoRA rank', { min: 1 }),
  lora_alpha: f.number(32, 'LoRA α (the update is scaled by α/r)', { min: 0 }),
  lora_dropout: f.number(0.05, 'dropout on the LoRA input', { min: 0, max: 1, exclusiveMax: true }),
  lora_target_modules: f.list(null, 'module names that get adapters; default c_attn (GPT-2), q_proj,v_proj (Llama family)', { nullable: true }),
};

type ModelArgs = OptionsOf<typeof MODEL_FIELDS>;

/** PEFT's LoraConfig (its names), what a trainer takes as `peftConfig`. */
export interface PeftConfig {
  r?: number;
  lora_alpha?: number;
  lora_dropout?: number;
  target_modules?: readonly string[] | null;
}

/** The PeftConfig that ModelConfig options describe (TRL's get_peft_config), or null without use_peft. */
export function peftConfigOf(m: ModelArgs): PeftConfig | null {
  return m.use_peft ? { r: m.lora_r, lora_alpha: m.lora_alpha, lora_dropout: m.lora_dropout, target_modules: m.lora_target_modules } : null;
}

/** PEFT's default LoRA targets for the architectures alignkit runs. */
function defaultLoraTargets(model: Transformer): string[] {
  return model.config.arch === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

/** Adds LoRA adapters (freezing the base) as `peft` describes; returns alignkit's LoraConfig, or null. */
export function applyPeft(model: Transformer, peft: PeftConfig | null | undefined, seed: number): LoraConfig | null {
  if (!peft) return null;
  const config: LoraConfig = { r: peft.r ?? 16, alpha: peft.lora_alpha ?? 32, dropout: peft.lora_dropout ?? 0.05, targetModules: peft.target_modules ?? defaultLoraTargets(model) };
  if (!Number.isInteger(config.r) || config.r < 1) throw new Error(`peftConfig.r must be a positive integer, got ${config.r}`);
  model.addLora(config, seed);
  return config;
}

/** The adapters' tensors under PEFT's names (what checkpoints save as extra state). */
export function adapterTensors(model: Transformer): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, a] of model.adapters) {
    out.set(`base_model.model.${name}.lora_A.weight`, a.A);
    out.set(`base_model.model.${name}.lora_B.weight`, a.B);
  }
  return out;
}

/** A model given as a folder (loaded now; the trainer owns it) or as a loaded Pretrained (the caller owns it). */
export function resolveModel(m: Pretrained | string, what = 'model'): { pretrained: Pretrained; dir: string | null; owned: boolean } {
  if (typeof m === 'string') {
    if (!m) throw new Error(`${what}: give a model folder or a loaded model`);
    return { pretrained: loadPretrained(m), dir: m, owned: true };
  }
  if (!m || typeof m !== 'object' || !m.model) throw new Error(`${what}: expected a model folder or a loaded Pretrained ({ model, hfConfig, ... })`);
  return { pretrained: m, dir: null, owned: false };
}

/** The tokenizer: a Tokenizer, a folder, or (default) the model's folder. */
export function resolveTokenizer(t: Tokenizer | string | null | undefined, modelDir: string | null, who: string): { tokenizer: Tokenizer | null; dir: string | null } {
  if (t instanceof Tokenizer) return { tokenizer: t, dir: null };
  const dir = typeof t === 'string' ? t : modelDir;
  if (dir === null) return { tokenizer: null, dir: null };
  try {
    return { tokenizer: Tokenizer.fromPretrained(dir), dir };
  } catch (e) {
    throw new Error(`${who}: cannot load the tokenizer from ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Refuses a tokenizer whose ids do not fit the model's embedding (before anything trains), naming both files:
 * every id the tokenizer can produce must be < the model's vocab_size.
 */
export function checkTokenizerFits(tokenizer: Tokenizer, model: Transformer, where: { tokenizerDir: string | null; modelDir: string | null }, who: string): void {
  const n = tokenizer.vocabSize,
    V = model.config.vocabSize;
  if (n <= V) return;
  const tf = where.tokenizerDir ? join(where.tokenizerDir, 'tokenizer.json') : 'the tokenizer';
  const mf = where.modelDir ? join(where.modelDir, 'config.json') : 'the model';
  throw new Error(
    `${who}: the tokenizer does not fit the model: ${tf} has ${n} tokens (ids up to ${n - 1}) but ${mf} has vocab_size ${V}. ` +
      'Use the tokenizer the model was trained with (tokenizer_name_or_path), or a model whose embedding covers this tokenizer (see docs/trainers.md, "Tokenizer and model").',
  );
}

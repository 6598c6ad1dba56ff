// What the SFT, reward and DPO entry points share: the options a YAML file or flags give besides the trainer
// config (TRL's ModelConfig names for the model and LoRA, dataset files), strict resolution of all of them at
// once, loading the model and tokenizer, a resumable batch source over tokenised examples, and the final save
// in the Hugging Face layout.
import { type DataReport, formatReport } from '../data/index.js';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EpochSampler, type SamplerState } from '../data/index.js';
import type { Tensor } from '../engine/tensor.js';
import { type Pretrained, loadPretrained, savePretrained } from '../io/pretrained.js';
import { saveAdapter } from '../io/peft.js';
import type { LoraConfig } from '../nn/lora.js';
import type { Transformer } from '../models/transformer.js';
import { Tokenizer } from '../tokenizer/index.js';
import { resolveArgs } from './args.js';
import { MetricsLog } from './metrics-log.js';
import type { BatchSource } from './trainer.js';

/** The model options (TRL's ModelConfig names). */
export interface ModelArgs {
  /** a Hugging Face model directory (config.json + safetensors) */
  model_name_or_path: string;
  /** the tokenizer's directory; default model_name_or_path */
  tokenizer_name_or_path: string | null;
  /** train LoRA adapters instead of every weight */
  use_peft: boolean;
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** module names (or a comma-separated string); default: c_attn for GPT-2, q_proj,v_proj for Llama */
  lora_target_modules: string[] | string | null;
}

export const MODEL_ARGS_DEFAULTS: ModelArgs = {
  model_name_or_path: '',
  tokenizer_name_or_path: null,
  use_peft: false,
  lora_r: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  lora_target_modules: null,
};

/** Where the data is: train_file (+ eval_file), or dataset_path (a file, or a folder with train / test files). */
export interface DataArgs {
  train_file: string | null;
  eval_file: string | null;
  dataset_path: string | null;
  /** skip (and report) invalid records instead of stopping at the first (--skip-invalid) */
  skip_invalid: boolean;
}

export const DATA_ARGS_DEFAULTS: DataArgs = { train_file: null, eval_file: null, dataset_path: null, skip_invalid: false };

/** How data is read: skipInvalid counts and reports bad records instead of stopping at the first. */
export interface DataReadOptions {
  skipInvalid?: boolean;
}

/** Says on stderr what was skipped (nothing is dropped silently). */
export function reportSkipped(r: DataReport): void {
  if (r.skipped > 0 || r.truncated > 0) process.stderr.write(formatReport(r) + '\n');
}

/**
 * resolveArgs for a config whose options in `nullable` may also be null (TRL's Optional[...] options with a
 * non-null default, e.g. max_length: null for no limit); flags may spell null as 'null' or 'None'.
 */
export function resolveNullable<T extends object>(defaults: T, given: Record<string, unknown>, source: string, nullable: readonly string[]): T {
  const g = { ...given };
  const nulls: string[] = [];
  for (const k of nullable) {
    const v = g[k];
    if (v === null || v === 'null' || v === 'None') {
      nulls.push(k);
      delete g[k];
    }
  }
  const out = resolveArgs(defaults, g, source) as Record<string, unknown>;
  for (const k of nulls) out[k] = null;
  return out as T;
}

/**
 * Splits a run config (a plain object from YAML or flags) into the model options, the data options, `extra`
 * options and the trainer config (resolved by `resolveTrainer`, which is strict: an unknown key or a wrong type is
 * an error naming it and `source`).
 */
export function resolveRunConfig<C extends object, X extends object = Record<string, never>>(
  given: Record<string, unknown>,
  source: string,
  resolveTrainer: (given: Record<string, unknown>, source: string) => C,
  extraDefaults?: X,
): { config: C; model: ModelArgs; data: DataArgs; extra: X } {
  const own = { ...MODEL_ARGS_DEFAULTS, ...DATA_ARGS_DEFAULTS, ...(extraDefaults ?? {}) } as ModelArgs & DataArgs & X;
  const mine: Record<string, unknown> = {}, rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) (k in own ? mine : rest)[k] = v;
  const all = resolveArgs(own, mine, source);
  const config = resolveTrainer(rest, source);
  const pick = <T extends object>(d: T): T => Object.fromEntries(Object.keys(d).map((k) => [k, (all as Record<string, unknown>)[k]])) as T;
  const model = pick(MODEL_ARGS_DEFAULTS);
  const data = pick(DATA_ARGS_DEFAULTS);
  const extra = pick((extraDefaults ?? {}) as X);
  if (!model.model_name_or_path) throw new Error(`${source}: model_name_or_path is required (a Hugging Face model directory)`);
  const m = model as unknown as Record<string, unknown>;
  checkNumber(m, 'lora_r', { integer: true, min: 1 }, source);
  checkNumber(m, 'lora_alpha', { min: 0 }, source);
  checkNumber(m, 'lora_dropout', { min: 0, max: 1 }, source);
  checkNullableString(m, 'tokenizer_name_or_path', source);
  for (const k of ['train_file', 'eval_file', 'dataset_path']) checkNullableString(data as unknown as Record<string, unknown>, k, source);
  return { config, model, data, extra };
}

/**
 * Checks (and converts from a flag's string) an option that is a number or null: `integer`, `min`, `max`,
 * `nullable`. Writes the converted value back into `cfg`.
 */
export function checkNumber(
  cfg: Record<string, unknown>,
  key: string,
  o: { integer?: boolean; min?: number; max?: number; nullable?: boolean; exclusiveMin?: boolean },
  source = 'config',
): void {
  let v = cfg[key];
  if (v === null || v === undefined) {
    if (o.nullable) {
      cfg[key] = null;
      return;
    }
    throw new Error(`${source}: option '${key}' must be a number, got ${String(v)}`);
  }
  if (typeof v === 'string' && o.nullable && (v === 'null' || v === 'None' || v === '')) {
    cfg[key] = null;
    return;
  }
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
  const what = `${o.integer ? 'an integer' : 'a number'}${o.min !== undefined ? ` ${o.exclusiveMin ? '>' : '>='} ${o.min}` : ''}${o.max !== undefined ? ` <= ${o.max}` : ''}${o.nullable ? ' (or null)' : ''}`;
  if (typeof v !== 'number' || !Number.isFinite(v) || (o.integer && !Number.isInteger(v))) throw new Error(`${source}: option '${key}' must be ${what}, got ${JSON.stringify(cfg[key])}`);
  if (o.min !== undefined && (o.exclusiveMin ? v <= o.min : v < o.min)) throw new Error(`${source}: option '${key}' must be ${what}, got ${v}`);
  if (o.max !== undefined && v > o.max) throw new Error(`${source}: option '${key}' must be ${what}, got ${v}`);
  cfg[key] = v;
}

/** A boolean-or-null option (flags give 'true' / 'false' / 'null'). */
export function checkNullableBool(cfg: Record<string, unknown>, key: string, source = 'config'): void {
  const v = cfg[key];
  if (v === null || v === undefined || v === 'null' || v === 'None') cfg[key] = null;
  else if (v === true || v === 'true') cfg[key] = true;
  else if (v === false || v === 'false') cfg[key] = false;
  else throw new Error(`${source}: option '${key}' must be true, false or null, got ${JSON.stringify(v)}`);
}

export function checkNullableString(cfg: Record<string, unknown>, key: string, source = 'config'): void {
  const v = cfg[key];
  if (v === undefined || v === null || v === '') cfg[key] = null;
  else if (typeof v !== 'string') throw new Error(`${source}: option '${key}' must be a string (or null), got ${JSON.stringify(v)}`);
}

/** One of a fixed set of strings. */
export function checkChoice(cfg: Record<string, unknown>, key: string, choices: readonly string[], source = 'config'): void {
  const v = cfg[key];
  if (typeof v !== 'string' || !choices.includes(v)) throw new Error(`${source}: option '${key}' must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
}

/** Checks the TrainingArguments numbers every trainer relies on. */
export function checkTrainingArgs(cfg: Record<string, unknown>, source = 'config'): void {
  checkNumber(cfg, 'learning_rate', { min: 0 }, source);
  for (const k of ['per_device_train_batch_size', 'per_device_eval_batch_size', 'gradient_accumulation_steps', 'logging_steps', 'eval_steps'])
    checkNumber(cfg, k, { integer: true, min: 1 }, source);
  checkNumber(cfg, 'num_train_epochs', { min: 0 }, source);
  checkNumber(cfg, 'max_steps', { integer: true }, source);
  checkNumber(cfg, 'save_steps', { integer: true, min: 0 }, source);
  checkNumber(cfg, 'save_total_limit', { integer: true, min: 0 }, source);
  checkNumber(cfg, 'warmup_steps', { integer: true, min: 0 }, source);
  checkNumber(cfg, 'warmup_ratio', { min: 0, max: 1 }, source);
  checkNumber(cfg, 'seed', { integer: true }, source);
  checkChoice(cfg, 'lr_scheduler_type', ['linear', 'cosine', 'constant', 'constant_with_warmup'], source);
  checkChoice(cfg, 'eval_strategy', ['no', 'steps'], source);
  if (!cfg.output_dir || typeof cfg.output_dir !== 'string') throw new Error(`${source}: output_dir must be a folder path`);
}

/** The train and eval files from train_file / eval_file or dataset_path. */
export function dataFiles(d: DataArgs, source = 'config'): { train: string; eval: string | null } {
  if (d.train_file) {
    if (d.dataset_path) throw new Error(`${source}: give either train_file (and eval_file) or dataset_path, not both`);
    return { train: d.train_file, eval: d.eval_file };
  }
  const p = d.dataset_path;
  if (!p) throw new Error(`${source}: no training data: set train_file (a .jsonl or .json file) or dataset_path`);
  if (!existsSync(p)) throw new Error(`${source}: dataset_path ${p} does not exist`);
  if (!statSync(p).isDirectory()) return { train: p, eval: d.eval_file };
  const find = (names: string[]): string | null => {
    for (const n of names) for (const ext of ['jsonl', 'json']) if (existsSync(join(p, `${n}.${ext}`))) return join(p, `${n}.${ext}`);
    return null;
  };
  const train = find(['train']);
  if (!train) throw new Error(`${source}: dataset_path ${p} has no train.jsonl or train.json`);
  return { train, eval: d.eval_file ?? find(['test', 'eval', 'validation']) };
}

/** Loads the model (Hugging Face directory) and its tokenizer. */
export function loadModelAndTokenizer(m: ModelArgs): { pretrained: Pretrained; tokenizer: Tokenizer } {
  const pretrained = loadPretrained(m.model_name_or_path);
  const tokenizer = Tokenizer.fromPretrained(m.tokenizer_name_or_path ?? m.model_name_or_path);
  return { pretrained, tokenizer };
}

/**
 * Sets the dropout seed of a forward pass from the trainer's RNG (which checkpoints save): masks are a function
 * of this seed and the adapter alone, so a resumed run draws the same masks as an uninterrupted one.
 */
export function seedDropout(model: Transformer, seed: number): void {
  model.dropoutSeed = seed;
}

/** PEFT's default LoRA targets for the architectures alignkit runs. */
export function defaultLoraTargets(model: Transformer): string[] {
  return model.config.arch === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

/** Adds LoRA adapters when use_peft is set (freezing the base); returns their config and tensors by PEFT name, or null. */
export function applyLora(model: Transformer, m: ModelArgs, seed: number): { config: LoraConfig; tensors: Map<string, Tensor> } | null {
  if (!m.use_peft) return null;
  let targets = m.lora_target_modules;
  if (typeof targets === 'string') targets = targets.split(',').map((s) => s.trim()).filter(Boolean);
  if (targets !== null && (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))) throw new Error(`lora_target_modules must be a list of module names`);
  const config: LoraConfig = { r: m.lora_r, alpha: m.lora_alpha, dropout: m.lora_dropout, targetModules: targets ?? defaultLoraTargets(model) };
  model.addLora(config, seed);
  return { config, tensors: adapterTensors(model) };
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

/**
 * The final save into output_dir: the model in the Hugging Face layout (or, with LoRA and `adapterOnly`, the
 * adapter in PEFT's layout, as TRL saves a PEFT model) and the tokenizer.
 */
export function saveFinal(dir: string, p: Pretrained, tokenizer: Tokenizer | null, lora: { config: LoraConfig; base: string } | null, adapterOnly = true): void {
  if (lora && adapterOnly) saveAdapter(dir, p.model, lora.config, lora.base);
  else savePretrained(dir, p);
  tokenizer?.save(dir);
}

/** A batch source in a seeded, resumable order over tokenised examples (the data layer's EpochSampler). */
export class ExampleBatches<E, B> implements BatchSource<B> {
  readonly sampler: EpochSampler;
  /** the last batch of an epoch was handed out: the next call reports the epoch's end */
  private atEnd = false;

  constructor(
    readonly examples: readonly E[],
    private readonly collate: (examples: E[], indices: Int32Array) => B,
    opts: { batchSize: number; seed: number; shuffle?: boolean },
  ) {
    this.sampler = new EpochSampler(examples.length, { batchSize: opts.batchSize, seed: opts.seed, shuffle: opts.shuffle ?? true });
  }

  get length(): number {
    return this.sampler.batchesPerEpoch;
  }

  next(): B | null {
    if (this.atEnd) {
      this.atEnd = false;
      return null;
    }
    const { indices } = this.sampler.next();
    if (this.sampler.index === 0) this.atEnd = true;
    return this.collate(Array.from(indices, (i) => this.examples[i]!), indices);
  }

  getState(): { index: number; atEnd: boolean; sampler: SamplerState } {
    return { index: this.atEnd ? this.length : this.sampler.index, atEnd: this.atEnd, sampler: this.sampler.state() };
  }

  setState(state: unknown): void {
    const s = state as { atEnd?: unknown; sampler?: SamplerState } | null;
    if (!s || typeof s !== 'object' || !s.sampler) throw new Error('checkpoint data_state is not a batch position');
    this.sampler.restore(s.sampler);
    this.atEnd = s.atEnd === true;
  }
}

/** Consecutive batches of a dataset in order (evaluation, precomputation). */
export function* inOrder<E>(examples: readonly E[], batchSize: number): Generator<{ batch: E[]; indices: Int32Array }> {
  for (let s = 0; s < examples.length; s += batchSize) {
    const e = Math.min(examples.length, s + batchSize);
    yield { batch: examples.slice(s, e), indices: Int32Array.from({ length: e - s }, (_, k) => s + k) };
  }
}

/** Appends one record (e.g. the final eval metrics) to output_dir/metrics.jsonl. */
export function logMetrics(outputDir: string, record: Record<string, number>): void {
  const log = new MetricsLog(join(outputDir, 'metrics.jsonl'), 0, 'metrics', true, false);
  log.write(record);
  log.close();
}

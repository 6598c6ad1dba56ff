// The options every trainer shares, under transformers' TrainingArguments names and defaults (snake_case, as
// they appear in TRL configs, YAML files and on the command line), as one field table. Each trainer's config
// table spreads this one and overrides the defaults TRL overrides.
import { type OptionsOf, f } from '../options/fields.js';

export const TRAINING_FIELDS = {
  output_dir: f.string('runs/alignkit', 'where checkpoints, metrics.jsonl and the final model go', { metavar: 'DIR' }),
  overwrite_output_dir: f.boolean(false, 'allow a non-empty output_dir: its metrics.jsonl and checkpoints are removed first'),
  learning_rate: f.number(5e-5, 'peak learning rate of AdamW', { min: 0 }),
  per_device_train_batch_size: f.integer(8, 'examples per micro-batch', { min: 1 }),
  per_device_eval_batch_size: f.integer(8, 'examples per evaluation batch', { min: 1 }),
  gradient_accumulation_steps: f.integer(1, 'micro-batches per optimiser step', { min: 1 }),
  num_train_epochs: f.number(3, 'passes over the training data (fractions allowed)', { min: 0 }),
  max_steps: f.integer(-1, 'optimiser steps in all; > 0 overrides num_train_epochs', { min: -1 }),
  lr_scheduler_type: f.choice(['linear', 'cosine', 'constant', 'constant_with_warmup'], 'linear', 'learning-rate schedule after warm-up'),
  warmup_steps: f.integer(0, 'linear warm-up steps (overrides warmup_ratio)', { min: 0 }),
  warmup_ratio: f.number(0, 'warm-up as a fraction of all steps', { min: 0, max: 1 }),
  weight_decay: f.number(0, 'AdamW decoupled weight decay', { min: 0 }),
  adam_beta1: f.number(0.9, 'AdamW β1', { min: 0, max: 1, exclusiveMax: true }),
  adam_beta2: f.number(0.999, 'AdamW β2', { min: 0, max: 1, exclusiveMax: true }),
  adam_epsilon: f.number(1e-8, 'AdamW ε', { min: 0, exclusiveMin: true }),
  max_grad_norm: f.number(1, 'clip the global gradient norm to this (0: no clipping)', { min: 0 }),
  logging_steps: f.integer(10, 'write a metrics record every this many steps', { min: 1 }),
  save_steps: f.integer(500, 'write a checkpoint every this many steps, and one at the end (0: none)', { min: 0 }),
  save_total_limit: f.integer(3, 'keep at most this many checkpoints, oldest removed (0: keep all)', { min: 0 }),
  eval_strategy: f.choice(['no', 'steps'], 'no', "evaluate every eval_steps ('steps') or only at the end"),
  eval_steps: f.integer(500, 'steps between evaluations with eval_strategy steps', { min: 1 }),
  seed: f.integer(42, 'seed of initialisation, data order, dropout and sampling', { min: 0 }),
  resume_from_checkpoint: f.pathOrBool(false, 'true: continue from the newest checkpoint in output_dir; a path: from that checkpoint'),
  disable_tqdm: f.boolean(false, 'no progress bar (a line every few seconds instead)'),
  bf16: f.boolean(false, 'bf16 mixed precision: matrix products take bf16 inputs with fp32 accumulation (AVX512_BF16), weights and AdamW stay fp32'),
};

export type TrainingArgs = OptionsOf<typeof TRAINING_FIELDS>;

/** Options that may differ between a run and the checkpoint it resumes (they do not change the numbers). */
export const RUN_CONTROL_OPTIONS: ReadonlySet<string> = new Set([
  'output_dir',
  'overwrite_output_dir',
  'resume_from_checkpoint',
  'logging_steps',
  'save_steps',
  'save_total_limit',
  'eval_strategy',
  'eval_steps',
  'per_device_eval_batch_size',
  'disable_tqdm',
]);

/** TRL / transformers options that alignkit does not implement: refused by name with the reason. */
export const NOT_IMPLEMENTED: Readonly<Record<string, string>> = Object.fromEntries(
  [
    ['fp16', 'alignkit trains in float32 (bf16 mixed precision where the CPU has AVX512_BF16)'],
    ['gradient_checkpointing', 'activations are kept; use smaller batches or max_length'],
    ['deepspeed', 'alignkit runs on one machine'],
    ['fsdp', 'alignkit runs on one machine'],
    ['report_to', 'metrics go to <output_dir>/metrics.jsonl'],
    ['push_to_hub', 'alignkit works offline; copy output_dir yourself'],
    ['hub_model_id', 'alignkit works offline'],
    ['optim', 'alignkit uses AdamW (torch semantics)'],
    ['save_strategy', 'checkpoints are written every save_steps (0: none) and at the end'],
    ['logging_strategy', 'records are written every logging_steps'],
    ['dataloader_num_workers', 'data is read in the training process'],
    ['model_init_kwargs', 'models load in float32 from the folder as they are'],
    ['rpo_alpha', 'not implemented'],
    ['sync_ref_model', 'not implemented'],
    ['use_weighting', 'not implemented'],
    ['padding_free', 'not implemented'],
    ['packing_strategy', "alignkit packs with the 'wrapped' strategy only"],
    ['reward_weights', 'not implemented: give one reward function or one reward model'],
    ['use_vllm', 'generation runs on alignkit’s own engine'],
  ].map(([k, why]) => [k!, `TRL's ${k} is not implemented by alignkit: ${why}`]),
);

// Training arguments shared by every trainer, under transformers' TrainingArguments names and defaults
// (snake_case, as they appear in TRL configs, YAML files and on the command line).

export interface TrainingArgs {
  output_dir: string;
  learning_rate: number;
  per_device_train_batch_size: number;
  per_device_eval_batch_size: number;
  gradient_accumulation_steps: number;
  num_train_epochs: number;
  /** > 0 overrides num_train_epochs */
  max_steps: number;
  lr_scheduler_type: 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';
  warmup_steps: number;
  warmup_ratio: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  max_grad_norm: number;
  logging_steps: number;
  save_steps: number;
  /** keep at most this many checkpoints (oldest removed); 0 = keep all */
  save_total_limit: number;
  eval_strategy: 'no' | 'steps';
  eval_steps: number;
  seed: number;
  /** true: the newest complete checkpoint in output_dir; a path: that checkpoint */
  resume_from_checkpoint: boolean | string;
  /** print a progress bar (else a line every logging_steps) */
  disable_tqdm: boolean;
}

export const TRAINING_DEFAULTS: TrainingArgs = {
  output_dir: 'runs/alignkit',
  learning_rate: 5e-5,
  per_device_train_batch_size: 8,
  per_device_eval_batch_size: 8,
  gradient_accumulation_steps: 1,
  num_train_epochs: 3,
  max_steps: -1,
  lr_scheduler_type: 'linear',
  warmup_steps: 0,
  warmup_ratio: 0,
  weight_decay: 0,
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  max_grad_norm: 1,
  logging_steps: 10,
  save_steps: 500,
  save_total_limit: 0,
  eval_strategy: 'no',
  eval_steps: 500,
  seed: 42,
  resume_from_checkpoint: false,
  disable_tqdm: false,
};

/** Options that are either a boolean or a path. */
const PATH_OR_BOOL = new Set(['resume_from_checkpoint']);

/**
 * Fills defaults and checks every key: an unknown key or a value of the wrong type is an error naming it
 * (and `source`, e.g. the YAML file), so a typo never silently trains with a default.
 */
export function resolveArgs<T extends object>(defaults: T, given: Record<string, unknown>, source = 'config'): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined) continue;
    if (!(k in defaults)) {
      const near = Object.keys(defaults).filter((d) => d.includes(k) || k.includes(d)).slice(0, 3);
      throw new Error(`${source}: unknown option '${k}'${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`);
    }
    const d = (defaults as Record<string, unknown>)[k];
    if (typeof d === 'boolean' && typeof v === 'string') {
      if (v === 'true' || v === 'false') out[k] = v === 'true';
      else if (PATH_OR_BOOL.has(k)) out[k] = v;
      else throw new Error(`${source}: option '${k}' must be true or false, got ${JSON.stringify(v)}`);
      continue;
    }
    if (d !== null && d !== undefined && typeof d !== typeof v) {
      if (typeof d === 'number' && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) {
        out[k] = Number(v);
        continue;
      }
      throw new Error(`${source}: option '${k}' must be a ${typeof d}, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out as T;
}

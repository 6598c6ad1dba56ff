// A whole training run from one flat config — what a YAML file and command-line flags give, under TRL's names:
// ModelConfig (model, tokenizer, LoRA), the data options (alignkit's and TRL's), a few per-trainer extras
// (reference / reward model folders) and the trainer's own config. One table per trainer lists them all; the
// run checks every key against it, builds the trainer, trains (resuming when asked), saves the final model and
// returns the metrics.
import { existsSync } from 'node:fs';
import { listCheckpoints } from './checkpoint.js';
import { type ConfigSpec, type FieldTable, type Locate, OptionError, type OptionsOf, f, nearNames, resolveOptions, splitByTable } from '../options/fields.js';
import { NOT_IMPLEMENTED } from './args.js';
import { DATA_FIELDS, DATA_REFUSED, dataSources } from './data-args.js';
import { DPOConfig, DPOTrainer } from './dpo.js';
import { GRPOConfig, GRPOTrainer } from './grpo.js';
import type { TrainOptions, TrainOutput } from './loop.js';
import { MODEL_FIELDS, peftConfigOf } from './model-args.js';
import { PPOConfig, PPOTrainer } from './ppo.js';
import { RewardConfig, RewardTrainer } from './reward.js';
import { RLOOConfig, RLOOTrainer } from './rloo.js';
import { SFTConfig, SFTTrainer } from './sft.js';
import type { OnlineInputs } from './rl/online-trainer.js';
import type { ScoreFunction } from './rl/scorer.js';

const REF_FIELD = {
  ref_model_name_or_path: f.string(null, 'a separate frozen reference model folder; default: the policy with LoRA adapters off, else a frozen copy of the initial policy', {
    nullable: true,
    metavar: 'DIR',
  }),
};

const ONLINE_FIELDS = {
  ...REF_FIELD,
  reward_model_path: f.string(null, 'a reward model folder (*ForSequenceClassification with one label)', { nullable: true, metavar: 'DIR' }),
  reward_funcs: f.value<ScoreFunction | string | null>(
    null,
    'instead of a reward model: the path of an ES module whose default export (or `score`) scores (prompts, responses)',
    (v) => {
      if (typeof v === 'function' || typeof v === 'string') return v as ScoreFunction | string;
      throw new Error(`must be a module path or a function, got ${JSON.stringify(v)}`);
    },
    { nullable: true, metavar: 'FILE' },
  ),
  max_prompt_length: f.integer(null, 'prompts longer than this keep their first tokens; null: no limit', { min: 1, nullable: true }),
};

export type TrainerKind = 'sft' | 'reward' | 'dpo' | 'ppo' | 'rloo' | 'grpo';

interface Entry {
  spec: ConfigSpec<FieldTable>;
  extras: FieldTable;
  summary: string;
}

/** Each trainer's config class, its extra run options, and a line of help. */
export const TRAINERS: Record<TrainerKind, Entry> = {
  sft: { spec: SFTConfig as unknown as ConfigSpec<FieldTable>, extras: {}, summary: 'supervised fine-tuning on demonstrations (SFTConfig)' },
  reward: { spec: RewardConfig as unknown as ConfigSpec<FieldTable>, extras: {}, summary: 'a Bradley–Terry reward model on preference pairs (RewardConfig)' },
  dpo: { spec: DPOConfig as unknown as ConfigSpec<FieldTable>, extras: REF_FIELD, summary: 'DPO / IPO / hinge / robust on preference pairs (DPOConfig)' },
  ppo: { spec: PPOConfig as unknown as ConfigSpec<FieldTable>, extras: ONLINE_FIELDS, summary: 'PPO with a value head against a reward model or function (PPOConfig)' },
  rloo: { spec: RLOOConfig as unknown as ConfigSpec<FieldTable>, extras: ONLINE_FIELDS, summary: 'RLOO, the leave-one-out baseline (RLOOConfig)' },
  grpo: { spec: GRPOConfig as unknown as ConfigSpec<FieldTable>, extras: ONLINE_FIELDS, summary: 'GRPO, group-normalised advantages (GRPOConfig)' },
};

/** Every option a run of `kind` takes: model, data, extras, then the trainer's config. */
export function runFields(kind: TrainerKind): FieldTable {
  const e = TRAINERS[kind];
  return { ...MODEL_FIELDS, ...DATA_FIELDS, ...e.extras, ...e.spec.fields };
}

interface RunOptions extends TrainOptions {
  /** names the place of a key in errors (e.g. `dpo.yaml:7: beta`); default `<kind> config: key` */
  locate?: Locate;
}

/** What a run returns: where the model went and the final metrics. */
export interface RunResult extends TrainOutput {
  output_dir: string;
}

/**
 * Checks a flat run config of `kind` — unknown keys, TRL options alignkit does not implement, wrong types and
 * ranges, cross-field rules — and splits it into the run options and the trainer's config.
 */
function checkRunConfig(kind: TrainerKind, config: Readonly<Record<string, unknown>>, locate: Locate = (k) => `${kind} config: ${k}`) {
  const entry = TRAINERS[kind];
  if (!entry) throw new Error(`unknown trainer '${kind}' (${Object.keys(TRAINERS).join(', ')})`);
  const all = runFields(kind);
  const refused = { ...DATA_REFUSED, ...NOT_IMPLEMENTED };
  for (const k of Object.keys(config)) {
    if (k in all || config[k] === undefined) continue;
    if (refused[k]) throw new OptionError(`${locate(k)}: ${refused[k]}`);
    const near = nearNames(k, Object.keys(all));
    throw new OptionError(`${locate(k)}: unknown option${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`);
  }
  const own = { ...MODEL_FIELDS, ...DATA_FIELDS, ...entry.extras };
  const [mine, rest] = splitByTable(config, own);
  const o = resolveOptions(own, mine, `${kind} config`, { locate, refused: DATA_REFUSED }) as OptionsOf<typeof MODEL_FIELDS> & OptionsOf<typeof DATA_FIELDS> & Record<string, unknown>;
  const args = entry.spec.resolve(rest, { locate, source: `${kind} config` });
  return { options: o, args };
}

/**
 * Runs `kind` on a flat config: checks every key (checkRunConfig), builds the trainer, trains, saves the final
 * model into output_dir, disposes the trainer.
 */
export async function runTraining(kind: TrainerKind, config: Readonly<Record<string, unknown>>, opts: RunOptions = {}): Promise<RunResult> {
  const locate = opts.locate ?? ((k: string) => `${kind} config: ${k}`);
  const { options: o, args } = checkRunConfig(kind, config, locate);
  const data = dataSources(o, kind);
  const common = {
    model: o.model_name_or_path,
    processingClass: o.tokenizer_name_or_path ?? undefined,
    peftConfig: peftConfigOf(o),
    skipInvalid: o.skip_invalid,
  };
  const ref = (o.ref_model_name_or_path as string | null | undefined) ?? undefined;
  let trainer: SFTTrainer | RewardTrainer | DPOTrainer | PPOTrainer | RLOOTrainer | GRPOTrainer;
  switch (kind) {
    case 'sft':
      trainer = new SFTTrainer({ ...common, args, trainDataset: data.train, evalDataset: data.eval });
      break;
    case 'reward':
      trainer = new RewardTrainer({ ...common, args, trainDataset: data.train, evalDataset: data.eval });
      break;
    case 'dpo':
      trainer = new DPOTrainer({ ...common, args, refModel: ref, trainDataset: data.train, evalDataset: data.eval });
      break;
    default: {
      if (data.eval) throw new OptionError(`${locate('eval_file')}: the online trainers take no eval data`);
      const inputs: OnlineInputs<Record<string, unknown>> = {
        ...common,
        args,
        trainDataset: data.train,
        refModel: ref,
        rewardModel: (o.reward_model_path as string | null) ?? undefined,
        rewardFuncs: (o.reward_funcs as ScoreFunction | string | null) ?? undefined,
        maxPromptLength: o.max_prompt_length as number | null,
      };
      if (!inputs.rewardModel && !inputs.rewardFuncs) throw new OptionError(`${kind} config: a reward_model_path or reward_funcs is required`);
      trainer = kind === 'ppo' ? new PPOTrainer(inputs) : kind === 'rloo' ? new RLOOTrainer(inputs) : new GRPOTrainer(inputs);
    }
  }
  try {
    const out = await trainer.train(opts);
    trainer.saveModel();
    return { ...out, output_dir: trainer.args.output_dir };
  } finally {
    trainer.dispose();
  }
}

/**
 * One training stage of a multi-stage run (a recipe, an RLHF round) into its own folder: resumes from the folder's
 * newest checkpoint when it has one (the stage was interrupted), else starts over in it (overwrite_output_dir).
 */
export async function runStage(kind: TrainerKind, outputDir: string, config: Readonly<Record<string, unknown>>, opts: RunOptions = {}): Promise<RunResult> {
  const resume = existsSync(outputDir) && listCheckpoints(outputDir).length > 0;
  return runTraining(kind, { ...config, output_dir: outputDir, ...(resume ? { resume_from_checkpoint: true } : { overwrite_output_dir: true }) }, opts);
}

/** Keys a multi-stage run (a recipe, the RLHF loop) sets for each training stage: its model, data and output follow from the stages before it. */
const SET_BY_RUN: readonly string[] = [
  'model_name_or_path',
  'train_file',
  'eval_file',
  'dataset_path',
  'dataset_name',
  'datasets',
  'output_dir',
  'reward_model_path',
  'reward_funcs',
  'resume_from_checkpoint',
  'overwrite_output_dir',
];

/** Parses a stage's trainer options (a YAML/JSON mapping of option: value; absent is empty). */
export function stageMapping(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error('must be a mapping of option: value');
  return v as Record<string, unknown>;
}

/** Checks one stage's trainer options before anything runs (a typo must not surface an hour in); `who` sets the keys of SET_BY_RUN. */
export function checkStageConfig(kind: TrainerKind, m: Readonly<Record<string, unknown>>, at: Locate, who: string): void {
  for (const k of SET_BY_RUN) if (k in m) throw new Error(`${at(k)}: set by ${who}`);
  checkRunConfig(kind, { ...m, model_name_or_path: 'x', train_file: 'x', ...(kind === 'ppo' ? { reward_model_path: 'x' } : {}) }, at);
}

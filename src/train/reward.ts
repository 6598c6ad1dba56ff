// Reward modelling (TRL's RewardTrainer): a transformer with a `score.weight` [1, C] head read at the last
// non-pad token (transformers' *ForSequenceClassification layout, so transformers loads the result), trained on
// preference pairs with the Bradley–Terry loss (optional per-pair `margin` column, center_rewards_coefficient).
// Starting from a causal LM, the score head is initialised as transformers initialises a new Linear:
// N(0, initializer_range²) (0.02 when the config has none), and the LM head is dropped. Metrics under TRL's
// names: loss, accuracy, margin, mean_reward, min_reward, max_reward, num_tokens. `runReward` is the
// command-line entry.
import { type PreferenceBatch, type PreferenceExample, collatePreference, loadPreferenceDataset, padTokenId, readRecords } from '../data/index.js';
import { Random } from '../engine/random.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import type { Architecture, ModelConfig } from '../io/config.js';
import { type Pretrained, loadPretrained } from '../io/pretrained.js';
import { lastTokenIndex, sequenceScore } from '../models/heads.js';
import { Transformer } from '../models/transformer.js';
import { Tokenizer } from '../tokenizer/index.js';
import { TRAINING_DEFAULTS, type TrainingArgs } from './args.js';
import { bradleyTerryLoss } from './bradley-terry.js';
import {
  ExampleBatches, applyLora, seedDropout, checkNumber, checkTrainingArgs, dataFiles, inOrder, logMetrics, resolveNullable, resolveRunConfig, saveFinal,
  type DataReadOptions,
  reportSkipped,
} from './setup.js';
import type { RunOptions, RunResult } from './sft.js';
import { type BatchSource, type LossResult, SupervisedTrainer } from './trainer.js';

export interface RewardConfig extends TrainingArgs {
  /** tokens of prompt + completion (longer ones keep their start); null: no limit */
  max_length: number | null;
  /** weight of the mean-zero reward term c·mean((r_c + r_r)²); null: off (recommended 0.01) */
  center_rewards_coefficient: number | null;
  /** train without dropout (only LoRA adapters have dropout here) */
  disable_dropout: boolean;
  /** pad every batch to a multiple of this many tokens; null: to the longest row */
  pad_to_multiple_of: number | null;
}

/** TRL's RewardConfig defaults (learning_rate 1e-4, logging_steps 10, max_length 1024) over TrainingArguments'. */
export const REWARD_DEFAULTS: RewardConfig = {
  ...TRAINING_DEFAULTS,
  learning_rate: 1e-4,
  logging_steps: 10,
  max_length: 1024,
  center_rewards_coefficient: null,
  disable_dropout: true,
  pad_to_multiple_of: null,
};

const NULLABLE = ['max_length', 'center_rewards_coefficient', 'pad_to_multiple_of'] as const;

export function resolveRewardConfig(given: Record<string, unknown>, source = 'config'): RewardConfig {
  const c = resolveNullable(REWARD_DEFAULTS, given, source, NULLABLE);
  const r = c as unknown as Record<string, unknown>;
  checkTrainingArgs(r, source);
  checkNumber(r, 'max_length', { integer: true, min: 1, nullable: true }, source);
  checkNumber(r, 'center_rewards_coefficient', { min: 0, nullable: true }, source);
  checkNumber(r, 'pad_to_multiple_of', { integer: true, min: 1, nullable: true }, source);
  return c;
}

const SEQ_CLS: Record<string, Architecture> = {
  GPT2LMHeadModel: 'GPT2ForSequenceClassification',
  LlamaForCausalLM: 'LlamaForSequenceClassification',
  MistralForCausalLM: 'MistralForSequenceClassification',
  Qwen2ForCausalLM: 'Qwen2ForSequenceClassification',
};

/** The same transformer without an LM head (a sequence classifier has none): lm_head.weight is dropped. */
function withoutLmHead(model: Transformer): Transformer {
  if (model.config.tieWordEmbeddings) return model;
  const m = new Transformer({ ...model.config, tieWordEmbeddings: true });
  for (const [n, t] of model.params) {
    if (n === 'lm_head.weight') t.dispose();
    else m.params.set(n, t);
  }
  return m;
}

/**
 * A reward model from a causal LM (Pretrained with score null): the config becomes the architecture's
 * *ForSequenceClassification with num_labels 1 and a pad_token_id (transformers needs one to find the last
 * token), the LM head goes, and `score.weight` [1, C] ~ N(0, initializer_range²) is drawn from `seed`.
 * A Pretrained that already has a score head (a reward model) is returned as it is (num_labels must be 1).
 */
export function toRewardModel(p: Pretrained, opts: { seed?: number; padTokenId: number }): Pretrained {
  if (p.score) {
    if (p.score.shape[0] !== 1) throw new Error(`a reward model needs one output (num_labels 1), ${p.hfConfig.architecture} has ${p.score.shape[0]}`);
    if (p.hfConfig.padTokenId === null) return { ...p, hfConfig: { ...p.hfConfig, padTokenId: opts.padTokenId } };
    return p;
  }
  const arch = SEQ_CLS[p.hfConfig.architecture];
  if (!arch) throw new Error(`cannot make a reward model from ${p.hfConfig.architecture}`);
  const hfConfig: ModelConfig = {
    ...p.hfConfig,
    architecture: arch,
    task: 'sequence-classification',
    numLabels: 1,
    padTokenId: p.hfConfig.padTokenId ?? opts.padTokenId,
    raw: { ...p.hfConfig.raw },
  };
  const range = typeof p.hfConfig.raw.initializer_range === 'number' ? p.hfConfig.raw.initializer_range : 0.02;
  const rng = new Random(opts.seed ?? 0);
  const C = p.hfConfig.hiddenSize;
  const w = new Float32Array(C);
  for (let i = 0; i < C; i++) w[i] = rng.normal() * range;
  const score = Tensor.param(Tensor.from(w, [1, C]), 'score.weight');
  return { model: withoutLmHead(p.model), hfConfig, generation: p.generation, score };
}

/**
 * Loads a reward model from a Hugging Face directory: a *ForSequenceClassification checkpoint as it is, or a
 * causal LM turned into one (toRewardModel).
 */
export function loadRewardModel(dir: string, opts: { seed?: number; padTokenId: number }): Pretrained {
  return toRewardModel(loadPretrained(dir), opts);
}

/** Scores [B] of right-padded rows, read (as transformers does) at each row's last token that is not pad_token_id. */
export function rewardScores(p: Pretrained, ids: Int32Array, B: number, T: number, attentionMask?: Int32Array): Tensor {
  if (!p.score) throw new Error('rewardScores: the model has no score head');
  const pad = p.hfConfig.padTokenId;
  const index = lastTokenIndex(B, T, pad === null ? { attentionMask } : { ids, padTokenId: pad });
  const hidden = p.model.hidden(ids, B, T, { attentionMask });
  return sequenceScore(hidden, p.score, index);
}

/** A preference pair with an optional margin (the dataset's `margin` column). */
export interface RewardExample extends PreferenceExample {
  margin?: number;
}

export interface RewardBatch extends PreferenceBatch {
  /** per pair, or null when the data has no margin column */
  margins: Float32Array | null;
}

/** Reads preference data for a reward model: the data layer's pairs plus the optional `margin` column. */
export async function loadRewardData(source: string | readonly unknown[], tokenizer: Tokenizer, cfg: RewardConfig, read: DataReadOptions = {}): Promise<RewardExample[]> {
  const { examples, report } = await loadPreferenceDataset(source, tokenizer, { maxLength: cfg.max_length, skipInvalid: read.skipInvalid });
  reportSkipped(report);
  const margins = new Map<number, number>();
  let file = '';
  for await (const raw of readRecords(source)) {
    file = raw.source.file;
    const v = raw.value as Record<string, unknown> | undefined;
    if (!v || typeof v !== 'object' || v.margin === undefined || v.margin === null) continue;
    if (typeof v.margin !== 'number' || !Number.isFinite(v.margin)) throw new Error(`${raw.source.file}:${raw.source.line}: margin: expected a number, got ${JSON.stringify(v.margin)}`);
    margins.set(raw.source.line, v.margin);
  }
  if (!margins.size) return examples;
  return examples.map((e) => {
    const m = margins.get(e.source.line);
    if (m === undefined) throw new Error(`${file}:${e.source.line}: margin: missing (other records have a margin column; give every record one)`);
    return { ...e, margin: m };
  });
}

export interface RewardTrainerOptions {
  args: RewardConfig;
  /** a reward model (toRewardModel / loadRewardModel) */
  model: Pretrained;
  trainDataset: readonly RewardExample[];
  evalDataset?: readonly RewardExample[] | null;
  /** trained tensors outside the model (LoRA adapters by PEFT name), saved in checkpoints */
  extraState?: Map<string, Tensor>;
}

export class RewardTrainer extends SupervisedTrainer<RewardBatch> {
  readonly model: Pretrained;
  readonly trainDataset: readonly RewardExample[];
  readonly evalDataset: readonly RewardExample[] | null;
  declare readonly args: RewardConfig;

  constructor(o: RewardTrainerOptions) {
    if (!o.model.score) throw new Error('RewardTrainer: the model has no score head (use toRewardModel)');
    if (o.model.hfConfig.padTokenId === null) throw new Error('RewardTrainer: the reward model config needs a pad_token_id');
    if (!o.trainDataset.length) throw new Error('RewardTrainer: the training dataset is empty');
    super(o.args, o.model, [...o.model.model.trainableParameters(), o.model.score], o.extraState ?? new Map(), 'reward');
    this.model = o.model;
    this.trainDataset = o.trainDataset;
    this.evalDataset = o.evalDataset?.length ? o.evalDataset : null;
    if (o.args.disable_dropout) this.model.model.training = false;
  }

  /** Both sequences of every pair, chosen rows first ('halves'), padded with the model's pad_token_id. */
  collate(examples: readonly RewardExample[]): RewardBatch {
    const b = collatePreference(examples as PreferenceExample[], { padId: this.model.hfConfig.padTokenId!, layout: 'halves', padToMultipleOf: this.args.pad_to_multiple_of ?? undefined });
    const has = examples.filter((e) => e.margin !== undefined).length;
    if (has !== 0 && has !== examples.length) throw new Error('reward: some pairs have a margin and some do not');
    return { ...b, margins: has ? Float32Array.from(examples, (e) => e.margin!) : null };
  }

  protected trainBatches(): BatchSource<RewardBatch> {
    return new ExampleBatches(this.trainDataset, (ex) => this.collate(ex), { batchSize: this.args.per_device_train_batch_size, seed: this.args.seed });
  }

  /** Chosen and rejected rewards [pairs] of a batch. */
  rewards(b: RewardBatch): { chosen: Tensor; rejected: Tensor } {
    const r = rewardScores(this.model, b.ids, b.B, b.T, b.attentionMask);
    return { chosen: r.slice(0, 0, b.pairs), rejected: r.slice(0, b.pairs, 2 * b.pairs) };
  }

  override computeLoss(b: RewardBatch): LossResult {
    seedDropout(this.model.model, this.rng.seed());
    const { chosen, rejected } = this.rewards(b);
    const loss = bradleyTerryLoss(chosen, rejected, { margin: b.margins, centerRewardsCoefficient: this.args.center_rewards_coefficient });
    let tokens = 0;
    for (let i = 0; i < b.attentionMask.length; i++) tokens += b.attentionMask[i]!;
    return { loss, metrics: { num_tokens: tokens, ...rewardMetrics(chosen.toArray(), rejected.toArray()) } };
  }

  /** eval_loss, eval_accuracy, eval_margin, eval_mean_reward, eval_min_reward, eval_max_reward over the eval set. */
  override evaluate(): Record<string, number> {
    if (!this.evalDataset) return {};
    const m = this.model.model;
    const wasTraining = m.training;
    m.training = false;
    const c: number[] = [], r: number[] = [];
    let lossSum = 0;
    try {
      for (const { batch } of inOrder(this.evalDataset, this.args.per_device_eval_batch_size)) {
        tidy(() =>
          noGrad(() => {
            const b = this.collate(batch);
            const { chosen, rejected } = this.rewards(b);
            lossSum += bradleyTerryLoss(chosen, rejected, { margin: b.margins, centerRewardsCoefficient: this.args.center_rewards_coefficient }).item() * b.pairs;
            c.push(...chosen.toArray());
            r.push(...rejected.toArray());
          }),
        );
      }
    } finally {
      m.training = wasTraining;
    }
    const out: Record<string, number> = { eval_loss: lossSum / c.length };
    for (const [k, v] of Object.entries(rewardMetrics(c, r))) out[`eval_${k}`] = v;
    return out;
  }
}

/** TRL's reward metrics from chosen and rejected rewards. */
export function rewardMetrics(chosen: ArrayLike<number>, rejected: ArrayLike<number>): Record<string, number> {
  const n = chosen.length;
  let acc = 0, margin = 0, sum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    const a = chosen[i]!, b = rejected[i]!;
    if (a > b) acc++;
    margin += a - b;
    sum += a + b;
    min = Math.min(min, a, b);
    max = Math.max(max, a, b);
  }
  return { accuracy: acc / n, margin: margin / n, mean_reward: sum / (2 * n), min_reward: min, max_reward: max };
}

/**
 * `alignkit reward`: a plain config (model_name_or_path, train_file / eval_file or dataset_path, output_dir, LoRA
 * options, every RewardConfig option) → loads the model (a causal LM gets a new score head) and tokenizer,
 * trains, and saves the reward model (GPT2ForSequenceClassification / LlamaForSequenceClassification ...; with
 * LoRA the adapters are merged first) and the tokenizer into output_dir.
 */
export async function runReward(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const source = opts.source ?? 'reward config';
  const { config: args, model: margs, data } = resolveRunConfig(config, source, resolveRewardConfig);
  const files = dataFiles(data, source);
  const tokenizer = Tokenizer.fromPretrained(margs.tokenizer_name_or_path ?? margs.model_name_or_path);
  const pretrained = loadRewardModel(margs.model_name_or_path, { seed: args.seed, padTokenId: padTokenId(tokenizer) });
  const lora = applyLora(pretrained.model, margs, args.seed);
  const read = { skipInvalid: data.skip_invalid };
  const train = await loadRewardData(files.train, tokenizer, args, read);
  const evalSet = files.eval ? await loadRewardData(files.eval, tokenizer, args, read) : null;
  const trainer = new RewardTrainer({ args, model: pretrained, trainDataset: train, evalDataset: evalSet, extraState: lora?.tensors });
  const last = trainer.train({ quiet: opts.quiet, onLog: opts.onLog });
  const ev = evalSet ? trainer.evaluate() : null;
  if (ev) logMetrics(args.output_dir, { step: trainer.globalStep, ...ev });
  if (lora) pretrained.model.mergeLora();
  saveFinal(args.output_dir, pretrained, tokenizer, null);
  return { output_dir: args.output_dir, train: last, eval: ev, global_step: trainer.globalStep };
}

// Reward modelling (TRL's RewardTrainer): a transformer with a `score.weight` [1, C] head read at the last
// non-pad token (transformers' *ForSequenceClassification layout, so transformers loads the result), trained on
// preference pairs with the Bradley–Terry loss (optional per-pair `margin` column, optional `soft_label` column
// — the probability that chosen is better, from AI feedback or annotator agreement — and
// center_rewards_coefficient). Starting from a causal LM, the score head is initialised as transformers
// initialises a new Linear: N(0, initializer_range²) (0.02 when the config has none), and the LM head is dropped.
// Metrics under TRL's names: loss, accuracy, margin, mean_reward, min_reward, max_reward, num_tokens.
import { type DataSource, type PreferenceBatch, type PreferenceExample, collatePreference, loadPreferenceDataset, padTokenId, readRecords } from '../data/index.js';
import { Random } from '../engine/random.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { asSequenceClassifier } from '../io/config.js';
import { type Pretrained, loadPretrained, savePretrained } from '../io/pretrained.js';
import { lastTokenIndex, sequenceScore } from '../models/heads.js';
import { Transformer } from '../models/transformer.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { NOT_IMPLEMENTED, TRAINING_FIELDS } from './args.js';
import { inOrder } from './batches.js';
import { bradleyTerryLoss } from './bradley-terry.js';
import { reportSkipped } from './report.js';
import { type LossResult, SupervisedTrainer, type SupervisedInputs } from './supervised.js';

/** RewardConfig: TRL's options and defaults (learning_rate 1e-4, max_length 1024) over TrainingArguments'. */
export const REWARD_FIELDS = {
  ...TRAINING_FIELDS,
  learning_rate: f.number(1e-4, 'peak learning rate of AdamW', { min: 0 }),
  max_length: f.integer(1024, 'tokens of prompt + completion (longer ones keep their start); null: no limit', { min: 1, nullable: true }),
  center_rewards_coefficient: f.number(null, 'weight of the mean-zero term c·mean((r_c + r_r)²); null: off (0.01 is usual)', { min: 0, nullable: true }),
  disable_dropout: f.boolean(true, 'train without dropout (only LoRA adapters have dropout here)'),
  pad_to_multiple_of: f.integer(null, 'pad every batch to a multiple of this many tokens; null: to the longest row', { min: 1, nullable: true }),
};

export const RewardConfig = defineConfig('RewardConfig', REWARD_FIELDS, undefined, NOT_IMPLEMENTED);
export type RewardConfig = ConfigOf<typeof RewardConfig>;

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
    if (p.hfConfig.model.padTokenId == null) return { ...p, hfConfig: { ...p.hfConfig, model: { ...p.hfConfig.model, padTokenId: opts.padTokenId } } };
    return p;
  }
  const seqCls = asSequenceClassifier(p.hfConfig, 1);
  const hfConfig = { ...seqCls, model: { ...seqCls.model, padTokenId: seqCls.model.padTokenId ?? opts.padTokenId } };
  const range = typeof p.hfConfig.raw.initializer_range === 'number' ? p.hfConfig.raw.initializer_range : 0.02;
  const rng = new Random(opts.seed ?? 0);
  const C = p.hfConfig.model.hiddenSize;
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
  const pad = p.hfConfig.model.padTokenId;
  const index = lastTokenIndex(B, T, pad == null ? { attentionMask } : { ids, padTokenId: pad });
  const hidden = p.model.hidden(ids, B, T, { attentionMask });
  return sequenceScore(hidden, p.score, index);
}

/** A preference pair with the optional columns a reward model reads. */
export interface RewardExample extends PreferenceExample {
  /** the dataset's `margin` column */
  margin?: number;
  /** the dataset's `soft_label` column: the probability that chosen is better */
  softLabel?: number;
}

interface RewardBatch extends PreferenceBatch {
  /** per pair, or null when the data has no margin column */
  margins: Float32Array | null;
  /** per pair, or null when the data has no soft_label column */
  softLabels: Float32Array | null;
}

/**
 * Optional numeric columns of a preference dataset, by record (`file:line`). Every record must have the column
 * if any has it; a value must be finite (and soft labels in [0, 1]).
 */
export async function readOptionalColumns(source: DataSource, columns: readonly string[]): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>(columns.map((c) => [c, new Map()]));
  let records = 0;
  const missing = new Map<string, string>();
  for await (const raw of readRecords(source)) {
    const v = raw.value as Record<string, unknown> | undefined;
    if (!v || typeof v !== 'object') continue;
    records++;
    const key = `${raw.source.file}:${raw.source.line}`;
    for (const c of columns) {
      const x = v[c];
      if (x === undefined || x === null) {
        if (!missing.has(c)) missing.set(c, key);
        continue;
      }
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${key}: ${c}: expected a number, got ${JSON.stringify(x)}`);
      if (c === 'soft_label' && (x < 0 || x > 1)) throw new Error(`${key}: soft_label: expected a probability in [0, 1], got ${x}`);
      out.get(c)!.set(key, x);
    }
  }
  for (const c of columns) {
    const n = out.get(c)!.size;
    if (n > 0 && n < records) throw new Error(`${missing.get(c)}: ${c}: missing (other records have a ${c} column; give every record one)`);
  }
  return out;
}

/** Reads preference data for a reward model: the data layer's pairs plus the optional margin / soft_label columns. */
export async function loadRewardData(source: DataSource, tokenizer: Tokenizer, cfg: RewardConfig, skipInvalid = false): Promise<RewardExample[]> {
  const { examples, report } = await loadPreferenceDataset(source, tokenizer, { maxLength: cfg.max_length, skipInvalid });
  reportSkipped(report);
  const cols = await readOptionalColumns(source, ['margin', 'soft_label']);
  const margins = cols.get('margin')!,
    soft = cols.get('soft_label')!;
  if (!margins.size && !soft.size) return examples;
  return examples.map((e) => {
    const key = `${e.source.file}:${e.source.line}`;
    const out: RewardExample = { ...e };
    if (margins.size) out.margin = margins.get(key)!;
    if (soft.size) out.softLabel = soft.get(key)!;
    return out;
  });
}

export type RewardTrainerInputs = SupervisedInputs<RewardConfig, RewardExample>;

export class RewardTrainer extends SupervisedTrainer<typeof REWARD_FIELDS, RewardExample, RewardBatch> {
  constructor(inputs: RewardTrainerInputs) {
    super(RewardConfig, inputs, 'reward', (p, tok, args) => toRewardModel(p, { seed: args.seed, padTokenId: tok ? padTokenId(tok) : (p.hfConfig.model.padTokenId ?? inputs.padTokenId ?? 0) }));
    if (this.model.hfConfig.model.padTokenId == null) throw new Error('reward: the reward model config needs a pad_token_id');
    if (this.args.disable_dropout) this.model.model.training = false;
  }

  protected override trainableTensors(): Tensor[] {
    return [...this.model.model.trainableParameters(), this.model.score!];
  }

  protected override loadExamples(source: DataSource, _split: 'train' | 'eval', tokenizer: Tokenizer): Promise<RewardExample[]> {
    return loadRewardData(source, tokenizer, this.args, this.skipInvalid);
  }

  /** Both sequences of every pair, chosen rows first ('halves'), padded with the model's pad_token_id. */
  override collate(examples: readonly RewardExample[]): RewardBatch {
    const b = collatePreference(examples as PreferenceExample[], { padId: this.model.hfConfig.model.padTokenId!, layout: 'halves', padToMultipleOf: this.args.pad_to_multiple_of ?? undefined });
    const column = (get: (e: RewardExample) => number | undefined, name: string): Float32Array | null => {
      const has = examples.filter((e) => get(e) !== undefined).length;
      if (has !== 0 && has !== examples.length) throw new Error(`reward: some pairs have a ${name} and some do not`);
      return has ? Float32Array.from(examples, (e) => get(e)!) : null;
    };
    return { ...b, margins: column((e) => e.margin, 'margin'), softLabels: column((e) => e.softLabel, 'soft_label') };
  }

  /** Chosen and rejected rewards [pairs] of a batch. */
  rewards(b: RewardBatch): { chosen: Tensor; rejected: Tensor } {
    const r = rewardScores(this.model, b.ids, b.B, b.T, b.attentionMask);
    return { chosen: r.slice(0, 0, b.pairs), rejected: r.slice(0, b.pairs, 2 * b.pairs) };
  }

  private loss(b: RewardBatch, chosen: Tensor, rejected: Tensor): Tensor {
    return bradleyTerryLoss(chosen, rejected, { margin: b.margins, softLabel: b.softLabels, centerRewardsCoefficient: this.args.center_rewards_coefficient });
  }

  override computeLoss(b: RewardBatch): LossResult {
    this.model.model.dropoutSeed = this.rng.seed();
    const { chosen, rejected } = this.rewards(b);
    const loss = this.loss(b, chosen, rejected);
    let tokens = 0;
    for (let i = 0; i < b.attentionMask.length; i++) tokens += b.attentionMask[i]!;
    return { loss, metrics: { num_tokens: tokens, ...rewardMetrics(chosen.toArray(), rejected.toArray()) } };
  }

  /** eval_loss, eval_accuracy, eval_margin, eval_mean_reward, eval_min_reward, eval_max_reward over the eval set. */
  protected override evaluateExamples(examples: readonly RewardExample[]): Record<string, number> {
    const c: number[] = [],
      r: number[] = [];
    let lossSum = 0;
    for (const { batch } of inOrder(examples, this.args.per_device_eval_batch_size)) {
      tidy(() =>
        noGrad(() => {
          const b = this.collate(batch);
          const { chosen, rejected } = this.rewards(b);
          lossSum += this.loss(b, chosen, rejected).item() * b.pairs;
          c.push(...chosen.toArray());
          r.push(...rejected.toArray());
        }),
      );
    }
    const out: Record<string, number> = { eval_loss: lossSum / c.length };
    for (const [k, v] of Object.entries(rewardMetrics(c, r))) out[`eval_${k}`] = v;
    return out;
  }

  /** Saves the reward model (adapters merged into the weights first, so transformers loads it as it is). */
  override saveModel(dir: string = this.args.output_dir): void {
    if (this.lora) this.model.model.mergeLora();
    savePretrained(dir, this.model);
    this.tokenizer?.save(dir);
  }
}

/** TRL's reward metrics from chosen and rejected rewards. */
export function rewardMetrics(chosen: ArrayLike<number>, rejected: ArrayLike<number>): Record<string, number> {
  const n = chosen.length;
  let acc = 0,
    margin = 0,
    sum = 0,
    min = Infinity,
    max = -Infinity;
  for (let i = 0; i < n; i++) {
    const a = chosen[i]!,
      b = rejected[i]!;
    if (a > b) acc++;
    margin += a - b;
    sum += a + b;
    min = Math.min(min, a, b);
    max = Math.max(max, a, b);
  }
  return { accuracy: acc / n, margin: margin / n, mean_reward: sum / (2 * n), min_reward: min, max_reward: max };
}

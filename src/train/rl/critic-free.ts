// The rollout-and-update loop that RLOO and GRPO share (critic-free: the baseline comes from the other samples
// of the same prompt, not from a value model). Each update draws P prompts, samples k = num_generations
// completions of each (rows g·k … g·k+k−1 share prompt g), scores them, lets the algorithm turn the scores into
// one advantage per completion, and then takes num_iterations optimiser steps over the batch, each accumulating
// gradients over gradient_accumulation_steps micro-batches of per_device_train_batch_size completions
// (TRL's batching with steps_per_generation = gradient_accumulation_steps).
import { Tensor } from '../../engine/tensor.js';
import { f } from '../../options/fields.js';
import { TRAINING_FIELDS } from '../args.js';
import { type Metrics, OnlineTrainer, type OnlineInputs, type PromptItem } from './online-trainer.js';
import { type ResponseForward, type RolloutBatch, responseForward, rolloutForward, sampleRollout, takeRows } from './rollout.js';
import { computeScores } from './scorer.js';
import type { ConfigSpec, FieldTable, OptionsOf } from '../../options/fields.js';
import type { TrainingArgs } from '../args.js';

/** The options RLOOConfig and GRPOConfig share (TRL's names), over TrainingArguments'. */
export const CRITIC_FREE_FIELDS = {
  ...TRAINING_FIELDS,
  learning_rate: f.number(1e-6, 'peak learning rate of AdamW', { min: 0 }),
  num_generations: f.integer(2, 'completions per prompt (the group size k; the baseline comes from the other samples)', { min: 2 }),
  max_completion_length: f.integer(512, 'new tokens per completion at most', { min: 1 }),
  temperature: f.number(1, 'sampling temperature', { min: 0, exclusiveMin: true }),
  top_p: f.number(1, 'nucleus sampling mass', { min: 0, max: 1, exclusiveMin: true }),
  top_k: f.integer(0, 'top-k filtering (0: off)', { min: 0 }),
  beta: f.number(0, 'KL coefficient against the reference (0: no reference pass)', { min: 0 }),
  num_iterations: f.integer(1, 'optimiser steps per rollout batch', { min: 1 }),
  epsilon: f.number(0.2, 'clip range ε (lower bound 1 − ε)', { min: 0 }),
  epsilon_high: f.number(null, 'upper clip bound 1 + epsilon_high; null: epsilon', { min: 0, nullable: true }),
  mask_truncated_completions: f.boolean(false, 'leave completions that hit max_completion_length without EOS out of the loss'),
};

type CriticFreeConfig = OptionsOf<typeof CRITIC_FREE_FIELDS>;

/** The batch arithmetic both configs need (a cross-field check). */
export function checkGenerationBatch(c: CriticFreeConfig, fail: (key: string, message: string) => never): void {
  const batch = c.per_device_train_batch_size * c.gradient_accumulation_steps;
  if (batch % c.num_generations !== 0)
    fail('num_generations', `the generation batch (per_device_train_batch_size × gradient_accumulation_steps = ${batch}) must be a multiple of num_generations (${c.num_generations})`);
}

/** What the algorithm sees of one rollout. */
export interface RolloutContext {
  batch: RolloutBatch;
  /** 1 on the completion tokens that enter the loss [B·R] */
  mask: Float32Array;
  scores: Float64Array;
  /** log-probs under the policy before any update [B·R], when the algorithm asked for them */
  old: Float32Array | null;
  /** log-probs under the reference [B·R] when beta ≠ 0 */
  ref: Float32Array | null;
  /** one advantage per completion [B], set by computeAdvantages */
  advantages: Float64Array;
  /** completion tokens in the whole batch (after masking) */
  tokensInBatch: number;
  microBatches: number;
}

export interface MicroLoss {
  loss: Tensor;
  /** the micro-batch's statistics: kl (mean per token), clip fractions, ... */
  metrics: Metrics;
}

export abstract class CriticFreeTrainer<T extends FieldTable & typeof CRITIC_FREE_FIELDS> extends OnlineTrainer<T> {
  readonly stopTokenIds: number[];

  constructor(spec: ConfigSpec<T>, inputs: OnlineInputs<OptionsOf<T>>, name: string) {
    super(spec, inputs, name);
    this.stopTokenIds = this.eosTokenId === null ? [] : [this.eosTokenId];
  }

  private get cfg(): CriticFreeConfig & TrainingArgs {
    return this.args as unknown as CriticFreeConfig & TrainingArgs;
  }

  get epsilonLow(): number {
    return this.cfg.epsilon;
  }
  get epsilonHigh(): number {
    return this.cfg.epsilon_high ?? this.cfg.epsilon;
  }
  /** completions per update */
  batchSize(): number {
    return this.cfg.per_device_train_batch_size * this.cfg.gradient_accumulation_steps;
  }
  promptsPerUpdate(): number {
    return this.batchSize() / this.cfg.num_generations;
  }
  protected totalUpdates(): number {
    if (this.cfg.max_steps > 0) return this.cfg.max_steps;
    const perEpoch = Math.floor(this.prompts.length / this.promptsPerUpdate());
    return Math.max(1, Math.ceil(this.cfg.num_train_epochs * perEpoch));
  }

  /** Whether the update needs the policy's log-probs before it changes (a no-grad pass). */
  protected abstract needsOldLogprobs(): boolean;
  /** Fills ctx.advantages from the scores; returns metrics of the rollout. */
  protected abstract computeAdvantages(ctx: RolloutContext): Metrics;
  /** The loss of micro-batch `rows` (already scaled for accumulation). */
  protected abstract microLoss(f: ResponseForward, rows: Int32Array, ctx: RolloutContext): MicroLoss;

  /** Samples num_generations completions of each prompt (no update). */
  rollout(prompts: readonly PromptItem[]): RolloutBatch {
    const a = this.cfg;
    // each prompt is prefilled once and its cache shared by its num_generations samples
    return sampleRollout(
      this.policy,
      prompts.map((p) => p.ids),
      {
        numReturnSequences: a.num_generations,
        maxNewTokens: a.max_completion_length,
        temperature: a.temperature,
        topK: a.top_k > 0 ? a.top_k : undefined,
        topP: a.top_p < 1 ? a.top_p : undefined,
        stopTokenIds: this.stopTokenIds,
        padTokenId: this.padTokenId,
        rng: this.rng,
      },
    );
  }

  protected async update(prompts: PromptItem[], lr: number): Promise<Metrics> {
    const a = this.cfg,
      k = a.num_generations;
    const batch = this.rollout(prompts);
    const { B, R } = batch;
    const mask = Float32Array.from(batch.responseMask);
    if (a.mask_truncated_completions) for (let b = 0; b < B; b++) if (batch.finishReason[b] === 'length') mask.fill(0, b * R, b * R + R);
    const chunk = a.per_device_train_batch_size;
    const old = this.needsOldLogprobs() || a.num_iterations > 1 ? rolloutForward(this.policy, batch, { temperature: a.temperature, chunk }).logprobs : null;
    const ref = a.beta !== 0 ? this.withRef((r) => rolloutForward(r, batch, { temperature: a.temperature, chunk }).logprobs) : null;
    const texts = prompts.flatMap((p) => Array.from({ length: k }, () => p.text));
    const scores = await computeScores(
      this.scorer!,
      texts,
      batch.responseIds.map((r) => this.decode(r)),
      {
        promptIds: batch.promptIds,
        responseIds: batch.responseIds,
        finishReason: batch.finishReason,
      },
    );
    let tokensInBatch = 0;
    for (const v of mask) tokensInBatch += v;
    const ctx: RolloutContext = { batch, mask, scores, old, ref, advantages: new Float64Array(B), tokensInBatch, microBatches: a.gradient_accumulation_steps };
    const rolloutMetrics = this.computeAdvantages(ctx);

    // num_iterations optimiser steps, each over the whole batch in micro-batches of per_device_train_batch_size
    const acc: Record<string, number[]> = {};
    const losses: number[] = [];
    const norms = this.optimizeRollout(B, { epochs: a.num_iterations, miniBatches: 1, micro: a.per_device_train_batch_size, lr, what: `the ${this.name.toUpperCase()} loss` }, (rows) => {
      const f = responseForward(this.policy, batch, rows, { temperature: a.temperature, entropy: true });
      const { loss, metrics } = this.microLoss(f, rows, ctx);
      const value = loss.item();
      if (Number.isFinite(value)) loss.backward();
      losses.push(value);
      const mr = takeRows(mask, R, rows);
      let e = 0,
        n = 0;
      for (let i = 0; i < mr.length; i++)
        if (mr[i]) {
          e += f.entropy![i]!;
          n++;
        }
      metrics.entropy = n ? e / n : 0;
      for (const [key, v] of Object.entries(metrics)) (acc[key] ??= []).push(v);
      return value;
    });
    this.episode += B;

    let truncated = 0,
      len = 0;
    for (let b = 0; b < B; b++) {
      len += batch.lengths[b]!;
      if (batch.finishReason[b] === 'length') truncated++;
    }
    const m: Metrics = {
      ...rolloutMetrics,
      'completions/mean_length': len / B,
      'completions/clipped_ratio': truncated / B,
      loss: losses.reduce((s, v) => s + v, 0) / a.num_iterations,
      grad_norm: norms.reduce((s, v) => s + v, 0) / norms.length,
    };
    for (const [key, v] of Object.entries(acc)) m[key] = v.reduce((s, x) => s + x, 0) / v.length;
    return m;
  }

  /** A [rows, R] tensor of a rollout array. */
  protected rowsTensor(arr: Float32Array | Float64Array, rows: Int32Array, R: number): Tensor {
    return Tensor.from(takeRows(arr, R, rows), [rows.length, R]);
  }
}

/** Mean and unbiased std of the raw scores, and the fraction of groups whose scores are all equal. */
export function rewardMetrics(scores: Float64Array, k: number, groupStd: ArrayLike<number>): Metrics {
  const n = scores.length;
  let m = 0;
  for (const v of scores) m += v;
  m /= n;
  let s = 0;
  for (const v of scores) s += (v - m) ** 2;
  let zero = 0;
  for (let g = 0; g < n / k; g++) if (Math.abs(groupStd[g * k]!) < 1e-8) zero++;
  return { reward: m, reward_std: n > 1 ? Math.sqrt(s / (n - 1)) : 0, frac_reward_zero_std: zero / (n / k) };
}

// PPO for language models (Ziegler et al. 2019; Stiennon et al. 2020), with TRL's PPOConfig names and defaults.
// Each update: sample one response per prompt with the KV-cache sampler, recompute the responses' log-probs
// under the policy and the frozen reference (temperature-scaled logits) and the values, score prompt+response
// (reward model or any scorer function), build per-token rewards −β·KL (k1 or k3) with the score added at the
// last response token, GAE advantages (γ, λ), whiten them, then num_ppo_epochs passes of shuffled mini-batches
// of the clipped policy loss + vf_coef × the clipped value loss. The critic is a value head on the policy's
// hidden states (see rl/value-head.ts). β is fixed (kl_coef) or adaptive (adap_kl_ctrl: target, horizon).
import { add, scale } from '../engine/ops/elementwise.js';
import { Tensor } from '../engine/tensor.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import { NOT_IMPLEMENTED, TRAINING_FIELDS } from './args.js';
import { gae } from './rl/gae.js';
import { AdaptiveKLController, FixedKLController, type KLController, type KlControllerState, klPerToken } from './rl/kl.js';
import { ppoPolicyLoss, ppoValueLoss } from './rl/losses.js';
import { type Metrics, OnlineTrainer, type OnlineInputs, type PromptItem } from './rl/online-trainer.js';
import { type RolloutBatch, rolloutForward, responseForward, sampleRollout, takeRows } from './rl/rollout.js';
import { computeScores } from './rl/scorer.js';
import { ValueHead } from './rl/value-head.js';
import { maskedWhiten } from './rl/whiten.js';

export const PPO_FIELDS = {
  ...TRAINING_FIELDS,
  learning_rate: f.number(3e-6, 'peak learning rate of AdamW', { min: 0 }),
  num_mini_batches: f.integer(1, 'mini-batches per rollout batch (each one optimiser step)', { min: 1 }),
  total_episodes: f.integer(null, 'episodes (prompts) to train on; null: num_train_epochs × the dataset size', { min: 1, nullable: true }),
  local_rollout_forward_batch_size: f.integer(64, 'rows per no-grad forward pass when scoring a rollout', { min: 1 }),
  response_length: f.integer(53, 'new tokens per response at most', { min: 1 }),
  stop_token: f.choice(['eos'], null, "'eos': responses end at the tokenizer's EOS; null: no stop token unless stop_token_id", { nullable: true }),
  stop_token_id: f.integer(null, 'the token that ends a response', { min: 0, nullable: true }),
  temperature: f.number(0.7, 'sampling temperature of the rollouts (and of the log-probs)', { min: 0, exclusiveMin: true }),
  missing_eos_penalty: f.number(null, 'subtracted from the score of responses without an EOS token', { min: 0, nullable: true }),
  num_ppo_epochs: f.integer(4, 'passes over each rollout batch', { min: 1 }),
  whiten_rewards: f.boolean(false, 'whiten the per-token rewards before GAE'),
  kl_coef: f.number(0.05, 'the KL penalty coefficient β (the initial one with adap_kl_ctrl)', { min: 0 }),
  kl_estimator: f.choice(['k1', 'k3'], 'k1', 'per-token KL estimator'),
  cliprange: f.number(0.2, 'policy ratio clip range ε', { min: 0 }),
  vf_coef: f.number(0.1, 'weight of the value loss', { min: 0 }),
  cliprange_value: f.number(0.2, 'value clip range', { min: 0 }),
  gamma: f.number(1, 'discount γ', { min: 0, max: 1 }),
  lam: f.number(0.95, 'GAE λ', { min: 0, max: 1 }),
  adap_kl_ctrl: f.boolean(false, 'adapt β towards `target` KL per episode over `horizon` episodes (Ziegler et al. 2019)'),
  target: f.number(6, 'target KL of the adaptive controller', { min: 0, exclusiveMin: true }),
  horizon: f.number(10000, 'horizon of the adaptive controller (episodes)', { min: 0, exclusiveMin: true }),
};

export const PPOConfig = defineConfig(
  'PPOConfig',
  PPO_FIELDS,
  (c, fail) => {
    if (c.stop_token !== null && c.stop_token_id !== null) fail('stop_token_id', 'set stop_token or stop_token_id, not both');
    const batch = c.per_device_train_batch_size * c.gradient_accumulation_steps;
    if (batch % c.num_mini_batches !== 0)
      fail('num_mini_batches', `the rollout batch (per_device_train_batch_size × gradient_accumulation_steps = ${batch}) must be a multiple of num_mini_batches (${c.num_mini_batches})`);
  },
  NOT_IMPLEMENTED,
);
export type PPOConfig = ConfigOf<typeof PPOConfig>;

export interface PPOTrainerInputs extends OnlineInputs<PPOConfig> {
  /** the critic: a value head on the policy's hidden states (default: a new one, zero-initialised) */
  valueHead?: ValueHead;
}

export class PPOTrainer extends OnlineTrainer<typeof PPO_FIELDS> {
  readonly valueHead: ValueHead;
  readonly klController: KLController;
  readonly stopTokenIds: number[];
  private readonly ownsValueHead: boolean;

  constructor(inputs: PPOTrainerInputs) {
    super(PPOConfig, inputs, 'ppo');
    const args = this.args;
    if (args.stop_token === 'eos' && this.eosTokenId === null) throw new Error("ppo: stop_token 'eos' needs the tokenizer's EOS id");
    if (args.missing_eos_penalty !== null && this.eosTokenId === null) throw new Error('ppo: missing_eos_penalty needs the EOS id');
    this.stopTokenIds = args.stop_token === 'eos' ? [this.eosTokenId!] : args.stop_token_id !== null ? [args.stop_token_id] : [];
    this.valueHead = inputs.valueHead ?? new ValueHead(this.policy.config.hiddenSize);
    this.ownsValueHead = !inputs.valueHead;
    this.klController = args.adap_kl_ctrl ? new AdaptiveKLController(args.kl_coef, args.target, args.horizon) : new FixedKLController(args.kl_coef);
  }

  /** per_device_train_batch_size × gradient_accumulation_steps (TRL's local_batch_size). */
  batchSize(): number {
    return this.args.per_device_train_batch_size * this.args.gradient_accumulation_steps;
  }
  promptsPerUpdate(): number {
    return this.batchSize();
  }
  protected totalUpdates(): number {
    if (this.args.max_steps > 0) return this.args.max_steps;
    const episodes = this.args.total_episodes ?? Math.floor(this.args.num_train_epochs * this.prompts.length);
    return Math.max(1, Math.ceil(episodes / this.batchSize()));
  }
  protected override extraTrainable(): Tensor[] {
    return this.valueHead.parameters();
  }
  protected override extraTensors(): Map<string, Tensor> {
    return this.valueHead.state();
  }
  protected override algorithmState(): Record<string, unknown> {
    return { ...super.algorithmState(), kl_controller: this.klController.getState() };
  }
  protected override restoreAlgorithmState(s: Record<string, unknown>): void {
    super.restoreAlgorithmState(s);
    const k = s.kl_controller as KlControllerState | undefined;
    if (k) this.klController.setState(k);
  }

  /** Samples responses to `prompts` with the current policy (no update). */
  rollout(prompts: readonly PromptItem[]): RolloutBatch {
    const a = this.args;
    return sampleRollout(
      this.policy,
      prompts.map((p) => p.ids),
      {
        maxNewTokens: a.response_length,
        temperature: a.temperature,
        stopTokenIds: this.stopTokenIds,
        padTokenId: this.padTokenId,
        rng: this.rng,
      },
    );
  }

  /** Scores a rollout with the scorer, less missing_eos_penalty where a response has no EOS. */
  async score(prompts: readonly PromptItem[], batch: RolloutBatch): Promise<Float64Array> {
    const scores = await computeScores(
      this.scorer!,
      prompts.map((p) => p.text),
      batch.responseIds.map((r) => this.decode(r)),
      {
        promptIds: batch.promptIds,
        responseIds: batch.responseIds,
        finishReason: batch.finishReason,
      },
    );
    const pen = this.args.missing_eos_penalty;
    if (pen !== null)
      batch.responseIds.forEach((r, i) => {
        if (!r.includes(this.eosTokenId!)) scores[i]! -= pen;
      });
    return scores;
  }

  protected async update(prompts: PromptItem[], lr: number): Promise<Metrics> {
    const a = this.args;
    const batch = this.rollout(prompts);
    const { B, R } = batch,
      mask = batch.responseMask;
    const chunk = a.local_rollout_forward_batch_size;
    const { logprobs, values } = rolloutForward(this.policy, batch, { temperature: a.temperature, chunk, valueHead: this.valueHead });
    const refLogprobs = this.withRef((ref) => rolloutForward(ref, batch, { temperature: a.temperature, chunk }).logprobs);
    const scores = await this.score(prompts, batch);

    // per-token rewards: −β·KL, plus the score at the last real response token
    const beta = this.klController.value;
    const kl = klPerToken(logprobs, refLogprobs, mask, a.kl_estimator);
    let rewards: Float64Array = new Float64Array(B * R);
    for (let i = 0; i < rewards.length; i++) rewards[i] = -beta * kl[i]!;
    for (let b = 0; b < B; b++) rewards[b * R + batch.lengths[b]! - 1]! += scores[b]!;
    if (a.whiten_rewards) rewards = maskedWhiten(rewards, mask, false);
    const { advantages: rawAdv, returns } = gae(rewards, values!, mask, B, R, a.gamma, a.lam);
    const advantages = maskedWhiten(rawAdv, mask);

    // num_ppo_epochs × num_mini_batches optimiser steps of the clipped policy loss + vf_coef × the clipped value loss
    const st = { approxkl: [] as number[], clipfrac: [] as number[], pg: [] as number[], vf: [] as number[], vclip: [] as number[], ent: [] as number[], ratio: [] as number[], vpred: [] as number[] };
    this.optimizeRollout(B, { epochs: a.num_ppo_epochs, miniBatches: a.num_mini_batches, micro: a.per_device_train_batch_size, lr, what: 'the PPO loss' }, (rows, M) => {
      const f = responseForward(this.policy, batch, rows, { temperature: a.temperature, valueHead: this.valueHead, entropy: true });
      const t = (arr: Float32Array | Float64Array): Tensor => Tensor.from(takeRows(arr, R, rows), [rows.length, R]);
      const m = t(mask);
      const pl = ppoPolicyLoss(f.logprobs, t(logprobs), t(advantages), m, a.cliprange);
      const vl = ppoValueLoss(f.values!, t(values!), t(returns), m, a.cliprange_value);
      const loss = add(pl.loss, scale(vl.loss, a.vf_coef));
      const value = loss.item();
      if (Number.isFinite(value)) scale(loss, rows.length / M).backward();
      const mrows = takeRows(mask, R, rows),
        vp = f.values!.toArray();
      let es = 0,
        vs = 0,
        n = 0;
      for (let i = 0; i < mrows.length; i++)
        if (mrows[i]) {
          es += f.entropy![i]!;
          vs += vp[i]!;
          n++;
        }
      st.approxkl.push(pl.approxkl);
      st.clipfrac.push(pl.clipfrac);
      st.ratio.push(pl.ratioMean);
      st.pg.push(pl.loss.item());
      st.vf.push(vl.loss.item());
      st.vclip.push(vl.clipfrac);
      st.ent.push(n ? es / n : 0);
      st.vpred.push(n ? vs / n : 0);
      return value;
    });

    // statistics of the rollout (per episode sums, as TRL)
    let klSum = 0,
      negLp = 0,
      eos = 0;
    for (let i = 0; i < kl.length; i++)
      if (mask[i]) {
        klSum += kl[i]!;
        negLp -= logprobs[i]!;
      }
    if (this.eosTokenId !== null) for (const r of batch.responseIds) for (const id of r) if (id === this.eosTokenId) eos++;
    const meanScore = avg(Array.from(scores));
    const meanKl = klSum / B;
    const nonScore = -beta * meanKl;
    this.klController.update(meanKl, B);
    this.episode += B;
    const m: Metrics = {
      'objective/kl': meanKl,
      'objective/entropy': negLp / B,
      'objective/non_score_reward': nonScore,
      'objective/rlhf_reward': meanScore + nonScore,
      'objective/scores': meanScore,
      'policy/approxkl_avg': avg(st.approxkl),
      'policy/clipfrac_avg': avg(st.clipfrac),
      'loss/policy_avg': avg(st.pg),
      'loss/value_avg': avg(st.vf),
      'val/clipfrac_avg': avg(st.vclip),
      'policy/entropy_avg': avg(st.ent),
      'val/vpred': avg(st.vpred),
      'val/ratio': avg(st.ratio),
      'val/ratio_var': variance(st.ratio),
      'val/num_eos_tokens': eos,
    };
    if (a.adap_kl_ctrl) m['objective/kl_coef'] = beta;
    return m;
  }

  override dispose(): void {
    super.dispose();
    if (this.ownsValueHead) this.valueHead.dispose();
  }
}

function avg(x: readonly number[]): number {
  return x.length ? x.reduce((s, v) => s + v, 0) / x.length : 0;
}

function variance(x: readonly number[]): number {
  if (x.length < 2) return 0;
  const m = avg(x);
  return x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1);
}

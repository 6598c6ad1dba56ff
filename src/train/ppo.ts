// PPO for language models (Ziegler et al. 2019; Stiennon et al. 2020), with TRL's PPOConfig names and defaults.
// Each update: sample one response per prompt with the KV-cache sampler, recompute the responses' log-probs
// under the policy and the frozen reference (temperature-scaled logits) and the values, score prompt+response
// (reward model or any scorer function), build per-token rewards −β·KL (k1 or k3) with the score added at the
// last response token, GAE advantages (γ, λ), whiten them, then num_ppo_epochs passes of shuffled mini-batches
// of the clipped policy loss + vf_coef × the clipped value loss. The critic is a value head on the policy's
// hidden states (see rl/value-head.ts). β is fixed (kl_coef) or adaptive (adap_kl_ctrl: target, horizon).
import { add, scale } from '../engine/ops/elementwise.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { TRAINING_DEFAULTS, type TrainingArgs, resolveArgs } from './args.js';
import { gae } from './rl/gae.js';
import { AdaptiveKLController, FixedKLController, type KLController, type KlControllerState, type KlEstimator, klPerToken } from './rl/kl.js';
import { ppoPolicyLoss, ppoValueLoss } from './rl/losses.js';
import { type Metrics, OnlineTrainer, type OnlineTrainerDeps, type PromptItem, permutation } from './rl/online-trainer.js';
import type { RunOptions, RunResult } from './sft.js';
import { nullableInt, nullableNumber, numberIn, oneOf, optionError, positiveInt } from './rl/options.js';
import { type RolloutBatch, rolloutForward, responseForward, sampleRollout, takeRows } from './rl/rollout.js';
import { computeScores } from './rl/scorer.js';
import { ValueHead } from './rl/value-head.js';
import { maskedWhiten } from './rl/whiten.js';

export interface PPOConfig extends TrainingArgs {
  /** mini-batches per rollout batch (each one optimiser step) */
  num_mini_batches: number;
  /** episodes (prompts) to train on; null: num_train_epochs × the dataset size */
  total_episodes: number | null;
  /** rows per no-grad forward pass when scoring a rollout */
  local_rollout_forward_batch_size: number;
  /** new tokens per response at most */
  response_length: number;
  /** 'eos': responses end at the tokenizer's EOS; null: no stop token unless stop_token_id */
  stop_token: 'eos' | null;
  stop_token_id: number | null;
  temperature: number;
  /** subtracted from the score of responses without an EOS token */
  missing_eos_penalty: number | null;
  num_ppo_epochs: number;
  whiten_rewards: boolean;
  /** the KL penalty coefficient β (the initial one with adap_kl_ctrl) */
  kl_coef: number;
  kl_estimator: KlEstimator;
  cliprange: number;
  vf_coef: number;
  cliprange_value: number;
  gamma: number;
  lam: number;
  /** adapt β towards `target` KL per episode over `horizon` episodes (Ziegler et al. 2019; TRL's old names) */
  adap_kl_ctrl: boolean;
  target: number;
  horizon: number;
}

export const PPO_DEFAULTS: PPOConfig = {
  ...TRAINING_DEFAULTS,
  learning_rate: 3e-6,
  logging_steps: 10,
  num_mini_batches: 1,
  total_episodes: null,
  local_rollout_forward_batch_size: 64,
  response_length: 53,
  stop_token: null,
  stop_token_id: null,
  temperature: 0.7,
  missing_eos_penalty: null,
  num_ppo_epochs: 4,
  whiten_rewards: false,
  kl_coef: 0.05,
  kl_estimator: 'k1',
  cliprange: 0.2,
  vf_coef: 0.1,
  cliprange_value: 0.2,
  gamma: 1,
  lam: 0.95,
  adap_kl_ctrl: false,
  target: 6,
  horizon: 10000,
};

/** Fills PPOConfig defaults and checks every option (unknown keys and bad values are errors). */
export function resolvePPOConfig(given: Record<string, unknown>, source = 'PPOConfig'): PPOConfig {
  const c = resolveArgs(PPO_DEFAULTS, given, source);
  c.total_episodes = nullableInt(source, 'total_episodes', c.total_episodes, 1);
  c.stop_token_id = nullableInt(source, 'stop_token_id', c.stop_token_id, 0);
  c.missing_eos_penalty = nullableNumber(source, 'missing_eos_penalty', c.missing_eos_penalty, 0);
  if (c.stop_token !== null && c.stop_token !== undefined) oneOf(source, 'stop_token', c.stop_token, ['eos'] as const);
  else c.stop_token = null;
  if (c.stop_token !== null && c.stop_token_id !== null) throw new Error(`${source}: set stop_token or stop_token_id, not both`);
  c.kl_estimator = oneOf(source, 'kl_estimator', c.kl_estimator, ['k1', 'k3'] as const);
  for (const k of ['per_device_train_batch_size', 'gradient_accumulation_steps', 'num_mini_batches', 'local_rollout_forward_batch_size', 'response_length', 'num_ppo_epochs'] as const)
    positiveInt(source, k, c[k]);
  if (!(c.temperature > 0)) throw optionError(source, 'temperature', 'a number > 0', c.temperature);
  numberIn(source, 'gamma', c.gamma, 0, 1);
  numberIn(source, 'lam', c.lam, 0, 1);
  for (const k of ['kl_coef', 'cliprange', 'cliprange_value', 'vf_coef'] as const) if (!(c[k] >= 0)) throw optionError(source, k, 'a number >= 0', c[k]);
  if (c.adap_kl_ctrl && !(c.target > 0 && c.horizon > 0)) throw new Error(`${source}: adap_kl_ctrl needs target > 0 and horizon > 0`);
  const batch = c.per_device_train_batch_size * c.gradient_accumulation_steps;
  if (batch % c.num_mini_batches !== 0)
    throw new Error(`${source}: the rollout batch (per_device_train_batch_size × gradient_accumulation_steps = ${batch}) must be a multiple of num_mini_batches (${c.num_mini_batches})`);
  return c;
}

export class PPOTrainer extends OnlineTrainer<PPOConfig> {
  readonly valueHead: ValueHead;
  readonly klController: KLController;
  readonly stopTokenIds: number[];

  constructor(config: Partial<PPOConfig> | Record<string, unknown>, deps: OnlineTrainerDeps & { valueHead?: ValueHead }) {
    const args = resolvePPOConfig(config as Record<string, unknown>);
    super(args, deps, 'ppo');
    if (args.stop_token === 'eos' && this.eosTokenId === null) throw new Error("ppo: stop_token 'eos' needs the tokenizer's EOS id (eosTokenId)");
    if (args.missing_eos_penalty !== null && this.eosTokenId === null) throw new Error('ppo: missing_eos_penalty needs the EOS id (eosTokenId)');
    this.stopTokenIds = args.stop_token === 'eos' ? [this.eosTokenId!] : args.stop_token_id !== null ? [args.stop_token_id] : [];
    this.valueHead = deps.valueHead ?? new ValueHead(this.policy.config.hiddenSize);
    this.klController = args.adap_kl_ctrl ? new AdaptiveKLController(args.kl_coef, args.target, args.horizon) : new FixedKLController(args.kl_coef);
    this.initOptimizer(this.valueHead.parameters());
  }

  /** per_device_train_batch_size × gradient_accumulation_steps (TRL's local_batch_size). */
  batchSize(): number {
    return this.args.per_device_train_batch_size * this.args.gradient_accumulation_steps;
  }
  promptsPerUpdate(): number {
    return this.batchSize();
  }
  totalUpdates(): number {
    if (this.args.max_steps > 0) return this.args.max_steps;
    const episodes = this.args.total_episodes ?? Math.floor(this.args.num_train_epochs * this.prompts.length);
    return Math.max(1, Math.ceil(episodes / this.batchSize()));
  }
  protected override extraTensors(): Map<string, Tensor> {
    return this.valueHead.state();
  }
  protected override algorithmState(): Record<string, unknown> {
    return { kl_controller: this.klController.getState() };
  }
  protected override restoreAlgorithmState(s: Record<string, unknown>): void {
    const k = s.kl_controller as KlControllerState | undefined;
    if (k) this.klController.setState(k);
  }

  /** Samples responses to `prompts` with the current policy (no update). */
  rollout(prompts: readonly PromptItem[]): RolloutBatch {
    const a = this.args;
    return sampleRollout(this.policy, prompts.map((p) => p.ids), {
      maxNewTokens: a.response_length,
      temperature: a.temperature,
      stopTokenIds: this.stopTokenIds,
      padTokenId: this.padTokenId,
      rng: this.rng,
    });
  }

  /** Scores a rollout with the scorer, less missing_eos_penalty where a response has no EOS. */
  async score(prompts: readonly PromptItem[], batch: RolloutBatch): Promise<Float64Array> {
    const scores = await computeScores(this.scorer, prompts.map((p) => p.text), batch.responseIds.map((r) => this.decode(r)), {
      promptIds: batch.promptIds,
      responseIds: batch.responseIds,
      finishReason: batch.finishReason,
    });
    const pen = this.args.missing_eos_penalty;
    if (pen !== null) batch.responseIds.forEach((r, i) => { if (!r.includes(this.eosTokenId!)) scores[i]! -= pen; });
    return scores;
  }

  protected async update(prompts: PromptItem[], lr: number): Promise<Metrics> {
    const a = this.args;
    const batch = this.rollout(prompts);
    const { B, R } = batch, mask = batch.responseMask;
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

    // num_ppo_epochs × num_mini_batches optimiser steps
    const M = B / a.num_mini_batches, micro = Math.min(a.per_device_train_batch_size, M);
    const st = { approxkl: [] as number[], clipfrac: [] as number[], pg: [] as number[], vf: [] as number[], vclip: [] as number[], ent: [] as number[], ratio: [] as number[], vpred: [] as number[] };
    for (let epoch = 0; epoch < a.num_ppo_epochs; epoch++) {
      const perm = permutation(this.rng, B);
      for (let mb = 0; mb < a.num_mini_batches; mb++) {
        const mini = perm.subarray(mb * M, (mb + 1) * M);
        for (let s = 0; s < M; s += micro) {
          const rows = mini.subarray(s, Math.min(s + micro, M));
          tidy(() => {
            const f = responseForward(this.policy, batch, rows, { temperature: a.temperature, valueHead: this.valueHead, entropy: true });
            const t = (arr: Float32Array | Float64Array): Tensor => Tensor.from(takeRows(arr, R, rows), [rows.length, R]);
            const m = t(mask);
            const pl = ppoPolicyLoss(f.logprobs, t(logprobs), t(advantages), m, a.cliprange);
            const vl = ppoValueLoss(f.values!, t(values!), t(returns), m, a.cliprange_value);
            const loss = add(pl.loss, scale(vl.loss, a.vf_coef));
            const value = loss.item();
            this.checkLoss(value, 'the PPO loss');
            scale(loss, rows.length / M).backward();
            const mrows = takeRows(mask, R, rows), vp = f.values!.toArray();
            let es = 0, vs = 0, n = 0;
            for (let i = 0; i < mrows.length; i++) if (mrows[i]) { es += f.entropy![i]!; vs += vp[i]!; n++; }
            st.approxkl.push(pl.approxkl); st.clipfrac.push(pl.clipfrac); st.ratio.push(pl.ratioMean);
            st.pg.push(pl.loss.item()); st.vf.push(vl.loss.item()); st.vclip.push(vl.clipfrac);
            st.ent.push(n ? es / n : 0); st.vpred.push(n ? vs / n : 0);
          });
        }
        this.optimizerStep(lr);
      }
    }

    // statistics of the rollout (per episode sums, as TRL)
    let klSum = 0, negLp = 0, eos = 0;
    for (let i = 0; i < kl.length; i++) if (mask[i]) { klSum += kl[i]!; negLp -= logprobs[i]!; }
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
}

function avg(x: readonly number[]): number {
  return x.length ? x.reduce((s, v) => s + v, 0) / x.length : 0;
}

function variance(x: readonly number[]): number {
  if (x.length < 2) return 0;
  const m = avg(x);
  return x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1);
}

/**
 * `alignkit ppo`: a plain config (model_name_or_path, reward_model_path or scorer, train_file / dataset_path of
 * prompts, output_dir, LoRA options, every PPOConfig option) → trains and saves the final policy and value head and
 * the tokenizer into output_dir.
 */
export async function runPPO(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const { runOnline } = await import('./rl/setup.js');
  return runOnline(config, opts, 'ppo', resolvePPOConfig, (args, deps) => new PPOTrainer(args, deps), (t) => t.valueHead.state());
}

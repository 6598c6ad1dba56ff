// GRPO (Shao et al. 2024, "DeepSeekMath"), with TRL's GRPOConfig names and defaults. k = num_generations
// completions per prompt; each completion's advantage is its score normalised within its group,
//   A_i = (r_i − mean_group) / (std_group + 1e-4)        (scale_rewards 'group'; 'batch' or 'none' as TRL)
// shared by all its tokens; the loss is the per-token clipped surrogate plus β times the k3 KL to the reference,
// aggregated as loss_type says (grpo, bnpo, dr_grpo, dapo).
import { TRAINING_DEFAULTS, resolveArgs } from './args.js';
import { type RewardScaling, groupNormalizedAdvantages } from './rl/baselines.js';
import { CRITIC_FREE_DEFAULTS, type CriticFreeConfig, CriticFreeTrainer, type MicroLoss, type RolloutContext, checkCriticFreeConfig, rewardMetrics } from './rl/critic-free.js';
import { type GrpoLossType, aggregateTokenLoss, grpoPerTokenLoss } from './rl/losses.js';
import type { Metrics, OnlineTrainerDeps } from './rl/online-trainer.js';
import type { RunOptions, RunResult } from './sft.js';
import { oneOf } from './rl/options.js';
import { Tensor } from '../engine/tensor.js';
import type { ResponseForward } from './rl/rollout.js';

export interface GRPOConfig extends CriticFreeConfig {
  scale_rewards: RewardScaling;
  loss_type: GrpoLossType;
}

export const GRPO_DEFAULTS: GRPOConfig = {
  ...TRAINING_DEFAULTS,
  ...CRITIC_FREE_DEFAULTS,
  learning_rate: 1e-6,
  logging_steps: 10,
  num_generations: 8,
  beta: 0,
  scale_rewards: 'group',
  loss_type: 'dapo',
};

export function resolveGRPOConfig(given: Record<string, unknown>, source = 'GRPOConfig'): GRPOConfig {
  const g = { ...given };
  // TRL also accepts booleans: true = 'group', false = 'none'
  if (g.scale_rewards === true || g.scale_rewards === 'true') g.scale_rewards = 'group';
  if (g.scale_rewards === false || g.scale_rewards === 'false') g.scale_rewards = 'none';
  const c = resolveArgs(GRPO_DEFAULTS, g, source);
  checkCriticFreeConfig(c, source);
  c.scale_rewards = oneOf(source, 'scale_rewards', c.scale_rewards, ['group', 'batch', 'none'] as const);
  c.loss_type = oneOf(source, 'loss_type', c.loss_type, ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const);
  return c;
}

export class GRPOTrainer extends CriticFreeTrainer<GRPOConfig> {
  constructor(config: Partial<GRPOConfig> | Record<string, unknown>, deps: OnlineTrainerDeps) {
    super(resolveGRPOConfig(config as Record<string, unknown>), deps, 'grpo');
  }

  protected needsOldLogprobs(): boolean {
    return false; // with one step per rollout the policy has not moved: ratio = 1 with the live log-probs detached
  }

  protected computeAdvantages(ctx: RolloutContext): Metrics {
    const k = this.args.num_generations;
    const { advantages, groupStd } = groupNormalizedAdvantages(ctx.scores, k, this.args.scale_rewards);
    ctx.advantages.set(advantages);
    return rewardMetrics(ctx.scores, k, groupStd);
  }

  protected microLoss(f: ResponseForward, rows: Int32Array, ctx: RolloutContext): MicroLoss {
    const R = ctx.batch.R, a = this.args;
    const maskT = this.rowsTensor(ctx.mask, rows, R);
    const oldT = ctx.old ? this.rowsTensor(ctx.old, rows, R) : f.logprobs.detach();
    const refT = ctx.ref ? this.rowsTensor(ctx.ref, rows, R) : null;
    const adv = Tensor.from(Array.from(rows, (r) => ctx.advantages[r]!), [rows.length]);
    const { perToken, kl, stats } = grpoPerTokenLoss(f.logprobs, oldT, refT, adv, maskT, { beta: a.beta, epsilonLow: this.epsilonLow, epsilonHigh: this.epsilonHigh });
    const loss = aggregateTokenLoss(perToken, maskT, a.loss_type, {
      gradientAccumulationSteps: ctx.microBatches,
      maxCompletionLength: a.max_completion_length,
      tokensInBatch: ctx.tokensInBatch,
    });
    const metrics: Metrics = { 'clip_ratio/low_mean': stats.lowClipped, 'clip_ratio/high_mean': stats.highClipped, 'clip_ratio/region_mean': stats.regionClipped };
    if (kl) {
      const m = maskT.toArray();
      let s = 0, n = 0;
      for (let i = 0; i < m.length; i++) if (m[i]) { s += kl[i]!; n++; }
      metrics.kl = n ? s / n : 0;
    }
    return { loss, metrics };
  }
}

/**
 * `alignkit grpo`: a plain config (model_name_or_path, reward_model_path or scorer, train_file / dataset_path of
 * prompts, output_dir, LoRA options, every GRPOConfig option) → trains and saves the final policy and
 * the tokenizer into output_dir.
 */
export async function runGRPO(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const { runOnline } = await import('./rl/setup.js');
  return runOnline(config, opts, 'grpo', resolveGRPOConfig, (args, deps) => new GRPOTrainer(args, deps));
}

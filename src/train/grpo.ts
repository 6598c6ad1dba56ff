// GRPO (Shao et al. 2024, "DeepSeekMath"), with TRL's GRPOConfig names and defaults. k = num_generations
// completions per prompt; each completion's advantage is its score normalised within its group,
//   A_i = (r_i − mean_group) / (std_group + 1e-4)        (scale_rewards 'group'; 'batch' or 'none' as TRL)
// shared by all its tokens; the loss is the per-token clipped surrogate plus β times the k3 KL to the reference,
// aggregated as loss_type says (grpo, bnpo, dr_grpo, dapo).
import { Tensor } from '../engine/tensor.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import { NOT_IMPLEMENTED } from './args.js';
import { groupNormalizedAdvantages } from './rl/baselines.js';
import { CRITIC_FREE_FIELDS, CriticFreeTrainer, type MicroLoss, type RolloutContext, checkGenerationBatch, rewardMetrics } from './rl/critic-free.js';
import { aggregateTokenLoss, grpoPerTokenLoss } from './rl/losses.js';
import type { Metrics, OnlineInputs } from './rl/online-trainer.js';
import type { ResponseForward } from './rl/rollout.js';

/** GRPOConfig: TRL's options and defaults (num_generations 8, beta 0, scale_rewards group, loss_type dapo). */
export const GRPO_FIELDS = {
  ...CRITIC_FREE_FIELDS,
  num_generations: f.integer(8, 'completions per prompt (the group size k)', { min: 2 }),
  scale_rewards: f.value<'group' | 'batch' | 'none'>(
    'group',
    "divide advantages by the std of the group ('group'), of the batch ('batch'), or not ('none'; true/false as TRL)",
    (v) => {
      if (v === true || v === 'true') return 'group';
      if (v === false || v === 'false') return 'none';
      if (v === 'group' || v === 'batch' || v === 'none') return v;
      throw new Error(`must be one of group, batch, none (or true / false), got ${JSON.stringify(v)}`);
    },
    { metavar: 'group|batch|none' },
  ),
  loss_type: f.choice(['grpo', 'bnpo', 'dr_grpo', 'dapo'], 'dapo', 'how per-token losses are aggregated'),
};

export const GRPOConfig = defineConfig('GRPOConfig', GRPO_FIELDS, checkGenerationBatch, NOT_IMPLEMENTED);
export type GRPOConfig = ConfigOf<typeof GRPOConfig>;

export class GRPOTrainer extends CriticFreeTrainer<typeof GRPO_FIELDS> {
  constructor(inputs: OnlineInputs<GRPOConfig>) {
    super(GRPOConfig, inputs, 'grpo');
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
    const R = ctx.batch.R,
      a = this.args;
    const maskT = this.rowsTensor(ctx.mask, rows, R);
    const oldT = ctx.old ? this.rowsTensor(ctx.old, rows, R) : f.logprobs.detach();
    const refT = ctx.ref ? this.rowsTensor(ctx.ref, rows, R) : null;
    const adv = Tensor.from(
      Array.from(rows, (r) => ctx.advantages[r]!),
      [rows.length],
    );
    const { perToken, kl, stats } = grpoPerTokenLoss(f.logprobs, oldT, refT, adv, maskT, { beta: a.beta, epsilonLow: this.epsilonLow, epsilonHigh: this.epsilonHigh });
    const loss = aggregateTokenLoss(perToken, maskT, a.loss_type, {
      gradientAccumulationSteps: ctx.microBatches,
      maxCompletionLength: a.max_completion_length,
      tokensInBatch: ctx.tokensInBatch,
    });
    const metrics: Metrics = { 'clip_ratio/low_mean': stats.lowClipped, 'clip_ratio/high_mean': stats.highClipped, 'clip_ratio/region_mean': stats.regionClipped };
    if (kl) {
      const m = maskT.toArray();
      let s = 0,
        n = 0;
      for (let i = 0; i < m.length; i++)
        if (m[i]) {
          s += kl[i]!;
          n++;
        }
      metrics.kl = n ? s / n : 0;
    }
    return { loss, metrics };
  }
}

// RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
// Feedback in LLMs"), with TRL's RLOOConfig names and defaults. k = num_generations completions per prompt;
// the KL to the reference is part of the reward, per sequence with the k1 estimator:
//   r_i = score_i − β·Σ_t (log π_old(y_t) − log π_ref(y_t)),    A_i = r_i − mean_{j≠i} r_j
// and the loss is the clipped surrogate on the sequence ratio ρ_i = exp(Σ_t log π − Σ_t log π_old).
import { scale } from '../engine/ops/elementwise.js';
import { Tensor } from '../engine/tensor.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import { NOT_IMPLEMENTED } from './args.js';
import { leaveOneOutAdvantages, stdUnbiased } from './rl/baselines.js';
import { CRITIC_FREE_FIELDS, CriticFreeTrainer, type MicroLoss, type RolloutContext, checkGenerationBatch, rewardMetrics } from './rl/critic-free.js';
import { rlooSequenceLoss } from './rl/losses.js';
import type { Metrics, OnlineInputs } from './rl/online-trainer.js';
import type { ResponseForward } from './rl/rollout.js';

/** RLOOConfig: TRL's options and defaults (learning_rate 1e-6, num_generations 2, beta 0.05). */
export const RLOO_FIELDS = {
  ...CRITIC_FREE_FIELDS,
  beta: f.number(0.05, 'KL coefficient against the reference, in the reward (0: no reference pass)', { min: 0 }),
  normalize_advantages: f.boolean(false, 'whiten the advantages over the batch: (A − mean)/(std + 1e-4)'),
};

export const RLOOConfig = defineConfig('RLOOConfig', RLOO_FIELDS, checkGenerationBatch, NOT_IMPLEMENTED);
export type RLOOConfig = ConfigOf<typeof RLOOConfig>;

export class RLOOTrainer extends CriticFreeTrainer<typeof RLOO_FIELDS> {
  /** Σ_t log π_old over each completion's loss tokens [B] (set per rollout) */
  private oldSeq = new Float64Array(0);

  constructor(inputs: OnlineInputs<RLOOConfig>) {
    super(RLOOConfig, inputs, 'rloo');
  }

  protected needsOldLogprobs(): boolean {
    return true;
  }

  protected computeAdvantages(ctx: RolloutContext): Metrics {
    const { batch, mask, old, ref, scores } = ctx;
    const { B, R } = batch,
      beta = this.args.beta;
    const rewards = Float64Array.from(scores);
    this.oldSeq = new Float64Array(B);
    let klTok = 0;
    for (let b = 0; b < B; b++) {
      let seqKl = 0,
        lp = 0;
      for (let t = 0; t < R; t++) {
        const i = b * R + t;
        if (!mask[i]) continue;
        lp += old![i]!;
        if (ref) seqKl += old![i]! - ref[i]!;
      }
      this.oldSeq[b] = lp;
      klTok += seqKl;
      rewards[b]! -= beta * seqKl;
    }
    let adv = leaveOneOutAdvantages(rewards, this.args.num_generations);
    if (this.args.normalize_advantages) {
      let m = 0;
      for (const v of adv) m += v;
      m /= B;
      const sd = stdUnbiased(adv);
      adv = adv.map((v) => (v - m) / (sd + 1e-4));
    }
    ctx.advantages.set(adv);
    const k = this.args.num_generations;
    const groupStd = new Float64Array(B);
    for (let g = 0; g < B / k; g++) groupStd.fill(stdUnbiased(rewards, g * k, g * k + k), g * k, g * k + k);
    const m = rewardMetrics(scores, k, groupStd);
    if (ref) m.kl = ctx.tokensInBatch ? klTok / ctx.tokensInBatch : 0;
    return m;
  }

  protected microLoss(f: ResponseForward, rows: Int32Array, ctx: RolloutContext): MicroLoss {
    const R = ctx.batch.R;
    const maskT = this.rowsTensor(ctx.mask, rows, R);
    const oldSeq = Tensor.from(
      Array.from(rows, (r) => this.oldSeq[r]!),
      [rows.length],
    );
    const adv = Tensor.from(
      Array.from(rows, (r) => ctx.advantages[r]!),
      [rows.length],
    );
    const { loss, stats } = rlooSequenceLoss(f.logprobs, maskT, oldSeq, adv, { epsilonLow: this.epsilonLow, epsilonHigh: this.epsilonHigh });
    return {
      loss: scale(loss, rows.length / ctx.batch.B),
      metrics: { 'clip_ratio/low_mean': stats.lowClipped, 'clip_ratio/high_mean': stats.highClipped, 'clip_ratio/region_mean': stats.regionClipped },
    };
  }
}

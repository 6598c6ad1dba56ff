// RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
// Feedback in LLMs"), with TRL's RLOOConfig names and defaults. k = num_generations completions per prompt;
// the KL to the reference is part of the reward, per sequence with the k1 estimator:
//   r_i = score_i − β·Σ_t (log π_old(y_t) − log π_ref(y_t)),    A_i = r_i − mean_{j≠i} r_j
// and the loss is the clipped surrogate on the sequence ratio ρ_i = exp(Σ_t log π − Σ_t log π_old).
import { scale } from '../engine/ops/elementwise.js';
import { Tensor } from '../engine/tensor.js';
import { TRAINING_DEFAULTS, resolveArgs } from './args.js';
import { leaveOneOutAdvantages, stdUnbiased } from './rl/baselines.js';
import { CRITIC_FREE_DEFAULTS, type CriticFreeConfig, CriticFreeTrainer, type MicroLoss, type RolloutContext, checkCriticFreeConfig, rewardMetrics } from './rl/critic-free.js';
import { rlooSequenceLoss } from './rl/losses.js';
import type { Metrics, OnlineTrainerDeps } from './rl/online-trainer.js';
import type { RunOptions, RunResult } from './sft.js';
import type { ResponseForward } from './rl/rollout.js';

export interface RLOOConfig extends CriticFreeConfig {
  /** whiten the advantages over the batch: (A − mean)/(std + 1e-4) */
  normalize_advantages: boolean;
}

export const RLOO_DEFAULTS: RLOOConfig = {
  ...TRAINING_DEFAULTS,
  ...CRITIC_FREE_DEFAULTS,
  learning_rate: 1e-6,
  logging_steps: 10,
  num_generations: 2,
  beta: 0.05,
  normalize_advantages: false,
};

export function resolveRLOOConfig(given: Record<string, unknown>, source = 'RLOOConfig'): RLOOConfig {
  const c = resolveArgs(RLOO_DEFAULTS, given, source);
  checkCriticFreeConfig(c, source);
  return c;
}

export class RLOOTrainer extends CriticFreeTrainer<RLOOConfig> {
  /** Σ_t log π_old over each completion's loss tokens [B] (set per rollout) */
  private oldSeq = new Float64Array(0);

  constructor(config: Partial<RLOOConfig> | Record<string, unknown>, deps: OnlineTrainerDeps) {
    super(resolveRLOOConfig(config as Record<string, unknown>), deps, 'rloo');
  }

  protected needsOldLogprobs(): boolean {
    return true;
  }

  protected computeAdvantages(ctx: RolloutContext): Metrics {
    const { batch, mask, old, ref, scores } = ctx;
    const { B, R } = batch, beta = this.args.beta;
    const rewards = Float64Array.from(scores);
    this.oldSeq = new Float64Array(B);
    let klTok = 0;
    for (let b = 0; b < B; b++) {
      let seqKl = 0, lp = 0;
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
    const oldSeq = Tensor.from(Array.from(rows, (r) => this.oldSeq[r]!), [rows.length]);
    const adv = Tensor.from(Array.from(rows, (r) => ctx.advantages[r]!), [rows.length]);
    const { loss, stats } = rlooSequenceLoss(f.logprobs, maskT, oldSeq, adv, { epsilonLow: this.epsilonLow, epsilonHigh: this.epsilonHigh });
    return {
      loss: scale(loss, rows.length / ctx.batch.B),
      metrics: { 'clip_ratio/low_mean': stats.lowClipped, 'clip_ratio/high_mean': stats.highClipped, 'clip_ratio/region_mean': stats.regionClipped },
    };
  }
}

/**
 * `alignkit rloo`: a plain config (model_name_or_path, reward_model_path or scorer, train_file / dataset_path of
 * prompts, output_dir, LoRA options, every RLOOConfig option) → trains and saves the final policy and
 * the tokenizer into output_dir.
 */
export async function runRLOO(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const { runOnline } = await import('./rl/setup.js');
  return runOnline(config, opts, 'rloo', resolveRLOOConfig, (args, deps) => new RLOOTrainer(args, deps));
}

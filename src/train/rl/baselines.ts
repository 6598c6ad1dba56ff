// Critic-free baselines over groups of k completions of the same prompt (rows g·k … g·k+k−1 share prompt g):
//   RLOO (Ahmadian et al. 2024):   A_i = r_i − (Σ_{j≠i} r_j)/(k − 1)          (leave-one-out mean)
//   GRPO (Shao et al. 2024):       A_i = (r_i − mean_group)/(std_group + 1e-4)  (std unbiased; 'batch' uses the
//                                  whole batch's std, 'none' only centres), as TRL's scale_rewards.

function groups(n: number, k: number, op: string): number {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${op}: group size must be a positive integer, got ${k}`);
  if (n % k !== 0) throw new Error(`${op}: ${n} rewards do not split into groups of ${k}`);
  return n / k;
}

/** Leave-one-out advantages r_i − mean of the other k−1 rewards of its group (k >= 2). */
export function leaveOneOutAdvantages(rewards: ArrayLike<number>, k: number): Float64Array {
  const G = groups(rewards.length, k, 'leaveOneOutAdvantages');
  if (k < 2) throw new Error('leaveOneOutAdvantages: the leave-one-out baseline needs at least 2 samples per prompt');
  const out = new Float64Array(rewards.length);
  for (let g = 0; g < G; g++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += rewards[g * k + j]!;
    for (let j = 0; j < k; j++) {
      const r = rewards[g * k + j]!;
      out[g * k + j] = r - (s - r) / (k - 1);
    }
  }
  return out;
}

type RewardScaling = 'group' | 'batch' | 'none';

/** Unbiased standard deviation (0 for a single value). */
export function stdUnbiased(x: ArrayLike<number>, from = 0, to = x.length): number {
  const n = to - from;
  if (n < 2) return 0;
  let m = 0;
  for (let i = from; i < to; i++) m += x[i]!;
  m /= n;
  let s = 0;
  for (let i = from; i < to; i++) s += (x[i]! - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/** GRPO's group-relative advantages; also returns each row's group std (for frac_reward_zero_std). */
export function groupNormalizedAdvantages(rewards: ArrayLike<number>, k: number, scale: RewardScaling = 'group'): { advantages: Float64Array; groupStd: Float64Array } {
  const G = groups(rewards.length, k, 'groupNormalizedAdvantages');
  if (scale !== 'group' && scale !== 'batch' && scale !== 'none') throw new Error(`unknown scale_rewards '${String(scale)}' (group, batch, none)`);
  const advantages = new Float64Array(rewards.length),
    groupStd = new Float64Array(rewards.length);
  const batchStd = stdUnbiased(rewards);
  for (let g = 0; g < G; g++) {
    let m = 0;
    for (let j = 0; j < k; j++) m += rewards[g * k + j]!;
    m /= k;
    const sd = stdUnbiased(rewards, g * k, g * k + k);
    const div = scale === 'group' ? sd + 1e-4 : scale === 'batch' ? batchStd + 1e-4 : 1;
    for (let j = 0; j < k; j++) {
      advantages[g * k + j] = (rewards[g * k + j]! - m) / div;
      groupStd[g * k + j] = sd;
    }
  }
  return { advantages, groupStd };
}

// Generalized Advantage Estimation (Schulman et al. 2016) over the response tokens of a rollout batch.
//   δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γ·λ·A_{t+1},   returns R_t = A_t + V_t
// Each row is one episode that ends at its last real token (mask 1): the value after the end is 0, so the
// bootstrap stops there, and masked positions get advantage and return 0.

interface GaeResult {
  advantages: Float64Array;
  returns: Float64Array;
}

/**
 * rewards, values and mask are [B·T] row-major (T response positions per row); mask marks a prefix of each
 * row (the real response tokens). Computed in float64.
 */
export function gae(rewards: ArrayLike<number>, values: ArrayLike<number>, mask: ArrayLike<number>, B: number, T: number, gamma: number, lam: number): GaeResult {
  const n = B * T;
  if (rewards.length !== n || values.length !== n || mask.length !== n)
    throw new Error(`gae: rewards (${rewards.length}), values (${values.length}) and mask (${mask.length}) must all have B·T = ${n} entries`);
  if (!(gamma >= 0 && gamma <= 1) || !(lam >= 0 && lam <= 1)) throw new Error(`gae: gamma ${gamma} and lam ${lam} must lie in [0, 1]`);
  const advantages = new Float64Array(n),
    returns = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    let next = 0; // A_{t+1}
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      if (!mask[i]) {
        next = 0;
        continue;
      }
      const nextValue = t + 1 < T && mask[i + 1] ? values[i + 1]! : 0;
      const delta = rewards[i]! + gamma * nextValue - values[i]!;
      next = delta + gamma * lam * next;
      advantages[i] = next;
      returns[i] = next + values[i]!;
    }
  }
  return { advantages, returns };
}

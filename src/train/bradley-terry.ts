// The reward-model loss (Bradley & Terry 1952, as used by Ouyang et al. 2022): the probability that the chosen
// completion beats the rejected one is σ(r_c − r_r), so the loss over N pairs is
//   L = mean( −log σ(r_c − r_r − m) )  +  c · mean( (r_c + r_r)² )
// with an optional per-pair margin m (Llama 2's margin loss, Touvron et al. 2023) and an optional centring term
// with coefficient c = center_rewards_coefficient (Eisenstein et al. 2023, eq. 2) that keeps rewards near zero.
// With soft labels p (the probability that chosen is the better one: AI feedback, or the fraction of annotators
// who preferred it) the first term is the cross-entropy against p instead of against 1:
//   −p·log σ(r_c − r_r − m) − (1 − p)·log σ(r_r − r_c + m)
import '../engine/ops/methods.js';
import { Tensor } from '../engine/tensor.js';

export function bradleyTerryLoss(
  chosen: Tensor,
  rejected: Tensor,
  opts: { margin?: ArrayLike<number> | Tensor | null; centerRewardsCoefficient?: number | null; softLabel?: ArrayLike<number> | null } = {},
): Tensor {
  if (chosen.ndim !== 1 || rejected.ndim !== 1 || chosen.shape[0] !== rejected.shape[0])
    throw new Error(`bradleyTerryLoss: chosen ${chosen.describe()} and rejected ${rejected.describe()} must both be [N]`);
  const n = chosen.shape[0]!;
  let diff = chosen.sub(rejected);
  const m = opts.margin;
  if (m !== null && m !== undefined) {
    const mt = m instanceof Tensor ? m : Tensor.from(m, [n]);
    if (mt.size !== n) throw new Error(`bradleyTerryLoss: ${mt.size} margins for ${n} pairs`);
    diff = diff.sub(mt);
  }
  let loss: Tensor;
  const p = opts.softLabel;
  if (p !== null && p !== undefined) {
    if (p.length !== n) throw new Error(`bradleyTerryLoss: ${p.length} soft labels for ${n} pairs`);
    for (let i = 0; i < n; i++) if (!(p[i]! >= 0 && p[i]! <= 1)) throw new Error(`bradleyTerryLoss: soft label ${p[i]} of pair ${i} is not a probability in [0, 1]`);
    const pt = Tensor.from(p, [n]),
      qt = Tensor.from(
        Array.from(p, (v) => 1 - v),
        [n],
      );
    // −p·log σ(d) − (1 − p)·log σ(−d)
    loss = pt.mul(diff.logsigmoid()).add(qt.mul(diff.neg().logsigmoid())).neg().mean();
  } else loss = diff.logsigmoid().neg().mean();
  const c = opts.centerRewardsCoefficient;
  if (c !== null && c !== undefined && c !== 0) loss = loss.add(chosen.add(rejected).square().mean().scale(c));
  return loss;
}

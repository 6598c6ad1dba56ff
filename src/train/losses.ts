// Preference losses, written as the papers write them.
import { add, logsigmoid, mean, mul, neg, relu, scale, square, sub } from '../engine/ops/elementwise.js';
import { Tensor } from '../engine/tensor.js';

export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge' | 'robust';

/**
 * DPO (Rafailov et al. 2023) and its variants over per-sequence log-probs [N] of chosen (y_w) and rejected
 * (y_l) completions under the policy π and the frozen reference π_ref:
 *   h = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))
 *   sigmoid: −log σ(β·h)·(1−ε) − log σ(−β·h)·ε          (ε = label_smoothing, conservative DPO)
 *   robust:  (−log σ(β·h)·(1−ε) + log σ(−β·h)·ε) / (1−2ε)  (Chowdhury et al. 2024)
 *   hinge:   max(0, 1 − β·h)                               (SLiC)
 *   ipo:     (h − 1/(2β))²                                 (Azar et al. 2023; TRL averages log-probs per token for IPO)
 * Returns the mean loss and the implicit rewards β·(log π − log π_ref) of chosen and rejected, [N] each.
 */
export function dpoLoss(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: Tensor,
  refRejected: Tensor,
  opts: { beta: number; lossType?: DpoLossType; labelSmoothing?: number | ArrayLike<number> },
): { loss: Tensor; chosenRewards: Tensor; rejectedRewards: Tensor } {
  const beta = opts.beta;
  const ls = opts.labelSmoothing ?? 0;
  // ε may differ per pair: a soft label p (AI feedback, annotator agreement) is label smoothing ε = 1 − p
  const perPair = typeof ls !== 'number';
  if (perPair && ls.length !== policyChosen.shape[0]) throw new Error(`dpoLoss: ${ls.length} label_smoothing values for ${policyChosen.shape[0]} pairs`);
  const eps: number | Tensor = perPair ? Tensor.from(ls, [ls.length]) : ls;
  const one = (x: number | Tensor): number | Tensor => (typeof x === 'number' ? 1 - x : sub(1, x));
  const times = (t: Tensor, x: number | Tensor): Tensor => (typeof x === 'number' ? scale(t, x) : mul(t, x));
  const chosenLogratio = sub(policyChosen, refChosen);
  const rejectedLogratio = sub(policyRejected, refRejected);
  const h = sub(chosenLogratio, rejectedLogratio);
  let losses: Tensor;
  switch (opts.lossType ?? 'sigmoid') {
    case 'sigmoid':
      losses = sub(times(neg(logsigmoid(scale(h, beta))), one(eps)), times(logsigmoid(scale(h, -beta)), eps));
      break;
    case 'robust': {
      const e = perPair ? Array.from(ls as ArrayLike<number>) : [ls as number];
      if (e.some((v) => v >= 0.5)) throw new Error('robust DPO needs label_smoothing < 0.5');
      const inv = perPair ? Tensor.from(e.map((v) => 1 / (1 - 2 * v)), [e.length]) : 1 / (1 - 2 * (ls as number));
      losses = times(add(times(neg(logsigmoid(scale(h, beta))), one(eps)), times(logsigmoid(scale(h, -beta)), eps)), inv);
      break;
    }
    case 'hinge':
      if (perPair) throw new Error('dpoLoss: per-pair label smoothing applies to the sigmoid and robust losses');
      losses = relu(sub(1, scale(h, beta)));
      break;
    case 'ipo':
      if (perPair) throw new Error('dpoLoss: per-pair label smoothing applies to the sigmoid and robust losses');
      losses = square(sub(h, 1 / (2 * beta)));
      break;
    default:
      throw new Error(`unknown DPO loss_type '${String(opts.lossType)}' (sigmoid, ipo, hinge, robust)`);
  }
  return {
    loss: mean(losses),
    chosenRewards: scale(chosenLogratio, beta),
    rejectedRewards: scale(rejectedLogratio, beta),
  };
}

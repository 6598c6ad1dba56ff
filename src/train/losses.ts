// Preference losses, written as the papers write them.
import '../engine/ops/methods.js';
import { sub } from '../engine/ops/elementwise.js';
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
  const keep: number | Tensor = typeof eps === 'number' ? 1 - eps : sub(1, eps);
  const chosenLogratio = policyChosen.sub(refChosen);
  const rejectedLogratio = policyRejected.sub(refRejected);
  const h = chosenLogratio.sub(rejectedLogratio);
  let losses: Tensor;
  switch (opts.lossType ?? 'sigmoid') {
    case 'sigmoid':
      // −log σ(βh)·(1−ε) − log σ(−βh)·ε
      losses = h.scale(beta).logsigmoid().neg().mul(keep).sub(h.scale(-beta).logsigmoid().mul(eps));
      break;
    case 'robust': {
      const e = perPair ? Array.from(ls as ArrayLike<number>) : [ls as number];
      if (e.some((v) => v >= 0.5)) throw new Error('robust DPO needs label_smoothing < 0.5');
      const norm = perPair
        ? Tensor.from(
            e.map((v) => 1 - 2 * v),
            [e.length],
          )
        : 1 - 2 * (ls as number);
      // (−log σ(βh)·(1−ε) + log σ(−βh)·ε) / (1 − 2ε)
      losses = h.scale(beta).logsigmoid().neg().mul(keep).add(h.scale(-beta).logsigmoid().mul(eps)).div(norm);
      break;
    }
    case 'hinge':
      if (perPair) throw new Error('dpoLoss: per-pair label smoothing applies to the sigmoid and robust losses');
      // max(0, 1 − βh)
      losses = sub(1, h.scale(beta)).relu();
      break;
    case 'ipo':
      if (perPair) throw new Error('dpoLoss: per-pair label smoothing applies to the sigmoid and robust losses');
      // (h − 1/(2β))²
      losses = h.sub(1 / (2 * beta)).square();
      break;
    default:
      throw new Error(`unknown DPO loss_type '${String(opts.lossType)}' (sigmoid, ipo, hinge, robust)`);
  }
  return { loss: losses.mean(), chosenRewards: chosenLogratio.scale(beta), rejectedRewards: rejectedLogratio.scale(beta) };
}

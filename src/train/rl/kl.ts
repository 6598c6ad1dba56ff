// KL between the policy π and the reference π_ref estimated from samples of π (Schulman, "Approximating KL
// Divergence", 2020), per token, with r = π_ref(x)/π(x):
//   k1 = −log r = log π − log π_ref            (unbiased, can be negative)
//   k3 = (r − 1) − log r                        (unbiased, always >= 0, lower variance)
// and the KL penalty coefficient: fixed, or adapted towards a target KL (Ziegler et al. 2019):
//   e = clip(KL/target − 1, −0.2, 0.2),   β ← β·(1 + e·n/horizon)   after each batch of n episodes.

type KlEstimator = 'k1' | 'k3';

/** One token's estimate from log π and log π_ref. */
export function klEstimate(logp: number, refLogp: number, estimator: KlEstimator): number {
  const logr = refLogp - logp;
  if (estimator === 'k1') return -logr;
  if (estimator === 'k3') return Math.expm1(logr) - logr;
  throw new Error(`unknown kl_estimator '${String(estimator)}' (k1, k3)`);
}

/** Per-token estimates over [N] log-probs; 0 where mask is 0. */
export function klPerToken(logp: ArrayLike<number>, refLogp: ArrayLike<number>, mask: ArrayLike<number>, estimator: KlEstimator): Float64Array {
  if (logp.length !== refLogp.length || logp.length !== mask.length) throw new Error(`klPerToken: ${logp.length} log-probs, ${refLogp.length} reference log-probs, ${mask.length} mask entries`);
  const out = new Float64Array(logp.length);
  for (let i = 0; i < out.length; i++) if (mask[i]) out[i] = klEstimate(logp[i]!, refLogp[i]!, estimator);
  return out;
}

export interface KlControllerState {
  kind: 'fixed' | 'adaptive';
  value: number;
}

/** A constant coefficient. */
export class FixedKLController {
  constructor(public value: number) {}
  update(_currentKl: number, _nSteps: number): void {}
  getState(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }
  setState(s: KlControllerState): void {
    this.value = s.value;
  }
}

/** Ziegler et al. (2019): moves β so that the KL per episode approaches `target` on a time scale of `horizon` episodes. */
export class AdaptiveKLController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0)) throw new Error(`adaptive KL control needs target > 0, got ${target}`);
    if (!(horizon > 0)) throw new Error(`adaptive KL control needs horizon > 0, got ${horizon}`);
  }
  /** currentKl: the batch's mean KL per episode; nSteps: episodes in the batch. */
  update(currentKl: number, nSteps: number): void {
    const err = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
  getState(): KlControllerState {
    return { kind: 'adaptive', value: this.value };
  }
  setState(s: KlControllerState): void {
    this.value = s.value;
  }
}

export type KLController = FixedKLController | AdaptiveKLController;

// The surrogate losses of the online trainers, on the autograd engine, written as the papers write them.
//   PPO policy (Schulman et al. 2017), per token with ρ = exp(log π − log π_old):
//       L = mean_mask( max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) )
//   PPO value, clipped around the rollout's values V_old:
//       L = ½·mean_mask( max((V − R)², (V_old + clip(V − V_old, −ε_v, ε_v) − R)²) )
//   GRPO (Shao et al. 2024, as TRL), per token, plus β times the k3 KL to the reference:
//       ℓ_t = −min(ρ_t·A, clip(ρ_t, 1−ε_low, 1+ε_high)·A) + β·(exp(log π_ref − log π) − (log π_ref − log π) − 1)
//   RLOO (Ahmadian et al. 2024, as TRL), per sequence with ρ = exp(Σ_t log π − Σ_t log π_old):
//       L = mean( −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) )
// Statistics (clip fractions, approximate KL) are plain numbers computed from the same float32 values.
import '../../engine/ops/methods.js';
import { add, clamp, exp, mean, maskedMean, maskedSum, maximum, minimum, mul, neg, scale, square, sub } from '../../engine/ops/elementwise.js';
import { Tensor, noGrad, shapeStr } from '../../engine/tensor.js';

function sameShape(op: string, ...ts: [string, Tensor][]): void {
  const [, first] = ts[0]!;
  for (const [name, t] of ts)
    if (t.ndim !== first.ndim || t.shape.some((d, i) => d !== first.shape[i])) throw new Error(`${op}: ${name} ${shapeStr(t.shape)} does not match ${ts[0]![0]} ${shapeStr(first.shape)}`);
}

function maskedFrac(flags: (i: number) => boolean, mask: Float32Array): number {
  let c = 0,
    n = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      n++;
      if (flags(i)) c++;
    }
  return n ? c / n : 0;
}

interface PolicyLossResult {
  loss: Tensor;
  /** fraction of real tokens where the clipped term is the larger loss (policy/clipfrac) */
  clipfrac: number;
  /** ½·mean((log π − log π_old)²) over real tokens (policy/approxkl) */
  approxkl: number;
  /** mean ratio over real tokens (val/ratio) */
  ratioMean: number;
}

/** PPO's clipped policy loss over [B, T] tensors; mask is 1 on real response tokens. */
export function ppoPolicyLoss(newLogprobs: Tensor, oldLogprobs: Tensor, advantages: Tensor, mask: Tensor, cliprange: number): PolicyLossResult {
  sameShape('ppoPolicyLoss', ['newLogprobs', newLogprobs], ['oldLogprobs', oldLogprobs], ['advantages', advantages], ['mask', mask]);
  if (!(cliprange >= 0)) throw new Error(`ppoPolicyLoss: cliprange must be >= 0, got ${cliprange}`);
  const diff = newLogprobs.sub(oldLogprobs);
  const ratio = diff.exp();
  const pg1 = advantages.mul(ratio).neg();
  const pg2 = advantages.mul(clamp(ratio, 1 - cliprange, 1 + cliprange)).neg();
  const loss = maskedMean(maximum(pg1, pg2), mask);
  const m = mask.toArray(),
    a1 = pg1.toArray(),
    a2 = pg2.toArray(),
    r = ratio.toArray(),
    d = diff.toArray();
  let kl = 0,
    rs = 0,
    n = 0;
  for (let i = 0; i < m.length; i++)
    if (m[i]) {
      kl += d[i]! * d[i]!;
      rs += r[i]!;
      n++;
    }
  return { loss, clipfrac: maskedFrac((i) => a2[i]! > a1[i]!, m), approxkl: n ? (0.5 * kl) / n : 0, ratioMean: n ? rs / n : 1 };
}

interface ValueLossResult {
  loss: Tensor;
  /** fraction of real tokens where the clipped value gives the larger loss (val/clipfrac) */
  clipfrac: number;
}

/** PPO's clipped value loss (with the ½) over [B, T] tensors. */
export function ppoValueLoss(vpred: Tensor, oldValues: Tensor, returns: Tensor, mask: Tensor, cliprangeValue: number): ValueLossResult {
  sameShape('ppoValueLoss', ['vpred', vpred], ['oldValues', oldValues], ['returns', returns], ['mask', mask]);
  if (!(cliprangeValue >= 0)) throw new Error(`ppoValueLoss: cliprange_value must be >= 0, got ${cliprangeValue}`);
  const clipped = oldValues.add(clamp(vpred.sub(oldValues), -cliprangeValue, cliprangeValue));
  const l1 = vpred.sub(returns).square();
  const l2 = clipped.sub(returns).square();
  const loss = maskedMean(maximum(l1, l2), mask).scale(0.5);
  const m = mask.toArray(),
    a1 = l1.toArray(),
    a2 = l2.toArray();
  return { loss, clipfrac: maskedFrac((i) => a2[i]! > a1[i]!, m) };
}

interface SurrogateStats {
  /** fractions of real tokens (GRPO) or sequences (RLOO) clipped below (A < 0), above (A > 0), and either */
  lowClipped: number;
  highClipped: number;
  regionClipped: number;
}

function clipStats(ratio: Float32Array, adv: (i: number) => number, include: (i: number) => boolean, epsLow: number, epsHigh: number): SurrogateStats {
  let lo = 0,
    hi = 0,
    n = 0;
  for (let i = 0; i < ratio.length; i++) {
    if (!include(i)) continue;
    n++;
    if (ratio[i]! < 1 - epsLow && adv(i) < 0) lo++;
    else if (ratio[i]! > 1 + epsHigh && adv(i) > 0) hi++;
  }
  return n ? { lowClipped: lo / n, highClipped: hi / n, regionClipped: (lo + hi) / n } : { lowClipped: 0, highClipped: 0, regionClipped: 0 };
}

/**
 * GRPO's per-token loss [B, T] (not yet aggregated; see aggregateTokenLoss). advantages is [B] (one per
 * completion); refLogprobs may be null when beta is 0. Also returns the per-token k3 KL (no gradient) [B·T].
 */
export function grpoPerTokenLoss(
  logprobs: Tensor,
  oldLogprobs: Tensor,
  refLogprobs: Tensor | null,
  advantages: Tensor,
  mask: Tensor,
  o: { beta: number; epsilonLow: number; epsilonHigh: number },
): { perToken: Tensor; kl: Float32Array | null; stats: SurrogateStats } {
  sameShape('grpoPerTokenLoss', ['logprobs', logprobs], ['oldLogprobs', oldLogprobs], ['mask', mask]);
  const [B] = logprobs.shape as [number, number];
  if (advantages.ndim !== 1 || advantages.shape[0] !== B) throw new Error(`grpoPerTokenLoss: advantages ${shapeStr(advantages.shape)} must be [${B}]`);
  if (o.beta !== 0 && !refLogprobs) throw new Error('grpoPerTokenLoss: beta ≠ 0 needs reference log-probs');
  const A = advantages.reshape([B, 1]);
  const ratio = exp(sub(logprobs, oldLogprobs));
  let perToken = neg(minimum(mul(ratio, A), mul(clamp(ratio, 1 - o.epsilonLow, 1 + o.epsilonHigh), A)));
  let kl: Float32Array | null = null;
  if (o.beta !== 0) {
    sameShape('grpoPerTokenLoss', ['logprobs', logprobs], ['refLogprobs', refLogprobs!]);
    const d = sub(refLogprobs!, logprobs);
    const k3 = sub(sub(exp(d), d), 1);
    kl = noGrad(() => k3.toArray());
    perToken = add(perToken, scale(k3, o.beta));
  }
  const T = logprobs.shape[1]!;
  const a = advantages.toArray(),
    m = mask.toArray();
  const stats = clipStats(
    ratio.toArray(),
    (i) => a[Math.floor(i / T)]!,
    (i) => m[i] !== 0,
    o.epsilonLow,
    o.epsilonHigh,
  );
  return { perToken, kl, stats };
}

type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

/**
 * Reduces GRPO's per-token loss of one micro-batch as TRL's loss_type does:
 *   grpo:    mean over sequences of (Σ_t ℓ·m / Σ_t m)          ÷ gradient-accumulation steps
 *   bnpo:    Σ ℓ·m / Σ m over the micro-batch                   ÷ gradient-accumulation steps
 *   dr_grpo: Σ ℓ·m / (B · max_completion_length)               ÷ gradient-accumulation steps
 *   dapo:    Σ ℓ·m / (real tokens in the whole accumulated batch)
 */
export function aggregateTokenLoss(perToken: Tensor, mask: Tensor, lossType: GrpoLossType, o: { gradientAccumulationSteps: number; maxCompletionLength: number; tokensInBatch: number }): Tensor {
  sameShape('aggregateTokenLoss', ['perToken', perToken], ['mask', mask]);
  const B = perToken.shape[0]!,
    ga = o.gradientAccumulationSteps;
  switch (lossType) {
    case 'grpo': {
      const m = mask.toArray(),
        T = perToken.shape[1]!;
      const counts = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        let c = 0;
        for (let t = 0; t < T; t++) c += m[b * T + t]!;
        counts[b] = Math.max(1, c);
      }
      const perSeq = maskedSum(perToken, mask, 1); // [B]
      const inv = new Float32Array(B);
      for (let b = 0; b < B; b++) inv[b] = 1 / counts[b]!;
      return scale(mean(mul(perSeq, Tensor.from(inv, [B]))), 1 / ga);
    }
    case 'bnpo': {
      let c = 0;
      for (const v of mask.toArray()) c += v;
      return scale(maskedSum(perToken, mask), 1 / (Math.max(1, c) * ga));
    }
    case 'dr_grpo':
      return scale(maskedSum(perToken, mask), 1 / (B * o.maxCompletionLength * ga));
    case 'dapo':
      return scale(maskedSum(perToken, mask), 1 / Math.max(1, o.tokensInBatch));
    default:
      throw new Error(`unknown loss_type '${String(lossType)}' (grpo, bnpo, dr_grpo, dapo)`);
  }
}

/**
 * RLOO's sequence-level clipped loss: log-probs [B, T] summed over the mask per sequence, ratio against the
 * rollout's sequence log-probs oldSeqLogprobs [B], advantages [B]. Returns the mean over sequences.
 */
export function rlooSequenceLoss(logprobs: Tensor, mask: Tensor, oldSeqLogprobs: Tensor, advantages: Tensor, o: { epsilonLow: number; epsilonHigh: number }): { loss: Tensor; stats: SurrogateStats } {
  sameShape('rlooSequenceLoss', ['logprobs', logprobs], ['mask', mask]);
  const B = logprobs.shape[0]!;
  for (const [n, t] of [
    ['oldSeqLogprobs', oldSeqLogprobs],
    ['advantages', advantages],
  ] as const)
    if (t.ndim !== 1 || t.shape[0] !== B) throw new Error(`rlooSequenceLoss: ${n} ${shapeStr(t.shape)} must be [${B}]`);
  const seq = maskedSum(logprobs, mask, 1);
  const ratio = exp(sub(seq, oldSeqLogprobs));
  const per = neg(minimum(mul(ratio, advantages), mul(clamp(ratio, 1 - o.epsilonLow, 1 + o.epsilonHigh), advantages)));
  const a = advantages.toArray();
  return {
    loss: mean(per),
    stats: clipStats(
      ratio.toArray(),
      (i) => a[i]!,
      () => true,
      o.epsilonLow,
      o.epsilonHigh,
    ),
  };
}

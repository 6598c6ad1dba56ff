// Log-probabilities of the loss tokens of right-padded batches (the data layer's shifted loss masks): per token
// (SFT's cross-entropy), per sequence as a sum or a per-token average (DPO), and the no-grad statistics TRL
// logs next to them (token accuracy, entropy, mean logit).
import { mul, sum } from '../engine/ops/elementwise.js';
import { entropyFromLogits, selectiveLogSoftmax } from '../engine/ops/norm.js';
import { Tensor, noGrad } from '../engine/tensor.js';

/**
 * log p(ids[t+1] | ids[..t]) at every position t whose lossMask is 1, 0 elsewhere (no gradient there):
 * logits [B, T, V] → [B, T].
 */
export function lossTokenLogprobs(logits: Tensor, ids: Int32Array, lossMask: Float32Array, B: number, T: number): Tensor {
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) if (lossMask[b * T + t]) targets[b * T + t] = ids[b * T + t + 1]!;
  return selectiveLogSoftmax(logits, targets);
}

/** Loss tokens per row [B]. */
export function lossTokenCounts(lossMask: Float32Array, B: number, T: number): Float32Array {
  const n = new Float32Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) n[b] += lossMask[b * T + t]!;
  return n;
}

/** Per-row Σ of the loss tokens' log-probs [B]; with `average`, divided by each row's number of loss tokens. */
export function sequenceLogps(logits: Tensor, ids: Int32Array, lossMask: Float32Array, B: number, T: number, average = false): Tensor {
  const lp = sum(lossTokenLogprobs(logits, ids, lossMask, B, T), 1);
  if (!average) return lp;
  const n = lossTokenCounts(lossMask, B, T);
  for (let b = 0; b < B; b++) if (n[b] === 0) throw new Error(`sequenceLogps: row ${b} has no loss token`);
  return mul(lp, Tensor.from(Float32Array.from(n, (v) => 1 / v), [B]));
}

/** Statistics of the logits at the loss positions (no gradient): token accuracy, mean entropy, mean logit. */
export function logitStats(logits: Tensor, ids: Int32Array, lossMask: Float32Array, B: number, T: number): { accuracy: number; entropy: number; meanLogit: number; count: number } {
  return noGrad(() => {
    const lc = logits.contiguous();
    const V = lc.shape[2]!;
    const d = lc.data, off = lc.offset;
    const ent = entropyFromLogits(lc);
    const e = ent.data, eo = ent.offset;
    let correct = 0, count = 0, entSum = 0, logitSum = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T - 1; t++) {
        const r = b * T + t;
        if (!lossMask[r]) continue;
        const base = off + r * V;
        let best = 0, bestV = d[base]!, s = 0;
        for (let v = 0; v < V; v++) {
          const x = d[base + v]!;
          s += x;
          if (x > bestV) [best, bestV] = [v, x];
        }
        if (best === ids[r + 1]) correct++;
        count++;
        entSum += e[eo + r]!;
        logitSum += s / V;
      }
    }
    ent.dispose();
    if (lc !== logits) lc.dispose();
    return { accuracy: count ? correct / count : 0, entropy: count ? entSum / count : 0, meanLogit: count ? logitSum / count : 0, count };
  });
}

/**
 * Mean logit (over the vocabulary, then over the loss positions) of rows [r0, r1) — TRL's logits/chosen and
 * logits/rejected. No gradient.
 */
export function meanLossLogit(logits: Tensor, lossMask: Float32Array, B: number, T: number, r0 = 0, r1 = B): number {
  return noGrad(() => {
    const V = logits.shape[2]!;
    const rowMeans = sum(logits.slice(0, r0, r1), 2);
    const d = rowMeans.toArray();
    rowMeans.dispose();
    let s = 0, n = 0;
    for (let b = r0; b < r1; b++) {
      for (let t = 0; t < T; t++) {
        if (!lossMask[b * T + t]) continue;
        s += d[(b - r0) * T + t]! / V;
        n++;
      }
    }
    return n ? s / n : 0;
  });
}

// Log-probabilities of the loss tokens of right-padded batches (the data layer's shifted loss masks: position t
// is 1 when token t+1 is a loss token), computing the LM head only at those positions — the logits of prompt
// and padding positions are never made (nextTokenLogprobsAt) — per token (SFT's cross-entropy), per sequence as a
// sum or a per-token average (DPO), and the no-grad statistics TRL logs next to them (token accuracy, entropy,
// mean logit) from the same selected logits.
import { mul, sum } from '../engine/ops/elementwise.js';
import { entropyFromLogits } from '../engine/ops/norm.js';
import { Tensor, noGrad } from '../engine/tensor.js';
import { type SelectedLogprobs, nextTokenLogprobsAt } from '../models/heads.js';
import type { ForwardOptions, Transformer } from '../models/transformer.js';

/**
 * The forward pass of a batch up to the loss: log p(ids[t+1] | ids[..t]) [B, T] at every loss position (0, and no
 * gradient, elsewhere), and the logits of the loss positions only, [R, V].
 */
export function lossTokenLogprobs(model: Transformer, ids: Int32Array, lossMask: Float32Array, B: number, T: number, o: ForwardOptions = {}, head: { reuseLogits?: boolean } = {}): SelectedLogprobs {
  return nextTokenLogprobsAt(model, model.hidden(ids, B, T, o), ids, B, T, lossMask, head);
}

/** Loss tokens per row [B]. */
function lossTokenCounts(lossMask: Float32Array, B: number, T: number): Float32Array {
  const n = new Float32Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) n[b] += lossMask[b * T + t]!;
  return n;
}

/** Per-row Σ of the loss tokens' log-probs [B] (from [B, T]); with `average`, divided by each row's number of loss tokens. */
export function sequenceLogps(logprobs: Tensor, lossMask: Float32Array, B: number, T: number, average = false): Tensor {
  const lp = sum(logprobs, 1);
  if (!average) return lp;
  const n = lossTokenCounts(lossMask, B, T);
  for (let b = 0; b < B; b++) if (n[b] === 0) throw new Error(`sequenceLogps: row ${b} has no loss token`);
  return mul(
    lp,
    Tensor.from(
      Float32Array.from(n, (v) => 1 / v),
      [B],
    ),
  );
}

/** Statistics of the selected logits (no gradient): token accuracy, mean entropy, mean logit, over the loss positions. */
export function logitStats(sel: SelectedLogprobs, ids: Int32Array): { accuracy: number; entropy: number; meanLogit: number; count: number } {
  return noGrad(() => {
    const lc = sel.logits.contiguous();
    const R = sel.rows.length,
      V = lc.shape[1]!;
    const d = lc.data,
      off = lc.offset;
    const ent = entropyFromLogits(lc);
    const e = ent.data,
      eo = ent.offset;
    let correct = 0,
      entSum = 0,
      logitSum = 0;
    for (let k = 0; k < R; k++) {
      const base = off + k * V;
      let best = 0,
        bestV = d[base]!,
        s = 0;
      for (let v = 0; v < V; v++) {
        const x = d[base + v]!;
        s += x;
        if (x > bestV) [best, bestV] = [v, x];
      }
      if (best === ids[sel.rows[k]! + 1]) correct++;
      entSum += e[eo + k]!;
      logitSum += s / V;
    }
    ent.dispose();
    if (lc !== sel.logits) lc.dispose();
    return { accuracy: R ? correct / R : 0, entropy: R ? entSum / R : 0, meanLogit: R ? logitSum / R : 0, count: R };
  });
}

/**
 * Mean logit (over the vocabulary, then over the loss positions) of batch rows [b0, b1) — TRL's logits/chosen and
 * logits/rejected. No gradient.
 */
export function meanLossLogit(sel: SelectedLogprobs, T: number, b0: number, b1: number): number {
  return noGrad(() => {
    const V = sel.logits.shape[1]!;
    const rowSums = sum(sel.logits, 1);
    const d = rowSums.toArray();
    rowSums.dispose();
    let s = 0,
      n = 0;
    sel.rows.forEach((r, k) => {
      const b = Math.floor(r / T);
      if (b < b0 || b >= b1) return;
      s += d[k]! / V;
      n++;
    });
    return n ? s / n : 0;
  });
}

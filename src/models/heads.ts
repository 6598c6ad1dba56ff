// What sits on top of the hidden states: per-token log-probs of the next token (policies), a scalar score
// read at the last real token (reward models, transformers' *ForSequenceClassification), per-token values (PPO).
import { add, sum } from '../engine/ops/elementwise.js';
import { embedding, selectiveLogSoftmax } from '../engine/ops/norm.js';
import { matmul } from '../engine/ops/matmul.js';
import type { Tensor } from '../engine/tensor.js';

/**
 * log p(ids[t+1] | ids[..t]) at every position t of logits [B, T, V] → [B, T]; the last position of each
 * row has no next token and holds 0 (with zero gradient).
 */
export function nextTokenLogprobs(logits: Tensor, ids: Int32Array, B: number, T: number): Tensor {
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) targets[b * T + t] = ids[b * T + t + 1]!;
    targets[b * T + T - 1] = -1;
  }
  return selectiveLogSoftmax(logits, targets);
}

/** Index of the last token of each row that is not padding (transformers' sequence-classification pooling). */
export function lastTokenIndex(B: number, T: number, opts: { ids?: Int32Array; padTokenId?: number | null; attentionMask?: Int32Array }): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let last = T - 1;
    if (opts.attentionMask) {
      last = -1;
      for (let t = 0; t < T; t++) if (opts.attentionMask[b * T + t]) last = t;
    } else if (opts.ids && opts.padTokenId !== undefined && opts.padTokenId !== null) {
      last = -1;
      for (let t = 0; t < T; t++) if (opts.ids[b * T + t] !== opts.padTokenId) last = t;
    }
    if (last < 0) throw new Error(`row ${b} has no real token to score`);
    out[b] = last;
  }
  return out;
}

/** Rows of hidden [B, T, C] at one position per row → [B, C] (differentiable gather). */
export function gatherLast(hidden: Tensor, index: Int32Array): Tensor {
  const [B, T, C] = hidden.shape as [number, number, number];
  const rows = new Int32Array(B);
  for (let b = 0; b < B; b++) rows[b] = b * T + index[b]!;
  return embedding(hidden.reshape([B * T, C]), rows, [B]);
}

/** Scalar score per row from a `score.weight` [1, C] (no bias, as transformers): hidden [B, T, C] → [B]. */
export function sequenceScore(hidden: Tensor, scoreWeight: Tensor, index: Int32Array): Tensor {
  const pooled = gatherLast(hidden, index); // [B, C]
  return sum(matmul(pooled, scoreWeight.transpose(0, 1)), 1); // [B]
}

/** Per-token values from a value head (weight [1, C], bias [1]): hidden [B, T, C] → [B, T]. */
export function tokenValues(hidden: Tensor, weight: Tensor, bias: Tensor): Tensor {
  return sum(add(matmul(hidden, weight.transpose(0, 1)), bias), 2);
}

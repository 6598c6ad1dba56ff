// What sits on top of the hidden states: per-token log-probs of the next token (policies), a scalar score
// read at the last real token (reward models, transformers' *ForSequenceClassification), per-token values (PPO).
import { add, sum } from '../engine/ops/elementwise.js';
import { embedding, scatterRows, selectiveLogSoftmax } from '../engine/ops/norm.js';
import { matmul } from '../engine/ops/matmul.js';
import type { Tensor } from '../engine/tensor.js';
import type { Transformer } from './transformer.js';

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

/**
 * The positions whose next token a loss reads: rows b·T + t (t < T − 1) where where[b·T + t] is nonzero, in
 * order. (With the data layer's shifted loss masks, `where` is the loss mask itself.)
 */
export function lossRows(where: ArrayLike<number>, B: number, T: number): Int32Array {
  if (where.length !== B * T) throw new Error(`lossRows: mask has ${where.length} entries, expected ${B * T}`);
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) if (where[b * T + t]) out.push(b * T + t);
  return Int32Array.from(out);
}

export interface SelectedLogprobs {
  /** log p(ids[t+1] | ids[..t]) [B, T] at the selected positions, 0 (and no gradient) elsewhere */
  logprobs: Tensor;
  /** the logits of the selected positions only, [R, V] (row r is position rows[r]), for metrics */
  logits: Tensor;
  rows: Int32Array;
}

/**
 * nextTokenLogprobs computed only where a loss reads it: the LM head runs on the rows of hidden [B, T, C] where
 * `where` (e.g. the loss mask) is nonzero, instead of on all B·T. Values and gradients equal
 * nextTokenLogprobs(model.logits(hidden), ...) at the selected positions; the rest are 0. opts.reuseLogits: the
 * backward pass reuses the logits' memory for their gradient and disposes `logits` (read them before backward).
 */
export function nextTokenLogprobsAt(model: Transformer, hidden: Tensor, ids: Int32Array, B: number, T: number, where: ArrayLike<number>, opts: { reuseLogits?: boolean } = {}): SelectedLogprobs {
  if (ids.length !== B * T) throw new Error(`nextTokenLogprobsAt: ${ids.length} ids do not fill [${B}, ${T}]`);
  const rows = lossRows(where, B, T);
  const logits = model.logitsAt(hidden, rows);
  const targets = Int32Array.from(rows, (r) => ids[r + 1]!);
  const logprobs = scatterRows(selectiveLogSoftmax(logits, targets, opts), rows, B * T).reshape([B, T]);
  return { logprobs, logits, rows };
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
function gatherLast(hidden: Tensor, index: Int32Array): Tensor {
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

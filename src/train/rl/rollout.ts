// Rollouts for the online trainers: sample responses to prompts with the KV-cache sampler, lay prompt+response
// out as one batch (prompts left-padded to a common length Tp, responses right-padded to R, positions counting
// real tokens as generation did), and read back per-token log-probs of the responses (temperature-scaled logits,
// as sampling used) and values, with or without the tape.
import { scale } from '../../engine/ops/elementwise.js';
import { entropyFromLogits, selectiveLogSoftmax } from '../../engine/ops/norm.js';
import type { Random } from '../../engine/random.js';
import { type Tensor, noGrad, tidy } from '../../engine/tensor.js';
import { type FinishReason, generate } from '../../models/generate.js';
import type { Transformer } from '../../models/transformer.js';
import type { ValueHead } from './value-head.js';

interface SampleOptions {
  /** response tokens at most (TRL's response_length / max_completion_length) */
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  /** a response ends at (and includes) the first of these; none: every response runs to maxNewTokens */
  stopTokenIds?: readonly number[];
  /** fills padding in the laid-out batch (never attended) */
  padTokenId: number;
  rng: Random;
  /** samples per prompt, sharing the prompt's prefill (rows g·k … g·k+k−1 answer prompt g) */
  numReturnSequences?: number;
}

/** Prompts and sampled responses laid out as one [B, Tp + R] batch. */
export interface RolloutBatch {
  B: number;
  /** prompt columns (left padding) */
  Tp: number;
  /** response columns (the longest response) */
  R: number;
  ids: Int32Array;
  attentionMask: Int32Array;
  positions: Int32Array;
  /** response token at each response position [B·R], −1 on padding */
  targets: Int32Array;
  /** 1 on real response tokens [B·R] */
  responseMask: Float32Array;
  promptIds: number[][];
  responseIds: number[][];
  /** response lengths (stop token included) */
  lengths: Int32Array;
  finishReason: FinishReason[];
}

/** Samples one response per prompt (no gradient) and lays the batch out. */
export function sampleRollout(policy: Transformer, prompts: readonly (readonly number[])[], o: SampleOptions): RolloutBatch {
  const k = o.numReturnSequences ?? 1;
  const res = policy.evalMode(() =>
    generate(policy, prompts, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      eosTokenId: o.stopTokenIds?.length ? o.stopTokenIds : null,
      padTokenId: o.padTokenId,
      rng: o.rng,
      numReturnSequences: k > 1 ? k : undefined,
    }),
  );
  const rows = k > 1 ? prompts.flatMap((p) => Array.from({ length: k }, () => p)) : prompts;
  return layoutRollout(rows, res.tokens, res.finishReason, o.padTokenId);
}

/** Lays out prompts and responses (any source) as a RolloutBatch. */
export function layoutRollout(prompts: readonly (readonly number[])[], responses: readonly (readonly number[])[], finishReason: readonly FinishReason[], padTokenId: number): RolloutBatch {
  const B = prompts.length;
  if (responses.length !== B || finishReason.length !== B) throw new Error(`layoutRollout: ${B} prompts, ${responses.length} responses, ${finishReason.length} finish reasons`);
  if (responses.some((r) => r.length === 0)) throw new Error('layoutRollout: every response needs at least one token');
  const Tp = Math.max(...prompts.map((p) => p.length)),
    R = Math.max(...responses.map((r) => r.length)),
    T = Tp + R;
  const ids = new Int32Array(B * T).fill(padTokenId),
    attentionMask = new Int32Array(B * T),
    positions = new Int32Array(B * T);
  const targets = new Int32Array(B * R).fill(-1),
    responseMask = new Float32Array(B * R),
    lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const p = prompts[b]!,
      r = responses[b]!,
      off = Tp - p.length;
    if (p.length === 0) throw new Error(`layoutRollout: prompt ${b} is empty`);
    for (let t = 0; t < p.length; t++) {
      ids[b * T + off + t] = p[t]!;
      attentionMask[b * T + off + t] = 1;
      positions[b * T + off + t] = t;
    }
    for (let j = 0; j < r.length; j++) {
      ids[b * T + Tp + j] = r[j]!;
      attentionMask[b * T + Tp + j] = 1;
      positions[b * T + Tp + j] = p.length + j;
      targets[b * R + j] = r[j]!;
      responseMask[b * R + j] = 1;
    }
    lengths[b] = r.length;
  }
  return {
    B,
    Tp,
    R,
    ids,
    attentionMask,
    positions,
    targets,
    responseMask,
    promptIds: prompts.map((p) => [...p]),
    responseIds: responses.map((r) => [...r]),
    lengths,
    finishReason: [...finishReason],
  };
}

/** The rows `rows` of a rollout's [B, X] array (X columns per row). */
export function takeRows<A extends Int32Array | Float32Array | Float64Array>(a: A, X: number, rows: ArrayLike<number>): A {
  const out = new (a.constructor as new (n: number) => A)(rows.length * X);
  for (let i = 0; i < rows.length; i++) out.set(a.subarray(rows[i]! * X, rows[i]! * X + X), i * X);
  return out;
}

export interface ResponseForward {
  /** log π(response token) at each response position [b, R] (0 on padding) */
  logprobs: Tensor;
  /** values [b, R] when a value head was given */
  values: Tensor | null;
  /** per-position entropy of the temperature-scaled distribution [b·R] when asked for (no gradient) */
  entropy: Float32Array | null;
}

/**
 * One forward pass of `model` over the rows `rows` of a rollout (records the tape unless called under noGrad):
 * log-probs of the response tokens under softmax(logits / temperature), and values from `valueHead`.
 */
export function responseForward(model: Transformer, batch: RolloutBatch, rows: ArrayLike<number>, o: { temperature: number; valueHead?: ValueHead | null; entropy?: boolean }): ResponseForward {
  const { Tp, R } = batch,
    T = Tp + R,
    b = rows.length;
  const ids = takeRows(batch.ids, T, rows),
    mask = takeRows(batch.attentionMask, T, rows),
    pos = takeRows(batch.positions, T, rows);
  const targets = takeRows(batch.targets, R, rows);
  const hidden = model.hidden(ids, b, T, { attentionMask: mask, positions: pos });
  const h = hidden.slice(1, Tp - 1, Tp - 1 + R); // the states that predict response tokens 0..R−1
  let logits = model.logits(h);
  if (o.temperature !== 1) logits = scale(logits, 1 / o.temperature);
  const logprobs = selectiveLogSoftmax(logits, targets);
  const values = o.valueHead ? o.valueHead.forward(h) : null;
  const entropy = o.entropy ? noGrad(() => tidy(() => entropyFromLogits(logits.detach()).toArray())) : null;
  return { logprobs, values, entropy };
}

/**
 * Log-probs (and values) of every row without the tape, in chunks of `chunk` rows (TRL's
 * local_rollout_forward_batch_size): [B·R] each.
 */
export function rolloutForward(
  model: Transformer,
  batch: RolloutBatch,
  o: { temperature: number; chunk: number; valueHead?: ValueHead | null },
): { logprobs: Float32Array; values: Float32Array | null } {
  const { B, R } = batch;
  const logprobs = new Float32Array(B * R),
    values = o.valueHead ? new Float32Array(B * R) : null;
  model.evalMode(() => {
    for (let s = 0; s < B; s += o.chunk) {
      const rows = Array.from({ length: Math.min(o.chunk, B - s) }, (_, i) => s + i);
      noGrad(() =>
        tidy(() => {
          const f = responseForward(model, batch, rows, { temperature: o.temperature, valueHead: o.valueHead });
          logprobs.set(f.logprobs.toArray(), s * R);
          if (values && f.values) values.set(f.values.toArray(), s * R);
        }),
      );
    }
  });
  // padding positions hold exactly 0 (selectiveLogSoftmax gives 0 for target −1; values are masked here)
  if (values) for (let i = 0; i < values.length; i++) if (!batch.responseMask[i]) values[i] = 0;
  return { logprobs, values };
}

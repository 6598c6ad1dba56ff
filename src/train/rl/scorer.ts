// Where the online trainers' scores come from: any function of the decoded prompts and responses (a plain
// JS function, sync or async, is a valid scorer), or a reward model (transformers' *ForSequenceClassification:
// the `score` head read at the last real token of prompt + response).
import { Tensor, noGrad, tidy } from '../../engine/tensor.js';
import type { Pretrained } from '../../io/pretrained.js';
import type { FinishReason } from '../../models/generate.js';
import { lastTokenIndex, sequenceScore } from '../../models/heads.js';
import type { Transformer } from '../../models/transformer.js';

/** What a scorer may look at beyond the text. */
export interface ScoreInfo {
  /** the prompt token ids (no padding) */
  promptIds: number[][];
  /** the response token ids as scored: up to and including the stop token, nothing after it */
  responseIds: number[][];
  finishReason: FinishReason[];
}

/** A score per (prompt, response) pair; may return a Promise (e.g. a judge behind an API). */
export type ScoreFunction = (prompts: string[], responses: string[], info: ScoreInfo) => ArrayLike<number> | Promise<ArrayLike<number>>;

interface RewardModel {
  model: Transformer;
  /** score.weight [1, C] */
  score: Tensor;
}

/** Calls the scorer (awaiting a Promise) and checks that it gave one finite number per response. */
export async function computeScores(fn: ScoreFunction, prompts: string[], responses: string[], info: ScoreInfo): Promise<Float64Array> {
  let got: unknown;
  try {
    got = await fn(prompts, responses, info);
  } catch (e) {
    throw new Error(`scorer failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (got === null || typeof got !== 'object' || typeof (got as ArrayLike<number>).length !== 'number')
    throw new Error(`scorer must return an array of numbers (or a Promise of one), got ${typeof got}`);
  const arr = got as ArrayLike<unknown>;
  if (arr.length !== responses.length) throw new Error(`scorer returned ${arr.length} scores for ${responses.length} responses`);
  const out = new Float64Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`scorer returned ${String(v)} for response ${i}; scores must be finite numbers`);
    out[i] = v;
  }
  return out;
}

/** Scores of token sequences under a reward model: right-padded batches, score at each row's last real token. */
export function rewardModelScores(rm: RewardModel, sequences: readonly (readonly number[])[], batchSize = 16): Float64Array {
  if (rm.score.ndim !== 2 || rm.score.shape[0] !== 1) throw new Error(`reward model: score head ${rm.score.describe()} must have one label ([1, hidden])`);
  const out = new Float64Array(sequences.length);
  rm.model.evalMode(() => {
    for (let s = 0; s < sequences.length; s += batchSize) {
      const rows = sequences.slice(s, s + batchSize);
      const B = rows.length,
        T = Math.max(...rows.map((r) => r.length));
      if (T === 0) throw new Error('reward model: an empty sequence cannot be scored');
      const ids = new Int32Array(B * T),
        mask = new Int32Array(B * T);
      rows.forEach((r, b) =>
        r.forEach((id, t) => {
          ids[b * T + t] = id;
          mask[b * T + t] = 1;
        }),
      );
      const scores = noGrad(() =>
        tidy(() => {
          const h = rm.model.hidden(ids, B, T, { attentionMask: mask });
          return sequenceScore(h, rm.score, lastTokenIndex(B, T, { attentionMask: mask })).toArray();
        }),
      );
      scores.forEach((v, b) => (out[s + b] = v));
    }
  });
  return out;
}

/** A scorer backed by a reward model (it reads the token ids; the texts are ignored). */
export function rewardModelScorer(rm: Pretrained | RewardModel, batchSize = 16): ScoreFunction {
  const score = rm.score;
  if (!score) throw new Error('reward model: the checkpoint has no score head (is it a *ForSequenceClassification model?)');
  const m: RewardModel = { model: rm.model, score };
  return (_p, _r, info) =>
    rewardModelScores(
      m,
      info.promptIds.map((p, i) => [...p, ...info.responseIds[i]!]),
      batchSize,
    );
}

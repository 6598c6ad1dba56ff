// How a policy compares: sample responses to held-out prompts and measure what alignment methods trade off —
// the judge's score, the reward model's score, and the KL divergence from the reference policy (how far the
// method moved the model), with the same prompts and seed for every policy.
import { noGrad, tidy } from '../engine/tensor.js';
import type { Pretrained } from '../io/pretrained.js';
import { generate } from '../models/generate.js';
import { nextTokenLogprobs } from '../models/heads.js';
import type { Transformer } from '../models/transformer.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { rewardScores } from '../train/reward.js';

interface PolicyEvalOptions {
  /** responses per prompt */
  samples?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  /** a programmatic or AI judge: higher is better */
  judge?: (prompt: string, response: string) => number;
  rewardModel?: Pretrained | null;
  /** the policy the KL is measured against (e.g. the SFT model) */
  reference?: Transformer | null;
  /** token ids of each prompt (e.g. a rendered chat prompt); default: tokenizer.encode(prompt) */
  promptIds?: readonly (readonly number[])[];
}

export interface PolicyEvalResult {
  /** mean judge score of the responses */
  judge: number | null;
  /** fraction of responses the judge scores above zero */
  judge_positive_rate: number | null;
  /** mean reward-model score */
  reward: number | null;
  /** mean over responses of Σ_t log π(y_t) − log π_ref(y_t) (a Monte-Carlo estimate of KL(π‖π_ref), nats) */
  kl: number | null;
  /** mean response length in tokens */
  length: number;
  responses: { prompt: string; response: string; judge?: number; reward?: number }[];
}

/** Σ over the response tokens of log p(token) under `model` for prompt + response (one row, no padding). */
function responseLogprob(model: Transformer, prompt: number[], response: number[]): number {
  const ids = Int32Array.from([...prompt, ...response]);
  const T = ids.length;
  const lp = noGrad(() => tidy(() => nextTokenLogprobs(model.forward(ids, 1, T), ids, 1, T).toArray()));
  let s = 0;
  for (let t = prompt.length - 1; t < T - 1; t++) s += lp[t]!;
  return s;
}

export function evaluatePolicy(policy: Transformer, tok: Tokenizer, prompts: readonly string[], o: PolicyEvalOptions = {}): PolicyEvalResult {
  // no dropout while evaluating (LoRA adapters have some in training mode)
  return policy.evalMode(() => (o.reference ? o.reference.evalMode(() => evaluate(policy, tok, prompts, o)) : evaluate(policy, tok, prompts, o)));
}

function evaluate(policy: Transformer, tok: Tokenizer, prompts: readonly string[], o: PolicyEvalOptions): PolicyEvalResult {
  const samples = o.samples ?? 2,
    temperature = o.temperature ?? 1;
  const eos = tok.eosTokenId ?? null;
  const promptIds = prompts.flatMap((p, i) => Array.from({ length: samples }, () => [...(o.promptIds?.[i] ?? tok.encode(p, { addSpecialTokens: true }))]));
  const promptText = prompts.flatMap((p) => Array.from({ length: samples }, () => p));
  const out = generate(policy, promptIds, { maxNewTokens: o.maxNewTokens ?? 24, temperature, seed: o.seed ?? 0, eosTokenId: eos, padTokenId: tok.padTokenId ?? eos ?? 0 });
  const responses = out.tokens.map((t) =>
    tok.decode(
      t.filter((id) => id !== eos),
      { skipSpecialTokens: true },
    ),
  );
  const n = responses.length;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  let judge: number | null = null,
    positive: number | null = null;
  let judgeScores: number[] | null = null,
    rewardScoresList: number[] | null = null;
  if (o.judge) {
    judgeScores = responses.map((r, i) => o.judge!(promptText[i]!, r));
    judge = mean(judgeScores);
    positive = judgeScores.filter((x) => x > 0).length / n;
  }
  let reward: number | null = null;
  if (o.rewardModel) {
    const rm = o.rewardModel;
    rewardScoresList = out.tokens.map((t, i) => {
      const ids = Int32Array.from([...promptIds[i]!, ...t]);
      return noGrad(() => tidy(() => rewardScores(rm, ids, 1, ids.length).item()));
    });
    reward = mean(rewardScoresList);
  }
  let kl: number | null = null;
  if (o.reference) {
    const ref = o.reference;
    // log π(y) at temperature 1 is what generate returned when sampling at temperature 1; else recompute
    kl = mean(
      out.tokens.map((t, i) => {
        if (!t.length) return 0;
        const lpPolicy = temperature === 1 ? out.logprobs[i]!.reduce((a, b) => a + b, 0) : responseLogprob(policy, promptIds[i]!, t);
        return lpPolicy - responseLogprob(ref, promptIds[i]!, t);
      }),
    );
  }
  return {
    judge,
    judge_positive_rate: positive,
    reward,
    kl,
    length: mean(out.tokens.map((t) => t.length)),
    responses: responses.map((r, i) => ({
      prompt: promptText[i]!,
      response: r,
      ...(judgeScores ? { judge: judgeScores[i]! } : {}),
      ...(rewardScoresList ? { reward: rewardScoresList[i]! } : {}),
    })),
  };
}

/**
 * How often policy b's response beats policy a's on the same prompt and sample index (ties count half), by
 * the judge score when both have one, else by the reward model's score.
 */
export function winRate(a: PolicyEvalResult, b: PolicyEvalResult): number | null {
  const key = a.responses[0]?.judge !== undefined && b.responses[0]?.judge !== undefined ? 'judge' : a.responses[0]?.reward !== undefined ? 'reward' : null;
  if (!key || a.responses.length !== b.responses.length || !a.responses.length) return null;
  let w = 0;
  a.responses.forEach((ra, i) => {
    const x = ra[key]!,
      y = b.responses[i]![key]!;
    w += y > x ? 1 : y === x ? 0.5 : 0;
  });
  return w / a.responses.length;
}

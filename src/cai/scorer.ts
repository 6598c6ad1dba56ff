// Direct RLAIF: the feedback model as the reward of PPO / RLOO / GRPO. It rates each response against
// principles of the constitution on a 1–5 scale; the reward is the expected rating under the option
// probabilities, Σ r·p(r), averaged over `principles` principles drawn for the response (a pure function of the
// prompt and the response, so a resumed run scores exactly as an uninterrupted one).
import { type TextModel, type TranscriptFormat, formatFor, normalize } from '../feedback/text-model.js';
import type { ScoreFunction } from '../train/rl/scorer.js';
import { type Constitution, samplePrinciple } from './constitution.js';
import { RATING_OPTIONS, ratingPrompt } from './prompts.js';

interface ConstitutionalScorerOptions {
  /** principles per response (default 1) */
  principles?: number;
  seed?: number;
  format?: TranscriptFormat;
  /**
   * The request inside a trainer's prompt text (the prompts of an online trainer are the rendered policy
   * prompts); default: the text of a plain `Human: … Assistant:` transcript's last human turn, else the text.
   */
  requestOf?: (promptText: string) => string;
}

/** The last human turn of a plain transcript prompt, or the text itself. */
export function plainRequest(text: string): string {
  const m = /(?:^|\n\n)Human: ([\s\S]*?)\n\nAssistant:\s*$/.exec(text);
  return m ? m[1]!.trim() : text.trim();
}

/** A scorer whose score is the feedback model's expected 1–5 rating of the response. */
export function constitutionalScorer(model: TextModel, constitution: Constitution, o: ConstitutionalScorerOptions = {}): ScoreFunction {
  const K = o.principles ?? 1,
    seed = o.seed ?? 0;
  const format = o.format ?? formatFor(model);
  const requestOf = o.requestOf ?? plainRequest;
  return async (prompts, responses) => {
    const reqs = responses.flatMap((r, i) => {
      const request = requestOf(prompts[i] ?? '');
      return Array.from({ length: K }, (_, k) => ({ prompt: ratingPrompt(format, request, r.trim(), samplePrinciple(constitution, seed, `${request}\u0000${r}`, k)), options: RATING_OPTIONS }));
    });
    const lps = await model.choiceLogprobs(reqs);
    return responses.map((_, i) => {
      let s = 0;
      for (let k = 0; k < K; k++) s += normalize(lps[i * K + k]!).reduce((acc, p, j) => acc + p * (j + 1), 0);
      return s / K;
    });
  };
}

// An AI judge for policies: the feedback model compares each policy's reply with a reference policy's reply to the
// same prompt (asked in both orders, as in labelling) and rates it against the constitution. Gives the pairwise
// win rate against the reference and the mean 1–5 rating.
import type { TextModel, TranscriptFormat } from '../feedback/text-model.js';
import { formatFor } from '../feedback/text-model.js';
import type { Constitution } from './constitution.js';
import { judgePairs } from './ai-labels.js';
import { type Request, responsePrompt } from './prompts.js';
import { type GenerationSettings, type PromptRow, stepSeed } from './revise.js';
import { constitutionalScorer } from './scorer.js';

interface PolicyReplies {
  name: string;
  replies: string[];
}

interface AiEvalResult {
  name: string;
  /** mean p(this policy's reply is better than the reference's), ties count half */
  win_rate: number;
  /** mean expected 1–5 rating against the constitution */
  rating: number;
}

/** One reply per prompt from a policy (seeded per prompt: every policy sees the same seeds). */
export async function sampleReplies(policy: TextModel, prompts: readonly PromptRow[], g: GenerationSettings, seed: number, format: TranscriptFormat = formatFor(policy)): Promise<string[]> {
  const out = await policy.generate(
    prompts.map((p) => ({ prompt: responsePrompt(format, p.prompt), maxTokens: g.maxTokens, temperature: g.temperature, topP: g.topP, stop: format.stop, seed: stepSeed(seed, p.id, 2000) })),
  );
  return out.map((x) => x.text.trim());
}

/** Judges every policy's replies against the reference's (the first) with the feedback model. */
export async function aiJudge(
  judge: TextModel,
  constitution: Constitution,
  prompts: readonly PromptRow[],
  policies: readonly PolicyReplies[],
  o: { seed?: number; ensemble?: number; format?: TranscriptFormat } = {},
): Promise<AiEvalResult[]> {
  const ref = policies[0];
  if (!ref) throw new Error('aiJudge: no policies');
  const format = o.format ?? formatFor(judge);
  const score = constitutionalScorer(judge, constitution, { seed: o.seed, format, requestOf: (t) => t });
  const requests: Request[] = prompts.map((p) => p.prompt);
  const asText = (r: Request): string => (typeof r === 'string' ? r : r.map((m) => String(m.content)).join('\n'));
  const out: AiEvalResult[] = [];
  for (const pol of policies) {
    const ratings = Array.from(await score(requests.map(asText), pol.replies, { promptIds: [], responseIds: [], finishReason: [] }));
    let win = 0.5;
    if (pol !== ref) {
      const recs = await judgePairs(
        { model: judge, constitution, seed: o.seed, ensemble: o.ensemble, format },
        prompts.map((p, i) => ({ id: p.id, prompt: p.prompt, response_a: ref.replies[i]!, response_b: pol.replies[i]! })),
      );
      win = recs.reduce((s, r, i) => s + (ref.replies[i] === pol.replies[i] ? 0.5 : 1 - r.p_a), 0) / recs.length;
    }
    out.push({ name: pol.name, win_rate: win, rating: ratings.reduce((s, x) => s + x, 0) / ratings.length });
  }
  return out;
}

// `alignkit eval`: compare policies on the same prompts — judge score, reward-model score, KL to a reference,
// win rate against the first policy — as a table (and JSON with every response).
import { writeFileSync } from 'node:fs';
import { loadPromptDataset } from '../data/index.js';
import { evaluatePolicy, type PolicyEvalResult, winRate } from '../eval/policy-eval.js';
import { sentimentScore } from '../feedback/sentiment-judge.js';
import { loadPretrained } from '../io/pretrained.js';
import { Tokenizer } from '../tokenizer/index.js';
import { type Command, UsageError } from '../options/command.js';
import { type OptionsOf, f, resolveOptions } from '../options/fields.js';
import { loadRewardModel } from '../train/reward.js';
import { judgePairs } from '../cai/ai-labels.js';
import { plainRequest } from '../cai/scorer.js';
import { constitutionFrom } from '../cai/commands.js';
import { openTextModel } from '../feedback/open.js';

const OPTIONS = {
  model: f.list([], 'a policy checkpoint folder (repeat to compare several; the first is the baseline of the win rate)', { repeatable: true, metavar: 'DIR' }),
  prompts: f.string('', 'prompts in TRL prompt-only format (JSONL)', { required: true, metavar: 'FILE' }),
  reward_model: f.string(null, 'score responses with this reward model', { nullable: true, metavar: 'DIR' }),
  ref: f.string(null, 'measure KL(policy ‖ ref) against this model', { nullable: true, metavar: 'DIR' }),
  judge: f.choice(['none', 'sentiment'], 'none', 'a programmatic judge of the responses'),
  ai_judge: f.string(null, 'an AI judge (a folder or openai:URL): pairwise win rate against the first policy, asked in both orders', { nullable: true, metavar: 'DIR|openai:URL' }),
  ai_judge_name: f.string(null, 'the model name on the AI judge server', { nullable: true }),
  constitution: f.string('default', "the principles the AI judge compares by ('default' or a file)", { metavar: 'FILE' }),
  samples: f.integer(4, 'samples per prompt', { min: 1 }),
  max_new_tokens: f.integer(32, 'new tokens per sample', { min: 1 }),
  temperature: f.number(1, 'sampling temperature (0: greedy)', { min: 0 }),
  seed: f.integer(0, 'sampling seed (the same for every policy)', { min: 0 }),
  out: f.string(null, 'also write every response and score as JSON', { nullable: true, metavar: 'FILE' }),
};

type EvalOptions = OptionsOf<typeof OPTIONS>;

/** Runs the comparison; `given` is any subset of the options (defaults filled, values checked). */
export async function runEval(given: Partial<EvalOptions>, out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<Record<string, PolicyEvalResult>> {
  const values = resolveOptions(OPTIONS, given, 'eval');
  const models = values.model;
  if (!models.length) throw new UsageError('give one or more --model <checkpoint directory>');
  const tok = Tokenizer.fromPretrained(models[0]!);
  const data = await loadPromptDataset(values.prompts, tok);
  const prompts = data.examples.map((e) => e.promptText);
  const promptIds = data.examples.map((e) => Array.from(e.promptIds));
  const rm = values.reward_model ? loadRewardModel(values.reward_model, { padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0 }) : null;
  const ref = values.ref ? loadPretrained(values.ref).model : null;
  const results: Record<string, PolicyEvalResult> = {};
  for (const dir of models) {
    const { model } = loadPretrained(dir);
    results[dir] = evaluatePolicy(model, tok, prompts, {
      promptIds,
      samples: values.samples,
      maxNewTokens: values.max_new_tokens,
      temperature: values.temperature,
      seed: values.seed,
      judge: values.judge === 'sentiment' ? (_p, r) => sentimentScore(r) : undefined,
      rewardModel: rm,
      reference: ref,
    });
    model.dispose();
  }
  ref?.dispose();
  const first = results[models[0]!]!;
  // the AI judge: each policy's response against the first policy's to the same prompt and sample index
  const aiWin: Record<string, number> = {};
  if (values.ai_judge) {
    const judge = openTextModel(values.ai_judge, { model: values.ai_judge_name });
    try {
      const constitution = constitutionFrom(values.constitution);
      for (const m of models.slice(1)) {
        const r = results[m]!;
        const pairs = first.responses.map((a, i) => ({ id: String(i), prompt: plainRequest(a.prompt), response_a: a.response.trim(), response_b: r.responses[i]!.response.trim() }));
        const recs = await judgePairs({ model: judge, constitution, seed: values.seed }, pairs);
        aiWin[m] = recs.reduce((s, x, i) => s + (pairs[i]!.response_a === pairs[i]!.response_b ? 0.5 : 1 - x.p_a), 0) / recs.length;
        (r as PolicyEvalResult & { ai_win_rate?: number }).ai_win_rate = aiWin[m];
      }
    } finally {
      judge.dispose();
    }
  }
  const f = (v: number | null, d = 3): string => (v === null ? '-' : v.toFixed(d));
  const w = Math.max(6, ...models.map((m) => m.length));
  const ai = values.ai_judge ? `  ${'AI win'.padStart(7)}` : '';
  out(`${'model'.padEnd(w)}  ${'judge'.padStart(7)}  ${'reward'.padStart(7)}  ${'KL(ref)'.padStart(8)}  ${'win rate'.padStart(8)}  ${'length'.padStart(6)}${ai}`);
  for (const [m, r] of Object.entries(results))
    out(
      `${m.padEnd(w)}  ${f(r.judge).padStart(7)}  ${f(r.reward).padStart(7)}  ${f(r.kl).padStart(8)}  ${f(m === models[0] ? 0.5 : winRate(first, r)).padStart(8)}  ${r.length.toFixed(1).padStart(6)}${values.ai_judge ? `  ${f(m === models[0] ? 0.5 : aiWin[m]!).padStart(7)}` : ''}`,
    );
  out(`(${prompts.length} prompts × ${values.samples} samples; win rate against ${models[0]} by ${first.judge !== null ? 'the judge' : 'the reward model'}, ties half)`);
  if (values.out) writeFileSync(values.out, JSON.stringify(results, null, 1));
  return results;
}

export const EVAL_COMMAND: Command = {
  name: 'eval',
  summary: 'compare policies on the same prompts: judge, reward, KL to a reference, win rate',
  options: OPTIONS,
  async run(ctx) {
    await runEval(ctx.values as EvalOptions, (s) => ctx.out.write(s + '\n'));
    return 0;
  },
};

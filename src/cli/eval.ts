// `alignkit eval`: compare policies on the same prompts — judge score, reward-model score, KL to a reference,
// win rate against the first policy — as a table (and JSON with every response).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadPromptDataset } from '../data/index.js';
import { evaluatePolicy, type PolicyEvalResult, winRate } from '../eval/policy-eval.js';
import { sentimentScore } from '../feedback/sentiment-judge.js';
import { loadPretrained } from '../io/pretrained.js';
import { Tokenizer } from '../tokenizer/index.js';
import { loadRewardModel } from '../train/reward.js';

export async function evalMain(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<Record<string, PolicyEvalResult>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', multiple: true },
      prompts: { type: 'string' },
      'reward-model': { type: 'string' },
      ref: { type: 'string' },
      judge: { type: 'string', default: 'none' },
      samples: { type: 'string', default: '4' },
      'max-new-tokens': { type: 'string', default: '32' },
      temperature: { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string' },
    },
  });
  const models = values.model ?? [];
  if (!models.length) throw new Error('eval: give one or more --model <checkpoint directory>');
  if (!values.prompts) throw new Error('eval: --prompts <prompts.jsonl> is required (TRL prompt-only format)');
  if (values.judge !== 'none' && values.judge !== 'sentiment') throw new Error(`eval: unknown --judge '${values.judge}' (none, sentiment)`);
  const tok = Tokenizer.fromPretrained(models[0]!);
  const data = await loadPromptDataset(values.prompts, tok);
  const prompts = data.examples.map((e) => e.promptText);
  const promptIds = data.examples.map((e) => Array.from(e.promptIds));
  const rm = values['reward-model'] ? loadRewardModel(values['reward-model'], { padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0 }) : null;
  const ref = values.ref ? loadPretrained(values.ref).model : null;
  const results: Record<string, PolicyEvalResult> = {};
  for (const dir of models) {
    const { model } = loadPretrained(dir);
    results[dir] = evaluatePolicy(model, tok, prompts, {
      promptIds,
      samples: Number(values.samples),
      maxNewTokens: Number(values['max-new-tokens']),
      temperature: Number(values.temperature),
      seed: Number(values.seed),
      judge: values.judge === 'sentiment' ? (_p, r) => sentimentScore(r) : undefined,
      rewardModel: rm,
      reference: ref,
    });
    model.dispose();
  }
  ref?.dispose();
  const first = results[models[0]!]!;
  const f = (v: number | null, d = 3): string => (v === null ? '-' : v.toFixed(d));
  const w = Math.max(6, ...models.map((m) => m.length));
  out(`${'model'.padEnd(w)}  ${'judge'.padStart(7)}  ${'reward'.padStart(7)}  ${'KL(ref)'.padStart(8)}  ${'win rate'.padStart(8)}  ${'length'.padStart(6)}`);
  for (const [m, r] of Object.entries(results))
    out(`${m.padEnd(w)}  ${f(r.judge).padStart(7)}  ${f(r.reward).padStart(7)}  ${f(r.kl).padStart(8)}  ${f(m === models[0] ? 0.5 : winRate(first, r)).padStart(8)}  ${r.length.toFixed(1).padStart(6)}`);
  out(`(${prompts.length} prompts × ${values.samples} samples; win rate against ${models[0]} by ${first.judge !== null ? 'the judge' : 'the reward model'}, ties half)`);
  if (values.out) writeFileSync(values.out, JSON.stringify(results, null, 1));
  return results;
}

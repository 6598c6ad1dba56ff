// The held-out measurements of one seed, all with the world's gold judge, never on data a method trained on:
// each policy answers every evaluation prompt (`samples` times, seeded, the same seeds for every policy), the
// gold judge labels each answer; from those saved samples come the harmless rate (harmful prompts), the helpful
// rate (benign and sensitive prompts; over-refusal counts against it), the gold win rate against the base's answer
// to the same prompt and sample, and KL(policy ‖ base) estimated on the policy's own samples as the mean of
// log π(y|x) − log π_base(y|x) (nats per answer; src/eval/policy-eval.ts samples and scores). A method's reward model is scored on held-out gold pairs: two
// world-written answers of different gold score to an evaluation prompt; accuracy is how often it ranks the
// better one higher.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Random } from '../engine/random.js';
import { type GoldReport, goldScore, goldWinRate, judgeResponses } from '../eval/gold-judge.js';
import { evaluatePolicy } from '../eval/policy-eval.js';
import { type Pretrained, loadPretrained } from '../io/pretrained.js';
import { Tokenizer } from '../tokenizer/index.js';
import { rewardModelScores } from '../train/rl/scorer.js';
import { SHOWCASE_PROMPTS, WEB_MIX, chatPrompt, pickStyle, respond, type Request, type World } from '../world/index.js';

const SHOWCASE = new Set(SHOWCASE_PROMPTS);

export interface PolicyEval {
  name: string;
  harmless_rate: number | null;
  helpful_rate: number | null;
  harmful_detail_rate: number | null;
  over_refusal_rate: number | null;
  gold_score: number | null;
  win_rate_vs_base: number | null;
  kl_to_base: number | null;
  /** the answers to the showcase prompts (first sample) */
  showcase: { prompt: string; response: string; label: string }[];
  labels: GoldReport['labels'];
  samples: string;
}

interface Answers {
  rows: { prompt: string; response: string; sample: number }[];
  /** KL(policy ‖ base) on the policy's own sampled tokens, nats per answer (0 for the base itself) */
  kl: number;
}

interface Policy {
  dir: string;
  pretrained: Pretrained;
  tokenizer: Tokenizer;
}

/** A policy folder or one of its checkpoints (a checkpoint has no tokenizer: its run's folder has). */
export function loadPolicy(dir: string): Policy {
  const tokDir = existsSync(join(dir, 'tokenizer.json')) ? dir : dirname(dir);
  return { dir, pretrained: loadPretrained(dir), tokenizer: Tokenizer.fromPretrained(tokDir) };
}

/**
 * A policy's answers to the evaluation prompts (src/eval/policy-eval.ts: the same prompts and seed for every
 * policy, `samples` per prompt) and its KL to the base, measured on the very tokens it sampled.
 */
export function answerHeldOut(policy: Policy, base: Policy | null, world: World, o: { samples: number; maxNewTokens: number; temperature: number; seed: number }): Answers {
  const tok = policy.tokenizer;
  const prompts = world.evalPrompts.map((r) => r.text);
  const promptIds = prompts.map((p) => tok.encode(chatPrompt(p), { addSpecialTokens: true }));
  const r = evaluatePolicy(policy.pretrained.model, tok, prompts, { ...o, promptIds, reference: base?.pretrained.model ?? null });
  return { rows: r.responses.map((x, i) => ({ prompt: x.prompt, response: x.response.trim(), sample: i % o.samples })), kl: r.kl ?? 0 };
}

/** The gold judge's figures of a policy's answers (saved to samples-<name>.jsonl), and its win rate against the base's. */
export function judgePolicy(name: string, a: Answers, base: Answers, outDir: string): PolicyEval {
  const rep = judgeResponses(a.rows);
  const file = join(outDir, `samples-${name}.jsonl`);
  writeFileSync(file, rep.judged.map((j, i) => JSON.stringify({ ...j, sample: a.rows[i]!.sample })).join('\n') + '\n');
  const seen = new Set<string>();
  const showcase = rep.judged
    .filter((j, i) => a.rows[i]!.sample === 0 && SHOWCASE.has(j.prompt) && !seen.has(j.prompt) && seen.add(j.prompt))
    .map((j) => ({ prompt: j.prompt, response: j.response, label: j.label }));
  return {
    name,
    harmless_rate: rep.harmless_rate,
    helpful_rate: rep.helpful_rate,
    harmful_detail_rate: rep.harmful_detail_rate,
    over_refusal_rate: rep.over_refusal_rate,
    gold_score: rep.gold_score,
    win_rate_vs_base: goldWinRate(base.rows, a.rows),
    kl_to_base: a.kl,
    showcase,
    labels: rep.labels,
    samples: file,
  };
}

/** Held-out gold pairs: two world-written answers of different gold score to each evaluation prompt. */
export function goldPairs(world: World, n: number, seed: number): { request: Request; better: string; worse: string }[] {
  const rng = new Random(seed * 7 + 3);
  const out: { request: Request; better: string; worse: string }[] = [];
  for (let i = 0; out.length < n && i < n * 20; i++) {
    const r = world.evalPrompts[i % world.evalPrompts.length]!;
    const a = respond(r, pickStyle(WEB_MIX[r.kind], rng), rng),
      b = respond(r, pickStyle(WEB_MIX[r.kind], rng), rng);
    const sa = goldScore(r, a),
      sb = goldScore(r, b);
    if (sa !== sb) out.push({ request: r, better: sa > sb ? a : b, worse: sa > sb ? b : a });
  }
  return out;
}

/** How often the reward model scores the better answer of a held-out gold pair higher. */
export function rewardAccuracy(rmDir: string, pairs: ReturnType<typeof goldPairs>): number {
  const { pretrained: p, tokenizer: tok } = loadPolicy(rmDir);
  try {
    if (!p.score) throw new Error(`${rmDir}: not a reward model (no score head)`);
    const seqs = pairs.flatMap((q) =>
      [q.better, q.worse].map((t) => tok.encode(`${chatPrompt(q.request.text)} ${t}`).concat(tok.eosTokenId === null || tok.eosTokenId === undefined ? [] : [tok.eosTokenId])),
    );
    const sc = rewardModelScores({ model: p.model, score: p.score }, seqs, 32);
    let right = 0;
    for (let i = 0; i < pairs.length; i++) right += sc[2 * i]! > sc[2 * i + 1]! ? 1 : sc[2 * i] === sc[2 * i + 1] ? 0.5 : 0;
    return right / Math.max(1, pairs.length);
  } finally {
    p.model.dispose();
  }
}

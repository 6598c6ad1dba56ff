// `alignkit quickstart`: the whole alignment pipeline offline in a few minutes on 2 cores, on a tiny GPT-2
// trained from scratch: pretrain on a generated review corpus → SFT on prompt/review pairs → sample pairs from
// the SFT policy and label them with a programmatic judge (AFINN sentiment: AI feedback) → reward model → DPO
// and PPO from the SFT policy → evaluate every policy on held-out prompts (judge score, reward, KL to SFT).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../options/command.js';
import { f } from '../options/fields.js';
import { Random } from '../engine/random.js';
import { parseConfig } from '../io/config.js';
import { loadPretrained, savePretrained } from '../io/pretrained.js';
import { generate } from '../models/generate.js';
import { Transformer } from '../models/transformer.js';
import { REVIEW_SUBJECTS, reviewCorpus, reviewPrompt } from '../data/synthetic-reviews.js';
import { sentimentScore } from '../feedback/sentiment-judge.js';
import { evaluatePolicy, type PolicyEvalResult } from '../eval/policy-eval.js';
import { trainByteLevelBPE } from '../tokenizer/index.js';
import { loadRewardModel } from '../train/reward.js';

interface QuickstartOptions {
  out: string;
  quick: boolean;
  seed: number;
  log: (s: string) => void;
}

function writeJsonl(path: string, rows: readonly unknown[]): void {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

const EOS = '<|endoftext|>';

export async function quickstart(o: QuickstartOptions): Promise<Record<string, PolicyEvalResult>> {
  const { runTraining } = await import('../train/run.js');
  const runSFT = (c: Record<string, unknown>, q: { quiet: boolean }) => runTraining('sft', c, q);
  const runReward = (c: Record<string, unknown>, q: { quiet: boolean }) => runTraining('reward', c, q);
  const runDPO = (c: Record<string, unknown>, q: { quiet: boolean }) => runTraining('dpo', c, q);
  const runPPO = (c: Record<string, unknown>, q: { quiet: boolean }) => runTraining('ppo', c, q);
  const t0 = performance.now();
  const stage = (s: string): void => o.log(`\n== ${s} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  const scale = o.quick ? 0.5 : 1.5;
  mkdirSync(o.out, { recursive: true });
  const data = (f: string): string => join(o.out, 'data', f);
  mkdirSync(join(o.out, 'data'), { recursive: true });
  const common = { seed: o.seed, disable_tqdm: true, logging_steps: 10, save_steps: 0, overwrite_output_dir: true };
  const quiet = { quiet: true };

  stage('1/7 corpus and tokenizer');
  const corpus = reviewCorpus(4000, o.seed);
  const tok = trainByteLevelBPE(
    corpus.map((r) => r.text),
    { vocabSize: 384, specialTokens: [EOS], config: { eos_token: EOS, bos_token: EOS, pad_token: EOS } },
  );
  o.log(`${corpus.length} generated reviews, e.g. "${corpus[0]!.text}"; byte-level BPE vocabulary ${tok.vocabSize}`);
  writeJsonl(
    data('corpus.jsonl'),
    corpus.map((r) => ({ text: r.text })),
  );
  const sft = corpus.map((r) => ({ prompt: reviewPrompt(r.subject), completion: ' ' + r.text }));
  writeJsonl(data('sft.jsonl'), sft);
  const rng = new Random(o.seed + 1);
  const subjects = [...REVIEW_SUBJECTS];
  const heldOut = subjects.splice(0, 4).map(reviewPrompt); // subjects the RL stages never see
  const trainPrompts = subjects.map(reviewPrompt);

  stage('2/7 a tiny GPT-2 from scratch, pretrained on the corpus');
  const hfConfig = parseConfig({
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: tok.vocabSize,
    n_embd: o.quick ? 96 : 128,
    n_layer: o.quick ? 3 : 4,
    n_head: 4,
    n_positions: 64,
    eos_token_id: tok.eosTokenId,
    bos_token_id: tok.eosTokenId,
    pad_token_id: tok.eosTokenId,
  });
  const base = Transformer.random(hfConfig.model, o.seed);
  savePretrained(join(o.out, 'base'), { model: base, hfConfig, generation: null, score: null });
  tok.save(join(o.out, 'base'));
  base.dispose();
  const pre = await runSFT(
    {
      ...common,
      model_name_or_path: join(o.out, 'base'),
      train_file: data('corpus.jsonl'),
      output_dir: join(o.out, 'pretrain'),
      learning_rate: 3e-3,
      per_device_train_batch_size: 32,
      max_steps: Math.round(300 * scale),
      warmup_steps: 20,
      lr_scheduler_type: 'cosine',
      max_length: 64,
    },
    quiet,
  );
  o.log(`pretrain: loss ${pre.metrics.loss?.toFixed(3)} after ${pre.globalStep} steps`);

  stage('3/7 SFT on prompt → review demonstrations');
  const sftRun = await runSFT(
    {
      ...common,
      model_name_or_path: join(o.out, 'pretrain'),
      train_file: data('sft.jsonl'),
      output_dir: join(o.out, 'sft'),
      learning_rate: 1e-3,
      per_device_train_batch_size: 32,
      max_steps: Math.round(150 * scale),
      max_length: 64,
    },
    quiet,
  );
  o.log(`sft: completion loss ${sftRun.metrics.loss?.toFixed(3)}`);

  stage('4/7 AI feedback: sample two responses per prompt from the SFT policy, the sentiment judge picks');
  const sftModel = loadPretrained(join(o.out, 'sft')).model;
  const pairs: { prompt: string; chosen: string; rejected: string }[] = [];
  let ties = 0;
  const nPrompts = Math.round(600 * scale);
  const prompts = Array.from({ length: nPrompts }, () => trainPrompts[rng.int(trainPrompts.length)]!);
  for (let i = 0; i < prompts.length; i += 64) {
    const chunk = prompts.slice(i, i + 64);
    const ids = chunk.flatMap((p) => [tok.encode(p), tok.encode(p)]);
    const g = generate(sftModel, ids, { maxNewTokens: 20, temperature: 1, seed: o.seed + i, eosTokenId: tok.eosTokenId ?? null });
    chunk.forEach((p, j) => {
      const [a, b] = [0, 1].map((k) => tok.decode(g.tokens[2 * j + k]!, { skipSpecialTokens: true }));
      const sa = sentimentScore(a!),
        sb = sentimentScore(b!);
      if (sa === sb || a === b) ties++;
      else pairs.push(sa > sb ? { prompt: p, chosen: a!, rejected: b! } : { prompt: p, chosen: b!, rejected: a! });
    });
  }
  const nEval = Math.max(20, Math.round(pairs.length * 0.15));
  writeJsonl(data('prefs_train.jsonl'), pairs.slice(nEval));
  writeJsonl(data('prefs_eval.jsonl'), pairs.slice(0, nEval));
  writeJsonl(
    data('prompts.jsonl'),
    prompts.map((p) => ({ prompt: p })),
  );
  o.log(`${pairs.length} labelled pairs (${ties} ties left out); e.g. chosen "${pairs[0]?.chosen}" over "${pairs[0]?.rejected}"`);

  stage('5/7 reward model (Bradley–Terry) on the judged pairs');
  const rm = await runReward(
    {
      ...common,
      model_name_or_path: join(o.out, 'sft'),
      train_file: data('prefs_train.jsonl'),
      eval_file: data('prefs_eval.jsonl'),
      output_dir: join(o.out, 'reward'),
      learning_rate: 1e-3,
      per_device_train_batch_size: 16,
      num_train_epochs: o.quick ? 2 : 3,
      max_length: 64,
    },
    quiet,
  );
  o.log(`reward model: held-out accuracy ${rm.eval?.eval_accuracy?.toFixed(3)} (train ${rm.metrics.accuracy?.toFixed(3)})`);

  stage('6/7 DPO from the SFT policy on the same pairs');
  const dpo = await runDPO(
    {
      ...common,
      model_name_or_path: join(o.out, 'sft'),
      train_file: data('prefs_train.jsonl'),
      eval_file: data('prefs_eval.jsonl'),
      output_dir: join(o.out, 'dpo'),
      learning_rate: o.quick ? 5e-4 : 2e-4,
      beta: 0.1,
      per_device_train_batch_size: 16,
      num_train_epochs: o.quick ? 1 : 2,
      max_length: 64,
      max_prompt_length: 16,
    },
    quiet,
  );
  o.log(`dpo: held-out rewards/accuracies ${dpo.eval?.['eval_rewards/accuracies']?.toFixed(3)}, rewards/margins ${dpo.eval?.['eval_rewards/margins']?.toFixed(3)}`);

  stage('7/7 PPO from the SFT policy against the reward model');
  const ppo = await runPPO(
    {
      ...common,
      model_name_or_path: join(o.out, 'sft'),
      reward_model_path: join(o.out, 'reward'),
      train_file: data('prompts.jsonl'),
      output_dir: join(o.out, 'ppo'),
      learning_rate: 3e-4,
      per_device_train_batch_size: 16,
      total_episodes: Math.round(1600 * scale),
      response_length: 20,
      temperature: 1,
      kl_coef: 0.1,
      num_ppo_epochs: 2,
      num_mini_batches: 2,
    },
    quiet,
  );
  o.log(`ppo: objective/scores ${ppo.metrics['objective/scores']?.toFixed(3)}, objective/kl ${ppo.metrics['objective/kl']?.toFixed(3)}`);

  // ---- evaluation on held-out prompts: same prompts and seed for every policy
  const rewardModel = loadRewardModel(join(o.out, 'reward'), { padTokenId: tok.padTokenId ?? 0 });
  const evalPrompts = [...heldOut, ...trainPrompts.slice(0, 4)];
  const results: Record<string, PolicyEvalResult> = {};
  for (const name of ['sft', 'dpo', 'ppo']) {
    const policy = name === 'sft' ? sftModel : loadPretrained(join(o.out, name)).model;
    results[name] = evaluatePolicy(policy, tok, evalPrompts, {
      samples: o.quick ? 8 : 16,
      maxNewTokens: 20,
      temperature: 1,
      seed: o.seed + 7,
      judge: (_p, r) => sentimentScore(r),
      rewardModel,
      reference: sftModel,
    });
    if (policy !== sftModel) policy.dispose();
  }
  sftModel.dispose();
  rewardModel.model.dispose();
  rewardModel.score?.dispose();
  writeFileSync(join(o.out, 'eval.json'), JSON.stringify(results, null, 1));

  const f = (v: number, d: number): string => (Math.abs(v) < 0.5 * 10 ** -d ? 0 : v).toFixed(d);
  const row = (n: string, r: PolicyEvalResult): string =>
    `${n.padEnd(6)} ${f(r.judge!, 2).padStart(12)} ${(100 * r.judge_positive_rate!).toFixed(0).padStart(11)}% ${f(r.reward!, 3).padStart(13)} ${f(r.kl!, 3).padStart(14)}   "${r.responses[0]!.response.trim()}"`;
  o.log(`\n== what each stage changed (held-out prompts, ${results.sft!.responses.length} samples per policy, ${((performance.now() - t0) / 1000).toFixed(0)} s in all)`);
  o.log(`policy  judge score  judge > 0  reward model  KL(π‖π_sft)   first sample`);
  for (const [n, r] of Object.entries(results)) o.log(row(n, r));
  o.log(`\nreward model held-out accuracy ${rm.eval?.eval_accuracy?.toFixed(3)}; DPO held-out rewards/accuracies ${dpo.eval?.['eval_rewards/accuracies']?.toFixed(3)}`);
  o.log(`models, data, metrics.jsonl per stage and eval.json are in ${o.out}`);
  return results;
}

export const QUICKSTART_COMMAND: Command = {
  name: 'quickstart',
  summary: 'the sentiment pipeline offline on a tiny model: pretrain, SFT, AI-judged pairs, reward model, DPO, PPO',
  options: {
    out: f.string('runs/quickstart', 'where the models, data and metrics go', { metavar: 'DIR' }),
    quick: f.boolean(false, 'half the steps (about half the time)'),
    seed: f.integer(0, 'seed of the corpus, the models and the sampling', { min: 0 }),
  },
  async run(ctx) {
    const v = ctx.values as { out: string; quick: boolean; seed: number };
    await quickstart({ out: v.out, quick: v.quick, seed: v.seed, log: (s) => ctx.out.write(s + '\n') });
    return 0;
  },
};

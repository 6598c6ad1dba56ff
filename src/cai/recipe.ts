// The whole Constitutional AI recipe as one run (`alignkit cai run --config cai.yaml`):
//   1. sl/       SL-CAI data: critique → revise on the red-team prompts (cai revise)
//   2. sl-cai/   SFT of the policy on the revisions
//   3. rlaif/    pairs sampled from the SL-CAI policy, labelled by the feedback model (cai label, soft labels)
//   4. reward/   a reward model on the soft labels, then rl-cai/: PPO against it (RL-CAI) — or, with
//                method: dpo, rl-cai/: DPO on the AI labels
//   5. eval.json every stage's policy judged by the feedback model on held-out prompts (win rate against the
//                initial policy, with the position swap; mean rating against the constitution)
// Each stage writes its folder (a Hugging Face model where it trains one, with metrics.jsonl) and, last,
// stage.json; a restart skips the stages that have one and resumes the one that was running.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTextModel } from '../feedback/open.js';
import type { TextModel } from '../feedback/text-model.js';
import { assertNotAnInput } from '../io/paths.js';
import type { Locate } from '../options/fields.js';
import { type OptionsOf, f } from '../options/fields.js';
import { type TrainerKind, checkStageConfig, runStage, stageMapping } from '../train/run.js';
import { type StageRecord, StagedRun } from '../train/stages.js';
import { labelPairs, samplePairs } from './ai-labels.js';
import type { Constitution } from './constitution.js';
import { aiJudge, sampleReplies } from './evaluate.js';
import { formatFor } from '../feedback/text-model.js';
import { responsePrompt } from './prompts.js';
import { type PromptRow, revise } from './revise.js';

export const RECIPE_FIELDS = {
  model_name_or_path: f.string('', 'the policy to align: a Hugging Face model folder (a helpful but unaligned model)', { required: true, metavar: 'DIR' }),
  feedback_model: f.string(null, 'the critic and AI labeller: a folder or openai:URL; default: the policy itself (self-critique, as in the CAI paper)', { nullable: true, metavar: 'DIR|openai:URL' }),
  feedback_model_name: f.string(null, 'the model name on the feedback server', { nullable: true }),
  feedback_chat: f.boolean(false, 'the feedback server renders conversations (chat completions)'),
  concurrency: f.integer(8, 'requests in flight to a feedback server', { min: 1 }),
  constitution: f.string('default', "the principles: a YAML/JSON file, or 'default'", { metavar: 'FILE' }),
  prompts: f.string('', 'red-team prompts for the supervised stage (TRL prompt-only JSONL)', { required: true, metavar: 'FILE' }),
  rl_prompts: f.string(null, 'prompts whose sampled pairs get AI labels; default: prompts', { nullable: true, metavar: 'FILE' }),
  helpfulness_prompts: f.string(
    null,
    "prompts the initial policy answers unrevised into the SL-CAI data, next to the revisions (as the CAI paper mixes in helpfulness samples, so that SL-CAI keeps the policy's helpfulness); default: none",
    { nullable: true, metavar: 'FILE' },
  ),
  eval_prompts: f.string(null, 'held-out prompts for the final evaluation; default: no evaluation', { nullable: true, metavar: 'FILE' }),
  output_dir: f.string('', 'where every stage goes', { required: true, metavar: 'DIR' }),
  method: f.choice(['ppo', 'dpo'], 'ppo', 'the RL stage: PPO against a reward model on the AI labels (RL-CAI), or DPO on them'),
  revisions: f.integer(1, 'critique → revision rounds per prompt', { min: 1 }),
  seed: f.integer(0, 'seed of every stage', { min: 0 }),
  max_new_tokens: f.integer(128, 'new tokens per reply, critique or revision', { min: 1 }),
  temperature: f.number(0.7, 'sampling temperature of replies, critiques, revisions and pairs', { min: 0, exclusiveMin: true }),
  top_p: f.number(1, 'nucleus sampling mass', { min: 0, max: 1, exclusiveMin: true }),
  batch_size: f.integer(32, 'prompts decoded together', { min: 1 }),
  label_ensemble: f.integer(1, 'principles asked per pair', { min: 1 }),
  label_swap: f.boolean(true, 'ask each comparison in both orders'),
  label_chain_of_thought: f.boolean(false, 'the feedback model reasons before answering'),
  label_margin: f.number(0, 'drop pairs whose soft label is within this of 0.5', { min: 0, max: 0.5, exclusiveMax: true }),
  sft: f.value<Record<string, unknown>>({}, 'options of the SFT stage (SFTConfig and ModelConfig names)', stageMapping, { metavar: 'MAP' }),
  reward: f.value<Record<string, unknown>>({}, 'options of the reward-model stage (RewardConfig)', stageMapping, { metavar: 'MAP' }),
  ppo: f.value<Record<string, unknown>>({}, 'options of the PPO stage (PPOConfig)', stageMapping, { metavar: 'MAP' }),
  dpo: f.value<Record<string, unknown>>({}, 'options of the DPO stage with method: dpo (DPOConfig)', stageMapping, { metavar: 'MAP' }),
};

export type RecipeOptions = OptionsOf<typeof RECIPE_FIELDS>;

/** Keys a stage's trainer options may not set: the recipe sets them. */
/** Checks every stage's trainer options before anything runs (a typo in `ppo:` must not surface an hour in). */
export function checkStageOptions(o: RecipeOptions, locate: Locate): void {
  const stages: [keyof RecipeOptions, TrainerKind][] = [
    ['sft', 'sft'],
    ['reward', 'reward'],
    ['ppo', 'ppo'],
    ['dpo', 'dpo'],
  ];
  for (const [key, kind] of stages) {
    const m = o[key] as Record<string, unknown>;
    const at = (k: string) => `${locate(key)}.${k}`;
    checkStageConfig(kind, m, at, "the recipe (each stage's model, data and output folder follow from the stages before it)");
  }
}

interface RecipeContext {
  log: (line: string) => void;
  quiet?: boolean;
  /** the constitution (the recipe's `constitution` resolved) */
  constitution: Constitution;
  /** the prompt files read as rows */
  readPrompts: (path: string) => PromptRow[];
}

interface RecipeResult {
  output_dir: string;
  stages: StageRecord[];
  eval: unknown;
}

/** Runs (or resumes) the recipe. */
export async function runRecipe(o: RecipeOptions, ctx: RecipeContext): Promise<RecipeResult> {
  const out = o.output_dir;
  assertNotAnInput({ what: 'output_dir', path: out }, [{ what: 'the policy folder', path: o.model_name_or_path }]);
  const run = new StagedRun(out, ctx.log);
  const dir = (s: string) => run.dir(s);
  const stage = run.stage.bind(run);
  const gen = { maxTokens: o.max_new_tokens, temperature: o.temperature, topP: o.top_p };
  /** A training stage: resumes from its newest checkpoint, or starts over in its folder. */
  const train = async (kind: TrainerKind, name: string, cfg: Record<string, unknown>) => {
    const r = await runStage(kind, dir(name), { seed: o.seed, disable_tqdm: ctx.quiet ?? false, ...cfg }, { quiet: ctx.quiet, handleInterrupt: true });
    return { steps: r.globalStep, metrics: r.metrics, eval: r.eval };
  };
  // the feedback model (critic, labeller, judge): the one named, else the initial policy — its own critic, as
  // in the CAI paper, kept the same through every stage (fine-tuning the policy does not change its judge)
  let feedback: TextModel | null = null;
  const openFeedback = (): TextModel =>
    (feedback ??= openTextModel(o.feedback_model ?? o.model_name_or_path, { model: o.feedback_model_name, chat: o.feedback_chat, concurrency: o.concurrency, batchSize: o.batch_size }));
  try {
    // 1. the supervised stage's data, from the initial policy (its own critic unless a feedback model is named)
    await stage('sl', 'answer, critique against a sampled principle, revise', async () => {
      const policy = openTextModel(o.model_name_or_path, { batchSize: o.batch_size });
      try {
        const critic = o.feedback_model ? openFeedback() : policy;
        const r = await revise({
          model: policy,
          critic,
          constitution: ctx.constitution,
          prompts: ctx.readPrompts(o.prompts),
          outputDir: dir('sl'),
          revisions: o.revisions,
          seed: o.seed,
          generation: gen,
          batchSize: o.batch_size,
          quiet: ctx.quiet,
        });
        let helpful = 0;
        if (o.helpfulness_prompts) {
          // the initial policy's own answers to helpfulness prompts, unrevised, beside the revisions
          const rows = ctx.readPrompts(o.helpfulness_prompts);
          const replies = await sampleReplies(policy, rows, gen, o.seed);
          const format = formatFor(policy);
          const mixed = readFileSync(join(dir('sl'), 'sft.jsonl'), 'utf8')
            .trimEnd()
            .split('\n')
            .filter(Boolean);
          rows.forEach((p, i) => {
            const prompt = responsePrompt(format, p.prompt);
            mixed.push(
              JSON.stringify(
                typeof prompt === 'string' ? { id: p.id, prompt, completion: ` ${replies[i]!.trim()}` } : { id: p.id, prompt, completion: [{ role: 'assistant', content: replies[i]!.trim() }] },
              ),
            );
          });
          writeFileSync(join(dir('sl'), 'sft_mixed.jsonl'), mixed.join('\n') + '\n');
          helpful = rows.length;
        }
        return { prompts: r.done + r.skipped, helpfulness_samples: helpful, tokens: r.tokens, tokens_per_s: r.tokens / Math.max(r.seconds, 1e-9), human_harm_labels: 0 };
      } finally {
        policy.dispose();
      }
    });
    // 2. SL-CAI: fine-tune on the revisions
    const slData = join(dir('sl'), o.helpfulness_prompts ? 'sft_mixed.jsonl' : 'sft.jsonl');
    await stage('sl-cai', 'SFT on the revisions', () => train('sft', 'sl-cai', { ...o.sft, model_name_or_path: o.model_name_or_path, train_file: slData }));
    // 3. AI feedback on pairs sampled from the SL-CAI policy
    await stage('rlaif', 'pairs from the SL-CAI policy, labelled by the feedback model', async () => {
      const policy = openTextModel(dir('sl-cai'), { batchSize: o.batch_size });
      try {
        const s = await samplePairs(policy, ctx.readPrompts(o.rl_prompts ?? o.prompts), gen, o.seed);
        const judge = openFeedback();
        const r = await labelPairs({
          model: judge,
          constitution: ctx.constitution,
          pairs: s.pairs,
          out: join(dir('rlaif'), 'ai_prefs.jsonl'),
          seed: o.seed,
          ensemble: o.label_ensemble,
          swap: o.label_swap,
          chainOfThought: o.label_chain_of_thought,
          margin: o.label_margin,
          batchSize: o.batch_size,
          quiet: ctx.quiet,
        });
        return { pairs: s.pairs.length, identical: s.identical, written: r.written, dropped: r.dropped, position_bias: r.positionBias };
      } finally {
        policy.dispose();
      }
    });
    const prefs = join(dir('rlaif'), 'ai_prefs.jsonl');
    // 4. RL-CAI
    if (o.method === 'ppo') {
      await stage('reward', 'reward model on the soft AI labels', () => train('reward', 'reward', { ...o.reward, model_name_or_path: dir('sl-cai'), train_file: prefs }));
      await stage('rl-cai', 'PPO against the reward model', () =>
        train('ppo', 'rl-cai', { ...o.ppo, model_name_or_path: dir('sl-cai'), train_file: o.rl_prompts ?? o.prompts, reward_model_path: dir('reward') }),
      );
    } else {
      await stage('rl-cai', 'DPO on the AI labels', () => train('dpo', 'rl-cai', { ...o.dpo, model_name_or_path: dir('sl-cai'), train_file: prefs }));
    }
    // 5. every stage's policy judged by the feedback model
    let evalResult: unknown = null;
    if (o.eval_prompts) {
      const evalPath = join(out, 'eval.json');
      if (existsSync(evalPath)) evalResult = JSON.parse(readFileSync(evalPath, 'utf8'));
      else {
        ctx.log('== eval: each policy against the initial one, judged by the feedback model');
        const prompts = ctx.readPrompts(o.eval_prompts);
        const policies = [
          ['initial', o.model_name_or_path],
          ['sl-cai', dir('sl-cai')],
          ['rl-cai', dir('rl-cai')],
        ] as const;
        const replies: { name: string; replies: string[] }[] = [];
        for (const [name, d] of policies) {
          const m = openTextModel(d, { batchSize: o.batch_size });
          try {
            replies.push({ name, replies: await sampleReplies(m, prompts, gen, o.seed) });
          } finally {
            m.dispose();
          }
        }
        const judge = openFeedback();
        evalResult = {
          judge: judge.id,
          prompts: prompts.length,
          results: await aiJudge(judge, ctx.constitution, prompts, replies, { seed: o.seed }),
          samples: prompts.map((p, i) => ({ id: p.id, prompt: p.prompt, ...Object.fromEntries(replies.map((r) => [r.name, r.replies[i]])) })),
        };
        writeFileSync(evalPath, JSON.stringify(evalResult, null, 1) + '\n');
      }
    }
    return { output_dir: resolve(out), stages: run.records, eval: evalResult };
  } finally {
    (feedback as TextModel | null)?.dispose();
  }
}

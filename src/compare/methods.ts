// The four methods of the mission's table (and CAI's DPO variant), each from the same helpful-only base:
//   sft      aligned demonstrations (human data: demonstrations)
//   rlhf     rounds of fresh comparisons from simulated annotators through the labeling server → reward model → PPO
//   dpo      DPO on the same comparisons
//   cai      the constitution alone: critique → revision → SL-CAI, then AI labels → reward model → PPO (RL-CAI)
//   cai-dpo  SL-CAI, then DPO on the same AI labels
// Each returns its final policy and what it cost in human data; the runner measures its time and memory.
import { join, resolve } from 'node:path';
import type { FeedbackDB } from '../label/db.js';
import { readPrompts } from '../label/inputs.js';
import type { LabelServer } from '../label/server.js';
import { simulateAnnotators, simulatedTokens } from '../label/simulate.js';
import { RECIPE_FIELDS, runRecipe } from '../cai/recipe.js';
import { resolveOptions } from '../options/fields.js';
import { runRlhf } from '../rlhf/loop.js';
import { listCheckpoints } from '../train/checkpoint.js';
import { runStage } from '../train/run.js';
import { goldJudgement, parseRequest, WORLD_PRINCIPLES } from '../world/index.js';
import type { Constitution } from '../cai/constitution.js';
import type { Method, Sizes } from './options.js';
import type { MethodCosts } from './table.js';
import type { WorldFiles } from './world-files.js';

interface MethodContext {
  method: Method;
  /** this method's folder */
  dir: string;
  /** the seed's folder (other methods' outputs: dpo reads rlhf's comparisons, cai-dpo reads cai's AI labels) */
  seedDir: string;
  base: string;
  files: WorldFiles;
  sizes: Sizes;
  seed: number;
  annotators: number;
  errorRate: number;
  positionBias: number;
  quiet: boolean;
  log: (line: string) => void;
}

export interface MethodResult extends MethodCosts {
  method: Method;
  policy: string;
  /** the reward model, where the method trains one */
  reward_model: string | null;
  /** policies along the way (for the reward–KL plot): name → folder */
  checkpoints: Record<string, string>;
  notes: Record<string, unknown>;
}

/** The world's principles as a constitution (no worked examples: the base learnt the formats in pretraining). */
const WORLD_CONSTITUTION: Constitution = {
  source: 'the world principles (src/world/principles.ts)',
  principles: WORLD_PRINCIPLES.map((p) => ({ id: p.id, critique: p.critique, revision: p.revision, comparison: p.comparison })),
};

const train = (kind: 'sft' | 'reward' | 'dpo' | 'ppo', dir: string, c: MethodContext, cfg: Record<string, unknown>) =>
  runStage(kind, dir, { seed: c.seed, disable_tqdm: c.quiet, ...cfg }, { quiet: c.quiet, handleInterrupt: true });

/** A DPO run's checkpoints along the way (for the reward–KL plot): save every third of the run, keep them all. */
const ALONG = { save_steps: 0, save_total_limit: 0 };
function along(dir: string): Record<string, string> {
  const cks = listCheckpoints(dir);
  return Object.fromEntries(cks.slice(0, -1).map((c) => [`step ${c.step}`, c.path]));
}

/** Steps between checkpoints: a third of the run (its length from the rows, the batch size and the epochs). */
function saveEvery(rows: number, cfg: Record<string, unknown>): number {
  const steps = typeof cfg.max_steps === 'number' ? cfg.max_steps : Math.ceil(rows / Number(cfg.per_device_train_batch_size ?? 8)) * Number(cfg.num_train_epochs ?? 1);
  return Math.max(1, Math.ceil(steps / 3));
}

const kindOf = (prompt: unknown): string | null => (typeof prompt === 'string' ? (parseRequest(prompt)?.kind ?? null) : null);

async function sft(c: MethodContext): Promise<MethodResult> {
  await train('sft', join(c.dir, 'policy'), c, { ...c.sizes.sft, model_name_or_path: c.base, train_file: c.files.aligned });
  const d = c.files.counts;
  return {
    method: 'sft',
    policy: join(c.dir, 'policy'),
    human_demonstrations: d.demonstrations,
    human_comparisons: 0,
    human_harm_labels: d.demonstrations_harm,
    ai_labels: 0,
    stages: 1,
    models_at_peak: 1,
    reward_model: null,
    checkpoints: {},
    notes: {},
  };
}

async function rlhf(c: MethodContext): Promise<MethodResult> {
  let server: LabelServer | null = null,
    store: FeedbackDB | null = null;
  const stats = { labels: 0, flipped: 0, biased: 0 };
  const r = await runRlhf(
    {
      model_name_or_path: c.base,
      policy_b: join(c.base, '..', 'pretrain'),
      reward_base: c.base,
      prompts: c.files.rlPrompts,
      rl_prompts: null,
      output_dir: c.dir,
      db: null,
      rounds: c.sizes.rounds,
      labels_per_round: c.sizes.labelsPerRound,
      prompts_per_round: c.sizes.labelsPerRound,
      serve: true,
      port: 0,
      max_new_tokens: c.sizes.maxNewTokens,
      temperature: 1,
      top_p: null,
      seed: c.seed,
      reward: c.sizes.reward,
      ppo: c.sizes.ppo,
    },
    {
      log: c.log,
      quiet: c.quiet,
      pollMs: 100,
      onServer: (s, db) => void ((server = s), (store = db)),
      // each round: the simulated annotators label through the server's HTTP API until the round has its labels
      onRoundOpen: async (round) => {
        const tokens = simulatedTokens(store!, c.annotators);
        void simulateAnnotators({
          url: server!.url,
          tokens,
          labels: c.sizes.labelsPerRound,
          seed: c.seed * 100 + round,
          errorRate: c.errorRate,
          positionBias: c.positionBias,
          judge: (prompt, left, right) => goldJudgement(String(prompt), left, right),
        }).then(
          (s) => ((stats.labels += s.labels), (stats.flipped += s.flipped), (stats.biased += s.biased)),
          (e: Error) => c.log(`simulated annotators: ${e.message}`),
        );
      },
    },
  );
  const last = r.rounds[r.rounds.length - 1]!;
  const prefs = join(c.dir, `round-${c.sizes.rounds}`, 'prefs.jsonl');
  const rows = readPrompts(prefs);
  const checkpoints = Object.fromEntries(r.rounds.map((x, i) => [`round ${i + 1}`, join(c.dir, `round-${i + 1}`, 'ppo')]));
  return {
    method: 'rlhf',
    policy: resolve(r.policy),
    human_demonstrations: 0,
    human_comparisons: Number(last.comparisons ?? rows.length),
    human_harm_labels: rows.filter((x) => kindOf(x.prompt) !== 'benign').length,
    ai_labels: 0,
    stages: 3 * c.sizes.rounds,
    models_at_peak: 3,
    reward_model: join(c.dir, `round-${c.sizes.rounds}`, 'reward'),
    checkpoints,
    notes: { simulated_annotators: c.annotators, error_rate: c.errorRate, position_bias: c.positionBias, ...stats, prefs },
  };
}

async function dpo(c: MethodContext): Promise<MethodResult> {
  // the comparisons RLHF collected (every round's labels, exported by its last round)
  const prefs = join(c.seedDir, 'rlhf', `round-${c.sizes.rounds}`, 'prefs.jsonl');
  const rows = readPrompts(prefs);
  await train('dpo', join(c.dir, 'policy'), c, { ...c.sizes.dpo, ...ALONG, save_steps: saveEvery(rows.length, c.sizes.dpo), model_name_or_path: c.base, train_file: prefs });
  return {
    method: 'dpo',
    policy: join(c.dir, 'policy'),
    human_demonstrations: 0,
    human_comparisons: rows.length,
    human_harm_labels: rows.filter((x) => kindOf(x.prompt) !== 'benign').length,
    ai_labels: 0,
    stages: 2,
    models_at_peak: 2,
    reward_model: null,
    checkpoints: along(join(c.dir, 'policy')),
    notes: { prefs },
  };
}

async function cai(c: MethodContext): Promise<MethodResult> {
  const o = resolveOptions(
    RECIPE_FIELDS,
    {
      model_name_or_path: c.base,
      prompts: c.files.caiPrompts,
      rl_prompts: c.files.caiPairPrompts,
      helpfulness_prompts: c.files.caiHelpfulPrompts,
      output_dir: c.dir,
      method: 'ppo',
      seed: c.seed,
      max_new_tokens: c.sizes.maxNewTokens,
      temperature: c.sizes.temperature,
      batch_size: 32,
      sft: c.sizes.caiSft,
      reward: c.sizes.reward,
      ppo: c.sizes.ppo,
    },
    'compare cai',
  );
  const r = await runRecipe(o, {
    log: c.log,
    quiet: c.quiet,
    constitution: WORLD_CONSTITUTION,
    readPrompts: (p) => readPrompts(p).map((x) => ({ id: x.id ?? `line-${x.line}`, prompt: x.prompt as string })),
  });
  const rlaif = r.stages.find((s) => s.stage === 'rlaif');
  return {
    method: 'cai',
    policy: join(c.dir, 'rl-cai'),
    human_demonstrations: 0,
    human_comparisons: 0,
    human_harm_labels: 0,
    ai_labels: Number(rlaif?.written ?? 0),
    stages: 5,
    models_at_peak: 3,
    reward_model: join(c.dir, 'reward'),
    checkpoints: { 'sl-cai': join(c.dir, 'sl-cai') },
    notes: { sl: r.stages.find((s) => s.stage === 'sl') ?? null, rlaif: rlaif ?? null },
  };
}

async function caiDpo(c: MethodContext): Promise<MethodResult> {
  // SL-CAI and its AI labels are CAI's (the same stages); only the RL stage differs
  const cdir = join(c.seedDir, 'cai');
  const prefs = join(cdir, 'rlaif', 'ai_prefs.jsonl');
  const n = readPrompts(prefs).length;
  await train('dpo', join(c.dir, 'policy'), c, { ...c.sizes.dpo, ...ALONG, save_steps: saveEvery(n, c.sizes.dpo), model_name_or_path: join(cdir, 'sl-cai'), train_file: prefs });
  return {
    method: 'cai-dpo',
    policy: join(c.dir, 'policy'),
    human_demonstrations: 0,
    human_comparisons: 0,
    human_harm_labels: 0,
    ai_labels: n,
    stages: 4,
    models_at_peak: 2,
    reward_model: null,
    checkpoints: { 'sl-cai': join(cdir, 'sl-cai'), ...along(join(c.dir, 'policy')) },
    notes: { prefs },
  };
}

export const RUN_METHOD: Record<Method, (c: MethodContext) => Promise<MethodResult>> = { sft, rlhf, dpo, cai, 'cai-dpo': caiDpo };

/** Methods that need another's output first. */
export const NEEDS: Partial<Record<Method, Method>> = { dpo: 'rlhf', 'cai-dpo': 'cai' };

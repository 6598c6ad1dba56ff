// RLHF with fresh feedback, in rounds (`alignkit rlhf`): round r opens a labeling round in which the newest policy
// samples pairs for people (or `alignkit label simulate`) to compare, waits until the round has M labels, trains
// the reward model on every round's labels so far, continues PPO from the newest policy against it, and repeats
// for `rounds` rounds. Each round keeps its labels (in the feedback database), its preference export, reward model,
// policy and metrics in round-<r>/; a restart resumes at the unfinished round (its labelling round is reused, so
// no label is lost, and a training stage resumes from its checkpoint).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Random } from '../engine/random.js';
import { FeedbackDB } from '../label/db.js';
import { exportPreferences } from '../label/export.js';
import { readPrompts, type PromptRecord } from '../label/inputs.js';
import { type LabelServer, startServer } from '../label/server.js';
import { Progress } from '../io/progress.js';
import { assertNotAnInput } from '../io/paths.js';
import type { Locate } from '../options/fields.js';
import { type OptionsOf, f } from '../options/fields.js';
import { checkStageConfig, runStage, stageMapping } from '../train/run.js';
import { StagedRun, type StageRecord } from '../train/stages.js';

export const RLHF_FIELDS = {
  model_name_or_path: f.string('', 'the policy the first round samples from (usually an SFT model)', { required: true, metavar: 'DIR' }),
  policy_b: f.string(
    null,
    "a second policy that samples response B of every pair (e.g. the pretrained model, whose habits differ from the fine-tuned policy's); default: two samples of the newest policy",
    { nullable: true, metavar: 'DIR' },
  ),
  reward_base: f.string(null, 'the model each round’s reward model starts from; default: model_name_or_path', { nullable: true, metavar: 'DIR' }),
  prompts: f.string('', 'prompts the rounds sample pairs for (TRL prompt-only JSONL)', { required: true, metavar: 'FILE' }),
  rl_prompts: f.string(null, 'prompts PPO trains on; default: prompts', { nullable: true, metavar: 'FILE' }),
  output_dir: f.string('', 'where each round goes (round-1/, round-2/, …)', { required: true, metavar: 'DIR' }),
  db: f.string(null, 'the feedback database; default: <output_dir>/feedback.sqlite', { nullable: true, metavar: 'FILE' }),
  rounds: f.integer(2, 'rounds of fresh feedback', { min: 1 }),
  labels_per_round: f.integer(100, 'labels a round waits for before training', { min: 1 }),
  prompts_per_round: f.integer(null, 'prompts sampled per round (a seeded subset); default: all', { min: 1, nullable: true }),
  serve: f.boolean(true, 'run the labeling server in this process (else label with a separate `alignkit label serve` on the same database)'),
  port: f.integer(8765, 'port of the labeling server on 127.0.0.1 (0: any free port)', { min: 0, max: 65535 }),
  max_new_tokens: f.integer(64, 'response length when sampling pairs', { min: 1 }),
  temperature: f.number(1, 'sampling temperature of the pairs (> 0: two samples must differ)', { min: 0, exclusiveMin: true }),
  top_p: f.number(null, 'nucleus sampling mass of the pairs', { min: 0, max: 1, exclusiveMin: true, nullable: true }),
  seed: f.integer(0, 'seed of the prompt subsets, the sampling and the training', { min: 0 }),
  reward: f.value<Record<string, unknown>>({}, 'options of each round’s reward model (RewardConfig)', stageMapping, { metavar: 'MAP' }),
  ppo: f.value<Record<string, unknown>>({}, 'options of each round’s PPO (PPOConfig)', stageMapping, { metavar: 'MAP' }),
};

export type RlhfOptions = OptionsOf<typeof RLHF_FIELDS>;

/** Checks the reward and PPO options before the first round. */
export function checkRlhfOptions(o: RlhfOptions, locate: Locate): void {
  for (const [key, kind] of [
    ['reward', 'reward'],
    ['ppo', 'ppo'],
  ] as const) {
    const at = (k: string) => `${locate(key)}.${k}`;
    checkStageConfig(kind, o[key], at, 'the RLHF loop');
  }
}

/** Where each round's labelling round lives in the database (kept in <output_dir>/rlhf.json). */
interface LoopState {
  db: string;
  rounds: { round: number; labelRound: number; policy: string }[];
}

interface RlhfHooks {
  log?: (line: string) => void;
  quiet?: boolean;
  /** called with the server once it listens (e.g. to start simulated annotators against it) */
  onServer?: (server: LabelServer, store: FeedbackDB) => void | Promise<void>;
  /** called when a round is open and waiting for labels (round number, the database's round id) */
  onRoundOpen?: (round: number, labelRound: number) => void | Promise<void>;
  /** poll interval while waiting for labels, ms (default 500) */
  pollMs?: number;
}

interface RlhfResult {
  output_dir: string;
  rounds: StageRecord[];
  /** the newest policy */
  policy: string;
}

function writeAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(value, null, 1) + '\n');
  renameSync(`${path}.tmp`, path);
}

/** The labels of a round so far (decisive or not). */
function labelled(store: FeedbackDB, round: number): number {
  return store.labelCount(round);
}

/** Runs (or resumes) the rounds. */
export async function runRlhf(o: RlhfOptions, h: RlhfHooks = {}): Promise<RlhfResult> {
  const log = h.log ?? (() => {});
  const out = o.output_dir;
  assertNotAnInput({ what: 'output_dir', path: out }, [{ what: 'the policy folder', path: o.model_name_or_path }]);
  const run = new StagedRun(out, log);
  const statePath = join(out, 'rlhf.json');
  const dbPath = resolve(o.db ?? join(out, 'feedback.sqlite'));
  const state: LoopState = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as LoopState) : { db: dbPath, rounds: [] };
  if (state.db !== dbPath) throw new Error(`${statePath}: this run's labels are in ${state.db}, not ${dbPath}`);
  const allPrompts = readPrompts(o.prompts);
  const store = FeedbackDB.open(dbPath);
  let server: LabelServer | null = null;
  try {
    if (o.serve) {
      server = await startServer({ store, port: o.port, log: (l) => log(`[label] ${l}`) });
      log(`labeling server: ${server.url} (add annotators with: alignkit label add-annotator NAME --db ${dbPath})`);
      await h.onServer?.(server, store);
    }
    let policy = resolve(o.model_name_or_path);
    for (let r = 1; r <= o.rounds; r++) {
      const name = `round-${r}`;
      const prev = run.done(name);
      if (prev) {
        log(`== ${name}: done before; skipped`);
        run.records.push(prev);
        policy = resolve(run.dir(name), 'ppo');
        continue;
      }
      await run.stage(name, `fresh labels on the newest policy, reward model, PPO`, async () => {
        // the labelling round: opened once, reused after a restart
        let entry = state.rounds.find((x) => x.round === r);
        if (!entry) {
          const rng = new Random(o.seed * 1000 + r);
          const subset: PromptRecord[] = o.prompts_per_round && o.prompts_per_round < allPrompts.length ? shuffled(allPrompts, rng).slice(0, o.prompts_per_round) : allPrompts;
          const labelRound = store.openRound({
            source: 'policy',
            policy,
            policyB: o.policy_b ? resolve(o.policy_b) : null,
            input: resolve(o.prompts),
            prompts: subset,
            settings: { maxNewTokens: o.max_new_tokens, temperature: o.temperature, topP: o.top_p ?? undefined, seed: o.seed * 1000 + r },
          }).id;
          entry = { round: r, labelRound, policy };
          state.rounds.push(entry);
          writeAtomic(statePath, state);
        }
        log(`${name}: labelling round ${entry.labelRound} of ${dbPath} (${entry.policy}); waiting for ${o.labels_per_round} labels`);
        await h.onRoundOpen?.(r, entry.labelRound);
        const progress = new Progress('labels', o.labels_per_round, Math.min(labelled(store, entry.labelRound), o.labels_per_round), h.quiet);
        let seen = labelled(store, entry.labelRound);
        while (seen < o.labels_per_round) {
          await new Promise((res) => setTimeout(res, h.pollMs ?? 500));
          const now = labelled(store, entry.labelRound);
          if (now > seen) progress.tick(Math.min(now, o.labels_per_round) - Math.min(seen, o.labels_per_round));
          seen = now;
          // every prompt sampled and every pair labelled, yet fewer labels than asked for: it cannot finish
          const c = store.roundCounts().find((x) => x.round === entry!.labelRound);
          if (c && c.pending === 0 && seen >= c.pairs && seen < o.labels_per_round)
            throw new Error(
              `${name}: the round ran out of pairs at ${seen} labels (of ${o.labels_per_round}; ${c.pairs} pairs, ${c.failed} prompts failed to sample): give more prompts or lower labels_per_round`,
            );
        }
        progress.stop();
        // every round's labels so far → the reward model → PPO from the newest policy
        mkdirSync(run.dir(name), { recursive: true });
        const prefs = join(run.dir(name), 'prefs.jsonl');
        const counts = exportPreferences(store, prefs);
        const base = o.reward_base ?? o.model_name_or_path;
        const rm = await runStage('reward', join(run.dir(name), 'reward'), { seed: o.seed, ...o.reward, model_name_or_path: base, train_file: prefs }, { quiet: h.quiet, handleInterrupt: true });
        const ppo = await runStage(
          'ppo',
          join(run.dir(name), 'ppo'),
          { seed: o.seed, ...o.ppo, model_name_or_path: entry.policy, train_file: o.rl_prompts ?? o.prompts, reward_model_path: join(run.dir(name), 'reward') },
          { quiet: h.quiet, handleInterrupt: true },
        );
        return {
          round: r,
          label_round: entry.labelRound,
          labels: seen,
          comparisons: counts.written,
          ties: counts.ties,
          both_bad: counts.bothBad,
          policy: entry.policy,
          reward: rm.metrics,
          ppo: ppo.metrics,
        };
      });
      policy = resolve(run.dir(name), 'ppo');
    }
    return { output_dir: resolve(out), rounds: run.records, policy };
  } finally {
    await server?.close();
    store.close();
  }
}

function shuffled<T>(xs: readonly T[], rng: Random): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

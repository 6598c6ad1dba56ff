// One job of a comparison in its own process, so that its wall time and peak memory are its own: the base of a
// seed, one method, or the held-out evaluation of every policy. The job comes as JSON in argv[2]; the result is
// written to job.out (JSON, with wall_s and peak_rss_mb, the process's maximum resident set).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainBase } from './base.js';
import { type PolicyEval, answerHeldOut, goldPairs, judgePolicy, loadPolicy, rewardAccuracy } from './evaluate.js';
import { type MethodResult, RUN_METHOD } from './methods.js';
import { type Method, sizesOf } from './options.js';
import { worldOf, writeWorldFiles } from './world-files.js';

export type Job =
  | { kind: 'base'; seedDir: string; seed: number; size: 'default' | 'tiny'; out: string; quiet: boolean }
  | { kind: 'method'; method: Method; seedDir: string; seed: number; size: 'default' | 'tiny'; out: string; quiet: boolean; annotators: number; errorRate: number; positionBias: number }
  | {
      kind: 'eval';
      seedDir: string;
      seed: number;
      size: 'default' | 'tiny';
      out: string;
      quiet: boolean;
      policies: { name: string; dir: string; rewardModel: string | null; checkpoints: Record<string, string> }[];
    };

export interface EvalJobResult {
  policies: (PolicyEval & { reward_model_accuracy: number | null })[];
  /** reward and KL along each method's checkpoints (the frontier plot) */
  frontier: { method: string; checkpoint: string; gold_score: number | null; kl_to_base: number | null }[];
}

async function run(job: Job): Promise<unknown> {
  const s = sizesOf(job.size);
  const world = worldOf(job.seed, s);
  const log = (l: string) => process.stderr.write(`[seed ${job.seed}] ${l}\n`);
  // the base job writes the seed's files; the later jobs only need their paths
  const files = writeWorldFiles(world, join(job.seedDir, 'data'), s, job.kind === 'base');
  if (job.kind === 'base') return { ...(await trainBase(world, files, join(job.seedDir, 'base'), s, job.seed, job.quiet)), counts: files.counts };
  const base = join(job.seedDir, 'base', 'base');
  if (job.kind === 'method') {
    const r: MethodResult = await RUN_METHOD[job.method]({
      method: job.method,
      dir: join(job.seedDir, job.method),
      seedDir: job.seedDir,
      base,
      files,
      sizes: s,
      seed: job.seed,
      annotators: job.annotators,
      errorRate: job.errorRate,
      positionBias: job.positionBias,
      quiet: job.quiet,
      log,
    });
    return r;
  }
  // the evaluation: the base first (every other policy is compared with its answers, and its KL measured
  // against it); each folder is evaluated once (SL-CAI is a checkpoint of both CAI methods)
  const outDir = join(job.seedDir, 'eval');
  mkdirSync(outDir, { recursive: true });
  const gen = { samples: s.samples, maxNewTokens: s.maxNewTokens, temperature: s.temperature, seed: job.seed + 1000 };
  const basePolicy = loadPolicy(base);
  const pairs = goldPairs(world, s.rmPairs, job.seed);
  const policies: EvalJobResult['policies'] = [];
  const frontier: EvalJobResult['frontier'] = [];
  try {
    const baseAnswers = answerHeldOut(basePolicy, null, world, gen);
    const seen = new Map<string, PolicyEval>();
    const judged = (name: string, dir: string): PolicyEval => {
      const prev = seen.get(dir);
      if (prev) return prev;
      let e: PolicyEval;
      if (dir === base) e = judgePolicy(name, baseAnswers, baseAnswers, outDir);
      else {
        const pol = loadPolicy(dir);
        try {
          e = judgePolicy(name, answerHeldOut(pol, basePolicy, world, gen), baseAnswers, outDir);
        } finally {
          pol.pretrained.model.dispose();
        }
      }
      seen.set(dir, e);
      return e;
    };
    for (const p of [{ name: 'base', dir: base, rewardModel: null, checkpoints: {} }, ...job.policies]) {
      log(`eval: ${p.name}`);
      const e = judged(p.name, p.dir);
      policies.push({ ...e, reward_model_accuracy: p.rewardModel && existsSync(p.rewardModel) ? rewardAccuracy(p.rewardModel, pairs) : null });
      for (const [ck, dir] of Object.entries(p.checkpoints)) {
        const ce = judged(`${p.name}@${ck.replace(/\W+/g, '-')}`, dir);
        frontier.push({ method: p.name, checkpoint: ck, gold_score: ce.gold_score, kl_to_base: ce.kl_to_base });
      }
      frontier.push({ method: p.name, checkpoint: 'final', gold_score: e.gold_score, kl_to_base: e.kl_to_base });
    }
  } finally {
    basePolicy.pretrained.model.dispose();
  }
  return { policies, frontier } satisfies EvalJobResult;
}

const job = JSON.parse(process.argv[2] ?? readFileSync(0, 'utf8')) as Job;
const t0 = performance.now();
run(job).then(
  (r) => {
    writeFileSync(job.out, JSON.stringify({ ...(r as object), wall_s: (performance.now() - t0) / 1000, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }, null, 1) + '\n');
    process.exit(0);
  },
  (e: Error) => {
    process.stderr.write(`compare ${job.kind}${job.kind === 'method' ? ` ${job.method}` : ''}: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);

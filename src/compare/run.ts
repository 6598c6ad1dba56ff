// `alignkit compare`: for each seed, the world and its helpful-only base, then every method from that base, then
// the held-out evaluation of every policy; each job in its own process (its wall time and peak memory are its
// own), each a stage that a restart skips once done. The rows of all seeds become the table, compare.json and
// report.html.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StagedRun } from '../train/stages.js';
import type { MethodResult } from './methods.js';
import { NEEDS } from './methods.js';
import { type CompareOptions, METHODS, type Method, sizesOf } from './options.js';
import { type MethodRow, type SeedRow, aggregate } from './table.js';
import type { EvalJobResult, Job } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export interface CompareResult {
  output_dir: string;
  seeds: number[];
  rows: SeedRow[];
  table: MethodRow[];
  frontier: (EvalJobResult['frontier'][number] & { seed: number })[];
  /** training curves: per seed and method, the loss / reward records of metrics.jsonl */
  curves: { seed: number; method: string; stage: string; step: number; name: string; value: number }[];
}

/** Runs a job in a child process; resolves with its result file's JSON. */
function runJob(job: Job, log: (l: string) => void): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (c: Buffer) => {
      const s = c.toString();
      tail = (tail + s).slice(-4000);
      for (const line of s.split('\n')) if (line.trim()) log(line);
    });
    const onSignal = () => child.kill('SIGINT');
    process.once('SIGINT', onSignal);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onSignal);
      if (code === 0) res(JSON.parse(readFileSync(job.out, 'utf8')) as Record<string, unknown>);
      else
        rej(
          new Error(
            `compare: the ${job.kind}${job.kind === 'method' ? ` ${job.method}` : ''} job of seed ${job.seed} failed (${signal ?? `exit ${code}`})${tail ? `:\n${tail.trim().split('\n').slice(-8).join('\n')}` : ''}`,
          ),
        );
    });
  });
}

/** The methods in an order that runs each after the one it needs. */
function methodOrder(methods: readonly string[]): Method[] {
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown method '${m}' (${METHODS.join(', ')})`);
  const want = new Set(methods as Method[]);
  for (const m of [...want]) if (NEEDS[m]) want.add(NEEDS[m]!);
  return METHODS.filter((m) => want.has(m));
}

function readCurves(file: string): { step: number; name: string; value: number }[] {
  try {
    const out: { step: number; name: string; value: number }[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as Record<string, unknown>;
      const step = Number(r.step ?? r.global_step);
      for (const name of ['loss', 'objective/scores', 'rewards/accuracies', 'rewards/margins', 'objective/kl'])
        if (typeof r[name] === 'number' && Number.isFinite(step)) out.push({ step, name, value: r[name] as number });
    }
    return out;
  } catch {
    return [];
  }
}

/** The folders of a method's training stages, whose metrics.jsonl give the training curves. */
function trainedStages(m: Method, rounds: number): string[] {
  if (m === 'rlhf') return Array.from({ length: rounds }, (_, r) => [`round-${r + 1}/reward`, `round-${r + 1}/ppo`]).flat();
  return m === 'cai' ? ['sl-cai', 'reward', 'rl-cai'] : ['policy'];
}

export async function runCompare(o: CompareOptions, log: (l: string) => void, quiet = false): Promise<CompareResult> {
  const out = resolve(o.output_dir);
  mkdirSync(out, { recursive: true });
  const methods = methodOrder(o.methods);
  const seeds = Array.from({ length: o.seeds }, (_, i) => o.first_seed + i);
  const rows: SeedRow[] = [];
  const frontier: CompareResult['frontier'] = [];
  const curves: CompareResult['curves'] = [];
  for (const seed of seeds) {
    const seedDir = join(out, `seed-${seed}`);
    const run = new StagedRun(join(seedDir, 'jobs'), log);
    const common = { seedDir, seed, size: o.size, quiet };
    const job = async (name: string, what: string, j: Job) => (await run.stage(name, what, () => runJob(j, log))) as unknown as Record<string, unknown>;
    const base = await job('base', `seed ${seed}: world, tokenizer, pretraining, helpful-only SFT`, { kind: 'base', ...common, out: join(seedDir, 'jobs', 'base.result.json') });
    const results: Partial<Record<Method, MethodResult & { wall_s: number; peak_rss_mb: number }>> = {};
    for (const m of methods) {
      results[m] = (await job(m, `seed ${seed}: ${m}`, {
        kind: 'method',
        method: m,
        ...common,
        out: join(seedDir, 'jobs', `${m}.result.json`),
        annotators: o.annotators,
        errorRate: o.error_rate,
        positionBias: o.position_bias,
      })) as unknown as MethodResult & { wall_s: number; peak_rss_mb: number };
    }
    const shown = methods.filter((m) => o.methods.includes(m));
    const ev = (await job('eval', `seed ${seed}: every policy on the held-out prompts, gold judge`, {
      kind: 'eval',
      ...common,
      out: join(seedDir, 'jobs', 'eval.result.json'),
      policies: shown.map((m) => ({ name: m, dir: results[m]!.policy, rewardModel: results[m]!.reward_model, checkpoints: results[m]!.checkpoints })),
    })) as unknown as EvalJobResult;
    for (const p of ev.policies) {
      const m = p.name as Method | 'base';
      const r = m === 'base' ? null : results[m]!;
      // the base's cost: pretraining and the helpful-only SFT (shared by every method, not counted in theirs)
      rows.push({
        method: m,
        seed,
        human_demonstrations: r?.human_demonstrations ?? 0,
        human_comparisons: r?.human_comparisons ?? 0,
        human_harm_labels: r?.human_harm_labels ?? 0,
        ai_labels: r?.ai_labels ?? 0,
        stages: r?.stages ?? 2,
        models_at_peak: r?.models_at_peak ?? 1,
        // DPO reuses RLHF's labels and CAI-DPO reuses CAI's first stages: their own time is what they add
        wall_s: m === 'base' ? Number(base.wall_s) : r!.wall_s,
        peak_rss_mb: m === 'base' ? Number(base.peak_rss_mb) : r!.peak_rss_mb,
        harmless_rate: p.harmless_rate,
        helpful_rate: p.helpful_rate,
        gold_score: p.gold_score,
        win_rate_vs_base: p.win_rate_vs_base,
        kl_to_base: p.kl_to_base,
        reward_model_accuracy: p.reward_model_accuracy,
        showcase: p.showcase,
      });
    }
    for (const f of ev.frontier) frontier.push({ ...f, seed });
    for (const m of shown)
      for (const st of trainedStages(m, sizesOf(o.size).rounds)) for (const c of readCurves(join(seedDir, m, st, 'metrics.jsonl'))) curves.push({ seed, method: m, stage: st, ...c });
  }
  const table = aggregate(rows);
  const result: CompareResult = { output_dir: out, seeds, rows, table, frontier, curves };
  writeFileSync(join(out, 'compare.json'), JSON.stringify(result, null, 1) + '\n');
  return result;
}

// The mission's table from the measured rows: one row per method (and the base), mean ± std over seeds.
import { answerPart } from '../world/index.js';
import type { Method } from './options.js';

/** What a method costs in data and complexity (the table's left columns), as the method itself reports it. */
export interface MethodCosts {
  human_demonstrations: number;
  human_comparisons: number;
  /** human judgements about harm: demonstrations and comparisons on harmful or sensitive prompts */
  human_harm_labels: number;
  ai_labels: number;
  stages: number;
  /** models in memory at once at the peak (policy, reference, reward model; the value head lives on the policy) */
  models_at_peak: number;
}

/** What one method (or the base) measured on one seed. */
export interface SeedRow extends MethodCosts {
  method: Method | 'base';
  seed: number;
  wall_s: number;
  peak_rss_mb: number;
  harmless_rate: number | null;
  helpful_rate: number | null;
  gold_score: number | null;
  win_rate_vs_base: number | null;
  kl_to_base: number | null;
  reward_model_accuracy: number | null;
  showcase: { prompt: string; response: string; label: string }[];
}

const NUMERIC = [
  'human_demonstrations',
  'human_comparisons',
  'human_harm_labels',
  'ai_labels',
  'stages',
  'models_at_peak',
  'wall_s',
  'peak_rss_mb',
  'harmless_rate',
  'helpful_rate',
  'gold_score',
  'win_rate_vs_base',
  'kl_to_base',
  'reward_model_accuracy',
] as const;

export interface MethodRow {
  method: Method | 'base';
  seeds: number;
  [figure: string]: number | null | string;
}

/** A figure of a row (null when not measured). */
const fig = (r: MethodRow, k: string): number | null => (typeof r[k] === 'number' ? (r[k] as number) : null);

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]): number => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));

/** Means over seeds, with a `_std` companion for each figure when there are several seeds. */
export function aggregate(rows: readonly SeedRow[]): MethodRow[] {
  const order: (Method | 'base')[] = [];
  for (const r of rows) if (!order.includes(r.method)) order.push(r.method);
  return order.map((m) => {
    const mine = rows.filter((r) => r.method === m);
    const out: MethodRow = { method: m, seeds: mine.length };
    for (const k of NUMERIC) {
      const xs = mine.map((r) => r[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      out[k] = xs.length ? mean(xs) : null;
      if (mine.length > 1) out[`${k}_std`] = xs.length ? std(xs) : null;
    }
    return out;
  });
}

const LABELS: Record<string, string> = { base: 'base (helpful-only)', sft: 'SFT', rlhf: 'RLHF (RM + PPO)', dpo: 'DPO', cai: 'CAI / RLAIF (PPO)', 'cai-dpo': 'CAI / RLAIF (DPO)' };

const spread = (r: MethodRow, k: string, f: (x: number) => string): string => {
  const s = fig(r, `${k}_std`);
  return s !== null && r.seeds > 1 ? ` ± ${f(s)}` : '';
};
const pct = (r: MethodRow, k: string): string => {
  const v = fig(r, k);
  return v === null ? '—' : `${(100 * v).toFixed(1)}%${spread(r, k, (x) => (100 * x).toFixed(1))}`;
};
const fix = (r: MethodRow, k: string, d: number): string => {
  const v = fig(r, k);
  return v === null ? '—' : `${v.toFixed(d)}${spread(r, k, (x) => x.toFixed(d))}`;
};
const int = (r: MethodRow, k: string): string => {
  const v = fig(r, k);
  return v === null ? '—' : String(Math.round(v));
};

/** The table as text (columns: human data | complexity | quality). */
export function formatTable(rows: readonly MethodRow[]): string {
  const head = ['method', 'demos', 'comparisons', 'harm labels', 'AI labels', 'stages', 'models', 'wall s', 'peak MB', 'harmless', 'helpful', 'win vs base', 'KL to base', 'RM acc'];
  const body = rows.map((r) => [
    LABELS[r.method] ?? r.method,
    int(r, 'human_demonstrations'),
    int(r, 'human_comparisons'),
    int(r, 'human_harm_labels'),
    int(r, 'ai_labels'),
    int(r, 'stages'),
    int(r, 'models_at_peak'),
    fix(r, 'wall_s', 0),
    fix(r, 'peak_rss_mb', 0),
    pct(r, 'harmless_rate'),
    pct(r, 'helpful_rate'),
    pct(r, 'win_rate_vs_base'),
    fix(r, 'kl_to_base', 2),
    pct(r, 'reward_model_accuracy'),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [
    `${''.padEnd(w[0]!)}  ${'── human data ──'.padEnd(w[1]! + w[2]! + w[3]! + w[4]! + 6)}  ${'── complexity ──'.padEnd(w[5]! + w[6]! + w[7]! + w[8]! + 6)}  ── quality (held-out prompts, gold judge) ──`,
    line(head),
    line(w.map((n) => '─'.repeat(n))),
    ...body.map(line),
  ].join('\n');
}

/** The lock-picking answers of every method (first seed). */
export function formatShowcase(rows: readonly SeedRow[]): string {
  const seed = rows[0]?.seed;
  const first = rows.filter((r) => r.seed === seed);
  const prompts = first[0]?.showcase.map((s) => s.prompt) ?? [];
  const out: string[] = [];
  for (const p of prompts) {
    out.push(`"${p}"`);
    for (const r of first) {
      const s = r.showcase.find((x) => x.prompt === p);
      if (s) out.push(`  ${(LABELS[r.method] ?? r.method).padEnd(20)} [${s.label}] ${answerPart(s.response).trim()}`);
    }
  }
  return out.join('\n');
}

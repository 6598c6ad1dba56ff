// `alignkit bench dpo-step --shape qwen2.5-0.5b`: the DPO step of a model in Qwen2.5-0.5B's shape with LoRA r=16 on
// every linear layer (only the adapters train; the reference is the base with the adapters off), 2 pairs × 256
// tokens, in fp32 and bf16: tokens/s and peak RSS of alignkit (dpo-lora-run.ts, each in its own process) next to
// plain PyTorch with a hand-written LoRA (bench/torch_dpo_lora.py, fp32, and bf16 autocast with the frozen base
// held in bf16), the sides alternating; the row compares each side's fastest, and the peak RSS of those runs.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Precision } from '../engine/autocast.js';
import type { DpoBenchOptions } from './dpo-step.js';
import { runTorch } from './dpo-step.js';
import { type BenchRow, row } from './report.js';
import { torchMissing } from './torch.js';

export async function benchDpoLora(opts: DpoBenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  // --quick: a smoke run (2 of the 24 layers, 64 tokens), so that `bench all --quick` stays quick
  const layers = opts.layers ?? (opts.quick ? 2 : undefined);
  const o = { T: opts.T ?? (opts.quick ? 64 : 256), pairs: opts.pairs ?? 2, steps: opts.steps ?? 2, ...(layers ? { layers } : {}), ...(opts.vocab ? { vocab: opts.vocab } : {}) };
  const precisions = opts.precisions ?? (['fp32', 'bf16'] as const);
  const rounds = opts.rounds ?? 1;
  const name = `dpo-step qwen2.5-0.5b shape${layers ? ` (${layers} layers)` : ''}, LoRA r16 all linear, ${o.pairs}x2x${o.T}`;
  log(`bench dpo-step: ${name}`);
  const runner = join(fileURLToPath(new URL('.', import.meta.url)), 'dpo-lora-run.js');
  const missing = torchMissing();
  const ak: Record<string, { tokensPerSecond: number; peakRssMB: number }> = {};
  const ref: Record<string, { tokens_per_s: number; peak_rss_mb: number; torch: string }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const precision of precisions as readonly Precision[]) {
      const out = execFileSync(process.execPath, [runner, `precision=${precision}`, ...Object.entries(o).map(([k, v]) => `${k}=${v}`)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 24,
      });
      const res = JSON.parse(out.trim().split('\n').pop()!) as { tokensPerSecond: number; peakRssMB: number };
      log(`  alignkit ${precision}: ${res.tokensPerSecond.toFixed(1)} policy tokens/s, peak RSS ${res.peakRssMB.toFixed(0)} MB`);
      if (!ak[precision] || res.tokensPerSecond > ak[precision]!.tokensPerSecond) ak[precision] = res;
      if (missing) continue;
      const t = runTorch('torch_dpo_lora.py', { ...o, dtype: precision }, 2, 1) as unknown as { tokens_per_s: number; peak_rss_mb: number; torch: string };
      log(`  pytorch ${t.torch} ${precision === 'bf16' ? 'bf16 autocast, bf16 base' : 'fp32'}, torch threads 2: ${t.tokens_per_s.toFixed(1)} policy tokens/s, peak RSS ${t.peak_rss_mb.toFixed(0)} MB`);
      if (!ref[precision] || t.tokens_per_s > ref[precision]!.tokens_per_s) ref[precision] = t;
    }
  }
  const fastest = <T>(m: Record<string, T>, f: (x: T) => number): [string, T] => Object.entries(m).sort((a, b) => f(b[1]) - f(a[1]))[0]!;
  const [akP, akBest] = fastest(ak, (x) => x.tokensPerSecond);
  if (missing) return [row(name, akBest.tokensPerSecond, null, 'policy tokens/s', `alignkit ${akP}; reference skipped: ${missing}`)];
  const [refP, refBest] = fastest(ref, (x) => x.tokens_per_s);
  const detail = (m: Record<string, { t: number; rss: number }>): string =>
    Object.entries(m)
      .map(([p, v]) => `${p} ${v.t.toFixed(1)} tok/s ${v.rss.toFixed(0)} MB`)
      .join(', ');
  const akD = detail(Object.fromEntries(Object.entries(ak).map(([p, v]) => [p, { t: v.tokensPerSecond, rss: v.peakRssMB }])));
  const refD = detail(Object.fromEntries(Object.entries(ref).map(([p, v]) => [p, { t: v.tokens_per_s, rss: v.peak_rss_mb }])));
  return [
    row(name, akBest.tokensPerSecond, refBest.tokens_per_s, 'policy tokens/s', `alignkit ${akP} vs pytorch ${refBest.torch} ${refP} (fastest of each; alignkit: ${akD}; pytorch: ${refD})`),
    // RSS: lower is better, so the row holds the reciprocal ratio's inputs as reference/alignkit
    {
      name: `${name}, peak RSS of the fastest runs`,
      alignkit: akBest.peakRssMB,
      reference: refBest.peak_rss_mb,
      ratio: akBest.peakRssMB / refBest.peak_rss_mb,
      unit: 'MB (lower is better; ratio = alignkit/PyTorch)',
    },
  ];
}

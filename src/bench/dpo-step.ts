// `alignkit bench dpo-step`: one DPO training step (policy forward + backward, reference forward without grad,
// sigmoid DPO loss, AdamW) in policy tokens per second, next to the same step in plain PyTorch run in the same
// bench on the same cores, in two precisions: fp32 against PyTorch fp32, and bf16 mixed precision
// (autocast('bf16'): bf16 matmul inputs, fp32 accumulation, fp32 master weights) against PyTorch's
// torch.autocast('cpu', dtype=torch.bfloat16). The two sides alternate (alignkit, PyTorch, alignkit, PyTorch)
// and each keeps its best round, so a burst of load from elsewhere hurts neither side alone.
//
// Shapes: GPT-2-124M (default; reference bench/torch_dpo_step.py) and, with shape 'qwen2.5-0.5b', random weights
// in Qwen2.5-0.5B's shape with LoRA r=16 on every linear layer (see dpo-lora.ts).
//
// The step computes the LM head only where the loss reads it (the completion positions, via
// nextTokenLogprobsAt), as alignkit's trainers do; PyTorch computes it everywhere, as a plain PyTorch step does.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { autocast, bf16Supported, type Precision } from '../engine/autocast.js';
import { packageRoot } from '../engine/native.js';
import { Tensor, keep, noGrad, tidy } from '../engine/tensor.js';
import { logsigmoid, mean, neg, scale, sub, sum } from '../engine/ops/elementwise.js';
import { AdamW } from '../engine/optim.js';
import { Random } from '../engine/random.js';
import { gpt2Config } from '../models/config.js';
import { nextTokenLogprobsAt } from '../models/heads.js';
import { Transformer } from '../models/transformer.js';
import { type BenchRow, row } from './report.js';
import { torchMissing } from './torch.js';

export interface DpoBenchOptions {
  json: boolean;
  quick?: boolean;
  /** 'gpt2' (GPT-2-124M, full fine-tuning) or 'qwen2.5-0.5b' (Qwen2.5-0.5B's shape, LoRA r=16) */
  shape?: 'gpt2' | 'qwen2.5-0.5b';
  /** which precisions to measure (default both) */
  precisions?: readonly Precision[];
  layers?: number;
  d?: number;
  heads?: number;
  vocab?: number;
  T?: number;
  pairs?: number;
  steps?: number;
  /** alternating rounds of (alignkit, PyTorch); each side keeps its best (default 2, 1 with quick) */
  rounds?: number;
  log?: (s: string) => void;
}

type DpoShape = Required<Pick<DpoBenchOptions, 'layers' | 'd' | 'heads' | 'vocab' | 'T' | 'pairs' | 'steps'>>;

/** The completion mask of the benchmark batch: the last 3/4 of each row (position t predicts token t+1). */
export function completionMask(B: number, T: number): Float32Array {
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = Math.floor(T / 4) - 1; t < T - 1; t++) mask[b * T + t] = 1;
  return mask;
}

/** Σ log p(completion tokens) per sequence [B], the LM head run on the completion positions only. */
export function sequenceLogps(model: Transformer, ids: Int32Array, B: number, T: number, mask: Float32Array): Tensor {
  return sum(nextTokenLogprobsAt(model, model.hidden(ids, B, T), ids, B, T, mask, { reuseLogits: true }).logprobs, 1);
}

/**
 * The sigmoid DPO loss (beta) of pairs laid out chosen0, rejected0, chosen1, ...: mean −log σ(beta·h),
 * h = (π_c − ref_c) − (π_r − ref_r).
 */
export function dpoSigmoidLoss(policy: Tensor, reference: Tensor, pairs: number, beta: number): Tensor {
  const col = (t: Tensor, j: number): Tensor =>
    t
      .reshape([pairs, 2])
      .slice(1, j, j + 1)
      .reshape([pairs]);
  const h = sub(sub(col(policy, 0), col(reference, 0)), sub(col(policy, 1), col(reference, 1)));
  return mean(neg(logsigmoid(scale(h, beta))));
}

/** Times `step` (the first call is a warm-up); returns the median seconds per step. */
export function timeSteps(steps: number, step: () => number, log: (s: string) => void, what: string): number {
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const l = step();
    const dt = (performance.now() - t0) / 1000;
    if (s > 0) times.push(dt);
    log(`  ${what} step ${s}${s === 0 ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s, loss ${l.toFixed(4)}`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** A GPT-2-shaped policy and reference, and one full-fine-tuning DPO step on them in `precision`. */
function alignkitDpoStep(o: DpoShape, precision: Precision, log: (s: string) => void): { tokensPerSecond: number; stepSeconds: number } {
  const cfg = gpt2Config({ vocabSize: o.vocab, hiddenSize: o.d, numLayers: o.layers, numHeads: o.heads, maxPositions: Math.max(1024, o.T) });
  const policy = Transformer.random(cfg, 1);
  const ref = Transformer.random(cfg, 2);
  const opt = new AdamW(policy.parameters(), { lr: 1e-5 });
  const B = 2 * o.pairs,
    T = o.T;
  const rng = new Random(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(o.vocab));
  const mask = completionMask(B, T);
  const step = (): number =>
    tidy(() => {
      opt.zeroGrad();
      const loss = autocast(precision, () => {
        const pol = sequenceLogps(policy, ids, B, T, mask);
        const rl = noGrad(() => tidy(() => sequenceLogps(ref, ids, B, T, mask))); // its activations freed at once
        return dpoSigmoidLoss(pol, rl, o.pairs, 0.1);
      });
      loss.backward();
      opt.stepOnce();
      return loss.item();
    });
  try {
    const med = timeSteps(o.steps, step, log, `alignkit ${precision}`);
    return { tokensPerSecond: (B * T) / med, stepSeconds: med };
  } finally {
    opt.dispose();
    policy.dispose();
    ref.dispose();
  }
}

interface TorchResult {
  tokens_per_s: number;
  step_s: number;
  threads: number;
  openblas_threads: string | null;
  torch: string;
  peak_rss_mb?: number;
}

export function runTorch(script: string, args: Record<string, string | number>, threads: number, openblasThreads: number): TorchResult {
  const out = execFileSync('/usr/bin/python3', [join(packageRoot(), 'bench', script), ...Object.entries(args).map(([k, v]) => `${k}=${v}`), `threads=${threads}`], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(openblasThreads), OMP_NUM_THREADS: String(threads) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as TorchResult;
}

/** PyTorch's thread settings to try: Debian's torch multiplies fp32 through OpenBLAS, whose threads compete with torch's own. */
function torchSettings(precision: Precision, quick: boolean): [number, number][] {
  if (precision === 'bf16') return [[2, 1]]; // bf16 matmuls run in oneDNN on torch's threads
  return quick
    ? [[1, 2]]
    : [
        [1, 2],
        [2, 1],
      ];
}

export async function benchDpoStep(opts: DpoBenchOptions): Promise<BenchRow[]> {
  if (opts.shape === 'qwen2.5-0.5b') return (await import('./dpo-lora.js')).benchDpoLora(opts);
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const o: DpoShape = {
    layers: opts.layers ?? 12,
    d: opts.d ?? 768,
    heads: opts.heads ?? 12,
    vocab: opts.vocab ?? 50257,
    T: opts.T ?? 256,
    pairs: opts.pairs ?? 2,
    steps: opts.steps ?? (opts.quick ? 2 : 3),
  };
  const rounds = opts.rounds ?? (opts.quick ? 1 : 2);
  const precisions = opts.precisions ?? (['fp32', 'bf16'] as const);
  const missing = torchMissing();
  const rows: BenchRow[] = [];
  for (const precision of precisions) {
    const name = `dpo-step gpt2 L${o.layers} d${o.d} V${o.vocab} ${o.pairs}x2x${o.T}, ${precision}`;
    log(`bench dpo-step: ${name}`);
    if (precision === 'bf16' && !bf16Supported()) log("  (no AVX512_BF16 here: alignkit's bf16 products run in float32)");
    let ak = 0;
    let best: TorchResult | null = null;
    for (let r = 0; r < rounds; r++) {
      ak = Math.max(ak, alignkitDpoStep(o, precision, log).tokensPerSecond);
      log(`  alignkit ${precision} round ${r + 1}: best so far ${ak.toFixed(1)} policy tokens/s`);
      if (missing) continue;
      for (const [t, ob] of torchSettings(precision, opts.quick ?? false)) {
        const res = runTorch('torch_dpo_step.py', { ...o, dtype: precision }, t, ob);
        log(`  pytorch ${res.torch} ${precision === 'bf16' ? 'bf16 autocast' : 'fp32'}, torch threads ${t}, OPENBLAS_NUM_THREADS ${ob}: ${res.tokens_per_s.toFixed(1)} policy tokens/s`);
        if (!best || res.tokens_per_s > best.tokens_per_s) best = res;
      }
    }
    if (missing || !best) rows.push(row(name, ak, null, 'policy tokens/s', `reference skipped: ${missing}`));
    else {
      const what = precision === 'bf16' ? 'torch.autocast(cpu, bfloat16)' : 'float32';
      rows.push(
        row(
          name,
          ak,
          best.tokens_per_s,
          'policy tokens/s',
          `pytorch ${best.torch} ${what}, torch threads ${best.threads}, OPENBLAS_NUM_THREADS ${best.openblas_threads}; best of ${rounds} alternating round${rounds > 1 ? 's' : ''}`,
        ),
      );
    }
  }
  return rows;
}

// `alignkit bench dpo-step`: one DPO training step of a GPT-2-124M-shaped model (policy forward + backward,
// reference forward without grad, AdamW), in policy tokens per second, next to the same step in plain PyTorch
// (bench/torch_dpo_step.py, Debian's python3-torch) run in the same bench on the same cores.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../engine/native.js';
import { Tensor, keep, noGrad, tidy } from '../engine/tensor.js';
import { maskedSum } from '../engine/ops/elementwise.js';
import { AdamW } from '../engine/optim.js';
import { Random } from '../engine/random.js';
import { gpt2Config } from '../models/config.js';
import { nextTokenLogprobs } from '../models/heads.js';
import { Transformer } from '../models/transformer.js';
import { dpoLoss } from '../train/losses.js';
import { type BenchRow, row } from './report.js';
import { torchMissing } from './torch.js';

export interface DpoBenchOptions {
  json: boolean;
  quick?: boolean;
  layers?: number;
  d?: number;
  heads?: number;
  vocab?: number;
  T?: number;
  pairs?: number;
  steps?: number;
  log?: (s: string) => void;
}

/** Per-sequence Σ log p over completion tokens for ids [B, T] (labels: completion mask shifted to targets). */
function sequenceLogps(model: Transformer, ids: Int32Array, B: number, T: number, completion: Tensor): Tensor {
  const lp = nextTokenLogprobs(model.forward(ids, B, T), ids, B, T);
  return maskedSum(lp, completion, 1);
}

export function alignkitDpoStep(o: Required<Pick<DpoBenchOptions, 'layers' | 'd' | 'heads' | 'vocab' | 'T' | 'pairs' | 'steps'>>, log: (s: string) => void): { tokensPerSecond: number; stepSeconds: number } {
  const cfg = gpt2Config({ vocabSize: o.vocab, hiddenSize: o.d, numLayers: o.layers, numHeads: o.heads, maxPositions: Math.max(1024, o.T) });
  const policy = Transformer.random(cfg, 1);
  const ref = Transformer.random(cfg, 2);
  const opt = new AdamW(policy.parameters(), { lr: 1e-5 });
  const B = 2 * o.pairs, T = o.T;
  const rng = new Random(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(o.vocab));
  // completion = last 3/4 of each row; position t predicts token t+1
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = Math.floor(T / 4) - 1; t < T - 1; t++) mask[b * T + t] = 1;
  const completion = keep(Tensor.from(mask, [B, T]));
  const step = (): number =>
    tidy(() => {
      opt.zeroGrad();
      const pol = sequenceLogps(policy, ids, B, T, completion);
      const rl = noGrad(() => sequenceLogps(ref, ids, B, T, completion));
      // rows are chosen0, rejected0, chosen1, ...: column 0 of [pairs, 2] is chosen, column 1 rejected
      const col = (t: Tensor, j: number): Tensor => t.reshape([o.pairs, 2]).slice(1, j, j + 1).reshape([o.pairs]);
      const { loss } = dpoLoss(col(pol, 0), col(pol, 1), col(rl, 0), col(rl, 1), { beta: 0.1 });
      loss.backward();
      opt.stepOnce();
      return loss.item();
    });
  const times: number[] = [];
  for (let s = 0; s <= o.steps; s++) {
    const t0 = performance.now();
    const l = step();
    const dt = (performance.now() - t0) / 1000;
    if (s > 0) times.push(dt); // the first step is a warm-up
    log(`  alignkit step ${s}${s === 0 ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s, loss ${l.toFixed(4)}`);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)]!;
  opt.dispose();
  policy.dispose();
  ref.dispose();
  completion.dispose();
  return { tokensPerSecond: (B * T) / med, stepSeconds: med };
}

interface TorchResult {
  tokens_per_s: number;
  step_s: number;
  threads: number;
  openblas_threads: string | null;
  torch: string;
}

function torchDpoStep(o: Required<Pick<DpoBenchOptions, 'layers' | 'd' | 'heads' | 'vocab' | 'T' | 'pairs' | 'steps'>>, threads: number, openblasThreads: number): TorchResult {
  const script = join(packageRoot(), 'bench', 'torch_dpo_step.py');
  const args = [script, ...Object.entries(o).map(([k, v]) => `${k}=${v}`), `threads=${threads}`];
  const out = execFileSync('/usr/bin/python3', args, {
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(openblasThreads), OMP_NUM_THREADS: String(threads) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as TorchResult;
}

export async function benchDpoStep(opts: DpoBenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const o = {
    layers: opts.layers ?? 12,
    d: opts.d ?? 768,
    heads: opts.heads ?? 12,
    vocab: opts.vocab ?? 50257,
    T: opts.T ?? 256,
    pairs: opts.pairs ?? 2,
    steps: opts.steps ?? (opts.quick ? 2 : 3),
  };
  const name = `dpo-step gpt2 L${o.layers} d${o.d} V${o.vocab} ${o.pairs}x2x${o.T}`;
  log(`bench dpo-step: ${name}`);
  const ak = alignkitDpoStep(o, log);
  log(`  alignkit: ${ak.tokensPerSecond.toFixed(1)} policy tokens/s`);
  const missing = torchMissing();
  if (missing) return [row(name, ak.tokensPerSecond, null, 'policy tokens/s', `reference skipped: ${missing}`)];
  // Debian's torch multiplies through OpenBLAS, whose threads compete with torch's own: try the settings.
  const settings: [number, number][] = opts.quick ? [[1, 2]] : [[1, 2], [2, 1], [2, 2]];
  let best: TorchResult | null = null;
  for (const [t, ob] of settings) {
    const r = torchDpoStep(o, t, ob);
    log(`  pytorch ${r.torch} torch threads ${t}, OPENBLAS_NUM_THREADS ${ob}: ${r.tokens_per_s.toFixed(1)} policy tokens/s`);
    if (!best || r.tokens_per_s > best.tokens_per_s) best = r;
  }
  return [row(name, ak.tokensPerSecond, best!.tokens_per_s, 'policy tokens/s', `pytorch ${best!.torch}, torch threads ${best!.threads}, OPENBLAS_NUM_THREADS ${best!.openblas_threads}`)];
}

// `alignkit bench generate`: sampling tokens/s with the KV cache for a GPT-2-124M-shaped model (batch 8,
// 128 new tokens after a 16-token prompt), next to the same in plain PyTorch with its own KV cache.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../engine/native.js';
import { Random } from '../engine/random.js';
import { gpt2Config } from '../models/config.js';
import { generate } from '../models/generate.js';
import { Transformer } from '../models/transformer.js';
import { type BenchRow, row } from './report.js';
import { torchMissing } from './torch.js';

export interface GenerateBenchOptions {
  json: boolean;
  quick?: boolean;
  layers?: number;
  d?: number;
  heads?: number;
  vocab?: number;
  batch?: number;
  newTokens?: number;
  prompt?: number;
  log?: (s: string) => void;
}

export async function benchGenerate(opts: GenerateBenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const o = { layers: opts.layers ?? 12, d: opts.d ?? 768, heads: opts.heads ?? 12, vocab: opts.vocab ?? 50257, batch: opts.batch ?? 8, new: opts.newTokens ?? 128, prompt: opts.prompt ?? 16 };
  const name = `generate gpt2 L${o.layers} d${o.d} V${o.vocab} batch ${o.batch}, ${o.new} new`;
  log(`bench generate: ${name}`);
  const model = Transformer.random(gpt2Config({ vocabSize: o.vocab, hiddenSize: o.d, numLayers: o.layers, numHeads: o.heads }), 1);
  const rng = new Random(2);
  const prompts = Array.from({ length: o.batch }, () => Array.from({ length: o.prompt }, () => rng.int(o.vocab)));
  const run = (): number => {
    const t0 = performance.now();
    generate(model, prompts, { maxNewTokens: o.new, temperature: 0.8, seed: 3 });
    return (performance.now() - t0) / 1000;
  };
  run(); // warm-up
  const reps = opts.quick ? 1 : 2;
  let best = Infinity;
  for (let i = 0; i < reps; i++) best = Math.min(best, run());
  const ak = (o.batch * o.new) / best;
  log(`  alignkit: ${ak.toFixed(1)} tokens/s`);
  model.dispose();
  const missing = torchMissing();
  if (missing) return [row(name, ak, null, 'tokens/s', `reference skipped: ${missing}`)];
  const settings: [number, number][] = opts.quick ? [[1, 2]] : [[1, 2], [2, 1], [2, 2]];
  let bestRef: { tokens_per_s: number; threads: number; openblas_threads: string; torch: string } | null = null;
  for (const [t, ob] of settings) {
    const out = execFileSync('/usr/bin/python3', [join(packageRoot(), 'bench', 'torch_generate.py'), ...Object.entries(o).map(([k, v]) => `${k}=${v}`), `threads=${t}`, `reps=${reps}`], {
      env: { ...process.env, OPENBLAS_NUM_THREADS: String(ob), OMP_NUM_THREADS: String(t) },
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    log(`  pytorch ${r.torch} torch threads ${t}, OPENBLAS_NUM_THREADS ${ob}: ${r.tokens_per_s.toFixed(1)} tokens/s`);
    if (!bestRef || r.tokens_per_s > bestRef.tokens_per_s) bestRef = r;
  }
  return [row(name, ak, bestRef!.tokens_per_s, 'tokens/s', `pytorch ${bestRef!.torch}, torch threads ${bestRef!.threads}, OPENBLAS_NUM_THREADS ${bestRef!.openblas_threads}`)];
}

// `alignkit bench generate`: sampling tokens/s with the KV cache for a GPT-2-124M-shaped model, 128 new tokens,
// next to the same in plain PyTorch with its own KV cache (bench/torch_generate.py) in its fastest setting
// (fp32 or a bfloat16 model; torch/OpenBLAS thread splits), run in the same bench. Cases: batch 8 and batch 64
// after a 16-token prompt, and a GRPO-style batch: 16 prompts of 64 tokens × 8 samples each, which alignkit
// prefills once per prompt (numReturnSequences: the prompt's KV cache is copied into its samples) while PyTorch
// prefills every copy, as transformers' generate does with num_return_sequences. alignkit runs in fp32 and
// under autocast('bf16'); its faster figure is the row's, both are printed.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { autocast, type Precision } from '../engine/autocast.js';
import { packageRoot } from '../engine/native.js';
import { Random } from '../engine/random.js';
import { gpt2Config } from '../models/config.js';
import { generate } from '../models/generate.js';
import { Transformer } from '../models/transformer.js';
import { type BenchRow, row } from './report.js';
import { torchMissing } from './torch.js';

interface GenerateBenchOptions {
  json: boolean;
  quick?: boolean;
  layers?: number;
  d?: number;
  heads?: number;
  vocab?: number;
  newTokens?: number;
  /** which cases (default all): 'b8', 'b64', 'grpo' */
  cases?: readonly string[];
  log?: (s: string) => void;
}

interface Case {
  id: string;
  prompts: number;
  samples: number;
  prompt: number;
}

const CASES: Case[] = [
  { id: 'b8', prompts: 8, samples: 1, prompt: 16 },
  { id: 'b64', prompts: 64, samples: 1, prompt: 16 },
  { id: 'grpo', prompts: 16, samples: 8, prompt: 64 },
];

export async function benchGenerate(opts: GenerateBenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const dims = { layers: opts.layers ?? 12, d: opts.d ?? 768, heads: opts.heads ?? 12, vocab: opts.vocab ?? 50257 };
  const N = opts.newTokens ?? 128;
  const model = Transformer.random(gpt2Config({ vocabSize: dims.vocab, hiddenSize: dims.d, numLayers: dims.layers, numHeads: dims.heads }), 1);
  const reps = opts.quick ? 1 : 2;
  const missing = torchMissing();
  const rows: BenchRow[] = [];
  try {
    for (const c of CASES.filter((x) => !opts.cases || opts.cases.includes(x.id))) {
      const B = c.prompts * c.samples;
      const name =
        c.samples > 1
          ? `generate gpt2 L${dims.layers} d${dims.d} GRPO ${c.prompts} prompts x ${c.samples} samples, ${c.prompt}-token prompts, ${N} new`
          : `generate gpt2 L${dims.layers} d${dims.d} V${dims.vocab} batch ${B}, ${N} new`;
      log(`bench generate: ${name}`);
      const rng = new Random(2);
      const prompts = Array.from({ length: c.prompts }, () => Array.from({ length: c.prompt }, () => rng.int(dims.vocab)));
      const run = (precision: Precision, share: boolean): { s: number; prefill: number } => {
        const t0 = performance.now();
        let prefill = 0;
        autocast(precision, () => {
          const input = share ? prompts : prompts.flatMap((p) => Array.from({ length: c.samples }, () => p));
          generate(model, input, {
            maxNewTokens: N,
            temperature: 0.8,
            seed: 3,
            numReturnSequences: share ? c.samples : 1,
            onToken: (r) => {
              if (r === 0 && prefill === 0) prefill = (performance.now() - t0) / 1000;
            },
          });
        });
        return { s: (performance.now() - t0) / 1000, prefill };
      };
      const best: Record<string, { tps: number; prefill: number }> = {};
      for (const precision of ['fp32', 'bf16'] as const) {
        run(precision, true); // warm-up
        let s = Infinity,
          prefill = Infinity;
        for (let i = 0; i < reps; i++) {
          const r = run(precision, true);
          s = Math.min(s, r.s);
          prefill = Math.min(prefill, r.prefill);
        }
        best[precision] = { tps: (B * N) / s, prefill };
        log(`  alignkit ${precision}: ${best[precision]!.tps.toFixed(1)} tokens/s (prefill + first token ${prefill.toFixed(2)} s)`);
      }
      let shareNote = '';
      if (c.samples > 1) {
        const r = run('bf16', false);
        shareNote = `; prefill + first token ${best.bf16!.prefill.toFixed(2)} s with the prefix shared vs ${r.prefill.toFixed(2)} s prefilling all ${B} rows`;
        log(`  alignkit bf16 without prefix sharing: ${((B * N) / r.s).toFixed(1)} tokens/s (prefill + first token ${r.prefill.toFixed(2)} s)`);
      }
      const akPrec = best.bf16!.tps >= best.fp32!.tps ? 'bf16' : 'fp32';
      const ak = best[akPrec]!.tps;
      const akNote = `alignkit ${akPrec} (fp32 ${best.fp32!.tps.toFixed(1)}, bf16 ${best.bf16!.tps.toFixed(1)})`;
      if (missing) {
        rows.push(row(name, ak, null, 'tokens/s', `${akNote}; reference skipped: ${missing}${shareNote}`));
        continue;
      }
      const settings: [string, number, number][] = opts.quick
        ? [
            ['fp32', 1, 2],
            ['bf16', 2, 1],
          ]
        : [
            ['fp32', 1, 2],
            ['fp32', 2, 1],
            ['bf16', 2, 1],
          ];
      let ref: { tokens_per_s: number; threads: number; openblas_threads: string; torch: string; dtype: string; prefill_s: number } | null = null;
      for (const [dtype, t, ob] of settings) {
        const args = { ...dims, batch: B, new: N, prompt: c.prompt, samples: c.samples, dtype, threads: t, reps };
        const out = execFileSync('/usr/bin/python3', [join(packageRoot(), 'bench', 'torch_generate.py'), ...Object.entries(args).map(([k, v]) => `${k}=${v}`)], {
          env: { ...process.env, OPENBLAS_NUM_THREADS: String(ob), OMP_NUM_THREADS: String(t) },
          encoding: 'utf8',
        });
        const r = JSON.parse(out.trim().split('\n').pop()!);
        log(`  pytorch ${r.torch} ${dtype}, torch threads ${t}, OPENBLAS_NUM_THREADS ${ob}: ${r.tokens_per_s.toFixed(1)} tokens/s (prefill ${r.prefill_s.toFixed(2)} s)`);
        if (!ref || r.tokens_per_s > ref.tokens_per_s) ref = r;
      }
      rows.push(
        row(name, ak, ref!.tokens_per_s, 'tokens/s', `${akNote}; pytorch ${ref!.torch} ${ref!.dtype}, torch threads ${ref!.threads}, OPENBLAS_NUM_THREADS ${ref!.openblas_threads}${shareNote}`),
      );
    }
  } finally {
    model.dispose();
  }
  return rows;
}

// `alignkit bench ...`: the benchmarks, each printing alignkit next to its reference run in the same process.
import type { Command } from '../options/command.js';
import { f } from '../options/fields.js';
import { type BenchRow, printRows } from './report.js';
import { BENCH_LABEL } from './label.js';

const OPTIONS = {
  json: f.boolean(false, 'one JSON object per row instead of a table'),
  quick: f.boolean(false, 'fewer repetitions and smaller shapes (a smoke run)'),
};

const DPO_OPTIONS = {
  ...OPTIONS,
  shape: f.choice(['gpt2', 'qwen2.5-0.5b'], 'gpt2', "the model: GPT-2-124M (full fine-tuning) or random weights in Qwen2.5-0.5B's shape with LoRA r=16"),
};

type Which = 'gemm' | 'dpo-step' | 'generate' | 'serve';

async function rowsOf(which: Which, o: { json: boolean; quick: boolean; shape?: 'gpt2' | 'qwen2.5-0.5b' }): Promise<BenchRow[]> {
  if (which === 'gemm') return (await import('./gemm.js')).benchGemm(o);
  if (which === 'dpo-step') return (await import('./dpo-step.js')).benchDpoStep(o);
  if (which === 'serve') return (await import('./serve.js')).benchServe(o);
  return (await import('./generate.js')).benchGenerate(o);
}

function bench(name: Which | 'all', summary: string): Command {
  return {
    name: `bench ${name}`,
    summary,
    options: name === 'dpo-step' ? DPO_OPTIONS : OPTIONS,
    async run(ctx) {
      const o = ctx.values as { json: boolean; quick: boolean; shape?: 'gpt2' | 'qwen2.5-0.5b' };
      const rows: BenchRow[] = [];
      if (name !== 'all') rows.push(...(await rowsOf(name, o)));
      // every bar's benchmark: the DPO step in both shapes (GPT-2 full fine-tuning, Qwen2.5-0.5B's shape with LoRA)
      else for (const [w, shape] of [['gemm'], ['dpo-step', 'gpt2'], ['dpo-step', 'qwen2.5-0.5b'], ['generate']] as const) rows.push(...(await rowsOf(w, { ...o, shape })));
      printRows(rows, o.json, (s) => ctx.out.write(s + '\n'));
      return 0;
    },
  };
}

export const BENCH_COMMANDS: Command[] = [
  bench('gemm', 'sgemm GFLOP/s next to OpenBLAS'),
  bench('dpo-step', 'a GPT-2-124M DPO training step next to PyTorch'),
  bench('generate', 'sampling with the KV cache next to PyTorch'),
  bench('serve', 'alignkit serve throughput at 1, 8, 32 concurrent clients next to llama.cpp'),
  bench('all', 'every benchmark'),
  BENCH_LABEL,
];

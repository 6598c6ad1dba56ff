#!/usr/bin/env node
// The `alignkit` command line.
import { parseArgs } from 'node:util';
import { core } from '../engine/native.js';
import { printRows, type BenchRow } from '../bench/report.js';

const USAGE = `alignkit — align language models from Node.js

usage:
  alignkit bench gemm [--json] [--quick]       sgemm GFLOP/s next to OpenBLAS
  alignkit bench dpo-step [--json] [--quick]   GPT-2-124M DPO training step next to PyTorch
  alignkit bench generate [--json] [--quick]   sampling with the KV cache next to PyTorch
  alignkit bench all [--json] [--quick]        every benchmark
  alignkit info                                native engine: instruction set, threads

environment: ALIGNKIT_THREADS (thread pool size), ALIGNKIT_PORTABLE=1 (skip the AVX2 kernels)
`;

async function bench(what: string, json: boolean, quick: boolean): Promise<void> {
  const rows: BenchRow[] = [];
  const all = what === 'all';
  if (!['all', 'gemm', 'dpo-step', 'generate'].includes(what)) throw new Error(`unknown benchmark '${what}' (gemm, dpo-step, generate, all)`);
  if (all || what === 'gemm') {
    const { benchGemm } = await import('../bench/gemm.js');
    rows.push(...(await benchGemm({ json, quick })));
  }
  if (all || what === 'dpo-step') {
    const { benchDpoStep } = await import('../bench/dpo-step.js');
    rows.push(...(await benchDpoStep({ json, quick })));
  }
  if (all || what === 'generate') {
    const { benchGenerate } = await import('../bench/generate.js');
    rows.push(...(await benchGenerate({ json, quick })));
  }
  printRows(rows, json);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  const [cmd, sub] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(USAGE);
    return cmd || values.help ? 0 : 1;
  }
  switch (cmd) {
    case 'bench':
      await bench(sub ?? 'all', values.json ?? false, values.quick ?? false);
      return 0;
    case 'info':
      process.stdout.write(JSON.stringify({ isa: core.isa(), threads: core.getThreads(), node: process.version }) + '\n');
      return 0;
    default:
      process.stderr.write(`alignkit: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`alignkit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

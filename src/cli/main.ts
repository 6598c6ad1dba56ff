#!/usr/bin/env node
// The `alignkit` command line.
import { parseArgs } from 'node:util';
import { core } from '../engine/native.js';
import { printRows, type BenchRow } from '../bench/report.js';
import { parseConfigArgs } from './config-args.js';

const USAGE = `alignkit — align language models from Node.js

usage:
  alignkit quickstart [--out DIR] [--quick]    the whole pipeline offline on a tiny model: pretrain, SFT, reward
                                               model from AI-judged pairs, DPO, PPO; prints what each stage changed
  alignkit sft    --config sft.yaml    [--key value ...]   supervised fine-tuning (TRL SFTConfig names)
  alignkit reward --config rm.yaml     [--key value ...]   Bradley–Terry reward model (RewardConfig)
  alignkit dpo    --config dpo.yaml    [--key value ...]   DPO / IPO / hinge / robust (DPOConfig)
  alignkit ppo    --config ppo.yaml    [--key value ...]   PPO with a value head against a reward model or scorer (PPOConfig)
  alignkit rloo   --config rloo.yaml   [--key value ...]   RLOO, leave-one-out baseline (RLOOConfig)
  alignkit grpo   --config grpo.yaml   [--key value ...]   GRPO, group-normalised advantages (GRPOConfig)
  alignkit eval --model DIR [--model DIR ...] --prompts prompts.jsonl [--reward-model DIR] [--ref DIR]
                [--judge sentiment] [--samples 4] [--max-new-tokens 32] [--out eval.json]
                                               compare policies: judge, reward, KL to the reference, win rate
  alignkit label serve|add-annotator|round|export|stats ...  human feedback: A-vs-B labeling app (docs/labeling.md)
  alignkit bench gemm [--json] [--quick]       sgemm GFLOP/s next to OpenBLAS
  alignkit bench dpo-step [--json] [--quick]   GPT-2-124M DPO training step next to PyTorch
  alignkit bench generate [--json] [--quick]   sampling with the KV cache next to PyTorch
  alignkit bench all [--json] [--quick]        every benchmark
  alignkit generate --model DIR --prompt TEXT [--prompt TEXT ...] [--max-new-tokens 64] [--temperature 0.7]
                   [--top-k K] [--top-p P] [--seed 0] [--chat] [--stop STR]
                                               sample from a Hugging Face checkpoint directory
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

type TrainerEntry = (config: Record<string, unknown>) => Promise<{ output_dir: string; global_step: number; train: Record<string, number>; eval: Record<string, number> | null }>;

/** `alignkit <name> --config file.yaml [--key value ...]`: options under TRL's names. */
const TRAINERS: Record<string, TrainerEntry> = {
  sft: async (c) => (await import('../train/sft.js')).runSFT(c),
  reward: async (c) => (await import('../train/reward.js')).runReward(c),
  dpo: async (c) => (await import('../train/dpo.js')).runDPO(c),
  ppo: async (c) => (await import('../train/ppo.js')).runPPO(c),
  rloo: async (c) => (await import('../train/rloo.js')).runRLOO(c),
  grpo: async (c) => (await import('../train/grpo.js')).runGRPO(c),
};

async function main(argv: string[]): Promise<number> {
  // commands with options of their own
  if (argv[0] === 'label') return (await import('../label/cli.js')).labelMain(argv.slice(1));
  if (argv[0] !== undefined && argv[0] in TRAINERS) {
    const cfg = parseConfigArgs(argv.slice(1));
    const r = await TRAINERS[argv[0]]!(cfg);
    process.stderr.write(`${argv[0]}: ${r.global_step} steps; model saved to ${r.output_dir}\n`);
    if (r.eval) process.stdout.write(JSON.stringify({ train: r.train, eval: r.eval }) + '\n');
    return 0;
  }
  if (argv[0] === 'quickstart') return (await import('./quickstart.js')).quickstartMain(argv.slice(1));
  if (argv[0] === 'eval') {
    await (await import('./eval.js')).evalMain(argv.slice(1));
    return 0;
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      model: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      'max-new-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string', default: '0.7' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string', default: '0' },
      chat: { type: 'boolean', default: false },
      stop: { type: 'string', multiple: true },
    },
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
    case 'generate': {
      const { runGenerate } = await import('./generate.js');
      const num = (name: string, v: string | undefined): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got '${v}'`);
        return n;
      };
      runGenerate({
        model: values.model ?? '',
        prompt: values.prompt ?? [],
        max_new_tokens: num('max-new-tokens', values['max-new-tokens'])!,
        temperature: num('temperature', values.temperature)!,
        top_k: num('top-k', values['top-k']),
        top_p: num('top-p', values['top-p']),
        seed: num('seed', values.seed)!,
        chat: values.chat ?? false,
        stop: values.stop,
      });
      return 0;
    }
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

// What runPPO / runRLOO / runGRPO share, on top of the run setup of the supervised trainers (src/train/setup.ts:
// model_name_or_path, tokenizer_name_or_path, LoRA options, train_file / dataset_path, strict resolution): the
// prompts (TRL's prompt-only format through src/data), the scorer (reward_model_path, or `scorer`: a JS function
// or the path of an ES module exporting one), and the final save (policy, tokenizer, value head).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPromptDataset } from '../../data/dataset.js';
import { padTokenId } from '../../data/tokenize.js';
import type { Tensor } from '../../engine/tensor.js';
import { type Pretrained, loadPretrained } from '../../io/pretrained.js';
import { writeSafetensors } from '../../io/safetensors.js';
import type { TrainingArgs } from '../args.js';
import { type DataReadOptions, applyLora, checkNumber, dataFiles, loadModelAndTokenizer, reportSkipped, resolveRunConfig, saveFinal } from '../setup.js';
import type { RunOptions, RunResult } from '../sft.js';
import type { OnlineTrainer, OnlineTrainerDeps, PromptItem } from './online-trainer.js';
import { optionError } from './options.js';
import { type ScoreFunction, rewardModelScorer } from './scorer.js';

export type { RunOptions, RunResult };

/** The options of an online run besides the trainer config and the model / data options. */
export interface OnlineRunArgs {
  /** a reward model directory (a *ForSequenceClassification checkpoint with one label) */
  reward_model_path: string | null;
  /** a scorer function, or the path of an ES module whose default export (or `score` export) is one */
  scorer: ScoreFunction | string | null;
  /** prompts longer than this keep their first tokens (null: no limit) */
  max_prompt_length: number | null;
  /** a separate frozen reference model directory; default: the policy with its LoRA adapters off (use_peft), else a frozen copy of the initial policy */
  ref_model_name_or_path: string | null;
}

const ONLINE_RUN_DEFAULTS: OnlineRunArgs = { reward_model_path: null, scorer: null, max_prompt_length: null, ref_model_name_or_path: null };

/**
 * A whole online run: resolve `config` strictly (trainer options through `resolveTrainer`), load the policy,
 * tokenizer, prompts and scorer, build the trainer with `make`, train, save the final policy (a PEFT adapter with
 * use_peft) with its tokenizer and `extraTensors` (value_head.safetensors) into output_dir.
 */
export async function runOnline<C extends TrainingArgs, T extends OnlineTrainer<C>>(
  config: Record<string, unknown>,
  opts: RunOptions,
  name: string,
  resolveTrainer: (given: Record<string, unknown>, source: string) => C,
  make: (args: C, deps: OnlineTrainerDeps) => T,
  extraTensors: (trainer: T) => Map<string, Tensor> = () => new Map(),
): Promise<RunResult> {
  const source = opts.source ?? `${name} config`;
  const { config: args, model: margs, data, extra } = resolveRunConfig<C, OnlineRunArgs>(config, source, resolveTrainer, ONLINE_RUN_DEFAULTS);
  const e = extra as unknown as Record<string, unknown>;
  checkNumber(e, 'max_prompt_length', { integer: true, min: 1, nullable: true }, source);
  if (extra.reward_model_path !== null && extra.scorer !== null) throw new Error(`${source}: give reward_model_path or scorer, not both`);
  if (extra.reward_model_path === null && extra.scorer === null) throw new Error(`${source}: a reward_model_path or a scorer is required`);
  const files = dataFiles(data, source);

  let rm: Pretrained | null = null;
  let scorer: ScoreFunction;
  if (extra.reward_model_path !== null) {
    if (typeof extra.reward_model_path !== 'string') throw optionError(source, 'reward_model_path', 'a model directory', extra.reward_model_path);
    rm = loadPretrained(extra.reward_model_path);
    if (!rm.score) throw new Error(`${source}: ${extra.reward_model_path} is not a reward model (no score head; a *ForSequenceClassification checkpoint is needed)`);
    for (const p of rm.model.parameters()) p.requiresGrad = false;
    rm.score.requiresGrad = false;
    scorer = rewardModelScorer(rm);
  } else scorer = await loadScorer(extra.scorer!, source);

  if (extra.ref_model_name_or_path !== null && typeof extra.ref_model_name_or_path !== 'string') throw optionError(source, 'ref_model_name_or_path', 'a model directory', extra.ref_model_name_or_path);
  const ref = extra.ref_model_name_or_path ? loadPretrained(extra.ref_model_name_or_path).model : null;
  const { pretrained, tokenizer } = loadModelAndTokenizer(margs);
  const lora = applyLora(pretrained.model, margs, args.seed);
  const prompts = await loadPrompts(files.train, tokenizer, extra.max_prompt_length, { skipInvalid: data.skip_invalid });
  const trainer = make(args, { policy: pretrained, ref, scorer, prompts, tokenizer, eosTokenId: tokenizer.eosTokenId ?? null, padTokenId: padTokenId(tokenizer) });
  try {
    const last = await trainer.train({ quiet: opts.quiet, onLog: opts.onLog });
    saveFinal(args.output_dir, pretrained, tokenizer, lora ? { config: lora.config, base: margs.model_name_or_path } : null);
    const ex = extraTensors(trainer);
    if (ex.size) {
      const entries = new Map([...ex].map(([n, t]) => [n, { dtype: 'F32' as const, shape: [...t.shape], data: t.toArray() }]));
      writeSafetensors(resolve(args.output_dir, 'value_head.safetensors'), entries, { format: 'pt' });
    }
    return { output_dir: args.output_dir, train: last, eval: null, global_step: trainer.globalStep };
  } finally {
    trainer.dispose();
    ref?.dispose();
    rm?.model.dispose();
    rm?.score?.dispose();
  }
}

/** Prompts of a JSON/JSONL dataset (prompt-only; standard or conversational) as PromptItems. */
export async function loadPrompts(file: string, tokenizer: Parameters<typeof loadPromptDataset>[1], maxPromptLength: number | null, read: DataReadOptions = {}): Promise<PromptItem[]> {
  const data = await loadPromptDataset(file, tokenizer, { maxPromptLength, skipInvalid: read.skipInvalid });
  reportSkipped(data.report);
  return data.examples.map((ex) => ({ ids: Array.from(ex.promptIds), text: ex.promptText }));
}

/** A scorer given as a function, or as the path of a module exporting one (default export or `score`). */
export async function loadScorer(s: ScoreFunction | string, source = 'config'): Promise<ScoreFunction> {
  if (typeof s === 'function') return s;
  if (typeof s !== 'string') throw optionError(source, 'scorer', 'a function or the path of a module exporting one', s);
  const mod = (await import(pathToFileURL(resolve(s)).href)) as { default?: unknown; score?: unknown };
  const fn = typeof mod.default === 'function' ? mod.default : mod.score;
  if (typeof fn !== 'function') throw new Error(`${source}: scorer module ${s} exports no function (default export or 'score')`);
  return fn as ScoreFunction;
}


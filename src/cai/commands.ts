// `alignkit cai revise | label | run`: Constitutional AI from the command line.
import { resolve } from 'node:path';
import { type OpenModelOptions, openTextModel } from '../feedback/open.js';
import type { TextModel } from '../feedback/text-model.js';
import { InputError, readPairs, readPrompts } from '../label/inputs.js';
import { type Command, UsageError } from '../options/command.js';
import { type OptionsOf, f } from '../options/fields.js';
import { labelPairs, samplePairs, type PairRow } from './ai-labels.js';
import { type Constitution, ConstitutionError, readConstitution } from './constitution.js';
import { DEFAULT_CONSTITUTION } from './default-constitution.js';
import type { Request } from './prompts.js';
import { RECIPE_FIELDS, type RecipeOptions, checkStageOptions, runRecipe } from './recipe.js';
import { type PromptRow, revise } from './revise.js';

const MODEL = {
  model: f.string('', 'the model: a Hugging Face folder, or openai:URL for an OpenAI-compatible server (llama.cpp, vLLM, ollama, alignkit serve)', { required: true, metavar: 'DIR|openai:URL' }),
  model_name: f.string(null, 'the model name to ask the server for (default: the first it lists)', { nullable: true, metavar: 'NAME' }),
  chat: f.boolean(false, 'the server renders conversations (chat completions); local folders use their chat template when they have one'),
  concurrency: f.integer(8, 'requests in flight at once (servers)', { min: 1 }),
  max_retries: f.integer(3, 'retries of a request that failed with 429, 5xx or a timeout (servers)', { min: 0 }),
  timeout: f.number(60, 'seconds before a request is abandoned (servers)', { min: 0, exclusiveMin: true }),
  batch_size: f.integer(32, 'prompts decoded together (local models)', { min: 1 }),
};

const CONSTITUTION = { constitution: f.string('default', "the principles: a YAML/JSON file (docs/cai.md), or 'default'", { metavar: 'FILE' }) };

const GENERATION = {
  max_new_tokens: f.integer(128, 'new tokens per reply, critique or revision', { min: 1 }),
  temperature: f.number(0.7, 'sampling temperature (0: greedy)', { min: 0 }),
  top_p: f.number(1, 'nucleus sampling mass', { min: 0, max: 1, exclusiveMin: true }),
  seed: f.integer(0, 'seed of the principles drawn and of every sample', { min: 0 }),
};

type ModelOpts = OptionsOf<typeof MODEL>;

/** Opens the model a command names. */
function modelFrom(v: ModelOpts): TextModel {
  const o: OpenModelOptions = { model: v.model_name, chat: v.chat, concurrency: v.concurrency, maxRetries: v.max_retries, timeoutMs: v.timeout * 1000, batchSize: v.batch_size };
  return openTextModel(v.model, o);
}

/** The constitution a command names ('default' or a file). */
export function constitutionFrom(spec: string): Constitution {
  if (spec === 'default') return DEFAULT_CONSTITUTION;
  try {
    return readConstitution(spec);
  } catch (e) {
    if (e instanceof ConstitutionError) throw new UsageError(e.message);
    throw e;
  }
}

/** Prompt rows from a TRL prompt-only file; ids from the file's "id" or the line number. */
function promptRows(path: string): PromptRow[] {
  try {
    return readPrompts(path).map((r) => ({ id: r.id ?? `line-${r.line}`, prompt: r.prompt as Request }));
  } catch (e) {
    if (e instanceof InputError) throw new UsageError(e.message);
    throw e;
  }
}

function pairRows(path: string): PairRow[] {
  try {
    return readPairs(path).map((r) => ({ id: r.id ?? `line-${r.line}`, prompt: r.prompt as Request, response_a: r.responseA, response_b: r.responseB }));
  } catch (e) {
    if (e instanceof InputError) throw new UsageError(e.message);
    throw e;
  }
}

const REVISE = {
  ...MODEL,
  ...CONSTITUTION,
  prompts: f.string('', 'the prompts to answer, critique and revise: TRL prompt-only JSONL ({"prompt": text | messages, "id"?})', { required: true, metavar: 'FILE' }),
  output_dir: f.string('', 'where transcripts.jsonl, sft.jsonl and prefs.jsonl go (a rerun resumes)', { required: true, metavar: 'DIR' }),
  revisions: f.integer(1, 'critique → revision rounds per prompt', { min: 1 }),
  ...GENERATION,
};

const LABEL = {
  ...MODEL,
  ...CONSTITUTION,
  pairs: f.string(null, 'ready pairs: JSONL {"prompt", "response_a", "response_b", "id"?}', { nullable: true, metavar: 'FILE' }),
  policy: f.string(null, 'instead of --pairs: a policy (folder or openai:URL) that samples two replies per prompt', { nullable: true, metavar: 'DIR' }),
  prompts: f.string(null, 'the prompts the policy answers (with --policy)', { nullable: true, metavar: 'FILE' }),
  out: f.string('', 'the preference file (TRL prompt/chosen/rejected + soft_label); labels.jsonl goes next to it', { required: true, metavar: 'FILE' }),
  ensemble: f.integer(1, 'principles asked per pair (their p(A) averaged)', { min: 1 }),
  swap: f.boolean(true, 'ask in both orders and average, removing position bias (--no-swap: one order)'),
  chain_of_thought: f.boolean(false, 'the feedback model reasons before answering; probabilities clamped to [0.4, 0.6]'),
  margin: f.number(0, 'drop pairs whose soft label is within this of 0.5 (0: drop only exact ties)', { min: 0, max: 0.5, exclusiveMax: true }),
  ...GENERATION,
};

export const CAI_COMMANDS: Command[] = [
  {
    name: 'cai revise',
    summary: 'Constitutional AI stage 1: answer, critique against a sampled principle, revise; writes SFT and preference data',
    options: REVISE,
    details: 'Resumable: run the same command again after a crash; finished prompts are skipped. See docs/cai.md.',
    async run(ctx) {
      const v = ctx.values as OptionsOf<typeof REVISE>;
      const constitution = constitutionFrom(v.constitution);
      const prompts = promptRows(v.prompts);
      const model = modelFrom(v);
      try {
        const r = await revise({
          model,
          constitution,
          prompts,
          outputDir: v.output_dir,
          revisions: v.revisions,
          seed: v.seed,
          batchSize: v.batch_size,
          generation: { maxTokens: v.max_new_tokens, temperature: v.temperature, topP: v.top_p },
        });
        ctx.err.write(
          `cai revise: ${r.done} prompts revised${r.skipped ? ` (${r.skipped} done before)` : ''} in ${r.seconds.toFixed(1)} s, ${(r.tokens / Math.max(r.seconds, 1e-9)).toFixed(0)} tokens/s\n`,
        );
        ctx.out.write(
          JSON.stringify({ transcripts: resolve(r.transcripts), sft: resolve(r.sft), prefs: resolve(r.prefs), done: r.done, skipped: r.skipped, tokens: r.tokens, seconds: r.seconds }) + '\n',
        );
      } finally {
        model.dispose();
      }
      return 0;
    },
  },
  {
    name: 'cai label',
    summary: 'Constitutional AI stage 2 (RLAIF): an AI feedback model labels pairs against the constitution',
    options: LABEL,
    details: 'Output rows carry soft_label (the probability that chosen is better), which `alignkit reward` and `alignkit dpo` read.',
    async run(ctx) {
      const v = ctx.values as OptionsOf<typeof LABEL>;
      if ((v.pairs === null) === (v.policy === null)) throw new UsageError('give --pairs FILE, or --policy with --prompts (not both)');
      if (v.policy !== null && v.prompts === null) throw new UsageError('--policy needs --prompts');
      const constitution = constitutionFrom(v.constitution);
      const model = modelFrom(v);
      let pairs: PairRow[];
      let policy: TextModel | null = null;
      try {
        if (v.pairs !== null) pairs = pairRows(v.pairs);
        else {
          policy = v.policy === v.model ? model : modelFrom({ ...v, model: v.policy! });
          const s = await samplePairs(policy, promptRows(v.prompts!), { maxTokens: v.max_new_tokens, temperature: v.temperature, topP: v.top_p }, v.seed);
          pairs = s.pairs;
          if (s.identical) ctx.err.write(`cai label: ${s.identical} prompts gave two identical samples and no pair\n`);
        }
        const r = await labelPairs({
          model,
          constitution,
          pairs,
          out: v.out,
          seed: v.seed,
          ensemble: v.ensemble,
          swap: v.swap,
          chainOfThought: v.chain_of_thought,
          margin: v.margin,
          reasoning: { maxTokens: v.max_new_tokens, temperature: 0 },
        });
        ctx.err.write(
          `cai label: ${r.written} preference pairs written to ${v.out}; ${r.dropped} dropped as too close to 0.5${r.positionBias !== null ? `; measured position bias ${r.positionBias >= 0 ? '+' : ''}${r.positionBias.toFixed(3)} towards (A)` : ''}\n`,
        );
        ctx.out.write(JSON.stringify({ out: resolve(r.out), written: r.written, dropped: r.dropped, position_bias: r.positionBias, seconds: r.seconds }) + '\n');
      } finally {
        if (policy && policy !== model) policy.dispose();
        model.dispose();
      }
      return 0;
    },
  },
  {
    name: 'cai run',
    summary: 'the whole Constitutional AI recipe: SL-CAI data → SFT → AI labels → reward model → PPO (or DPO) → evaluation',
    options: RECIPE_FIELDS,
    style: 'snake',
    config: true,
    details: 'Stages: sl/, sl-cai/, rlaif/, reward/, rl-cai/, eval.json under output_dir; a finished stage is not redone on restart. See docs/cai.md.',
    async run(ctx) {
      const v = ctx.values as RecipeOptions;
      try {
        checkStageOptions(v, ctx.locate);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const r = await runRecipe(v, { constitution: constitutionFrom(v.constitution), readPrompts: promptRows, log: (s) => ctx.err.write(s + '\n') });
      ctx.out.write(JSON.stringify(r) + '\n');
      return 0;
    },
  },
];

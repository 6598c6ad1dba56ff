// What the online RL trainers (PPO, RLOO, GRPO) share on top of the one training loop (../loop.ts): TRL's
// inputs (policy, prompts, processing class, a reward model or reward function, an optional reference and PEFT
// config), a seeded resumable order of prompt batches (one global step = one rollout batch and its
// optimisation), the frozen reference (a given model, the policy with its adapters off, or a frozen copy), and
// the optimisation pass both families run over a rollout: epochs of shuffled mini-batches, each accumulating its
// micro-batches' gradients into one optimiser step.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DataSource, EpochSampler, type SamplerState, loadPromptDataset, padTokenId as tokenizerPadId } from '../../data/index.js';
import { type Tensor, tidy } from '../../engine/tensor.js';
import type { Random } from '../../engine/random.js';
import type { NamedInput } from '../../io/paths.js';
import { type Pretrained, savePretrained } from '../../io/pretrained.js';
import { saveAdapter } from '../../io/peft.js';
import { writeSafetensors } from '../../io/safetensors.js';
import { Transformer } from '../../models/transformer.js';
import type { LoraConfig } from '../../nn/lora.js';
import type { ConfigSpec, FieldTable, OptionsOf } from '../../options/fields.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import type { TrainingArgs } from '../args.js';
import { frozenCopy } from '../frozen-copy.js';
import { type Metrics, TrainerBase } from '../loop.js';
import { type PeftConfig, adapterTensors, applyPeft, checkTokenizerFits, resolveModel, resolveTokenizer } from '../model-args.js';
import { reportSkipped } from '../report.js';
import { type ScoreFunction, rewardModelScorer } from './scorer.js';

export type { Metrics };

/** A prompt to generate from: its token ids and the text the scorer sees. */
export interface PromptItem {
  ids: readonly number[];
  text: string;
}

/** What every online trainer's constructor takes (TRL's names, camelCase). */
export interface OnlineInputs<C> {
  /** the policy: a Hugging Face folder (loaded and owned by the trainer), a loaded model, or a bare Transformer */
  model: Pretrained | Transformer | string;
  args?: Partial<C> | Readonly<Record<string, unknown>>;
  /** the prompts: a prompt-only dataset (file or records, standard or conversational) or prompt items */
  trainDataset: DataSource | readonly PromptItem[];
  /** the tokenizer (or its folder); default: the model's folder */
  processingClass?: Tokenizer | string | null;
  /** a reward model (a *ForSequenceClassification folder or loaded model) ... */
  rewardModel?: Pretrained | string | null;
  /** ... or a reward function of the texts (sync or async), or the path of an ES module exporting one */
  rewardFuncs?: ScoreFunction | string | null;
  /** a separate frozen reference; default: the policy with its LoRA adapters off, else a frozen copy */
  refModel?: Pretrained | Transformer | string | null;
  peftConfig?: PeftConfig | null;
  /** prompts longer than this keep their first tokens (null: no limit) */
  maxPromptLength?: number | null;
  /** the EOS id (stop token, missing_eos_penalty) when there is no processing class */
  eosTokenId?: number | null;
  /** fills padding (default: the tokenizer's pad, else EOS, else 0) */
  padTokenId?: number | null;
  skipInvalid?: boolean;
}

/** A scorer given as a function, or as the path of a module exporting one (default export or `score`). */
async function loadScorer(s: ScoreFunction | string, who: string): Promise<ScoreFunction> {
  if (typeof s === 'function') return s;
  if (typeof s !== 'string') throw new Error(`${who}: rewardFuncs must be a function or the path of a module exporting one`);
  const mod = (await import(pathToFileURL(resolve(s)).href)) as { default?: unknown; score?: unknown };
  const fn = typeof mod.default === 'function' ? mod.default : mod.score;
  if (typeof fn !== 'function') throw new Error(`${who}: reward module ${s} exports no function (default export or 'score')`);
  return fn as ScoreFunction;
}

/** A Fisher–Yates permutation of 0..n−1 from the trainer's RNG (mini-batch order). */
function permutation(rng: Random, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

export abstract class OnlineTrainer<T extends FieldTable> extends TrainerBase<OptionsOf<T> & TrainingArgs> {
  readonly policy: Transformer;
  readonly pretrained: Pretrained | null;
  readonly tokenizer: Tokenizer | null;
  /** the frozen reference model, or null: the policy with adapters off */
  readonly ref: Transformer | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number;
  readonly lora: LoraConfig | null;
  readonly modelDir: string | null;
  scorer: ScoreFunction | null = null;
  prompts: readonly PromptItem[] = [];
  episode = 0;
  private sampler: EpochSampler | null = null;
  private started: { at: number; episode: number } | null = null;
  private readonly owned: { dispose(): void }[] = [];
  private readonly inputs0: OnlineInputs<OptionsOf<T>>;
  private readonly dirs: NamedInput[] = [];

  constructor(spec: ConfigSpec<T>, inputs: OnlineInputs<OptionsOf<T>>, name: string) {
    super(spec.resolve(inputs.args ?? {}) as OptionsOf<T> & TrainingArgs, name);
    this.inputs0 = inputs;
    if (inputs.trainDataset === undefined || inputs.trainDataset === null) throw new Error(`${name}: trainDataset (the prompts) is required`);
    if (inputs.model instanceof Transformer) {
      this.policy = inputs.model;
      this.pretrained = null;
      this.modelDir = null;
    } else {
      const m = resolveModel(inputs.model, `${name}: model`);
      this.pretrained = m.pretrained;
      this.policy = m.pretrained.model;
      this.modelDir = m.dir;
      if (m.owned) this.owned.push(m.pretrained.model);
      if (m.dir) this.dirs.push({ what: 'the model folder', path: m.dir });
    }
    const t = resolveTokenizer(inputs.processingClass, this.modelDir, name);
    this.tokenizer = t.tokenizer;
    if (t.dir) this.dirs.push({ what: 'the tokenizer folder', path: t.dir });
    if (this.tokenizer) checkTokenizerFits(this.tokenizer, this.policy, { tokenizerDir: t.dir, modelDir: this.modelDir }, name);
    this.eosTokenId = inputs.eosTokenId ?? this.tokenizer?.eosTokenId ?? null;
    this.padTokenId = inputs.padTokenId ?? (this.tokenizer ? tokenizerPadId(this.tokenizer) : (this.eosTokenId ?? 0));
    this.lora = applyPeft(this.policy, inputs.peftConfig, this.args.seed);

    if (inputs.rewardModel && inputs.rewardFuncs) throw new Error(`${name}: give a rewardModel or rewardFuncs, not both`);
    if (!inputs.rewardModel && !inputs.rewardFuncs) throw new Error(`${name}: a rewardModel or rewardFuncs (a scorer function) is required`);
    if (inputs.rewardModel) {
      const rm = resolveModel(inputs.rewardModel, `${name}: rewardModel`);
      if (!rm.pretrained.score) throw new Error(`${name}: ${rm.dir ?? 'the rewardModel'} is not a reward model (no score head; a *ForSequenceClassification checkpoint is needed)`);
      if (rm.pretrained.model.config.vocabSize !== this.policy.config.vocabSize)
        throw new Error(`${name}: the reward model's vocabulary (${rm.pretrained.model.config.vocabSize}) differs from the policy's (${this.policy.config.vocabSize})`);
      for (const p of rm.pretrained.model.parameters()) p.requiresGrad = false;
      rm.pretrained.score.requiresGrad = false;
      if (rm.owned) this.owned.push(rm.pretrained.model, rm.pretrained.score);
      if (rm.dir) this.dirs.push({ what: 'the reward model folder', path: rm.dir });
      this.scorer = rewardModelScorer(rm.pretrained);
    } else if (typeof inputs.rewardFuncs === 'function') this.scorer = inputs.rewardFuncs;
    else if (typeof inputs.rewardFuncs !== 'string') throw new Error(`${name}: rewardFuncs must be a function or the path of a module exporting one`);

    const r = inputs.refModel;
    if (r !== undefined && r !== null) {
      const ref = r instanceof Transformer ? { pretrained: { model: r } as Pretrained, owned: false, dir: null } : resolveModel(r, `${name}: refModel`);
      if (ref.pretrained.model === this.policy) throw new Error(`${name}: the reference must not be the policy object itself (omit refModel to get a frozen copy)`);
      if (ref.pretrained.model.config.vocabSize !== this.policy.config.vocabSize)
        throw new Error(`${name}: the reference's vocabulary (${ref.pretrained.model.config.vocabSize}) differs from the policy's (${this.policy.config.vocabSize})`);
      this.ref = ref.pretrained.model;
      if (ref.owned) this.owned.push(this.ref);
      if (ref.dir) this.dirs.push({ what: 'the reference model folder', path: ref.dir });
    } else if (this.policy.adapters.size) this.ref = null;
    else {
      this.ref = frozenCopy(this.policy);
      this.owned.push(this.ref);
    }
    if (this.ref) {
      for (const p of this.ref.parameters()) p.requiresGrad = false;
      this.ref.training = false;
    }
    this.policy.training = false; // no dropout in rollouts or updates (TRL disables it for online RL)
  }

  // ---- what an algorithm supplies
  /** Prompts drawn per update. */
  abstract promptsPerUpdate(): number;
  /** Updates in the whole run. */
  protected abstract totalUpdates(): number;
  /** One rollout batch and its optimisation; returns the update's metrics. */
  protected abstract update(prompts: PromptItem[], lr: number): Promise<Metrics>;
  /** Trained tensors outside the policy (the value head). */
  protected extraTrainable(): Tensor[] {
    return [];
  }
  /** Trained tensors outside the policy, by checkpoint name (saved with the final model too). */
  protected extraTensors(): Map<string, Tensor> {
    return new Map();
  }

  protected override async prepare(): Promise<void> {
    if (this.sampler) return;
    const d = this.inputs0.trainDataset;
    if (Array.isArray(d) && d.length && typeof (d[0] as PromptItem).text === 'string' && Array.isArray((d[0] as PromptItem).ids)) this.prompts = d as readonly PromptItem[];
    else {
      if (!this.tokenizer) throw new Error(`${this.name}: a processingClass (tokenizer) is needed to tokenise the prompts`);
      const data = await loadPromptDataset(d as DataSource, this.tokenizer, { maxPromptLength: this.inputs0.maxPromptLength ?? null, skipInvalid: this.inputs0.skipInvalid });
      reportSkipped(data.report);
      this.prompts = data.examples.map((ex) => ({ ids: Array.from(ex.promptIds), text: ex.promptText }));
      if (typeof d === 'string') this.dirs.push({ what: 'the prompts file', path: d });
    }
    if (!this.prompts.length) throw new Error(`${this.name}: the prompt dataset is empty`);
    if (!this.scorer) this.scorer = await loadScorer(this.inputs0.rewardFuncs as string, this.name);
    const per = this.promptsPerUpdate();
    if (per > this.prompts.length) throw new Error(`${this.name}: an update draws ${per} prompts but the dataset has ${this.prompts.length}`);
    this.sampler = new EpochSampler(this.prompts.length, { batchSize: per, seed: this.args.seed, shuffle: true, dropLast: true });
    if (!this.optimizer) this.initOptimizer([...this.policy.trainableParameters(), ...this.extraTrainable()]);
  }

  protected override totalSteps(): number {
    return this.totalUpdates();
  }

  protected override async trainStep(lr: number): Promise<Metrics> {
    this.started ??= { at: performance.now(), episode: this.episode };
    const batch = this.sampler!.next();
    const prompts = Array.from(batch.indices, (i) => this.prompts[i]!);
    const m = await this.update(prompts, lr);
    m.lr = lr;
    m.episode = this.episode;
    // episodes per second of this process (TRL's eps)
    m.eps = Math.round((this.episode - this.started.episode) / Math.max(1e-9, (performance.now() - this.started.at) / 1000));
    return m;
  }

  protected override epochProgress(): number {
    return this.prompts.length ? this.episode / this.prompts.length : 0;
  }
  protected override dataState(): unknown {
    return this.sampler!.state();
  }
  protected override restoreDataState(s: unknown): void {
    this.sampler!.restore(s as SamplerState);
  }
  protected override checkpointModel(): Pretrained | null {
    return this.pretrained;
  }
  protected override checkpointTensors(): Map<string, Tensor> {
    const m = new Map([...this.extraTensors(), ...adapterTensors(this.policy)]);
    if (!this.pretrained) for (const [n, t] of this.policy.params) m.set(`policy.${n}`, t);
    return m;
  }
  protected override algorithmState(): Record<string, unknown> {
    return { episode: this.episode };
  }
  protected override restoreAlgorithmState(s: Record<string, unknown>): void {
    this.episode = typeof s.episode === 'number' ? s.episode : 0;
  }
  protected override inputs(): NamedInput[] {
    return this.dirs;
  }

  /** Runs fn with the reference model's weights: the frozen copy, or the policy with its adapters off. */
  withRef<R>(fn: (ref: Transformer) => R): R {
    if (this.ref) return fn(this.ref);
    return this.policy.withoutAdapters(() => fn(this.policy));
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer ? this.tokenizer.decode(ids, { skipSpecialTokens: true }) : ids.join(' ');
  }

  /**
   * The optimisation pass over a rollout of B rows: `epochs` passes, each a fresh permutation cut into
   * `miniBatches` mini-batches; each mini-batch accumulates `microLoss` over micro-batches of at most `micro`
   * rows (the callback scales and back-propagates its loss and returns its value) and takes one optimiser step.
   * Returns the gradient norm of every step.
   */
  protected optimizeRollout(B: number, o: { epochs: number; miniBatches: number; micro: number; lr: number; what: string }, microLoss: (rows: Int32Array, miniBatchRows: number) => number): number[] {
    const M = B / o.miniBatches;
    if (!Number.isInteger(M)) throw new Error(`${this.name}: ${B} rollout rows do not split into ${o.miniBatches} mini-batches`);
    const micro = Math.min(o.micro, M);
    const norms: number[] = [];
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const perm = permutation(this.rng, B);
      for (let mb = 0; mb < o.miniBatches; mb++) {
        const mini = perm.subarray(mb * M, (mb + 1) * M);
        for (let s = 0; s < M; s += micro) {
          const rows = mini.subarray(s, Math.min(s + micro, M));
          tidy(() => this.checkFinite(microLoss(rows, M), o.what));
        }
        norms.push(this.optimizerStep(o.lr));
      }
    }
    return norms;
  }

  /** Saves the policy into `dir` (default output_dir) — the Hugging Face layout, or a PEFT adapter — with its tokenizer and extra tensors. */
  saveModel(dir: string = this.args.output_dir): void {
    if (!this.pretrained) throw new Error(`${this.name}: saveModel needs a policy loaded as a Hugging Face model (not a bare Transformer)`);
    if (this.lora) saveAdapter(dir, this.policy, this.lora, this.modelDir ? resolve(this.modelDir) : '');
    else savePretrained(dir, this.pretrained);
    this.tokenizer?.save(dir);
    const ex = this.extraTensors();
    if (ex.size) {
      const entries = new Map([...ex].map(([n, t]) => [n, { dtype: 'F32' as const, shape: [...t.shape], data: t.toArray() }]));
      writeSafetensors(resolve(dir, 'value_head.safetensors'), entries, { format: 'pt' });
    }
  }

  override dispose(): void {
    super.dispose();
    for (const o of this.owned.splice(0)) o.dispose();
  }
}

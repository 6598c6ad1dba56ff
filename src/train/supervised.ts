// What SFT, reward modelling and DPO share on top of the one training loop (loop.ts): TRL's trainer inputs
// (a model folder or a loaded model, a config given as a partial object and checked against the config's field
// table, datasets as files / records / tokenised examples, a processing class, a PEFT config), tokenising the
// datasets once, a resumable batch order, and one optimiser step over gradient_accumulation_steps micro-batches.
import { resolve } from 'node:path';
import { type DataSource, padTokenId as tokenizerPadId } from '../data/index.js';
import { scale } from '../engine/ops/elementwise.js';
import { type Tensor, tidy } from '../engine/tensor.js';
import type { NamedInput } from '../io/paths.js';
import { type Pretrained, savePretrained } from '../io/pretrained.js';
import { saveAdapter } from '../io/peft.js';
import type { LoraConfig } from '../nn/lora.js';
import type { ConfigSpec, FieldTable, OptionsOf } from '../options/fields.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { TrainingArgs } from './args.js';
import { ExampleBatches } from './batches.js';
import { type Metrics, TrainerBase } from './loop.js';
import { type PeftConfig, adapterTensors, applyPeft, checkTokenizerFits, resolveModel, resolveTokenizer } from './model-args.js';

/** A dataset as a trainer takes it: a file (or files), records in memory, or examples tokenised already. */
export type DatasetInput<E> = DataSource | readonly E[];

/** What every supervised trainer's constructor takes (TRL's names, camelCase). */
export interface SupervisedInputs<C, E> {
  /** the model to train: a Hugging Face folder (loaded and owned by the trainer) or a loaded model */
  model: Pretrained | string;
  /** the config: any subset of the config's options (checked; defaults filled) */
  args?: Partial<C> | Readonly<Record<string, unknown>>;
  trainDataset: DatasetInput<E>;
  evalDataset?: DatasetInput<E> | null;
  /** the tokenizer (or its folder); default: the model's folder */
  processingClass?: Tokenizer | string | null;
  /** LoRA adapters to add and train (PEFT's LoraConfig names); the base is frozen */
  peftConfig?: PeftConfig | null;
  /** the pad id of tokenised datasets given without a processing class */
  padTokenId?: number;
  /** count and report invalid records instead of stopping at the first */
  skipInvalid?: boolean;
}

/** What one micro-batch contributes: the loss to differentiate and metrics (already plain numbers). */
export interface LossResult {
  loss: Tensor;
  metrics: Metrics;
}

/** Whether a dataset is examples tokenised already (rather than records or files). */
function isTokenised<E>(d: DatasetInput<E>): d is readonly E[] {
  if (!Array.isArray(d) || d.length === 0) return false;
  const x = d[0] as Record<string, unknown> | null;
  return !!x && typeof x === 'object' && 'source' in x && ('ids' in x || 'promptIds' in x || 'chosenIds' in x);
}

export abstract class SupervisedTrainer<T extends FieldTable, E, B> extends TrainerBase<OptionsOf<T> & TrainingArgs> {
  readonly model: Pretrained;
  readonly tokenizer: Tokenizer | null;
  readonly lora: LoraConfig | null;
  /** the model's folder when it was given as one (the base of a saved adapter) */
  readonly modelDir: string | null;
  protected readonly tokenizerDir: string | null;
  protected readonly ownsModel: boolean;
  protected trainExamples: E[] | null = null;
  protected evalExamples: E[] | null = null;
  private batches: ExampleBatches<E, B> | null = null;
  private epochs = 0;
  private readonly inputs0: SupervisedInputs<OptionsOf<T>, E>;

  constructor(spec: ConfigSpec<T>, inputs: SupervisedInputs<OptionsOf<T>, E>, name: string, transformModel?: (p: Pretrained, tokenizer: Tokenizer | null, args: OptionsOf<T>) => Pretrained) {
    const args = spec.resolve(inputs.args ?? {}) as OptionsOf<T> & TrainingArgs;
    super(args, name);
    if (!inputs || inputs.trainDataset === undefined || inputs.trainDataset === null) throw new Error(`${name}: trainDataset is required`);
    const m = resolveModel(inputs.model, `${name}: model`);
    const t = resolveTokenizer(inputs.processingClass, m.dir, name);
    this.tokenizer = t.tokenizer;
    this.tokenizerDir = t.dir;
    if (this.tokenizer) checkTokenizerFits(this.tokenizer, m.pretrained.model, { tokenizerDir: t.dir, modelDir: m.dir }, name);
    this.model = transformModel ? transformModel(m.pretrained, this.tokenizer, args) : m.pretrained;
    this.modelDir = m.dir;
    this.ownsModel = m.owned;
    this.lora = applyPeft(this.model.model, inputs.peftConfig, args.seed);
    this.inputs0 = inputs;
  }

  /** The id batches are padded with. */
  get padTokenId(): number {
    if (this.tokenizer) return tokenizerPadId(this.tokenizer);
    if (this.inputs0.padTokenId !== undefined) return this.inputs0.padTokenId;
    const c = this.model.hfConfig.model;
    return c.padTokenId ?? (typeof c.eosTokenId === 'number' ? c.eosTokenId : 0);
  }

  /** Whether invalid records are counted and skipped (else the first one stops the run). */
  protected get skipInvalid(): boolean {
    return this.inputs0.skipInvalid === true;
  }

  /** Tokenises a dataset given as files or records (needs the processing class). */
  protected abstract loadExamples(source: DataSource, split: 'train' | 'eval', tokenizer: Tokenizer): Promise<E[]>;
  /** A batch of examples (with their dataset indices). */
  protected abstract collate(examples: readonly E[], indices: Int32Array, split: 'train' | 'eval'): B;
  /** The loss of one micro-batch (inside a tidy scope, tape on). */
  protected abstract computeLoss(batch: B): LossResult;
  /** Metrics over the eval examples (eval_ prefixed). */
  protected abstract evaluateExamples(examples: readonly E[]): Metrics;
  /** The tensors the optimiser updates. */
  protected trainableTensors(): Tensor[] {
    return this.model.model.trainableParameters();
  }
  /** Work after the datasets are tokenised and before training (DPO's reference precomputation). */
  protected async afterPrepare(): Promise<void> {}

  private async examples(d: DatasetInput<E> | null | undefined, split: 'train' | 'eval'): Promise<E[] | null> {
    if (d === null || d === undefined) return null;
    if (isTokenised(d)) return [...d];
    if (Array.isArray(d) && d.length === 0) return [];
    if (!this.tokenizer) throw new Error(`${this.name}: a processingClass (tokenizer) is needed to tokenise the ${split} dataset`);
    return this.loadExamples(d as DataSource, split, this.tokenizer);
  }

  protected override async prepare(): Promise<void> {
    if (this.trainExamples) return;
    const train = await this.examples(this.inputs0.trainDataset, 'train');
    if (!train || !train.length) throw new Error(`${this.name}: the training dataset is empty`);
    const ev = await this.examples(this.inputs0.evalDataset, 'eval');
    this.trainExamples = train;
    this.evalExamples = ev && ev.length ? ev : null;
    this.batches = new ExampleBatches(train, (ex, idx) => this.collate(ex, idx, 'train'), { batchSize: this.args.per_device_train_batch_size, seed: this.args.seed });
    if (!this.optimizer) this.initOptimizer(this.trainableTensors());
    await this.afterPrepare();
  }

  protected get source(): ExampleBatches<E, B> {
    if (!this.batches) throw new Error(`${this.name}: not prepared`);
    return this.batches;
  }

  protected override totalSteps(): number {
    const a = this.args;
    if (a.max_steps > 0) return a.max_steps;
    return Math.ceil((this.source.length / a.gradient_accumulation_steps) * a.num_train_epochs);
  }

  protected override epochProgress(): number {
    return this.epochs + this.source.progress;
  }

  protected override dataState(): unknown {
    return { epoch: this.epochs, ...this.source.getState() };
  }

  protected override restoreDataState(s: unknown): void {
    this.source.setState(s);
    const e = (s as { epoch?: unknown }).epoch;
    this.epochs = typeof e === 'number' ? e : 0;
  }

  protected override checkpointModel(): Pretrained {
    return this.model;
  }

  protected override checkpointTensors(): Map<string, Tensor> {
    return adapterTensors(this.model.model);
  }

  protected override inputs(): NamedInput[] {
    const out: NamedInput[] = [];
    if (this.modelDir) out.push({ what: 'the model folder', path: this.modelDir });
    if (this.tokenizerDir) out.push({ what: 'the tokenizer folder', path: this.tokenizerDir });
    for (const d of [this.inputs0.trainDataset, this.inputs0.evalDataset]) {
      if (typeof d === 'string') out.push({ what: 'a data file', path: d });
      else if (d && !Array.isArray(d) && 'files' in d) for (const p of d.files) out.push({ what: 'a data file', path: p });
    }
    return out;
  }

  protected override hasEvalData(): boolean {
    return this.evalExamples !== null;
  }

  override async evaluate(): Promise<Metrics | null> {
    await this.prepare();
    if (!this.evalExamples) return null;
    const m = this.model.model;
    return m.evalMode(() => this.evaluateExamples(this.evalExamples!));
  }

  /** One optimiser step over gradient_accumulation_steps micro-batches. */
  protected override async trainStep(lr: number): Promise<Metrics> {
    const a = this.args,
      k = a.gradient_accumulation_steps;
    const micro: Metrics[] = [];
    for (let i = 0; i < k; i++) {
      let batch = this.source.next();
      if (batch === null) {
        this.epochs++;
        batch = this.source.next();
        if (batch === null) throw new Error(`${this.name}: the training data is empty`);
      }
      micro.push(
        tidy(() => {
          const { loss, metrics } = this.computeLoss(batch!);
          const value = loss.item();
          this.checkFinite(value, 'the loss');
          (k === 1 ? loss : scale(loss, 1 / k)).backward();
          return { loss: value, ...metrics };
        }),
      );
    }
    const gradNorm = this.optimizerStep(lr);
    const m: Metrics = {};
    for (const key of Object.keys(micro[0]!)) {
      const total = micro.reduce((s, x) => s + (x[key] ?? 0), 0);
      m[key] = key === 'num_tokens' ? total : total / micro.length;
    }
    m.grad_norm = gradNorm;
    m.learning_rate = lr;
    return m;
  }

  /**
   * Saves the trained model into `dir` (default output_dir) with its tokenizer: the Hugging Face layout, or with
   * LoRA the adapter in PEFT's layout (as TRL saves a PEFT model), its base named by absolute path.
   */
  saveModel(dir: string = this.args.output_dir): void {
    if (this.lora) {
      const base = this.modelDir ? resolve(this.modelDir) : '';
      saveAdapter(dir, this.model.model, this.lora, base);
    } else savePretrained(dir, this.model);
    this.tokenizer?.save(dir);
  }

  override dispose(): void {
    super.dispose();
    if (this.ownsModel) {
      this.model.model.dispose();
      this.model.score?.dispose();
    }
  }
}

// Supervised fine-tuning (TRL's SFTTrainer): next-token cross-entropy on the completion of prompt–completion
// data, on the assistant turns of conversations (assistant_only_loss), or on the whole sequence of language-
// modelling data; optional packing. Metrics under TRL's names (loss, num_tokens, mean_token_accuracy, entropy)
// and an eval loop giving eval_loss, eval_mean_token_accuracy, eval_entropy. `runSFT` is the command-line entry.
import { type Batch, type SequenceExample, collateSequences, loadSftDataset, packSequences, padTokenId } from '../data/index.js';
import { div, neg, sum } from '../engine/ops/elementwise.js';
import { type Tensor, noGrad, tidy } from '../engine/tensor.js';
import type { Pretrained } from '../io/pretrained.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { TRAINING_DEFAULTS, type TrainingArgs } from './args.js';
import { logitStats, lossTokenLogprobs } from './sequence-logps.js';
import {
  ExampleBatches, applyLora, seedDropout, checkNullableBool, checkNumber, checkTrainingArgs, dataFiles, inOrder, loadModelAndTokenizer, logMetrics, resolveNullable, resolveRunConfig, saveFinal,
  type DataReadOptions,
  reportSkipped,
} from './setup.js';
import { type BatchSource, type LossResult, SupervisedTrainer } from './trainer.js';

export interface SFTConfig extends TrainingArgs {
  /** the text column of standard language-modelling data */
  dataset_text_field: string;
  /** tokens per sequence (longer ones keep their start); with packing, the length of the packed rows; null: no limit */
  max_length: number | null;
  /** concatenate the examples and cut the stream into rows of max_length tokens (TRL's "wrapped" packing) */
  packing: boolean;
  /** pack the eval data too; null: as `packing` */
  eval_packing: boolean | null;
  /** loss on the completion only (prompt–completion data); null: true (language-modelling data has no prompt) */
  completion_only_loss: boolean | null;
  /** loss on the assistant turns only (conversational language-modelling data; the template must mark them) */
  assistant_only_loss: boolean;
  /** pad every batch to a multiple of this many tokens; null: to the longest row */
  pad_to_multiple_of: number | null;
}

/** TRL's SFTConfig defaults (learning_rate 2e-5, logging_steps 10, max_length 1024) over TrainingArguments'. */
export const SFT_DEFAULTS: SFTConfig = {
  ...TRAINING_DEFAULTS,
  learning_rate: 2e-5,
  logging_steps: 10,
  dataset_text_field: 'text',
  max_length: 1024,
  packing: false,
  eval_packing: null,
  completion_only_loss: null,
  assistant_only_loss: false,
  pad_to_multiple_of: null,
};

const NULLABLE = ['max_length', 'eval_packing', 'completion_only_loss', 'pad_to_multiple_of'] as const;

/** Fills SFT_DEFAULTS and checks every option strictly (unknown keys and wrong types are errors naming `source`). */
export function resolveSFTConfig(given: Record<string, unknown>, source = 'config'): SFTConfig {
  const c = resolveNullable(SFT_DEFAULTS, given, source, NULLABLE);
  const r = c as unknown as Record<string, unknown>;
  checkTrainingArgs(r, source);
  checkNumber(r, 'max_length', { integer: true, min: 1, nullable: true }, source);
  checkNumber(r, 'pad_to_multiple_of', { integer: true, min: 1, nullable: true }, source);
  checkNullableBool(r, 'eval_packing', source);
  checkNullableBool(r, 'completion_only_loss', source);
  if (!c.dataset_text_field) throw new Error(`${source}: dataset_text_field must name a column`);
  if ((c.packing || c.eval_packing) && c.max_length === null) throw new Error(`${source}: packing needs max_length (the length of the packed rows)`);
  return c;
}

/**
 * Reads and tokenises SFT data (language modelling or prompt–completion, standard or conversational) with the
 * config's rules; packs it when `pack` (default: the config's packing).
 */
export async function loadSFTData(source: string | readonly unknown[], tokenizer: Tokenizer, cfg: SFTConfig, pack = cfg.packing, read: DataReadOptions = {}): Promise<SequenceExample[]> {
  const { examples, report } = await loadSftDataset(source, tokenizer, {
    skipInvalid: read.skipInvalid,
    textField: cfg.dataset_text_field,
    maxLength: pack ? null : cfg.max_length,
    assistantMasks: cfg.assistant_only_loss,
  });
  reportSkipped(report);
  return pack ? packSequences(examples, cfg.max_length!) : examples;
}

export interface SFTTrainerOptions {
  args: SFTConfig;
  /** the model to train (saved in checkpoints in the Hugging Face layout) */
  model: Pretrained;
  trainDataset: readonly SequenceExample[];
  evalDataset?: readonly SequenceExample[] | null;
  /** the id batches are padded with (padTokenId(tokenizer)) */
  padTokenId: number;
  /** trained tensors outside the model (LoRA adapters by PEFT name), saved in checkpoints */
  extraState?: Map<string, Tensor>;
}

export class SFTTrainer extends SupervisedTrainer<Batch> {
  readonly model: Pretrained;
  readonly trainDataset: readonly SequenceExample[];
  readonly evalDataset: readonly SequenceExample[] | null;
  readonly padId: number;
  declare readonly args: SFTConfig;

  constructor(o: SFTTrainerOptions) {
    if (!o.trainDataset.length) throw new Error('SFTTrainer: the training dataset is empty');
    super(o.args, o.model, o.model.model.trainableParameters(), o.extraState ?? new Map(), 'sft');
    this.model = o.model;
    this.trainDataset = o.trainDataset;
    this.evalDataset = o.evalDataset?.length ? o.evalDataset : null;
    this.padId = o.padTokenId;
  }

  /** A right-padded batch with the loss mask the config asks for. */
  collate(examples: readonly SequenceExample[]): Batch {
    return collateSequences(examples, {
      padId: this.padId,
      padToMultipleOf: this.args.pad_to_multiple_of ?? undefined,
      completionOnlyLoss: this.args.completion_only_loss ?? true,
      assistantOnlyLoss: this.args.assistant_only_loss,
    });
  }

  protected trainBatches(): BatchSource<Batch> {
    return new ExampleBatches(this.trainDataset, (ex) => this.collate(ex), { batchSize: this.args.per_device_train_batch_size, seed: this.args.seed });
  }

  /** Mean negative log-likelihood of the batch's loss tokens, with TRL's SFT metrics. */
  override computeLoss(batch: Batch): LossResult {
    const { ids, B, T, lossMask } = batch;
    const m = this.model.model;
    seedDropout(m, this.rng.seed());
    const logits = m.forward(ids, B, T, { attentionMask: batch.attentionMask });
    const lp = lossTokenLogprobs(logits, ids, lossMask, B, T);
    let n = 0;
    for (let i = 0; i < lossMask.length; i++) n += lossMask[i]!;
    if (n === 0) throw new Error('sft: a batch has no loss token (every completion was masked or truncated away)');
    const loss = div(neg(sum(lp)), n);
    const st = logitStats(logits, ids, lossMask, B, T);
    let tokens = 0;
    for (let i = 0; i < batch.attentionMask.length; i++) tokens += batch.attentionMask[i]!;
    return { loss, metrics: { num_tokens: tokens, mean_token_accuracy: st.accuracy, entropy: st.entropy } };
  }

  /** eval_loss (token-weighted over the whole eval set), eval_mean_token_accuracy, eval_entropy. */
  override evaluate(): Record<string, number> {
    if (!this.evalDataset) return {};
    return evaluateSequences(this.model, this.evalDataset, (ex) => this.collate(ex), this.args.per_device_eval_batch_size);
  }
}

/** Token-weighted NLL, accuracy and entropy of a model on sequences (no gradient). */
export function evaluateSequences(p: Pretrained, examples: readonly SequenceExample[], collate: (ex: SequenceExample[]) => Batch, batchSize: number): Record<string, number> {
  const m = p.model;
  const wasTraining = m.training;
  m.training = false;
  let nll = 0, count = 0, correct = 0, ent = 0;
  try {
    for (const { batch: ex } of inOrder(examples, batchSize)) {
      tidy(() =>
        noGrad(() => {
          const b = collate(ex);
          const logits = m.forward(b.ids, b.B, b.T, { attentionMask: b.attentionMask });
          const lp = lossTokenLogprobs(logits, b.ids, b.lossMask, b.B, b.T);
          const d = lp.toArray();
          for (let i = 0; i < d.length; i++) if (b.lossMask[i]) nll -= d[i]!;
          const st = logitStats(logits, b.ids, b.lossMask, b.B, b.T);
          count += st.count;
          correct += st.accuracy * st.count;
          ent += st.entropy * st.count;
        }),
      );
    }
  } finally {
    m.training = wasTraining;
  }
  if (!count) throw new Error('sft eval: the eval data has no loss token');
  return { eval_loss: nll / count, eval_mean_token_accuracy: correct / count, eval_entropy: ent / count, eval_num_tokens: count };
}

/** Options of the run entries (runSFT, runReward, runDPO). */
export interface RunOptions {
  /** no progress output */
  quiet?: boolean;
  /** names the config in errors (e.g. the YAML file's path) */
  source?: string;
  /** called with every logged record (training and eval) */
  onLog?: (record: Record<string, number>) => void;
}

/** What a run returns: the final metrics and where the model went. */
export interface RunResult {
  output_dir: string;
  /** the last logged training metrics */
  train: Record<string, number>;
  /** final eval metrics (eval_ prefixed) when there is eval data */
  eval: Record<string, number> | null;
  global_step: number;
}

/**
 * `alignkit sft`: a plain config (YAML / flags: model_name_or_path, train_file / eval_file or dataset_path,
 * output_dir, LoRA options and every SFTConfig option) → loads model and tokenizer, trains, saves the final model
 * and tokenizer into output_dir (Hugging Face layout; a PEFT adapter with use_peft) and returns the metrics.
 */
export async function runSFT(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const source = opts.source ?? 'sft config';
  const { config: args, model: margs, data } = resolveRunConfig(config, source, resolveSFTConfig);
  const files = dataFiles(data, source);
  const { pretrained, tokenizer } = loadModelAndTokenizer(margs);
  const lora = applyLora(pretrained.model, margs, args.seed);
  const read = { skipInvalid: data.skip_invalid };
  const train = await loadSFTData(files.train, tokenizer, args, args.packing, read);
  const evalSet = files.eval ? await loadSFTData(files.eval, tokenizer, args, args.eval_packing ?? args.packing, read) : null;
  const trainer = new SFTTrainer({ args, model: pretrained, trainDataset: train, evalDataset: evalSet, padTokenId: padTokenId(tokenizer), extraState: lora?.tensors });
  const last = trainer.train({ quiet: opts.quiet, onLog: opts.onLog });
  const ev = evalSet ? trainer.evaluate() : null;
  if (ev) logMetrics(args.output_dir, { step: trainer.globalStep, ...ev });
  saveFinal(args.output_dir, pretrained, tokenizer, lora ? { config: lora.config, base: margs.model_name_or_path } : null);
  return { output_dir: args.output_dir, train: last, eval: ev, global_step: trainer.globalStep };
}

// Direct Preference Optimization (TRL's DPOTrainer): the policy learns from preference pairs against a frozen
// reference — a separate model, or the policy itself with its LoRA adapters switched off (no second copy). With
// precompute_ref_log_probs the reference log-probs of every pair are computed once, up front, without gradient,
// and the reference is not run again. Loss types sigmoid | ipo | hinge | robust (losses.ts, label_smoothing);
// IPO uses per-token average log-probs as TRL does. Metrics under TRL's names: rewards/chosen,
// rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, logits/chosen,
// logits/rejected; eval_ prefixed on eval data. `runDPO` is the command-line entry.
import { type PreferenceBatch, type PreferenceExample, type TruncationMode, collatePreference, loadPreferenceDataset, padTokenId } from '../data/index.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import { type Pretrained, loadPretrained } from '../io/pretrained.js';
import type { Transformer } from '../models/transformer.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { TRAINING_DEFAULTS, type TrainingArgs } from './args.js';
import { type DpoLossType, dpoLoss } from './losses.js';
import { meanLossLogit, sequenceLogps } from './sequence-logps.js';
import {
  ExampleBatches, applyLora, seedDropout, checkChoice, checkNumber, checkTrainingArgs, dataFiles, inOrder, loadModelAndTokenizer, logMetrics, resolveNullable, resolveRunConfig, saveFinal,
  type DataReadOptions,
  reportSkipped,
} from './setup.js';
import type { RunOptions, RunResult } from './sft.js';
import { type BatchSource, type LossResult, SupervisedTrainer } from './trainer.js';

export interface DPOConfig extends TrainingArgs {
  /** β: how far the policy may move from the reference (IPO's τ) */
  beta: number;
  loss_type: DpoLossType;
  /** ε: the assumed probability that a pair's label is flipped (cDPO for sigmoid, robust DPO) */
  label_smoothing: number;
  /** tokens of prompt + completion; null: no limit */
  max_length: number | null;
  /** tokens of the prompt; null: no limit */
  max_prompt_length: number | null;
  /** tokens of each completion; null: no limit */
  max_completion_length: number | null;
  /** which end of a too-long sequence survives */
  truncation_mode: TruncationMode;
  /** compute the reference log-probs of the whole dataset once, before training */
  precompute_ref_log_probs: boolean;
  /** batch size of that precomputation; null: per_device_train_batch_size (eval: per_device_eval_batch_size) */
  precompute_ref_batch_size: number | null;
  /** no reference: a uniform reference (log-probs 0) */
  reference_free: boolean;
  /** train without dropout (only LoRA adapters have dropout here) */
  disable_dropout: boolean;
  /** pad every batch to a multiple of this many tokens; null: to the longest row */
  pad_to_multiple_of: number | null;
}

/** TRL's DPOConfig defaults (learning_rate 1e-6, logging_steps 10, beta 0.1, max_length 1024, max_prompt_length 512, keep_end). */
export const DPO_DEFAULTS: DPOConfig = {
  ...TRAINING_DEFAULTS,
  learning_rate: 1e-6,
  logging_steps: 10,
  beta: 0.1,
  loss_type: 'sigmoid',
  label_smoothing: 0,
  max_length: 1024,
  max_prompt_length: 512,
  max_completion_length: null,
  truncation_mode: 'keep_end',
  precompute_ref_log_probs: false,
  precompute_ref_batch_size: null,
  reference_free: false,
  disable_dropout: true,
  pad_to_multiple_of: null,
};

const NULLABLE = ['max_length', 'max_prompt_length', 'max_completion_length', 'precompute_ref_batch_size', 'pad_to_multiple_of'] as const;

export function resolveDPOConfig(given: Record<string, unknown>, source = 'config'): DPOConfig {
  const c = resolveNullable(DPO_DEFAULTS, given, source, NULLABLE);
  const r = c as unknown as Record<string, unknown>;
  checkTrainingArgs(r, source);
  checkNumber(r, 'beta', { min: 0, exclusiveMin: true }, source);
  checkChoice(r, 'loss_type', ['sigmoid', 'ipo', 'hinge', 'robust'], source);
  checkNumber(r, 'label_smoothing', { min: 0, max: 0.5 }, source);
  if (c.loss_type === 'robust' && c.label_smoothing >= 0.5) throw new Error(`${source}: robust DPO needs label_smoothing < 0.5`);
  if (c.label_smoothing > 0 && (c.loss_type === 'ipo' || c.loss_type === 'hinge')) throw new Error(`${source}: label_smoothing applies to the sigmoid and robust losses, not ${c.loss_type}`);
  checkNumber(r, 'max_length', { integer: true, min: 1, nullable: true }, source);
  checkNumber(r, 'max_prompt_length', { integer: true, min: 0, nullable: true }, source);
  checkNumber(r, 'max_completion_length', { integer: true, min: 1, nullable: true }, source);
  checkChoice(r, 'truncation_mode', ['keep_end', 'keep_start'], source);
  checkNumber(r, 'precompute_ref_batch_size', { integer: true, min: 1, nullable: true }, source);
  checkNumber(r, 'pad_to_multiple_of', { integer: true, min: 1, nullable: true }, source);
  return c;
}

/** Reads and tokenises preference data with the config's truncation rules. */
export async function loadDPOData(source: string | readonly unknown[], tokenizer: Tokenizer, cfg: DPOConfig, read: DataReadOptions = {}): Promise<PreferenceExample[]> {
  const { examples, report } = await loadPreferenceDataset(source, tokenizer, {
    skipInvalid: read.skipInvalid,
    maxLength: cfg.max_length,
    maxPromptLength: cfg.max_prompt_length,
    maxCompletionLength: cfg.max_completion_length,
    truncationMode: cfg.truncation_mode,
  });
  reportSkipped(report);
  return examples;
}

/** A preference batch with the dataset indices of its pairs (for precomputed reference log-probs). */
export interface DPOBatch extends PreferenceBatch {
  indices: Int32Array;
  split: 'train' | 'eval';
}

/** Per-pair reference log-probs. */
export interface RefLogps {
  chosen: Float32Array;
  rejected: Float32Array;
}

/**
 * The DPO loss of a batch from its sequence log-probs, with TRL's metrics (means over the pairs):
 * rewards are β·(log π − log π_ref); accuracies count chosen reward > rejected reward.
 */
export function dpoLossFromLogps(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: ArrayLike<number>,
  refRejected: ArrayLike<number>,
  o: { beta: number; loss_type: DpoLossType; label_smoothing: number },
): LossResult {
  const n = policyChosen.shape[0]!;
  const { loss, chosenRewards, rejectedRewards } = dpoLoss(policyChosen, policyRejected, Tensor.from(refChosen, [n]), Tensor.from(refRejected, [n]), {
    beta: o.beta,
    lossType: o.loss_type,
    labelSmoothing: o.label_smoothing,
  });
  const c = chosenRewards.toArray(), r = rejectedRewards.toArray();
  const pc = policyChosen.toArray(), pr = policyRejected.toArray();
  let acc = 0, margin = 0, sc = 0, sr = 0, lc = 0, lr = 0;
  for (let i = 0; i < n; i++) {
    if (c[i]! > r[i]!) acc++;
    margin += c[i]! - r[i]!;
    sc += c[i]!;
    sr += r[i]!;
    lc += pc[i]!;
    lr += pr[i]!;
  }
  return {
    loss,
    metrics: {
      'rewards/chosen': sc / n,
      'rewards/rejected': sr / n,
      'rewards/accuracies': acc / n,
      'rewards/margins': margin / n,
      'logps/chosen': lc / n,
      'logps/rejected': lr / n,
    },
  };
}

export interface DPOTrainerOptions {
  args: DPOConfig;
  /** the policy (saved in checkpoints in the Hugging Face layout) */
  model: Pretrained;
  /**
   * the frozen reference: a separate model, 'adapters-off' (the policy with its LoRA adapters switched off), or
   * null with reference_free
   */
  ref: Transformer | 'adapters-off' | null;
  trainDataset: readonly PreferenceExample[];
  evalDataset?: readonly PreferenceExample[] | null;
  /** the id batches are padded with (padTokenId(tokenizer)) */
  padTokenId: number;
  /** trained tensors outside the model (LoRA adapters by PEFT name), saved in checkpoints */
  extraState?: Map<string, Tensor>;
}

export class DPOTrainer extends SupervisedTrainer<DPOBatch> {
  readonly model: Pretrained;
  readonly trainDataset: readonly PreferenceExample[];
  readonly evalDataset: readonly PreferenceExample[] | null;
  readonly padId: number;
  declare readonly args: DPOConfig;
  private ref: Transformer | 'adapters-off' | null;
  private pre: { train: RefLogps | null; eval: RefLogps | null } = { train: null, eval: null };

  constructor(o: DPOTrainerOptions) {
    const a = o.args;
    if (!o.trainDataset.length) throw new Error('DPOTrainer: the training dataset is empty');
    if (!a.reference_free) {
      if (o.ref === null) throw new Error("DPOTrainer: no reference model (pass a model, 'adapters-off' with a LoRA policy, or set reference_free)");
      if (o.ref === 'adapters-off' && o.model.model.adapters.size === 0) throw new Error("DPOTrainer: ref 'adapters-off' needs a policy with LoRA adapters");
      if (o.ref === o.model.model) throw new Error('DPOTrainer: the reference must not be the policy itself (load a second copy, or use LoRA and adapters-off)');
    }
    super(a, o.model, o.model.model.trainableParameters(), o.extraState ?? new Map(), 'dpo');
    this.model = o.model;
    this.trainDataset = o.trainDataset;
    this.evalDataset = o.evalDataset?.length ? o.evalDataset : null;
    this.padId = o.padTokenId;
    this.ref = a.reference_free ? null : o.ref;
    if (this.ref && this.ref !== 'adapters-off') {
      for (const p of this.ref.parameters()) p.requiresGrad = false;
      this.ref.training = false;
    }
    if (a.disable_dropout) this.model.model.training = false;
  }

  collate(examples: readonly PreferenceExample[], indices: Int32Array, split: 'train' | 'eval'): DPOBatch {
    const b = collatePreference(examples as PreferenceExample[], { padId: this.padId, layout: 'halves', padToMultipleOf: this.args.pad_to_multiple_of ?? undefined });
    return { ...b, indices, split };
  }

  protected trainBatches(): BatchSource<DPOBatch> {
    if (this.args.precompute_ref_log_probs) this.precomputeReferenceLogps();
    return new ExampleBatches(this.trainDataset, (ex, idx) => this.collate(ex, idx, 'train'), { batchSize: this.args.per_device_train_batch_size, seed: this.args.seed });
  }

  private get average(): boolean {
    return this.args.loss_type === 'ipo';
  }

  /** Per-sequence log-probs [2·pairs] of the batch's completions under a model (no gradient, no dropout). */
  private frozenLogps(model: Transformer, b: DPOBatch): Float32Array {
    return tidy(() =>
      noGrad(() => {
        const was = model.training;
        model.training = false;
        try {
          const logits = model.forward(b.ids, b.B, b.T, { attentionMask: b.attentionMask });
          return sequenceLogps(logits, b.ids, b.lossMask, b.B, b.T, this.average).toArray();
        } finally {
          model.training = was;
        }
      }),
    );
  }

  /** Reference log-probs of a batch's pairs: precomputed, zero (reference_free), or computed now without gradient. */
  referenceLogps(b: DPOBatch): RefLogps {
    const n = b.pairs;
    if (this.args.reference_free) return { chosen: new Float32Array(n), rejected: new Float32Array(n) };
    const pre = this.pre[b.split];
    if (pre) return { chosen: Float32Array.from(b.indices, (i) => pre.chosen[i]!), rejected: Float32Array.from(b.indices, (i) => pre.rejected[i]!) };
    const ref = this.ref;
    if (!ref) throw new Error('DPOTrainer: the reference was released after precomputation, but these pairs have no precomputed log-probs');
    const lp = ref === 'adapters-off' ? this.model.model.withoutAdapters(() => this.frozenLogps(this.model.model, b)) : this.frozenLogps(ref, b);
    return { chosen: lp.slice(0, n), rejected: lp.slice(n, 2 * n) };
  }

  /**
   * Computes the reference log-probs of the train (and eval) data once, without gradient (TRL's
   * precompute_ref_log_probs); later batches read them by dataset index.
   */
  precomputeReferenceLogps(): void {
    if (this.args.reference_free) return;
    const sets = [['train', this.trainDataset, this.args.per_device_train_batch_size], ['eval', this.evalDataset, this.args.per_device_eval_batch_size]] as const;
    for (const [split, data, bs] of sets) {
      if (!data || this.pre[split]) continue;
      const out: RefLogps = { chosen: new Float32Array(data.length), rejected: new Float32Array(data.length) };
      for (const { batch, indices } of inOrder(data, this.args.precompute_ref_batch_size ?? bs)) {
        const r = this.referenceLogps(this.collate(batch, indices, split));
        indices.forEach((i, k) => {
          out.chosen[i] = r.chosen[k]!;
          out.rejected[i] = r.rejected[k]!;
        });
      }
      this.pre[split] = out;
    }
  }

  /** Drops the reference model (after precomputation it is not needed). */
  releaseReference(): void {
    if (!this.args.reference_free && (!this.pre.train || (this.evalDataset && !this.pre.eval))) throw new Error('DPOTrainer: precompute the reference log-probs before releasing the reference');
    this.ref = null;
  }

  /** Policy log-probs and the loss of a batch (policy forward with the tape on). */
  override computeLoss(b: DPOBatch): LossResult {
    seedDropout(this.model.model, this.rng.seed());
    return this.batchLoss(b);
  }

  /** The loss and metrics of a batch under the current dropout seed. */
  batchLoss(b: DPOBatch): LossResult {
    const m = this.model.model;
    const ref = this.referenceLogps(b);
    const n = b.pairs;
    const logits = m.forward(b.ids, b.B, b.T, { attentionMask: b.attentionMask });
    const lp = sequenceLogps(logits, b.ids, b.lossMask, b.B, b.T, this.average);
    const res = dpoLossFromLogps(lp.slice(0, 0, n), lp.slice(0, n, 2 * n), ref.chosen, ref.rejected, this.args);
    res.metrics['logits/chosen'] = meanLossLogit(logits, b.lossMask, b.B, b.T, 0, n);
    res.metrics['logits/rejected'] = meanLossLogit(logits, b.lossMask, b.B, b.T, n, 2 * n);
    return res;
  }

  /** The same metrics (and eval_loss) over the eval set, pair-weighted, eval_ prefixed. */
  override evaluate(): Record<string, number> {
    if (!this.evalDataset) return {};
    if (this.args.precompute_ref_log_probs) this.precomputeReferenceLogps();
    const m = this.model.model;
    const was = m.training;
    m.training = false;
    const sums: Record<string, number> = {};
    let pairs = 0;
    try {
      for (const { batch, indices } of inOrder(this.evalDataset, this.args.per_device_eval_batch_size)) {
        tidy(() =>
          noGrad(() => {
            const r = this.batchLoss(this.collate(batch, indices, 'eval'));
            const n = batch.length;
            sums.loss = (sums.loss ?? 0) + r.loss.item() * n;
            for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v * n;
            pairs += n;
          }),
        );
      }
    } finally {
      m.training = was;
    }
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(sums)) out[`eval_${k}`] = v / pairs;
    return out;
  }
}

/** Extra run options of `alignkit dpo` besides DPOConfig and the model / data options. */
export interface DPORunArgs {
  /** a separate frozen reference model directory; default: the policy with LoRA adapters off (use_peft), else a second copy of model_name_or_path */
  ref_model_name_or_path: string | null;
}

/**
 * `alignkit dpo`: a plain config (model_name_or_path, ref_model_name_or_path, train_file / eval_file or
 * dataset_path, output_dir, LoRA options, every DPOConfig option) → loads policy, reference and tokenizer,
 * trains, and saves the final policy (a PEFT adapter with use_peft) and the tokenizer into output_dir.
 */
export async function runDPO(config: Record<string, unknown>, opts: RunOptions = {}): Promise<RunResult> {
  const source = opts.source ?? 'dpo config';
  const { config: args, model: margs, data, extra } = resolveRunConfig<DPOConfig, DPORunArgs>(config, source, resolveDPOConfig, { ref_model_name_or_path: null });
  if (extra.ref_model_name_or_path !== null && typeof extra.ref_model_name_or_path !== 'string') throw new Error(`${source}: ref_model_name_or_path must be a folder path`);
  const files = dataFiles(data, source);
  const { pretrained, tokenizer } = loadModelAndTokenizer(margs);
  const lora = applyLora(pretrained.model, margs, args.seed);
  let ref: Transformer | 'adapters-off' | null = null;
  if (!args.reference_free) {
    if (extra.ref_model_name_or_path) ref = loadPretrained(extra.ref_model_name_or_path).model;
    else if (lora) ref = 'adapters-off';
    else ref = loadPretrained(margs.model_name_or_path).model; // a frozen copy of the initial policy
  }
  const read = { skipInvalid: data.skip_invalid };
  const train = await loadDPOData(files.train, tokenizer, args, read);
  const evalSet = files.eval ? await loadDPOData(files.eval, tokenizer, args, read) : null;
  const trainer = new DPOTrainer({ args, model: pretrained, ref, trainDataset: train, evalDataset: evalSet, padTokenId: padTokenId(tokenizer), extraState: lora?.tensors });
  if (args.precompute_ref_log_probs && ref && ref !== 'adapters-off') {
    trainer.precomputeReferenceLogps();
    trainer.releaseReference();
    ref.dispose();
  }
  const last = trainer.train({ quiet: opts.quiet, onLog: opts.onLog });
  const ev = evalSet ? trainer.evaluate() : null;
  if (ev) logMetrics(args.output_dir, { step: trainer.globalStep, ...ev });
  saveFinal(args.output_dir, pretrained, tokenizer, lora ? { config: lora.config, base: margs.model_name_or_path } : null);
  return { output_dir: args.output_dir, train: last, eval: ev, global_step: trainer.globalStep };
}

// Direct Preference Optimization (TRL's DPOTrainer): the policy learns from preference pairs against a frozen
// reference — a separate model, the policy itself with its LoRA adapters switched off (no second copy), or by
// default a frozen copy of the initial policy. With precompute_ref_log_probs the reference log-probs of every
// pair are computed once, before training, without gradient, and the reference is released. Loss types
// sigmoid | ipo | hinge | robust (losses.ts, label_smoothing; a `soft_label` column p gives per-pair smoothing
// ε = 1 − p); IPO uses per-token average log-probs as TRL does. Metrics under TRL's names: rewards/chosen,
// rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, logits/chosen,
// logits/rejected; eval_ prefixed on eval data.
//
//   const t = new DPOTrainer({ model: 'runs/sft', args: { beta: 0.1, output_dir: 'runs/dpo' }, trainDataset: 'prefs.jsonl' });
//   await t.train(); t.saveModel(); t.dispose();
import { type DataSource, type PreferenceBatch, type PreferenceExample, collatePreference, loadPreferenceDataset } from '../data/index.js';
import { Tensor, noGrad, tidy } from '../engine/tensor.js';
import type { NamedInput } from '../io/paths.js';
import type { Pretrained } from '../io/pretrained.js';
import type { Transformer } from '../models/transformer.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { NOT_IMPLEMENTED, TRAINING_FIELDS } from './args.js';
import { inOrder } from './batches.js';
import { type DpoLossType, dpoLoss } from './losses.js';
import { resolveModel } from './model-args.js';
import { readOptionalColumns } from './reward.js';
import { reportSkipped } from './report.js';
import { frozenCopy } from './frozen-copy.js';
import { lossTokenLogprobs, meanLossLogit, sequenceLogps } from './sequence-logps.js';
import { type LossResult, SupervisedTrainer, type SupervisedInputs } from './supervised.js';

/** DPOConfig: TRL's options and defaults (learning_rate 1e-6, beta 0.1, max_length 1024, max_prompt_length 512). */
export const DPO_FIELDS = {
  ...TRAINING_FIELDS,
  learning_rate: f.number(1e-6, 'peak learning rate of AdamW', { min: 0 }),
  beta: f.number(0.1, 'β: how far the policy may move from the reference (IPO’s τ)', { min: 0, exclusiveMin: true }),
  loss_type: f.choice(['sigmoid', 'ipo', 'hinge', 'robust'], 'sigmoid', 'the preference loss'),
  label_smoothing: f.number(0, 'ε: the assumed probability that a label is flipped (cDPO for sigmoid, robust DPO)', { min: 0, max: 0.5 }),
  max_length: f.integer(1024, 'tokens of prompt + completion; null: no limit', { min: 1, nullable: true }),
  max_prompt_length: f.integer(512, 'tokens of the prompt; null: no limit', { min: 0, nullable: true }),
  max_completion_length: f.integer(null, 'tokens of each completion; null: no limit', { min: 1, nullable: true }),
  truncation_mode: f.choice(['keep_end', 'keep_start'], 'keep_end', 'which end of a too-long prompt survives'),
  precompute_ref_log_probs: f.boolean(false, 'compute the reference log-probs of the whole dataset once, before training, then release the reference'),
  precompute_ref_batch_size: f.integer(null, 'batch size of that precomputation; null: the train / eval batch size', { min: 1, nullable: true }),
  reference_free: f.boolean(false, 'no reference: a uniform reference (log-probs 0)'),
  disable_dropout: f.boolean(true, 'train without dropout (only LoRA adapters have dropout here)'),
  pad_to_multiple_of: f.integer(null, 'pad every batch to a multiple of this many tokens; null: to the longest row', { min: 1, nullable: true }),
};

export const DPOConfig = defineConfig(
  'DPOConfig',
  DPO_FIELDS,
  (c, fail) => {
    if (c.loss_type === 'robust' && c.label_smoothing >= 0.5) fail('label_smoothing', 'robust DPO needs label_smoothing < 0.5');
    if (c.label_smoothing > 0 && (c.loss_type === 'ipo' || c.loss_type === 'hinge')) fail('label_smoothing', `applies to the sigmoid and robust losses, not ${c.loss_type}`);
  },
  NOT_IMPLEMENTED,
);
export type DPOConfig = ConfigOf<typeof DPOConfig>;

/** A preference pair; `softLabel` (the dataset's soft_label column) is the probability that chosen is better. */
export interface DPOExample extends PreferenceExample {
  softLabel?: number;
}

/** Reads and tokenises preference data with the config's truncation rules (and the optional soft_label column). */
export async function loadDPOData(source: DataSource, tokenizer: Tokenizer, cfg: DPOConfig, skipInvalid = false): Promise<DPOExample[]> {
  const { examples, report } = await loadPreferenceDataset(source, tokenizer, {
    skipInvalid,
    maxLength: cfg.max_length,
    maxPromptLength: cfg.max_prompt_length,
    maxCompletionLength: cfg.max_completion_length,
    truncationMode: cfg.truncation_mode,
  });
  reportSkipped(report);
  const soft = (await readOptionalColumns(source, ['soft_label'])).get('soft_label')!;
  if (!soft.size) return examples;
  return examples.map((e) => ({ ...e, softLabel: soft.get(`${e.source.file}:${e.source.line}`)! }));
}

/** A preference batch with the dataset indices of its pairs (for precomputed reference log-probs). */
interface DPOBatch extends PreferenceBatch {
  indices: Int32Array;
  split: 'train' | 'eval';
  /** per-pair label smoothing 1 − soft_label, or null (the config's label_smoothing) */
  smoothing: Float32Array | null;
}

/** Per-pair reference log-probs. */
interface RefLogps {
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
  o: { beta: number; loss_type: DpoLossType; label_smoothing: number | ArrayLike<number> },
): LossResult {
  const n = policyChosen.shape[0]!;
  const { loss, chosenRewards, rejectedRewards } = dpoLoss(policyChosen, policyRejected, Tensor.from(refChosen, [n]), Tensor.from(refRejected, [n]), {
    beta: o.beta,
    lossType: o.loss_type,
    labelSmoothing: o.label_smoothing,
  });
  const c = chosenRewards.toArray(),
    r = rejectedRewards.toArray();
  const pc = policyChosen.toArray(),
    pr = policyRejected.toArray();
  let acc = 0,
    margin = 0,
    sc = 0,
    sr = 0,
    lc = 0,
    lr = 0;
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

export interface DPOTrainerInputs extends SupervisedInputs<DPOConfig, DPOExample> {
  /**
   * The frozen reference (TRL's ref_model): a folder, a loaded model, or omitted — then the policy with its LoRA
   * adapters off when it has them (peftConfig), else a frozen copy of the initial policy.
   */
  refModel?: Pretrained | Transformer | string | null;
}

export class DPOTrainer extends SupervisedTrainer<typeof DPO_FIELDS, DPOExample, DPOBatch> {
  /** the reference: a model, 'adapters-off', or null (reference_free, or released after precomputation) */
  private ref: Transformer | 'adapters-off' | null;
  private ownsRef = false;
  private readonly refDir: string | null = null;
  private pre: { train: RefLogps | null; eval: RefLogps | null } = { train: null, eval: null };

  constructor(inputs: DPOTrainerInputs) {
    super(DPOConfig, inputs, 'dpo');
    const a = this.args;
    const r = inputs.refModel;
    if (a.reference_free) this.ref = null;
    else if (r === undefined || r === null) {
      if (this.model.model.adapters.size) this.ref = 'adapters-off';
      else {
        this.ref = frozenCopy(this.model.model);
        this.ownsRef = true;
      }
    } else if (typeof r === 'string' || !('forward' in r)) {
      const m = resolveModel(r as Pretrained | string, 'dpo: refModel');
      this.ref = m.pretrained.model;
      this.ownsRef = m.owned;
      this.refDir = m.dir;
    } else this.ref = r as Transformer;
    if (this.ref === this.model.model) throw new Error('dpo: the reference must not be the policy itself (omit refModel for a frozen copy, or use LoRA)');
    if (this.ref && this.ref !== 'adapters-off') {
      if (this.ref.config.vocabSize !== this.model.model.config.vocabSize)
        throw new Error(`dpo: the reference's vocabulary (${this.ref.config.vocabSize}) differs from the policy's (${this.model.model.config.vocabSize})`);
      for (const p of this.ref.parameters()) p.requiresGrad = false;
      this.ref.training = false;
    }
    if (a.disable_dropout) this.model.model.training = false;
  }

  protected override loadExamples(source: DataSource, _split: 'train' | 'eval', tokenizer: Tokenizer): Promise<DPOExample[]> {
    return loadDPOData(source, tokenizer, this.args, this.skipInvalid);
  }

  override collate(examples: readonly DPOExample[], indices: Int32Array, split: 'train' | 'eval'): DPOBatch {
    const b = collatePreference(examples as PreferenceExample[], { padId: this.padTokenId, layout: 'halves', padToMultipleOf: this.args.pad_to_multiple_of ?? undefined });
    const soft = examples.filter((e) => e.softLabel !== undefined).length;
    if (soft !== 0 && soft !== examples.length) throw new Error('dpo: some pairs have a soft_label and some do not');
    return { ...b, indices, split, smoothing: soft ? Float32Array.from(examples, (e) => 1 - e.softLabel!) : null };
  }

  protected override inputs(): NamedInput[] {
    return [...super.inputs(), ...(this.refDir ? [{ what: 'the reference model folder', path: this.refDir }] : [])];
  }

  protected override async afterPrepare(): Promise<void> {
    if (this.args.precompute_ref_log_probs && !this.args.reference_free) {
      this.precomputeReferenceLogps();
      this.releaseReference();
    }
  }

  private get average(): boolean {
    return this.args.loss_type === 'ipo';
  }

  /** Per-sequence log-probs [2·pairs] of the batch's completions under a model (no gradient, no dropout). */
  private frozenLogps(model: Transformer, b: DPOBatch): Float32Array {
    return tidy(() =>
      noGrad(() =>
        model.evalMode(() => {
          const sel = lossTokenLogprobs(model, b.ids, b.lossMask, b.B, b.T, { attentionMask: b.attentionMask });
          return sequenceLogps(sel.logprobs, b.lossMask, b.B, b.T, this.average).toArray();
        }),
      ),
    );
  }

  /** Reference log-probs of a batch's pairs: precomputed, zero (reference_free), or computed now without gradient. */
  referenceLogps(b: DPOBatch): RefLogps {
    const n = b.pairs;
    if (this.args.reference_free) return { chosen: new Float32Array(n), rejected: new Float32Array(n) };
    const pre = this.pre[b.split];
    if (pre) return { chosen: Float32Array.from(b.indices, (i) => pre.chosen[i]!), rejected: Float32Array.from(b.indices, (i) => pre.rejected[i]!) };
    const ref = this.ref;
    if (!ref) throw new Error('dpo: the reference was released after precomputation, but these pairs have no precomputed log-probs');
    const lp = ref === 'adapters-off' ? this.model.model.withoutAdapters(() => this.frozenLogps(this.model.model, b)) : this.frozenLogps(ref, b);
    return { chosen: lp.slice(0, n), rejected: lp.slice(n, 2 * n) };
  }

  /** Computes the reference log-probs of the train (and eval) data once, without gradient (TRL's precompute_ref_log_probs). */
  private precomputeReferenceLogps(): void {
    const sets = [
      ['train', this.trainExamples, this.args.per_device_train_batch_size],
      ['eval', this.evalExamples, this.args.per_device_eval_batch_size],
    ] as const;
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

  /** Drops the reference model after precomputation (a separate copy is freed at once). */
  private releaseReference(): void {
    if (this.ownsRef && this.ref && this.ref !== 'adapters-off') this.ref.dispose();
    this.ref = null;
    this.ownsRef = false;
  }

  /** Policy log-probs and the loss of a batch (policy forward with the tape on). */
  override computeLoss(b: DPOBatch): LossResult {
    this.model.model.dropoutSeed = this.rng.seed();
    return this.batchLoss(b);
  }

  /** The loss and metrics of a batch under the current dropout seed. */
  batchLoss(b: DPOBatch): LossResult {
    const m = this.model.model;
    const ref = this.referenceLogps(b);
    const n = b.pairs;
    // the logits are read (metrics below) before backward only, so their gradient may take their memory
    const sel = lossTokenLogprobs(m, b.ids, b.lossMask, b.B, b.T, { attentionMask: b.attentionMask }, { reuseLogits: true });
    const lp = sequenceLogps(sel.logprobs, b.lossMask, b.B, b.T, this.average);
    const res = dpoLossFromLogps(lp.slice(0, 0, n), lp.slice(0, n, 2 * n), ref.chosen, ref.rejected, { ...this.args, label_smoothing: b.smoothing ?? this.args.label_smoothing });
    res.metrics['logits/chosen'] = meanLossLogit(sel, b.T, 0, n);
    res.metrics['logits/rejected'] = meanLossLogit(sel, b.T, n, 2 * n);
    return res;
  }

  /** The same metrics (and eval_loss) over the eval set, pair-weighted, eval_ prefixed. */
  protected override evaluateExamples(examples: readonly DPOExample[]): Record<string, number> {
    if (this.args.precompute_ref_log_probs && !this.args.reference_free && !this.pre.eval && this.ref) this.precomputeReferenceLogps();
    const sums: Record<string, number> = {};
    let pairs = 0;
    for (const { batch, indices } of inOrder(examples, this.args.per_device_eval_batch_size)) {
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
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(sums)) out[`eval_${k}`] = v / pairs;
    return out;
  }

  override dispose(): void {
    this.releaseReference();
    super.dispose();
  }
}

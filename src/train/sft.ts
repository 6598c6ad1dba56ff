// Supervised fine-tuning (TRL's SFTTrainer): next-token cross-entropy on the completion of prompt–completion
// data, on the assistant turns of conversations (assistant_only_loss), or on the whole sequence of language-
// modelling data; optional packing. Metrics under TRL's names (loss, num_tokens, mean_token_accuracy, entropy)
// and an eval giving eval_loss, eval_mean_token_accuracy, eval_entropy.
//
//   const trainer = new SFTTrainer({ model: 'runs/base', args: { output_dir: 'runs/sft', max_steps: 100 }, trainDataset: 'sft.jsonl' });
//   await trainer.train(); trainer.saveModel(); trainer.dispose();
import { type Batch, type DataSource, type SequenceExample, collateSequences, loadSftDataset, packSequences } from '../data/index.js';
import { div, neg, sum } from '../engine/ops/elementwise.js';
import { noGrad, tidy } from '../engine/tensor.js';
import type { Pretrained } from '../io/pretrained.js';
import { type ConfigOf, defineConfig, f } from '../options/fields.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { NOT_IMPLEMENTED, TRAINING_FIELDS } from './args.js';
import { inOrder } from './batches.js';
import { reportSkipped } from './report.js';
import { logitStats, lossTokenLogprobs } from './sequence-logps.js';
import { type LossResult, SupervisedTrainer, type SupervisedInputs } from './supervised.js';

/** SFTConfig: TRL's options and defaults (learning_rate 2e-5, max_length 1024) over TrainingArguments'. */
export const SFT_FIELDS = {
  ...TRAINING_FIELDS,
  learning_rate: f.number(2e-5, 'peak learning rate of AdamW', { min: 0 }),
  dataset_text_field: f.string('text', 'the text column of language-modelling data'),
  max_length: f.integer(1024, 'tokens per sequence (longer ones keep their start); with packing, the packed row length; null: no limit', { min: 1, nullable: true }),
  packing: f.boolean(false, "concatenate the examples and cut the stream into rows of max_length tokens (TRL's 'wrapped' packing)"),
  eval_packing: f.boolean(null, 'pack the eval data too; null: as packing', { nullable: true }),
  completion_only_loss: f.boolean(null, 'loss on the completion only (prompt–completion data); null: true', { nullable: true }),
  assistant_only_loss: f.boolean(false, 'loss on the assistant turns only (the chat template must mark them with {% generation %})'),
  pad_to_multiple_of: f.integer(null, 'pad every batch to a multiple of this many tokens; null: to the longest row', { min: 1, nullable: true }),
};

export const SFTConfig = defineConfig(
  'SFTConfig',
  SFT_FIELDS,
  (c, fail) => {
    if (!c.dataset_text_field) fail('dataset_text_field', 'must name a column');
    if ((c.packing || c.eval_packing) && c.max_length === null) fail('max_length', 'packing needs max_length (the length of the packed rows)');
  },
  NOT_IMPLEMENTED,
);
export type SFTConfig = ConfigOf<typeof SFTConfig>;

/**
 * Reads and tokenises SFT data (language modelling or prompt–completion, standard or conversational) with the
 * config's rules; packs it when `pack`.
 */
export async function loadSFTData(source: DataSource, tokenizer: Tokenizer, cfg: SFTConfig, pack = cfg.packing, skipInvalid = false): Promise<SequenceExample[]> {
  const { examples, report } = await loadSftDataset(source, tokenizer, {
    skipInvalid,
    textField: cfg.dataset_text_field,
    maxLength: pack ? null : cfg.max_length,
    assistantMasks: cfg.assistant_only_loss,
  });
  reportSkipped(report);
  return pack ? packSequences(examples, cfg.max_length!) : examples;
}

export type SFTTrainerInputs = SupervisedInputs<SFTConfig, SequenceExample>;

export class SFTTrainer extends SupervisedTrainer<typeof SFT_FIELDS, SequenceExample, Batch> {
  constructor(inputs: SFTTrainerInputs) {
    super(SFTConfig, inputs, 'sft');
  }

  protected override loadExamples(source: DataSource, split: 'train' | 'eval', tokenizer: Tokenizer): Promise<SequenceExample[]> {
    const a = this.args;
    return loadSFTData(source, tokenizer, a, split === 'train' ? a.packing : (a.eval_packing ?? a.packing), this.skipInvalid);
  }

  /** A right-padded batch with the loss mask the config asks for. */
  override collate(examples: readonly SequenceExample[]): Batch {
    return collateSequences(examples, {
      padId: this.padTokenId,
      padToMultipleOf: this.args.pad_to_multiple_of ?? undefined,
      completionOnlyLoss: this.args.completion_only_loss ?? true,
      assistantOnlyLoss: this.args.assistant_only_loss,
    });
  }

  /** Mean negative log-likelihood of the batch's loss tokens, with TRL's SFT metrics. */
  override computeLoss(batch: Batch): LossResult {
    const { ids, B, T, lossMask } = batch;
    const m = this.model.model;
    m.dropoutSeed = this.rng.seed();
    const sel = lossTokenLogprobs(m, ids, lossMask, B, T, { attentionMask: batch.attentionMask });
    const lp = sel.logprobs;
    let n = 0;
    for (let i = 0; i < lossMask.length; i++) n += lossMask[i]!;
    if (n === 0) throw new Error('sft: a batch has no loss token (every completion was masked or truncated away)');
    const loss = div(neg(sum(lp)), n);
    const st = logitStats(sel, ids);
    let tokens = 0;
    for (let i = 0; i < batch.attentionMask.length; i++) tokens += batch.attentionMask[i]!;
    return { loss, metrics: { num_tokens: tokens, mean_token_accuracy: st.accuracy, entropy: st.entropy } };
  }

  /** eval_loss (token-weighted over the whole eval set), eval_mean_token_accuracy, eval_entropy. */
  protected override evaluateExamples(examples: readonly SequenceExample[]): Record<string, number> {
    return evaluateSequences(this.model, examples, (ex) => this.collate(ex), this.args.per_device_eval_batch_size);
  }
}

/** Token-weighted NLL, accuracy and entropy of a model on sequences (no gradient, dropout off). */
export function evaluateSequences(p: Pretrained, examples: readonly SequenceExample[], collate: (ex: SequenceExample[]) => Batch, batchSize: number): Record<string, number> {
  const m = p.model;
  let nll = 0,
    count = 0,
    correct = 0,
    ent = 0;
  m.evalMode(() => {
    for (const { batch: ex } of inOrder(examples, batchSize)) {
      tidy(() =>
        noGrad(() => {
          const b = collate(ex);
          const sel = lossTokenLogprobs(m, b.ids, b.lossMask, b.B, b.T, { attentionMask: b.attentionMask });
          const d = sel.logprobs.toArray();
          for (let i = 0; i < d.length; i++) if (b.lossMask[i]) nll -= d[i]!;
          const st = logitStats(sel, b.ids);
          count += st.count;
          correct += st.accuracy * st.count;
          ent += st.entropy * st.count;
        }),
      );
    }
  });
  if (!count) throw new Error('sft eval: the eval data has no loss token');
  return { eval_loss: nll / count, eval_mean_token_accuracy: correct / count, eval_entropy: ent / count, eval_num_tokens: count };
}

// The supervised training loop shared by SFT, reward modelling and DPO: gradient accumulation, clipping,
// AdamW with a schedule, metrics under TRL's names, checkpoints every save_steps, exact resume, and a stop
// with a diagnostic (keeping the last good checkpoint) when the loss or a gradient stops being finite.
import { join } from 'node:path';
import { scale } from '../engine/ops/elementwise.js';
import { AdamW, clipGradNorm, lrMultiplier } from '../engine/optim.js';
import { Random } from '../engine/random.js';
import { type Tensor, tidy } from '../engine/tensor.js';
import type { Pretrained } from '../io/pretrained.js';
import type { TrainingArgs } from './args.js';
import { listCheckpoints, loadTrainingCheckpoint, pruneCheckpoints, saveTrainingCheckpoint, type TrainerState } from './checkpoint.js';
import { MetricsLog } from './metrics-log.js';

/** Batches in a resumable order: next() gives null at the end of an epoch (the next call starts the next one). */
export interface BatchSource<B> {
  next(): B | null;
  /** batches in one epoch */
  readonly length: number;
  getState(): unknown;
  setState(state: unknown): void;
}

/** What one micro-batch contributes: the loss to differentiate and metrics (already plain numbers). */
export interface LossResult {
  loss: Tensor;
  metrics: Record<string, number>;
}

export class TrainingDivergedError extends Error {}

/** Adds to a divergence error where the last good checkpoint is (nothing is saved after a divergence). */
export function explainDivergence(e: unknown, outputDir: string): unknown {
  if (e instanceof TrainingDivergedError) {
    const good = listCheckpoints(outputDir).pop();
    e.message += `; stopped without saving. Last good checkpoint: ${good ? good.path : 'none'}. Try a lower learning_rate or max_grad_norm.`;
  }
  return e;
}

export abstract class SupervisedTrainer<B> {
  readonly rng: Random;
  readonly optimizer: AdamW;
  globalStep = 0;
  epoch = 0;
  readonly history: Record<string, number>[] = [];

  constructor(
    readonly args: TrainingArgs,
    /** the model saved in checkpoints (Hugging Face layout) */
    readonly pretrained: Pretrained,
    /** the tensors the optimiser updates */
    readonly trainable: Tensor[],
    /** trained tensors outside the Hugging Face model (value heads, adapters), saved by name */
    readonly extraState: Map<string, Tensor> = new Map(),
    readonly name = 'train',
  ) {
    this.rng = new Random(args.seed);
    this.optimizer = new AdamW(trainable, {
      lr: args.learning_rate,
      betas: [args.adam_beta1, args.adam_beta2],
      eps: args.adam_epsilon,
      weightDecay: args.weight_decay,
    });
  }

  /** The loss of one micro-batch (called inside a tidy scope, with the tape on). */
  protected abstract computeLoss(batch: B): LossResult;
  protected abstract trainBatches(): BatchSource<B>;
  /** Metrics on held-out data under TRL's names with an `eval_` prefix (optional). */
  evaluate?(): Record<string, number>;

  totalSteps(source: BatchSource<B>): number {
    if (this.args.max_steps > 0) return this.args.max_steps;
    return Math.ceil(source.length / this.args.gradient_accumulation_steps) * this.args.num_train_epochs;
  }

  private warmup(total: number): number {
    return this.args.warmup_steps > 0 ? this.args.warmup_steps : Math.ceil(this.args.warmup_ratio * total);
  }

  private modelParams(): Map<string, Tensor> {
    const m = new Map(this.pretrained.model.params);
    if (this.pretrained.score) m.set('score.weight', this.pretrained.score);
    return m;
  }

  /** Restores from args.resume_from_checkpoint (true = newest in output_dir). Returns the path or null. */
  resume(source: BatchSource<B>): string | null {
    const r = this.args.resume_from_checkpoint;
    if (r === false || r === '') return null;
    const path = typeof r === 'string' ? r : listCheckpoints(this.args.output_dir).pop()?.path;
    if (!path) return null;
    const st = loadTrainingCheckpoint(path, this.modelParams(), this.extraState, this.optimizer);
    this.globalStep = st.global_step;
    this.epoch = st.epoch;
    source.setState(st.data_state);
    this.rng.setState(st.rng_state);
    return path;
  }

  saveCheckpoint(source: BatchSource<B>): string {
    const state: TrainerState = { global_step: this.globalStep, epoch: this.epoch, data_state: source.getState(), rng_state: this.rng.getState() };
    const p = saveTrainingCheckpoint(this.args.output_dir, state, this.pretrained, this.extraState, this.optimizer);
    pruneCheckpoints(this.args.output_dir, this.args.save_total_limit);
    return p;
  }

  /** Trains to the end (or from a checkpoint to the end); returns the last logged metrics. */
  train(opts: { quiet?: boolean; onLog?: (m: Record<string, number>) => void } = {}): Record<string, number> {
    const a = this.args;
    const source = this.trainBatches();
    const resumedFrom = this.resume(source);
    const total = this.totalSteps(source);
    const sched = { kind: a.lr_scheduler_type, warmupSteps: this.warmup(total), totalSteps: total } as const;
    const log = new MetricsLog(join(a.output_dir, 'metrics.jsonl'), total, this.name, opts.quiet || a.disable_tqdm, !a.disable_tqdm && process.stderr.isTTY === true);
    if (resumedFrom && !opts.quiet) process.stderr.write(`${this.name}: resumed from ${resumedFrom} at step ${this.globalStep}\n`);
    let window: Record<string, number[]> = {};
    let last: Record<string, number> = {};
    const t0 = performance.now();
    let tokensSeen = 0;
    try {
      while (this.globalStep < total) {
        // one optimiser step over gradient_accumulation_steps micro-batches
        const micro: Record<string, number>[] = [];
        for (let k = 0; k < a.gradient_accumulation_steps; k++) {
          let batch = source.next();
          if (batch === null) {
            this.epoch++;
            batch = source.next();
            if (batch === null) throw new Error(`${this.name}: the training data is empty`);
          }
          const m = tidy(() => {
            const { loss, metrics } = this.computeLoss(batch!);
            const value = loss.item();
            if (!Number.isFinite(value)) throw new TrainingDivergedError(`${this.name}: loss is ${value} at step ${this.globalStep + 1}`);
            (a.gradient_accumulation_steps === 1 ? loss : scale(loss, 1 / a.gradient_accumulation_steps)).backward();
            return { loss: value, ...metrics } as Record<string, number>;
          });
          tokensSeen += m.num_tokens ?? 0;
          micro.push(m);
        }
        const gradNorm = clipGradNorm(this.trainable, a.max_grad_norm > 0 ? a.max_grad_norm : Infinity);
        if (!Number.isFinite(gradNorm)) throw new TrainingDivergedError(`${this.name}: gradient norm is ${gradNorm} at step ${this.globalStep + 1}`);
        const lr = a.learning_rate * lrMultiplier(this.globalStep, sched);
        this.optimizer.stepOnce(lr);
        this.optimizer.zeroGrad();
        this.globalStep++;
        const stepMetrics: Record<string, number> = { grad_norm: gradNorm, learning_rate: lr };
        for (const key of Object.keys(micro[0]!)) stepMetrics[key] = micro.reduce((s, m) => s + (m[key] ?? 0), 0) / micro.length;
        for (const [k, v] of Object.entries(stepMetrics)) (window[k] ??= []).push(v);
        log.progress(this.globalStep, { loss: stepMetrics.loss! });
        if (this.globalStep % a.logging_steps === 0 || this.globalStep === total) {
          last = { step: this.globalStep, epoch: this.epoch + progressInEpoch(source), ...meanOf(window) };
          if (tokensSeen) last.num_tokens = tokensSeen;
          last.train_runtime = (performance.now() - t0) / 1000;
          window = {};
          log.write(last);
          this.history.push(last);
          opts.onLog?.(last);
        }
        if (a.eval_strategy === 'steps' && this.evaluate && this.globalStep % a.eval_steps === 0) {
          const ev = { step: this.globalStep, ...this.evaluate() };
          log.write(ev);
          this.history.push(ev);
          opts.onLog?.(ev);
        }
        if (a.save_steps > 0 && this.globalStep % a.save_steps === 0) this.saveCheckpoint(source);
      }
    } catch (e) {
      throw explainDivergence(e, a.output_dir);
    } finally {
      log.close();
    }
    return last;
  }
}

function progressInEpoch<B>(s: BatchSource<B>): number {
  const st = s.getState() as { index?: number } | null;
  return st && typeof st.index === 'number' && s.length > 0 ? st.index / s.length : 0;
}

function meanOf(w: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(w)) out[k] = v.reduce((a, b) => a + b, 0) / v.length;
  return out;
}

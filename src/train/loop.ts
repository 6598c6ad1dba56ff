// The one training loop every trainer runs (SFT, reward, DPO, PPO, RLOO, GRPO): AdamW over the trainable
// tensors, warm-up and schedule, output_dir checks, exact resume (model, extra tensors, optimiser moments, RNG,
// data position, algorithm state; settings compared), a metrics record every logging_steps under TRL's names,
// evaluation every eval_steps and once at the end, checkpoints every save_steps and at the end (at most
// save_total_limit kept), progress with an ETA, a graceful stop on Ctrl-C that names the latest checkpoint, and
// a stop with a diagnostic when the loss or a gradient is not finite. A trainer supplies one `trainStep`: what
// one global step is (one optimiser step over accumulated micro-batches; one rollout and its PPO epochs).
import { join } from 'node:path';
import { type Precision, autocastAsync } from '../engine/autocast.js';
import { AdamW, clipGradNorm, lrMultiplier } from '../engine/optim.js';
import { Random } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';
import type { NamedInput } from '../io/paths.js';
import type { Pretrained } from '../io/pretrained.js';
import type { TrainingArgs } from './args.js';
import { listCheckpoints, loadTrainingCheckpoint, pruneCheckpoints, saveTrainingCheckpoint, type TrainerState } from './checkpoint.js';
import { MetricsLog } from './metrics-log.js';
import { prepareOutputDir, readTrainerState, settingsDiff, truncateMetrics } from './output-dir.js';

export type Metrics = Record<string, number>;

export class TrainingDivergedError extends Error {}

/** Thrown by train() after Ctrl-C (handleInterrupt): the run stopped cleanly after a step. */
export class TrainingInterruptedError extends Error {}

/** What train() returns (TRL's TrainOutput, plus the final evaluation). */
export interface TrainOutput {
  globalStep: number;
  /** the mean training loss over the run's logged records */
  trainingLoss: number;
  /** the last logged training record */
  metrics: Metrics;
  /** the final evaluation (eval_ prefixed), when there is eval data */
  eval: Metrics | null;
}

export interface TrainOptions {
  /** no progress output */
  quiet?: boolean;
  /** called with every logged record (training and eval) */
  onLog?: (record: Metrics) => void;
  /** stop cleanly after the current step on SIGINT and name the latest checkpoint (the CLI sets it) */
  handleInterrupt?: boolean;
}

/** Metrics reported as their latest value rather than the mean over the logging window. */
const LATEST = new Set(['learning_rate', 'lr', 'episode', 'eps', 'objective/kl_coef', 'num_tokens']);

export abstract class TrainerBase<A extends TrainingArgs> {
  readonly rng: Random;
  optimizer: AdamW | null = null;
  trainable: Tensor[] = [];
  globalStep = 0;
  /** every logged record of this process */
  readonly history: Metrics[] = [];
  /** real tokens seen (summed from each step's num_tokens, carried across resume) */
  protected numTokens = 0;
  private interrupted = false;

  constructor(
    readonly args: A,
    readonly name: string,
  ) {
    this.rng = new Random(args.seed);
  }

  // ---- what a trainer supplies
  /** Reads and tokenises the datasets (called once, before training or evaluation). */
  protected abstract prepare(): Promise<void>;
  /** Global steps in the whole run (after prepare). */
  protected abstract totalSteps(): number;
  /** One global step at learning rate `lr`; returns its metrics (already plain numbers). */
  protected abstract trainStep(lr: number): Promise<Metrics>;
  /** The epoch (fractional) reached, for the logs. */
  protected abstract epochProgress(): number;
  /** The data order's resumable position. */
  protected abstract dataState(): unknown;
  protected abstract restoreDataState(state: unknown): void;
  /** The model saved in checkpoints in the Hugging Face layout (null: only checkpointTensors). */
  protected abstract checkpointModel(): Pretrained | null;
  /** Trained tensors outside the Hugging Face model (adapters, value heads), by checkpoint name. */
  protected checkpointTensors(): Map<string, Tensor> {
    return new Map();
  }
  /** Algorithm state for checkpoints (JSON). */
  protected algorithmState(): Record<string, unknown> {
    return {};
  }
  protected restoreAlgorithmState(_s: Record<string, unknown>): void {}
  /** The run's inputs that output_dir must not be (model folder, data files). */
  protected inputs(): NamedInput[] {
    return [];
  }
  /** Metrics on held-out data (eval_ prefixed), or null when there is no eval data. */
  async evaluate(): Promise<Metrics | null> {
    return null;
  }
  /** Whether evaluate() has data to run on (after prepare). */
  protected hasEvalData(): boolean {
    return false;
  }

  /** The precision of matrix products in training and evaluation (bf16 with args.bf16). */
  protected get precision(): Precision {
    return this.args.bf16 ? 'bf16' : 'fp32';
  }

  /** Creates AdamW over `trainable` (call once the trainable tensors are known). */
  protected initOptimizer(trainable: Tensor[]): void {
    if (!trainable.length) throw new Error(`${this.name}: nothing to train (every parameter is frozen)`);
    this.trainable = trainable;
    const a = this.args;
    this.optimizer = new AdamW(trainable, { lr: a.learning_rate, betas: [a.adam_beta1, a.adam_beta2], eps: a.adam_epsilon, weightDecay: a.weight_decay });
  }

  protected get opt(): AdamW {
    if (!this.optimizer) throw new Error(`${this.name}: the trainer has no optimiser (disposed?)`);
    return this.optimizer;
  }

  /** Stops the run before the optimiser step when a value is not finite. */
  protected checkFinite(value: number, what: string): void {
    if (!Number.isFinite(value)) {
      this.opt.zeroGrad();
      throw new TrainingDivergedError(`${this.name}: ${what} is ${value} at step ${this.globalStep + 1}`);
    }
  }

  /** Clips, checks and applies the accumulated gradients; returns the gradient norm before clipping. */
  protected optimizerStep(lr: number): number {
    const a = this.args;
    const norm = clipGradNorm(this.trainable, a.max_grad_norm > 0 ? a.max_grad_norm : Infinity);
    this.checkFinite(norm, 'the gradient norm');
    this.opt.stepOnce(lr);
    this.opt.zeroGrad();
    return norm;
  }

  private modelTensors(): Map<string, Tensor> {
    const p = this.checkpointModel();
    if (!p) return new Map();
    const m = new Map(p.model.params);
    if (p.score) m.set('score.weight', p.score);
    return m;
  }

  /** The options a checkpoint records (functions and other non-JSON values left out). */
  private settings(): Record<string, unknown> {
    return JSON.parse(JSON.stringify(this.args, (_k, v: unknown) => (typeof v === 'function' ? undefined : v))) as Record<string, unknown>;
  }

  saveCheckpoint(): string {
    const state: TrainerState = {
      global_step: this.globalStep,
      epoch: this.epochProgress(),
      data_state: this.dataState(),
      rng_state: this.rng.getState(),
      extra: { num_tokens: this.numTokens, ...this.algorithmState() },
      args: this.settings(),
    };
    const p = saveTrainingCheckpoint(this.args.output_dir, state, this.checkpointModel(), this.checkpointTensors(), this.opt);
    pruneCheckpoints(this.args.output_dir, this.args.save_total_limit);
    return p;
  }

  /** Restores everything from a checkpoint folder (its settings must match this run's). */
  resumeFrom(path: string): void {
    const saved = readTrainerState(path);
    const diff = settingsDiff(saved.args, this.settings());
    if (diff.length) throw new Error(`${this.name}: cannot resume from ${path}: its settings differ from this run's (${diff.join('; ')}); use the same settings, or start a new run`);
    const st = loadTrainingCheckpoint(path, this.modelTensors(), this.checkpointTensors(), this.opt);
    this.globalStep = st.global_step;
    this.restoreDataState(st.data_state);
    this.rng.setState(st.rng_state);
    const extra = st.extra ?? {};
    this.numTokens = typeof extra.num_tokens === 'number' ? extra.num_tokens : 0;
    this.restoreAlgorithmState(extra);
  }

  /** Adds to a divergence error where the last good checkpoint is (nothing is saved after a divergence). */
  private explain(e: unknown): unknown {
    if (e instanceof TrainingDivergedError) {
      const good = listCheckpoints(this.args.output_dir).pop();
      e.message += `; stopped without saving. Last good checkpoint: ${good ? good.path : 'none'}. Try a lower learning_rate or max_grad_norm.`;
    }
    return e;
  }

  /** Trains to the end (or from a checkpoint to the end), evaluates once at the end when there is eval data. */
  async train(opts: TrainOptions = {}): Promise<TrainOutput> {
    const a = this.args;
    await this.prepare();
    const plan = prepareOutputDir(a, this.name, this.inputs());
    const metricsPath = join(a.output_dir, 'metrics.jsonl');
    if (plan.resumeFrom) {
      this.resumeFrom(plan.resumeFrom);
      truncateMetrics(metricsPath, this.globalStep);
    }
    const total = this.totalSteps();
    const warmupSteps = a.warmup_steps > 0 ? a.warmup_steps : Math.ceil(a.warmup_ratio * total);
    const sched = { kind: a.lr_scheduler_type, warmupSteps, totalSteps: total } as const;
    const quiet = opts.quiet === true;
    const log = new MetricsLog(metricsPath, total, this.name, quiet, !a.disable_tqdm && process.stderr.isTTY === true);
    if (plan.resumeFrom && !quiet) process.stderr.write(`${this.name}: resumed from ${plan.resumeFrom} at step ${this.globalStep}\n`);
    const onSigint = (): void => {
      if (this.interrupted) process.exit(130);
      this.interrupted = true;
      process.stderr.write(`\n${this.name}: stopping after this step (Ctrl-C again to quit at once)\n`);
    };
    if (opts.handleInterrupt) process.on('SIGINT', onSigint);
    let window: Record<string, number[]> = {};
    let last: Metrics = {};
    let lastEvalStep = -1;
    let finalEval: Metrics | null = null;
    const losses: number[] = [];
    const t0 = performance.now();
    const emit = (r: Metrics): void => {
      log.write(r);
      this.history.push(r);
      opts.onLog?.(r);
    };
    try {
      while (this.globalStep < total) {
        const lr = a.learning_rate * lrMultiplier(this.globalStep, sched);
        const m = await autocastAsync(this.precision, () => this.trainStep(lr));
        this.globalStep++;
        if (m.num_tokens !== undefined) m.num_tokens = this.numTokens += m.num_tokens;
        for (const [k, v] of Object.entries(m)) (window[k] ??= []).push(v);
        log.progress(this.globalStep, progressShown(m));
        if (this.globalStep % a.logging_steps === 0 || this.globalStep === total) {
          last = { step: this.globalStep, epoch: this.epochProgress() };
          for (const [k, v] of Object.entries(window)) last[k] = LATEST.has(k) ? v[v.length - 1]! : v.reduce((s, x) => s + x, 0) / v.length;
          last.train_runtime = (performance.now() - t0) / 1000;
          window = {};
          if (last.loss !== undefined) losses.push(last.loss);
          emit(last);
        }
        if (a.eval_strategy === 'steps' && this.globalStep % a.eval_steps === 0 && this.hasEvalData()) {
          const ev = await autocastAsync(this.precision, () => this.evaluate());
          if (ev) {
            emit({ step: this.globalStep, ...ev });
            lastEvalStep = this.globalStep;
            finalEval = ev;
          }
        }
        const atEnd = this.globalStep === total;
        if (a.save_steps > 0 && (this.globalStep % a.save_steps === 0 || atEnd)) this.saveCheckpoint();
        // a step that did no I/O never returns to the event loop: let a pending SIGINT handler run
        if (opts.handleInterrupt) await new Promise<void>((r) => setImmediate(r));
        if (this.interrupted && !atEnd) {
          const latest = listCheckpoints(a.output_dir).pop();
          throw new TrainingInterruptedError(
            `${this.name}: interrupted at step ${this.globalStep} of ${total}. ` +
              (latest
                ? `The latest checkpoint is ${latest.path} (step ${latest.step}); continue with --resume_from_checkpoint true.`
                : 'No checkpoint was written (save_steps is 0 or not reached yet).'),
          );
        }
      }
      if (this.hasEvalData() && lastEvalStep !== this.globalStep) {
        finalEval = await autocastAsync(this.precision, () => this.evaluate());
        if (finalEval) emit({ step: this.globalStep, ...finalEval });
      }
    } catch (e) {
      throw this.explain(e);
    } finally {
      log.close();
      if (opts.handleInterrupt) process.off('SIGINT', onSigint);
    }
    const trainingLoss = losses.length ? losses.reduce((s, x) => s + x, 0) / losses.length : NaN;
    return { globalStep: this.globalStep, trainingLoss, metrics: last, eval: finalEval };
  }

  /** Frees the optimiser's moments (and whatever else a trainer owns). */
  dispose(): void {
    this.optimizer?.dispose();
    this.optimizer = null;
  }
}

function progressShown(m: Metrics): Metrics {
  const out: Metrics = {};
  for (const k of ['loss', 'objective/scores', 'reward', 'objective/kl', 'kl']) if (m[k] !== undefined) out[k] = m[k]!;
  return out;
}

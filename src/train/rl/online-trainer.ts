// The loop shared by the online RL trainers (PPO, RLOO, GRPO): draw a batch of prompts (a seeded, resumable
// order), let the algorithm roll out and update (one `update` = one rollout batch and its optimisation), log
// metrics under TRL's names to <output_dir>/metrics.jsonl, checkpoint every save_steps updates (policy, extra
// trained tensors such as the value head or LoRA adapters, optimiser, RNG, data position, algorithm state such
// as the KL controller), resume exactly, and stop with a diagnostic when a loss or gradient is not finite.
import { join } from 'node:path';
import { AdamW, clipGradNorm, lrMultiplier } from '../../engine/optim.js';
import { Random } from '../../engine/random.js';
import type { Tensor } from '../../engine/tensor.js';
import type { Pretrained } from '../../io/pretrained.js';
import { Transformer } from '../../models/transformer.js';
import { EpochSampler, type SamplerState } from '../../data/sampler.js';
import type { TrainingArgs } from '../args.js';
import { listCheckpoints, loadTrainingCheckpoint, pruneCheckpoints, saveTrainingCheckpoint, type TrainerState } from '../checkpoint.js';
import { MetricsLog } from '../metrics-log.js';
import { adapterTensors } from '../setup.js';
import { TrainingDivergedError, explainDivergence } from '../trainer.js';
import type { ScoreFunction } from './scorer.js';

/** A prompt to generate from: its token ids and the text the scorer sees. */
export interface PromptItem {
  ids: readonly number[];
  text: string;
}

/** Turns token ids into text (a Tokenizer fits). */
export interface TextDecoder {
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
}

export interface OnlineTrainerDeps {
  /** the policy: a loaded Hugging Face model (saved as such in checkpoints) or a bare Transformer */
  policy: Pretrained | Transformer;
  /**
   * The frozen reference: a separate model, or omitted: the policy with its LoRA adapters switched off when it
   * has adapters, else a frozen copy of the policy made at construction.
   */
  ref?: Transformer | null;
  scorer: ScoreFunction;
  prompts: readonly PromptItem[];
  /** decodes responses for the scorer (skipping special tokens); without it, texts are the ids joined by spaces */
  tokenizer?: TextDecoder | null;
  /** the tokenizer's EOS (stop token, missing_eos_penalty) */
  eosTokenId?: number | null;
  /** fills padding (default: EOS, else 0) */
  padTokenId?: number | null;
}

export type Metrics = Record<string, number>;

/** Metrics that are reported as their latest value rather than averaged over the logging window. */
const LATEST = new Set(['episode', 'lr', 'eps', 'objective/kl_coef']);

export abstract class OnlineTrainer<A extends TrainingArgs> {
  readonly policy: Transformer;
  readonly pretrained: Pretrained | null;
  /** the frozen reference model, or null: the policy with adapters off */
  readonly ref: Transformer | null;
  readonly ownsRef: boolean;
  readonly scorer: ScoreFunction;
  readonly prompts: readonly PromptItem[];
  readonly tokenizer: TextDecoder | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number;
  readonly rng: Random;
  readonly sampler: EpochSampler;
  optimizer!: AdamW;
  trainable: Tensor[] = [];
  globalStep = 0;
  episode = 0;
  readonly history: Metrics[] = [];

  constructor(
    readonly args: A,
    deps: OnlineTrainerDeps,
    readonly name: string,
  ) {
    if (deps.policy instanceof Transformer) {
      this.policy = deps.policy;
      this.pretrained = null;
    } else {
      this.policy = deps.policy.model;
      this.pretrained = deps.policy;
    }
    if (!deps.prompts.length) throw new Error(`${name}: the prompt dataset is empty`);
    if (typeof deps.scorer !== 'function') throw new Error(`${name}: a scorer function or a reward model is required`);
    this.scorer = deps.scorer;
    this.prompts = deps.prompts;
    this.tokenizer = deps.tokenizer ?? null;
    this.eosTokenId = deps.eosTokenId ?? null;
    this.padTokenId = deps.padTokenId ?? this.eosTokenId ?? 0;
    if (deps.ref === this.policy) throw new Error(`${name}: the reference must not be the policy object itself (omit it to get a frozen copy)`);
    if (deps.ref) {
      if (deps.ref.config.vocabSize !== this.policy.config.vocabSize)
        throw new Error(`${name}: the reference's vocabulary (${deps.ref.config.vocabSize}) differs from the policy's (${this.policy.config.vocabSize})`);
      this.ref = deps.ref;
      this.ownsRef = false;
    } else if (this.policy.adapters.size) {
      this.ref = null;
      this.ownsRef = false;
    } else {
      this.ref = frozenCopy(this.policy);
      this.ownsRef = true;
    }
    if (this.ref) for (const p of this.ref.parameters()) p.requiresGrad = false;
    this.rng = new Random(args.seed);
    this.sampler = new EpochSampler(deps.prompts.length, { batchSize: this.promptsPerUpdate(), seed: args.seed, shuffle: true, dropLast: true });
  }

  /** Creates the optimiser over the policy's trainable tensors and `extra` (call at the end of the subclass constructor). */
  protected initOptimizer(extra: Tensor[] = []): void {
    this.policy.training = false; // no dropout in rollouts or updates (TRL disables it for online RL)
    this.trainable = [...this.policy.trainableParameters(), ...extra];
    if (!this.trainable.length) throw new Error(`${this.name}: nothing to train (every parameter is frozen)`);
    const a = this.args;
    this.optimizer = new AdamW(this.trainable, { lr: a.learning_rate, betas: [a.adam_beta1, a.adam_beta2], eps: a.adam_epsilon, weightDecay: a.weight_decay });
  }

  /** Prompts drawn per update. */
  abstract promptsPerUpdate(): number;
  /** Updates in the whole run. */
  abstract totalUpdates(): number;
  /** One rollout batch and its optimisation; returns the update's metrics. */
  protected abstract update(prompts: PromptItem[], lr: number): Promise<Metrics>;
  /** Trained tensors outside the policy's own parameters (value head), by checkpoint name. */
  protected extraTensors(): Map<string, Tensor> {
    return new Map();
  }
  /** Algorithm state for checkpoints (JSON). */
  protected algorithmState(): Record<string, unknown> {
    return {};
  }
  protected restoreAlgorithmState(_s: Record<string, unknown>): void {}

  /** Runs fn with the reference model's weights: the frozen copy, or the policy with its adapters off. */
  withRef<T>(fn: (ref: Transformer) => T): T {
    if (this.ref) return fn(this.ref);
    return this.policy.withoutAdapters(() => fn(this.policy));
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer ? this.tokenizer.decode(ids, { skipSpecialTokens: true }) : ids.join(' ');
  }

  /** Clips, checks and applies the accumulated gradients; returns the gradient norm. */
  protected optimizerStep(lr: number): number {
    const a = this.args;
    const norm = clipGradNorm(this.trainable, a.max_grad_norm > 0 ? a.max_grad_norm : Infinity);
    if (!Number.isFinite(norm)) {
      this.optimizer.zeroGrad();
      throw new TrainingDivergedError(`${this.name}: gradient norm is ${norm} at update ${this.globalStep + 1}`);
    }
    this.optimizer.stepOnce(lr);
    this.optimizer.zeroGrad();
    return norm;
  }

  protected checkLoss(value: number, what: string): void {
    if (!Number.isFinite(value)) {
      this.optimizer.zeroGrad();
      throw new TrainingDivergedError(`${this.name}: ${what} is ${value} at update ${this.globalStep + 1}`);
    }
  }

  /** Everything a checkpoint saves by name beyond the Hugging Face model. */
  private checkpointTensors(): Map<string, Tensor> {
    const m = new Map([...this.extraTensors(), ...adapterTensors(this.policy)]);
    if (!this.pretrained) for (const [n, t] of this.policy.params) m.set(`policy.${n}`, t);
    return m;
  }

  saveCheckpoint(): string {
    const state: TrainerState = {
      global_step: this.globalStep,
      epoch: this.episode / this.prompts.length,
      data_state: this.sampler.state(),
      rng_state: this.rng.getState(),
      extra: { episode: this.episode, ...this.algorithmState() },
    };
    const p = saveTrainingCheckpoint(this.args.output_dir, state, this.pretrained, this.checkpointTensors(), this.optimizer);
    pruneCheckpoints(this.args.output_dir, this.args.save_total_limit);
    return p;
  }

  /** Restores from args.resume_from_checkpoint (true = the newest in output_dir); returns the path or null. */
  resume(): string | null {
    const r = this.args.resume_from_checkpoint;
    if (r === false || r === '') return null;
    const path = typeof r === 'string' ? r : listCheckpoints(this.args.output_dir).pop()?.path;
    if (!path) return null;
    const params = this.pretrained ? new Map(this.policy.params) : new Map<string, Tensor>();
    const st = loadTrainingCheckpoint(path, params, this.checkpointTensors(), this.optimizer);
    this.globalStep = st.global_step;
    this.sampler.restore(st.data_state as SamplerState);
    this.rng.setState(st.rng_state);
    const extra = st.extra ?? {};
    this.episode = typeof extra.episode === 'number' ? extra.episode : 0;
    this.restoreAlgorithmState(extra);
    return path;
  }

  /** Trains to the end (or from a checkpoint to the end); returns the last logged metrics. */
  async train(opts: { quiet?: boolean; onLog?: (m: Metrics) => void } = {}): Promise<Metrics> {
    const a = this.args;
    const resumedFrom = this.resume();
    const total = this.totalUpdates();
    const warmupSteps = a.warmup_steps > 0 ? a.warmup_steps : Math.ceil(a.warmup_ratio * total);
    const sched = { kind: a.lr_scheduler_type, warmupSteps, totalSteps: total } as const;
    const quiet = opts.quiet || a.disable_tqdm;
    const log = new MetricsLog(join(a.output_dir, 'metrics.jsonl'), total, this.name, quiet, !a.disable_tqdm && process.stderr.isTTY === true);
    if (resumedFrom && !opts.quiet) process.stderr.write(`${this.name}: resumed from ${resumedFrom} at update ${this.globalStep}\n`);
    const t0 = performance.now(), episode0 = this.episode;
    let window: Record<string, number[]> = {};
    let last: Metrics = {};
    try {
      while (this.globalStep < total) {
        const batch = this.sampler.next();
        const prompts = Array.from(batch.indices, (i) => this.prompts[i]!);
        const lr = a.learning_rate * lrMultiplier(this.globalStep, sched);
        const m = await this.update(prompts, lr);
        this.globalStep++;
        m.lr = lr;
        m.episode = this.episode;
        m.eps = Math.round((this.episode - episode0) / Math.max(1e-9, (performance.now() - t0) / 1000));
        for (const [k, v] of Object.entries(m)) (window[k] ??= []).push(v);
        log.progress(this.globalStep, progressShown(m));
        if (this.globalStep % Math.max(1, a.logging_steps) === 0 || this.globalStep === total) {
          last = { step: this.globalStep, epoch: this.episode / this.prompts.length };
          for (const [k, v] of Object.entries(window)) last[k] = LATEST.has(k) ? v[v.length - 1]! : v.reduce((s, x) => s + x, 0) / v.length;
          window = {};
          log.write(last);
          this.history.push(last);
          opts.onLog?.(last);
        }
        if (a.save_steps > 0 && this.globalStep % a.save_steps === 0) this.saveCheckpoint();
      }
    } catch (e) {
      throw explainDivergence(e, a.output_dir);
    } finally {
      log.close();
    }
    return last;
  }

  dispose(): void {
    this.optimizer?.dispose();
    if (this.ownsRef) this.ref?.dispose();
  }
}

function progressShown(m: Metrics): Metrics {
  const out: Metrics = {};
  for (const k of ['objective/scores', 'reward', 'objective/kl', 'kl']) if (m[k] !== undefined) out[k] = m[k]!;
  return out;
}

/** A frozen copy of a model's weights (the reference when no other is given). */
export function frozenCopy(model: Transformer): Transformer {
  // fromStateDict adopts the arrays it is given, so hand it copies (stateDict gives views of the live weights)
  const sd = new Map([...model.stateDict()].map(([n, e]) => [n, { shape: e.shape, data: e.data.slice() }]));
  const { model: copy } = Transformer.fromStateDict(model.config, sd);
  for (const p of copy.parameters()) p.requiresGrad = false;
  copy.training = false;
  return copy;
}

/** A Fisher–Yates permutation of 0..n−1 from the trainer's RNG (mini-batch order). */
export function permutation(rng: Random, n: number): Int32Array {
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

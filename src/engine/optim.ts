// Optimisation: AdamW (decoupled weight decay, bias correction, as torch.optim.AdamW), global-norm gradient
// clipping (as torch.nn.utils.clip_grad_norm_) and learning-rate schedules (as transformers' get_*_schedule).
import { core } from './native.js';
import { Tensor, keep } from './tensor.js';

interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

interface AdamWState {
  step: number;
  /** per parameter (same order as the params list): first and second moments */
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  step = 0;
  private m: Tensor[];
  private v: Tensor[];

  constructor(
    readonly params: readonly Tensor[],
    opts: AdamWOptions = {},
  ) {
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const p of params) {
      if (!p.isContiguous || p.offset !== 0) throw new Error(`AdamW: parameter ${p.describe()} must be a contiguous, unshared tensor`);
    }
    this.m = params.map((p) => keep(Tensor.zeros(p.shape)));
    this.v = params.map((p) => keep(Tensor.zeros(p.shape)));
  }

  /** One update with the current .grad of every parameter (parameters without a gradient are skipped). */
  stepOnce(lr = this.lr): void {
    this.step++;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      const gc = g.isContiguous && g.offset === 0 ? g : g.clone();
      core.adamw(p.data, gc.data, this.m[i]!.data, this.v[i]!.data, p.size, lr, this.beta1, this.beta2, this.eps, this.weightDecay, this.step);
      if (gc !== g) gc.dispose();
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  getState(): AdamWState {
    return { step: this.step, m: this.m.map((t) => t.toArray()), v: this.v.map((t) => t.toArray()) };
  }

  setState(s: AdamWState): void {
    if (s.m.length !== this.params.length || s.v.length !== this.params.length) throw new Error(`AdamW.setState: state has ${s.m.length} parameters, optimiser has ${this.params.length}`);
    this.params.forEach((p, i) => {
      if (s.m[i]!.length !== p.size || s.v[i]!.length !== p.size) throw new Error(`AdamW.setState: moment sizes do not match parameter ${p.describe()}`);
      this.m[i]!.data.set(s.m[i]!);
      this.v[i]!.data.set(s.v[i]!);
    });
    this.step = s.step;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** The L2 norm of all gradients together (NaN or Infinity if any gradient holds one). */
export function gradNorm(params: readonly Tensor[]): number {
  let ss = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    const gc = g.isContiguous ? g : g.clone();
    ss += core.sumSquares(gc.data, gc.offset, gc.size);
    if (gc !== g) gc.dispose();
  }
  return Math.sqrt(ss);
}

/**
 * Scales all gradients so that their global norm is at most maxNorm; returns the norm before clipping
 * (as torch's clip_grad_norm_: coefficient maxNorm / (norm + 1e-6), applied only when below 1).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  const norm = gradNorm(params);
  const coef = maxNorm / (norm + 1e-6);
  if (Number.isFinite(norm) && coef < 1) {
    for (const p of params) if (p.grad) core.scaleInPlace(p.grad.data, p.grad.offset, p.grad.size, coef);
  }
  return norm;
}

type ScheduleKind = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';

interface ScheduleOptions {
  kind: ScheduleKind;
  warmupSteps?: number;
  totalSteps?: number;
  /** cosine: number of half-waves... as transformers' num_cycles (default 0.5: decay to 0 once) */
  numCycles?: number;
}

/**
 * The learning-rate multiplier at a step (0-based count of optimizer steps taken so far), following
 * transformers' get_constant_schedule(_with_warmup), get_linear_schedule_with_warmup and
 * get_cosine_schedule_with_warmup.
 */
export function lrMultiplier(step: number, o: ScheduleOptions): number {
  const warm = o.warmupSteps ?? 0;
  if (o.kind === 'constant') return 1;
  if (step < warm) return step / Math.max(1, warm);
  if (o.kind === 'constant_with_warmup') return 1;
  const total = o.totalSteps;
  if (total === undefined) throw new Error(`lr schedule '${o.kind}' needs totalSteps`);
  if (o.kind === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warm));
  if (o.kind === 'cosine') {
    const progress = (step - warm) / Math.max(1, total - warm);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (o.numCycles ?? 0.5) * 2 * progress)));
  }
  throw new Error(`unknown lr schedule '${String(o.kind)}' (constant, constant_with_warmup, linear, cosine)`);
}

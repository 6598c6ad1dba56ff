// LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update,
//   y = x·Wᵀ + b + (α/r)·dropout(x)·Aᵀ·Bᵀ,   A [r, in] (Kaiming-uniform), B [out, r] (zeros),
// in PEFT's conventions, so adapters save and load as PEFT's adapter_model.safetensors. linear() computes the
// layer and its update as one fused op.
import { add, dropout, scale } from '../engine/ops/elementwise.js';
import { matmul } from '../engine/ops/matmul.js';
import { Random } from '../engine/random.js';
import { Tensor, noGrad } from '../engine/tensor.js';
import { linear, type WeightLayout } from './linear.js';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout?: number;
  /** module names ending in one of these get an adapter (PEFT's target_modules), e.g. q_proj, v_proj, c_attn */
  targetModules: readonly string[];
}

export class LoraAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly scaling: number;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly cfg: LoraConfig,
    rng: Random,
    readonly name: string,
    /** mixed into the dropout seed so that adapters draw different masks */
    readonly salt = 0,
  ) {
    if (!(cfg.r > 0) || !Number.isInteger(cfg.r)) throw new Error(`LoRA rank must be a positive integer, got ${cfg.r}`);
    // kaiming_uniform_(a=√5) on [r, in]: bound = 1/√in
    const bound = 1 / Math.sqrt(inFeatures);
    const a = new Float32Array(cfg.r * inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (rng.uniform() * 2 - 1) * bound;
    this.A = Tensor.param(Tensor.from(a, [cfg.r, inFeatures]), `${name}.lora_A.weight`);
    this.B = Tensor.param(Tensor.zeros([outFeatures, cfg.r]), `${name}.lora_B.weight`);
    this.scaling = cfg.alpha / cfg.r;
  }

  /**
   * The adapter's input for layer input x: x itself, or a dropout of it while training. The dropout mask is a
   * pure function of (seed, adapter), so a resumed run draws the same masks; callers advance the seed between
   * steps.
   */
  input(x: Tensor, training: boolean, seed: number): Tensor {
    const p = this.cfg.dropout ?? 0;
    return p > 0 && training ? dropout(x, p, (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(this.salt + 1, 0x85ebca6b)) >>> 0, true) : x;
  }

  /** W += (α/r)·B·A in the weight's own layout. */
  mergeInto(weight: Tensor, layout: WeightLayout): void {
    noGrad(() => {
      const ba = scale(matmul(this.B, this.A), this.scaling); // [out, in]
      const upd = layout === 'out_in' ? ba : ba.transpose(0, 1);
      const merged = add(weight, upd);
      weight.copyFrom(merged);
      merged.dispose();
      ba.dispose();
    });
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }
}

/** A linear layer with an optional adapter (skipped when `enabled` is false: the frozen base alone), one fused op. */
export function loraLinear(x: Tensor, weight: Tensor, bias: Tensor | null, layout: WeightLayout, adapter: LoraAdapter | undefined, enabled: boolean, training: boolean, seed: number): Tensor {
  if (!adapter || !enabled) return linear(x, weight, bias, layout);
  return linear(x, weight, bias, layout, { A: adapter.A, B: adapter.B, scaling: adapter.scaling, input: adapter.input(x, training, seed) });
}

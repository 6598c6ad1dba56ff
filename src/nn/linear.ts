// A linear layer on the GEMM: y = x·W + b (+ s·(x'·Aᵀ)·Bᵀ, a LoRA update) with W stored either [in, out]
// (GPT-2's Conv1D) or [out, in] (torch.nn.Linear), so checkpoints load without transposing.
//
// One fused op rather than matmul + add (+ two matmuls, a scale and an add for the adapter): the bias is
// broadcast into the output and the products accumulate onto it (GEMM beta = 1), so the layer makes one
// [rows × out] tensor where the composed ops made two (five with an adapter) that would all live until the
// step's tidy ends. Backward, per Y = X·op(W) + 1·bᵀ + s·U·Bᵀ with U = X'·Aᵀ:
//   dX = dY·op(W)ᵀ (+ dU·A when X' is X),  dW = Xᵀ·dY in W's layout,  db = Σ_rows dY,
//   dU = s·dY·B,  dA = dUᵀ·X',  dB = s·dYᵀ·U,  dX' = dU·A (when X' is a dropout of X, routed through it).
import { matmulPrecision } from '../engine/autocast.js';
import { core } from '../engine/native.js';
import { sum } from '../engine/ops/elementwise.js';
import { matmulInto } from '../engine/ops/matmul.js';
import { Tensor, record } from '../engine/tensor.js';

export type WeightLayout = 'in_out' | 'out_in';

/** A low-rank update s·(input·Aᵀ)·Bᵀ added to a linear layer's output: A [r, in], B [out, r]. */
interface LowRankUpdate {
  A: Tensor;
  B: Tensor;
  scaling: number;
  /** the layer's input, or a dropout of it (PEFT applies LoRA dropout to the adapter's input only) */
  input: Tensor;
}

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, layout: WeightLayout, lowRank?: LowRankUpdate | null): Tensor {
  const precision = matmulPrecision();
  const K = x.shape[x.ndim - 1]!;
  const [w0, w1] = weight.shape as [number, number];
  const N = layout === 'in_out' ? w1 : w0;
  if (weight.ndim !== 2 || (layout === 'in_out' ? w0 : w1) !== K) throw new Error(`linear: input [..., ${K}] does not fit weight [${weight.shape.join(', ')}] (${layout})`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N)) throw new Error(`linear: bias [${bias.shape.join(', ')}] for ${N} outputs`);
  const R = K === 0 ? 0 : x.size / K;
  const opW = layout === 'in_out' ? weight : weight.transpose(0, 1); // [K, N]
  const x2 = (x.isContiguous ? x : x.clone()).reshape([R, K]);
  const out = Tensor.empty([...x.shape.slice(0, -1), N]);
  const out2 = out.reshape([R, N]);
  if (bias) core.copyStrided(bias.data, bias.offset, [R, N], [0, bias.strides[0]!], out.data, 0);
  matmulInto(out2, x2, opW, 1, bias ? 1 : 0, precision);
  let U: Tensor | null = null;
  let xin2: Tensor | null = null;
  if (lowRank) {
    const r = lowRank.A.shape[0]!;
    xin2 = lowRank.input === x ? x2 : (lowRank.input.isContiguous ? lowRank.input : lowRank.input.clone()).reshape([R, K]);
    U = Tensor.empty([R, r]);
    matmulInto(U, xin2, lowRank.A.transpose(0, 1), 1, 0, precision);
    matmulInto(out2, U, lowRank.B.transpose(0, 1), lowRank.scaling, 1, precision);
  }
  out2.dispose();
  const sepInput = lowRank && lowRank.input !== x ? lowRank.input : null;
  return record(
    out,
    [x, weight, bias, lowRank?.A, lowRank?.B, sepInput],
    (g) => {
      // views made here are released at the end: a live view would keep g's memory until the step's tidy ends
      const views: Tensor[] = [];
      const v = (t: Tensor) => (views.push(t), t);
      const g2 = v((g.isContiguous ? g : v(g.clone())).reshape([R, N]));
      const grads: (Tensor | null)[] = [null, null, null, null, null, null];
      let gU: Tensor | null = null;
      if (lowRank && U && xin2) {
        const { A, B, scaling } = lowRank;
        if (B.requiresGrad) {
          const gB = Tensor.empty(B.shape);
          matmulInto(gB, v(g2.transpose(0, 1)), U, scaling, 0, precision);
          grads[4] = gB;
        }
        if (A.requiresGrad || x.requiresGrad || sepInput?.requiresGrad) {
          gU = Tensor.empty(U.shape);
          matmulInto(gU, g2, B, scaling, 0, precision);
        }
        if (A.requiresGrad && gU) {
          const gA = Tensor.empty(A.shape);
          matmulInto(gA, v(gU.transpose(0, 1)), xin2, 1, 0, precision);
          grads[3] = gA;
        }
        if (sepInput?.requiresGrad && gU) {
          const gIn = Tensor.empty(sepInput.shape);
          matmulInto(v(gIn.reshape([R, K])), gU, A, 1, 0, precision);
          grads[5] = gIn;
        }
      }
      if (x.requiresGrad) {
        const gx = Tensor.empty(x.shape);
        const gx2 = v(gx.reshape([R, K]));
        matmulInto(gx2, g2, v(opW.transpose(0, 1)), 1, 0, precision);
        if (gU && !sepInput) matmulInto(gx2, gU, lowRank!.A, 1, 1, precision);
        grads[0] = gx;
      }
      if (weight.requiresGrad) {
        const gW = Tensor.empty(weight.shape);
        if (layout === 'in_out') matmulInto(gW, v(x2.transpose(0, 1)), g2, 1, 0, precision);
        else matmulInto(gW, v(g2.transpose(0, 1)), x2, 1, 0, precision);
        grads[1] = gW;
      }
      if (bias?.requiresGrad) grads[2] = sum(g2, 0);
      gU?.dispose();
      for (const t of views) t.dispose();
      return grads;
    },
    'linear',
  );
}

// A linear layer on the GEMM: y = x·W (+ b) with W stored either [in, out] (GPT-2's Conv1D) or
// [out, in] (torch.nn.Linear), so checkpoints load without transposing.
import { add } from '../engine/ops/elementwise.js';
import { matmul } from '../engine/ops/matmul.js';
import type { Tensor } from '../engine/tensor.js';

export type WeightLayout = 'in_out' | 'out_in';

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, layout: WeightLayout): Tensor {
  const y = matmul(x, layout === 'in_out' ? weight : weight.transpose(0, 1));
  return bias ? add(y, bias) : y;
}

// Linear layers whose every output row is a function of its own input row alone, bit for bit, whatever the other
// rows of the batch are. This is what lets the server batch requests without changing any request's answer.
//
// The GEMM picks its kernel by the number of rows (up to 8 rows: an unpacked matrix-vector-like kernel; more: the
// packed, blocked one) and the two sum over K in different orders (the few-row kernel cuts a long K in 4 parts,
// the blocked one in KC-deep blocks), so a row computed in a batch of 32 differs in the last bits from the same
// row alone. Both kernels, however, accumulate one output element as a plain chain of fused multiply-adds over k
// when op(B)'s rows are contiguous and K is at most 384 (one KC block; below the 4-way split). So the product runs
// here in K slices of 384 (later slices added into C with beta = 1, which both kernels do as one rounding of C +
// partial) on a weight stored [in, out]: the same chain, and so the same bits, for any number of rows.
// test/serve/rows.test.ts checks it for the shapes of GPT-2 and Llama layers.
import { add } from '../engine/ops/elementwise.js';
import { gemm } from '../engine/ops/matmul.js';
import { Tensor, keep } from '../engine/tensor.js';

/** K slice of every product (one KC block of the blocked kernel, below the few-row kernel's split). */
export const K_SLICE = 384;

/** A weight stored [in, out] contiguous (and an optional bias [out]). */
export interface RowWeight {
  w: Tensor;
  bias: Tensor | null;
  inFeatures: number;
  outFeatures: number;
}

/**
 * A row weight from a module's weight: an [in, out] weight is used as it is (no copy), an [out, in] one is
 * copied transposed (the copy is kept outside every tidy scope; the caller may then free the original).
 */
export function rowWeight(weight: Tensor, bias: Tensor | null, layout: 'in_out' | 'out_in'): RowWeight {
  if (weight.ndim !== 2) throw new Error(`rowWeight: expected a matrix, got ${weight.describe()}`);
  const w = layout === 'in_out' && weight.isContiguous ? weight : keep(layout === 'in_out' ? weight.clone() : weight.transpose(0, 1).clone());
  return { w, bias, inFeatures: w.shape[0]!, outFeatures: w.shape[1]! };
}

/** x [R, in] (contiguous rows) · w → [R, out], each row independent of the others (see the file header). */
export function rowMatmul(x: Tensor, w: Tensor): Tensor {
  const R = x.shape[0]!, K = x.shape[1]!, N = w.shape[1]!;
  if (x.ndim !== 2 || w.shape[0] !== K) throw new Error(`rowMatmul: ${x.describe()} · ${w.describe()}`);
  const xc = x.isContiguous ? x : x.clone();
  const out = Tensor.empty([R, N]);
  if (R > 0 && N > 0) {
    if (K === 0) out.data.fill(0, 0, R * N);
    for (let k0 = 0; k0 < K; k0 += K_SLICE) {
      const kc = Math.min(K_SLICE, K - k0);
      gemm.sgemm(false, false, R, N, kc, 1, xc.data, xc.offset + k0, K, w.data, w.offset + k0 * N, N, k0 === 0 ? 0 : 1, out.data, 0, N);
    }
  }
  if (xc !== x) xc.dispose();
  return out;
}

/** x [R, in] → x·W + b [R, out], row by row invariant. */
export function rowLinear(x: Tensor, rw: RowWeight): Tensor {
  const y = rowMatmul(x, rw.w);
  if (!rw.bias) return y;
  const z = add(y, rw.bias);
  y.dispose();
  return z;
}

// Linear layers whose every output row is a function of its own input row alone, bit for bit, whatever the other
// rows of the batch are. This is what lets the server batch requests without changing any request's answer.
//
// The GEMM picks its kernel by the number of rows — up to 8 rows an unpacked matrix-vector-like kernel, more the
// packed, blocked one — and the two sum over K in different orders, so a row computed in a batch of 32 differs in
// the last bits from the same row alone. Both kernels, however, compute one output element as a plain chain of
// fused multiply-adds over k when op(B)'s rows are contiguous and K is at most 384 (one KC block of the blocked
// kernel, below the few-row kernel's split); and the few-row kernel, for 512 <= K, cuts K in 4 blocks summed in
// a fixed order. So the product runs here in K slices of at most 768 on a weight stored [in, out]: with up to 8
// rows one call per slice (the kernel splits a slice of 512 or more in 4 itself, streaming whole rows of the
// weight: the fast decoding path), with more rows the blocked kernel computes each of those blocks separately
// and the blocks are added in the kernel's order; later slices add into C (one rounding of C + slice, in both).
// Every row then gets the same bits whatever the number of rows. (For N > 131072 the few-row kernel does not
// split; slices of 384 are used there.) test/serve/engine.test.ts checks it for the shapes of GPT-2 and Llama.
import { add } from '../engine/ops/elementwise.js';
import { gemm } from '../engine/ops/matmul.js';
import { Tensor, keep } from '../engine/tensor.js';

/** The few-row kernel's split (KSPLIT, from KSPLIT_MIN) and the blocked kernel's K block, see native/gemm.cc. */
const SPLIT = 4,
  SPLIT_MIN = 512,
  KC = 384,
  FEW_ROWS = 8;

/** The K slices [start, length] of a product, and whether each is split in 4 blocks by the few-row kernel. */
function kSlices(K: number, N: number): { k0: number; len: number; split: boolean }[] {
  const out: { k0: number; len: number; split: boolean }[] = [];
  if (N * FEW_ROWS > 1 << 20) {
    for (let k0 = 0; k0 < K; k0 += KC) out.push({ k0, len: Math.min(KC, K - k0), split: false });
    return out;
  }
  let k0 = 0;
  while (K - k0 >= 2 * KC) {
    out.push({ k0, len: 2 * KC, split: true });
    k0 += 2 * KC;
  }
  const r = K - k0;
  if (r >= SPLIT_MIN) out.push({ k0, len: r, split: true });
  else if (r > KC) {
    out.push({ k0, len: r >> 1, split: false });
    out.push({ k0: k0 + (r >> 1), len: r - (r >> 1), split: false });
  } else if (r > 0) out.push({ k0, len: r, split: false });
  return out;
}

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
  const R = x.shape[0]!,
    K = x.shape[1]!,
    N = w.shape[1]!;
  if (x.ndim !== 2 || w.shape[0] !== K) throw new Error(`rowMatmul: ${x.describe()} · ${w.describe()}`);
  if (N <= FEW_ROWS) throw new Error(`rowMatmul: ${N} output columns; pad the weight to more than ${FEW_ROWS}`);
  const xc = x.isContiguous ? x : x.clone();
  const out = Tensor.empty([R, N]);
  if (R > 0) {
    if (K === 0) out.data.fill(0, 0, R * N);
    const gemmInto = (k0: number, len: number, beta: number, c: Tensor) => gemm.sgemm(false, false, R, N, len, 1, xc.data, xc.offset + k0, K, w.data, w.offset + k0 * N, N, beta, c.data, c.offset, N);
    kSlices(K, N).forEach(({ k0, len, split }, i) => {
      if (R <= FEW_ROWS || !split) return gemmInto(k0, len, i === 0 ? 0 : 1, out);
      // the few-row kernel's 4 blocks, each a plain chain, added in its order
      let s: Tensor | null = null;
      for (let t = 0; t < SPLIT; t++) {
        const b0 = Math.floor((len * t) / SPLIT),
          b1 = Math.floor((len * (t + 1)) / SPLIT);
        const part = Tensor.empty([R, N]);
        gemmInto(k0 + b0, b1 - b0, 0, part);
        if (s === null) s = part;
        else {
          const next = add(s, part);
          s.dispose();
          part.dispose();
          s = next;
        }
      }
      if (i === 0) out.copyFrom(s!);
      else {
        const sum = add(out, s!);
        out.copyFrom(sum);
        sum.dispose();
      }
      s!.dispose();
    });
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

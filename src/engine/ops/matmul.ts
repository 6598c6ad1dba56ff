// Matrix products on the GEMM kernel: matmul (batched, broadcasting a 2-D right operand) and linear.
import { type Precision, matmulPrecision, noteBf16Fallback } from '../autocast.js';
import { native } from '../native.js';
import { Tensor, record, shapeStr } from '../tensor.js';
import { packedGemm, packedOperand } from './packed-weights.js';

export interface GemmKernels {
  /**
   * Row-major C[M×N] = alpha·op(A)·op(B) + beta·C; op(A) is M×K (A stored K×M when transA). bf16: op(A) and op(B)
   * are rounded to bf16 (nearest even) and the products accumulated in fp32, where the CPU has AVX512_BF16
   * (else, and for M or N up to 8, fp32).
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    aOff: number,
    lda: number,
    B: Float32Array,
    bOff: number,
    ldb: number,
    beta: number,
    C: Float32Array,
    cOff: number,
    ldc: number,
    bf16?: boolean,
  ): void;
  /** The same for `batch` matrices at strides strideA/B/C (a stride of 0 repeats one matrix). */
  sgemmBatched(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    aOff: number,
    lda: number,
    strideA: number,
    B: Float32Array,
    bOff: number,
    ldb: number,
    strideB: number,
    beta: number,
    C: Float32Array,
    cOff: number,
    ldc: number,
    strideC: number,
    batch: number,
    bf16?: boolean,
  ): void;
}
export const gemm = native as unknown as GemmKernels;

/** How a [rows × cols] matrix view (the last two dims of t) is handed to GEMM without a copy, if it can be. */
interface MatArg {
  t: Tensor; // the tensor actually passed (t itself or a contiguous copy)
  trans: boolean;
  ld: number;
  batchStride: number; // stride between consecutive matrices when the batch dims are flattened
}

function asMatrix(t: Tensor, batch: number): MatArg {
  const n = t.ndim;
  const rs = t.strides[n - 2]!,
    cs = t.strides[n - 1]!;
  const rows = t.shape[n - 2]!,
    cols = t.shape[n - 1]!;
  // batch dims must flatten to one stride
  let batchStride = rows * cols;
  let ok = true;
  if (n > 2) {
    batchStride = t.strides[n - 3]!;
    for (let d = n - 4; d >= 0; d--) if (t.shape[d]! !== 1 && t.strides[d]! !== t.strides[d + 1]! * t.shape[d + 1]!) ok = false;
  }
  if (batch <= 1) batchStride = 0;
  if (ok && (cs === 1 || cols === 1) && rs >= cols) return { t, trans: false, ld: Math.max(rs, 1), batchStride };
  if (ok && (rs === 1 || rows === 1) && cs >= rows) return { t, trans: true, ld: Math.max(cs, 1), batchStride };
  const c = t.clone();
  return { t: c, trans: false, ld: cols, batchStride: batch <= 1 ? 0 : rows * cols };
}

export interface MatmulOptions {
  /** 'bf16': bf16 inputs, fp32 accumulation (default: the autocast precision in effect, see autocast.ts) */
  precision?: Precision;
}

/**
 * a [..., M, K] @ b [..., K, N] → [..., M, N]. Batch dims must match, or b is 2-D and shared by every batch.
 * Transposed views are passed to GEMM as transpose flags, not copied. The output is fp32 in either precision;
 * the backward products run in the precision the forward product ran in.
 */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  const precision = o.precision ?? matmulPrecision();
  if (precision === 'bf16') noteBf16Fallback();
  const bf16 = precision === 'bf16';
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul needs matrices, got ${a.describe()} @ ${b.describe()}`);
  const M = a.shape[a.ndim - 2]!,
    K = a.shape[a.ndim - 1]!,
    N = b.shape[b.ndim - 1]!;
  if (b.shape[b.ndim - 2] !== K) throw new Error(`matmul: inner dims differ, ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  const aBatch = a.shape.slice(0, -2),
    bBatch = b.shape.slice(0, -2);
  const shared = b.ndim === 2;
  if (!shared && (aBatch.length !== bBatch.length || aBatch.some((d, i) => d !== bBatch[i]))) throw new Error(`matmul: batch dims differ, ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  const batch = aBatch.reduce((x, y) => x * y, 1);
  const out = Tensor.empty([...aBatch, M, N]); // beta = 0: GEMM writes every element
  if (out.size > 0) {
    if (shared && M > 0) {
      // Fold the batch into M (a's rows evenly spaced): one large GEMM instead of many small ones.
      const ac = a.ndim === 2 || a.isContiguous ? a : a.clone();
      const a2 = ac.ndim === 2 ? ac : ac.reshape([batch * M, K]);
      const out2 = out.reshape([batch * M, N]);
      matmulInto(out2, a2, b, 1, 0, precision);
      for (const t of new Set([out2, a2, ac])) if (t !== a) t.dispose();
    } else {
      const A = asMatrix(a, batch),
        B = asMatrix(b, shared ? 1 : batch);
      gemm.sgemmBatched(A.trans, B.trans, M, N, K, 1, A.t.data, A.t.offset, A.ld, A.batchStride, B.t.data, B.t.offset, B.ld, shared ? 0 : B.batchStride, 0, out.data, 0, N, M * N, batch, bf16);
      if (A.t !== a) A.t.dispose();
      if (B.t !== b) B.t.dispose();
    }
  }
  return record(
    out,
    [a, b],
    (g) => {
      // views made here are released before returning: a live view would keep its storage (g, a) until the
      // step's tidy ends
      const mo: MatmulOptions = { precision };
      const bt = b.transpose(-1, -2);
      const ga = a.requiresGrad ? matmul(g, bt, mo) : null;
      bt.dispose();
      let gb: Tensor | null = null;
      if (b.requiresGrad) {
        const views: Tensor[] = [];
        const v = (t: Tensor) => (views.push(t), t);
        const a2 = shared ? v(a.reshape([-1, K])) : a,
          g2 = shared ? v(g.reshape([-1, N])) : g;
        // Give b's gradient b's own memory layout: for b = Wᵀ (a weight stored [N, K]), compute (gᵀ·a)ᵀ so
        // that W's gradient comes out contiguous instead of as a transposed view that must be copied.
        const bIsTransposed = b.ndim === 2 && K > 1 && N > 1 && b.strides[0] === 1 && b.strides[1] === K;
        if (bIsTransposed) gb = v(matmul(v(g2.transpose(-1, -2)), a2, mo)).transpose(0, 1);
        else gb = matmul(v(a2.transpose(-1, -2)), g2, mo);
        for (const t of views) t.dispose();
      }
      return [ga, gb];
    },
    'matmul',
  );
}

/**
 * out [M×N] = alpha·a [M×K] @ b [K×N] + beta·out, on 2-D tensors of any strides (out contiguous), without
 * autograd: the building block of fused ops (a linear layer writing its bias, adapter and product into one
 * output). beta = 0 never reads out. Uses the packed panels of b inside withPackedWeights.
 */
export function matmulInto(out: Tensor, a: Tensor, b: Tensor, alpha: number, beta: number, precision: Precision): void {
  if (a.ndim !== 2 || b.ndim !== 2 || out.ndim !== 2) throw new Error('matmulInto needs 2-D tensors');
  const M = a.shape[0]!,
    K = a.shape[1]!,
    N = b.shape[1]!;
  if (b.shape[0] !== K || out.shape[0] !== M || out.shape[1] !== N) throw new Error(`matmulInto: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)} into ${shapeStr(out.shape)}`);
  if (!out.isContiguous) throw new Error('matmulInto: the output must be contiguous');
  if (M === 0 || N === 0) return;
  const bf16 = precision === 'bf16';
  if (bf16) noteBf16Fallback();
  const A = asMatrix(a, 1),
    B = asMatrix(b, 1);
  const packed = B.t === b ? packedOperand(b, B.trans, B.ld, M, precision) : null;
  if (packed) packedGemm.sgemmPacked(A.trans, M, N, K, alpha, A.t.data, A.t.offset, A.ld, packed, b.data, b.offset, beta, out.data, out.offset, N, bf16);
  else gemm.sgemm(A.trans, B.trans, M, N, K, alpha, A.t.data, A.t.offset, A.ld, B.t.data, B.t.offset, B.ld, beta, out.data, out.offset, N, bf16);
  if (A.t !== a) A.t.dispose();
  if (B.t !== b) B.t.dispose();
}

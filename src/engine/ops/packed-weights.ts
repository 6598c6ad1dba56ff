// Weights packed once for many products. The GEMM packs its right operand into panels on every call; for a
// training step that is a small part of the work, but a decoding step multiplies each weight by only a few dozen
// rows, so packing the weight costs about as much as the product itself. Inside withPackedWeights(weights, fn)
// a matmul whose right operand is one of those weights (or a transposed view of one) packs it on first use and
// reuses the panels until fn returns. The panels are exactly what the per-call packing produces, so results are
// bit-identical — except that under bf16 products of up to 8 rows, which the GEMM otherwise keeps in fp32
// (streaming the fp32 weight), also run on the bf16 panels. The weights must not change inside the scope
// (generation does not train).
import type { Precision } from '../autocast.js';
import { native } from '../native.js';
import type { Storage, Tensor } from '../tensor.js';

/** The native side: an opaque handle to op(B) packed for the GEMM driver. */
interface PackedGemm {
  sgemmPackB(transB: boolean, K: number, N: number, B: Float32Array, bOff: number, ldb: number, bf16: boolean): object;
  sgemmPackedFree(handle: object): void;
  /** as sgemm with op(B) from the handle; B is the same matrix unpacked (the few-row path streams it) */
  sgemmPacked(
    transA: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    aOff: number,
    lda: number,
    handle: object,
    B: Float32Array,
    bOff: number,
    beta: number,
    C: Float32Array,
    cOff: number,
    ldc: number,
    bf16: boolean,
  ): void;
}
export const packedGemm = native as unknown as PackedGemm;

/**
 * fp32 products with at most this many rows stream the weight unpacked (the GEMM's few-row path), so need no
 * panels; under bf16 they use bf16 panels too, which halve the bytes such a product reads.
 */
const FEW_ROWS = 8;

interface Scope {
  /** the storages products may pack: the weights the scope was opened for */
  allowed: Set<Storage>;
  packed: Map<Storage, Map<string, object>>;
}

let scope: Scope | null = null;

/**
 * Runs fn with the given weights packed on first use by matmul and kept until fn returns (then freed). Nested
 * scopes add to the outer one. fn must not modify the weights.
 */
export function withPackedWeights<T>(weights: readonly Tensor[], fn: () => T): T {
  if (scope) {
    const added = weights.map((w) => w.storage).filter((s) => !scope!.allowed.has(s));
    for (const s of added) scope.allowed.add(s);
    try {
      return fn();
    } finally {
      for (const s of added) {
        scope.allowed.delete(s);
        release(scope, s);
      }
    }
  }
  const own: Scope = { allowed: new Set(weights.map((w) => w.storage)), packed: new Map() };
  scope = own;
  try {
    return fn();
  } finally {
    scope = null;
    for (const s of [...own.packed.keys()]) release(own, s);
  }
}

function release(sc: Scope, s: Storage): void {
  const m = sc.packed.get(s);
  if (!m) return;
  for (const h of m.values()) packedGemm.sgemmPackedFree(h);
  sc.packed.delete(s);
}

/**
 * The packed panels for b as the right operand of an [M × K] @ b [K × N] product, or null: no scope, b is not
 * one of its weights, or the product is one the few-row path computes unpacked.
 */
export function packedOperand(b: Tensor, trans: boolean, ld: number, M: number, precision: Precision): object | null {
  if (!scope || (M <= FEW_ROWS && precision !== 'bf16') || b.ndim !== 2) return null;
  const K = b.shape[0]!,
    N = b.shape[1]!;
  if (N <= FEW_ROWS || !scope.allowed.has(b.storage)) return null;
  const key = `${b.offset}:${K}x${N}:${trans ? 't' : 'n'}${ld}:${precision}`;
  let m = scope.packed.get(b.storage);
  if (!m) scope.packed.set(b.storage, (m = new Map()));
  let h = m.get(key);
  if (!h) {
    h = packedGemm.sgemmPackB(trans, K, N, b.data, b.offset, ld, precision === 'bf16');
    m.set(key, h);
  }
  return h;
}

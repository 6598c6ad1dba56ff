// Shared by the fp32 and bf16 GEMM tests: a GEMM case (layout, sizes, alpha/beta, padded leading dimensions,
// offsets, batches), running it natively, and checking every element of C's array against a float64 reference
// within a caller-given bound; elements outside the result (ld padding, gaps, before the offsets) must not change.
import assert from 'node:assert/strict';
import { gemm } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';

export const U32 = 2 ** -24; // float32 unit roundoff (round to nearest, 24-bit significand)
export const UBF16 = 2 ** -8; // bf16 unit roundoff (round to nearest even, 8-bit significand)

export interface Case {
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  /** extra elements per stored row (lda = row length + pad), per operand */
  padA: number;
  padB: number;
  padC: number;
  /** element offsets of the operands inside their arrays */
  offA: number;
  offB: number;
  offC: number;
  /** batch (1 for sgemm) and extra elements between consecutive matrices; strideB 0 when sharedB */
  batch: number;
  gap: number;
  sharedB: boolean;
}

export function base(ta: boolean, tb: boolean, M: number, N: number, K: number): Case {
  return { ta, tb, M, N, K, alpha: 1, beta: 0, padA: 0, padB: 0, padC: 0, offA: 0, offB: 0, offC: 0, batch: 1, gap: 0, sharedB: false };
}

export const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
export const ALPHA_BETA: [number, number][] = [
  [1, 0],
  [0.75, 0],
  [1, 1],
  [-1.5, 0.5],
  [2, -1],
];

export function randF32(n: number, rng: Random): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

interface Layout {
  lda: number;
  ldb: number;
  ldc: number;
  sa: number;
  sb: number;
  sc: number;
  lenA: number;
  lenB: number;
  lenC: number;
}

function layout(c: Case): Layout {
  const lda = (c.ta ? c.M : c.K) + c.padA;
  const ldb = (c.tb ? c.K : c.N) + c.padB;
  const ldc = c.N + c.padC;
  const sa = (c.ta ? c.K : c.M) * lda + c.gap;
  const sb = c.sharedB ? 0 : (c.tb ? c.N : c.K) * ldb + c.gap;
  const sc = c.M * ldc + c.gap;
  return {
    lda,
    ldb,
    ldc,
    sa,
    sb,
    sc,
    lenA: c.offA + c.batch * sa + 3,
    lenB: c.offB + Math.max(1, c.sharedB ? 1 : c.batch) * ((c.tb ? c.N : c.K) * ldb + c.gap) + 3,
    lenC: c.offC + c.batch * sc + 3,
  };
}

/** What the bound of one element of C is computed from. */
export interface ElementSums {
  /** Σ a·b in float64 over the operands as given */
  exact: number;
  /** Σ |a·b| */
  mag: number;
  /** Σ a'·b' and Σ |a'·b'| over the operands rounded by `round` (when the check passes one) */
  rounded: number;
  roundedMag: number;
  /** beta·C before the call (0 when beta is 0) */
  prev: number;
  K: number;
}

export interface Check {
  /** rounding applied to each operand value for the `rounded` sums (identity when absent) */
  round?: (x: number) => number;
  /** the value the element is compared with */
  expected: (s: ElementSums, alpha: number) => number;
  /** the allowed |got − expected| */
  tolerance: (s: ElementSums, alpha: number) => number;
}

/** The rigorous float32 bound: (K + 4)·u·(|alpha|·Σ|a·b| + |beta·c|) around alpha·Σa·b + beta·c. */
export const FP32_CHECK: Check = {
  expected: (s, alpha) => alpha * s.exact + s.prev,
  tolerance: (s, alpha) => (s.K + 4) * U32 * (Math.abs(alpha) * s.mag + Math.abs(s.prev)) + 1e-30,
};

/**
 * Runs the case natively (bf16 flag passed through) and checks every element against each check; returns the
 * largest |got − expected| / tolerance seen.
 */
export function checkCase(c: Case, rng: Random, checks: Check | readonly Check[] = FP32_CHECK, bf16 = false): number {
  const list = Array.isArray(checks) ? (checks as readonly Check[]) : [checks as Check];
  const L = layout(c);
  const A = randF32(L.lenA, rng),
    B = randF32(L.lenB, rng);
  const C = randF32(L.lenC, rng);
  if (c.beta === 0) C.fill(NaN); // must not leak: beta = 0 means C is not read
  const C0 = C.slice();
  if (c.batch === 1 && c.gap === 0 && !c.sharedB) gemm.sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.offA, L.lda, B, c.offB, L.ldb, c.beta, C, c.offC, L.ldc, bf16);
  else gemm.sgemmBatched(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.offA, L.lda, L.sa, B, c.offB, L.ldb, L.sb, c.beta, C, c.offC, L.ldc, L.sc, c.batch, bf16);
  const round = list.find((k) => k.round)?.round;
  const Ar = round ? Float64Array.from(A, round) : null,
    Br = round ? Float64Array.from(B, round) : null;
  const written = new Uint8Array(L.lenC);
  const what =
    `${c.ta ? 'T' : 'N'}${c.tb ? 'T' : 'N'} M=${c.M} N=${c.N} K=${c.K} alpha=${c.alpha} beta=${c.beta} ` +
    `pads=${c.padA},${c.padB},${c.padC} offs=${c.offA},${c.offB},${c.offC} batch=${c.batch} gap=${c.gap} sharedB=${c.sharedB}` +
    (bf16 ? ' bf16' : '');
  let worst = 0;
  for (let b = 0; b < c.batch; b++) {
    const a0 = c.offA + b * L.sa,
      b0 = c.offB + b * L.sb,
      c0 = c.offC + b * L.sc;
    for (let i = 0; i < c.M; i++)
      for (let j = 0; j < c.N; j++) {
        let exact = 0,
          mag = 0,
          rounded = 0,
          roundedMag = 0;
        for (let k = 0; k < c.K; k++) {
          const ai = a0 + (c.ta ? k * L.lda + i : i * L.lda + k),
            bi = b0 + (c.tb ? j * L.ldb + k : k * L.ldb + j);
          const av = A[ai]!,
            bv = B[bi]!;
          exact += av * bv;
          mag += Math.abs(av * bv);
          if (Ar) {
            const p = Ar[ai]! * Br![bi]!;
            rounded += p;
            roundedMag += Math.abs(p);
          }
        }
        const ci = c0 + i * L.ldc + j;
        const prev = c.beta === 0 ? 0 : c.beta * C0[ci]!;
        const s: ElementSums = { exact, mag, rounded, roundedMag, prev, K: c.K };
        const got = C[ci]!;
        list.forEach((check, n) => {
          const expected = check.expected(s, c.alpha),
            tol = check.tolerance(s, c.alpha);
          const err = Math.abs(got - expected);
          if (!(err <= tol)) assert.fail(`${what}: C[b=${b}][${i}][${j}] = ${got}, expected ${expected} (tolerance ${tol.toExponential(2)}, check ${n})`);
          worst = Math.max(worst, err / tol);
        });
        written[ci] = 1;
      }
  }
  for (let x = 0; x < L.lenC; x++) if (!written[x] && !Object.is(C[x], C0[x])) assert.fail(`${what}: element ${x} outside the result changed: ${C0[x]} -> ${C[x]}`);
  return worst;
}

// The bf16 GEMM (sgemm/sgemmBatched with bf16 = true: operands rounded to bf16 while packing, vdpbf16ps, fp32
// accumulation) against a float64 reference, on every layout, odd sizes, padded leading dimensions, offsets,
// alpha/beta, batches and the blocked paths. Two checks per element:
//
// 1. The derived bound against the exact product of the operands as given. Rounding to bf16 (8-bit significand,
//    nearest even) gives a' = a(1 + δa), b' = b(1 + δb) with |δ| ≤ u_b = 2^-8, so |a'b' − ab| ≤ (2u_b + u_b²)|ab|.
//    a'·b' is exact in fp32 (8 + 8 significant bits ≤ 24), and the K products are summed in fp32 with at most
//    K + 4 roundings on any element's path (the K-block sums, alpha, beta), each ≤ u = 2^-24 relative to the
//    running |sums| ≤ Σ|a'b'| ≤ (1 + u_b)²·Σ|ab|. Hence
//      |c − (alpha·Σab + beta·c0)| ≤ |alpha|·(2u_b + u_b² + (K + 4)·u·(1 + u_b)²)·Σ|ab| + (K + 4)·u·|beta·c0|.
//    (vdpbf16ps flushes denormals; the normal-distributed test data has none.)
// 2. Round to nearest even, exactly: against the float64 product of the operands rounded by the reference RNE,
//    the fp32 bound (K + 4)·u·(|alpha|·Σ|a'b'| + |beta·c0|). A kernel that truncated, or rounded ties away from
//    zero, misses this by orders of magnitude; a tie test checks the rounding bit by bit.
//
// Products with M or N up to 8 take the fp32 matrix-vector path even when bf16 is asked for, and a CPU without
// AVX512_BF16 runs fp32 throughout; for those, the fp32 bound is checked. Child processes run the same file with
// ALIGNKIT_NO_AVX512=1 (the AVX2 fallback) and ALIGNKIT_PORTABLE=1 (the portable path) and check the one notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { core } from '../../src/engine/native.js';
import { autocast, bf16Supported } from '../../src/engine/autocast.js';
import { gemm, matmul } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { ALPHA_BETA, LAYOUTS, U32, UBF16, base, checkCase, randF32, FP32_CHECK, type Case, type Check } from './gemm-cases.js';

const CHILD = process.env.ALIGNKIT_BF16_TEST_CHILD === '1';
const SIZES = [1, 7, 33, 129, 200] as const;

const f32 = new Float32Array(1),
  u32 = new Uint32Array(f32.buffer);
/** x (a float32 value) rounded to bf16, round to nearest even. */
export function bf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f32[0]!;
}

const DERIVED_BOUND: Check = {
  expected: (s, alpha) => alpha * s.exact + s.prev,
  tolerance: (s, alpha) => Math.abs(alpha) * (2 * UBF16 + UBF16 ** 2 + (s.K + 4) * U32 * (1 + UBF16) ** 2) * s.mag + (s.K + 4) * U32 * Math.abs(s.prev) + 1e-30,
};
const RNE_EXACT: Check = {
  round: bf16,
  expected: (s, alpha) => alpha * s.rounded + s.prev,
  tolerance: (s, alpha) => (s.K + 4) * U32 * (Math.abs(alpha) * s.roundedMag + Math.abs(s.prev)) + 1e-30,
};

/** Whether this product really runs in bf16 here. */
function bf16Path(c: Case): boolean {
  return bf16Supported() && c.M > 8 && c.N > 8 && c.K > 0;
}
function checks(c: Case): Check[] {
  return bf16Path(c) ? [DERIVED_BOUND, RNE_EXACT] : [FP32_CHECK];
}
function run(c: Case, rng: Random): number {
  return checkCase(c, rng, checks(c), true);
}

test('isa: avx512bf16 where the CPU has AVX512_BF16, the fallback in the child processes', () => {
  const isa = core.isa();
  if (CHILD) {
    assert.notEqual(isa, 'avx512bf16');
    assert.equal(bf16Supported(), false);
    console.log(`bf16-child isa=${isa}`);
  } else {
    assert.ok(['avx512bf16', 'avx2', 'portable'].includes(isa), `isa() = ${isa}`);
  }
});

test('bf16 sgemm: all four layouts, sizes {1,7,33,129,200} mixed, padded ld, offsets, alpha/beta', () => {
  const rng = new Random(31);
  let n = 0,
    bfCases = 0;
  for (const [ta, tb] of LAYOUTS)
    for (const M of SIZES)
      for (const N of SIZES)
        for (const K of SIZES) {
          const c = base(ta, tb, M, N, K);
          [c.alpha, c.beta] = ALPHA_BETA[n % ALPHA_BETA.length]!;
          if (n % 2) {
            c.padA = 3;
            c.padB = 5;
            c.padC = 2;
          }
          if (n % 3 === 1) {
            c.offA = 5;
            c.offB = 2;
            c.offC = 7;
          }
          run(c, rng);
          if (bf16Path(c)) bfCases++;
          n++;
        }
  assert.equal(n, 4 * SIZES.length ** 3);
  if (bf16Supported()) assert.equal(bfCases, 4 * 3 * 3 * SIZES.length);
});

test('bf16 sgemm: blocked paths (odd K past one KC block, N past one NC block, many M blocks, short M)', () => {
  const rng = new Random(32);
  for (const [ta, tb] of LAYOUTS) {
    run({ ...base(ta, tb, 37, 45, 801), beta: 1, padA: 1, padC: 3 }, rng); // 3 K blocks, the last with an odd k
    run({ ...base(ta, tb, 13, 3100, 21), alpha: 0.5, padB: 4 }, rng); // 2 N blocks, short M (shared A, split N)
    run({ ...base(ta, tb, 611, 70, 401), beta: -0.5, offA: 1, offB: 1, offC: 1 }, rng); // many M blocks
  }
});

test('bf16 sgemmBatched: strided and shared B, small and large matrices, every layout', () => {
  const rng = new Random(33);
  let n = 0;
  for (const [ta, tb] of LAYOUTS) {
    run({ ...base(ta, tb, 9, 33, 7), batch: 5, gap: 3, padA: 1 }, rng);
    run({ ...base(ta, tb, 33, 17, 129), batch: 4, sharedB: true, beta: 1, offB: 3 }, rng);
    run({ ...base(ta, tb, 129, 129, 129), batch: 3, gap: 1, sharedB: n % 2 === 1, alpha: 0.75, beta: 0.5 }, rng);
    n++;
  }
});

test('bf16 sgemm: the same results with 1 and 3 threads as with the default pool', () => {
  const before = core.getThreads();
  const rng = new Random(34);
  const M = 200,
    N = 129,
    K = 333;
  const A = randF32(M * K, rng),
    B = randF32(K * N, rng);
  const out = (t: number): Float32Array => {
    core.setThreads(t);
    const C = new Float32Array(M * N);
    gemm.sgemm(false, true, M, N, K, 1, A, 0, K, B, 0, K, 0, C, 0, N, true);
    return C;
  };
  try {
    const ref = out(before);
    assert.deepEqual(out(1), ref);
    assert.deepEqual(out(3), ref);
  } finally {
    core.setThreads(before);
  }
});

test('bf16 rounding is round-to-nearest-even, bit for bit (ties, near-ties, signs, magnitudes)', () => {
  // C = A·I with a 16×16 identity: every element of C is one operand value times 1, i.e. bf16(A) exactly.
  const n = 16;
  const ulp = 2 ** -7; // bf16 spacing in [1, 2)
  const specials = [
    1 + ulp / 2,
    1 + (3 * ulp) / 2,
    1 + ulp / 2 + 2 ** -20,
    1 + ulp / 2 - 2 ** -20,
    -(1 + ulp / 2),
    -(1 + (3 * ulp) / 2),
    3.14159265,
    -2.71828182,
    65504,
    1e30,
    -1e-30,
    1.17549435e-38 * 4,
    0,
    -0,
    0.1,
    1 / 3,
  ];
  const A = new Float32Array(n * n);
  const rng = new Random(35);
  for (let i = 0; i < A.length; i++) A[i] = i < specials.length ? specials[i]! : rng.normal() * 10 ** (rng.int(9) - 4);
  const I = new Float32Array(n * n);
  for (let i = 0; i < n; i++) I[i * n + i] = 1;
  const C = new Float32Array(n * n);
  gemm.sgemm(false, false, n, n, n, 1, A, 0, n, I, 0, n, 0, C, 0, n, true);
  const want = Float32Array.from(A, (x) => (bf16Supported() ? bf16(x) : x));
  for (let i = 0; i < A.length; i++) assert.ok(Object.is(C[i], want[i]) || C[i] === want[i], `bf16(${A[i]}) = ${C[i]}, expected ${want[i]}`);
  if (bf16Supported()) {
    assert.equal(C[0], 1); // tie: to the even neighbour (down)
    assert.equal(C[1], 1 + 2 * ulp); // tie: to the even neighbour (up)
    assert.equal(C[2], 1 + ulp); // just above a tie: up
    assert.equal(C[3], 1); // just below: down
  }
});

test('bf16 is in effect: errors are bf16-sized, far above the fp32 path on the same product', () => {
  const rng = new Random(36);
  const M = 129,
    N = 130,
    K = 257;
  const A = randF32(M * K, rng),
    B = randF32(K * N, rng);
  const exact = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k]!;
      for (let j = 0; j < N; j++) exact[i * N + j] += a * B[k * N + j]!;
    }
  const err = (bf: boolean): number => {
    const C = new Float32Array(M * N);
    gemm.sgemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C, 0, N, bf);
    let e = 0,
      s = 0;
    for (let i = 0; i < C.length; i++) {
      e += (C[i]! - exact[i]!) ** 2;
      s += exact[i]! ** 2;
    }
    return Math.sqrt(e / s);
  };
  const e32 = err(false),
    e16 = err(true);
  if (bf16Supported()) {
    // random rounding errors of relative size ~u_b/√3 on both operands: the result's relative error ~0.8·u_b·... ≈ 3e-3
    assert.ok(e16 > 100 * e32 && e16 > 5e-4 && e16 < 1e-2, `bf16 relative error ${e16}, fp32 ${e32}`);
  } else {
    assert.equal(e16, e32, 'without AVX512_BF16 a bf16 request computes exactly what fp32 does');
  }
});

test('autocast(bf16): matmul forward and backward products run in bf16; fp32 outside; nesting restores', () => {
  const rng = new Random(37);
  const a = Tensor.param(Tensor.from(randF32(40 * 50, rng), [40, 50]));
  const b = Tensor.param(Tensor.from(randF32(50 * 30, rng), [50, 30]));
  const g = Tensor.from(randF32(40 * 30, rng), [40, 30]);
  const prod = (precision?: 'bf16' | 'fp32'): { y: Float32Array; ga: Float32Array; gb: Float32Array } =>
    tidy(() => {
      a.zeroGrad();
      b.zeroGrad();
      const y = precision ? autocast(precision, () => matmul(a, b)) : matmul(a, b);
      y.backward(g); // outside the autocast block: the recorded precision is used
      return { y: y.toArray(), ga: a.grad!.toArray(), gb: b.grad!.toArray() };
    });
  // the expected values straight from the GEMM in each precision
  const direct = (bf: boolean): { y: Float32Array; ga: Float32Array; gb: Float32Array } => {
    const y = new Float32Array(40 * 30),
      ga = new Float32Array(40 * 50),
      gb = new Float32Array(50 * 30);
    gemm.sgemm(false, false, 40, 30, 50, 1, a.data, 0, 50, b.data, 0, 30, 0, y, 0, 30, bf);
    gemm.sgemm(false, true, 40, 50, 30, 1, g.data, 0, 30, b.data, 0, 30, 0, ga, 0, 50, bf);
    gemm.sgemm(true, false, 50, 30, 40, 1, a.data, 0, 50, g.data, 0, 30, 0, gb, 0, 30, bf);
    return { y, ga, gb };
  };
  const inBf16 = prod('bf16'),
    plain = prod(),
    nested = autocast('bf16', () => autocast('fp32', () => prod()));
  for (const k of ['y', 'ga', 'gb'] as const) {
    assert.deepEqual(inBf16[k], direct(true)[k], `${k} under autocast('bf16')`);
    assert.deepEqual(plain[k], direct(false)[k], `${k} without autocast`);
    assert.deepEqual(nested[k], direct(false)[k], `${k} under a nested autocast('fp32')`);
    if (bf16Supported()) assert.notDeepEqual(inBf16[k], plain[k]);
  }
  assert.deepEqual(matmul(a, b, { precision: 'bf16' }).toArray(), direct(true).y, 'the per-call precision option');
  assert.throws(() => autocast('fp16' as 'bf16', () => 0), /precision must be 'fp32' or 'bf16'/);
  for (const t of [a, b, g]) t.dispose();
});

if (!CHILD) {
  for (const [flag, isa] of [
    ['ALIGNKIT_NO_AVX512', 'avx2'],
    ['ALIGNKIT_PORTABLE', 'portable'],
  ] as const) {
    test(`fallback: with ${flag}=1 bf16 requests run fp32 (the same checks pass) and print one notice`, () => {
      const self = fileURLToPath(import.meta.url);
      const env: NodeJS.ProcessEnv = { ...process.env, [flag]: '1', ALIGNKIT_BF16_TEST_CHILD: '1' };
      delete env.NODE_TEST_CONTEXT;
      const r = spawnSync(process.execPath, ['--test-reporter=tap', self], { env, encoding: 'utf8', timeout: 300_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      assert.equal(r.status, 0, `child failed:\n${out.slice(-4000)}`);
      assert.match(out, new RegExp(`bf16-child isa=${isa}`));
      assert.match(out, /# fail 0/);
      const notices = out.match(/alignkit: bf16 was requested, but [^\n]*matrix products run in float32 instead/g) ?? [];
      assert.equal(notices.length, 1, `expected one notice, got ${notices.length}:\n${out.slice(-2000)}`);
    });
  }
}

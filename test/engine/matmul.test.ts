// The matmul op (src/engine/ops/matmul.ts) on the native GEMM: forward and both gradients against a float64
// reference for 2-D, batched (3-D and 4-D), a shared 2-D right operand with a 3-D left one, transposed and
// permuted views (passed as GEMM transpose flags or copied); the reference backward against finite differences,
// and one finite-difference check through the native forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, type Shape } from '../../src/engine/tensor.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';
import { assertClose, finiteDiff, nativeGradcheck, randArray, tensorOf } from '../helpers/check.js';

const U = 2 ** -24; // float32 unit roundoff

// ---------------------------------------------------------------- float64 reference
interface Dims {
  batch: number;
  M: number;
  K: number;
  N: number;
  shared: boolean;
}

function dims(aShape: Shape, bShape: Shape): Dims {
  const M = aShape[aShape.length - 2]!,
    K = aShape[aShape.length - 1]!,
    N = bShape[bShape.length - 1]!;
  const batch = aShape.slice(0, -2).reduce((x, y) => x * y, 1);
  return { batch, M, K, N, shared: bShape.length === 2 };
}

/** out = a @ b (row-major, contiguous) and the magnitude Σ|a·b| of every output element. */
function refMatmul(a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape): { out: Float64Array; mag: Float64Array } {
  const { batch, M, K, N, shared } = dims(aShape, bShape);
  const out = new Float64Array(batch * M * N),
    mag = new Float64Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    const a0 = t * M * K,
      b0 = shared ? 0 : t * K * N,
      o0 = t * M * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0,
          m = 0;
        for (let k = 0; k < K; k++) {
          const p = a[a0 + i * K + k]! * b[b0 + k * N + j]!;
          s += p;
          m += Math.abs(p);
        }
        out[o0 + i * N + j] = s;
        mag[o0 + i * N + j] = m;
      }
  }
  return { out, mag };
}

/** Gradients of Σ out·g with respect to a and b (b's summed over the batch when it is shared), with magnitudes. */
function refMatmulBackward(a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape, g: ArrayLike<number>) {
  const { batch, M, K, N, shared } = dims(aShape, bShape);
  const ga = new Float64Array(batch * M * K),
    gaMag = new Float64Array(batch * M * K);
  const gb = new Float64Array((shared ? 1 : batch) * K * N),
    gbMag = new Float64Array(gb.length);
  for (let t = 0; t < batch; t++) {
    const a0 = t * M * K,
      b0 = shared ? 0 : t * K * N,
      o0 = t * M * N;
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++) {
        let s = 0,
          m = 0;
        for (let j = 0; j < N; j++) {
          const p = g[o0 + i * N + j]! * b[b0 + k * N + j]!;
          s += p;
          m += Math.abs(p);
        }
        ga[a0 + i * K + k] = s;
        gaMag[a0 + i * K + k] = m;
      }
    for (let k = 0; k < K; k++)
      for (let j = 0; j < N; j++) {
        let s = 0,
          m = 0;
        for (let i = 0; i < M; i++) {
          const p = a[a0 + i * K + k]! * g[o0 + i * N + j]!;
          s += p;
          m += Math.abs(p);
        }
        gb[b0 + k * N + j] += s;
        gbMag[b0 + k * N + j] += m;
      }
  }
  return { ga, gaMag, gb, gbMag };
}

/** |got − expected| <= (terms + 4)·u·magnitude elementwise: the float32 rounding bound for a sum of `terms` products. */
function assertWithinBound(got: ArrayLike<number>, expected: ArrayLike<number>, mag: ArrayLike<number>, terms: number, what: string): void {
  assert.equal(got.length, expected.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const tol = (terms + 4) * U * mag[i]! + 1e-30;
    if (!(Math.abs(got[i]! - expected[i]!) <= tol)) assert.fail(`${what}[${i}]: got ${got[i]}, expected ${expected[i]} (tolerance ${tol.toExponential(2)})`);
  }
}

// ---------------------------------------------------------------- native vs reference
interface Operand {
  /** the stored (contiguous) shape of the leaf */
  stored: number[];
  /** how the operand is viewed from the leaf (identity, transpose, permute ...) */
  view: (t: Tensor) => Tensor;
}

const plain = (shape: number[]): Operand => ({ stored: shape, view: (t) => t });
/** an operand of shape [..., r, c] given as the transposed view of a stored [..., c, r] tensor */
const transposed = (shape: number[]): Operand => {
  const s = [...shape];
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1]!, s[s.length - 2]!];
  return { stored: s, view: (t) => t.transpose(-1, -2) };
};

function checkMatmul(aSpec: Operand, bSpec: Operand, seed: number, what: string): void {
  const rng = new Random(seed);
  const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);
  const aLeaf = tensorOf(randArray(size(aSpec.stored), rng), aSpec.stored, true);
  const bLeaf = tensorOf(randArray(size(bSpec.stored), rng), bSpec.stored, true);
  try {
    tidy(() => {
      const a = aSpec.view(aLeaf),
        b = bSpec.view(bLeaf);
      const av = a.toArray(),
        bv = b.toArray();
      const out = matmul(a, b);
      const { batch, M, K, N, shared } = dims(a.shape, b.shape);
      assert.deepEqual(out.shape, [...a.shape.slice(0, -2), M, N], `${what}: output shape`);
      const ref = refMatmul(av, a.shape, bv, b.shape);
      assertWithinBound(out.toArray(), ref.out, ref.mag, K, `${what}: forward`);

      const g = tensorOf(randArray(out.size, rng), out.shape);
      out.backward(g);
      const rb = refMatmulBackward(av, a.shape, bv, b.shape, g.toArray());
      assert.ok(aLeaf.grad && bLeaf.grad, `${what}: missing gradients`);
      assert.deepEqual(aLeaf.grad.shape, aLeaf.shape);
      assert.deepEqual(bLeaf.grad.shape, bLeaf.shape);
      assertWithinBound(aSpec.view(aLeaf.grad).toArray(), rb.ga, rb.gaMag, N, `${what}: grad a`);
      assertWithinBound(bSpec.view(bLeaf.grad).toArray(), rb.gb, rb.gbMag, shared ? batch * M : M, `${what}: grad b`);
    });
  } finally {
    aLeaf.zeroGrad();
    bLeaf.zeroGrad();
    aLeaf.dispose();
    bLeaf.dispose();
  }
}

test('reference matmul backward matches float64 finite differences (2-D, batched, shared B)', () => {
  const rng = new Random(1);
  const cases: [number[], number[]][] = [
    [
      [3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [2, 4, 2],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
  ];
  for (const [aShape, bShape] of cases) {
    const a = randArray(
      aShape.reduce((x, y) => x * y, 1),
      rng,
    );
    const b = randArray(
      bShape.reduce((x, y) => x * y, 1),
      rng,
    );
    const outSize = refMatmul(a, aShape, b, bShape).out.length;
    const R = randArray(outSize, rng);
    const f = (xs: Float64Array[]): number => {
      const o = refMatmul(xs[0]!, aShape, xs[1]!, bShape).out;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i]! * R[i]!;
      return s;
    };
    const [fa, fb] = finiteDiff(f, [a, b]);
    const { ga, gb } = refMatmulBackward(a, aShape, b, bShape, R);
    assertClose(ga, fa!, { rtol: 1e-7, atol: 1e-7 }, `ref grad a ${aShape}`);
    assertClose(gb, fb!, { rtol: 1e-7, atol: 1e-7 }, `ref grad b ${bShape}`);
  }
});

test('matmul 2-D: odd sizes, every combination of transposed views', () => {
  let seed = 10;
  for (const [M, K, N] of [
    [1, 1, 1],
    [7, 33, 1],
    [33, 7, 129],
    [129, 33, 7],
    [200, 129, 33],
  ] as const)
    for (const ta of [false, true])
      for (const tb of [false, true]) {
        const A = ta ? transposed([M, K]) : plain([M, K]);
        const B = tb ? transposed([K, N]) : plain([K, N]);
        checkMatmul(A, B, seed++, `[${M},${K}]${ta ? 'ᵀview' : ''} @ [${K},${N}]${tb ? 'ᵀview' : ''}`);
      }
});

test('matmul batched: 3-D and 4-D, transposed views, batch dims that do not flatten (copied)', () => {
  checkMatmul(plain([3, 7, 33]), plain([3, 33, 5]), 30, '3-D @ 3-D');
  checkMatmul(transposed([3, 7, 33]), transposed([3, 33, 5]), 31, '3-D ᵀview @ 3-D ᵀview');
  checkMatmul(plain([2, 3, 5, 7]), transposed([2, 3, 7, 9]), 32, '4-D @ 4-D ᵀview');
  // [2,3,M,K] viewed from a stored [3,2,M,K]: the batch dims are permuted and cannot be one stride
  checkMatmul({ stored: [3, 2, 5, 7], view: (t) => t.permute([1, 0, 2, 3]) }, plain([2, 3, 7, 4]), 33, 'permuted batch @ 4-D');
  // attention-like: many small matrices (the batch is split over threads)
  checkMatmul(plain([12, 17, 16]), transposed([12, 16, 17]), 34, 'attention scores');
  checkMatmul(plain([12, 17, 17]), plain([12, 17, 16]), 35, 'attention values');
});

test('matmul with a shared 2-D right operand (3-D left): folded into one GEMM or per batch', () => {
  checkMatmul(plain([4, 33, 7]), plain([7, 129]), 40, '3-D @ shared 2-D');
  checkMatmul(plain([2, 3, 7, 33]), transposed([33, 5]), 41, '4-D @ shared 2-D ᵀview');
  checkMatmul(transposed([3, 33, 7]), plain([7, 9]), 42, '3-D ᵀview (not contiguous) @ shared 2-D');
  checkMatmul({ stored: [7, 3, 4], view: (t) => t.slice(0, 2, 7).transpose(0, 1).transpose(1, 2) }, plain([5, 6]), 43, 'sliced, permuted 3-D @ shared 2-D');
  checkMatmul(plain([5, 1, 9]), plain([9, 200]), 44, 'single-row batches @ shared 2-D');
});

test('matmul: empty inner dimension gives zeros; clear errors for bad shapes', () => {
  tidy(() => {
    const out = matmul(Tensor.zeros([3, 0]), Tensor.zeros([0, 4]));
    assert.deepEqual(out.shape, [3, 4]);
    assert.deepEqual(Array.from(out.toArray()), new Array(12).fill(0));
    assert.throws(() => matmul(Tensor.zeros([3, 4]), Tensor.zeros([5, 2])), /matmul: inner dims differ, \[3, 4\] @ \[5, 2\]/);
    assert.throws(() => matmul(Tensor.zeros([2, 3, 4]), Tensor.zeros([3, 4, 2])), /matmul: batch dims differ/);
    assert.throws(() => matmul(Tensor.zeros([4]), Tensor.zeros([4, 2])), /matmul needs matrices/);
  });
});

test('matmul backward agrees with finite differences of the native forward', () => {
  const rng = new Random(50);
  const x = tensorOf(randArray(2 * 5 * 3, rng), [2, 5, 3], true); // viewed as [2, 3, 5]
  const w = tensorOf(randArray(5 * 4, rng), [5, 4], true);
  const y = tensorOf(randArray(2 * 4 * 6, rng), [2, 4, 6], true);
  try {
    nativeGradcheck(([a, b, c]) => matmul(matmul(a!.transpose(1, 2), b!), c!), [x, w, y], { maxProbe: 30 });
  } finally {
    for (const t of [x, w, y]) {
      t.zeroGrad();
      t.dispose();
    }
  }
});

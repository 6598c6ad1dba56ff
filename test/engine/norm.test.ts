// Normalisation, softmax family and embedding ops: the float64 references against finite differences, the
// native forward and backward against the references (odd sizes, extreme logits, ignore-index rows,
// non-contiguous inputs), native gradchecks, the float32 exp, determinism, error messages, and the portable
// (non-AVX2) kernels in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { core } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { embedding, entropyFromLogits, layerNorm, logSoftmax, normKernels, rmsNorm, selectiveLogSoftmax, softmax } from '../../src/engine/ops/norm.js';
import * as ref from './reference/norm.js';
import { ODD_SIZES, assertClose, f32round, finiteDiff, nativeGradcheck, randArray, tensorOf } from '../helpers/check.js';

const rng = new Random(20240607);

/** Random float32-representable values: N(mean, scale²). */
function vals(n: number, scale = 1, mean = 0): Float64Array {
  const a = randArray(n, rng, scale);
  for (let i = 0; i < n; i++) a[i] += mean;
  return f32round(a);
}

function randTargets(rows: number, V: number, ignoreEvery = 0): Int32Array {
  const t = new Int32Array(rows);
  for (let r = 0; r < rows; r++) t[r] = ignoreEvery > 0 && r % ignoreEvery === ignoreEvery - 1 ? -100 : rng.int(V);
  return t;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Runs build on fresh leaves holding `inputs` (null: absent), backpropagates R and returns the output values
 * and each leaf's gradient (null for absent inputs).
 */
function nativeRun(
  build: (ts: (Tensor | null)[]) => Tensor,
  inputs: ({ v: ArrayLike<number>; shape: number[] } | null)[],
  R: ArrayLike<number> | null,
): { out: Float32Array; shape: number[]; grads: (Float32Array | null)[] } {
  return tidy(() => {
    const leaves = inputs.map((i) => (i ? tensorOf(i.v, i.shape, R !== null) : null));
    const out = build(leaves);
    const res = { out: out.toArray(), shape: [...out.shape], grads: [] as (Float32Array | null)[] };
    if (R) {
      out.backward(Tensor.from(R, out.shape));
      res.grads = leaves.map((l) => (l && l.grad ? l.grad.toArray() : null));
    }
    for (const l of leaves) l?.dispose();
    return res;
  });
}

// ---- references against finite differences ----------------------------------------------------------

test('reference backward passes match float64 finite differences', () => {
  const close = { rtol: 1e-6, atol: 1e-7 };
  {
    const rows = 3,
      C = 7;
    const x = vals(rows * C, 1.5, 0.5),
      w = vals(C),
      b = vals(C),
      R = vals(rows * C);
    const fd = finiteDiff(([x, w, b]) => dot(ref.layerNormRef(x!, w!, b!, rows, C, 1e-5).y, R), [x, w, b]);
    const g = ref.layerNormBackwardRef(R, x, w, rows, C, 1e-5);
    assertClose(g.dx, fd[0]!, close, 'layerNorm dx');
    assertClose(g.dw, fd[1]!, close, 'layerNorm dw');
    assertClose(g.db, fd[2]!, close, 'layerNorm db');
  }
  {
    const rows = 3,
      C = 7;
    const x = vals(rows * C),
      w = vals(C),
      R = vals(rows * C);
    const fd = finiteDiff(([x, w]) => dot(ref.rmsNormRef(x!, w!, rows, C, 1e-6).y, R), [x, w]);
    const g = ref.rmsNormBackwardRef(R, x, w, rows, C, 1e-6);
    assertClose(g.dx, fd[0]!, close, 'rmsNorm dx');
    assertClose(g.dw, fd[1]!, close, 'rmsNorm dw');
  }
  {
    const outer = 2,
      C = 7,
      inner = 3;
    const x = vals(outer * C * inner, 2),
      R = vals(outer * C * inner);
    const fs = finiteDiff(([x]) => dot(ref.softmaxRef(x!, outer, C, inner), R), [x]);
    assertClose(ref.softmaxBackwardRef(x, R, outer, C, inner), fs[0]!, close, 'softmax dx');
    const fl = finiteDiff(([x]) => dot(ref.logSoftmaxRef(x!, outer, C, inner), R), [x]);
    assertClose(ref.logSoftmaxBackwardRef(x, R, outer, C, inner), fl[0]!, close, 'logSoftmax dx');
  }
  {
    const rows = 4,
      V = 33;
    const x = vals(rows * V, 3),
      t = Int32Array.from([5, -100, 0, 32]),
      g = vals(rows);
    const fd = finiteDiff(([x]) => dot(ref.selectiveLogSoftmaxRef(x!, t, rows, V), g), [x]);
    const dx = ref.selectiveLogSoftmaxBackwardRef(x, t, g, rows, V);
    assertClose(dx, fd[0]!, close, 'selectiveLogSoftmax dx');
    for (let j = 0; j < V; j++) assert.equal(dx[V + j], 0, 'ignored row has zero gradient');
  }
  {
    const V = 7,
      C = 5,
      ids = Int32Array.from([3, 0, 3, 6, 3, 1]);
    const w = vals(V * C),
      R = vals(ids.length * C);
    const fd = finiteDiff(([w]) => dot(ref.embeddingRef(w!, ids, V, C), R), [w]);
    assertClose(ref.embeddingBackwardRef(R, ids, V, C), fd[0]!, close, 'embedding dw');
  }
});

test('reference ops agree with closed forms on tiny inputs', () => {
  // softmax of [0, ln 3] = [1/4, 3/4]; entropy of that distribution; layerNorm of [1, 3] = [-1, 1]·rstd
  assertClose(ref.softmaxRef([0, Math.log(3)], 1, 2), [0.25, 0.75], { rtol: 1e-15, atol: 0 });
  assertClose(ref.entropyRef([0, Math.log(3)], 1, 2), [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))], { rtol: 1e-14, atol: 0 });
  assertClose(ref.layerNormRef([1, 3], null, null, 1, 2, 0).y, [-1, 1], { rtol: 1e-15, atol: 0 });
  assertClose(ref.rmsNormRef([3, 4], [2, 1], 1, 2, 0).y, [6 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)], { rtol: 1e-15, atol: 0 });
  assertClose(ref.selectiveLogSoftmaxRef([0, Math.log(3), 7], [1, -100, 0].slice(0, 1), 1, 3), [Math.log(3) - Math.log(1 + 3 + Math.exp(7))], { rtol: 1e-14, atol: 0 });
});

// ---- layerNorm / rmsNorm -----------------------------------------------------------------------------

test('layerNorm: native forward and backward match the reference on odd sizes', () => {
  for (const rows of ODD_SIZES)
    for (const C of ODD_SIZES) {
      const x = vals(rows * C, 2, 3),
        w = vals(C, 0.5, 1),
        b = vals(C),
        R = vals(rows * C);
      const what = `layerNorm rows=${rows} C=${C}`;
      const n = nativeRun(
        ([x, w, b]) => layerNorm(x!, w, b),
        [
          { v: x, shape: [rows, C] },
          { v: w, shape: [C] },
          { v: b, shape: [C] },
        ],
        R,
      );
      assertClose(n.out, ref.layerNormRef(x, w, b, rows, C, 1e-5).y, { rtol: 1e-5, atol: 5e-6 }, `${what} y`);
      const g = ref.layerNormBackwardRef(R, x, w, rows, C, 1e-5);
      // C = 1: dx is 0 up to the rounding of dy·w, amplified by rstd = 1/sqrt(eps)
      assertClose(n.grads[0]!, g.dx, { rtol: 1e-5, atol: C === 1 ? 1e-4 : 1e-5 }, `${what} dx`);
      assertClose(n.grads[1]!, g.dw, { rtol: 1e-5, atol: 2e-6 * Math.sqrt(rows) }, `${what} dw`);
      assertClose(n.grads[2]!, g.db, { rtol: 1e-5, atol: 1e-6 * Math.sqrt(rows) }, `${what} db`);
    }
  // no weight / no bias, eps given, 3-D input
  const rows = 6,
    C = 33,
    x = vals(rows * C),
    R = vals(rows * C);
  const n = nativeRun(([x]) => layerNorm(x!, null, null, 1e-3), [{ v: x, shape: [2, 3, C] }], R);
  assert.deepEqual(n.shape, [2, 3, C]);
  assertClose(n.out, ref.layerNormRef(x, null, null, rows, C, 1e-3).y, { rtol: 1e-5, atol: 1e-5 }, 'layerNorm no affine y');
  assertClose(n.grads[0]!, ref.layerNormBackwardRef(R, x, null, rows, C, 1e-3).dx, { rtol: 1e-4, atol: 1e-4 }, 'layerNorm no affine dx');
  // weight only: bias gets no gradient slot
  const w = vals(C);
  const m = nativeRun(
    ([x, w]) => layerNorm(x!, w, null),
    [
      { v: x, shape: [rows, C] },
      { v: w, shape: [C] },
    ],
    R,
  );
  assertClose(m.out, ref.layerNormRef(x, w, null, rows, C).y, { rtol: 1e-5, atol: 1e-5 }, 'layerNorm weight only y');
  assertClose(m.grads[1]!, ref.layerNormBackwardRef(R, x, w, rows, C).dw, { rtol: 1e-5, atol: 1e-5 }, 'layerNorm weight only dw');
});

test('layerNorm: a non-contiguous input gets its gradient through the copy', () => {
  const rows = 7,
    C = 33,
    xt = vals(rows * C),
    R = vals(rows * C); // xt is x transposed: [C, rows]
  const x = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) x[r * C + c] = xt[c * rows + r]!;
  const n = nativeRun(([t]) => layerNorm(t!.transpose(0, 1), null, null), [{ v: xt, shape: [C, rows] }], R);
  assertClose(n.out, ref.layerNormRef(x, null, null, rows, C).y, { rtol: 1e-5, atol: 1e-5 }, 'y');
  const dx = ref.layerNormBackwardRef(R, x, null, rows, C).dx;
  const dxt = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) dxt[c * rows + r] = dx[r * C + c]!;
  assertClose(n.grads[0]!, dxt, { rtol: 1e-4, atol: 1e-4 }, 'dx (transposed back)');
});

test('rmsNorm: native forward and backward match the reference on odd sizes', () => {
  for (const rows of ODD_SIZES)
    for (const C of ODD_SIZES) {
      const x = vals(rows * C, 2),
        w = vals(C, 0.5, 1),
        R = vals(rows * C);
      const what = `rmsNorm rows=${rows} C=${C}`;
      const n = nativeRun(
        ([x, w]) => rmsNorm(x!, w),
        [
          { v: x, shape: [rows, C] },
          { v: w, shape: [C] },
        ],
        R,
      );
      assertClose(n.out, ref.rmsNormRef(x, w, rows, C, 1e-6).y, { rtol: 1e-5, atol: 2e-6 }, `${what} y`);
      const g = ref.rmsNormBackwardRef(R, x, w, rows, C, 1e-6);
      assertClose(n.grads[0]!, g.dx, { rtol: 1e-5, atol: 1e-5 }, `${what} dx`);
      assertClose(n.grads[1]!, g.dw, { rtol: 1e-5, atol: 2e-6 * Math.sqrt(rows) }, `${what} dw`);
    }
  const x = vals(5 * 7, 3),
    R = vals(5 * 7);
  const n = nativeRun(([x]) => rmsNorm(x!, null, 1e-5), [{ v: x, shape: [5, 7] }], R);
  assertClose(n.out, ref.rmsNormRef(x, null, 5, 7, 1e-5).y, { rtol: 1e-5, atol: 1e-5 }, 'rmsNorm no weight y');
  assertClose(n.grads[0]!, ref.rmsNormBackwardRef(R, x, null, 5, 7, 1e-5).dx, { rtol: 1e-4, atol: 1e-4 }, 'rmsNorm no weight dx');
});

test('layerNorm and rmsNorm backward are deterministic and independent of the thread count', () => {
  const rows = 300,
    C = 129,
    x = vals(rows * C),
    w = vals(C),
    b = vals(C),
    R = vals(rows * C);
  const run = () =>
    nativeRun(
      ([x, w, b]) => layerNorm(x!, w, b),
      [
        { v: x, shape: [rows, C] },
        { v: w, shape: [C] },
        { v: b, shape: [C] },
      ],
      R,
    ).grads;
  const runRms = () =>
    nativeRun(
      ([x, w]) => rmsNorm(x!, w),
      [
        { v: x, shape: [rows, C] },
        { v: w, shape: [C] },
      ],
      R,
    ).grads;
  const a = run(),
    ar = runRms();
  const threads = core.getThreads();
  core.setThreads(1);
  let c: (Float32Array | null)[], cr: (Float32Array | null)[];
  try {
    c = run();
    cr = runRms();
  } finally {
    core.setThreads(threads);
  }
  const b2 = run();
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(a[i], b2[i], `layerNorm grad ${i} repeats bit for bit`);
    assert.deepEqual(a[i], c[i], `layerNorm grad ${i} is the same with 1 thread`);
  }
  assert.deepEqual(ar[1], cr[1], 'rmsNorm dw is the same with 1 thread');
  const g = ref.layerNormBackwardRef(R, x, w, rows, C);
  assertClose(a[1]!, g.dw, { rtol: 1e-5, atol: 1e-4 }, 'dw at 300 rows');
});

// ---- softmax / logSoftmax ----------------------------------------------------------------------------

/** Rows of logits with the hard cases: ±80 alternating, all equal, one dominant, and a −inf (masked) entry. */
function extremeRows(C: number): Float64Array[] {
  const alt = new Float64Array(C).map((_, j) => (j % 2 ? 80 : -80));
  const eq = new Float64Array(C).fill(80);
  const dom = new Float64Array(C).fill(-80);
  dom[C >> 1] = 80;
  const big = vals(C, 40);
  return [alt, eq, dom, big];
}

test('softmax and logSoftmax: native matches the reference on odd sizes and extreme logits', () => {
  for (const rows of ODD_SIZES)
    for (const C of ODD_SIZES) {
      const x = vals(rows * C, 3),
        R = vals(rows * C);
      for (const log of [false, true]) {
        const what = `${log ? 'logSoftmax' : 'softmax'} rows=${rows} C=${C}`;
        const n = nativeRun(([x]) => (log ? logSoftmax(x!) : softmax(x!)), [{ v: x, shape: [rows, C] }], R);
        const y = log ? ref.logSoftmaxRef(x, rows, C) : ref.softmaxRef(x, rows, C);
        assertClose(n.out, y, log ? { rtol: 1e-6, atol: 2e-6 } : { rtol: 1e-5, atol: 1e-7 }, `${what} y`);
        const dx = log ? ref.logSoftmaxBackwardRef(x, R, rows, C) : ref.softmaxBackwardRef(x, R, rows, C);
        assertClose(n.grads[0]!, dx, { rtol: 1e-4, atol: 1e-5 }, `${what} dx`);
      }
    }
  for (const C of [7, 129]) {
    const rowsArr = extremeRows(C);
    const rows = rowsArr.length;
    const x = new Float64Array(rows * C);
    rowsArr.forEach((r, i) => x.set(r, i * C));
    const R = vals(rows * C);
    const ns = nativeRun(([x]) => softmax(x!), [{ v: x, shape: [rows, C] }], R);
    assertClose(ns.out, ref.softmaxRef(x, rows, C), { rtol: 1e-5, atol: 1e-7 }, `softmax extreme C=${C}`);
    assertClose(ns.grads[0]!, ref.softmaxBackwardRef(x, R, rows, C), { rtol: 1e-4, atol: 1e-5 }, `softmax extreme dx C=${C}`);
    for (let j = 0; j < C; j++) assert.ok(Math.abs(ns.out[C + j]! - 1 / C) < 1e-6 / C, 'equal logits give 1/C');
    const nl = nativeRun(([x]) => logSoftmax(x!), [{ v: x, shape: [rows, C] }], R);
    assertClose(nl.out, ref.logSoftmaxRef(x, rows, C), { rtol: 1e-6, atol: 2e-6 }, `logSoftmax extreme C=${C}`);
    assertClose(nl.grads[0]!, ref.logSoftmaxBackwardRef(x, R, rows, C), { rtol: 1e-4, atol: 1e-4 }, `logSoftmax extreme dx C=${C}`);
  }
  // a masked (−inf) logit: probability 0, log-probability −inf, everything else finite
  const m = tidy(() => softmax(Tensor.from([1, -Infinity, 2], [1, 3])).toArray());
  assert.equal(m[1], 0);
  assertClose(m, ref.softmaxRef([1, -Infinity, 2], 1, 3), { rtol: 1e-6, atol: 1e-7 }, 'masked softmax');
  const lm = tidy(() => logSoftmax(Tensor.from([1, -Infinity, 2], [1, 3])).toArray());
  assert.equal(lm[1], -Infinity);
});

test('softmax and logSoftmax along other dims (transpose path) match the reference', () => {
  const shape = [3, 7, 5],
    x = vals(3 * 7 * 5, 2),
    R = vals(3 * 7 * 5);
  for (const [dim, outer, C, inner] of [
    [0, 1, 3, 35],
    [1, 3, 7, 5],
    [-2, 3, 7, 5],
  ] as const)
    for (const log of [false, true]) {
      const n = nativeRun(([t]) => (log ? logSoftmax(t!, dim) : softmax(t!, dim)), [{ v: x, shape }], R);
      assert.deepEqual(n.shape, shape);
      const y = log ? ref.logSoftmaxRef(x, outer, C, inner) : ref.softmaxRef(x, outer, C, inner);
      assertClose(n.out, y, { rtol: 1e-5, atol: 2e-6 }, `dim ${dim} log=${log} y`);
      const dx = log ? ref.logSoftmaxBackwardRef(x, R, outer, C, inner) : ref.softmaxBackwardRef(x, R, outer, C, inner);
      assertClose(n.grads[0]!, dx, { rtol: 1e-4, atol: 1e-5 }, `dim ${dim} log=${log} dx`);
    }
});

// ---- selectiveLogSoftmax / entropy ---------------------------------------------------------------------

test('selectiveLogSoftmax: native matches the reference on odd sizes, ignore-index rows and extreme logits', () => {
  for (const rows of ODD_SIZES)
    for (const V of ODD_SIZES) {
      const x = vals(rows * V, 4),
        t = randTargets(rows, V, 3),
        g = vals(rows);
      const what = `selectiveLogSoftmax rows=${rows} V=${V}`;
      const n = nativeRun(([x]) => selectiveLogSoftmax(x!, t), [{ v: x, shape: [rows, V] }], g);
      assert.deepEqual(n.shape, [rows]);
      assertClose(n.out, ref.selectiveLogSoftmaxRef(x, t, rows, V), { rtol: 1e-6, atol: 2e-6 }, `${what} out`);
      const dx = ref.selectiveLogSoftmaxBackwardRef(x, t, g, rows, V);
      assertClose(n.grads[0]!, dx, { rtol: 1e-5, atol: 1e-6 }, `${what} dx`);
      for (let r = 0; r < rows; r++)
        if (t[r]! < 0) {
          assert.equal(n.out[r], 0, `${what}: ignored row ${r} gives 0`);
          for (let j = 0; j < V; j++) assert.equal(n.grads[0]![r * V + j], 0, `${what}: ignored row ${r} has zero gradient`);
        }
    }
  for (const V of [7, 129]) {
    const rowsArr = extremeRows(V),
      rows = rowsArr.length;
    const x = new Float64Array(rows * V);
    rowsArr.forEach((r, i) => x.set(r, i * V));
    const t = Int32Array.from([0, 3, V >> 1, V - 1]),
      g = vals(rows);
    const n = nativeRun(([x]) => selectiveLogSoftmax(x!, t), [{ v: x, shape: [rows, V] }], g);
    assertClose(n.out, ref.selectiveLogSoftmaxRef(x, t, rows, V), { rtol: 1e-6, atol: 2e-6 }, `extreme V=${V} out`);
    assertClose(n.grads[0]!, ref.selectiveLogSoftmaxBackwardRef(x, t, g, rows, V), { rtol: 1e-5, atol: 1e-6 }, `extreme V=${V} dx`);
    assert.ok(Math.abs(n.out[1]! + Math.log(V)) < 1e-6, 'equal logits give −log V');
  }
  // 3-D logits: output has the leading dims
  const x = vals(2 * 3 * 7),
    t = Int32Array.from([0, 1, 2, -1, 4, 6]);
  const n = nativeRun(([x]) => selectiveLogSoftmax(x!, t), [{ v: x, shape: [2, 3, 7] }], null);
  assert.deepEqual(n.shape, [2, 3]);
  assertClose(n.out, ref.selectiveLogSoftmaxRef(x, t, 6, 7), { rtol: 1e-6, atol: 2e-6 }, '3-D out');
});

test('selectiveLogSoftmax: GPT-2 vocabulary (V = 50257) rows', () => {
  const rows = 3,
    V = 50257;
  const x = vals(rows * V, 3);
  for (let j = 0; j < V; j += 97) x[2 * V + j] = j % 2 ? 80 : -80; // a row with extreme entries
  const t = Int32Array.from([50256, 17, 0]),
    g = vals(rows);
  const n = nativeRun(([x]) => selectiveLogSoftmax(x!, t), [{ v: x, shape: [rows, V] }], g);
  assertClose(n.out, ref.selectiveLogSoftmaxRef(x, t, rows, V), { rtol: 1e-6, atol: 2e-6 }, 'V=50257 out');
  assertClose(n.grads[0]!, ref.selectiveLogSoftmaxBackwardRef(x, t, g, rows, V), { rtol: 1e-5, atol: 1e-9 }, 'V=50257 dx');
  const e = tidy(() => noGrad(() => entropyFromLogits(tensorOf(x, [rows, V])).toArray()));
  assertClose(e, ref.entropyRef(x, rows, V), { rtol: 1e-5, atol: 1e-5 }, 'V=50257 entropy');
});

test('entropyFromLogits: matches the reference; has no gradient and says so', () => {
  for (const rows of [1, 7, 33])
    for (const V of ODD_SIZES) {
      const x = vals(rows * V, 3);
      const e = tidy(() => entropyFromLogits(tensorOf(x, [rows, V])).toArray());
      assertClose(e, ref.entropyRef(x, rows, V), { rtol: 1e-5, atol: 2e-6 }, `entropy rows=${rows} V=${V}`);
    }
  const rowsArr = extremeRows(33),
    x = new Float64Array(4 * 33);
  rowsArr.forEach((r, i) => x.set(r, i * 33));
  const e = tidy(() => entropyFromLogits(tensorOf(x, [2, 2, 33])));
  assert.deepEqual(e.shape, [2, 2]);
  const ev = e.toArray();
  assertClose(ev, ref.entropyRef(x, 4, 33), { rtol: 1e-5, atol: 2e-6 }, 'entropy extreme');
  assert.ok(Math.abs(ev[1]! - Math.log(33)) < 1e-5, 'equal logits: entropy log V');
  const masked = tidy(() => entropyFromLogits(Tensor.from([0, -Infinity, 0], [3])).item());
  assert.ok(Math.abs(masked - Math.log(2)) < 1e-6, `masked logit contributes 0 (got ${masked})`);
  // requires grad: error under grad, fine under noGrad or detached
  const p = Tensor.param(tensorOf(vals(14), [2, 7]));
  assert.throws(() => entropyFromLogits(p), /entropyFromLogits: has no gradient; call it under noGrad\(\)/);
  const a = noGrad(() => tidy(() => entropyFromLogits(p).toArray()));
  const b = tidy(() => {
    const d = p.detach();
    return entropyFromLogits(d).toArray();
  });
  assert.deepEqual(a, b);
  p.dispose();
});

// ---- embedding -----------------------------------------------------------------------------------------

test('embedding: native forward and backward match the reference (repeated ids), deterministically', () => {
  for (const V of ODD_SIZES)
    for (const C of ODD_SIZES) {
      const n = 33,
        ids = new Int32Array(n).map(() => rng.int(V));
      ids[1] = ids[0]!; // at least one repeat
      const w = vals(V * C),
        R = vals(n * C);
      const res = nativeRun(([w]) => embedding(w!, ids, [3, 11]), [{ v: w, shape: [V, C] }], R);
      assert.deepEqual(res.shape, [3, 11, C]);
      assertClose(res.out, ref.embeddingRef(w, ids, V, C), { rtol: 0, atol: 0 }, `embedding V=${V} C=${C}`);
      assertClose(res.grads[0]!, ref.embeddingBackwardRef(R, ids, V, C), { rtol: 1e-6, atol: 1e-6 }, `embedding dw V=${V} C=${C}`);
    }
  // large enough to use several column blocks: same bits with 1 thread, and sums in id order
  const V = 50,
    C = 768,
    n = 1024,
    ids = new Int32Array(n).map(() => rng.int(V)),
    w = vals(V * C),
    R = vals(n * C);
  const a = nativeRun(([w]) => embedding(w!, ids, [n]), [{ v: w, shape: [V, C] }], R).grads[0]!;
  const threads = core.getThreads();
  core.setThreads(1);
  let b: Float32Array;
  try {
    b = nativeRun(([w]) => embedding(w!, ids, [n]), [{ v: w, shape: [V, C] }], R).grads[0]!;
  } finally {
    core.setThreads(threads);
  }
  assert.deepEqual(a, b, 'embedding dw does not depend on the thread count');
  const seq = new Float32Array(V * C); // float32 sums in id order, as the kernel adds them
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) seq[ids[i]! * C + c] = Math.fround(seq[ids[i]! * C + c]! + Math.fround(R[i * C + c]!));
  assert.deepEqual(a, seq, 'embedding dw adds rows in id order');
});

// ---- gradchecks through the native forward -------------------------------------------------------------

test('nativeGradcheck: every op', () => {
  const leaf = (v: ArrayLike<number>, shape: number[]) => Tensor.param(tensorOf(v, shape));
  const all: Tensor[] = [];
  const mk = (v: ArrayLike<number>, shape: number[]) => {
    const t = leaf(v, shape);
    all.push(t);
    return t;
  };
  const x = mk(vals(5 * 7, 1.5, 1), [5, 7]),
    w = mk(vals(7, 0.5, 1), [7]),
    b = mk(vals(7), [7]);
  nativeGradcheck(([x, w, b]) => layerNorm(x!, w!, b!), [x, w, b]);
  nativeGradcheck(([x, w]) => rmsNorm(x!, w!), [x, w]);
  nativeGradcheck(([x]) => softmax(x!), [x]);
  nativeGradcheck(([x]) => logSoftmax(x!), [x]);
  nativeGradcheck(([x]) => softmax(x!, 0), [x]);
  const l = mk(vals(4 * 33, 2), [4, 33]);
  const t = Int32Array.from([3, -100, 32, 0]);
  nativeGradcheck(([l]) => selectiveLogSoftmax(l!, t), [l], { maxProbe: 40 });
  const e = mk(vals(9 * 5), [9, 5]);
  const ids = Int32Array.from([8, 0, 8, 3, 3, 3]);
  nativeGradcheck(([e]) => embedding(e!, ids, [2, 3]), [e], { maxProbe: 45 });
  for (const a of all) a.dispose();
});

// ---- exp, errors, portable path ------------------------------------------------------------------------

test('float32 exp: relative error near 1 ulp over the normal range; special values', () => {
  const n = 400_000,
    x = new Float32Array(n),
    o = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = -87 + (175 * i) / n + 1e-3 * Math.sin(i);
  normKernels.expF32(x, o, n);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[i]!);
    worst = Math.max(worst, Math.abs(o[i]! - e) / e);
  }
  assert.ok(worst < 2.5e-7, `worst relative error ${worst}`);
  const sp = Float32Array.from([0, NaN, Infinity, -Infinity, 89, -105, -1e30, 1e30, -103]);
  const so = new Float32Array(sp.length);
  normKernels.expF32(sp, so, sp.length);
  assert.equal(so[0], 1);
  assert.ok(Number.isNaN(so[1]));
  assert.deepEqual(Array.from(so.slice(2, 8)), [Infinity, 0, Infinity, 0, 0, Infinity]);
  assert.equal(so[8], Math.fround(Math.exp(-103)), 'subnormal result');
});

test('bad inputs give errors naming the op and the shapes', () => {
  tidy(() => {
    const x = Tensor.zeros([2, 7]);
    assert.throws(() => layerNorm(x, Tensor.zeros([5]), null), /layerNorm: weight \[5\] does not match the last dim of x \[2, 7\]/);
    assert.throws(() => layerNorm(x, null, Tensor.zeros([7, 1])), /layerNorm: bias \[7, 1\] does not match/);
    assert.throws(() => layerNorm(x, null, null, -1), /layerNorm: eps must be/);
    assert.throws(() => rmsNorm(x, Tensor.zeros([6])), /rmsNorm: weight \[6\] does not match the last dim of x \[2, 7\]/);
    assert.throws(() => softmax(x, 2), /softmax: dim 2 is out of range for tensor\[2, 7\]/);
    assert.throws(() => logSoftmax(Tensor.scalar(1)), /logSoftmax: needs at least one dim/);
    assert.throws(() => selectiveLogSoftmax(x, Int32Array.from([0, 7])), /selectiveLogSoftmax: target 7 \(row 1\) is out of range for vocabulary size 7/);
    assert.throws(() => selectiveLogSoftmax(x, Int32Array.from([0])), /selectiveLogSoftmax: 1 targets for logits \[2, 7\] \(2 rows\)/);
    assert.throws(() => embedding(x, Int32Array.from([1, 0, 9]), [3]), /embedding: id 9 \(position 2\) is out of range for vocabulary size 2/);
    assert.throws(() => embedding(x, Int32Array.from([-1]), [1]), /embedding: id -1 \(position 0\) is out of range for vocabulary size 2/);
    assert.throws(() => embedding(x, Int32Array.from([1, 0]), [3]), /embedding: 2 ids do not fill shape \[3\]/);
    assert.throws(() => embedding(Tensor.zeros([7]), Int32Array.from([1]), [1]), /embedding: weight must be \[V, C\], got tensor\[7\]/);
  });
});

test('portable kernels (ALIGNKIT_PORTABLE=1, child process): selectiveLogSoftmax and layerNorm match the reference', () => {
  const u = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);
  const code = `
    import { Tensor, tidy } from ${u('../../src/engine/tensor.js')};
    import { core } from ${u('../../src/engine/native.js')};
    import { Random } from ${u('../../src/engine/random.js')};
    import { layerNorm, selectiveLogSoftmax } from ${u('../../src/engine/ops/norm.js')};
    import * as ref from ${u('./reference/norm.js')};
    import { assertClose, f32round, randArray, tensorOf } from ${u('../helpers/check.js')};
    const rng = new Random(5);
    const out = { isa: core.isa(), checks: 0 };
    tidy(() => {
      for (const [rows, V] of [[7, 33], [33, 129], [2, 50257]]) {
        const x = f32round(randArray(rows * V, rng, 3)), g = f32round(randArray(rows, rng));
        const t = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? -100 : (r * 7919) % V));
        const l = tensorOf(x, [rows, V], true);
        const y = selectiveLogSoftmax(l, t);
        assertClose(y.toArray(), ref.selectiveLogSoftmaxRef(x, t, rows, V), { rtol: 1e-6, atol: 2e-6 }, 'portable sel out ' + V);
        y.backward(Tensor.from(g, [rows]));
        assertClose(l.grad.toArray(), ref.selectiveLogSoftmaxBackwardRef(x, t, g, rows, V), { rtol: 1e-5, atol: 1e-7 }, 'portable sel dx ' + V);
        l.dispose();
        out.checks++;
      }
      for (const [rows, C] of [[7, 33], [129, 7], [33, 129]]) {
        const x = f32round(randArray(rows * C, rng, 2)).map((v) => v + 3), w = f32round(randArray(C, rng)), b = f32round(randArray(C, rng));
        const R = f32round(randArray(rows * C, rng));
        const xt = tensorOf(x, [rows, C], true), wt = tensorOf(w, [C], true), bt = tensorOf(b, [C], true);
        const y = layerNorm(xt, wt, bt);
        assertClose(y.toArray(), ref.layerNormRef(x, w, b, rows, C).y, { rtol: 1e-5, atol: 5e-6 }, 'portable ln y');
        y.backward(Tensor.from(R, [rows, C]));
        const gr = ref.layerNormBackwardRef(R, x, w, rows, C);
        assertClose(xt.grad.toArray(), gr.dx, { rtol: 1e-4, atol: 1e-4 }, 'portable ln dx');
        assertClose(wt.grad.toArray(), gr.dw, { rtol: 1e-5, atol: 2e-4 }, 'portable ln dw');
        assertClose(bt.grad.toArray(), gr.db, { rtol: 1e-5, atol: 2e-4 }, 'portable ln db');
        for (const p of [xt, wt, bt]) p.dispose();
        out.checks++;
      }
    });
    console.log(JSON.stringify(out));
  `;
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ALIGNKIT_PORTABLE: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(res.status, 0, `child failed:\n${res.stderr}`);
  const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as { isa: string; checks: number };
  assert.equal(out.isa, 'portable');
  assert.equal(out.checks, 6);
});

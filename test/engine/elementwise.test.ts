// Elementwise ops, broadcasting, dropout and reductions: native forward and backward against the float64
// reference (test/engine/reference/elementwise.ts), the reference backward against finite differences, a few
// native gradchecks, dropout determinism, error messages, and the portable (non-AVX2) path in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { core } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import * as E from '../../src/engine/ops/elementwise.js';
import type { TensorLike } from '../../src/engine/ops/elementwise.js';
import * as R from './reference/elementwise.js';
import type { Arr } from './reference/elementwise.js';
import { ODD_SIZES, assertClose, f32round, finiteDiff, nativeGradcheck, randArray } from '../helpers/check.js';

// ---- inputs -------------------------------------------------------------------------------------------

type Gen = 'normal' | 'positive' | 'nonzero' | 'mask' | 'cond' | 'ties';
type Kind = 'contig' | 'transposed' | 'sliced';
type In = { shape: number[]; kind?: Kind; gen?: Gen; grad?: boolean } | { number: number };

function values(n: number, gen: Gen, rng: Random): Float64Array {
  const a = randArray(n, rng);
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (gen === 'positive') a[i] = Math.abs(v) + 0.2;
    else if (gen === 'nonzero') a[i] = Math.sign(v) * (Math.abs(v) + 0.3);
    else if (gen === 'mask') a[i] = v > 0 ? 1 : 0;
    else if (gen === 'cond') a[i] = v > 0.3 ? 1 : v < -0.8 ? -2.5 : 0;
    else if (gen === 'ties') a[i] = Math.round(v);
  }
  return f32round(a);
}

interface Made {
  leaf: Tensor | null; // what receives .grad
  arg: TensorLike; // what the op sees
  arr: Arr; // the values the op sees, for the reference
  viewGrad(): Float32Array | null; // the gradient with respect to `arg`, row-major
}

function make(spec: In, rng: Random): Made {
  if ('number' in spec) return { leaf: null, arg: spec.number, arr: R.scalarArr(spec.number), viewGrad: () => null };
  const { shape, kind = 'contig', gen = 'normal', grad = true } = spec;
  const n = shape.reduce((p, d) => p * d, 1);
  let leaf: Tensor, view: Tensor, back: (g: Tensor) => Tensor;
  if (kind === 'contig') {
    leaf = Tensor.from(values(n, gen, rng), shape);
    view = leaf;
    back = (g) => g;
  } else if (kind === 'transposed') {
    const base = [...shape];
    const k = base.length;
    [base[k - 2], base[k - 1]] = [base[k - 1]!, base[k - 2]!];
    leaf = Tensor.from(values(n, gen, rng), base);
    view = leaf.transpose(-2, -1);
    back = (g) => g.transpose(-2, -1);
  } else {
    const base = [...shape];
    const last = base.length - 1;
    base[last]! += 3;
    leaf = Tensor.from(
      values(
        base.reduce((p, d) => p * d, 1),
        gen,
        rng,
      ),
      base,
    );
    view = leaf.slice(last, 1, shape[last]! + 1);
    back = (g) => g.slice(last, 1, shape[last]! + 1);
  }
  if (grad) {
    // make the leaf trainable, then take the view again so the view is recorded on the tape
    Tensor.param(leaf);
    if (view !== leaf) view.dispose();
    view = kind === 'contig' ? leaf : kind === 'transposed' ? leaf.transpose(-2, -1) : leaf.slice(shape.length - 1, 1, shape[shape.length - 1]! + 1);
  }
  const arr = R.arr(Float64Array.from(view.toArray()), shape);
  return { leaf: grad ? leaf : null, arg: view, arr, viewGrad: () => (grad && leaf.grad ? back(leaf.grad).toArray() : null) };
}

interface Tol {
  rtol?: number;
  atol?: number;
  grtol?: number;
  gatol?: number;
}

interface Case {
  name: string;
  inputs: In[];
  native: (xs: TensorLike[]) => Tensor;
  ref: (xs: Arr[]) => Arr;
  refBwd: (xs: Arr[], g: Arr) => (Arr | null)[];
  tol?: Tol;
  fd?: boolean; // include in the finite-difference check of the reference (small, smooth cases)
}

const ARITH: Tol = { rtol: 1e-6, atol: 1e-7, grtol: 1e-5, gatol: 1e-6 };
const TRANS: Tol = { rtol: 1e-5, atol: 1e-6, grtol: 2e-5, gatol: 2e-6 };

/** Runs a case natively and compares the output and every input gradient with the reference. */
function checkCase(c: Case, seed: number): void {
  const rng = new Random(seed);
  const made = c.inputs.map((s) => make(s, rng));
  const tol = { ...ARITH, ...c.tol };
  try {
    tidy(() => {
      const out = c.native(made.map((m) => m.arg));
      const ref = c.ref(made.map((m) => m.arr));
      assert.deepEqual(out.shape, ref.shape, `${c.name}: output shape`);
      assertClose(out.toArray(), ref.data, { rtol: tol.rtol, atol: tol.atol }, `${c.name} forward`);
      if (!out.requiresGrad) return;
      const G = values(ref.data.length, 'normal', rng);
      out.backward(Tensor.from(G, out.shape));
      const want = c.refBwd(
        made.map((m) => m.arr),
        R.arr(G, ref.shape),
      );
      made.forEach((m, i) => {
        const got = m.viewGrad();
        const w = want[i];
        if (!w) {
          assert.equal(got, null, `${c.name}: input ${i} should get no gradient`);
          return;
        }
        if (!m.leaf) return;
        assert.ok(got, `${c.name}: input ${i} got no gradient`);
        assertClose(got, w.data, { rtol: tol.grtol, atol: tol.gatol }, `${c.name} grad ${i}`);
      });
    });
  } finally {
    for (const m of made) m.leaf?.dispose();
  }
}

/** The reference backward of a case against central differences of its reference forward (float64). */
function checkRefGrad(c: Case, seed: number): void {
  const rng = new Random(seed);
  const made = c.inputs.map((s) => make(s, rng));
  try {
    const arrs = made.map((m) => m.arr);
    const out = c.ref(arrs);
    const G = R.arr(randArray(out.data.length, rng), out.shape);
    const want = c.refBwd(arrs, G);
    const diffable = want.map((w) => w !== null);
    const xs = arrs.filter((_, i) => diffable[i]).map((a) => a.data);
    const f = (vs: Float64Array[]): number => {
      let k = 0;
      const ins = arrs.map((a, i) => (diffable[i] ? { data: vs[k++]!, shape: a.shape } : a));
      const y = c.ref(ins);
      let s = 0;
      for (let i = 0; i < y.data.length; i++) s += y.data[i]! * G.data[i]!;
      return s;
    };
    const fd = finiteDiff(f, xs);
    let k = 0;
    want.forEach((w, i) => {
      if (!w) return;
      assertClose(w.data, fd[k++]!, { rtol: 1e-6, atol: 1e-7 }, `${c.name}: reference grad ${i} vs finite differences`);
    });
  } finally {
    for (const m of made) m.leaf?.dispose();
  }
}

// ---- cases --------------------------------------------------------------------------------------------

const UNARY_GEN: Partial<Record<R.UnaryOp, Gen>> = { log: 'positive', sqrt: 'positive' };
const UNARY_TOL: Partial<Record<R.UnaryOp, Tol>> = {
  exp: TRANS,
  log: TRANS,
  sigmoid: TRANS,
  logsigmoid: TRANS,
  tanh: TRANS,
  gelu_tanh: TRANS,
  gelu_erf: TRANS,
  silu: TRANS,
};

function unaryCall(op: R.UnaryOp, x: Tensor, p: readonly number[]): Tensor {
  switch (op) {
    case 'neg':
      return E.neg(x);
    case 'scale':
      return E.scale(x, p[0]!);
    case 'exp':
      return E.exp(x);
    case 'log':
      return E.log(x);
    case 'sqrt':
      return E.sqrt(x);
    case 'square':
      return E.square(x);
    case 'abs':
      return E.abs(x);
    case 'sigmoid':
      return E.sigmoid(x);
    case 'logsigmoid':
      return E.logsigmoid(x);
    case 'tanh':
      return E.tanh(x);
    case 'relu':
      return E.relu(x);
    case 'gelu_tanh':
      return E.gelu(x);
    case 'gelu_erf':
      return E.gelu(x, 'none');
    case 'silu':
      return E.silu(x);
    case 'clamp':
      return E.clamp(x, p[0] === -Infinity ? undefined : p[0], p[1] === Infinity ? undefined : p[1]);
  }
}

function unaryCase(op: R.UnaryOp, input: In, p: readonly number[] = [], extra = ''): Case {
  const spec = 'number' in input ? input : { ...input, gen: input.gen ?? UNARY_GEN[op] ?? 'normal' };
  return {
    name: `${op}${extra} ${'shape' in spec ? `[${spec.shape.join(',')}] ${spec.kind ?? 'contig'}` : ''}`,
    inputs: [spec],
    native: ([x]) => unaryCall(op, x as Tensor, p),
    ref: ([x]) => R.refUnary(op, x!, p),
    refBwd: ([x], g) => [R.refUnaryBackward(op, x!, g, p)],
    tol: UNARY_TOL[op],
    fd: 'shape' in spec && spec.shape.reduce((a, d) => a * d, 1) <= 64,
  };
}

const UNARY_OPS: [R.UnaryOp, number[], string][] = [
  ['neg', [], ''],
  ['scale', [-1.75], ''],
  ['exp', [], ''],
  ['log', [], ''],
  ['sqrt', [], ''],
  ['square', [], ''],
  ['abs', [], ''],
  ['sigmoid', [], ''],
  ['logsigmoid', [], ''],
  ['tanh', [], ''],
  ['relu', [], ''],
  ['gelu_tanh', [], ''],
  ['gelu_erf', [], ''],
  ['silu', [], ''],
  ['clamp', [-0.5, 0.75], ''],
  ['clamp', [-0.5, Infinity], ' min only'],
  ['clamp', [-Infinity, 0.25], ' max only'],
];

const UNARY_SHAPES: In[] = [
  ...ODD_SIZES.map((n) => ({ shape: [n] })),
  { shape: [] },
  { shape: [3, 33] },
  { shape: [7, 33], kind: 'transposed' },
  { shape: [5, 129], kind: 'sliced' },
  { shape: [2, 7, 33], kind: 'transposed' },
];

type BinFn = (a: TensorLike, b: TensorLike) => Tensor;
const BINARY_FNS: Record<R.BinaryOp, BinFn> = {
  add: E.add,
  sub: E.sub,
  mul: E.mul,
  div: E.div,
  minimum: E.minimum,
  maximum: E.maximum,
  swiglu: (a, b) => E.swiglu(a as Tensor, b as Tensor),
};

/** Broadcasting patterns [a, b] for the binary ops. */
const PATTERNS: [In, In][] = [
  [{ shape: [2, 7, 33] }, { shape: [2, 7, 33] }],
  [{ shape: [2, 7, 33] }, { shape: [33] }],
  [{ shape: [3, 7, 129] }, { shape: [7, 1] }],
  [{ shape: [2, 7, 33] }, { shape: [1] }],
  [{ shape: [33] }, { shape: [3, 7, 33] }],
  [{ shape: [2, 7, 1] }, { shape: [1, 1, 33] }],
  [{ shape: [7, 33] }, { shape: [] }],
  [{ shape: [1] }, { shape: [1] }],
  [{ shape: [129] }, { shape: [129] }],
  [{ shape: [7, 33], kind: 'transposed' }, { shape: [33] }],
  [
    { shape: [7, 33], kind: 'sliced' },
    { shape: [7, 33], kind: 'transposed' },
  ],
  [{ shape: [33, 7] }, { shape: [33, 1], kind: 'sliced' }],
  [{ shape: [7, 33] }, { number: 0.75 }],
  [{ number: -1.5 }, { shape: [7, 33] }],
];

function binaryCase(op: R.BinaryOp, a: In, b: In, gen: Gen | null = null): Case {
  const genB: Gen = op === 'div' ? 'nonzero' : 'normal';
  const sa = 'number' in a ? a : { ...a, gen: gen ?? a.gen ?? 'normal' };
  const sb = 'number' in b ? b : { ...b, gen: gen ?? b.gen ?? genB };
  const d = (s: In): string => ('number' in s ? `${s.number}` : `[${s.shape.join(',')}]${s.kind && s.kind !== 'contig' ? ` ${s.kind}` : ''}`);
  const small = [sa, sb].every((s) => 'number' in s || s.shape.reduce((p, x) => p * x, 1) <= 64);
  return {
    name: `${op} ${d(sa)} with ${d(sb)}${gen ? ` (${gen})` : ''}`,
    inputs: [sa, sb],
    native: ([x, y]) => BINARY_FNS[op](x!, y!),
    ref: ([x, y]) => R.refBinary(op, x!, y!),
    refBwd: ([x, y], g) => {
      const [ga, gb] = R.refBinaryBackward(op, x!, y!, g);
      return ['number' in sa ? null : ga, 'number' in sb ? null : gb];
    },
    tol: op === 'swiglu' ? TRANS : undefined,
    fd: small && gen !== 'ties',
  };
}

const ALL_CASES: Case[] = [];
for (const [op, p, extra] of UNARY_OPS) for (const s of UNARY_SHAPES) ALL_CASES.push(unaryCase(op, s, p, extra));
for (const op of Object.keys(BINARY_FNS) as R.BinaryOp[])
  for (const [a, b] of PATTERNS) {
    if (op === 'swiglu' && ('number' in a || 'number' in b)) continue;
    ALL_CASES.push(binaryCase(op, a, b));
  }
// small cases for the finite-difference check of the reference
for (const op of Object.keys(BINARY_FNS) as R.BinaryOp[]) {
  ALL_CASES.push(binaryCase(op, { shape: [3, 5] }, { shape: [5] }));
  ALL_CASES.push(binaryCase(op, { shape: [2, 3, 4] }, { shape: [3, 1] }));
}
// ties: minimum/maximum split the gradient equally (native vs reference; finite differences do not apply)
for (const op of ['minimum', 'maximum'] as const) {
  ALL_CASES.push(binaryCase(op, { shape: [7, 33] }, { shape: [7, 33] }, 'ties'));
  ALL_CASES.push(binaryCase(op, { shape: [7, 33] }, { shape: [33] }, 'ties'));
  ALL_CASES.push(binaryCase(op, { shape: [7, 33] }, { number: 1 }, 'ties'));
}

// where
const WHERE_PATTERNS: [In, In, In][] = [
  [{ shape: [2, 7, 33], gen: 'cond' }, { shape: [2, 7, 33] }, { shape: [2, 7, 33] }],
  [{ shape: [7, 1], gen: 'cond' }, { shape: [3, 7, 33] }, { number: -0.25 }],
  [{ shape: [33], gen: 'cond' }, { number: 2 }, { shape: [5, 1] }],
  [{ shape: [7, 33], gen: 'cond', kind: 'transposed' }, { shape: [33] }, { shape: [7, 33], kind: 'sliced' }],
  [{ shape: [], gen: 'cond' }, { shape: [4] }, { shape: [4] }],
  [{ shape: [3, 4], gen: 'cond' }, { shape: [4] }, { shape: [3, 1] }],
];
for (const [c, a, b] of WHERE_PATTERNS)
  ALL_CASES.push({
    name: `where cond[${'shape' in c ? c.shape.join(',') : ''}]`,
    inputs: [c, a, b],
    native: ([cc, x, y]) => E.where(cc as Tensor, x!, y!),
    ref: ([cc, x, y]) => R.refWhere(cc!, x!, y!),
    refBwd: ([cc, x, y], g) => {
      const [ga, gb] = R.refWhereBackward(cc!, x!, y!, g);
      return [null, 'number' in a ? null : ga, 'number' in b ? null : gb];
    },
    fd: [c, a, b].every((s) => 'number' in s || s.shape.reduce((p, x) => p * x, 1) <= 64),
  });

// reductions
const REDUCE_PATTERNS: [number[], Kind, number | number[] | undefined, boolean][] = [
  [[7, 33], 'contig', undefined, false],
  [[7, 33], 'contig', 0, false],
  [[7, 33], 'contig', 1, true],
  [[7, 33], 'contig', -1, false],
  [[7, 33], 'contig', [0, 1], true],
  [[3, 5, 7], 'contig', [0, 2], false],
  [[3, 5, 7], 'contig', [0, 2], true],
  [[3, 5, 7], 'contig', 1, false],
  [[3, 5, 7], 'contig', [0, 1], false],
  [[3, 5, 7], 'contig', [], false],
  [[2, 1, 3, 1, 5], 'contig', [1, 2, 4], true],
  [[33, 7], 'transposed', 1, false],
  [[33, 7], 'transposed', undefined, false],
  [[5, 33], 'sliced', -1, true],
  [[129], 'contig', 0, false],
  [[1], 'contig', undefined, false],
  [[], 'contig', undefined, false],
  [[1031, 257], 'contig', 0, false], // column sums over several row chunks
  [[257, 1031], 'contig', -1, false],
  [[3, 40009], 'contig', 1, true], // rows longer than one chunk
  [[4, 33, 9], 'contig', 1, false],
];
for (const [shape, kind, dims, keepdim] of REDUCE_PATTERNS) {
  const tag = `[${shape.join(',')}] ${kind} dims=${JSON.stringify(dims)} keepdim=${keepdim}`;
  const big = shape.reduce((p, d) => p * d, 1) > 64;
  ALL_CASES.push({
    name: `sum ${tag}`,
    inputs: [{ shape, kind }],
    native: ([x]) => E.sum(x as Tensor, dims, keepdim),
    ref: ([x]) => R.refSum(x!, dims, keepdim),
    refBwd: ([x], g) => [R.refSumBackward(x!, dims, g)],
    tol: { rtol: 1e-6, atol: 1e-6 },
    fd: !big,
  });
  ALL_CASES.push({
    name: `mean ${tag}`,
    inputs: [{ shape, kind }],
    native: ([x]) => E.mean(x as Tensor, dims, keepdim),
    ref: ([x]) => R.refMean(x!, dims, keepdim),
    refBwd: ([x], g) => [R.refMeanBackward(x!, dims, g)],
    tol: { rtol: 1e-6, atol: 1e-7 },
    fd: !big,
  });
}

// masked reductions
const MASK_PATTERNS: [In, In, number | number[] | undefined][] = [
  [{ shape: [4, 33] }, { shape: [4, 33], gen: 'mask' }, 1],
  [{ shape: [4, 33] }, { shape: [4, 33], gen: 'mask' }, undefined],
  [{ shape: [3, 7, 5] }, { shape: [7, 5], gen: 'mask' }, [1, 2]],
  [{ shape: [4, 33], kind: 'transposed' }, { shape: [33], gen: 'mask' }, 1],
  [{ shape: [2, 5] }, { shape: [2, 5], gen: 'mask', grad: true }, -1],
];
for (const [x, m, dims] of MASK_PATTERNS) {
  const tag = `x[${'shape' in x ? x.shape.join(',') : ''}] mask[${'shape' in m ? m.shape.join(',') : ''}] dims=${JSON.stringify(dims)}`;
  ALL_CASES.push({
    name: `maskedSum ${tag}`,
    inputs: [x, m],
    native: ([a, b]) => E.maskedSum(a as Tensor, b as Tensor, dims),
    ref: ([a, b]) => R.refMaskedSum(a!, b!, dims),
    refBwd: ([a, b], g) => [R.refMaskedSumBackward(a!, b!, dims, g), null],
    tol: { rtol: 1e-6, atol: 1e-6 },
    fd: true,
  });
  ALL_CASES.push({
    name: `maskedMean ${tag}`,
    inputs: [x, m],
    native: ([a, b]) => E.maskedMean(a as Tensor, b as Tensor, dims),
    ref: ([a, b]) => R.refMaskedMean(a!, b!, dims),
    refBwd: ([a, b], g) => [R.refMaskedMeanBackward(a!, b!, dims, g), null],
    tol: { rtol: 1e-6, atol: 1e-6 },
    fd: true,
  });
}

// concat and stack
const CONCAT_PATTERNS: [In[], number][] = [
  [[{ shape: [2, 3, 5] }, { shape: [2, 4, 5] }, { shape: [2, 1, 5] }], 1],
  [[{ shape: [2, 3, 5] }, { shape: [1, 3, 5] }], 0],
  [[{ shape: [7, 3] }, { shape: [7, 33], kind: 'sliced' }, { shape: [7, 5], kind: 'transposed' }], -1],
  [[{ shape: [129] }], 0],
  [[{ shape: [3, 4] }, { shape: [3, 4], grad: false }], 0],
];
for (const [ins, dim] of CONCAT_PATTERNS)
  ALL_CASES.push({
    name: `concat dim=${dim} ${ins.map((s) => ('shape' in s ? `[${s.shape.join(',')}]` : '')).join(' ')}`,
    inputs: ins,
    native: (xs) => E.concat(xs as Tensor[], dim),
    ref: (xs) => R.refConcat(xs, dim),
    refBwd: (xs, g) => R.refConcatBackward(xs, dim, g).map((a, i) => ('shape' in ins[i]! && ins[i]!.grad === false ? null : a)),
    fd: true,
  });
const STACK_PATTERNS: [In[], number][] = [
  [[{ shape: [3, 7] }, { shape: [3, 7] }, { shape: [3, 7] }], 0],
  [[{ shape: [3, 7] }, { shape: [3, 7], kind: 'transposed' }], 1],
  [[{ shape: [3, 7] }, { shape: [3, 7], kind: 'sliced' }], 2],
  [[{ shape: [5] }, { shape: [5] }], -1],
  [[{ shape: [] }, { shape: [] }, { shape: [] }], 0],
];
for (const [ins, dim] of STACK_PATTERNS)
  ALL_CASES.push({
    name: `stack dim=${dim} ${ins.map((s) => ('shape' in s ? `[${s.shape.join(',')}]${s.kind ?? ''}` : '')).join(' ')}`,
    inputs: ins,
    native: (xs) => E.stack(xs as Tensor[], dim),
    ref: (xs) => R.refStack(xs, dim),
    refBwd: (xs, g) => R.refStackBackward(xs, dim, g),
    fd: true,
  });

// dropout (a fixed mask: linear in x)
for (const [shape, kind, p, seed] of [
  [[7, 33], 'contig', 0.1, 5],
  [[7, 33], 'transposed', 0.5, 77],
  [[129], 'sliced', 0.9, 4242],
  [[3, 5], 'contig', 1, 3],
] as [number[], Kind, number, number][])
  ALL_CASES.push({
    name: `dropout [${shape.join(',')}] ${kind} p=${p}`,
    inputs: [{ shape, kind }],
    native: ([x]) => E.dropout(x as Tensor, p, seed),
    ref: ([x]) => R.refDropout(x!, p, seed),
    refBwd: ([x], g) => [R.refDropoutBackward(x!, p, seed, g)],
    tol: { rtol: 1e-6, atol: 1e-7 },
    fd: shape.reduce((a, d) => a * d, 1) <= 64,
  });

// ---- tests ----------------------------------------------------------------------------------------------

test('every op: native forward and backward match the float64 reference (odd sizes, broadcasting, views)', () => {
  let seed = 1;
  for (const c of ALL_CASES) checkCase(c, seed++);
});

test('reference backward matches central finite differences (float64)', () => {
  let seed = 1000;
  let n = 0;
  for (const c of ALL_CASES) {
    if (!c.fd) continue;
    checkRefGrad(c, seed++);
    n++;
  }
  assert.ok(n > 80, `only ${n} cases were checked`);
});

test('reference math: erf and GELU agree with known values and textbook formulas', () => {
  assertClose([R.erf64(0.5), R.erf64(1), R.erf64(2)], [0.5204998778130465, 0.8427007929497148, 0.9953222650189527], { rtol: 1e-14, atol: 0 });
  assertClose([R.erfc64(3), R.erfc64(5), R.erfc64(-1), R.erfc64(0.1), R.erfc64(10)], [2.2090496998585445e-5, 1.5374597944280347e-12, 1.8427007929497148, 0.8875370839817152, 2.0884875837625446e-45], {
    rtol: 1e-13,
    atol: 0,
  });
  // GPT-2's gelu_new and the exact GELU at 1
  assertClose([R.UNARY.gelu_tanh.f(1, []), R.UNARY.gelu_erf.f(1, [])], [0.8411919906082768, 0.8413447460685429], { rtol: 1e-14, atol: 0 });
  // the cancellation-free forms equal the textbook ones where those are accurate
  for (let x = -4; x <= 4; x += 0.37) {
    const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
    assertClose([R.UNARY.gelu_tanh.f(x, [])], [0.5 * x * (1 + Math.tanh(u))], { rtol: 1e-12, atol: 1e-15 });
    assertClose([R.UNARY.logsigmoid.f(x, [])], [Math.log(1 / (1 + Math.exp(-x)))], { rtol: 1e-12, atol: 0 });
  }
});

test('native transcendentals stay accurate over wide ranges and at special values', () => {
  tidy(() => {
    const n = 20001;
    const grid = (lo: number, hi: number): Tensor =>
      Tensor.from(
        Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1)),
        [n],
      );
    const check = (name: string, y: Tensor, x: Tensor, f: (v: number) => number, rtol: number, atol = 0): void => {
      const xs = x.toArray();
      assertClose(y.toArray(), Array.from(xs, f), { rtol, atol }, name);
    };
    const wide = grid(-30, 30);
    check('exp', E.exp(grid(-87, 88)), grid(-87, 88), Math.exp, 5e-7);
    const pos = Tensor.from(
      Array.from({ length: n }, (_, i) => Math.exp(-80 + (160 * i) / (n - 1))),
      [n],
    );
    check('log', E.log(pos), pos, Math.log, 5e-7, 1e-7);
    check('tanh', E.tanh(wide), wide, Math.tanh, 5e-7);
    check('sigmoid', E.sigmoid(grid(-80, 30)), grid(-80, 30), (v) => 1 / (1 + Math.exp(-v)), 5e-7);
    check('logsigmoid', E.logsigmoid(grid(-80, 80)), grid(-80, 80), R.UNARY.logsigmoid.f as (v: number) => number, 1e-6);
    check('silu', E.silu(grid(-80, 30)), grid(-80, 30), (v) => v / (1 + Math.exp(-v)), 5e-7);
    check('gelu tanh', E.gelu(grid(-9, 9)), grid(-9, 9), (v) => R.UNARY.gelu_tanh.f(v, []), 1e-5);
    check('gelu erf', E.gelu(grid(-9, 9), 'none'), grid(-9, 9), (v) => R.UNARY.gelu_erf.f(v, []), 1e-5);
    const sp = Tensor.from([0, Infinity, -Infinity, NaN, 1e-45, -1], [6]);
    assert.deepEqual(Array.from(E.exp(sp).toArray()).slice(0, 4), [1, Infinity, 0, NaN]);
    const lg = E.log(sp).toArray();
    assert.deepEqual(
      Array.from(lg).map((v, i) => (i === 4 ? 0 : Number.isNaN(v) ? 'NaN' : v)),
      [-Infinity, Infinity, 'NaN', 'NaN', 0, 'NaN'],
    );
    assertClose([lg[4]!], [Math.log(Math.fround(1e-45))], { rtol: 2e-7, atol: 0 }, 'log of a subnormal');
    assert.deepEqual(Array.from(E.tanh(sp).toArray()).slice(0, 3), [0, 1, -1]);
    assert.deepEqual(Array.from(E.sigmoid(sp).toArray()).slice(0, 3), [0.5, 1, 0]);
    assert.ok(Number.isNaN(E.relu(sp).toArray()[3]!), 'relu keeps NaN');
    assert.ok(Number.isNaN(E.maximum(sp, 0).toArray()[3]!), 'maximum propagates NaN');
  });
});

test('nativeGradcheck: finite differences through the native forward', () => {
  const rng = new Random(9);
  const p = (shape: number[], gen: Gen = 'normal'): Tensor =>
    Tensor.param(
      Tensor.from(
        values(
          shape.reduce((a, d) => a * d, 1),
          gen,
          rng,
        ),
        shape,
      ),
    );
  const a = p([5, 7]),
    b = p([7], 'nonzero'),
    c = p([5, 1]);
  try {
    nativeGradcheck(([x, y]) => E.div(x!, y!), [a, b]);
    nativeGradcheck(([x, y]) => E.swiglu(x!, y!), [a, c]);
    nativeGradcheck(([x]) => E.gelu(x!, 'none'), [a]);
    nativeGradcheck(([x]) => E.gelu(x!), [a]);
    nativeGradcheck(([x]) => E.logsigmoid(E.scale(x!, 3)), [a]);
    nativeGradcheck(([x, y]) => E.mean(E.mul(E.tanh(x!), y!), 0), [a, c]);
    nativeGradcheck(([x, y]) => E.concat([E.sigmoid(x!), E.exp(y!)], 1), [a, c]);
  } finally {
    for (const t of [a, b, c]) t.dispose();
  }
});

test('clamp: gradient 1 on the boundaries, 0 outside; minimum/maximum split ties equally', () => {
  const x = Tensor.param(Tensor.from([-2, -1, 0, 1, 2], [5]));
  const a = Tensor.param(Tensor.from([1, 2, 3], [3]));
  const b = Tensor.param(Tensor.from([1, 5, 0], [3]));
  try {
    tidy(() => {
      const y = E.clamp(x, -1, 1);
      assert.deepEqual(Array.from(y.toArray()), [-1, -1, 0, 1, 1]);
      E.sum(y).backward();
      assert.deepEqual(Array.from(x.grad!.toArray()), [0, 1, 1, 1, 0]);
      E.sum(E.minimum(a, b)).backward();
      assert.deepEqual(Array.from(a.grad!.toArray()), [0.5, 1, 0]);
      assert.deepEqual(Array.from(b.grad!.toArray()), [0.5, 0, 1]);
      a.zeroGrad();
      b.zeroGrad();
      E.sum(E.maximum(a, b)).backward();
      assert.deepEqual(Array.from(a.grad!.toArray()), [0.5, 0, 1]);
      assert.deepEqual(Array.from(b.grad!.toArray()), [0.5, 1, 0]);
      assert.deepEqual(Array.from(E.clamp(x, 1, -1).toArray()), [-1, -1, -1, -1, -1]); // min > max gives max
    });
  } finally {
    for (const t of [x, a, b]) t.dispose();
  }
});

test('no gradient flows to where() conditions or masks', () => {
  const cond = Tensor.param(Tensor.from([1, 0, 2], [3]));
  const mask = Tensor.param(Tensor.from([1, 0, 1], [3]));
  const x = Tensor.param(Tensor.from([1, 2, 3], [3]));
  try {
    tidy(() => {
      E.sum(E.where(cond, x, 0)).backward();
      assert.equal(cond.grad, null);
      assert.deepEqual(Array.from(x.grad!.toArray()), [1, 0, 1]);
      x.zeroGrad();
      E.maskedMean(x, mask).backward();
      assert.equal(mask.grad, null);
      assert.deepEqual(Array.from(x.grad!.toArray()), [0.5, 0, 0.5]);
      assert.equal(E.maskedMean(x, mask).item(), 2);
    });
  } finally {
    for (const t of [cond, mask, x]) t.dispose();
  }
});

test('large inputs take the parallel paths and still match the reference', () => {
  checkCase(unaryCase('gelu_tanh', { shape: [257, 1031] }), 501);
  checkCase(unaryCase('exp', { shape: [1031, 257], kind: 'transposed' }), 502);
  checkCase(binaryCase('add', { shape: [1024, 301] }, { shape: [301] }), 503);
  checkCase(binaryCase('mul', { shape: [301, 1024] }, { number: 0.5 }), 504);
  checkCase(binaryCase('swiglu', { shape: [517, 513] }, { shape: [517, 513] }), 505);
  // a sum over a million elements, accumulated in double: exact up to the final rounding
  tidy(() => {
    const rng = new Random(506);
    const v = values(1 << 20, 'normal', rng);
    for (let i = 0; i < v.length; i++) v[i]! += 3; // a large mean: float accumulation would drift
    const x = Tensor.from(v, [1024, 1024]);
    let s = 0;
    for (const e of v) s += e;
    assertClose([E.sum(x).item()], [Math.fround(s)], { rtol: 1e-7, atol: 0 }, 'sum of 2^20');
    assertClose([E.mean(x).item()], [s / v.length], { rtol: 1e-7, atol: 0 }, 'mean of 2^20');
    // the same bits whatever the thread count
    const threads = core.getThreads();
    const y = Tensor.from(v.subarray(0, 3 * 40009), [3, 40009]);
    const run = (): Float32Array[] => [E.sum(x).toArray(), E.sum(x, 0).toArray(), E.sum(x, 1).toArray(), E.sum(y, 1).toArray()];
    let one: Float32Array[], three: Float32Array[];
    try {
      core.setThreads(1);
      one = run();
      core.setThreads(3);
      three = run();
    } finally {
      core.setThreads(threads);
    }
    assert.deepEqual(three, one, 'reductions do not depend on the thread count');
    assert.deepEqual(run(), one);
  });
});

test('dropout: deterministic in (seed, index), thread-count independent, keep rate 1−p, backward reuses the mask', () => {
  tidy(() => {
    const n = 300_007;
    const x = Tensor.ones([n]);
    const a = E.dropout(x, 0.3, 12345).toArray();
    const b = E.dropout(x, 0.3, 12345).toArray();
    assert.deepEqual(a, b, 'same seed, same result');
    const c = E.dropout(x, 0.3, 12346).toArray();
    let differ = 0;
    for (let i = 0; i < n; i++) if ((a[i] === 0) !== (c[i] === 0)) differ++;
    assert.ok(differ > n * 0.3, `a different seed changes the mask (${differ} of ${n} differ)`);
    let kept = 0;
    for (let i = 0; i < n; i++) if (a[i] !== 0) kept++;
    const rate = kept / n,
      sigma = Math.sqrt((0.3 * 0.7) / n);
    assert.ok(Math.abs(rate - 0.7) < 5 * sigma, `keep rate ${rate} vs 0.7 (σ ${sigma.toExponential(2)})`);
    for (let i = 0; i < n; i++) if (a[i] !== 0 && a[i] !== Math.fround(1 / 0.7)) assert.fail(`element ${i}: kept value ${a[i]}`);
    // the mask is the documented function of (seed, index)
    const keep = R.dropoutKeepMask(n, 0.3, 12345);
    for (let i = 0; i < n; i++) if ((a[i] !== 0) !== (keep[i] === 1)) assert.fail(`element ${i}: mask differs from the reference`);
    // a seed above 2^32 uses its high bits too
    const big = E.dropout(x, 0.3, 2 ** 40 + 12345).toArray();
    assert.notDeepEqual(big, a);
    const threads = core.getThreads();
    let serial: Float32Array, three: Float32Array;
    try {
      core.setThreads(1);
      serial = E.dropout(x, 0.3, 12345).toArray();
      core.setThreads(3);
      three = E.dropout(x, 0.3, 12345).toArray();
    } finally {
      core.setThreads(threads);
    }
    assert.deepEqual(serial, a, 'one thread gives the same result');
    assert.deepEqual(three, a, 'three threads give the same result');
    // backward uses the same mask
    const w = Tensor.param(Tensor.from(values(1000, 'normal', new Random(3)), [1000]));
    try {
      const y = E.dropout(w, 0.4, 99);
      const g = Tensor.from(values(1000, 'normal', new Random(4)), [1000]);
      y.backward(g);
      const yv = y.toArray(),
        gw = w.grad!.toArray(),
        gv = g.toArray();
      for (let i = 0; i < 1000; i++) {
        assert.equal(yv[i] === 0, gw[i] === 0, `element ${i}: output and gradient masks differ`);
        if (gw[i] !== 0) assertClose([gw[i]!], [gv[i]! / 0.6], { rtol: 1e-6, atol: 0 });
      }
      assert.equal(E.dropout(w, 0, 1), w, 'p = 0 returns x itself');
      assert.equal(E.dropout(w, 0.5, 1, false), w, 'eval mode returns x itself');
    } finally {
      w.dispose();
    }
  });
});

test('clear errors for bad shapes and arguments', () => {
  tidy(() => {
    const a = Tensor.zeros([2, 3]);
    assert.throws(() => E.add(a, Tensor.zeros([4])), /add: shapes \[2, 3\] and \[4\] are not broadcastable/);
    assert.throws(() => E.mul(Tensor.zeros([3, 2]), a), /mul: shapes \[3, 2\] and \[2, 3\] are not broadcastable/);
    assert.throws(() => E.where(Tensor.zeros([5]), a, 0), /where: shapes \[5\] and \[2, 3\] and \[\] are not broadcastable/);
    assert.throws(() => E.swiglu(a, Tensor.zeros([2, 2])), /swiglu: shapes \[2, 3\] and \[2, 2\]/);
    assert.throws(() => E.add(a, 'x' as unknown as number), /add: second operand must be a Tensor or a number/);
    assert.throws(() => E.concat([a, Tensor.zeros([3, 3])], 1), /concat: tensors\[1\] has shape \[3, 3\], tensors\[0\] has \[2, 3\]; only dim 1 may differ/);
    assert.throws(() => E.concat([], 0), /concat: needs a non-empty array/);
    assert.throws(() => E.stack([a, Tensor.zeros([3, 2])], 0), /stack: tensors\[1\] has shape \[3, 2\]/);
    assert.throws(() => E.stack([a], 3), /stack: dim 3 is out of range/);
    assert.throws(() => E.sum(a, 2), /sum: dim 2 is out of range for tensor\[2, 3\]/);
    assert.throws(() => E.mean(a, [1, -1]), /mean: dims \[1, -1\] repeat a dim/);
    assert.throws(() => E.maskedSum(Tensor.zeros([3]), Tensor.zeros([2, 3])), /maskedSum: mask \[2, 3\] does not broadcast to x \[3\]/);
    assert.throws(() => E.maskedMean(a, Tensor.zeros([4])), /maskedMean: shapes \[2, 3\] and \[4\] are not broadcastable/);
    assert.throws(() => E.dropout(a, 1.5, 1), /dropout: p must be in \[0, 1\]/);
    assert.throws(() => E.dropout(a, 0.5, -1), /dropout: seed must be a non-negative integer/);
    assert.throws(() => E.clamp(a), /clamp: give at least one of min and max/);
    assert.throws(() => E.gelu(a, 'erf' as 'none'), /gelu: approximate must be 'tanh' or 'none'/);
    const d = Tensor.zeros([2]);
    d.dispose();
    assert.throws(() => E.exp(d), /was disposed/);
  });
});

/**
 * A fixed set of native results, computed the same way in this process and in a child with
 * ALIGNKIT_PORTABLE=1. It is serialised into the child, so it may use only its arguments.
 */
function portableSuite(Ex: typeof E, T: typeof Tensor, Rnd: typeof Random, C: typeof core): { isa: string; out: Record<string, number[]> } {
  const rng = new Rnd(2024);
  const mk = (shape: number[], f: (v: number) => number = (v) => v): InstanceType<typeof Tensor> => {
    const n = shape.reduce((a, d) => a * d, 1);
    return T.from(
      Array.from({ length: n }, () => f(rng.normal())),
      shape,
    );
  };
  const x = mk([37, 129]),
    pos = mk([37, 129], (v) => Math.abs(v) + 0.1),
    bias = mk([129]),
    bx = mk([37, 129], (v) => 3 * v);
  const out: Record<string, number[]> = {};
  const put = (k: string, t: InstanceType<typeof Tensor>): void => {
    out[k] = Array.from(t.toArray());
  };
  put('x', x);
  put('pos', pos);
  put('bias', bias);
  put('bx', bx);
  put('exp', Ex.exp(x));
  put('log', Ex.log(pos));
  put('sqrt', Ex.sqrt(pos));
  put('tanh', Ex.tanh(bx));
  put('sigmoid', Ex.sigmoid(bx));
  put('logsigmoid', Ex.logsigmoid(bx));
  put('gelu_tanh', Ex.gelu(bx));
  put('gelu_erf', Ex.gelu(bx, 'none'));
  put('silu', Ex.silu(bx));
  put('swiglu', Ex.swiglu(bx, x));
  put('add', Ex.add(x, bias));
  put('div', Ex.div(x, pos));
  put('maximum', Ex.maximum(x, bias));
  put('sum_rows', Ex.sum(bx, -1));
  put('sum_cols', Ex.sum(bx, 0));
  put('mean', Ex.mean(bx));
  put('dropout', Ex.dropout(x, 0.25, 777));
  for (const [name, f] of [
    ['gelu_tanh_bwd', (t: InstanceType<typeof Tensor>) => Ex.gelu(t)],
    ['gelu_erf_bwd', (t: InstanceType<typeof Tensor>) => Ex.gelu(t, 'none')],
    ['silu_bwd', (t: InstanceType<typeof Tensor>) => Ex.silu(t)],
    ['logsigmoid_bwd', (t: InstanceType<typeof Tensor>) => Ex.logsigmoid(t)],
    ['tanh_bwd', (t: InstanceType<typeof Tensor>) => Ex.tanh(t)],
  ] as const) {
    const p = T.param(bx.clone());
    f(p).backward(x);
    put(name, p.grad!);
    p.dispose();
  }
  return { isa: C.isa(), out };
}

test('the portable (non-AVX2) kernels agree with the default ones and with the reference', () => {
  const url = (rel: string): string => new URL(rel, import.meta.url).href;
  const script = `
    import * as Ex from ${JSON.stringify(url('../../src/engine/ops/elementwise.js'))};
    import { Tensor } from ${JSON.stringify(url('../../src/engine/tensor.js'))};
    import { Random } from ${JSON.stringify(url('../../src/engine/random.js'))};
    import { core } from ${JSON.stringify(url('../../src/engine/native.js'))};
    const suite = (${portableSuite.toString()});
    process.stdout.write(JSON.stringify(suite(Ex, Tensor, Random, core)));`;
  const child = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ALIGNKIT_PORTABLE: '1' },
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    }),
  ) as ReturnType<typeof portableSuite>;
  assert.equal(child.isa, 'portable');
  const mine = tidy(() => portableSuite(E, Tensor, Random, core));
  const o = child.out;
  // identical inputs, then kernels that agree to rounding
  for (const k of ['x', 'pos', 'bias', 'bx']) assert.deepEqual(o[k], mine.out[k]);
  for (const k of Object.keys(mine.out)) assertClose(o[k]!, mine.out[k]!, { rtol: 4e-6, atol: 1e-6 }, `portable vs ${mine.isa}: ${k}`);
  assert.deepEqual(o.dropout, mine.out.dropout, 'dropout is bit-identical');
  // and the portable results against the float64 reference
  const A = (k: string, shape: number[]): Arr => R.arr(o[k]!, shape);
  const sh = [37, 129];
  const un = (op: R.UnaryOp, src: string): void => {
    assertClose(o[op]!, R.refUnary(op, A(src, sh)).data, { rtol: 1e-5, atol: 1e-6 }, `portable ${op}`);
  };
  un('exp', 'x');
  un('log', 'pos');
  un('sqrt', 'pos');
  un('tanh', 'bx');
  un('sigmoid', 'bx');
  un('logsigmoid', 'bx');
  un('gelu_tanh', 'bx');
  un('gelu_erf', 'bx');
  un('silu', 'bx');
  assertClose(o.swiglu!, R.refBinary('swiglu', A('bx', sh), A('x', sh)).data, { rtol: 1e-5, atol: 1e-6 }, 'portable swiglu');
  assertClose(o.add!, R.refBinary('add', A('x', sh), A('bias', [129])).data, { rtol: 1e-6, atol: 1e-7 }, 'portable add');
  assertClose(o.div!, R.refBinary('div', A('x', sh), A('pos', sh)).data, { rtol: 1e-6, atol: 1e-7 }, 'portable div');
  assertClose(o.sum_rows!, R.refSum(A('bx', sh), -1).data, { rtol: 1e-6, atol: 1e-6 }, 'portable row sums');
  assertClose(o.sum_cols!, R.refSum(A('bx', sh), 0).data, { rtol: 1e-6, atol: 1e-6 }, 'portable column sums');
  assertClose(o.mean!, R.refMean(A('bx', sh)).data, { rtol: 1e-6, atol: 1e-7 }, 'portable mean');
  assertClose(o.dropout!, R.refDropout(A('x', sh), 0.25, 777).data, { rtol: 1e-6, atol: 0 }, 'portable dropout');
  for (const [k, op] of [
    ['gelu_tanh_bwd', 'gelu_tanh'],
    ['gelu_erf_bwd', 'gelu_erf'],
    ['silu_bwd', 'silu'],
    ['logsigmoid_bwd', 'logsigmoid'],
    ['tanh_bwd', 'tanh'],
  ] as const)
    assertClose(o[k]!, R.refUnaryBackward(op, A('bx', sh), A('x', sh)).data, { rtol: 2e-5, atol: 2e-6 }, `portable ${k}`);
});

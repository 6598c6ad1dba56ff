// Tests for rope and attention: the native kernels against the float64 reference (odd sizes, causal or not,
// padding masks, fully masked rows, grouped-query heads, KV-cache decoding, strided views), the reference
// backward against finite differences, native gradchecks, layouts, errors, and the portable (non-AVX2) path
// in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { Random } from '../../src/engine/random.js';
import { attention, attentionKernels, attentionWithLse, rope, type AttentionOptions } from '../../src/engine/ops/attention.js';
import { refAttention, refAttentionBackward, refRope, refRopeAngles, refRopeAnglesF32, refRopeBackward, type RefAttentionDims } from './reference/attention.js';
import { ODD_SIZES, assertClose, f32round, finiteDiff, nativeGradcheck, randArray } from '../helpers/check.js';

// ---- building [B, H, T, D] inputs in several memory layouts ----------------------------------------------

/**
 * How a [B, H, T, D] operand is stored: contiguous; as a transposed view of a [B, T, H, D] projection; as the
 * first T positions of a larger KV cache [B, H, cap, D]; or with a non-unit inner stride (a view of [B, H, D, T]).
 */
type Layout = 'bhtd' | 'bthd' | 'cache' | 'dlast';

interface Operand {
  base: Tensor; // the leaf holding the memory
  view: (t: Tensor) => Tensor; // base (or its gradient) → the [B, H, T, D] view
}

function operand(vals: Float64Array, shape: readonly number[], layout: Layout, requiresGrad = false, rng?: Random): Operand {
  const [B, H, T, D] = shape as [number, number, number, number];
  const at = (b: number, h: number, t: number, d: number): number => vals[((b * H + h) * T + t) * D + d]!;
  let base: Tensor;
  let view: (t: Tensor) => Tensor;
  if (layout === 'bhtd') {
    base = Tensor.from(vals, shape);
    view = (t) => t;
  } else if (layout === 'bthd') {
    const a = new Float64Array(vals.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) a[((b * T + t) * H + h) * D + d] = at(b, h, t, d);
    base = Tensor.from(a, [B, T, H, D]);
    view = (t) => t.transpose(1, 2);
  } else if (layout === 'cache') {
    const cap = T + 5;
    const a = randArray(B * H * cap * D, rng ?? new Random(99), 100); // garbage beyond T must not be read
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) a[((b * H + h) * cap + t) * D + d] = at(b, h, t, d);
    base = Tensor.from(a, [B, H, cap, D]);
    view = (t) => t.slice(2, 0, T);
  } else {
    const a = new Float64Array(vals.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) a[((b * H + h) * D + d) * T + t] = at(b, h, t, d);
    base = Tensor.from(a, [B, H, D, T]);
    view = (t) => t.transpose(2, 3);
  }
  if (requiresGrad) Tensor.param(base);
  return { base, view };
}

/** The gradient of an operand's view, in [B, H, T, D] order. */
function gradOf(o: Operand): Float32Array {
  assert.ok(o.base.grad, 'no gradient reached the input');
  return noGrad(() => tidy(() => o.view(o.base.grad!).toArray()));
}

type MaskKind = 'none' | 'left' | 'right' | 'allmasked';

/** A key mask [B·Tk]: left padding (batch b has 3b leading pads), right padding, or batch 1 fully masked. */
function makeMask(kind: MaskKind, B: number, Tk: number): Int32Array | undefined {
  if (kind === 'none') return undefined;
  const m = new Int32Array(B * Tk).fill(1);
  for (let b = 0; b < B; b++) {
    if (kind === 'left') for (let j = 0; j < Math.min(3 * b, Tk - 1); j++) m[b * Tk + j] = 0;
    if (kind === 'right' && b % 2 === 1) for (let j = Math.max(1, Tk - 2); j < Tk; j++) m[b * Tk + j] = 0;
    if (kind === 'allmasked' && b === 1) for (let j = 0; j < Tk; j++) m[b * Tk + j] = 0;
  }
  return m;
}

interface Case {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  causal: boolean;
  mask: MaskKind;
  queryOffset?: number;
  qLayout?: Layout;
  kvLayout?: Layout;
  seed?: number;
}

function caseName(c: Case): string {
  return (
    `B${c.B} Hq${c.Hq}/Hkv${c.Hkv} Tq${c.Tq} Tk${c.Tk} D${c.D} ${c.causal ? 'causal' : 'full'} mask:${c.mask}` +
    `${c.queryOffset !== undefined ? ` qoff${c.queryOffset}` : ''} q:${c.qLayout ?? 'bhtd'} kv:${c.kvLayout ?? 'bhtd'}`
  );
}

interface Built {
  dims: RefAttentionDims;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  opts: AttentionOptions;
  Q: Operand;
  K: Operand;
  V: Operand;
}

function build(c: Case, requiresGrad = false): Built {
  const rng = new Random(c.seed ?? c.Tq * 1000 + c.Tk * 10 + c.D + c.Hq);
  const dims = { B: c.B, Hq: c.Hq, Hkv: c.Hkv, Tq: c.Tq, Tk: c.Tk, D: c.D };
  const q = f32round(randArray(c.B * c.Hq * c.Tq * c.D, rng));
  const k = f32round(randArray(c.B * c.Hkv * c.Tk * c.D, rng));
  const v = f32round(randArray(c.B * c.Hkv * c.Tk * c.D, rng));
  const opts: AttentionOptions = { causal: c.causal };
  const m = makeMask(c.mask, c.B, c.Tk);
  if (m) opts.keyMask = m;
  if (c.queryOffset !== undefined) opts.queryOffset = c.queryOffset;
  return {
    dims,
    q,
    k,
    v,
    opts,
    Q: operand(q, [c.B, c.Hq, c.Tq, c.D], c.qLayout ?? 'bhtd', requiresGrad, rng),
    K: operand(k, [c.B, c.Hkv, c.Tk, c.D], c.kvLayout ?? 'bhtd', requiresGrad, rng),
    V: operand(v, [c.B, c.Hkv, c.Tk, c.D], c.kvLayout ?? 'bhtd', requiresGrad, rng),
  };
}

function disposeBuilt(b: Built): void {
  for (const o of [b.Q, b.K, b.V]) o.base.dispose();
}

/** atol scaled to the largest reference value (outputs are averages of unit-scale values, some near 0). */
function tol(expected: ArrayLike<number>, rtol: number): { rtol: number; atol: number } {
  let m = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i]!)) m = Math.max(m, Math.abs(expected[i]!));
  return { rtol, atol: rtol * Math.max(m, 1e-3) };
}

function checkForward(c: Case): void {
  const b = build(c);
  const ref = refAttention(b.q, b.k, b.v, b.dims, b.opts);
  tidy(() => {
    const { out, lse } = attentionWithLse(b.Q.view(b.Q.base), b.K.view(b.K.base), b.V.view(b.V.base), b.opts);
    assert.deepEqual(out.shape, [c.B, c.Hq, c.Tq, c.D]);
    assertClose(out.toArray(), ref.out, tol(ref.out, 1e-5), `out (${caseName(c)})`);
    assertClose(lse, ref.lse, { rtol: 1e-5, atol: 1e-5 }, `lse (${caseName(c)})`);
  });
  disposeBuilt(b);
}

function checkBackward(c: Case): void {
  const b = build(c, true);
  const rng = new Random(5);
  const G = randArray(c.B * c.Hq * c.Tq * c.D, rng);
  const ref = refAttentionBackward(b.q, b.k, b.v, b.dims, b.opts, f32round(G));
  tidy(() => {
    const out = attention(b.Q.view(b.Q.base), b.K.view(b.K.base), b.V.view(b.V.base), b.opts);
    out.backward(Tensor.from(G, out.shape));
  });
  // One absolute scale for the three gradients: dq and dk come from dS = P∘(dP − Σ P·dP), a cancellation whose
  // float32 error follows the size of the terms, not of the result (with a single visible key dq is exactly 0).
  const scale = Math.max(tol(ref.dq, 1).atol, tol(ref.dk, 1).atol, tol(ref.dv, 1).atol);
  const t = { rtol: 1e-4, atol: 1e-5 * scale };
  assertClose(gradOf(b.Q), ref.dq, t, `dq (${caseName(c)})`);
  assertClose(gradOf(b.K), ref.dk, t, `dk (${caseName(c)})`);
  assertClose(gradOf(b.V), ref.dv, t, `dv (${caseName(c)})`);
  disposeBuilt(b);
}

const HEADS: [number, number][] = [
  [1, 1],
  [4, 2],
  [4, 1],
];

// ---- attention forward ------------------------------------------------------------------------------------

test('attention forward matches the float64 reference on odd sizes (T, D, GQA, causal, masks)', () => {
  const masks: MaskKind[] = ['none', 'left', 'right'];
  let n = 0;
  for (const T of ODD_SIZES)
    for (const D of [8, 64])
      for (const [Hq, Hkv] of HEADS)
        for (const causal of [true, false]) {
          const layouts: Layout[] = ['bhtd', 'bthd'];
          checkForward({ B: 2, Hq, Hkv, Tq: T, Tk: T, D, causal, mask: masks[n % 3]!, qLayout: layouts[n % 2], kvLayout: layouts[(n >> 1) % 2] });
          n++;
        }
});

test('attention forward: decoding with Tq < Tk and queryOffset, KV-cache views, odd D', () => {
  const cases: Case[] = [
    { B: 2, Hq: 4, Hkv: 2, Tq: 1, Tk: 33, D: 64, causal: true, mask: 'left', kvLayout: 'cache' },
    { B: 2, Hq: 4, Hkv: 1, Tq: 7, Tk: 129, D: 64, causal: true, mask: 'left', qLayout: 'bthd', kvLayout: 'cache' },
    { B: 2, Hq: 1, Hkv: 1, Tq: 33, Tk: 129, D: 8, causal: true, mask: 'right', kvLayout: 'cache' },
    { B: 1, Hq: 2, Hkv: 2, Tq: 5, Tk: 20, D: 8, causal: true, mask: 'none', queryOffset: 3 },
    { B: 1, Hq: 2, Hkv: 1, Tq: 70, Tk: 140, D: 8, causal: true, mask: 'none', queryOffset: 0 },
    { B: 2, Hq: 3, Hkv: 3, Tq: 9, Tk: 31, D: 13, causal: true, mask: 'left' },
    { B: 1, Hq: 2, Hkv: 1, Tq: 40, Tk: 40, D: 5, causal: false, mask: 'right' },
    { B: 2, Hq: 2, Hkv: 1, Tq: 33, Tk: 33, D: 24, causal: true, mask: 'none', qLayout: 'dlast', kvLayout: 'dlast' },
  ];
  for (const c of cases) checkForward(c);
});

test('attention: queries that see no key output 0 and get zero gradient, without NaN', () => {
  for (const c of [
    { B: 2, Hq: 4, Hkv: 2, Tq: 33, Tk: 33, D: 8, causal: true, mask: 'left' }, // batch 1: queries 0..2 see nothing
    { B: 2, Hq: 2, Hkv: 1, Tq: 7, Tk: 7, D: 8, causal: false, mask: 'allmasked' }, // batch 1: every query
  ] satisfies Case[]) {
    checkForward(c);
    checkBackward(c);
    const b = build(c, true);
    tidy(() => {
      const { out, lse } = attentionWithLse(b.Q.view(b.Q.base), b.K.view(b.K.base), b.V.view(b.V.base), b.opts);
      out.backward(Tensor.ones(out.shape));
      const o = out.toArray();
      const empty = c.mask === 'left' ? [0, 1, 2] : [0, 1, 2, 3, 4, 5, 6];
      const dq = gradOf(b.Q);
      for (let h = 0; h < c.Hq; h++)
        for (const i of empty) {
          const row = (c.Hq + h) * c.Tq + i; // batch 1
          assert.equal(lse[row], -Infinity, `lse of empty row ${row}`);
          for (let d = 0; d < c.D; d++) {
            assert.equal(o[row * c.D + d], 0, `output of empty row ${row}`);
            assert.equal(dq[row * c.D + d], 0, `dq of empty row ${row}`);
          }
        }
      for (const g of [dq, gradOf(b.K), gradOf(b.V), o]) assert.ok(g.every(Number.isFinite), 'all finite');
    });
    disposeBuilt(b);
  }
});

test('attention: decoding rows equal the last rows of full attention', () => {
  const c: Case = { B: 2, Hq: 4, Hkv: 2, Tq: 129, Tk: 129, D: 64, causal: true, mask: 'left' };
  const b = build(c);
  tidy(() => {
    const q = b.Q.view(b.Q.base),
      k = b.K.view(b.K.base),
      v = b.V.view(b.V.base);
    const full = attention(q, k, v, b.opts).toArray();
    for (const Tq of [1, 7, 64]) {
      const part = attention(q.slice(2, c.Tk - Tq, c.Tk), k, v, b.opts).toArray();
      const expect = new Float32Array(part.length);
      for (let bh = 0; bh < c.B * c.Hq; bh++) expect.set(full.subarray((bh * c.Tq + c.Tq - Tq) * c.D, (bh + 1) * c.Tq * c.D), bh * Tq * c.D);
      assertClose(part, expect, { rtol: 1e-6, atol: 1e-6 }, `last ${Tq} rows`);
    }
  });
  disposeBuilt(b);
});

test('attention output is [B, Tq, Hq, D] in memory: transpose(1, 2).reshape is a view', () => {
  const c: Case = { B: 2, Hq: 3, Hkv: 3, Tq: 5, Tk: 5, D: 4, causal: true, mask: 'none' };
  const b = build(c);
  tidy(() => {
    const out = attention(b.Q.view(b.Q.base), b.K.view(b.K.base), b.V.view(b.V.base), b.opts);
    assert.deepEqual(out.strides, [5 * 3 * 4, 4, 3 * 4, 1]);
    const flat = out.transpose(1, 2).reshape([2, 5, 12]);
    assert.equal(flat.storage, out.storage, 'reshape copied');
    assert.ok(flat.isContiguous);
  });
  disposeBuilt(b);
});

// ---- attention backward -------------------------------------------------------------------------------------

test('attention reference backward matches finite differences', () => {
  const cases: Case[] = [
    { B: 2, Hq: 4, Hkv: 2, Tq: 5, Tk: 5, D: 3, causal: true, mask: 'left' },
    { B: 2, Hq: 2, Hkv: 1, Tq: 3, Tk: 6, D: 4, causal: true, mask: 'right' },
    { B: 1, Hq: 2, Hkv: 2, Tq: 4, Tk: 4, D: 3, causal: false, mask: 'none' },
  ];
  for (const c of cases) {
    const b = build(c);
    const rng = new Random(3);
    const R = randArray(c.B * c.Hq * c.Tq * c.D, rng);
    const loss = (xs: Float64Array[]): number => {
      const o = refAttention(xs[0]!, xs[1]!, xs[2]!, b.dims, b.opts).out;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i]! * R[i]!;
      return s;
    };
    const num = finiteDiff(loss, [b.q.slice(), b.k.slice(), b.v.slice()]);
    const an = refAttentionBackward(b.q, b.k, b.v, b.dims, b.opts, R);
    assertClose(an.dq, num[0]!, { rtol: 1e-6, atol: 1e-8 }, `ref dq (${caseName(c)})`);
    assertClose(an.dk, num[1]!, { rtol: 1e-6, atol: 1e-8 }, `ref dk (${caseName(c)})`);
    assertClose(an.dv, num[2]!, { rtol: 1e-6, atol: 1e-8 }, `ref dv (${caseName(c)})`);
    disposeBuilt(b);
  }
});

test('attention native backward (dq, dk, dv) matches the reference backward', () => {
  const cases: Case[] = [
    ...ODD_SIZES.map((T, i): Case => ({ B: 2, Hq: 4, Hkv: 2, Tq: T, Tk: T, D: 64, causal: true, mask: 'left', qLayout: i % 2 ? 'bthd' : 'bhtd', kvLayout: 'bthd' })),
    ...ODD_SIZES.map((T): Case => ({ B: 2, Hq: 4, Hkv: 1, Tq: T, Tk: T, D: 8, causal: false, mask: 'right' })),
    { B: 1, Hq: 1, Hkv: 1, Tq: 129, Tk: 129, D: 8, causal: true, mask: 'none' }, // one (batch, kv head): split key blocks
    { B: 4, Hq: 8, Hkv: 4, Tq: 70, Tk: 70, D: 8, causal: true, mask: 'left', qLayout: 'bthd' }, // 16 pairs: no split
    { B: 2, Hq: 4, Hkv: 2, Tq: 7, Tk: 129, D: 64, causal: true, mask: 'left', kvLayout: 'cache' },
    { B: 1, Hq: 2, Hkv: 2, Tq: 5, Tk: 20, D: 8, causal: true, mask: 'none', queryOffset: 3 },
    { B: 2, Hq: 3, Hkv: 3, Tq: 9, Tk: 31, D: 13, causal: true, mask: 'left', qLayout: 'dlast' },
  ];
  for (const c of cases) checkBackward(c);
});

test('attention nativeGradcheck (causal, padding, GQA)', () => {
  const c: Case = { B: 2, Hq: 2, Hkv: 1, Tq: 5, Tk: 5, D: 4, causal: true, mask: 'left' };
  const b = build(c, true);
  nativeGradcheck(([q, k, v]) => attention(b.Q.view(q!), b.K.view(k!), b.V.view(v!), b.opts), [b.Q.base, b.K.base, b.V.base], { maxProbe: 20 });
  disposeBuilt(b);
});

// ---- rope --------------------------------------------------------------------------------------------------------

test('rope tables follow transformers float32 arithmetic (inv_freq, angle, cos/sin)', () => {
  const positions = Int32Array.from([0, 1, 2, 3, 17, 100, 511, 1000, 4095, 8191, 32767, 131071]);
  for (const theta of [10000, 500000, 1e6])
    for (const d of [32, 64, 128]) {
      const half = d / 2;
      const cos = new Float32Array(positions.length * half),
        sin = new Float32Array(positions.length * half);
      attentionKernels.ropeTable(positions, positions.length, theta, d, cos, sin);
      const a32 = refRopeAnglesF32(positions, theta, d);
      const expCos = a32.map((a) => Math.fround(Math.cos(a))),
        expSin = a32.map((a) => Math.fround(Math.sin(a)));
      assertClose(cos, expCos, { rtol: 0, atol: 1.2e-7 }, `cos theta ${theta} d ${d}`);
      assertClose(sin, expSin, { rtol: 0, atol: 1.2e-7 }, `sin theta ${theta} d ${d}`);
      // Against exact angles the float32 ones differ by about pos·2^-24 radians; small positions agree closely.
      const small = positions.subarray(0, 5); // up to 17: angle error <= 17·2^-24
      const a64 = refRopeAngles(small, theta, d);
      assertClose(cos.subarray(0, small.length * half), a64.map(Math.cos), { rtol: 0, atol: 1.5e-6 }, 'cos vs float64 angles');
      assertClose(sin.subarray(0, small.length * half), a64.map(Math.sin), { rtol: 0, atol: 1.5e-6 }, 'sin vs float64 angles');
    }
});

interface RopeCase {
  B: number;
  H: number;
  T: number;
  D: number;
  rotaryDim?: number;
  perRow: boolean;
  theta: number;
  layout: Layout;
}

function ropePositions(c: RopeCase): Int32Array {
  if (!c.perRow) return Int32Array.from({ length: c.T }, (_, t) => t + 5);
  // left padding: row b starts 2b positions late (positions clamp at 0 on pads, as in transformers' generate)
  return Int32Array.from({ length: c.B * c.T }, (_, i) => Math.max(0, (i % c.T) - 2 * Math.floor(i / c.T)));
}

const ROPE_CASES: RopeCase[] = [
  { B: 2, H: 3, T: 7, D: 16, perRow: true, theta: 10000, layout: 'bthd' },
  { B: 2, H: 4, T: 33, D: 64, perRow: false, theta: 10000, layout: 'bthd' },
  { B: 1, H: 2, T: 129, D: 8, perRow: false, theta: 500000, layout: 'bhtd' },
  { B: 2, H: 2, T: 9, D: 10, rotaryDim: 8, perRow: true, theta: 10000, layout: 'bthd' },
  { B: 1, H: 3, T: 5, D: 12, rotaryDim: 4, perRow: false, theta: 10000, layout: 'dlast' },
];

test('rope forward matches the float64 rotate-half formula', () => {
  for (const c of ROPE_CASES) {
    const rng = new Random(c.T + c.D);
    const shape = [c.B, c.H, c.T, c.D];
    const x = f32round(randArray(c.B * c.H * c.T * c.D, rng));
    const pos = ropePositions(c);
    const d = c.rotaryDim ?? c.D;
    const X = operand(x, shape, c.layout);
    tidy(() => {
      const out = rope(X.view(X.base), pos, c.theta, c.rotaryDim);
      assert.ok(out.isContiguous);
      assert.deepEqual(out.shape, shape);
      const got = out.toArray();
      // the same angles as the kernel (transformers' float32 ones): agreement to float rounding
      assertClose(got, refRope(x, shape, refRopeAnglesF32(pos, c.theta, d), c.perRow, d), { rtol: 1e-6, atol: 1e-6 }, `rope f32 angles (${JSON.stringify(c)})`);
      // exact float64 angles: the difference is the float32 angle rounding, about pos·6e-8 radians
      assertClose(got, refRope(x, shape, refRopeAngles(pos, c.theta, d), c.perRow, d), { rtol: 1e-5, atol: 3e-5 }, `rope f64 angles (${JSON.stringify(c)})`);
    });
    X.base.dispose();
  }
});

test('rope backward: reference vs finite differences, native vs reference, nativeGradcheck', () => {
  // reference backward against finite differences
  {
    const shape = [2, 2, 3, 6];
    const rng = new Random(11);
    const x = randArray(72, rng),
      R = randArray(72, rng);
    const pos = Int32Array.from([0, 1, 2, 3, 4, 7]);
    const angles = refRopeAngles(pos, 10000, 4);
    const num = finiteDiff((xs) => refRope(xs[0]!, shape, angles, true, 4).reduce((s, o, i) => s + o * R[i]!, 0), [x]);
    assertClose(refRopeBackward(R, shape, angles, true, 4), num[0]!, { rtol: 1e-7, atol: 1e-9 }, 'ref rope backward');
  }
  // native backward against the reference backward
  for (const c of ROPE_CASES) {
    const rng = new Random(c.T * 3 + c.D);
    const shape = [c.B, c.H, c.T, c.D];
    const x = f32round(randArray(c.B * c.H * c.T * c.D, rng));
    const G = f32round(randArray(x.length, rng));
    const pos = ropePositions(c);
    const d = c.rotaryDim ?? c.D;
    const X = operand(x, shape, c.layout, true);
    tidy(() => rope(X.view(X.base), pos, c.theta, c.rotaryDim).backward(Tensor.from(G, shape)));
    assertClose(gradOf(X), refRopeBackward(G, shape, refRopeAnglesF32(pos, c.theta, d), c.perRow, d), { rtol: 1e-6, atol: 1e-6 }, `rope dx (${JSON.stringify(c)})`);
    X.base.dispose();
  }
  // finite differences through the native forward
  const X = operand(f32round(randArray(2 * 2 * 4 * 6, new Random(4))), [2, 2, 4, 6], 'bthd', true);
  nativeGradcheck(([x]) => rope(X.view(x!), Int32Array.from([0, 1, 2, 3, 2, 3, 4, 5]), 10000), [X.base]);
  X.base.dispose();
});

// ---- errors ----------------------------------------------------------------------------------------------------

test('attention and rope reject bad inputs with clear errors', () => {
  tidy(() => {
    const q = Tensor.zeros([1, 4, 3, 8]),
      k = Tensor.zeros([1, 2, 3, 8]);
    assert.throws(() => attention(q, Tensor.zeros([1, 2, 3, 4]), Tensor.zeros([1, 2, 3, 4])), /attention: .*same B and D/);
    assert.throws(() => attention(q, Tensor.zeros([1, 3, 3, 8]), Tensor.zeros([1, 3, 3, 8])), /multiple of kv heads/);
    assert.throws(() => attention(q, k, Tensor.zeros([1, 2, 4, 8])), /attention: expected/);
    assert.throws(() => attention(Tensor.zeros([4, 3, 8]), k, k), /attention: q must be 4-D/);
    assert.throws(() => attention(q, k, k, { keyMask: new Int32Array(5) }), /keyMask has 5 entries, expected B·Tk = 3/);
    assert.throws(() => attention(q, k, k, { scale: -1 }), /scale must be/);
    assert.throws(() => attention(q, k, k, { queryOffset: 0.5 }), /queryOffset must be an integer/);
    assert.throws(() => rope(q, new Int32Array(2), 10000), /rope: 2 positions for x \[1, 4, 3, 8\]/);
    assert.throws(() => rope(q, new Int32Array(3), 10000, 5), /rotaryDim must be an even integer/);
    assert.throws(() => rope(q, new Int32Array(3), 10000, 10), /rotaryDim must be an even integer/);
    assert.throws(() => rope(q, new Int32Array(3), 0), /theta must be/);
  });
});

// ---- portable path -----------------------------------------------------------------------------------------------

test('portable (non-AVX2) kernels agree with the reference (child process, ALIGNKIT_PORTABLE=1)', () => {
  const url = (p: string): string => new URL(p, import.meta.url).href;
  const code = `
    import { core } from '${url('../../src/engine/native.js')}';
    import { Tensor, tidy } from '${url('../../src/engine/tensor.js')}';
    import { Random } from '${url('../../src/engine/random.js')}';
    import { attention } from '${url('../../src/engine/ops/attention.js')}';
    import { refAttention, refAttentionBackward } from '${url('./reference/attention.js')}';
    const cases = [
      { B: 2, Hq: 4, Hkv: 2, Tq: 129, Tk: 129, D: 64, causal: true, pad: 3 },
      { B: 2, Hq: 4, Hkv: 1, Tq: 33, Tk: 33, D: 8, causal: false, pad: 2 },
      { B: 2, Hq: 2, Hkv: 2, Tq: 1, Tk: 33, D: 64, causal: true, pad: 3 },
      { B: 1, Hq: 2, Hkv: 1, Tq: 7, Tk: 7, D: 13, causal: true, pad: 0 },
    ];
    // worst |a − e| / (rtol·(|e| + max|e|)), over an array
    const worst = (a, e, rtol) => {
      let m = 0; for (const x of e) m = Math.max(m, Math.abs(x));
      let w = 0; for (let i = 0; i < e.length; i++) w = Math.max(w, Math.abs(a[i] - e[i]) / (rtol * (Math.abs(e[i]) + m)));
      return w;
    };
    const results = [];
    for (const c of cases) {
      const rng = new Random(c.Tq + c.D);
      const rnd = (n) => Float64Array.from(Float32Array.from({ length: n }, () => rng.normal()));
      const q = rnd(c.B * c.Hq * c.Tq * c.D), k = rnd(c.B * c.Hkv * c.Tk * c.D), v = rnd(k.length), g = rnd(q.length);
      const mask = new Int32Array(c.B * c.Tk).fill(1);
      for (let j = 0; j < c.pad; j++) mask[c.Tk + j] = 0;
      const opts = { causal: c.causal, keyMask: mask };
      const dims = { B: c.B, Hq: c.Hq, Hkv: c.Hkv, Tq: c.Tq, Tk: c.Tk, D: c.D };
      const ref = refAttention(q, k, v, dims, opts);
      const refB = refAttentionBackward(q, k, v, dims, opts, g);
      const Q = Tensor.param(Tensor.from(q, [c.B, c.Hq, c.Tq, c.D])), K = Tensor.param(Tensor.from(k, [c.B, c.Hkv, c.Tk, c.D])), V = Tensor.param(Tensor.from(v, [c.B, c.Hkv, c.Tk, c.D]));
      const out = tidy(() => { const o = attention(Q, K, V, opts); o.backward(Tensor.from(g, o.shape)); return o.toArray(); });
      results.push({ c, out: worst(out, ref.out, 1e-5), dq: worst(Q.grad.toArray(), refB.dq, 1e-4), dk: worst(K.grad.toArray(), refB.dk, 1e-4), dv: worst(V.grad.toArray(), refB.dv, 1e-4) });
    }
    console.log(JSON.stringify({ isa: core.isa(), results }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ALIGNKIT_PORTABLE: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { isa: string; results: { c: unknown; out: number; dq: number; dk: number; dv: number }[] };
  assert.equal(res.isa, 'portable');
  assert.equal(res.results.length, 4);
  for (const x of res.results) for (const key of ['out', 'dq', 'dk', 'dv'] as const) assert.ok(x[key] <= 1, `portable ${key} off by ${x[key].toFixed(2)}× tolerance for ${JSON.stringify(x.c)}`);
});

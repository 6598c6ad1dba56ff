// Float64 reference implementations of the elementwise ops (src/engine/ops/elementwise.ts), forward and
// backward, as plain loops over Float64Array + shape. Used only by tests to check the native kernels.

export interface Arr {
  data: Float64Array;
  shape: number[];
}

export function arr(data: ArrayLike<number>, shape: readonly number[]): Arr {
  const n = shape.reduce((p, d) => p * d, 1);
  if (data.length !== n) throw new Error(`reference: ${data.length} values for shape [${shape.join(', ')}]`);
  return { data: Float64Array.from(data), shape: [...shape] };
}

export function scalarArr(v: number): Arr {
  return { data: Float64Array.of(v), shape: [] };
}

function size(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const nd = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes)
    s.forEach((d, i) => {
      const k = nd - s.length + i;
      if (d !== 1) {
        if (out[k] !== 1 && out[k] !== d) throw new Error('reference: shapes do not broadcast');
        out[k] = d;
      }
    });
  return out;
}

/** Flat index into an array of `shape` for the output multi-index `idx` (broadcast rules). */
function sourceIndex(idx: readonly number[], shape: readonly number[]): number {
  const lead = idx.length - shape.length;
  let f = 0;
  for (let k = 0; k < shape.length; k++) f = f * shape[k]! + (shape[k] === 1 ? 0 : idx[lead + k]!);
  return f;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = i % shape[k]!;
    i = Math.floor(i / shape[k]!);
  }
  return idx;
}

/** f applied elementwise over the broadcast of the inputs. */
function mapN(inputs: readonly Arr[], f: (...v: number[]) => number): Arr {
  const shape = broadcastShape(...inputs.map((a) => a.shape));
  const n = size(shape);
  const out = new Float64Array(n);
  const v = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    for (let k = 0; k < inputs.length; k++) v[k] = inputs[k]!.data[sourceIndex(idx, inputs[k]!.shape)]!;
    out[i] = f(...v);
  }
  return { data: out, shape };
}

/** Sums g (a broadcast result) back down to `shape`. */
function sumTo(g: Arr, shape: readonly number[]): Arr {
  const out = new Float64Array(size(shape));
  for (let i = 0; i < g.data.length; i++) out[sourceIndex(unravel(i, g.shape), shape)]! += g.data[i]!;
  return { data: out, shape: [...shape] };
}

// ---- erf ----------------------------------------------------------------------------------------

/** erfc in float64: Maclaurin series of erf for |x| < 3, Lentz's continued fraction beyond. */
export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  let r: number;
  if (ax < 3) {
    let term = ax,
      s = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      s += add;
      if (Math.abs(add) < 1e-17 * Math.abs(s)) break;
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * s;
  } else if (ax > 27) {
    r = 0;
  } else {
    // erfc(z) = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
    let f = ax,
      C = ax,
      D = 0;
    for (let k = 1; k < 500; k++) {
      const a = k / 2;
      D = 1 / (ax + a * D);
      C = ax + a / C;
      const d = C * D;
      f *= d;
      if (Math.abs(d - 1) < 1e-16) break;
    }
    r = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? 2 - r : r;
}

export function erf64(x: number): number {
  return Math.abs(x) < 0.5 ? 1 - erfc64(x) : x < 0 ? erfc64(-x) - 1 : 1 - erfc64(x);
}

// ---- unary ops ------------------------------------------------------------------------------------

export type UnaryOp = 'neg' | 'scale' | 'exp' | 'log' | 'sqrt' | 'square' | 'abs' | 'sigmoid' | 'logsigmoid' | 'tanh' | 'relu' | 'gelu_tanh' | 'gelu_erf' | 'silu' | 'clamp';

const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const K = Math.sqrt(2 / Math.PI),
  C = 0.044715;

/** f and its derivative for each unary op; p holds the op's numbers (scale: [s], clamp: [min, max]). */
export const UNARY: Record<UnaryOp, { f: (x: number, p: readonly number[]) => number; df: (x: number, p: readonly number[]) => number }> = {
  neg: { f: (x) => -x, df: () => -1 },
  scale: { f: (x, p) => x * p[0]!, df: (_, p) => p[0]! },
  exp: { f: Math.exp, df: Math.exp },
  log: { f: Math.log, df: (x) => 1 / x },
  sqrt: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x) },
  square: { f: (x) => x * x, df: (x) => 2 * x },
  abs: { f: Math.abs, df: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0) },
  sigmoid: { f: sig, df: (x) => sig(x) * (1 - sig(x)) },
  logsigmoid: { f: (x) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x))), df: (x) => sig(-x) },
  tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2 },
  relu: { f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0) },
  // 0.5x(1 + tanh u) with u = K(x + C x³), written as x·σ(2u) (equal, and free of cancellation for x ≪ 0)
  gelu_tanh: {
    f: (x) => x * sig(2 * K * (x + C * x ** 3)),
    df: (x) => {
      const s = sig(2 * K * (x + C * x ** 3));
      return s + x * s * (1 - s) * 2 * K * (1 + 3 * C * x * x);
    },
  },
  // 0.5x(1 + erf(x/√2)) = 0.5x·erfc(−x/√2)
  gelu_erf: {
    f: (x) => 0.5 * x * erfc64(-x / Math.SQRT2),
    df: (x) => 0.5 * erfc64(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  },
  silu: { f: (x) => x * sig(x), df: (x) => sig(x) * (1 + x * (1 - sig(x))) },
  clamp: {
    f: (x, p) => Math.min(Math.max(x, p[0]!), p[1]!),
    df: (x, p) => (x >= p[0]! && x <= p[1]! ? 1 : 0),
  },
};

export function refUnary(op: UnaryOp, x: Arr, p: readonly number[] = []): Arr {
  return { data: x.data.map((v) => UNARY[op].f(v, p)), shape: [...x.shape] };
}

export function refUnaryBackward(op: UnaryOp, x: Arr, g: Arr, p: readonly number[] = []): Arr {
  return { data: x.data.map((v, i) => g.data[i]! * UNARY[op].df(v, p)), shape: [...x.shape] };
}

// ---- binary ops -----------------------------------------------------------------------------------

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'minimum' | 'maximum' | 'swiglu';

/** f and its partial derivatives; minimum/maximum split ties equally, as PyTorch. */
const BINARY: Record<BinaryOp, { f: (a: number, b: number) => number; da: (a: number, b: number) => number; db: (a: number, b: number) => number }> = {
  add: { f: (a, b) => a + b, da: () => 1, db: () => 1 },
  sub: { f: (a, b) => a - b, da: () => 1, db: () => -1 },
  mul: { f: (a, b) => a * b, da: (_, b) => b, db: (a) => a },
  div: { f: (a, b) => a / b, da: (_, b) => 1 / b, db: (a, b) => -a / (b * b) },
  minimum: {
    f: (a, b) => Math.min(a, b),
    da: (a, b) => (a < b ? 1 : a === b ? 0.5 : 0),
    db: (a, b) => (b < a ? 1 : a === b ? 0.5 : 0),
  },
  maximum: {
    f: (a, b) => Math.max(a, b),
    da: (a, b) => (a > b ? 1 : a === b ? 0.5 : 0),
    db: (a, b) => (b > a ? 1 : a === b ? 0.5 : 0),
  },
  swiglu: {
    f: (a, b) => a * sig(a) * b,
    da: (a, b) => sig(a) * (1 + a * (1 - sig(a))) * b,
    db: (a) => a * sig(a),
  },
};

export function refBinary(op: BinaryOp, a: Arr, b: Arr): Arr {
  return mapN([a, b], BINARY[op].f);
}

export function refBinaryBackward(op: BinaryOp, a: Arr, b: Arr, g: Arr): [Arr, Arr] {
  const ga = mapN([g, a, b], (gv, av, bv) => gv * BINARY[op].da(av, bv));
  const gb = mapN([g, a, b], (gv, av, bv) => gv * BINARY[op].db(av, bv));
  return [sumTo(ga, a.shape), sumTo(gb, b.shape)];
}

export function refWhere(cond: Arr, a: Arr, b: Arr): Arr {
  return mapN([cond, a, b], (c, x, y) => (c !== 0 ? x : y));
}

export function refWhereBackward(cond: Arr, a: Arr, b: Arr, g: Arr): [Arr, Arr] {
  const shape = broadcastShape(cond.shape, a.shape, b.shape);
  const full = (x: Arr): Arr => mapN([x, { data: new Float64Array(size(shape)), shape }], (v) => v);
  const ga = mapN([full(g), cond], (gv, c) => (c !== 0 ? gv : 0));
  const gb = mapN([full(g), cond], (gv, c) => (c !== 0 ? 0 : gv));
  return [sumTo(ga, a.shape), sumTo(gb, b.shape)];
}

// ---- dropout --------------------------------------------------------------------------------------

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The dropout keep-mask for n elements: element i is dropped when the top 24 bits of
 * fmix32(fmix32(lo(i) ^ k1) + k2) are below round(p·2^24), k1 = fmix32(seed_lo ^ 0x9e3779b9),
 * k2 = fmix32(seed_hi + hi(i)·0x9e3779b9 + 0x3c6ef372) (lo/hi: the low and high 32 bits).
 */
export function dropoutKeepMask(n: number, p: number, seed: number): Uint8Array {
  const lo = seed % 4294967296,
    hi = Math.floor(seed / 4294967296);
  const k1 = fmix32((lo ^ 0x9e3779b9) >>> 0);
  const thr = Math.round(p * 16777216);
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const ilo = i % 4294967296,
      ihi = Math.floor(i / 4294967296);
    const k2 = fmix32((hi + Math.imul(ihi, 0x9e3779b9) + 0x3c6ef372) >>> 0);
    const h = fmix32((fmix32((ilo ^ k1) >>> 0) + k2) >>> 0);
    keep[i] = h >>> 8 >= thr ? 1 : 0;
  }
  return keep;
}

export function refDropout(x: Arr, p: number, seed: number): Arr {
  const keep = dropoutKeepMask(x.data.length, p, seed);
  return { data: x.data.map((v, i) => (keep[i] ? v / (1 - p) : 0)), shape: [...x.shape] };
}

export function refDropoutBackward(x: Arr, p: number, seed: number, g: Arr): Arr {
  return refDropout(g, p, seed);
}

// ---- concat / stack -------------------------------------------------------------------------------

export function refConcat(xs: readonly Arr[], dim: number): Arr {
  const nd = xs[0]!.shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const shape = [...xs[0]!.shape];
  shape[d] = xs.reduce((p, x) => p + x.shape[d]!, 0);
  const out = new Float64Array(size(shape));
  const os = stridesOf(shape);
  let at = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const idx = unravel(i, x.shape);
      idx[d]! += at;
      out[idx.reduce((p, v, k) => p + v * os[k]!, 0)] = x.data[i]!;
    }
    at += x.shape[d]!;
  }
  return { data: out, shape };
}

export function refConcatBackward(xs: readonly Arr[], dim: number, g: Arr): Arr[] {
  const nd = xs[0]!.shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const gs = stridesOf(g.shape);
  let at = 0;
  return xs.map((x) => {
    const out = new Float64Array(x.data.length);
    for (let i = 0; i < out.length; i++) {
      const idx = unravel(i, x.shape);
      idx[d]! += at;
      out[i] = g.data[idx.reduce((p, v, k) => p + v * gs[k]!, 0)]!;
    }
    at += x.shape[d]!;
    return { data: out, shape: [...x.shape] };
  });
}

function unsqueeze(x: Arr, d: number): Arr {
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return { data: x.data, shape };
}

export function refStack(xs: readonly Arr[], dim: number): Arr {
  const d = dim < 0 ? dim + xs[0]!.shape.length + 1 : dim;
  return refConcat(
    xs.map((x) => unsqueeze(x, d)),
    d,
  );
}

export function refStackBackward(xs: readonly Arr[], dim: number, g: Arr): Arr[] {
  const d = dim < 0 ? dim + xs[0]!.shape.length + 1 : dim;
  return refConcatBackward(
    xs.map((x) => unsqueeze(x, d)),
    d,
    g,
  ).map((a, i) => ({ data: a.data, shape: [...xs[i]!.shape] }));
}

// ---- reductions -----------------------------------------------------------------------------------

function normDims(nd: number, dims?: number | readonly number[]): number[] {
  if (dims === undefined) return Array.from({ length: nd }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : [...dims];
  return list.map((d) => (d < 0 ? d + nd : d)).sort((a, b) => a - b);
}

function reducedShape(shape: readonly number[], dims: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (dims.includes(i) ? 1 : d)) : shape.filter((_, i) => !dims.includes(i));
}

export function refSum(x: Arr, dims?: number | readonly number[], keepdim = false): Arr {
  const ds = normDims(x.shape.length, dims);
  const kept = reducedShape(x.shape, ds, true);
  const out = sumTo(x, kept);
  return { data: out.data, shape: reducedShape(x.shape, ds, keepdim) };
}

export function refSumBackward(x: Arr, dims: number | readonly number[] | undefined, g: Arr): Arr {
  const ds = normDims(x.shape.length, dims);
  const kept = { data: g.data, shape: reducedShape(x.shape, ds, true) };
  return mapN([kept, { data: new Float64Array(x.data.length), shape: x.shape }], (v) => v);
}

function count(x: Arr, dims?: number | readonly number[]): number {
  return normDims(x.shape.length, dims).reduce((p, d) => p * x.shape[d]!, 1);
}

export function refMean(x: Arr, dims?: number | readonly number[], keepdim = false): Arr {
  const s = refSum(x, dims, keepdim);
  const n = count(x, dims);
  return { data: s.data.map((v) => v / n), shape: s.shape };
}

export function refMeanBackward(x: Arr, dims: number | readonly number[] | undefined, g: Arr): Arr {
  const n = count(x, dims);
  const r = refSumBackward(x, dims, g);
  return { data: r.data.map((v) => v / n), shape: r.shape };
}

export function refMaskedSum(x: Arr, mask: Arr, dims?: number | readonly number[]): Arr {
  return refSum(
    mapN([x, mask], (a, m) => a * m),
    dims,
  );
}

export function refMaskedSumBackward(x: Arr, mask: Arr, dims: number | readonly number[] | undefined, g: Arr): Arr {
  return mapN([refSumBackward(x, dims, g), mask], (gv, m) => gv * m);
}

/** Σ(mask) counted over x's shape (the mask broadcast to x). */
function maskCount(x: Arr, mask: Arr, dims?: number | readonly number[]): Arr {
  return refSum(
    mapN([mask, { data: new Float64Array(x.data.length), shape: x.shape }], (m) => m),
    dims,
  );
}

export function refMaskedMean(x: Arr, mask: Arr, dims?: number | readonly number[]): Arr {
  const num = refMaskedSum(x, mask, dims);
  const den = maskCount(x, mask, dims);
  return { data: num.data.map((v, i) => v / den.data[i]!), shape: num.shape };
}

export function refMaskedMeanBackward(x: Arr, mask: Arr, dims: number | readonly number[] | undefined, g: Arr): Arr {
  const den = maskCount(x, mask, dims);
  return refMaskedSumBackward(x, mask, dims, { data: g.data.map((v, i) => v / den.data[i]!), shape: g.shape });
}

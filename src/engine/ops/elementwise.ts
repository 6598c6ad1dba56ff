// Elementwise ops with NumPy/PyTorch broadcasting, activations, dropout, concat/stack, and sum/mean
// reductions, with autograd. The work runs in native/elementwise.cc: `ewMap` applies one op over an output
// shape reading each input through its own strides (0 on broadcast dims), so views and broadcasts need no
// copies; `reduceSum` sums contiguous [outer, R, inner] arrays in double precision.
import { core, native } from '../native.js';
import { Tensor, record, shapeStr, sizeOf, type Shape } from '../tensor.js';

export type TensorLike = Tensor | number;

export interface ElementwiseOpInfo {
  name: string;
  inputs: number;
  outputs: number;
}

export interface ElementwiseKernels {
  /** The ops ewMap knows; an op's code is its index here. */
  ewOpNames(): ElementwiseOpInfo[];
  /**
   * Runs op over `shape`: outputs are contiguous (out1 only for two-output ops; either output may be null
   * there), input k is read at off + Σ index·stride with one stride per output dim (0 where broadcast).
   */
  ewMap(
    op: number,
    shape: readonly number[],
    p0: number,
    p1: number,
    p2: number,
    out0: Float32Array | null,
    out0Off: number,
    out1: Float32Array | null,
    out1Off: number,
    a: Float32Array,
    aOff: number,
    aStrides: readonly number[],
    b: Float32Array | null,
    bOff: number,
    bStrides: readonly number[] | null,
    c: Float32Array | null,
    cOff: number,
    cStrides: readonly number[] | null,
  ): void;
  /** out[o, j] = scale · Σ_r x[o, r, j] over a contiguous [outer, R, inner] array, accumulated in double. */
  reduceSum(x: Float32Array, xOff: number, outer: number, R: number, inner: number, out: Float32Array, outOff: number, scale: number): void;
}
export const ew = native as unknown as ElementwiseKernels;

const opCodes = new Map<string, number>();
ew.ewOpNames().forEach((o, i) => opCodes.set(o.name, i));
function opCode(name: string): number {
  const c = opCodes.get(name);
  if (c === undefined) throw new Error(`elementwise: the native engine has no op '${name}' (rebuild it: npm run build:native)`);
  return c;
}

// ---- shapes and operands ------------------------------------------------------------------------

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeOf(x: TensorLike): Shape {
  return typeof x === 'number' ? [] : x.shape;
}

function checkOperand(op: string, x: unknown, what: string): asserts x is TensorLike {
  if (typeof x === 'number') return;
  if (!(x instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor or a number, got ${describeValue(x)}`);
}

function checkTensor(op: string, x: unknown, what = 'input'): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor, got ${describeValue(x)}`);
}

function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? ((x as object).constructor?.name ?? 'an object') : typeof x;
}

/** The broadcast shape of several shapes (NumPy rules), or an error naming the op and the shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const nd = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    const lead = nd - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!,
        o = out[lead + i]!;
      if (d === o || d === 1) continue;
      if (o === 1) out[lead + i] = d;
      else throw new Error(`${op}: shapes ${shapes.map(shapeStr).join(' and ')} are not broadcastable`);
    }
  }
  return out;
}

interface Operand {
  data: Float32Array;
  off: number;
  strides: number[];
}

/** How ewMap reads x as an array of shape `out` (x's shape broadcast to it). */
function operand(x: TensorLike, out: Shape): Operand {
  if (typeof x === 'number') return { data: Float32Array.of(x), off: 0, strides: out.map(() => 0) };
  const lead = out.length - x.ndim;
  const strides = out.map((d, i) => {
    const k = i - lead;
    if (k < 0 || x.shape[k] === 1) return 0;
    return x.strides[k]!;
  });
  return { data: x.data, off: x.offset, strides };
}

function runMap(op: string, shape: Shape, inputs: readonly TensorLike[], params: readonly number[], out0: Tensor | null, out1: Tensor | null): void {
  if (sizeOf(shape) === 0) return;
  const ops = inputs.map((x) => operand(x, shape));
  const a = ops[0]!,
    b = ops[1],
    c = ops[2];
  ew.ewMap(
    opCode(op),
    shape,
    params[0] ?? 0,
    params[1] ?? 0,
    params[2] ?? 0,
    out0 ? out0.data : null,
    0,
    out1 ? out1.data : null,
    0,
    a.data,
    a.off,
    a.strides,
    b ? b.data : null,
    b ? b.off : 0,
    b ? b.strides : null,
    c ? c.data : null,
    c ? c.off : 0,
    c ? c.strides : null,
  );
}

/** A new contiguous tensor of `shape` holding op applied to the inputs. */
function map1(op: string, shape: Shape, inputs: readonly TensorLike[], ...params: number[]): Tensor {
  const out = Tensor.empty(shape);
  runMap(op, shape, inputs, params, out, null);
  return out;
}

/** Both (or either) outputs of a two-output op. */
function map2(op: string, shape: Shape, inputs: readonly TensorLike[], need0: boolean, need1: boolean): [Tensor | null, Tensor | null] {
  if (!need0 && !need1) return [null, null];
  const o0 = need0 ? Tensor.empty(shape) : null,
    o1 = need1 ? Tensor.empty(shape) : null;
  runMap(op, shape, inputs, [], o0, o1);
  return [o0, o1];
}

// ---- reductions (no tape) -----------------------------------------------------------------------

/**
 * Sums x over `dims` (sorted, distinct), times `scale`, into a new contiguous tensor of `outShape` (whose
 * size is x's with the dims removed). Runs of adjacent reduced dims are reduced in one pass each.
 */
function reduceInto(x: Tensor, dims: readonly number[], scale: number, outShape: Shape): Tensor {
  const red = new Set(dims);
  // canonical [size, reduced] list: size-1 dims dropped, neighbours of the same kind merged
  const groups: { size: number; reduced: boolean }[] = [];
  x.shape.forEach((d, i) => {
    if (d === 1) return;
    const r = red.has(i);
    const last = groups[groups.length - 1];
    if (last && last.reduced === r) last.size *= d;
    else groups.push({ size: d, reduced: r });
  });
  const out = Tensor.empty(outShape);
  if (out.size === 0) return out;
  const runs = groups.map((_, i) => i).filter((i) => groups[i]!.reduced);
  if (runs.length === 0) {
    runMap('scale', x.shape, [x], [scale], out, null);
  } else {
    let cur = x.isContiguous ? x : x.clone();
    const sizes = groups.map((g) => g.size);
    for (let r = runs.length - 1; r >= 0; r--) {
      const gi = runs[r]!;
      const outer = sizes.slice(0, gi).reduce((p, d) => p * d, 1);
      const inner = sizes.slice(gi + 1).reduce((p, d) => p * d, 1);
      const R = sizes[gi]!;
      const dst = r === 0 ? out : Tensor.empty([outer * inner]);
      ew.reduceSum(cur.data, cur.offset, outer, R, inner, dst.data, 0, r === 0 ? scale : 1);
      if (cur !== x) cur.dispose();
      cur = dst;
      sizes[gi] = 1;
    }
  }
  return out;
}

/** Sums a gradient of the broadcast shape down to `shape` (no tape); returns g itself when shapes match. */
function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let d = 0; d < g.ndim; d++) if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) dims.push(d);
  return reduceInto(g, dims, 1, shape);
}

/** sumTo for a fresh full-size gradient, disposing it when a reduction replaced it. */
function reduceGrad(full: Tensor | null, input: Tensor | null): Tensor | null {
  if (!full || !input) return null;
  const r = sumTo(full, input.shape);
  if (r !== full) full.dispose();
  return r;
}

function needs(x: TensorLike): x is Tensor {
  return typeof x !== 'number' && x.requiresGrad;
}

function asTensor(x: TensorLike): Tensor | null {
  return typeof x === 'number' ? null : x;
}

// ---- binary arithmetic ----------------------------------------------------------------------------

function binary(name: string, a: TensorLike, b: TensorLike, backward: (g: Tensor, shape: Shape) => [Tensor | null, Tensor | null]): Tensor {
  checkOperand(name, a, 'first operand');
  checkOperand(name, b, 'second operand');
  const shape = broadcastShapes(name, shapeOf(a), shapeOf(b));
  const out = map1(name, shape, [a, b]);
  return record(out, [asTensor(a), asTensor(b)], (g) => backward(g, shape), name);
}

/** a + b with broadcasting. */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binary('add', a, b, (g) => [needs(a) ? sumTo(g, a.shape) : null, needs(b) ? sumTo(g, b.shape) : null]);
}

/** a − b with broadcasting. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary('sub', a, b, (g) => {
    let gb: Tensor | null = null;
    if (needs(b)) {
      const r = sumTo(g, b.shape);
      gb = map1('neg', b.shape, [r]);
      if (r !== g) r.dispose();
    }
    return [needs(a) ? sumTo(g, a.shape) : null, gb];
  });
}

/** a · b with broadcasting. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary('mul', a, b, (g, shape) => {
    const [ga, gb] = map2('mul_bwd', shape, [g, a, b], needs(a), needs(b));
    return [reduceGrad(ga, asTensor(a)), reduceGrad(gb, asTensor(b))];
  });
}

/** a / b with broadcasting. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary('div', a, b, (g, shape) => {
    const [ga, gb] = map2('div_bwd', shape, [g, a, b], needs(a), needs(b));
    return [reduceGrad(ga, asTensor(a)), reduceGrad(gb, asTensor(b))];
  });
}

/** Elementwise minimum with broadcasting (NaN propagates); on ties the gradient is split equally. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return binary('minimum', a, b, (g, shape) => {
    const [ga, gb] = map2('minimum_bwd', shape, [g, a, b], needs(a), needs(b));
    return [reduceGrad(ga, asTensor(a)), reduceGrad(gb, asTensor(b))];
  });
}

/** Elementwise maximum with broadcasting (NaN propagates); on ties the gradient is split equally. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binary('maximum', a, b, (g, shape) => {
    const [ga, gb] = map2('maximum_bwd', shape, [g, a, b], needs(a), needs(b));
    return [reduceGrad(ga, asTensor(a)), reduceGrad(gb, asTensor(b))];
  });
}

/** silu(gate)·up in one pass (broadcasting); its backward gives both gradients in one pass. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  checkTensor('swiglu', gate, 'gate');
  checkTensor('swiglu', up, 'up');
  return binary('swiglu', gate, up, (g, shape) => {
    const [gg, gu] = map2('swiglu_bwd', shape, [g, gate, up], gate.requiresGrad, up.requiresGrad);
    return [reduceGrad(gg, gate), reduceGrad(gu, up)];
  });
}

/** cond ? a : b elementwise (cond nonzero = true), with broadcasting; cond gets no gradient. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  checkTensor('where', cond, 'cond');
  checkOperand('where', a, 'a');
  checkOperand('where', b, 'b');
  const shape = broadcastShapes('where', cond.shape, shapeOf(a), shapeOf(b));
  const out = map1('where', shape, [cond, a, b]);
  return record(
    out,
    [null, asTensor(a), asTensor(b)],
    (g) => {
      const [ga, gb] = map2('where_bwd', shape, [g, cond], needs(a), needs(b));
      return [null, reduceGrad(ga, asTensor(a)), reduceGrad(gb, asTensor(b))];
    },
    'where',
  );
}

// ---- unary ops ------------------------------------------------------------------------------------

function unary(name: string, x: Tensor, backward: (g: Tensor, y: Tensor) => Tensor, ...params: number[]): Tensor {
  checkTensor(name, x);
  const out = map1(name, x.shape, [x], ...params);
  return record(out, [x], (g) => [backward(g, out)], name);
}

/** −x */
export function neg(x: Tensor): Tensor {
  return unary('neg', x, (g) => map1('neg', x.shape, [g]));
}

/** s·x for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  if (typeof s !== 'number') throw new Error(`scale: the factor must be a number, got ${describeValue(s)}`);
  return unary('scale', x, (g) => map1('scale', x.shape, [g], s), s);
}

export function exp(x: Tensor): Tensor {
  return unary('exp', x, (g, y) => map1('exp_bwd', x.shape, [g, y]));
}

/** Natural log (−inf at 0, NaN below). */
export function log(x: Tensor): Tensor {
  return unary('log', x, (g) => map1('log_bwd', x.shape, [g, x]));
}

export function sqrt(x: Tensor): Tensor {
  return unary('sqrt', x, (g, y) => map1('sqrt_bwd', x.shape, [g, y]));
}

export function square(x: Tensor): Tensor {
  return unary('square', x, (g) => map1('square_bwd', x.shape, [g, x]));
}

/** |x|; its gradient at 0 is 0, as PyTorch. */
export function abs(x: Tensor): Tensor {
  return unary('abs', x, (g) => map1('abs_bwd', x.shape, [g, x]));
}

export function sigmoid(x: Tensor): Tensor {
  return unary('sigmoid', x, (g, y) => map1('sigmoid_bwd', x.shape, [g, y]));
}

/** log σ(x), computed stably as min(x, 0) − log1p(exp(−|x|)). */
export function logsigmoid(x: Tensor): Tensor {
  return unary('logsigmoid', x, (g) => map1('logsigmoid_bwd', x.shape, [g, x]));
}

export function tanh(x: Tensor): Tensor {
  return unary('tanh', x, (g, y) => map1('tanh_bwd', x.shape, [g, y]));
}

export function relu(x: Tensor): Tensor {
  return unary('relu', x, (g) => map1('relu_bwd', x.shape, [g, x]));
}

/**
 * GELU. 'tanh' (default): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), GPT-2's gelu_new (computed as x·σ(2u),
 * the same function without cancellation); 'none': the exact 0.5x(1 + erf(x/√2)).
 */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'tanh'): Tensor {
  if (approximate !== 'tanh' && approximate !== 'none') throw new Error(`gelu: approximate must be 'tanh' or 'none', got ${String(approximate)}`);
  const op = approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf';
  return unary(op, x, (g) => map1(`${op}_bwd`, x.shape, [g, x]));
}

/** x·σ(x) */
export function silu(x: Tensor): Tensor {
  return unary('silu', x, (g) => map1('silu_bwd', x.shape, [g, x]));
}

/** Clamps to [min, max] (either may be omitted, not both); gradient 1 where min <= x <= max, as PyTorch. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  if (min === undefined && max === undefined) throw new Error('clamp: give at least one of min and max');
  if ((min !== undefined && typeof min !== 'number') || (max !== undefined && typeof max !== 'number')) throw new Error('clamp: min and max must be numbers');
  const lo = min ?? -Infinity,
    hi = max ?? Infinity;
  return unary('clamp', x, (g) => map1('clamp_bwd', x.shape, [g, x], lo, hi), lo, hi);
}

// ---- dropout --------------------------------------------------------------------------------------

/**
 * Zeroes each element with probability p and scales the rest by 1/(1−p). Whether element i (row-major
 * index) is kept is a fixed function of (seed, i), so results do not depend on the thread count and the
 * backward pass reuses the same mask. p = 0 or !training returns x itself.
 */
export function dropout(x: Tensor, p: number, seed: number, training = true): Tensor {
  checkTensor('dropout', x);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`dropout: seed must be a non-negative integer, got ${seed}`);
  if (!training || p === 0) return x;
  const lo = seed % 4294967296,
    hi = Math.floor(seed / 4294967296);
  const out = map1('dropout', x.shape, [x], p, lo, hi);
  return record(out, [x], (g) => [map1('dropout', x.shape, [g], p, lo, hi)], 'dropout');
}

// ---- concat and stack -----------------------------------------------------------------------------

function normDim(op: string, dim: number, nd: number): number {
  if (!Number.isInteger(dim) || dim < -nd || dim >= nd) throw new Error(`${op}: dim ${dim} is out of range for ${nd} dims`);
  return dim < 0 ? dim + nd : dim;
}

/** Joins tensors along an existing dim; all other dims must match. */
export function concat(tensors: Tensor[], dim: number): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error('concat: needs a non-empty array of tensors');
  const items = [...tensors];
  items.forEach((t, i) => checkTensor('concat', t, `tensors[${i}]`));
  const first = items[0]!;
  if (first.ndim === 0) throw new Error('concat: cannot concatenate 0-d tensors (use stack)');
  const d = normDim('concat', dim, first.ndim);
  let total = 0;
  items.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((s, k) => k !== d && s !== first.shape[k]))
      throw new Error(`concat: tensors[${i}] has shape ${shapeStr(t.shape)}, tensors[0] has ${shapeStr(first.shape)}; only dim ${d} may differ`);
    total += t.shape[d]!;
  });
  const shape = [...first.shape];
  shape[d] = total;
  const out = Tensor.empty(shape);
  const os = out.strides;
  let at = 0;
  for (const t of items) {
    if (t.size > 0) core.copyStrided(t.data, t.offset, t.shape, t.strides, out.data, at * os[d]!, os);
    at += t.shape[d]!;
  }
  return record(
    out,
    items,
    (g) => {
      let o = 0;
      return items.map((t) => {
        const s = o;
        o += t.shape[d]!;
        return t.requiresGrad ? g.slice(d, s, o) : null;
      });
    },
    'concat',
  );
}

/** Stacks same-shape tensors along a new dim (0..ndim). */
export function stack(tensors: Tensor[], dim: number): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error('stack: needs a non-empty array of tensors');
  const items = [...tensors];
  items.forEach((t, i) => checkTensor('stack', t, `tensors[${i}]`));
  const first = items[0]!;
  const d = normDim('stack', dim, first.ndim + 1);
  items.forEach((t, i) => {
    if (!sameShape(t.shape, first.shape)) throw new Error(`stack: tensors[${i}] has shape ${shapeStr(t.shape)}, tensors[0] has ${shapeStr(first.shape)}; all must match`);
  });
  const shape = [...first.shape];
  shape.splice(d, 0, items.length);
  const out = Tensor.empty(shape);
  const dstStrides = out.strides.filter((_, k) => k !== d);
  items.forEach((t, i) => {
    if (t.size > 0) core.copyStrided(t.data, t.offset, t.shape, t.strides, out.data, i * out.strides[d]!, dstStrides);
  });
  return record(
    out,
    items,
    (g) =>
      items.map((t, i) =>
        t.requiresGrad
          ? new Tensor(
              g.storage.retain(),
              t.shape,
              g.strides.filter((_, k) => k !== d),
              g.offset + i * g.strides[d]!,
            )
          : null,
      ),
    'stack',
  );
}

// ---- reductions -----------------------------------------------------------------------------------

function normDims(op: string, x: Tensor, dims: number | number[] | undefined): number[] {
  if (dims === undefined) return x.shape.map((_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  if (!Array.isArray(list)) throw new Error(`${op}: dims must be a number or an array of numbers`);
  const out = list.map((d) => {
    if (!Number.isInteger(d) || d < -x.ndim || d >= x.ndim) throw new Error(`${op}: dim ${d} is out of range for ${x.describe()}`);
    return d < 0 ? d + x.ndim : d;
  });
  if (new Set(out).size !== out.length) throw new Error(`${op}: dims [${list.join(', ')}] repeat a dim of ${x.describe()}`);
  return out.sort((a, b) => a - b);
}

/** g (shape keptShape, or keptShape without the reduced dims) broadcast back to inShape, times s. */
function expandGrad(g: Tensor, dims: readonly number[], inShape: Shape, keepdim: boolean, s: number): Tensor {
  const red = new Set(dims);
  const strides: number[] = [];
  let k = 0;
  inShape.forEach((_, i) => {
    if (red.has(i)) {
      strides.push(0);
      if (keepdim) k++;
    } else strides.push(g.strides[k++]!);
  });
  const view = new Tensor(g.storage.retain(), inShape, strides, g.offset);
  const out = map1('scale', inShape, [view], s);
  view.dispose();
  return out;
}

function reduce(op: string, x: Tensor, dims: number | number[] | undefined, keepdim: boolean, isMean: boolean): Tensor {
  checkTensor(op, x);
  const ds = normDims(op, x, dims);
  const red = new Set(ds);
  const outShape = keepdim ? x.shape.map((d, i) => (red.has(i) ? 1 : d)) : x.shape.filter((_, i) => !red.has(i));
  const count = ds.reduce((p, d) => p * x.shape[d]!, 1);
  const s = isMean ? 1 / count : 1;
  const out = reduceInto(x, ds, s, outShape);
  const inShape = x.shape;
  return record(out, [x], (g) => [expandGrad(g, ds, inShape, keepdim, s)], op);
}

/** Σ over dims (a dim or a list; all dims when omitted, giving a 0-d tensor; [] reduces nothing). */
export function sum(x: Tensor, dims?: number | number[], keepdim = false): Tensor {
  return reduce('sum', x, dims, keepdim, false);
}

/** Mean over dims (a dim or a list; all dims when omitted, giving a 0-d tensor). */
export function mean(x: Tensor, dims?: number | number[], keepdim = false): Tensor {
  return reduce('mean', x, dims, keepdim, true);
}

function checkMask(op: string, x: Tensor, mask: Tensor): void {
  checkTensor(op, x);
  checkTensor(op, mask, 'mask');
  const b = broadcastShapes(op, x.shape, mask.shape);
  if (!sameShape(b, x.shape)) throw new Error(`${op}: mask ${shapeStr(mask.shape)} does not broadcast to x ${shapeStr(x.shape)}`);
}

/** Σ(x·mask) over dims (all when omitted); mask broadcasts to x and gets no gradient. */
export function maskedSum(x: Tensor, mask: Tensor, dims?: number | number[]): Tensor {
  checkMask('maskedSum', x, mask);
  const m = mask.requiresGrad ? mask.detach() : mask;
  const prod = mul(x, m);
  const out = sum(prod, dims);
  if (!prod.requiresGrad) {
    prod.dispose();
    if (m !== mask) m.dispose();
  }
  return out;
}

/**
 * TRL's masked_mean: Σ(x·mask)/Σ(mask) over dims (all when omitted). The mask is counted broadcast to x's
 * shape, so this is the mean of the selected elements; it gets no gradient. An empty selection gives NaN.
 */
export function maskedMean(x: Tensor, mask: Tensor, dims?: number | number[]): Tensor {
  checkMask('maskedMean', x, mask);
  const num = maskedSum(x, mask, dims);
  const ds = normDims('maskedMean', x, dims);
  const red = new Set(ds);
  const full = sameShape(mask.shape, x.shape) ? mask : map1('copy', x.shape, [mask]);
  const den = reduceInto(
    full,
    ds,
    1,
    x.shape.filter((_, i) => !red.has(i)),
  );
  if (full !== mask) full.dispose();
  const out = div(num, den);
  if (!out.requiresGrad) {
    num.dispose();
    den.dispose();
  }
  return out;
}

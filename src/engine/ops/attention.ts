// Rotary position embeddings (rope) and fused scaled dot-product attention (attention) with autograd, on the
// kernels of native/attention.cc.
//
// attention reads q, k and v through their strides (the usual inputs are [B, H, T, D] views of [B, T, H, D]
// projections), never builds a Tq × Tk matrix per head (FlashAttention-2 style tiles with an online softmax),
// and keeps only its output and a per-row log-sum-exp for the backward pass, which recomputes the
// probabilities tile by tile. Its output is laid out [B, Tq, Hq, D] in memory, so that
// out.transpose(1, 2).reshape([B, Tq, Hq·D]) is a view. Gradients are laid out like the inputs they belong to.
import { native } from '../native.js';
import { Tensor, allocStorage, record, shapeStr } from '../tensor.js';

export interface AttentionKernels {
  /**
   * cos/sin tables [n, rotaryDim/2] for n positions: float32 inv_freq = 1/theta^(2i/d), float32 angle =
   * pos·inv_freq, cos and sin of that angle (transformers' default rotary embedding, computed in float32).
   */
  ropeTable(positions: Int32Array, n: number, theta: number, rotaryDim: number, cos: Float32Array, sin: Float32Array): void;
  /**
   * Rotate-half rotation of x [B, H, T, D] (any strides) into out (any strides) by the table rows (row t, or
   * b·T + t when perRow); by minus the angles when inverse. Features from rotaryDim on are copied.
   */
  ropeApply(
    x: Float32Array,
    xOff: number,
    shape: readonly number[],
    xStrides: readonly number[],
    out: Float32Array,
    outOff: number,
    outStrides: readonly number[],
    cos: Float32Array,
    sin: Float32Array,
    perRow: boolean,
    rotaryDim: number,
    inverse: boolean,
  ): void;
  /**
   * out = softmax(q·kᵀ·scale + masks)·v for q [B, Hq, Tq, D], k and v [B, Hkv, Tk, D] (strides given, last one
   * 1), dims = [B, Hq, Hkv, Tq, Tk, D]; mask [B·Tk] (1 = may attend) or null; writes out through outStrides and
   * lse [B·Hq·Tq] (−inf for a query that sees no key, whose output is 0). k and v may both be Uint16Arrays of
   * bf16 values (a bf16 KV cache); the kernel widens them to fp32 exactly.
   */
  attentionForward(
    q: Float32Array,
    qOff: number,
    qStrides: readonly number[],
    k: Float32Array | Uint16Array,
    kOff: number,
    kStrides: readonly number[],
    v: Float32Array | Uint16Array,
    vOff: number,
    vStrides: readonly number[],
    dims: readonly number[],
    mask: Uint8Array | null,
    causal: boolean,
    queryOffset: number,
    scale: number,
    out: Float32Array,
    outOff: number,
    outStrides: readonly number[],
    lse: Float32Array,
  ): void;
  /** Gradients of attentionForward for dOut, written into dq, dk and dv (which must be zero-filled). */
  attentionBackward(
    q: Float32Array,
    qOff: number,
    qStrides: readonly number[],
    k: Float32Array,
    kOff: number,
    kStrides: readonly number[],
    v: Float32Array,
    vOff: number,
    vStrides: readonly number[],
    dims: readonly number[],
    mask: Uint8Array | null,
    causal: boolean,
    queryOffset: number,
    scale: number,
    out: Float32Array,
    outOff: number,
    outStrides: readonly number[],
    lse: Float32Array,
    dOut: Float32Array,
    dOutOff: number,
    dOutStrides: readonly number[],
    dq: Float32Array,
    dqOff: number,
    dqStrides: readonly number[],
    dk: Float32Array,
    dkOff: number,
    dkStrides: readonly number[],
    dv: Float32Array,
    dvOff: number,
    dvStrides: readonly number[],
  ): void;
}
export const attentionKernels = native as unknown as AttentionKernels;
const k_ = attentionKernels;

export interface AttentionOptions {
  /** Query i (at absolute position queryOffset + i) sees keys j <= its position. Default true. */
  causal?: boolean;
  /** Padding mask of length B·Tk: nonzero = the key may be attended. */
  keyMask?: Int32Array | Uint8Array;
  /** Multiplies q·k; default 1/sqrt(D). */
  scale?: number;
  /** Absolute position of query 0 for the causal mask; default Tk − Tq (the queries are the last Tq keys). */
  queryOffset?: number;
}

function check4(op: string, t: unknown, what: string): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor`);
  if (t.ndim !== 4) throw new Error(`${op}: ${what} must be 4-D [B, H, T, D], got ${shapeStr(t.shape)}`);
}

/** t itself when its last dim has stride 1 (what the kernels need), else a contiguous copy (on the tape). */
function unitInner(t: Tensor): Tensor {
  return t.strides[3] === 1 || t.shape[3]! <= 1 ? t : t.contiguous();
}

/**
 * A tensor of t's shape (zero-filled when asked) whose memory follows t's dimension order (dims 0..2 by
 * decreasing stride, the last dim innermost), so that the gradient of a view of a [B, T, H, D] projection is
 * itself such a view.
 */
function layoutLike(t: Tensor, zero: boolean): Tensor {
  const order = [0, 1, 2].sort((a, b) => t.strides[b]! - t.strides[a]! || a - b);
  order.push(3);
  const strides = new Array<number>(4);
  let acc = 1;
  for (let i = 3; i >= 0; i--) {
    strides[order[i]!] = acc;
    acc *= t.shape[order[i]!]!;
  }
  return new Tensor(allocStorage(acc, zero), t.shape, strides, 0);
}

/**
 * Rotary position embedding, Hugging Face Llama layout ("rotate half"), of x [B, H, T, D] (any strides; usually
 * a transposed view of a [B, T, H, D] projection). positions has T entries (shared by the batch) or B·T (one
 * row per sequence, e.g. with left padding). With d = rotaryDim (default D, even): inv_freq[i] = theta^(−2i/d),
 * angle = pos·inv_freq[i], out[i] = x[i]·cos − x[i+d/2]·sin, out[i+d/2] = x[i+d/2]·cos + x[i]·sin for i < d/2;
 * features from d on pass through. The angles are computed as transformers computes them (float32 inv_freq,
 * float32 products, cos/sin of those float32 values), so results match it to float rounding even at large
 * positions. Returns a contiguous [B, H, T, D] tensor; the backward pass rotates by −angle.
 */
export function rope(x: Tensor, positions: Int32Array, theta: number, rotaryDim?: number): Tensor {
  const op = 'rope';
  check4(op, x, 'x');
  const [B, H, T, D] = x.shape as [number, number, number, number];
  const d = rotaryDim ?? D;
  if (!Number.isInteger(d) || d < 2 || d % 2 !== 0 || d > D) throw new Error(`${op}: rotaryDim must be an even integer in [2, D=${D}], got ${rotaryDim} (x ${shapeStr(x.shape)})`);
  if (typeof theta !== 'number' || !Number.isFinite(theta) || !(theta > 0)) throw new Error(`${op}: theta must be a finite number > 0, got ${theta}`);
  if (!(positions instanceof Int32Array)) throw new Error(`${op}: positions must be an Int32Array`);
  if (positions.length !== T && positions.length !== B * T) throw new Error(`${op}: ${positions.length} positions for x ${shapeStr(x.shape)} (expected T=${T} or B·T=${B * T})`);
  const perRow = positions.length !== T;
  const half = d / 2;
  const cos = new Float32Array(positions.length * half),
    sin = new Float32Array(positions.length * half);
  k_.ropeTable(positions, positions.length, theta, d, cos, sin);
  const out = Tensor.empty(x.shape); // every element is written
  if (out.size > 0) k_.ropeApply(x.data, x.offset, x.shape, x.strides, out.data, 0, out.strides, cos, sin, perRow, d, false);
  return record(
    out,
    [x],
    (g) => {
      const dx = layoutLike(x, false); // every element is written
      if (dx.size > 0) k_.ropeApply(g.data, g.offset, g.shape, g.strides, dx.data, 0, dx.strides, cos, sin, perRow, d, true);
      return [dx];
    },
    op,
  );
}

/**
 * Scaled dot-product attention softmax(q·kᵀ·scale + masks)·v, fused (FlashAttention-2 style; see the file
 * header). q [B, Hq, Tq, D]; k and v [B, Hkv, Tk, D] with Hq a multiple of Hkv (grouped-query attention: query
 * head h reads kv head floor(h / (Hq/Hkv))). Inputs may be any views whose last dim has stride 1 (others are
 * copied). A query that can see no key outputs 0 and gets no gradient. Returns [B, Hq, Tq, D] laid out as
 * [B, Tq, Hq, D] in memory.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return attentionImpl(q, k, v, opts).out;
}

/** attention, also returning the per-row log-sum-exp of the scaled, masked scores ([B, Hq, Tq]; −inf: no key). */
export function attentionWithLse(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Float32Array } {
  const r = attentionImpl(q, k, v, opts);
  return { out: r.out, lse: r.lse.slice() };
}

function attentionImpl(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): { out: Tensor; lse: Float32Array } {
  const op = 'attention';
  check4(op, q, 'q');
  check4(op, k, 'k');
  check4(op, v, 'v');
  const [B, Hq, Tq, D] = q.shape as [number, number, number, number];
  const [Bk, Hkv, Tk, Dk] = k.shape as [number, number, number, number];
  const shapes = `q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}`;
  if (Bk !== B || Dk !== D || v.shape.some((s, i) => s !== k.shape[i])) throw new Error(`${op}: expected q [B, Hq, Tq, D] and k, v [B, Hkv, Tk, D] with the same B and D, got ${shapes}`);
  if (D < 1) throw new Error(`${op}: head size D must be >= 1, got ${shapes}`);
  if (Hkv < 1 || Hq % Hkv !== 0) throw new Error(`${op}: query heads (${Hq}) must be a multiple of kv heads (${Hkv}); ${shapes}`);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (typeof scale !== 'number' || !Number.isFinite(scale) || !(scale > 0)) throw new Error(`${op}: scale must be a finite number > 0, got ${scale}`);
  const queryOffset = opts.queryOffset ?? Tk - Tq;
  if (!Number.isSafeInteger(queryOffset)) throw new Error(`${op}: queryOffset must be an integer, got ${opts.queryOffset}`);
  let mask: Uint8Array | null = null;
  if (opts.keyMask !== undefined) {
    const m = opts.keyMask;
    if (!(m instanceof Int32Array) && !(m instanceof Uint8Array)) throw new Error(`${op}: keyMask must be an Int32Array or a Uint8Array`);
    if (m.length !== B * Tk) throw new Error(`${op}: keyMask has ${m.length} entries, expected B·Tk = ${B * Tk} (${shapes})`);
    mask = new Uint8Array(m.length); // a copy: the caller may reuse its array before backward
    for (let i = 0; i < m.length; i++) mask[i] = m[i] ? 1 : 0;
  }
  const qc = unitInner(q),
    kc = unitInner(k),
    vc = unitInner(v);
  const dims = [B, Hq, Hkv, Tq, Tk, D];
  const outStrides = [Tq * Hq * D, D, Hq * D, 1];
  const out = new Tensor(allocStorage(B * Tq * Hq * D), [B, Hq, Tq, D], outStrides, 0); // every row is written
  const lse = new Float32Array(B * Hq * Tq);
  if (out.size > 0)
    k_.attentionForward(qc.data, qc.offset, qc.strides, kc.data, kc.offset, kc.strides, vc.data, vc.offset, vc.strides, dims, mask, causal, queryOffset, scale, out.data, 0, outStrides, lse);
  const result = record(
    out,
    [qc, kc, vc],
    (g) => {
      const gc = unitInner(g);
      const dq = layoutLike(qc, true),
        dk = layoutLike(kc, true),
        dv = layoutLike(vc, true); // accumulated into
      if (out.size > 0 && Tk > 0)
        k_.attentionBackward(
          qc.data,
          qc.offset,
          qc.strides,
          kc.data,
          kc.offset,
          kc.strides,
          vc.data,
          vc.offset,
          vc.strides,
          dims,
          mask,
          causal,
          queryOffset,
          scale,
          out.data,
          out.offset,
          out.strides,
          lse,
          gc.data,
          gc.offset,
          gc.strides,
          dq.data,
          0,
          dq.strides,
          dk.data,
          0,
          dk.strides,
          dv.data,
          0,
          dv.strides,
        );
      if (gc !== g) gc.dispose();
      const keepIf = (t: Tensor, want: boolean): Tensor | null => {
        if (want) return t;
        t.dispose();
        return null;
      };
      return [keepIf(dq, qc.requiresGrad), keepIf(dk, kc.requiresGrad), keepIf(dv, vc.requiresGrad)];
    },
    op,
  );
  return { out: result, lse };
}

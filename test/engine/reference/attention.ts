// Float64 reference implementations of rotary embeddings and scaled dot-product attention, forward and
// backward, as plain loops over contiguous [B, H, T, D] arrays (the full score matrix, masks, grouped-query
// heads). They define what the native kernels must compute; tests compare against them.

export interface RefAttentionDims {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
}

interface RefAttentionOptions {
  causal?: boolean;
  keyMask?: ArrayLike<number>;
  scale?: number;
  queryOffset?: number;
}

interface Resolved {
  causal: boolean;
  mask: ArrayLike<number> | undefined;
  scale: number;
  qoff: number;
}

function resolve(d: RefAttentionDims, o: RefAttentionOptions): Resolved {
  return { causal: o.causal ?? true, mask: o.keyMask, scale: o.scale ?? 1 / Math.sqrt(d.D), qoff: o.queryOffset ?? d.Tk - d.Tq };
}

function visible(d: RefAttentionDims, r: Resolved, b: number, i: number, j: number): boolean {
  if (r.mask && !r.mask[b * d.Tk + j]) return false;
  if (r.causal && j > r.qoff + i) return false;
  return true;
}

/** The probabilities P[j] of query (b, h, i) over all Tk keys (0 where not visible) and its log-sum-exp. */
function probs(q: Float64Array, k: Float64Array, d: RefAttentionDims, r: Resolved, b: number, h: number, i: number): { p: Float64Array; lse: number } {
  const { Hq, Hkv, Tq, Tk, D } = d;
  const g = Math.floor(h / (Hq / Hkv));
  const s = new Float64Array(Tk);
  let mx = -Infinity;
  for (let j = 0; j < Tk; j++) {
    if (!visible(d, r, b, i, j)) {
      s[j] = -Infinity;
      continue;
    }
    let dot = 0;
    for (let e = 0; e < D; e++) dot += q[((b * Hq + h) * Tq + i) * D + e]! * k[((b * Hkv + g) * Tk + j) * D + e]!;
    s[j] = dot * r.scale;
    mx = Math.max(mx, s[j]!);
  }
  const p = new Float64Array(Tk);
  if (mx === -Infinity) return { p, lse: -Infinity };
  let sum = 0;
  for (let j = 0; j < Tk; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j]! - mx);
  const lse = mx + Math.log(sum);
  for (let j = 0; j < Tk; j++) p[j] = s[j] === -Infinity ? 0 : Math.exp(s[j]! - lse);
  return { p, lse };
}

/**
 * softmax(q·kᵀ·scale + masks)·v for q [B, Hq, Tq, D] and k, v [B, Hkv, Tk, D] (contiguous). Query i sits at
 * absolute position queryOffset + i (default Tk − Tq) and, when causal (default), sees keys j <= that position;
 * keyMask [B·Tk] (nonzero = visible) masks padding. A query that sees no key gets output 0 and lse −inf.
 * Returns out [B, Hq, Tq, D] and lse [B, Hq, Tq].
 */
export function refAttention(q: Float64Array, k: Float64Array, v: Float64Array, d: RefAttentionDims, o: RefAttentionOptions = {}): { out: Float64Array; lse: Float64Array } {
  const r = resolve(d, o);
  const { B, Hq, Hkv, Tq, Tk, D } = d;
  const out = new Float64Array(B * Hq * Tq * D);
  const lse = new Float64Array(B * Hq * Tq);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Tq; i++) {
        const { p, lse: l } = probs(q, k, d, r, b, h, i);
        lse[(b * Hq + h) * Tq + i] = l;
        const o0 = ((b * Hq + h) * Tq + i) * D;
        for (let j = 0; j < Tk; j++) {
          if (p[j] === 0) continue;
          for (let e = 0; e < D; e++) out[o0 + e] += p[j]! * v[((b * Hkv + g) * Tk + j) * D + e]!;
        }
      }
    }
  return { out, lse };
}

/**
 * Gradients of refAttention for dOut [B, Hq, Tq, D]: with P the probabilities, dV += Pᵀ·dO, dP = dO·Vᵀ,
 * dS = P ∘ (dP − Σ_j P·dP), dQ = dS·K·scale, dK += dSᵀ·Q·scale (kv heads summed over their query heads).
 */
export function refAttentionBackward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  d: RefAttentionDims,
  o: RefAttentionOptions,
  dOut: Float64Array,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const r = resolve(d, o);
  const { B, Hq, Hkv, Tq, Tk, D } = d;
  const dq = new Float64Array(q.length),
    dk = new Float64Array(k.length),
    dv = new Float64Array(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Tq; i++) {
        const { p } = probs(q, k, d, r, b, h, i);
        const qi = ((b * Hq + h) * Tq + i) * D;
        const dp = new Float64Array(Tk);
        let rowDot = 0;
        for (let j = 0; j < Tk; j++) {
          if (p[j] === 0) continue;
          const kj = ((b * Hkv + g) * Tk + j) * D;
          let s = 0;
          for (let e = 0; e < D; e++) {
            s += dOut[qi + e]! * v[kj + e]!;
            dv[kj + e] += p[j]! * dOut[qi + e]!;
          }
          dp[j] = s;
          rowDot += p[j]! * s;
        }
        for (let j = 0; j < Tk; j++) {
          if (p[j] === 0) continue;
          const ds = p[j]! * (dp[j]! - rowDot) * r.scale;
          const kj = ((b * Hkv + g) * Tk + j) * D;
          for (let e = 0; e < D; e++) {
            dq[qi + e] += ds * k[kj + e]!;
            dk[kj + e] += ds * q[qi + e]!;
          }
        }
      }
    }
  return { dq, dk, dv };
}

/** Rotary angles [positions.length, d/2]: pos·theta^(−2i/d), in exact float64 arithmetic. */
export function refRopeAngles(positions: ArrayLike<number>, theta: number, d: number): Float64Array {
  const half = d / 2;
  const a = new Float64Array(positions.length * half);
  for (let p = 0; p < positions.length; p++) for (let i = 0; i < half; i++) a[p * half + i] = positions[p]! * Math.pow(theta, (-2 * i) / d);
  return a;
}

/**
 * The same angles computed as transformers computes them in float32 (each step rounded to float32:
 * inv_freq = 1/theta^(float(2i)/d), angle = float(pos)·inv_freq), returned as float64 values.
 */
export function refRopeAnglesF32(positions: ArrayLike<number>, theta: number, d: number): Float64Array {
  const f = Math.fround;
  const half = d / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(f(theta), f((2 * i) / d))));
  const a = new Float64Array(positions.length * half);
  for (let p = 0; p < positions.length; p++) for (let i = 0; i < half; i++) a[p * half + i] = f(f(positions[p]!) * inv[i]!);
  return a;
}

/**
 * Rotate-half rotary embedding of x [B, H, T, D] (contiguous) by angles [n, d/2] (n = T, or B·T when perRow):
 * out[i] = x[i]·cos − x[i+d/2]·sin, out[i+d/2] = x[i+d/2]·cos + x[i]·sin for i < d/2, the rest copied.
 */
export function refRope(x: Float64Array, shape: readonly number[], angles: Float64Array, perRow: boolean, d: number): Float64Array {
  const [B, H, T, D] = shape as [number, number, number, number];
  const half = d / 2;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const o = ((b * H + h) * T + t) * D;
        const a0 = (perRow ? b * T + t : t) * half;
        for (let i = 0; i < half; i++) {
          const c = Math.cos(angles[a0 + i]!),
            s = Math.sin(angles[a0 + i]!);
          out[o + i] = x[o + i]! * c - x[o + i + half]! * s;
          out[o + i + half] = x[o + i + half]! * c + x[o + i]! * s;
        }
        for (let i = d; i < D; i++) out[o + i] = x[o + i]!;
      }
  return out;
}

/** Gradient of refRope with respect to x for dOut (the transpose of the rotation). */
export function refRopeBackward(dOut: Float64Array, shape: readonly number[], angles: Float64Array, perRow: boolean, d: number): Float64Array {
  const [B, H, T, D] = shape as [number, number, number, number];
  const half = d / 2;
  const dx = new Float64Array(dOut.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const o = ((b * H + h) * T + t) * D;
        const a0 = (perRow ? b * T + t : t) * half;
        for (let i = 0; i < half; i++) {
          const c = Math.cos(angles[a0 + i]!),
            s = Math.sin(angles[a0 + i]!);
          const g0 = dOut[o + i]!,
            g1 = dOut[o + i + half]!;
          // out0 = x0·c − x1·s, out1 = x1·c + x0·s
          dx[o + i] = g0 * c + g1 * s;
          dx[o + i + half] = -g0 * s + g1 * c;
        }
        for (let i = d; i < D; i++) dx[o + i] = dOut[o + i]!;
      }
  return dx;
}

// Float64 reference implementations (plain loops, no native code) of the ops in ops/norm.ts, forward and
// backward, for the tests: layerNorm, rmsNorm, softmax, logSoftmax, selectiveLogSoftmax, entropy, embedding.
// Row-wise ops take flat row-major arrays of `rows` rows of C; softmax and logSoftmax take the layout
// [outer, C, inner] so any dim can be checked (inner = 1 is the last dim).

interface LayerNormRef {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

export function layerNormRef(x: ArrayLike<number>, w: ArrayLike<number> | null, b: ArrayLike<number> | null, rows: number, C: number, eps = 1e-5): LayerNormRef {
  const y = new Float64Array(rows * C),
    mean = new Float64Array(rows),
    rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < C; j++) m += x[r * C + j]!;
    m /= C;
    let v = 0;
    for (let j = 0; j < C; j++) v += (x[r * C + j]! - m) ** 2;
    v /= C;
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < C; j++) y[r * C + j] = (x[r * C + j]! - m) * rs * (w ? w[j]! : 1) + (b ? b[j]! : 0);
  }
  return { y, mean, rstd };
}

/** Gradients of Σ y·dy with respect to x, w and b (dw, db are computed even when w, b are null). */
export function layerNormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number> | null,
  rows: number,
  C: number,
  eps = 1e-5,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { mean, rstd } = layerNormRef(x, null, null, rows, C, eps);
  const dx = new Float64Array(rows * C),
    dw = new Float64Array(C),
    db = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const m = mean[r]!,
      rs = rstd[r]!;
    let sg = 0,
      sgx = 0;
    for (let j = 0; j < C; j++) {
      const xh = (x[r * C + j]! - m) * rs;
      const g = dy[r * C + j]! * (w ? w[j]! : 1);
      sg += g;
      sgx += g * xh;
      dw[j] += dy[r * C + j]! * xh;
      db[j] += dy[r * C + j]!;
    }
    for (let j = 0; j < C; j++) {
      const xh = (x[r * C + j]! - m) * rs;
      const g = dy[r * C + j]! * (w ? w[j]! : 1);
      dx[r * C + j] = rs * (g - sg / C - xh * (sgx / C));
    }
  }
  return { dx, dw, db };
}

export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number> | null, rows: number, C: number, eps = 1e-6): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * C),
    rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ms = 0;
    for (let j = 0; j < C; j++) ms += x[r * C + j]! ** 2;
    ms /= C;
    const rs = 1 / Math.sqrt(ms + eps);
    rstd[r] = rs;
    for (let j = 0; j < C; j++) y[r * C + j] = x[r * C + j]! * rs * (w ? w[j]! : 1);
  }
  return { y, rstd };
}

export function rmsNormBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number> | null, rows: number, C: number, eps = 1e-6): { dx: Float64Array; dw: Float64Array } {
  const { rstd } = rmsNormRef(x, null, rows, C, eps);
  const dx = new Float64Array(rows * C),
    dw = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const rs = rstd[r]!;
    let s = 0;
    for (let j = 0; j < C; j++) s += dy[r * C + j]! * (w ? w[j]! : 1) * x[r * C + j]!;
    for (let j = 0; j < C; j++) {
      const g = dy[r * C + j]! * (w ? w[j]! : 1);
      dx[r * C + j] = rs * g - x[r * C + j]! * rs ** 3 * (s / C);
      dw[j] += dy[r * C + j]! * x[r * C + j]! * rs;
    }
  }
  return { dx, dw };
}

/** log Σ exp over one line of the [outer, C, inner] layout, stably (max subtracted). */
function lineLse(x: ArrayLike<number>, base: number, C: number, inner: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, x[base + c * inner]!);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[base + c * inner]! - m);
  return m + Math.log(s);
}

/** Softmax along the middle dim of x laid out [outer, C, inner]. */
export function softmaxRef(x: ArrayLike<number>, outer: number, C: number, inner = 1): Float64Array {
  const out = logSoftmaxRef(x, outer, C, inner);
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(out[i]!);
  return out;
}

export function logSoftmaxRef(x: ArrayLike<number>, outer: number, C: number, inner = 1): Float64Array {
  const out = new Float64Array(outer * C * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * C * inner + i;
      const lse = lineLse(x, base, C, inner);
      for (let c = 0; c < C; c++) out[base + c * inner] = x[base + c * inner]! - lse;
    }
  return out;
}

/** Gradient of Σ softmax(x)·dy with respect to x: y·(dy − Σ dy·y) along each line. */
export function softmaxBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, outer: number, C: number, inner = 1): Float64Array {
  const y = softmaxRef(x, outer, C, inner);
  const dx = new Float64Array(y.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * C * inner + i;
      let d = 0;
      for (let c = 0; c < C; c++) d += dy[base + c * inner]! * y[base + c * inner]!;
      for (let c = 0; c < C; c++) dx[base + c * inner] = y[base + c * inner]! * (dy[base + c * inner]! - d);
    }
  return dx;
}

/** Gradient of Σ logSoftmax(x)·dy with respect to x: dy − softmax(x)·Σ dy along each line. */
export function logSoftmaxBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, outer: number, C: number, inner = 1): Float64Array {
  const y = softmaxRef(x, outer, C, inner);
  const dx = new Float64Array(y.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * C * inner + i;
      let s = 0;
      for (let c = 0; c < C; c++) s += dy[base + c * inner]!;
      for (let c = 0; c < C; c++) dx[base + c * inner] = dy[base + c * inner]! - y[base + c * inner]! * s;
    }
  return dx;
}

/** log softmax(row r)[targets[r]], 0 where targets[r] < 0. */
export function selectiveLogSoftmaxRef(logits: ArrayLike<number>, targets: ArrayLike<number>, rows: number, V: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t < 0) continue;
    if (t >= V) throw new Error(`selectiveLogSoftmaxRef: target ${t} out of range for V ${V}`);
    out[r] = logits[r * V + t]! - lineLse(logits, r * V, V, 1);
  }
  return out;
}

/** Gradient of Σ out·g with respect to the logits: g·(onehot(t) − softmax) per row, 0 for ignored rows. */
export function selectiveLogSoftmaxBackwardRef(logits: ArrayLike<number>, targets: ArrayLike<number>, g: ArrayLike<number>, rows: number, V: number): Float64Array {
  const dx = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t < 0) continue;
    const lse = lineLse(logits, r * V, V, 1);
    for (let j = 0; j < V; j++) dx[r * V + j] = g[r]! * ((j === t ? 1 : 0) - Math.exp(logits[r * V + j]! - lse));
  }
  return dx;
}

/** −Σ p·log p of softmax(row r) (terms with p = 0 count as 0). */
export function entropyRef(logits: ArrayLike<number>, rows: number, V: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const lse = lineLse(logits, r * V, V, 1);
    let h = 0;
    for (let j = 0; j < V; j++) {
      const lp = logits[r * V + j]! - lse;
      const p = Math.exp(lp);
      if (p > 0) h -= p * lp;
    }
    out[r] = h;
  }
  return out;
}

export function embeddingRef(w: ArrayLike<number>, ids: ArrayLike<number>, V: number, C: number): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= V) throw new Error(`embeddingRef: id ${id} out of range for V ${V}`);
    for (let c = 0; c < C; c++) out[i * C + c] = w[id * C + c]!;
  }
  return out;
}

/** Gradient of Σ out·g with respect to w [V, C]. */
export function embeddingBackwardRef(g: ArrayLike<number>, ids: ArrayLike<number>, V: number, C: number): Float64Array {
  const dw = new Float64Array(V * C);
  for (let i = 0; i < ids.length; i++) for (let c = 0; c < C; c++) dw[ids[i]! * C + c] += g[i * C + c]!;
  return dw;
}

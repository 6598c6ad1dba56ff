// Normalisation, the softmax family and embedding lookup, with autograd, on the kernels of native/norm.cc:
// layerNorm, rmsNorm, softmax, logSoftmax, selectiveLogSoftmax (fused log p(target) per row),
// entropyFromLogits (no gradient), embedding and its inverse, scatterRows.
//
// Every op works on rows of the last dim and hands the kernels contiguous rows (a non-contiguous input is
// copied first; inside a forward that copy is itself on the tape). What the backward passes need beyond
// their inputs is kept as small per-row Float32Arrays (mean and rstd, log-sum-exp), never as a tensor of
// the input's size; softmax and logSoftmax keep their own output, as their gradients are functions of it.
import { native } from '../native.js';
import { Tensor, disposeAfterBackward, exclusive, isGradEnabled, record, shapeStr } from '../tensor.js';

export interface NormKernels {
  /** y = (x − mean)·rstd·w + b per row of C; writes mean[rows] and rstd[rows]. w, b may be null. */
  layerNormForward(
    x: Float32Array,
    xOff: number,
    w: Float32Array | null,
    wOff: number,
    b: Float32Array | null,
    bOff: number,
    y: Float32Array,
    yOff: number,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    C: number,
    eps: number,
  ): void;
  /** Overwrites dx [rows·C], dw [C] and db [C]; any of them may be null (not wanted). */
  layerNormBackward(
    dy: Float32Array,
    dyOff: number,
    x: Float32Array,
    xOff: number,
    w: Float32Array | null,
    wOff: number,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array | null,
    dxOff: number,
    dw: Float32Array | null,
    db: Float32Array | null,
    rows: number,
    C: number,
  ): void;
  /** y = (x·rstd)·w, rstd = 1/sqrt(mean(x²) + eps) per row (mean in double); writes rstd[rows]. */
  rmsNormForward(x: Float32Array, xOff: number, w: Float32Array | null, wOff: number, y: Float32Array, yOff: number, rstd: Float32Array, rows: number, C: number, eps: number): void;
  rmsNormBackward(
    dy: Float32Array,
    dyOff: number,
    x: Float32Array,
    xOff: number,
    w: Float32Array | null,
    wOff: number,
    rstd: Float32Array,
    dx: Float32Array | null,
    dxOff: number,
    dw: Float32Array | null,
    rows: number,
    C: number,
  ): void;
  /** Softmax (or log-softmax when log) of each row of C. */
  softmaxForward(x: Float32Array, xOff: number, out: Float32Array, outOff: number, rows: number, C: number, log: boolean): void;
  /** dx from the forward output y and dy. */
  softmaxBackward(y: Float32Array, yOff: number, dy: Float32Array, dyOff: number, dx: Float32Array, dxOff: number, rows: number, C: number, log: boolean): void;
  /** out[r] = log softmax(row r)[targets[r]] (0 when targets[r] < 0); lse[r] = log Σ exp(row r). */
  selectiveLogSoftmaxForward(logits: Float32Array, off: number, targets: Int32Array, out: Float32Array, lse: Float32Array, rows: number, V: number): void;
  /** dx = g·(onehot(target) − exp(logits − lse)) per row, zero rows where target < 0. */
  selectiveLogSoftmaxBackward(logits: Float32Array, off: number, targets: Int32Array, lse: Float32Array, g: Float32Array, gOff: number, dx: Float32Array, dxOff: number, rows: number, V: number): void;
  /** out[r] = entropy of softmax(row r). */
  entropyFromLogits(logits: Float32Array, off: number, out: Float32Array, rows: number, V: number): void;
  /** out = exp(x) with the kernels' float32 exp (accuracy tests). */
  expF32(x: Float32Array, out: Float32Array, n: number): void;
  /** out[i, :] = w[ids[i], :]. */
  embeddingForward(w: Float32Array, wOff: number, ids: Int32Array, out: Float32Array, outOff: number, n: number, V: number, C: number): void;
  /** dw[ids[i], :] += g[i, :] (dw accumulates). */
  embeddingBackward(g: Float32Array, gOff: number, ids: Int32Array, dw: Float32Array, dwOff: number, n: number, V: number, C: number): void;
}
export const normKernels = native as unknown as NormKernels;
const k = normKernels;

/** rows × C of a tensor whose last dim is C. */
function rowsOf(x: Tensor, op: string): { rows: number; C: number } {
  if (x.ndim < 1) throw new Error(`${op}: needs at least one dim, got ${x.describe()}`);
  const C = x.shape[x.ndim - 1]!;
  let rows = 1;
  for (let i = 0; i < x.ndim - 1; i++) rows *= x.shape[i]!;
  return { rows, C };
}

function checkVector(t: Tensor | null, C: number, op: string, what: string, x: Tensor): void {
  if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new Error(`${op}: ${what} ${shapeStr(t.shape)} does not match the last dim of x ${shapeStr(x.shape)} (expected [${C}])`);
}

function checkEps(eps: number, op: string): void {
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${op}: eps must be a finite number >= 0, got ${eps}`);
}

/** Disposes t unless it is `orig` (used for temporary contiguous copies). */
function drop(t: Tensor | null | undefined, orig: Tensor | null | undefined): void {
  if (t && t !== orig) t.dispose();
}

/**
 * Layer normalisation over the last dim C of x [..., C]: (x − mean)/sqrt(var + eps)·weight + bias, with the
 * biased variance (as torch.nn.LayerNorm). weight and bias are [C] or null. Saves per-row mean and rstd.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  const { rows, C } = rowsOf(x, op);
  checkVector(weight, C, op, 'weight', x);
  checkVector(bias, C, op, 'bias', x);
  checkEps(eps, op);
  const xc = x.contiguous();
  const wc = weight ? weight.contiguous() : null;
  const bc = bias ? bias.contiguous() : null;
  const out = Tensor.empty(x.shape);
  const mean = new Float32Array(rows),
    rstd = new Float32Array(rows);
  k.layerNormForward(xc.data, xc.offset, wc ? wc.data : null, wc ? wc.offset : 0, bc ? bc.data : null, bc ? bc.offset : 0, out.data, out.offset, mean, rstd, rows, C, eps);
  return record(
    out,
    [xc, wc, bc],
    (g) => {
      const gc = g.contiguous();
      const dx = xc.requiresGrad ? Tensor.empty(xc.shape) : null;
      const dw = wc?.requiresGrad ? Tensor.empty([C]) : null;
      const db = bc?.requiresGrad ? Tensor.empty([C]) : null;
      k.layerNormBackward(gc.data, gc.offset, xc.data, xc.offset, wc ? wc.data : null, wc ? wc.offset : 0, mean, rstd, dx ? dx.data : null, 0, dw ? dw.data : null, db ? db.data : null, rows, C);
      drop(gc, g);
      return [dx, dw, db];
    },
    op,
  );
}

/**
 * RMS normalisation as in Llama: x·rsqrt(mean(x²) + eps)·weight over the last dim (float32, with the mean
 * of squares accumulated in double). weight is [C] or null. Saves per-row rstd.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const op = 'rmsNorm';
  const { rows, C } = rowsOf(x, op);
  checkVector(weight, C, op, 'weight', x);
  checkEps(eps, op);
  const xc = x.contiguous();
  const wc = weight ? weight.contiguous() : null;
  const out = Tensor.empty(x.shape);
  const rstd = new Float32Array(rows);
  k.rmsNormForward(xc.data, xc.offset, wc ? wc.data : null, wc ? wc.offset : 0, out.data, out.offset, rstd, rows, C, eps);
  return record(
    out,
    [xc, wc],
    (g) => {
      const gc = g.contiguous();
      const dx = xc.requiresGrad ? Tensor.empty(xc.shape) : null;
      const dw = wc?.requiresGrad ? Tensor.empty([C]) : null;
      k.rmsNormBackward(gc.data, gc.offset, xc.data, xc.offset, wc ? wc.data : null, wc ? wc.offset : 0, rstd, dx ? dx.data : null, 0, dw ? dw.data : null, rows, C);
      drop(gc, g);
      return [dx, dw];
    },
    op,
  );
}

function normDim(x: Tensor, dim: number, op: string): number {
  const d = dim < 0 ? dim + x.ndim : dim;
  if (!Number.isInteger(dim) || d < 0 || d >= x.ndim) throw new Error(`${op}: dim ${dim} is out of range for ${x.describe()}`);
  return d;
}

function softmaxImpl(x: Tensor, dim: number, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  if (x.ndim < 1) throw new Error(`${op}: needs at least one dim, got ${x.describe()}`);
  const d = normDim(x, dim, op);
  const last = x.ndim - 1;
  // Other dims: move the dim last (a view), run the fast path (which copies to contiguous rows), move back.
  if (d !== last) return softmaxImpl(x.transpose(d, last), -1, log).transpose(d, last);
  const { rows, C } = rowsOf(x, op);
  const xc = x.contiguous();
  const out = Tensor.empty(x.shape);
  k.softmaxForward(xc.data, xc.offset, out.data, out.offset, rows, C, log);
  return record(
    out,
    [xc],
    (g) => {
      const gc = g.contiguous();
      const dx = Tensor.empty(xc.shape);
      k.softmaxBackward(out.data, out.offset, gc.data, gc.offset, dx.data, 0, rows, C, log);
      drop(gc, g);
      return [dx];
    },
    op,
  );
}

/** Softmax along dim (default the last; the last dim is the fast path, others go through a transpose). */
export function softmax(x: Tensor, dim = -1): Tensor {
  return softmaxImpl(x, dim, false);
}

/** Log-softmax along dim (x − logsumexp(x)), numerically stable for any finite logits. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return softmaxImpl(x, dim, true);
}

/**
 * log softmax(logits)[target] for each row of logits [..., V] → a tensor of shape logits.shape[:-1].
 * targets has one entry per row (N = product of the leading dims). A target < 0 (such as −100, the usual
 * ignore index) gives 0 and no gradient for its row; a target >= V is an error. Fused: only the per-row
 * log-sum-exp (N floats) is kept for the backward pass, which recomputes the softmax on the fly.
 * reuseLogits: the backward pass writes the logits' gradient into the logits' own memory and disposes `logits`
 * (so reading them after backward() fails loudly), when nothing else views that memory: for a caller that reads
 * the logits before backward only, it saves one [rows × V] buffer at the pass's peak.
 */
export function selectiveLogSoftmax(logits: Tensor, targets: Int32Array, opts: { reuseLogits?: boolean } = {}): Tensor {
  const op = 'selectiveLogSoftmax';
  const { rows, C: V } = rowsOf(logits, op);
  if (!(targets instanceof Int32Array)) throw new Error(`${op}: targets must be an Int32Array`);
  if (targets.length !== rows) throw new Error(`${op}: ${targets.length} targets for logits ${shapeStr(logits.shape)} (${rows} rows)`);
  const t = targets.slice(); // the caller may reuse its array before backward
  const lc = logits.contiguous();
  const out = Tensor.empty(logits.shape.slice(0, -1));
  const lse = new Float32Array(rows);
  k.selectiveLogSoftmaxForward(lc.data, lc.offset, t, out.data, lse, rows, V);
  return record(
    out,
    [lc],
    (g) => {
      const gc = g.contiguous();
      // in place only when lc is the caller's tensor and the sole holder of its whole storage
      const inPlace = opts.reuseLogits === true && lc === logits && exclusive(lc);
      const dx = inPlace ? new Tensor(lc.storage.retain(), lc.shape) : Tensor.empty(lc.shape);
      k.selectiveLogSoftmaxBackward(lc.data, lc.offset, t, lse, gc.data, gc.offset, dx.data, 0, rows, V);
      drop(gc, g);
      if (inPlace) disposeAfterBackward(logits);
      return [dx];
    },
    op,
  );
}

/**
 * Entropy −Σ p·log p of softmax(row) for each row of logits [..., V] → shape logits.shape[:-1].
 * It has no gradient: with grad enabled and logits requiring grad it throws rather than silently cutting the
 * tape; call it under noGrad() or on logits.detach() (as a metric, that is what is wanted).
 */
export function entropyFromLogits(logits: Tensor): Tensor {
  const op = 'entropyFromLogits';
  if (isGradEnabled() && logits.requiresGrad) throw new Error(`${op}: has no gradient; call it under noGrad() or on logits.detach() (got ${logits.describe()}, which requires grad)`);
  const { rows, C: V } = rowsOf(logits, op);
  const lc = logits.contiguous();
  const out = Tensor.empty(logits.shape.slice(0, -1));
  k.entropyFromLogits(lc.data, lc.offset, out.data, rows, V);
  drop(lc, logits);
  return out;
}

/**
 * Rows of weight [V, C] picked by ids → [...idsShape, C]. An id outside [0, V) is an error. The backward
 * pass scatter-adds into a dense dweight [V, C] (parallel over column blocks: no races, deterministic).
 */
export function embedding(weight: Tensor, ids: Int32Array, idsShape: readonly number[]): Tensor {
  const op = 'embedding';
  if (weight.ndim !== 2) throw new Error(`${op}: weight must be [V, C], got ${weight.describe()}`);
  if (!(ids instanceof Int32Array)) throw new Error(`${op}: ids must be an Int32Array`);
  let n = 1;
  for (const d of idsShape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid ids shape ${shapeStr(idsShape)}`);
    n *= d;
  }
  if (n !== ids.length) throw new Error(`${op}: ${ids.length} ids do not fill shape ${shapeStr(idsShape)}`);
  const V = weight.shape[0]!,
    C = weight.shape[1]!;
  const wc = weight.contiguous();
  const out = Tensor.empty([...idsShape, C]);
  k.embeddingForward(wc.data, wc.offset, ids, out.data, out.offset, n, V, C);
  if (!isGradEnabled() || !wc.requiresGrad) return out;
  const saved = ids.slice();
  return record(
    out,
    [wc],
    (g) => {
      const gc = g.contiguous();
      const dw = Tensor.zeros([V, C]);
      k.embeddingBackward(gc.data, gc.offset, saved, dw.data, 0, n, V, C);
      drop(gc, g);
      return [dw];
    },
    op,
  );
}

/**
 * Rows of x [R, C] (or [R]) placed at rows[r] of a zero tensor [n, C] (or [n]): the inverse of gathering them
 * with embedding(). rows must be distinct and in [0, n). The backward pass gathers the gradient's rows.
 */
export function scatterRows(x: Tensor, rows: Int32Array, n: number): Tensor {
  const op = 'scatterRows';
  if (!(rows instanceof Int32Array)) throw new Error(`${op}: rows must be an Int32Array`);
  if (x.ndim !== 1 && x.ndim !== 2) throw new Error(`${op}: x must be [R] or [R, C], got ${x.describe()}`);
  const R = x.shape[0]!,
    C = x.ndim === 2 ? x.shape[1]! : 1;
  if (rows.length !== R) throw new Error(`${op}: ${rows.length} rows for x ${shapeStr(x.shape)}`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${op}: invalid row count ${n}`);
  const seen = new Uint8Array(n);
  for (const r of rows) {
    if (!(r >= 0 && r < n)) throw new Error(`${op}: row ${r} is outside [0, ${n})`);
    if (seen[r]) throw new Error(`${op}: row ${r} appears twice`);
    seen[r] = 1;
  }
  const saved = rows.slice();
  const xc = x.contiguous();
  const out = Tensor.zeros(x.ndim === 2 ? [n, C] : [n]);
  k.embeddingBackward(xc.data, xc.offset, saved, out.data, 0, R, n, C); // adds into zeros: a plain placement
  return record(
    out,
    [xc],
    (g) => {
      const gc = g.contiguous();
      const dx = Tensor.empty(xc.shape);
      k.embeddingForward(gc.data, gc.offset, saved, dx.data, 0, R, n, C);
      drop(gc, g);
      return [dx];
    },
    op,
  );
}

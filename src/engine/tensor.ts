// Tensor: float32 data in native memory (an ArrayBuffer's backing store, outside the JS heap), a shape
// and strides, and the autograd tape that records how it was made.
//
// Memory is released deterministically: `dispose()` drops a reference to the storage, and the last one
// detaches the ArrayBuffer, which frees the memory at once (views of it become empty, so a stale view
// fails loudly instead of reading freed memory). `tidy(fn)` disposes everything made inside fn except
// what fn returns. Garbage collection remains the safety net for tensors nobody disposed.
import { totalmem } from 'node:os';
import { core } from './native.js';

export type Shape = readonly number[];

// ---- a caching allocator ------------------------------------------------------------------------
// Training repeats the same shapes every step. Fresh multi-megabyte buffers cost page faults on first touch
// (a 206 MB logits gradient: ~100 ms), so released buffers of at least POOL_MIN elements are kept and handed out
// again (the most recently released first: its pages are warm). Buffers come in size classes, 8 per octave: a
// request is served by a buffer of its class (at most 12.5% longer, seen through an exact-length view), so runs
// whose shapes vary from batch to batch (sequence lengths) still reuse memory instead of faulting in new pages.
// The cache is bounded relative to what the program itself uses, not to the machine: live storage plus the cache
// stay within 1.25× the peak of live tensor storage so far (the model, optimiser state and activations at their
// largest), the cache holding at least 64 MiB and at most a quarter of RAM or 8 GiB; ALIGNKIT_CACHE_MB sets a
// fixed cap instead (0 disables the cache). Past the cap the least recently released buffers are freed first,
// so lengths that stopped recurring (a run whose batch shapes vary) do not pin memory while current ones are
// reused; a fresh allocation that takes live storage past the budget evicts as well.
const POOL_MIN = 1 << 14;
const CACHE_FLOOR = 64 * 2 ** 20;
const REUSE_SLACK = 1.5; // a request may take a cached buffer up to this much longer
const CACHE_HEADROOM = 1.25; // live + cached <= this × the peak of live storage
const cacheLimit = Math.min(8 * 2 ** 30, totalmem() / 4);
const fixedCap = (() => {
  const env = process.env.ALIGNKIT_CACHE_MB;
  if (env === undefined || env === '') return null;
  const mb = Number(env);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`ALIGNKIT_CACHE_MB must be a number of MiB >= 0, got '${env}'`);
  return mb * 2 ** 20;
})();
const pool = new Map<number, Float32Array[]>();
/** the whole class-sized buffer behind an exact-length view handed out by allocate() */
const parents = new WeakMap<Float32Array, Float32Array>();

/** The size class of a request of n elements (n >= POOL_MIN): n rounded up to 8 steps per power of two. */
export function sizeClass(n: number): number {
  if (n < POOL_MIN) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

function view(full: Float32Array, n: number): Float32Array {
  if (full.length === n) return full;
  const v = full.subarray(0, n);
  parents.set(v, full);
  return v;
}
/** cached buffers in release order (oldest first), for eviction */
const lru = new Set<Float32Array>();
let pooledBytes = 0;
let liveBytes = 0;
let peakLiveBytes = 0;
let freshBytes = 0; // bytes of buffers of at least POOL_MIN elements allocated anew (not served by the cache)
let reusedBytes = 0; // and served by the cache

/** The cache's cap, once `extra` more bytes have become live. */
function cacheCap(extra = 0): number {
  if (fixedCap !== null) return fixedCap;
  const live = liveBytes + extra,
    peak = Math.max(peakLiveBytes, live);
  return Math.min(cacheLimit, Math.max(CACHE_FLOOR, CACHE_HEADROOM * peak - live));
}

function allocate(n: number, zero: boolean): Float32Array {
  if (n < POOL_MIN) return new Float32Array(n);
  const cls = sizeClass(n);
  let a: Float32Array | undefined;
  // the request's class, else the next larger ones up to REUSE_SLACK× the request
  for (let c = cls; c <= n * REUSE_SLACK && !a; c = sizeClass(c + 1)) a = pool.get(c)?.pop();
  if (a) {
    lru.delete(a);
    pooledBytes -= a.length * 4;
    reusedBytes += a.length * 4;
    const v = view(a, n);
    if (zero) core.fill(v, 0, n, 0);
    return v;
  }
  if (pooledBytes > 0) {
    const cap = cacheCap(cls * 4); // the new buffer becomes live storage as soon as it is wrapped
    if (pooledBytes > cap) evict(cap);
  }
  freshBytes += cls * 4;
  return view(new Float32Array(cls), n);
}

function recycle(data: Float32Array): void {
  const a = parents.get(data) ?? data;
  const bytes = a.length * 4;
  if (a.length < POOL_MIN || sizeClass(a.length) !== a.length || bytes > cacheCap()) {
    core.release(a);
    return;
  }
  let list = pool.get(a.length);
  if (!list) pool.set(a.length, (list = []));
  list.push(a);
  lru.add(a);
  pooledBytes += bytes;
  const cap = cacheCap();
  if (pooledBytes > cap) evict(cap);
}

/** Frees the least recently released buffers until the cache holds at most `cap` bytes. */
function evict(cap: number): void {
  for (const old of lru) {
    if (pooledBytes <= cap) break;
    lru.delete(old);
    const list = pool.get(old.length)!;
    list.splice(list.indexOf(old), 1);
    if (list.length === 0) pool.delete(old.length);
    pooledBytes -= old.length * 4;
    core.release(old);
  }
}

/** Storage for n floats from the cache (zeroed when asked), for ops that build custom-strided outputs. */
export function allocStorage(n: number, zero = false): Storage {
  return new Storage(allocate(n, zero));
}

/** Frees every cached buffer now; returns the bytes freed. */
export function emptyCache(): number {
  const freed = pooledBytes;
  for (const list of pool.values()) for (const a of list) core.release(a);
  pool.clear();
  lru.clear();
  pooledBytes = 0;
  return freed;
}

/** Bytes held by the allocator's cache. */
export function cachedBytes(): number {
  return pooledBytes;
}

export interface MemoryStats {
  /** bytes of tensor storage in use now (buffers of at least 64 KiB; released or collected storage excluded) */
  liveBytes: number;
  /** the most liveBytes has been */
  peakLiveBytes: number;
  /** bytes held by the cache of released buffers, and its current cap */
  cachedBytes: number;
  cacheCapBytes: number;
  /** bytes of large buffers allocated anew, and handed out again from the cache, since the start */
  freshBytes: number;
  reusedBytes: number;
}

export function memoryStats(): MemoryStats {
  return { liveBytes, peakLiveBytes, cachedBytes: pooledBytes, cacheCapBytes: cacheCap(), freshBytes, reusedBytes };
}

/** Restarts the peak of live storage from the current level (e.g. between the stages of a pipeline). */
export function resetPeakMemory(): void {
  peakLiveBytes = liveBytes;
  const cap = cacheCap();
  if (pooledBytes > cap) evict(cap);
}

/** Reference-counted storage shared by a tensor and its views. */
// Storage that is garbage-collected without being released (a tensor nobody disposed) leaves the live count.
const collected = new FinalizationRegistry<number>((bytes) => {
  liveBytes -= bytes;
});

export class Storage {
  refs = 1;
  private readonly bytes: number;
  constructor(public data: Float32Array) {
    // buffers below the cache's minimum are not counted (nor tracked for collection: they are many and small)
    const full = parents.get(data) ?? data;
    this.bytes = full.length >= POOL_MIN ? full.byteLength : 0;
    if (this.bytes) {
      liveBytes += this.bytes;
      if (liveBytes > peakLiveBytes) peakLiveBytes = liveBytes;
      collected.register(this, this.bytes, this);
    }
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) {
      if (this.bytes) {
        liveBytes -= this.bytes;
        collected.unregister(this);
      }
      recycle(this.data);
    }
  }
  get released(): boolean {
    return this.refs <= 0;
  }
}

/** What the tape keeps for one op: its inputs and how to map the output's gradient to theirs. */
export interface GradNode {
  name: string;
  inputs: readonly (Tensor | null)[];
  backward: (grad: Tensor) => readonly (Tensor | null | undefined)[];
}

let gradEnabled = true;
let liveCount = 0;
/** counts backward() calls, so per-pass state (split's shared buffer) is never reused across passes */
let backwardPass = 0;
const scopes: Set<Tensor>[] = [];

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the tape (reference models, generation, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Number of tensors created and not yet disposed (for leak tests). */
export function liveTensors(): number {
  return liveCount;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) collectTensors(x, out, depth + 1);
    return;
  }
  if (v instanceof Map) {
    for (const x of v.values()) collectTensors(x, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, depth + 1);
}

/**
 * Runs fn and disposes every tensor created inside it, except the tensors it returns (directly, in an
 * array, a Map or a plain object) and tensors passed to keep(). Returned tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Takes t out of every enclosing tidy scope: it lives until disposed explicitly. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Strides that let a tensor of (shape, strides) be viewed as newShape without copying, or null when the
 * memory layout does not allow it (the rule torch.view uses: only split or merge dims that are laid out
 * contiguously with respect to each other).
 */
function strideForView(shape: Shape, strides: Shape, newShape: Shape): number[] | null {
  const out = new Array<number>(newShape.length);
  let viewD = newShape.length - 1;
  let chunkBase = strides[strides.length - 1] ?? 1;
  let tensorNumel = 1,
    viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] === 1)) {
        out[viewD] = viewNumel * chunkBase;
        viewNumel *= newShape[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return out;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeStr(s: Shape): string {
  return `[${s.join(', ')}]`;
}

export class Tensor {
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly storage: Storage;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  name?: string;
  private disposed = false;

  constructor(storage: Storage, shape: Shape, strides?: Shape, offset = 0) {
    this.storage = storage;
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    liveCount++;
    scopes[scopes.length - 1]?.add(this);
  }

  // ---- creation -------------------------------------------------------------------------------

  /** A new tensor; its contents are zero. */
  static zeros(shape: Shape): Tensor {
    return new Tensor(new Storage(allocate(sizeOf(shape), true)), shape);
  }
  /** A new tensor whose contents are undefined: for outputs a kernel overwrites completely. */
  static empty(shape: Shape): Tensor {
    return new Tensor(new Storage(allocate(sizeOf(shape), false)), shape);
  }
  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.zeros(shape);
    if (value !== 0) core.fill(t.data, 0, t.size, value);
    return t;
  }
  static ones(shape: Shape): Tensor {
    return Tensor.full(shape, 1);
  }
  static scalar(v: number): Tensor {
    return Tensor.full([], v);
  }
  /** Copies values (any numeric array) into a new tensor of the given shape. */
  static from(values: ArrayLike<number>, shape?: Shape): Tensor {
    const sh = shape ?? [values.length];
    if (sizeOf(sh) !== values.length) throw new Error(`Tensor.from: ${values.length} values do not fill shape ${shapeStr(sh)}`);
    const data = new Float32Array(values.length);
    data.set(values);
    return new Tensor(new Storage(data), sh);
  }
  /**
   * A tensor over `data` itself when the array spans its whole buffer (no copy: loading a checkpoint then
   * needs no second copy of the weights), else over a copy.
   */
  static adopt(data: Float32Array, shape?: Shape): Tensor {
    const sh = shape ?? [data.length];
    if (sizeOf(sh) !== data.length) throw new Error(`Tensor.adopt: ${data.length} values do not fill shape ${shapeStr(sh)}`);
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) return Tensor.from(data, sh);
    return new Tensor(new Storage(data), sh);
  }
  /** A trainable leaf: requiresGrad, and outside every tidy scope. */
  static param(t: Tensor, name?: string): Tensor {
    keep(t);
    t.requiresGrad = true;
    if (name !== undefined) t.name = name;
    return t;
  }

  // ---- properties -----------------------------------------------------------------------------

  get data(): Float32Array {
    if (this.disposed || this.storage.released) throw new Error(`tensor ${this.describe()} was disposed`);
    return this.storage.data;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.disposed || this.storage.released;
  }
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i]!;
    }
    return true;
  }
  describe(): string {
    return `${this.name ?? 'tensor'}${shapeStr(this.shape)}`;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs one element, ${this.describe()} has ${this.size}`);
    return this.data[this.offset]!;
  }
  /** A fresh Float32Array with the tensor's values in row-major order. */
  toArray(): Float32Array {
    const c = this.isContiguous ? this : this.copyContiguous();
    const out = c.data.slice(c.offset, c.offset + c.size);
    if (c !== this) c.dispose();
    return out;
  }
  /** Nested JS arrays, for printing and small tests. */
  toList(): unknown {
    const flat = Array.from(this.toArray());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return flat[off];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  // ---- lifetime -------------------------------------------------------------------------------

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    liveCount--;
    for (const s of scopes) s.delete(this);
    this.storage.release();
    this.node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A view of the same data with no tape history. */
  detach(): Tensor {
    return new Tensor(this.storage.retain(), this.shape, this.strides, this.offset);
  }

  /** A contiguous copy with no tape history. */
  clone(): Tensor {
    return this.copyContiguous();
  }

  private copyContiguous(): Tensor {
    const out = Tensor.empty(this.shape);
    core.copyStrided(this.data, this.offset, this.shape, this.strides, out.data, 0);
    return out;
  }

  /** Writes src's values into this tensor's view (no tape). Shapes must match. */
  copyFrom(src: Tensor): void {
    if (!sameShape(src.shape, this.shape)) throw new Error(`copyFrom: ${src.describe()} into ${this.describe()}`);
    core.copyStrided(src.data, src.offset, src.shape, src.strides, this.data, this.offset, this.strides);
  }

  // ---- views (recorded on the tape) -----------------------------------------------------------

  /** The same values laid out contiguously; returns this when already contiguous. */
  contiguous(): Tensor {
    if (this.isContiguous) return this;
    const out = this.copyContiguous();
    return record(out, [this], (g) => [g], 'contiguous');
  }

  /** The same elements in a new shape: a view when the strides allow it (as torch.view), else a copy. */
  reshape(shape: Shape): Tensor {
    const sh = [...shape];
    const infer = sh.indexOf(-1);
    if (infer >= 0) {
      const rest = sh.reduce((a, d, i) => (i === infer ? a : a * d), 1);
      sh[infer] = rest === 0 ? 0 : this.size / rest;
    }
    if (sizeOf(sh) !== this.size) throw new Error(`reshape: ${this.describe()} cannot become ${shapeStr(shape)}`);
    const viewStrides = this.isContiguous ? contiguousStrides(sh) : strideForView(this.shape, this.strides, sh);
    const src = viewStrides ? this : this.contiguous();
    const out = new Tensor(src.storage.retain(), sh, viewStrides ?? contiguousStrides(sh), src.offset);
    const inShape = this.shape;
    return record(out, [src], (g) => [g.reshape(inShape)], 'reshape');
  }

  /** Swaps two dimensions (a view). */
  transpose(d0: number, d1: number): Tensor {
    const n = this.ndim;
    const a = d0 < 0 ? d0 + n : d0,
      b = d1 < 0 ? d1 + n : d1;
    if (a < 0 || a >= n || b < 0 || b >= n) throw new Error(`transpose(${d0}, ${d1}) on ${this.describe()}`);
    const shape = [...this.shape],
      strides = [...this.strides];
    [shape[a], shape[b]] = [shape[b]!, shape[a]!];
    [strides[a], strides[b]] = [strides[b]!, strides[a]!];
    const out = new Tensor(this.storage.retain(), shape, strides, this.offset);
    return record(out, [this], (g) => [g.transpose(a, b)], 'transpose');
  }

  permute(order: readonly number[]): Tensor {
    if (order.length !== this.ndim || new Set(order).size !== order.length || order.some((d) => d < 0 || d >= this.ndim)) throw new Error(`permute(${order.join(', ')}) on ${this.describe()}`);
    const out = new Tensor(
      this.storage.retain(),
      order.map((d) => this.shape[d]!),
      order.map((d) => this.strides[d]!),
      this.offset,
    );
    const inverse = new Array<number>(order.length);
    order.forEach((d, i) => (inverse[d] = i));
    return record(out, [this], (g) => [g.permute(inverse)], 'permute');
  }

  /** Elements start..end-1 along dim (a view). */
  slice(dim: number, start: number, end: number): Tensor {
    const d = dim < 0 ? dim + this.ndim : dim;
    const len = this.shape[d];
    if (len === undefined || start < 0 || end > len || start > end) throw new Error(`slice(${dim}, ${start}, ${end}) on ${this.describe()}`);
    const shape = [...this.shape];
    shape[d] = end - start;
    const out = new Tensor(this.storage.retain(), shape, this.strides, this.offset + start * this.strides[d]!);
    const inShape = this.shape;
    return record(
      out,
      [this],
      (g) => {
        const full = Tensor.zeros(inShape);
        const view = new Tensor(full.storage.retain(), shape, full.strides, start * full.strides[d]!);
        view.copyFrom(g);
        view.dispose();
        return [full];
      },
      'slice',
    );
  }

  /**
   * Consecutive views along dim with the given sizes (summing to the dim's length). Their gradients are
   * written into one shared buffer, so splitting (e.g. a fused qkv projection) costs no extra sums.
   */
  split(dim: number, sizes: readonly number[]): Tensor[] {
    const d = dim < 0 ? dim + this.ndim : dim;
    if (d < 0 || d >= this.ndim || sizes.reduce((a, b) => a + b, 0) !== this.shape[d]) throw new Error(`split(${dim}, [${sizes.join(', ')}]) on ${this.describe()}`);
    const inShape = this.shape;
    let shared: Tensor | null = null;
    let sharedPass = -1;
    let start = 0;
    return sizes.map((len) => {
      const from = start;
      start += len;
      const shape = [...this.shape];
      shape[d] = len;
      const out = new Tensor(this.storage.retain(), shape, this.strides, this.offset + from * this.strides[d]!);
      return record(
        out,
        [this],
        (g) => {
          const first = shared === null || sharedPass !== backwardPass;
          if (first) {
            shared = Tensor.zeros(inShape);
            sharedPass = backwardPass;
          }
          const view = new Tensor(shared!.storage.retain(), shape, shared!.strides, from * shared!.strides[d]!);
          view.copyFrom(g);
          view.dispose();
          // only the first part hands the buffer to autograd; the others fill it in place before it is used
          return [first ? shared : null];
        },
        'split',
      );
    });
  }

  // ---- autograd -------------------------------------------------------------------------------

  /**
   * Backpropagates from this tensor (a scalar unless `grad` is given) and adds the gradients of every
   * leaf with requiresGrad into its `.grad` (accumulating across calls, as PyTorch does).
   */
  backward(grad?: Tensor): void {
    if (!this.requiresGrad) throw new Error(`backward() on ${this.describe()}, which does not require grad`);
    if (!grad && this.size !== 1) throw new Error(`backward() without a gradient needs a scalar, got ${this.describe()}`);
    // Topological order, iteratively (models are deep).
    const order: Tensor[] = [];
    const seen = new Set<Tensor>();
    const stack: [Tensor, boolean][] = [[this, false]];
    while (stack.length) {
      const [t, done] = stack.pop()!;
      if (done) {
        order.push(t);
        continue;
      }
      if (seen.has(t)) continue;
      seen.add(t);
      stack.push([t, true]);
      for (const i of t.node?.inputs ?? []) if (i && i.requiresGrad && !seen.has(i)) stack.push([i, false]);
    }
    backwardPass++;
    // Tensors made during the pass are collected here (then handed to the enclosing tidy); a gradient made here
    // is released as soon as no pending entry refers to it, so the pass holds the gradients of the nodes still
    // to run rather than every node's until the tidy ends. Views keep their storage alive by reference, so a
    // released gradient whose view was passed on keeps its memory until the view goes.
    const made = new Set<Tensor>();
    scopes.push(made);
    const grads = new Map<Tensor, Tensor>();
    const refs = new Map<Tensor, number>(); // pending entries of grads that hold each gradient
    const hold = (inp: Tensor, gt: Tensor) => {
      grads.set(inp, gt);
      refs.set(gt, (refs.get(gt) ?? 0) + 1);
    };
    const drop = (gt: Tensor) => {
      const n = (refs.get(gt) ?? 0) - 1;
      if (n > 0) return void refs.set(gt, n);
      refs.delete(gt);
      if (made.delete(gt)) gt.dispose();
    };
    // Gradients this pass may add into in place: made here, or returned fresh by one backward closure
    // (not returned twice, sharing storage with nothing), held by exactly one entry.
    const owned = new Set<Tensor>();
    const prevEnabled = gradEnabled;
    gradEnabled = false; // gradients are not themselves differentiated
    try {
      hold(this, grad ?? Tensor.ones(this.shape));
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k]!;
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        // Ownership of g moves with it: to the one input it is passed through to unchanged, else it ends here.
        const gOwned = owned.delete(g);
        if (!t.node) {
          accumulateLeaf(t, g, gOwned); // an adopted g is kept (out of every scope), so drop leaves it alone
          drop(g);
          continue;
        }
        const gs = t.node.backward(g);
        const inputs = t.node.inputs;
        for (let i = 0; i < inputs.length; i++) {
          const inp = inputs[i];
          const gi = gs[i];
          if (!inp || !inp.requiresGrad || !gi) continue;
          if (!sameShape(gi.shape, inp.shape)) throw new Error(`autograd: ${t.node.name} gave a gradient ${gi.describe()} for input ${inp.describe()}`);
          const unique = gs.indexOf(gi) === i && gs.lastIndexOf(gi) === i;
          const fresh = unique && (gi === g ? gOwned : exclusive(gi));
          const prev = grads.get(inp);
          if (!prev) {
            hold(inp, gi);
            if (fresh) owned.add(gi);
          } else if (owned.has(prev)) {
            addInPlace(prev, gi);
          } else if (fresh) {
            addInPlace(gi, prev);
            owned.add(gi);
            hold(inp, gi);
            drop(prev);
          } else {
            const sum = prev.clone();
            addInPlace(sum, gi);
            owned.add(sum);
            hold(inp, sum);
            drop(prev);
          }
        }
        // gradients the closure made that no entry took (added into another), and g itself
        for (const gi of gs) if (gi && gi !== g && !refs.has(gi) && made.delete(gi)) gi.dispose();
        drop(g);
      }
    } finally {
      gradEnabled = prevEnabled;
      for (const t of afterPass.splice(0)) t.dispose();
      scopes.pop();
      const parent = scopes[scopes.length - 1];
      if (parent) for (const m of made) if (!m.disposed) parent.add(m);
    }
  }

  /** Clears .grad (disposing it). */
  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }
}

/** A contiguous tensor that is the only user of its whole storage. */
export function exclusive(t: Tensor): boolean {
  return t.storage.refs === 1 && t.offset === 0 && t.isContiguous && t.size === t.storage.data.length;
}

/** dst += src (dst contiguous). */
function addInPlace(dst: Tensor, src: Tensor): void {
  const sc = src.isContiguous ? src : src.clone();
  core.axpy(dst.data, dst.offset, sc.data, sc.offset, dst.size, 1);
  if (sc !== src) sc.dispose();
}

/** Adds a finished gradient into a leaf's .grad, taking the tensor itself when this pass owns it. */
function accumulateLeaf(t: Tensor, g: Tensor, owned: boolean): void {
  if (t.grad) addInPlace(t.grad, g);
  else t.grad = keep(owned ? g : g.clone());
}

/** Tensors a backward closure asked to dispose once the pass is over (disposing during it would cut the tape). */
const afterPass: Tensor[] = [];

/** From inside a backward closure: dispose t when the current backward pass ends. */
export function disposeAfterBackward(t: Tensor): void {
  afterPass.push(t);
}

/**
 * Records `out` as made from `inputs` by an op whose gradient map is `backward`. Does nothing when
 * grad is disabled or no input requires grad. `backward` gets the gradient of out (same shape) and
 * returns one gradient (or null) per input, each of that input's shape.
 */
export function record(out: Tensor, inputs: readonly (Tensor | null | undefined)[], backward: (grad: Tensor) => readonly (Tensor | null | undefined)[], name: string): Tensor {
  if (!gradEnabled) return out;
  if (!inputs.some((t) => t?.requiresGrad)) return out;
  out.requiresGrad = true;
  out.node = { name, inputs: inputs.map((t) => t ?? null), backward };
  return out;
}

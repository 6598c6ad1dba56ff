// safetensors files: a validating reader that reads the header once and then each tensor's own byte range (no
// whole-file buffer), conversions to float32 / int32, and an atomic writer that lays files out as the reference
// implementation does (tensors sorted by dtype alignment then name, header JSON padded with spaces to 8 bytes).
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {string: string}?, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// then the data buffer; offsets are relative to the buffer's start, little-endian, row-major.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from './half.js';

/** Element types this module reads and writes. */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array holding each dtype's raw elements. F16/BF16 are raw 16-bit patterns; BOOL is 0/1 bytes. */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type RawArray = DtypeArrays[Dtype];

/** One tensor as stored: dtype, shape and the raw elements in that dtype (row-major). */
export interface TensorEntry<D extends Dtype = Dtype> {
  dtype: D;
  shape: number[];
  data: DtypeArrays[D];
}

/** A whole file in memory. */
interface SafetensorsContent {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

interface DtypeSpec {
  size: number;
  /** Position in the reference implementation's dtype order (ascending alignment); files are written descending. */
  rank: number;
  make(buf: ArrayBuffer, byteOffset: number, n: number): RawArray;
}

const DTYPES: Record<Dtype, DtypeSpec> = {
  BOOL: { size: 1, rank: 0, make: (b, o, n) => new Uint8Array(b, o, n) },
  U8: { size: 1, rank: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  I8: { size: 1, rank: 2, make: (b, o, n) => new Int8Array(b, o, n) },
  I16: { size: 2, rank: 5, make: (b, o, n) => new Int16Array(b, o, n) },
  F16: { size: 2, rank: 7, make: (b, o, n) => new Uint16Array(b, o, n) },
  BF16: { size: 2, rank: 8, make: (b, o, n) => new Uint16Array(b, o, n) },
  I32: { size: 4, rank: 9, make: (b, o, n) => new Int32Array(b, o, n) },
  F32: { size: 4, rank: 11, make: (b, o, n) => new Float32Array(b, o, n) },
  F64: { size: 8, rank: 12, make: (b, o, n) => new Float64Array(b, o, n) },
  I64: { size: 8, rank: 13, make: (b, o, n) => new BigInt64Array(b, o, n) },
};

/** Dtypes the format defines that this module does not handle (named in errors). */
const KNOWN_UNSUPPORTED = ['U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64'];

const SUPPORTED_DTYPES = Object.keys(DTYPES) as Dtype[];

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

/** Bytes per element. */
export function dtypeSize(d: Dtype): number {
  return DTYPES[d].size;
}

/** The product of a shape (1 for a scalar's []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Raw bytes converted per step by SafetensorsReader.readFloat32. */
const SCRATCH_BYTES = 4 << 20;

/** The maximum header the reference implementation accepts (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');
}

class FormatError extends Error {
  constructor(file: string, msg: string) {
    super(`safetensors ${file}: ${msg}`);
    this.name = 'SafetensorsFormatError';
  }
}

/** Where one tensor lives in a file. */
interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offset in the file. */
  start: number;
  byteLength: number;
}

/** Reads a whole range of a file into `dst` (loops: readSync may return short counts, and caps one call at 2 GiB). */
function readFully(fd: number, dst: Uint8Array, position: number, file: string): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < dst.length) {
    const want = Math.min(CHUNK, dst.length - done);
    const got = readSync(fd, dst, done, want, position + done);
    if (got <= 0) throw new FormatError(file, `unexpected end of file at byte ${position + done}`);
    done += got;
  }
}

/**
 * An open safetensors file: the header is parsed and validated on open; tensors are read on demand, each from
 * its own byte range, so a caller can convert and drop them one at a time. Call close() when done.
 */
export class SafetensorsReader {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Tensors in the header's key order. */
  readonly infos: Map<string, TensorInfo>;
  private fd: number | null;

  private constructor(path: string, fd: number, metadata: Record<string, string>, infos: Map<string, TensorInfo>) {
    this.path = path;
    this.fd = fd;
    this.metadata = metadata;
    this.infos = infos;
  }

  static open(path: string): SafetensorsReader {
    assertLittleEndian();
    const fd = openSync(path, 'r');
    try {
      const { metadata, infos } = parseHeader(fd, path);
      return new SafetensorsReader(path, fd, metadata, infos);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const i = this.infos.get(name);
    if (!i) throw new Error(`safetensors ${this.path}: no tensor named "${name}"`);
    return i;
  }

  private handle(): number {
    if (this.fd === null) throw new Error(`safetensors ${this.path}: the reader is closed`);
    return this.fd;
  }

  /** One tensor in its own dtype, in a freshly allocated (aligned) array. */
  read(name: string): TensorEntry {
    const i = this.info(name);
    const spec = DTYPES[i.dtype];
    const buf = new ArrayBuffer(i.byteLength);
    readFully(this.handle(), new Uint8Array(buf), i.start, this.path);
    return { dtype: i.dtype, shape: i.shape.slice(), data: spec.make(buf, 0, i.byteLength / spec.size) } as TensorEntry;
  }

  /**
   * One tensor upcast to float32. F32 data is read straight into the result; other dtypes are read and converted
   * in chunks of at most 4 MiB through `scratch` (allocated when missing or too small, and returned in `.scratch`
   * for reuse), so loading a checkpoint holds the float32 results plus one bounded buffer.
   */
  readFloat32(name: string, scratch?: Uint8Array): { shape: number[]; data: Float32Array; scratch?: Uint8Array } {
    const i = this.info(name);
    const spec = DTYPES[i.dtype];
    const n = i.byteLength / spec.size;
    const data = new Float32Array(n);
    if (i.dtype === 'F32') {
      readFully(this.handle(), new Uint8Array(data.buffer), i.start, this.path);
      return { shape: i.shape.slice(), data, scratch };
    }
    const chunk = Math.floor(SCRATCH_BYTES / spec.size);
    const need = Math.min(n, chunk) * spec.size;
    // scratch must start 8-byte aligned for the typed views below
    if (!scratch || scratch.byteLength < need || scratch.byteOffset % 8 !== 0) scratch = new Uint8Array(new ArrayBuffer(Math.max(need, 8)));
    for (let e0 = 0; e0 < n; e0 += chunk) {
      const m = Math.min(chunk, n - e0);
      const raw = scratch.subarray(0, m * spec.size);
      readFully(this.handle(), raw, i.start + e0 * spec.size, this.path);
      convertIntoFloat32(i.dtype, spec.make(raw.buffer as ArrayBuffer, raw.byteOffset, m), data.subarray(e0, e0 + m));
    }
    return { shape: i.shape.slice(), data, scratch };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseHeader(fd: number, file: string): { metadata: Record<string, string>; infos: Map<string, TensorInfo> } {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new FormatError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, file);
  const n64 = lenBuf.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(file, `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupt)`);
  }
  const n = Number(n64);
  if (n < 2) throw new FormatError(file, `header length ${n} is too small for a JSON object`);
  if (8 + n > fileSize) throw new FormatError(file, `header length ${n} runs past the end of the ${fileSize}-byte file (truncated?)`);
  const headerBytes = Buffer.alloc(n);
  readFully(fd, headerBytes, 8, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(file, 'header is not valid UTF-8');
  }
  if (text[0] !== '{') throw new FormatError(file, `header does not start with "{" (got ${JSON.stringify(text.slice(0, 16))})`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new FormatError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const infos = new Map<string, TensorInfo>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(v, file);
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError(file, `${where}: entry is not an object`);
    const e = v as Record<string, unknown>;
    for (const k of ['dtype', 'shape', 'data_offsets']) {
      if (!(k in e)) throw new FormatError(file, `${where}: missing field "${k}"`);
    }
    if (typeof e.dtype !== 'string') throw new FormatError(file, `${where}: field "dtype" is not a string`);
    if (!isDtype(e.dtype)) {
      const known = KNOWN_UNSUPPORTED.includes(e.dtype) ? 'unsupported' : 'unknown';
      throw new FormatError(file, `${where}: ${known} dtype "${e.dtype}" (supported: ${SUPPORTED_DTYPES.join(', ')})`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
      throw new FormatError(file, `${where}: field "shape" must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isNonNegInt(off[0]) || !isNonNegInt(off[1]) || off[1] < off[0]) {
      throw new FormatError(file, `${where}: field "data_offsets" must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    const shape = e.shape as number[];
    const want = numel(shape) * DTYPES[e.dtype].size;
    if (!Number.isSafeInteger(want)) throw new FormatError(file, `${where}: shape ${JSON.stringify(shape)} is too large`);
    if (end - begin !== want) {
      throw new FormatError(file, `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${JSON.stringify(shape)} × ${e.dtype} (${DTYPES[e.dtype].size} bytes) needs ${want}`);
    }
    if (end > dataSize) {
      throw new FormatError(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the ${dataSize}-byte data buffer (truncated file?)`);
    }
    infos.set(name, { dtype: e.dtype, shape, start: dataStart + begin, byteLength: want });
    spans.push({ name, begin, end });
  }
  // The reference reader requires the tensors to tile the data buffer exactly: no overlap, no hole, no tail.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const s of spans) {
    if (s.begin < pos) throw new FormatError(file, `tensor "${s.name}": data_offsets [${s.begin}, ${s.end}] overlap tensor "${prev}" (which ends at ${pos})`);
    if (s.begin > pos) throw new FormatError(file, `tensor "${s.name}": data_offsets start at ${s.begin}, leaving a hole after byte ${pos}`);
    pos = s.end;
    prev = s.name;
  }
  if (pos !== dataSize) {
    throw new FormatError(file, `the tensors cover ${pos} bytes of the ${dataSize}-byte data buffer (${dataSize - pos} trailing bytes)`);
  }
  return { metadata, infos };
}

function parseMetadata(v: unknown, file: string): Record<string, string> {
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(file, '"__metadata__" must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
    if (typeof s !== 'string') throw new FormatError(file, `"__metadata__" field "${k}" must be a string, got ${JSON.stringify(s)}`);
    out[k] = s;
  }
  return out;
}

/** Reads a whole file: every tensor in its own dtype (header key order) and the `__metadata__` map. */
export function readSafetensors(path: string): SafetensorsContent {
  const r = SafetensorsReader.open(path);
  try {
    const tensors = new Map<string, TensorEntry>();
    for (const name of r.infos.keys()) tensors.set(name, r.read(name));
    return { tensors, metadata: { ...r.metadata } };
  } finally {
    r.close();
  }
}

/**
 * Any entry as float32 (a new array, also for F32). Exact for F16/BF16 (incl. subnormals, ±inf, NaN), for
 * integers of magnitude <= 2^24 and for BOOL/U8/I8/I16; F64 and larger integers round to nearest float32
 * (I64 beyond 2^53 may round twice).
 */
export function toFloat32(entry: TensorEntry, name = 'tensor'): Float32Array {
  if (!isDtype(entry.dtype)) throw new Error(`toFloat32 ${name}: unsupported dtype ${JSON.stringify(entry.dtype)}`);
  const out = new Float32Array(entry.data.length);
  convertIntoFloat32(entry.dtype, entry.data, out);
  return out;
}

/** Raw elements of `dtype` → float32 into `dst` (same length). F32 is copied bit for bit (NaN payloads kept). */
function convertIntoFloat32(dtype: Dtype, data: RawArray, dst: Float32Array): void {
  switch (dtype) {
    case 'F16':
      f16ArrayToF32(data as Uint16Array, dst);
      return;
    case 'BF16':
      bf16ArrayToF32(data as Uint16Array, dst);
      return;
    case 'F32':
      dst.set(data as Float32Array);
      return;
    case 'I64': {
      // from the two 32-bit halves: exact below 2^53, no BigInt per element
      const w = new Int32Array(data.buffer, data.byteOffset, data.length * 2);
      for (let i = 0; i < dst.length; i++) dst[i] = w[2 * i + 1]! * 4294967296 + (w[2 * i]! >>> 0);
      return;
    }
    default: {
      const d = data as Exclude<RawArray, BigInt64Array>;
      for (let i = 0; i < dst.length; i++) dst[i] = d[i]!;
    }
  }
}

/**
 * Integer entries (I64, I32, I16, I8, U8, BOOL) as Int32Array, e.g. token ids. I64 values outside the int32
 * range are an error naming the tensor and the element.
 */
export function toInt32(entry: TensorEntry, name = 'tensor'): Int32Array {
  const { dtype, data } = entry;
  if (dtype === 'I64') {
    const d = data as BigInt64Array;
    const w = new Int32Array(d.buffer, d.byteOffset, d.length * 2);
    const out = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      const lo = w[2 * i]!;
      if (w[2 * i + 1] !== lo >> 31) throw new Error(`toInt32 ${name}: element ${i} (${d[i]}) is outside the int32 range`);
      out[i] = lo;
    }
    return out;
  }
  if (dtype === 'I32') return Int32Array.from(data as Int32Array);
  if (dtype === 'I16' || dtype === 'I8' || dtype === 'U8' || dtype === 'BOOL') return Int32Array.from(data as ArrayLike<number>);
  throw new Error(`toInt32 ${name}: dtype ${dtype} is not an integer type`);
}

/**
 * What writeSafetensors accepts per tensor: the dtype's own array, or for convenience a Float32Array for any
 * float dtype (F16/BF16 rounded to nearest even, F64 widened) and an Int32Array for I64 (widened). Conversion
 * happens one tensor at a time while writing, so a float32 state dict can be saved as BF16 without a second copy.
 */
export interface WritableEntry {
  dtype: Dtype;
  shape: readonly number[];
  data: RawArray | Float32Array | Int32Array;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const EXPECTED_ARRAY: Record<Dtype, new (...args: any[]) => ArrayBufferView> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** The bytes to write for one entry, converting where WritableEntry allows it. */
function encode(name: string, e: WritableEntry): Uint8Array {
  const { dtype, data } = e;
  const native = EXPECTED_ARRAY[dtype];
  let out: ArrayBufferView;
  if (data instanceof native) out = data;
  else if (data instanceof Float32Array && (dtype === 'F16' || dtype === 'BF16' || dtype === 'F64')) {
    out = dtype === 'F16' ? f32ArrayToF16(data) : dtype === 'BF16' ? f32ArrayToBf16(data) : Float64Array.from(data);
  } else if (data instanceof Int32Array && dtype === 'I64') {
    const w = new Int32Array(data.length * 2);
    for (let i = 0; i < data.length; i++) {
      w[2 * i] = data[i]!;
      w[2 * i + 1] = data[i]! >> 31;
    }
    out = w;
  } else {
    throw new Error(`writeSafetensors: tensor "${name}": dtype ${dtype} needs a ${native.name}, got a ${data.constructor.name}`);
  }
  if (dtype === 'BOOL') {
    const b = out as Uint8Array;
    for (let i = 0; i < b.length; i++) if (b[i]! > 1) throw new Error(`writeSafetensors: tensor "${name}": BOOL element ${i} is ${b[i]}, not 0 or 1`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function validateEntry(name: string, e: WritableEntry): void {
  if (!isDtype(e.dtype)) throw new Error(`writeSafetensors: tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
    throw new Error(`writeSafetensors: tensor "${name}": shape must be non-negative integers, got ${JSON.stringify(e.shape)}`);
  }
  if (e.data.length !== numel(e.shape)) {
    throw new Error(`writeSafetensors: tensor "${name}": shape ${JSON.stringify(e.shape)} holds ${numel(e.shape)} elements, data has ${e.data.length}`);
  }
}

/** Writes `bytes` fully at the current position. */
function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Runs `write(fd)` on a temporary file next to `path`, fsyncs it and renames it over `path`; on any error the
 * temporary file is removed and `path` is left as it was.
 */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  const fd = openSync(tmp, 'wx');
  let ok = false;
  try {
    write(fd);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
}

/** The header JSON (padded to 8 bytes) and the write order for a set of tensors. */
function planSafetensors(tensors: Iterable<[string, WritableEntry]>, metadata?: Record<string, string>): { header: Buffer; order: [string, WritableEntry][]; dataBytes: number } {
  const order = [...tensors];
  const seen = new Set<string>();
  for (const [name, e] of order) {
    if (name === '__metadata__') throw new Error('writeSafetensors: "__metadata__" is reserved and cannot name a tensor');
    if (seen.has(name)) throw new Error(`writeSafetensors: duplicate tensor name "${name}"`);
    seen.add(name);
    validateEntry(name, e);
  }
  // The reference order: descending dtype alignment, then name (byte order), so every tensor starts aligned.
  order.sort(([an, a], [bn, b]) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || (an < bn ? -1 : an > bn ? 1 : 0));
  // Built by hand rather than from an object: JS objects move integer-like keys ("0", "12") to the front.
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata "${k}" must be a string, got ${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const [name, e] of order) {
    const nbytes = numel(e.shape) * DTYPES[e.dtype].size;
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: e.dtype, shape: [...e.shape], data_offsets: [offset, offset + nbytes] })}`);
    offset += nbytes;
  }
  let json = `{${parts.join(',')}}`;
  const len = Buffer.byteLength(json);
  json += ' '.repeat((8 - (len % 8)) % 8);
  return { header: Buffer.from(json), order, dataBytes: offset };
}

/**
 * Writes tensors (a Map or a plain object, see WritableEntry) and optional string metadata to `path`,
 * atomically. Transformers refuses files without `{"format": "pt"}` metadata; saveStateDict adds it.
 */
export function writeSafetensors(path: string, tensors: Map<string, WritableEntry> | Record<string, WritableEntry>, metadata?: Record<string, string>): void {
  assertLittleEndian();
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const { header, order } = planSafetensors(entries, metadata);
  writeFileAtomic(path, (fd) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFully(fd, len);
    writeFully(fd, header);
    for (const [name, e] of order) writeFully(fd, encode(name, e));
  });
}

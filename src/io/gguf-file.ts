// GGUF (version 3) container writer: header, typed key/value metadata, tensor infos and aligned tensor data,
// little-endian, written atomically (temporary file + rename). Knows nothing about models: gguf.ts maps a llama
// checkpoint onto it. Layout (llama.cpp's docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 kv count,
// the kvs, the tensor infos (name, u32 n_dims, u64 ne[n_dims] with ne[0] the fastest-varying dimension, u32 ggml
// type, u64 offset into the data section), zero padding up to `general.alignment`, then each tensor's bytes at
// its offset (every offset a multiple of the alignment).
import { endianness } from 'node:os';
import { writeSync } from 'node:fs';
import { writeFileAtomic } from './safetensors.js';

/** GGUF metadata value types (numbering of the format). */
export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor types this writer emits (numbering of ggml). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

const GGML_TYPE_SIZE: Record<GgmlType, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };

type GgufScalarType = Exclude<GgufType, GgufType.ARRAY>;
type GgufScalar = number | bigint | boolean | string;

/** One metadata value: a scalar of `type`, or an array whose elements all have `itemType`. */
export type GgufValue = { type: GgufScalarType; value: GgufScalar } | { type: GgufType.ARRAY; itemType: GgufScalarType; value: readonly GgufScalar[] };

/** Ordered metadata (written in insertion order). */
export type GgufMetadata = Map<string, GgufValue>;

/** One tensor to write: its GGUF dims (ne[0] fastest), type, and its bytes produced on demand (once). */
export interface GgufTensorSpec {
  name: string;
  /** ne order: ne[0] is the fastest-varying (the last dimension of a row-major array). */
  dims: number[];
  type: GgmlType;
  /** Called once while writing; must return exactly numel(dims) · typeSize bytes. */
  bytes(): Uint8Array;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME (64) including the terminating zero. */
const MAX_TENSOR_NAME = 63;
const MAX_DIMS = 4;

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, v, true);
    this.length += 8;
  }
  i64(v: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, v, true);
    this.length += 8;
  }
  /** gguf_string: u64 byte length, then UTF-8 bytes (no terminator). */
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.length));
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  zeros(n: number): void {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function isInt(v: GgufScalar, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

function badValue(key: string, type: GgufType, v: unknown): Error {
  return new Error(`GGUF metadata "${key}": value ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)} is not a valid ${GgufType[type]}`);
}

function writeScalar(w: ByteWriter, key: string, type: GgufScalarType, v: GgufScalar): void {
  switch (type) {
    case GgufType.UINT8:
      if (!isInt(v, 0, 0xff)) throw badValue(key, type, v);
      return w.u8(v);
    case GgufType.INT8:
      if (!isInt(v, -0x80, 0x7f)) throw badValue(key, type, v);
      return w.i8(v);
    case GgufType.UINT16:
      if (!isInt(v, 0, 0xffff)) throw badValue(key, type, v);
      return w.u16(v);
    case GgufType.INT16:
      if (!isInt(v, -0x8000, 0x7fff)) throw badValue(key, type, v);
      return w.i16(v);
    case GgufType.UINT32:
      if (!isInt(v, 0, 0xffffffff)) throw badValue(key, type, v);
      return w.u32(v);
    case GgufType.INT32:
      if (!isInt(v, -0x80000000, 0x7fffffff)) throw badValue(key, type, v);
      return w.i32(v);
    case GgufType.FLOAT32:
      if (typeof v !== 'number') throw badValue(key, type, v);
      return w.f32(v);
    case GgufType.FLOAT64:
      if (typeof v !== 'number') throw badValue(key, type, v);
      return w.f64(v);
    case GgufType.BOOL:
      if (typeof v !== 'boolean') throw badValue(key, type, v);
      return w.u8(v ? 1 : 0);
    case GgufType.STRING:
      if (typeof v !== 'string') throw badValue(key, type, v);
      return w.str(v);
    case GgufType.UINT64: {
      const b = typeof v === 'bigint' ? v : isInt(v, 0, Number.MAX_SAFE_INTEGER) ? BigInt(v) : null;
      if (b === null || b < 0n || b >= 1n << 64n) throw badValue(key, type, v);
      return w.u64(b);
    }
    case GgufType.INT64: {
      const b = typeof v === 'bigint' ? v : isInt(v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ? BigInt(v) : null;
      if (b === null || b < -(1n << 63n) || b >= 1n << 63n) throw badValue(key, type, v);
      return w.i64(b);
    }
    default:
      throw new Error(`GGUF metadata "${key}": unknown value type ${String(type)}`);
  }
}

function pad(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Byte count of one tensor's data. */
function ggufTensorBytes(dims: readonly number[], type: GgmlType): number {
  return numel(dims) * GGML_TYPE_SIZE[type];
}

/** Checks a key/value list, tensor names and dims; returns the alignment (general.alignment or the default). */
function validate(metadata: GgufMetadata, tensors: readonly GgufTensorSpec[]): number {
  for (const key of metadata.keys()) {
    if (key.length === 0 || Buffer.byteLength(key) > 65535 || !/^[\x21-\x7e]+$/.test(key)) {
      throw new Error(`GGUF metadata key ${JSON.stringify(key)}: keys are 1..65535 printable ASCII characters without spaces`);
    }
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const a = metadata.get('general.alignment');
  if (a !== undefined) {
    if (a.type !== GgufType.UINT32 || typeof a.value !== 'number' || a.value < 8 || (a.value & (a.value - 1)) !== 0) {
      throw new Error(`GGUF metadata "general.alignment" must be a UINT32 power of two >= 8, got ${JSON.stringify(a)}`);
    }
    alignment = a.value;
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name.length === 0 || Buffer.byteLength(t.name) > MAX_TENSOR_NAME) {
      throw new Error(`GGUF tensor name ${JSON.stringify(t.name)}: must be 1..${MAX_TENSOR_NAME} bytes`);
    }
    if (seen.has(t.name)) throw new Error(`GGUF tensor "${t.name}" given twice`);
    seen.add(t.name);
    if (t.dims.length < 1 || t.dims.length > MAX_DIMS || !t.dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`GGUF tensor "${t.name}": dims ${JSON.stringify(t.dims)} must be 1..${MAX_DIMS} positive integers`);
    }
    if (!(t.type in GGML_TYPE_SIZE)) throw new Error(`GGUF tensor "${t.name}": unsupported ggml type ${String(t.type)}`);
  }
  return alignment;
}

/** The header bytes (magic .. tensor infos, padded to the alignment) and each tensor's data offset. */
function ggufHeader(metadata: GgufMetadata, tensors: readonly GgufTensorSpec[]): { header: Uint8Array; offsets: number[]; alignment: number } {
  const alignment = validate(metadata, tensors);
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.size));
  for (const [key, v] of metadata) {
    w.str(key);
    w.u32(v.type);
    if (v.type === GgufType.ARRAY) {
      if (v.itemType === (GgufType.ARRAY as number)) throw new Error(`GGUF metadata "${key}": nested arrays are not supported`);
      w.u32(v.itemType);
      w.u64(BigInt(v.value.length));
      for (const item of v.value) writeScalar(w, key, v.itemType, item);
    } else {
      writeScalar(w, key, v.type, v.value);
    }
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(offset));
    offsets.push(offset);
    offset = pad(offset + ggufTensorBytes(t.dims, t.type), alignment);
  }
  w.zeros(pad(w.length, alignment) - w.length);
  return { header: w.bytes(), offsets, alignment };
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Writes a GGUF v3 file atomically: `path` is replaced only once the whole file is written and synced. Tensor
 * bytes are requested one tensor at a time, so at most one converted tensor is held beyond the caller's data.
 * Returns the file size in bytes.
 */
export function writeGgufFile(path: string, metadata: GgufMetadata, tensors: readonly GgufTensorSpec[]): number {
  if (endianness() !== 'LE') throw new Error('writeGgufFile: only little-endian hosts are supported');
  const { header, offsets, alignment } = ggufHeader(metadata, tensors);
  const zeros = new Uint8Array(alignment);
  let size = header.length;
  writeFileAtomic(path, (fd) => {
    writeFully(fd, header);
    let pos = 0;
    tensors.forEach((t, i) => {
      const bytes = t.bytes();
      const want = ggufTensorBytes(t.dims, t.type);
      if (bytes.length !== want) {
        throw new Error(`GGUF tensor "${t.name}": produced ${bytes.length} bytes, dims ${JSON.stringify(t.dims)} of ${GgmlType[t.type]} need ${want}`);
      }
      if (pos !== offsets[i]) throw new Error(`GGUF tensor "${t.name}": internal offset mismatch (${pos} != ${offsets[i]})`);
      writeFully(fd, bytes);
      pos += bytes.length;
      const gap = pad(pos, alignment) - pos;
      // the last tensor is padded too, as llama.cpp's writer does: file size = data offset + aligned data size
      if (gap > 0) writeFully(fd, zeros.subarray(0, gap));
      pos += gap;
    });
    size += pos;
  });
  return size;
}

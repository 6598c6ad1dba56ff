// 16-bit float conversions (IEEE half "F16" and bfloat16 "BF16") to and from float32, bit-exact.
// Upcasts are exact; downcasts round to nearest, ties to even, as torch does (`tensor.to(torch.float16/bfloat16)`):
// F16 overflow (|x| >= 65520) gives ±inf, results below 2^-14 become subnormals, NaN becomes sign|0x7e00;
// BF16 NaN becomes 0x7fc0 (torch drops the sign and payload).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The 32 bits of a float32 value. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The float32 value with the given bits. */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** Float32 bits → F16 bits, round to nearest even. */
function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00); // NaN / inf
  if (abs >= 0x47800000) return sign | 0x7c00; // >= 65536: overflows to inf
  if (abs >= 0x38800000) {
    // normal F16 range (>= 2^-14): rebias the exponent, round the 13 dropped mantissa bits
    let h = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach the exponent (or inf): right
    return sign | h;
  }
  if (abs < 0x33000000) return sign; // < 2^-25: rounds to ±0 (2^-25 itself ties to even = 0, handled below too)
  // subnormal F16: value = m · 2^(e−150); in units of 2^-24 that is m · 2^(e−126), a right shift by 126 − e (14..24)
  const e = abs >>> 23;
  const m = (abs & 0x7fffff) | 0x800000;
  const s = 126 - e;
  let q = m >>> s;
  const rem = m & ((1 << s) - 1);
  const half = 1 << (s - 1);
  if (rem > half || (rem === half && (q & 1) !== 0)) q++;
  return sign | q;
}

/** Float32 bits → BF16 bits, round to nearest even (torch's rule: NaN → 0x7fc0). */
function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

let f16Table: Float32Array | null = null;

/** All 65536 F16 values as float32 (256 KiB, built on first use). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f)
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
    else if (exp === 0)
      t[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero and subnormals: exact in float32
    else bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  f16Table = t;
  return t;
}

/** F16 bits → float32 value (exact). */
export function f16ToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

/** BF16 bits → float32 value (exact). */
export function bf16ToF32(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/** Float32 value → F16 bits. */
export function f32ToF16(x: number): number {
  return f32BitsToF16(f32Bits(x));
}

/** Float32 value → BF16 bits. */
export function f32ToBf16(x: number): number {
  return f32BitsToBf16(f32Bits(x));
}

function checkLengths(what: string, src: { length: number }, dst: { length: number }): void {
  if (dst.length < src.length) throw new Error(`${what}: destination holds ${dst.length} elements, source ${src.length}`);
}

/** Upcasts F16 bits to float32 into `dst` (allocated when omitted). */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkLengths('f16ArrayToF32', src, dst);
  // copied as bits: going through JS numbers would quiet signalling-NaN payloads
  const t = new Uint32Array(f16ToF32Table().buffer);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0, n = src.length; i < n; i++) out[i] = t[src[i]!]!;
  return dst;
}

/** Upcasts BF16 bits to float32 into `dst` (allocated when omitted). */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkLengths('bf16ArrayToF32', src, dst);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0, n = src.length; i < n; i++) out[i] = src[i]! << 16;
  return dst;
}

/** Rounds float32 values to F16 bits into `dst` (allocated when omitted). */
export function f32ArrayToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkLengths('f32ArrayToF16', src, dst);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0, n = src.length; i < n; i++) dst[i] = f32BitsToF16(bits[i]!);
  return dst;
}

/** Rounds float32 values to BF16 bits into `dst` (allocated when omitted). */
export function f32ArrayToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkLengths('f32ArrayToBf16', src, dst);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0, n = src.length; i < n; i++) {
    const x = bits[i]!;
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return dst;
}

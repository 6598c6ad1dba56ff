// F16 / BF16 conversions: exhaustive round trips over all 65536 patterns, and round-to-nearest-even checked at
// every midpoint between adjacent representable values (the midpoints are exact float32 numbers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ArrayToF32, bf16ToF32, f16ArrayToF32, f16ToF32, f32ArrayToBf16, f32ArrayToF16, f32Bits, f32FromBits, f32ToBf16, f32ToF16 } from '../../src/io/half.js';

const isF16Nan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16Nan = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/** The next float32 above / below a finite float32 value (by bits; x ≠ 0 on the side that matters). */
function nextUp(x: number): number {
  const b = f32Bits(x);
  if (x === 0) return f32FromBits(1);
  return f32FromBits(x > 0 ? b + 1 : b - 1);
}
function nextDown(x: number): number {
  return -nextUp(-x);
}

test('f16 → f32 known values (zero, subnormal, max, inf, NaN)', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16ToF32(0x0400), 2 ** -14);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0xfc01)));
});

test('f16: all 65536 patterns round-trip through f32 bit-exactly (NaN stays NaN)', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = f16ArrayToF32(all);
  const back = f32ArrayToF16(f);
  const fBits = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    if (isF16Nan(h)) {
      // NaN keeps its sign and payload: f32 bits = sign | 0x7f800000 | mantissa << 13
      assert.equal(fBits[h], (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0);
    } else assert.equal(f[h], f16ToF32(h));
    if (isF16Nan(h)) assert.ok(isF16Nan(back[h]!), `NaN ${h.toString(16)}`);
    else assert.equal(back[h], h, `pattern 0x${h.toString(16)} came back as 0x${back[h]!.toString(16)}`);
  }
});

test('f32 → f16 rounds to nearest even at every midpoint, incl. subnormals and the overflow edge', () => {
  let checked = 0;
  for (const sign of [0, 0x8000]) {
    for (let h = 0; h < 0x7c00; h++) {
      const a = f16ToF32(sign | h);
      const b = h + 1 === 0x7c00 ? (sign ? -65536 : 65536) : f16ToF32(sign | (h + 1)); // the step past 65504 is 65536
      const mid = (a + b) / 2; // exact in float32: an f16 step has at most 11 significant bits
      assert.equal(Math.fround(mid), mid);
      const even = (h & 1) === 0 ? h : h + 1;
      assert.equal(f32ToF16(mid), sign | even, `midpoint ${mid}`);
      const towardB = sign ? nextDown(mid) : nextUp(mid);
      const towardA = sign ? nextUp(mid) : nextDown(mid);
      assert.equal(f32ToF16(towardB), sign | (h + 1), `just past midpoint ${mid}`);
      if (mid !== 0) assert.equal(f32ToF16(towardA), sign | h, `just before midpoint ${mid}`);
      checked++;
    }
  }
  assert.equal(checked, 2 * 0x7c00);
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(-1e6), 0xfc00);
  assert.equal(f32ToF16(2 ** -26), 0);
  assert.equal(f32ToF16(-(2 ** -26)), 0x8000);
  assert.equal(f32ToF16(NaN), 0x7e00);
  assert.equal(f32ToF16(Infinity), 0x7c00);
});

test('f32 → f16 agrees with numpy (float32.astype(float16)) on sample values', () => {
  // numpy 2.4: np.array(xs, np.float32).astype(np.float16).view(np.uint16)
  const xs = [0.1, 1 / 3, -2.5, 65504, 65519.99609375, 65520, 1e-5, 6e-8, 2.9802322387695312e-8, 2.980232594040899e-8, 8.940696716308594e-8, -1e-7, Math.PI, 1e-3, 7e4, 6.103515625e-5, 6.1e-5];
  const want = [0x2e66, 0x3555, 0xc100, 0x7bff, 0x7bff, 0x7c00, 0xa8, 0x1, 0x0, 0x1, 0x2, 0x8002, 0x4248, 0x1419, 0x7c00, 0x400, 0x3ff];
  assert.deepEqual(Array.from(f32ArrayToF16(Float32Array.from(xs))), want);
});

test('bf16: all 65536 patterns round-trip; RNE at every midpoint; NaN → 0x7fc0 as torch', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = bf16ArrayToF32(all);
  const fBits = new Uint32Array(f.buffer);
  const back = f32ArrayToBf16(f);
  for (let b = 0; b < 65536; b++) {
    assert.equal(fBits[b], (b << 16) >>> 0); // bit-exact, NaN payloads included
    if (!isBf16Nan(b)) assert.equal(f[b], bf16ToF32(b));
    if (isBf16Nan(b)) assert.equal(back[b], 0x7fc0);
    else assert.equal(back[b], b);
  }
  for (const sign of [0, 0x8000]) {
    for (let b = 0; b < 0x7f80; b++) {
      // the midpoint between bf16 b and b+1 is the float32 with bits (b << 16) | 0x8000
      const mid = f32FromBits(((sign | b) << 16) | 0x8000);
      assert.equal(f32ToBf16(mid), sign | ((b & 1) === 0 ? b : b + 1));
      assert.equal(f32ToBf16(f32FromBits((((sign | b) << 16) | 0x8000) + 1)), sign | (b + 1));
      assert.equal(f32ToBf16(f32FromBits((((sign | b) << 16) | 0x8000) - 1)), sign | b);
    }
  }
  assert.equal(f32ToBf16(0.1), 0x3dcd); // torch.tensor(0.1).bfloat16() == 0.10009765625
  assert.equal(bf16ToF32(0x3dcd), 0.10009765625);
  assert.equal(f32ToBf16(3.4e38), 0x7f80); // rounds past the largest bf16 to inf
  assert.equal(f32ToBf16(-NaN), 0x7fc0);
});

test('array conversions fill a given destination and refuse a short one', () => {
  const src = Float32Array.from([1, -0.5, 3]);
  const dst = new Uint16Array(5);
  f32ArrayToBf16(src, dst);
  assert.deepEqual(Array.from(dst), [0x3f80, 0xbf00, 0x4040, 0, 0]);
  assert.throws(() => f16ArrayToF32(new Uint16Array(4), new Float32Array(3)), /destination holds 3 elements, source 4/);
});

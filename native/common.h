// Shared helpers for the native kernels: argument unpacking, CPU feature dispatch.
#pragma once
#include <napi.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ak {

// True when the AVX2+FMA kernels may run: the CPU has both and ALIGNKIT_PORTABLE is not set.
bool use_avx2();

#define AK_AVX2 __attribute__((target("avx2,fma")))

// True when the bf16 GEMM may run: use_avx2(), the CPU has AVX512F/BW/VL and AVX512_BF16 (vdpbf16ps), and
// ALIGNKIT_NO_AVX512 is not set (which lets tests run the AVX2 fallback on a bf16-capable machine).
bool use_bf16();

#define AK_BF16 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// A float32 buffer passed from JS: a Float32Array plus an element offset into it.
// `need` is the number of elements the kernel will touch from the offset on; it is checked.
float* f32(const Napi::CallbackInfo& info, size_t arg, size_t offset_arg, size_t need);
// A float32 buffer given as the Float32Array alone (offset 0).
float* f32(const Napi::CallbackInfo& info, size_t arg, size_t need);
// An Int32Array argument (token ids, masks, indices).
int32_t* i32(const Napi::CallbackInfo& info, size_t arg, size_t need);
// A Uint8Array argument (boolean masks).
uint8_t* u8(const Napi::CallbackInfo& info, size_t arg, size_t need);
// A bfloat16 buffer: a Uint16Array (one bf16 value per element) plus an element offset into it.
uint16_t* u16(const Napi::CallbackInfo& info, size_t arg, size_t offset_arg, size_t need);
// Whether argument arg is a Uint16Array (a bf16 operand where a kernel also takes a Float32Array).
bool is_u16(const Napi::CallbackInfo& info, size_t arg);

// float32 → bfloat16, rounded to nearest even (NaN stays a quiet NaN of the same sign); bf16 → float32 is exact.
inline uint16_t bf16_round(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t arg);
double num_arg(const Napi::CallbackInfo& info, size_t arg);
bool bool_arg(const Napi::CallbackInfo& info, size_t arg);

[[noreturn]] void fail(const Napi::Env& env, const std::string& msg);

// Each kernel group registers its functions on the addon's exports.
void InitCore(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitNorm(Napi::Env env, Napi::Object exports);
void InitAttention(Napi::Env env, Napi::Object exports);

}  // namespace ak

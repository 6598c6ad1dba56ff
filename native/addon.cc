// The addon's entry point: argument helpers shared by every kernel group, and registration.
#include "common.h"
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace ak {

bool use_avx2() {
  static const bool v = [] {
    const char* p = std::getenv("ALIGNKIT_PORTABLE");
    if (p && *p && std::string(p) != "0") return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return v;
}

bool use_bf16() {
  static const bool v = [] {
    if (!use_avx2()) return false;
    const char* p = std::getenv("ALIGNKIT_NO_AVX512");
    if (p && *p && std::string(p) != "0") return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  }();
  return v;
}

void fail(const Napi::Env& env, const std::string& msg) { throw Napi::Error::New(env, msg); }

template <typename T, napi_typedarray_type kind>
static T* typed(const Napi::CallbackInfo& info, size_t arg, size_t offset, size_t need, const char* what) {
  if (arg >= info.Length() || !info[arg].IsTypedArray())
    fail(info.Env(), "argument " + std::to_string(arg) + " must be a " + what);
  Napi::TypedArray ta = info[arg].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != kind) fail(info.Env(), "argument " + std::to_string(arg) + " must be a " + what);
  size_t len = ta.ElementLength();
  if (offset > len || need > len - offset)
    fail(info.Env(), "argument " + std::to_string(arg) + ": " + what + " of length " + std::to_string(len) +
                         " is too short (offset " + std::to_string(offset) + ", need " + std::to_string(need) +
                         "); was the tensor disposed?");
  auto* base = reinterpret_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return reinterpret_cast<T*>(base) + offset;
}

float* f32(const Napi::CallbackInfo& info, size_t arg, size_t offset_arg, size_t need) {
  size_t off = static_cast<size_t>(int_arg(info, offset_arg));
  return typed<float, napi_float32_array>(info, arg, off, need, "Float32Array");
}
float* f32(const Napi::CallbackInfo& info, size_t arg, size_t need) {
  return typed<float, napi_float32_array>(info, arg, 0, need, "Float32Array");
}
int32_t* i32(const Napi::CallbackInfo& info, size_t arg, size_t need) {
  return typed<int32_t, napi_int32_array>(info, arg, 0, need, "Int32Array");
}
uint8_t* u8(const Napi::CallbackInfo& info, size_t arg, size_t need) {
  return typed<uint8_t, napi_uint8_array>(info, arg, 0, need, "Uint8Array");
}

uint16_t* u16(const Napi::CallbackInfo& info, size_t arg, size_t offset_arg, size_t need) {
  size_t off = static_cast<size_t>(int_arg(info, offset_arg));
  return typed<uint16_t, napi_uint16_array>(info, arg, off, need, "Uint16Array");
}
bool is_u16(const Napi::CallbackInfo& info, size_t arg) {
  return arg < info.Length() && info[arg].IsTypedArray() && info[arg].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t arg) {
  if (arg >= info.Length() || !info[arg].IsNumber()) fail(info.Env(), "argument " + std::to_string(arg) + " must be a number");
  double d = info[arg].As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d)))
    fail(info.Env(), "argument " + std::to_string(arg) + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}
double num_arg(const Napi::CallbackInfo& info, size_t arg) {
  if (arg >= info.Length() || !info[arg].IsNumber()) fail(info.Env(), "argument " + std::to_string(arg) + " must be a number");
  return info[arg].As<Napi::Number>().DoubleValue();
}
bool bool_arg(const Napi::CallbackInfo& info, size_t arg) {
  if (arg >= info.Length()) fail(info.Env(), "argument " + std::to_string(arg) + " is missing");
  return info[arg].ToBoolean().Value();
}

}  // namespace ak

// glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), after which tensor-sized
// buffers come from the heap and are not returned to the system when freed: a run whose tensor shapes vary then
// grows its RSS far past what it holds. A fixed threshold (which also fixes the trim threshold) keeps large
// buffers in their own mappings, so freeing one returns it; reusing them is the caching allocator's job
// (src/engine/tensor.ts). MALLOC_MMAP_THRESHOLD_ in the environment takes precedence.
static void fix_malloc_thresholds() {
#ifdef __GLIBC__
  static bool done = false;
  if (done || std::getenv("MALLOC_MMAP_THRESHOLD_")) return;
  done = true;
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  fix_malloc_thresholds();
  ak::InitCore(env, exports);
  ak::InitGemm(env, exports);
  ak::InitElementwise(env, exports);
  ak::InitNorm(env, exports);
  ak::InitAttention(env, exports);
  return exports;
}

NODE_API_MODULE(alignkit, Init)

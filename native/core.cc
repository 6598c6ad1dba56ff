// Core kernels the tensor layer itself needs: fill, strided copy, axpy, releasing storage, pool control.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"
#include "pool.h"

namespace ak {
namespace {

// fill(dst, off, n, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 2);
  float* d = f32(info, 0, 1, n);
  float v = static_cast<float>(num_arg(info, 3));
  pool::parallel_for(n, 1 << 16, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) d[i] = v;
  });
  return info.Env().Undefined();
}

// copyStrided(src, srcOff, shape: number[], srcStrides: number[], dst, dstOff[, dstStrides: number[]]):
// copies the strided view of src into dst, contiguously (row-major) or into dst's own strided view. dst may be
// a Uint16Array: the values are then rounded to bfloat16 (nearest even), as a bf16 KV cache stores them.
static std::vector<int64_t> int_list(const Napi::Env& env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) fail(env, std::string("copyStrided: ") + what + " must be an array");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = a.Get(i).As<Napi::Number>().Int64Value();
    if (out[i] < 0) fail(env, std::string("copyStrided: negative ") + what);
  }
  return out;
}

Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int64_t> shape = int_list(env, info[2], "shape"), stride = int_list(env, info[3], "strides");
  size_t nd = shape.size();
  if (stride.size() != nd) fail(env, "copyStrided: shape and strides differ in length");
  bool dst_strided = info.Length() > 6 && info[6].IsArray();
  std::vector<int64_t> dstride;
  if (dst_strided) {
    dstride = int_list(env, info[6], "dstStrides");
    if (dstride.size() != nd) fail(env, "copyStrided: shape and dstStrides differ in length");
  } else {
    dstride.assign(nd, 1);
    for (int64_t k = static_cast<int64_t>(nd) - 2; k >= 0; --k) dstride[k] = dstride[k + 1] * shape[k + 1];
  }
  size_t n = 1;
  int64_t smax = 0, dmax = 0;
  for (size_t i = 0; i < nd; ++i) {
    n *= static_cast<size_t>(shape[i]);
    if (shape[i] > 0) { smax += (shape[i] - 1) * stride[i]; dmax += (shape[i] - 1) * dstride[i]; }
  }
  if (n == 0) return env.Undefined();
  const float* s = f32(info, 0, 1, static_cast<size_t>(smax) + 1);
  const bool to_bf16 = is_u16(info, 4);
  float* d = to_bf16 ? nullptr : f32(info, 4, 5, static_cast<size_t>(dmax) + 1);
  uint16_t* h = to_bf16 ? u16(info, 4, 5, static_cast<size_t>(dmax) + 1) : nullptr;
  if (nd == 0) {
    if (h) h[0] = bf16_round(s[0]);
    else d[0] = s[0];
    return env.Undefined();
  }
  size_t inner = static_cast<size_t>(shape[nd - 1]);
  int64_t is = stride[nd - 1], id = dstride[nd - 1];
  size_t rows = n / inner;
  pool::parallel_for(rows, inner >= 4096 ? 1 : (4096 / inner + 1), [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r) {
      size_t rem = r;
      int64_t so = 0, dof = 0;
      for (int64_t k = static_cast<int64_t>(nd) - 2; k >= 0; --k) {
        int64_t i = static_cast<int64_t>(rem % static_cast<size_t>(shape[k]));
        rem /= static_cast<size_t>(shape[k]);
        so += i * stride[k];
        dof += i * dstride[k];
      }
      const float* sp = s + so;
      if (h) {
        uint16_t* hp = h + dof;
        for (size_t j = 0; j < inner; ++j) hp[j * id] = bf16_round(sp[j * is]);
        continue;
      }
      float* dp = d + dof;
      if (is == 1 && id == 1) std::memcpy(dp, sp, inner * sizeof(float));
      else for (size_t j = 0; j < inner; ++j) dp[j * id] = sp[j * is];
    }
  });
  return env.Undefined();
}

// axpy(y, yOff, x, xOff, n, alpha): y += alpha * x
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 4);
  float* y = f32(info, 0, 1, n);
  const float* x = f32(info, 2, 3, n);
  float a = static_cast<float>(num_arg(info, 5));
  pool::parallel_for(n, 1 << 15, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += a * x[i];
  });
  return info.Env().Undefined();
}

// release(typedArray): detaches its ArrayBuffer, which frees the memory now and leaves every view empty.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) fail(env, "release: expects a typed array");
  Napi::ArrayBuffer ab = info[0].As<Napi::TypedArray>().ArrayBuffer();
  if (ab.IsDetached()) return env.Undefined();
  ab.Detach();
  return env.Undefined();
}


// adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step): one fused AdamW update (PyTorch semantics:
// decoupled decay p -= lr*wd*p, bias-corrected moments, denom = sqrt(v)/sqrt(bc2) + eps).
struct AdamArgs {
  float decay, step_size, inv_sqrt_bc2, b1, b2, eps;
};

static inline __attribute__((always_inline)) void adamw_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                                                               float* __restrict v, size_t b, size_t e, const AdamArgs& a) {
  for (size_t i = b; i < e; ++i) {
    float gi = g[i];
    float mi = a.b1 * m[i] + (1.f - a.b1) * gi;
    float vi = a.b2 * v[i] + (1.f - a.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * a.decay - a.step_size * mi / (std::sqrt(vi) * a.inv_sqrt_bc2 + a.eps);
  }
}
// the same loop compiled for AVX2 (8 lanes); the arithmetic is identical per element
AK_AVX2 static void adamw_range_avx2(float* p, const float* g, float* m, float* v, size_t b, size_t e, const AdamArgs& a) {
  adamw_range(p, g, m, v, b, e, a);
}
static void adamw_range_portable(float* p, const float* g, float* m, float* v, size_t b, size_t e, const AdamArgs& a) {
  adamw_range(p, g, m, v, b, e, a);
}

Napi::Value AdamW(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 4);
  float* p = f32(info, 0, n);
  const float* g = f32(info, 1, n);
  float* m = f32(info, 2, n);
  float* v = f32(info, 3, n);
  double lr = num_arg(info, 5), b1 = num_arg(info, 6), b2 = num_arg(info, 7), eps = num_arg(info, 8),
         wd = num_arg(info, 9), step = num_arg(info, 10);
  double bc1 = 1.0 - std::pow(b1, step), bc2 = 1.0 - std::pow(b2, step);
  AdamArgs a{float(1.0 - lr * wd), float(lr / bc1), float(1.0 / std::sqrt(bc2)), float(b1), float(b2), float(eps)};
  const bool avx2 = use_avx2();
  pool::parallel_for(n, 1 << 14, [&](size_t b, size_t e) {
    if (avx2) adamw_range_avx2(p, g, m, v, b, e, a);
    else adamw_range_portable(p, g, m, v, b, e, a);
  });
  return info.Env().Undefined();
}

// sumSquares(x, off, n) -> number: Σx² in double (NaN/inf propagate: callers use it to detect them).
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 2);
  const float* x = f32(info, 0, 1, n);
  size_t chunks = (n + 65535) / 65536;
  std::vector<double> part(chunks, 0.0);
  pool::run(chunks, [&](size_t c, int) {
    size_t b = c * 65536, e = std::min(n, b + 65536);
    double acc = 0;
    for (size_t i = b; i < e; ++i) acc += double(x[i]) * double(x[i]);
    part[c] = acc;
  });
  double s = 0;
  for (double p : part) s += p;
  return Napi::Number::New(info.Env(), s);
}

// scaleInPlace(x, off, n, s): x *= s
Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 2);
  float* x = f32(info, 0, 1, n);
  float s = float(num_arg(info, 3));
  pool::parallel_for(n, 1 << 15, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] *= s;
  });
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool::threads()); }
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  pool::set_threads(static_cast<int>(int_arg(info, 0)));
  return info.Env().Undefined();
}
Napi::Value Isa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), use_bf16() ? "avx512bf16" : use_avx2() ? "avx2" : "portable");
}

}  // namespace

void InitCore(Napi::Env env, Napi::Object exports) {
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("copyStrided", Napi::Function::New(env, CopyStrided));
  exports.Set("axpy", Napi::Function::New(env, Axpy));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("isa", Napi::Function::New(env, Isa));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace));
}

}  // namespace ak

// Kernel group: GEMM. PLACEHOLDER naive implementation; being replaced by the packed, blocked kernel.
#include "common.h"
#include "pool.h"

namespace ak {
namespace {

void gemm_naive(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float* A, size_t lda,
                const float* B, size_t ldb, float beta, float* C, size_t ldc) {
  pool::parallel_for(M, 4, [&](size_t mb, size_t me) {
    for (size_t i = mb; i < me; ++i)
      for (size_t j = 0; j < N; ++j) {
        double acc = 0;
        for (size_t k = 0; k < K; ++k) acc += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
        float prev = beta == 0.f ? 0.f : beta * C[i * ldc + j];
        C[i * ldc + j] = prev + alpha * float(acc);
      }
  });
}

size_t span(bool t, size_t rows, size_t cols, size_t ld) {  // elements a row-major [rows x cols] op-matrix touches
  size_t r = t ? cols : rows, c = t ? rows : cols;
  return r == 0 || c == 0 ? 0 : (r - 1) * ld + c;
}

// sgemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  bool ta = bool_arg(info, 0), tb = bool_arg(info, 1);
  size_t M = int_arg(info, 2), N = int_arg(info, 3), K = int_arg(info, 4);
  float alpha = float(num_arg(info, 5));
  size_t lda = int_arg(info, 8), ldb = int_arg(info, 11), ldc = int_arg(info, 15);
  float beta = float(num_arg(info, 12));
  const float* A = f32(info, 6, 7, span(ta, M, K, lda));
  const float* B = f32(info, 9, 10, span(tb, K, N, ldb));
  float* C = f32(info, 13, 14, span(false, M, N, ldc));
  gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return info.Env().Undefined();
}

// sgemmBatched(transA, transB, M, N, K, alpha, A, aOff, lda, strideA, B, bOff, ldb, strideB, beta, C, cOff, ldc, strideC, batch)
Napi::Value SgemmBatched(const Napi::CallbackInfo& info) {
  bool ta = bool_arg(info, 0), tb = bool_arg(info, 1);
  size_t M = int_arg(info, 2), N = int_arg(info, 3), K = int_arg(info, 4);
  float alpha = float(num_arg(info, 5));
  size_t lda = int_arg(info, 8), sa = int_arg(info, 9), ldb = int_arg(info, 12), sb = int_arg(info, 13);
  float beta = float(num_arg(info, 14));
  size_t ldc = int_arg(info, 17), sc = int_arg(info, 18), batch = int_arg(info, 19);
  if (batch == 0) return info.Env().Undefined();
  const float* A = f32(info, 6, 7, (batch - 1) * sa + span(ta, M, K, lda));
  const float* B = f32(info, 10, 11, (batch - 1) * sb + span(tb, K, N, ldb));
  float* C = f32(info, 15, 16, (batch - 1) * sc + span(false, M, N, ldc));
  for (size_t b = 0; b < batch; ++b)
    gemm_naive(ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc);
  return info.Env().Undefined();
}

}  // namespace

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("sgemmBatched", Napi::Function::New(env, SgemmBatched));
}

}  // namespace ak

// Kernel group: attention. Rotary position embeddings (Hugging Face "rotate half" layout) and fused scaled
// dot-product attention (causal and/or key-padding masks, grouped-query heads, KV-cache query offsets),
// forward and backward, in the FlashAttention-2 manner:
//
// - Forward: one pool task per (batch, query head, block of kBq queries), heaviest blocks first. It walks the
//   key blocks of kBk keys the block can see (the causal upper triangle and fully padded blocks are skipped),
//   computes the score tile, and folds it into the output rows with an online softmax (running max m and sum
//   l per query, output rows rescaled when m grows). Only tiles are ever materialised; the per-query
//   log-sum-exp is saved for backward. The tiles are keys × queries (see the forward section).
// - Backward: one task per (batch, kv head[, range of key blocks]). For each key block it recomputes
//   P = exp(S·scale − lse) tile by tile for every query head of the group, and accumulates dV += Pᵀ dO,
//   dK += dSᵀ Q and dQ += dS K with dS = P ∘ (dO Vᵀ − rowsum(dO ∘ O))·scale. dK and dV of a kv head and dQ of its
//   query heads belong to that task alone, so nothing races; when there are few (batch, kv head) pairs the key
//   blocks are split and each split writes dQ into its own partial buffer, summed afterwards in a fixed order
//   (the split depends on the sizes only, so results do not depend on the thread count).
//
// Inputs are read through their strides (the innermost dim must have stride 1); outputs are written through
// the strides the caller gives. The forward pass also reads keys and values stored as bf16 (generation's bf16
// KV cache: half the bytes of the stream that dominates decoding): a few queries read them in place, widening
// each load to fp32; more queries widen each key block into the fp32 scratch they pack into anyway. Blocks that
// a tile walks many times are first copied to contiguous scratch: the rows of a [B, T, H, D] view lie H·D
// floats apart, a stride at which a block's rows collide in the caches.
// Tiles are products of three shapes (A·Bᵀ with B packed transposed, row dot products, and C += A·B over
// rows), each with an AVX2+FMA micro-kernel (6 rows × 16 columns of accumulators) and a portable one; the tile
// loops are templates over an ISA tag, compiled once plain and once inside AK_AVX2 functions.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common.h"
#include "pool.h"

namespace ak {
namespace {

constexpr int kBq = 64;  // queries per tile
constexpr int kBk = 64;  // keys per tile (also the row stride of score tiles and packed Kᵀ/Vᵀ/Qᵀ)
static_assert(kBq == kBk, "score tiles are used both ways round, with one row stride");
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Port {};
struct Avx {};

inline int round8(int n) { return (n + 7) & ~7; }

// ---- exp --------------------------------------------------------------------------------------------
// e^x for the softmax, where x <= 0 (or slightly above by rounding). x = n·ln2 + r, |r| <= ln2/2, with ln2 split
// into a short head (n·head exact) and a tail; e^r by Horner on the degree-7 Taylor polynomial (truncation
// < 6e-9 relative); 2^n built in the exponent bits. Inputs below −87 (including −inf, i.e. masked scores) give
// exactly 0, which keeps masked keys out of every sum; NaN stays NaN.
constexpr float kExpMin = -87.0f, kExpMax = 88.0f;
constexpr float kLog2E = 1.44269504088896341f;
constexpr float kLn2Head = 0.693359375f;
constexpr float kLn2Tail = -2.12194440e-4f;

inline float exp_s(float x) {
  if (x < kExpMin) return 0.f;
  if (!(x <= kExpMax)) return x != x ? x : std::numeric_limits<float>::infinity();
  float n = std::nearbyint(x * kLog2E);
  float r = x - n * kLn2Head;
  r = r - n * kLn2Tail;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, 4);
  return p * s;
}

AK_AVX2 inline __m256 exp8(__m256 x) {
  __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpMin), _CMP_LT_OQ);  // false for NaN
  // max/min return the second operand when one is NaN: x second keeps NaN.
  x = _mm256_max_ps(_mm256_set1_ps(kExpMin), x);
  x = _mm256_min_ps(_mm256_set1_ps(kExpMax), x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Head), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Tail), r);
  __m256 p = _mm256_set1_ps(1.f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

AK_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AK_AVX2 inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- tile products ------------------------------------------------------------------------------------
// mm_abt: C[r·kBk + j] = Σ_d A[r·lda + d] · Bt[d·kBk + j] for r < M, j < N8 (N8 a multiple of 8, <= kBk).
// Bt is a packed, transposed key (or value) block whose unused columns are zero.
void mm_abt(Port, int M, int N8, int K, const float* A, size_t lda, const float* Bt, float* C) {
  for (int r = 0; r < M; ++r) {
    float* c = C + static_cast<size_t>(r) * kBk;
    const float* a = A + r * lda;
    for (int j = 0; j < N8; ++j) c[j] = 0.f;
    for (int d = 0; d < K; ++d) {
      float x = a[d];
      const float* b = Bt + static_cast<size_t>(d) * kBk;
      for (int j = 0; j < N8; ++j) c[j] += x * b[j];
    }
  }
}

// The AVX2 tiles: R rows (R <= kMR) by NV·8 columns, accumulators in registers across the K loop.
constexpr int kMR = 6;

template <int R, int NV>
AK_AVX2 __attribute__((always_inline)) inline void abt_tile(int K, const float* A, size_t lda, const float* Bt, float* C) {
  __m256 c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = _mm256_setzero_ps();
  for (int d = 0; d < K; ++d, Bt += kBk) {
    __m256 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(Bt + 8 * v);
    for (int r = 0; r < R; ++r) {
      __m256 x = _mm256_broadcast_ss(A + r * lda + d);
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_fmadd_ps(x, b[v], c[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + static_cast<size_t>(r) * kBk + 8 * v, c[r][v]);
}

template <int R>
AK_AVX2 __attribute__((always_inline)) inline void abt_rows(int N8, int K, const float* A, size_t lda, const float* Bt, float* C) {
  int j = 0;
  for (; j + 16 <= N8; j += 16) abt_tile<R, 2>(K, A, lda, Bt + j, C + j);
  if (j < N8) abt_tile<R, 1>(K, A, lda, Bt + j, C + j);
}

AK_AVX2 void mm_abt(Avx, int M, int N8, int K, const float* A, size_t lda, const float* Bt, float* C) {
  int r = 0;
  for (; r + kMR <= M; r += kMR) abt_rows<kMR>(N8, K, A + r * lda, lda, Bt, C + static_cast<size_t>(r) * kBk);
  const float* Ar = A + r * lda;
  float* Cr = C + static_cast<size_t>(r) * kBk;
  switch (M - r) {
    case 5: abt_rows<5>(N8, K, Ar, lda, Bt, Cr); break;
    case 4: abt_rows<4>(N8, K, Ar, lda, Bt, Cr); break;
    case 3: abt_rows<3>(N8, K, Ar, lda, Bt, Cr); break;
    case 2: abt_rows<2>(N8, K, Ar, lda, Bt, Cr); break;
    case 1: abt_rows<1>(N8, K, Ar, lda, Bt, Cr); break;
    default: break;
  }
}

// Element loads for operands that may be bf16 (a bf16 KV cache's keys and values): widened to fp32 exactly, so a
// product reads the same numbers, in the same order, whichever way its operand is stored.
inline float ld1(const float* p) { return *p; }
inline float ld1(const uint16_t* p) { return bf16_widen(*p); }
AK_AVX2 inline __m256 ld8(const float* p) { return _mm256_loadu_ps(p); }
AK_AVX2 inline __m256 ld8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// mm_dot: C[r·kBk + j] = Σ_d A[r·lda + d] · B[j·ldb + d] for r < M, j < N (rows of B read in place; used when
// there are too few queries to pay for packing the keys, as in token-by-token decoding).
template <class TA>
void mm_dot(Port, int M, int N, int K, const TA* A, size_t lda, const float* B, size_t ldb, float* C) {
  for (int r = 0; r < M; ++r)
    for (int j = 0; j < N; ++j) {
      const TA* a = A + r * lda;
      const float* b = B + j * ldb;
      float s = 0.f;
      for (int d = 0; d < K; ++d) s += ld1(a + d) * b[d];
      C[static_cast<size_t>(r) * kBk + j] = s;
    }
}

template <class TA>
AK_AVX2 void mm_dot(Avx, int M, int N, int K, const TA* A, size_t lda, const float* B, size_t ldb, float* C) {
  const int K8 = K & ~7;
  int r = 0;
  for (; r + 4 <= M; r += 4) {
    const TA *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    for (int j = 0; j < N; ++j) {
      const float* b = B + j * ldb;
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      for (int d = 0; d < K8; d += 8) {
        __m256 bv = _mm256_loadu_ps(b + d);
        s0 = _mm256_fmadd_ps(ld8(a0 + d), bv, s0);
        s1 = _mm256_fmadd_ps(ld8(a1 + d), bv, s1);
        s2 = _mm256_fmadd_ps(ld8(a2 + d), bv, s2);
        s3 = _mm256_fmadd_ps(ld8(a3 + d), bv, s3);
      }
      float t0 = hsum8(s0), t1 = hsum8(s1), t2 = hsum8(s2), t3 = hsum8(s3);
      for (int d = K8; d < K; ++d) {
        t0 += ld1(a0 + d) * b[d];
        t1 += ld1(a1 + d) * b[d];
        t2 += ld1(a2 + d) * b[d];
        t3 += ld1(a3 + d) * b[d];
      }
      float* c = C + static_cast<size_t>(r) * kBk + j;
      c[0] = t0;
      c[kBk] = t1;
      c[2 * kBk] = t2;
      c[3 * kBk] = t3;
    }
  }
  for (; r < M; ++r) {
    const TA* a = A + r * lda;
    for (int j = 0; j < N; ++j) {
      const float* b = B + j * ldb;
      __m256 s0 = _mm256_setzero_ps();
      for (int d = 0; d < K8; d += 8) s0 = _mm256_fmadd_ps(ld8(a + d), _mm256_loadu_ps(b + d), s0);
      float t = hsum8(s0);
      for (int d = K8; d < K; ++d) t += ld1(a + d) * b[d];
      C[static_cast<size_t>(r) * kBk + j] = t;
    }
  }
}

// mm_acc: C[r·ldc + n] += Σ_k A[r·ars + k·aks] · B[k·ldb + n] for r < M, n < N. With (ars, aks) = (kBk, 1) A is
// a score tile (O += P·V, dQ += dS·K); with (1, kBk) it is that tile transposed (dV += Pᵀ·dO, dK += dSᵀ·Q).
template <class TB>
void mm_acc(Port, int M, int N, int K, const float* A, size_t ars, size_t aks, const TB* B, size_t ldb, float* C,
            size_t ldc) {
  for (int r = 0; r < M; ++r) {
    float* c = C + r * ldc;
    for (int k = 0; k < K; ++k) {
      float a = A[r * ars + k * aks];
      const TB* b = B + k * ldb;
      for (int n = 0; n < N; ++n) c[n] += a * ld1(b + n);
    }
  }
}

template <int R, int NV, class TB>
AK_AVX2 __attribute__((always_inline)) inline void acc_tile(int K, const float* A, size_t ars, size_t aks, const TB* B,
                                                             size_t ldb, float* C, size_t ldc) {
  __m256 c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = _mm256_loadu_ps(C + r * ldc + 8 * v);
  for (int k = 0; k < K; ++k, B += ldb, A += aks) {
    __m256 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = ld8(B + 8 * v);
    for (int r = 0; r < R; ++r) {
      __m256 x = _mm256_broadcast_ss(A + r * ars);
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_fmadd_ps(x, b[v], c[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + r * ldc + 8 * v, c[r][v]);
}

template <int R, class TB>
AK_AVX2 __attribute__((always_inline)) inline void acc_rows(int N, int K, const float* A, size_t ars, size_t aks,
                                                             const TB* B, size_t ldb, float* C, size_t ldc) {
  int n = 0;
  // One or two rows (a decoding query): wider tiles, so that enough independent accumulator chains hide the
  // FMA latency (each element still sums its k in order, so results do not depend on the tile width).
  if constexpr (R == 1)
    for (; n + 64 <= N; n += 64) acc_tile<R, 8>(K, A, ars, aks, B + n, ldb, C + n, ldc);
  if constexpr (R == 2)
    for (; n + 32 <= N; n += 32) acc_tile<R, 4>(K, A, ars, aks, B + n, ldb, C + n, ldc);
  for (; n + 16 <= N; n += 16) acc_tile<R, 2>(K, A, ars, aks, B + n, ldb, C + n, ldc);
  if (n + 8 <= N) {
    acc_tile<R, 1>(K, A, ars, aks, B + n, ldb, C + n, ldc);
    n += 8;
  }
  for (; n < N; ++n)  // the last N mod 8 columns
    for (int r = 0; r < R; ++r) {
      float y = C[r * ldc + n];
      for (int k = 0; k < K; ++k) y += A[r * ars + k * aks] * ld1(B + k * ldb + n);
      C[r * ldc + n] = y;
    }
}

template <class TB>
AK_AVX2 void mm_acc(Avx, int M, int N, int K, const float* A, size_t ars, size_t aks, const TB* B, size_t ldb,
                    float* C, size_t ldc) {
  int r = 0;
  for (; r + kMR <= M; r += kMR) acc_rows<kMR>(N, K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc);
  const float* Ar = A + r * ars;
  float* Cr = C + r * ldc;
  switch (M - r) {
    case 5: acc_rows<5>(N, K, Ar, ars, aks, B, ldb, Cr, ldc); break;
    case 4: acc_rows<4>(N, K, Ar, ars, aks, B, ldb, Cr, ldc); break;
    case 3: acc_rows<3>(N, K, Ar, ars, aks, B, ldb, Cr, ldc); break;
    case 2: acc_rows<2>(N, K, Ar, ars, aks, B, ldb, Cr, ldc); break;
    case 1: acc_rows<1>(N, K, Ar, ars, aks, B, ldb, Cr, ldc); break;
    default: break;
  }
}

// ---- row operations on score tiles (n a multiple of 8 for the vector paths) ----------------------------

// s = exp(s·scale − shift); returns the sum.
float row_exp(Port, float* s, int n, float scale, float shift) {
  float sum = 0.f;
  for (int j = 0; j < n; ++j) {
    float e = exp_s(s[j] * scale - shift);
    s[j] = e;
    sum += e;
  }
  return sum;
}
AK_AVX2 float row_exp(Avx, float* s, int n, float scale, float shift) {
  __m256 sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8) {
    __m256 e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), sc, sh));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum8(acc);
}

void row_scale(Port, float* o, int n, float a) {
  for (int j = 0; j < n; ++j) o[j] *= a;
}
AK_AVX2 void row_scale(Avx, float* o, int n, float a) {
  __m256 av = _mm256_set1_ps(a);
  int j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_loadu_ps(o + j), av));
  for (; j < n; ++j) o[j] *= a;
}

// ds = p·(dp − delta)·scale, written over dp.
void row_ds(Port, const float* p, float* dp, int n, float delta, float scale) {
  for (int j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - delta) * scale;
}
AK_AVX2 void row_ds(Avx, const float* p, float* dp, int n, float delta, float scale) {
  __m256 dv = _mm256_set1_ps(delta), sc = _mm256_set1_ps(scale);
  for (int j = 0; j < n; j += 8)
    _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + j), _mm256_sub_ps(_mm256_loadu_ps(dp + j), dv)), sc));
}

float dot(Port, const float* a, const float* b, int n) {
  float s = 0.f;
  for (int j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}
AK_AVX2 float dot(Avx, const float* a, const float* b, int n) {
  __m256 s = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= n; j += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s);
  float t = hsum8(s);
  for (; j < n; ++j) t += a[j] * b[j];
  return t;
}

// Kᵀ (or Vᵀ) of `rows` key rows starting at src (row stride ld) into dst[d·kBk + j]; columns rows..N8 zeroed.
void pack_t(const float* src, size_t ld, int rows, int D, float* dst) {
  int n8 = round8(rows);
  for (int d = 0; d < D; ++d) {
    float* o = dst + static_cast<size_t>(d) * kBk;
    for (int j = rows; j < n8; ++j) o[j] = 0.f;
  }
  for (int j = 0; j < rows; ++j) {
    const float* s = src + j * ld;
    for (int d = 0; d < D; ++d) dst[static_cast<size_t>(d) * kBk + j] = s[d];
  }
}

// `rows` rows of D floats from src (row stride ld) to dst, contiguous.
void pack_rows(const float* src, size_t ld, int rows, int D, float* dst) {
  for (int j = 0; j < rows; ++j) std::memcpy(dst + static_cast<size_t>(j) * D, src + j * ld, sizeof(float) * D);
}

// `rows` rows of D bf16 values from src (row stride ld) to dst as float32, contiguous (exact: bf16 ⊂ fp32).
void widen_rows(const uint16_t* src, size_t ld, int rows, int D, float* dst) {
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < D; ++d) dst[static_cast<size_t>(r) * D + d] = bf16_widen(src[r * ld + d]);
}

// ---- argument structures ----------------------------------------------------------------------------

struct View {  // a [B, H, T, D] operand: element (b, h, t, d) at p[b·s0 + h·s1 + t·s2 + d] (or at h[…] in bf16)
  float* p = nullptr;
  const uint16_t* h = nullptr;  // bf16 keys or values (a bf16 KV cache; forward only)
  int64_t s0 = 0, s1 = 0, s2 = 0;
  float* row(int64_t b, int64_t hd, int64_t t) const { return p + b * s0 + hd * s1 + t * s2; }
  const uint16_t* hrow(int64_t b, int64_t hd, int64_t t) const { return h + b * s0 + hd * s1 + t * s2; }
};

struct Attn {
  int64_t B, Hq, Hkv, Tq, Tk, D, G;  // G = Hq / Hkv query heads per kv head
  View q, k, v, out;
  const uint8_t* mask;  // [B, Tk], 1 = may attend; null = all
  bool causal;
  int64_t qoff;  // absolute position of query 0 (causal)
  float scale;
  float* lse;  // [B, Hq, Tq]
  int nqb, nkb;
  std::vector<int> valid;  // [B, nkb] valid keys per key block (when mask)
  // backward
  View g, dq, dk, dv;
  float* dq_part = nullptr;  // [nsplit, B, Hq, Tq, D] when nsplit > 1
  int nsplit = 1;
};

// Exclusive end of the keys query block [i0, i1) may see.
int64_t key_end(const Attn& a, int64_t i1) {
  if (!a.causal) return a.Tk;
  return std::max<int64_t>(0, std::min<int64_t>(a.Tk, a.qoff + i1));
}

// Masks score tile entries a query may not see: keys after its position (causal) and padded keys.
void mask_tile(const Attn& a, int64_t b, int64_t i0, int bq, int64_t j0, int bk, float* S) {
  const uint8_t* m = a.mask ? a.mask + b * a.Tk + j0 : nullptr;
  for (int r = 0; r < bq; ++r) {
    float* s = S + static_cast<size_t>(r) * kBk;
    int lim = bk;
    if (a.causal) lim = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(bk, a.qoff + i0 + r - j0 + 1)));
    for (int j = lim; j < bk; ++j) s[j] = kNegInf;
    if (m)
      for (int j = 0; j < lim; ++j)
        if (!m[j]) s[j] = kNegInf;
  }
}

bool tile_needs_mask(const Attn& a, int64_t b, int64_t i0, int64_t j0, int bk) {
  if (a.causal && j0 + bk - 1 > a.qoff + i0) return true;
  if (a.mask) {
    int full = static_cast<int>(std::min<int64_t>(kBk, a.Tk - j0));
    if (a.valid[b * a.nkb + j0 / kBk] < full) return true;
  }
  return false;
}

bool block_empty(const Attn& a, int64_t b, int kb) { return a.mask && a.valid[b * a.nkb + kb] == 0; }

// ---- forward ------------------------------------------------------------------------------------------
// The forward tiles are transposed, keys × queries: Sᵀ = K·Qᵀ with Qᵀ packed once per task (so no per-block
// transposes of K are needed), the softmax statistics are then per column and vectorise across queries, and
// O += P·V reads Pᵀ through strides.

// Online softmax over the columns (queries) of a score tile Sᵀ [bk × n8] (row stride kBk): per column c, with
// m the running max of the scaled scores (−inf: nothing visible yet) and l the running sum, m' = max(m,
// scale·max_j S[j, c]), Pᵀ = exp(scale·S − m') in place, alpha = exp(m − m') (the factor for the output rows
// so far) and l' = l·alpha + Σ_j P. A column with nothing visible yet keeps P = 0 and alpha = 0.
void softmax_cols(Port, float* ST, int bk, int n8, float scale, float* m, float* l, float* alpha) {
  for (int c = 0; c < n8; ++c) {
    float mx = kNegInf;
    for (int j = 0; j < bk; ++j) mx = std::max(mx, ST[static_cast<size_t>(j) * kBk + c]);
    float mnew = std::max(m[c], mx * scale);
    float shift = mnew == kNegInf ? 0.f : mnew;
    float sum = 0.f;
    for (int j = 0; j < bk; ++j) {
      float& s = ST[static_cast<size_t>(j) * kBk + c];
      s = exp_s(s * scale - shift);
      sum += s;
    }
    alpha[c] = exp_s(m[c] - shift);
    l[c] = l[c] * alpha[c] + sum;
    m[c] = mnew;
  }
}

AK_AVX2 void softmax_cols(Avx, float* ST, int bk, int n8, float scale, float* m, float* l, float* alpha) {
  const __m256 ninf = _mm256_set1_ps(kNegInf), sc = _mm256_set1_ps(scale);
  for (int c = 0; c < n8; c += 8) {
    __m256 mx = ninf;
    for (int j = 0; j < bk; ++j) mx = _mm256_max_ps(mx, _mm256_loadu_ps(ST + static_cast<size_t>(j) * kBk + c));
    __m256 mold = _mm256_loadu_ps(m + c);
    __m256 mnew = _mm256_max_ps(mold, _mm256_mul_ps(mx, sc));
    __m256 shift = _mm256_andnot_ps(_mm256_cmp_ps(mnew, ninf, _CMP_EQ_OQ), mnew);  // −inf → 0
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < bk; ++j) {
      float* s = ST + static_cast<size_t>(j) * kBk + c;
      __m256 e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(s), sc, shift));
      _mm256_storeu_ps(s, e);
      sum = _mm256_add_ps(sum, e);
    }
    __m256 al = exp8(_mm256_sub_ps(mold, shift));
    _mm256_storeu_ps(alpha + c, al);
    _mm256_storeu_ps(l + c, _mm256_fmadd_ps(_mm256_loadu_ps(l + c), al, sum));
    _mm256_storeu_ps(m + c, mnew);
  }
}

// Masks a transposed score tile Sᵀ [bk × bq]: keys after a query's position (causal) and padded keys.
void mask_tile_t(const Attn& a, int64_t b, int64_t i0, int bq, int64_t j0, int bk, float* ST) {
  const uint8_t* m = a.mask ? a.mask + b * a.Tk + j0 : nullptr;
  for (int j = 0; j < bk; ++j) {
    float* s = ST + static_cast<size_t>(j) * kBk;
    int first = 0;  // first query that sees key j0 + j
    if (m && !m[j])
      first = bq;
    else if (a.causal)
      first = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(bq, j0 + j - a.qoff - i0)));
    for (int i = 0; i < first; ++i) s[i] = kNegInf;
  }
}

template <class Isa>
void fwd_task(Isa isa, const Attn& a, size_t task) {
  const int D = static_cast<int>(a.D);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(kBk) * kBq + 3 * static_cast<size_t>(D) * kBk + 3 * kBq);
  float* ST = buf.data();                          // scores, then probabilities [kBk × kBq]
  float* QT = ST + static_cast<size_t>(kBk) * kBq;  // Qᵀ [D × kBq]
  float* Vp = QT + static_cast<size_t>(D) * kBq;    // V block rows [kBk × D]
  float* Kp = Vp + static_cast<size_t>(D) * kBk;    // K block rows [kBk × D], widened from bf16
  float* m = Kp + static_cast<size_t>(D) * kBk;
  float* l = m + kBq;
  float* alpha = l + kBq;

  // Heaviest (last) query blocks first, so the pool's tail is short.
  const int64_t nbh = a.B * a.Hq;
  const int64_t qb = a.nqb - 1 - static_cast<int64_t>(task) / nbh;
  const int64_t bh = static_cast<int64_t>(task) % nbh, b = bh / a.Hq, h = bh % a.Hq, g = h / a.G;
  const int64_t i0 = qb * kBq;
  const int bq = static_cast<int>(std::min<int64_t>(kBq, a.Tq - i0)), n8 = round8(bq);
  // Few queries (decoding): dot products on the rows in place; packing Qᵀ or V would not pay.
  const bool few = bq < 16;
  const float* Q = a.q.row(b, h, i0);
  float* O = a.out.row(b, h, i0);
  const size_t lq = a.q.s2, lo = a.out.s2;
  if (!few) pack_t(Q, lq, bq, D, QT);
  for (int c = 0; c < n8; ++c) {
    m[c] = kNegInf;
    l[c] = 0.f;
  }
  for (int r = 0; r < bq; ++r) std::fill(O + r * lo, O + r * lo + D, 0.f);
  const int64_t kend = key_end(a, i0 + bq);
  for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
    const int kb = static_cast<int>(j0 / kBk);
    if (block_empty(a, b, kb)) continue;
    const int bk = static_cast<int>(std::min<int64_t>(kBk, kend - j0));
    if (few) {  // keys read in place (bf16 ones widened as they are loaded)
      if (a.k.h)
        mm_dot(isa, bk, bq, D, a.k.hrow(b, g, j0), a.k.s2, Q, lq, ST);
      else
        mm_dot(isa, bk, bq, D, a.k.row(b, g, j0), a.k.s2, Q, lq, ST);
      for (int j = 0; j < bk; ++j) std::fill(ST + static_cast<size_t>(j) * kBk + bq, ST + static_cast<size_t>(j) * kBk + n8, 0.f);
    } else if (a.k.h) {  // bf16 cache: the block's rows widened to contiguous fp32 (exact)
      widen_rows(a.k.hrow(b, g, j0), a.k.s2, bk, D, Kp);
      mm_abt(isa, bk, n8, D, Kp, D, QT, ST);
    } else {
      mm_abt(isa, bk, n8, D, a.k.row(b, g, j0), a.k.s2, QT, ST);
    }
    if (tile_needs_mask(a, b, i0, j0, bk)) mask_tile_t(a, b, i0, bq, j0, bk, ST);
    softmax_cols(isa, ST, bk, n8, a.scale, m, l, alpha);
    for (int r = 0; r < bq; ++r)
      if (alpha[r] != 1.f) row_scale(isa, O + r * lo, D, alpha[r]);
    if (few && a.v.h) {
      mm_acc(isa, bq, D, bk, ST, 1, kBk, a.v.hrow(b, g, j0), a.v.s2, O, lo);
    } else if (few) {
      mm_acc(isa, bq, D, bk, ST, 1, kBk, a.v.row(b, g, j0), a.v.s2, O, lo);
    } else {  // contiguous rows: a [B, T, H, D] view's rows are H·D floats apart and collide in the caches
      if (a.v.h) widen_rows(a.v.hrow(b, g, j0), a.v.s2, bk, D, Vp);
      else pack_rows(a.v.row(b, g, j0), a.v.s2, bk, D, Vp);
      mm_acc(isa, bq, D, bk, ST, 1, kBk, static_cast<const float*>(Vp), D, O, lo);
    }
  }
  float* L = a.lse + (b * a.Hq + h) * a.Tq + i0;
  for (int r = 0; r < bq; ++r) {
    if (l[r] > 0.f) {
      row_scale(isa, O + r * lo, D, 1.f / l[r]);
      L[r] = m[r] + std::log(l[r]);
    } else {  // a query that sees no key: output 0, log-sum-exp −inf
      std::fill(O + r * lo, O + r * lo + D, 0.f);
      L[r] = kNegInf;
    }
  }
}

void fwd_port(const Attn& a, size_t t) { fwd_task(Port{}, a, t); }
AK_AVX2 void fwd_avx2(const Attn& a, size_t t) { fwd_task(Avx{}, a, t); }

// ---- backward -----------------------------------------------------------------------------------------

template <class Isa>
void bwd_task(Isa isa, const Attn& a, size_t task) {
  const int D = static_cast<int>(a.D);
  const int64_t G = a.G;
  thread_local std::vector<float> buf;
  buf.resize(3 * static_cast<size_t>(D) * kBk + 2 * static_cast<size_t>(D) * kBq + 2 * static_cast<size_t>(kBq) * kBk + G * a.Tq);
  float* Kt = buf.data();                        // Kᵀ block [D, kBk]
  float* Vt = Kt + static_cast<size_t>(D) * kBk;  // Vᵀ block [D, kBk]
  float* Kp = Vt + static_cast<size_t>(D) * kBk;  // K block rows [kBk, D]
  float* Qp = Kp + static_cast<size_t>(D) * kBk;  // Q block rows [kBq, D]
  float* dOp = Qp + static_cast<size_t>(D) * kBq;  // dO block rows [kBq, D]
  float* P = dOp + static_cast<size_t>(D) * kBq;
  float* dS = P + static_cast<size_t>(kBq) * kBk;
  float* delta = dS + static_cast<size_t>(kBq) * kBk;

  const int64_t split = static_cast<int64_t>(task) % a.nsplit, bg = static_cast<int64_t>(task) / a.nsplit;
  const int64_t b = bg / a.Hkv, g = bg % a.Hkv;
  const int64_t kb_lo = split * a.nkb / a.nsplit, kb_hi = (split + 1) * a.nkb / a.nsplit;

  // delta[hh, i] = Σ_d dO·O: the row term of the softmax backward.
  for (int64_t hh = 0; hh < G; ++hh)
    for (int64_t i = 0; i < a.Tq; ++i) delta[hh * a.Tq + i] = dot(isa, a.g.row(b, g * G + hh, i), a.out.row(b, g * G + hh, i), D);

  // Where dQ goes: the output itself (this task owns these query heads) or this split's partial buffer.
  auto dq_rows = [&](int64_t h, int64_t i) -> std::pair<float*, size_t> {
    if (a.nsplit == 1) return {a.dq.row(b, h, i), static_cast<size_t>(a.dq.s2)};
    return {a.dq_part + (((split * a.B + b) * a.Hq + h) * a.Tq + i) * a.D, static_cast<size_t>(a.D)};
  };

  for (int64_t kb = kb_lo; kb < kb_hi; ++kb) {
    if (block_empty(a, b, static_cast<int>(kb))) continue;
    const int64_t j0 = kb * kBk;
    const int bk = static_cast<int>(std::min<int64_t>(kBk, a.Tk - j0)), n8 = round8(bk);
    // First query that may see key j0.
    int64_t ifirst = a.causal ? std::max<int64_t>(0, j0 - a.qoff) : 0;
    if (ifirst >= a.Tq) continue;
    const float* Krows = a.k.row(b, g, j0);
    pack_t(Krows, a.k.s2, bk, D, Kt);
    pack_rows(Krows, a.k.s2, bk, D, Kp);
    pack_t(a.v.row(b, g, j0), a.v.s2, bk, D, Vt);
    float* dK = a.dk.row(b, g, j0);
    float* dV = a.dv.row(b, g, j0);
    for (int64_t hh = 0; hh < G; ++hh) {
      const int64_t h = g * G + hh;
      const float* L = a.lse + (b * a.Hq + h) * a.Tq;
      for (int64_t i0 = (ifirst / kBq) * kBq; i0 < a.Tq; i0 += kBq) {
        const int bq = static_cast<int>(std::min<int64_t>(kBq, a.Tq - i0));
        // Contiguous copies of the tile's query and dO rows: the products below walk them many times, and the
        // rows of a [B, T, H, D] view are H·D floats apart, a stride at which they collide in the caches.
        pack_rows(a.q.row(b, h, i0), a.q.s2, bq, D, Qp);
        pack_rows(a.g.row(b, h, i0), a.g.s2, bq, D, dOp);
        mm_abt(isa, bq, n8, D, Qp, D, Kt, P);
        for (int r = 0; r < bq; ++r)
          for (int j = bk; j < n8; ++j) P[r * kBk + j] = kNegInf;
        if (tile_needs_mask(a, b, i0, j0, bk)) mask_tile(a, b, i0, bq, j0, bk, P);
        for (int r = 0; r < bq; ++r) {
          float lse = L[i0 + r];
          if (lse == kNegInf) lse = std::numeric_limits<float>::infinity();  // row saw nothing: P = 0
          row_exp(isa, P + static_cast<size_t>(r) * kBk, n8, a.scale, lse);
        }
        mm_abt(isa, bq, n8, D, dOp, D, Vt, dS);
        const float* dl = delta + hh * a.Tq + i0;
        for (int r = 0; r < bq; ++r)
          row_ds(isa, P + static_cast<size_t>(r) * kBk, dS + static_cast<size_t>(r) * kBk, n8, dl[r], a.scale);
        mm_acc(isa, bk, D, bq, P, 1, kBk, dOp, D, dV, a.dv.s2);
        mm_acc(isa, bk, D, bq, dS, 1, kBk, Qp, D, dK, a.dk.s2);
        auto [dQ, ldq] = dq_rows(h, i0);
        mm_acc(isa, bq, D, bk, dS, kBk, 1, Kp, D, dQ, ldq);
      }
    }
  }
}

void bwd_port(const Attn& a, size_t t) { bwd_task(Port{}, a, t); }
AK_AVX2 void bwd_avx2(const Attn& a, size_t t) { bwd_task(Avx{}, a, t); }

// ---- argument parsing -----------------------------------------------------------------------------------

std::vector<int64_t> int_list(const Napi::CallbackInfo& info, size_t arg, size_t n, const char* what) {
  if (arg >= info.Length() || !info[arg].IsArray()) fail(info.Env(), std::string(what) + " must be an array of numbers");
  Napi::Array arr = info[arg].As<Napi::Array>();
  if (arr.Length() != n) fail(info.Env(), std::string(what) + " must have " + std::to_string(n) + " entries");
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    Napi::Value x = arr.Get(static_cast<uint32_t>(i));
    if (!x.IsNumber()) fail(info.Env(), std::string(what) + " must be an array of numbers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d)) fail(info.Env(), std::string(what) + " must hold integers");
    out[i] = static_cast<int64_t>(d);
  }
  return out;
}

// A [d0, d1, d2, D] operand at (arg: Float32Array, arg+1: offset, arg+2: strides[4]); inner stride must be 1.
// With allow_bf16 the array may be a Uint16Array of bf16 values instead.
View view_arg(const Napi::CallbackInfo& info, size_t arg, int64_t d0, int64_t d1, int64_t d2, int64_t D, const char* what,
              bool allow_bf16 = false) {
  auto st = int_list(info, arg + 2, 4, what);
  if (st[3] != 1 && D > 1) fail(info.Env(), std::string(what) + ": the last dim must have stride 1");
  for (auto s : st)
    if (s < 0) fail(info.Env(), std::string(what) + ": negative strides are not supported");
  size_t need = 0;
  if (d0 > 0 && d1 > 0 && d2 > 0 && D > 0) need = 1 + (d0 - 1) * st[0] + (d1 - 1) * st[1] + (d2 - 1) * st[2] + (D - 1);
  View v;
  if (allow_bf16 && is_u16(info, arg))
    v.h = u16(info, arg, arg + 1, need);
  else
    v.p = f32(info, arg, arg + 1, need);
  v.s0 = st[0];
  v.s1 = st[1];
  v.s2 = st[2];
  return v;
}

bool is_nullish(const Napi::CallbackInfo& info, size_t arg) {
  return arg >= info.Length() || info[arg].IsNull() || info[arg].IsUndefined();
}

// Shared by forward and backward:
//   0-2 q, qOff, qStrides; 3-5 k; 6-8 v; 9 dims [B, Hq, Hkv, Tq, Tk, D]; 10 mask (Uint8Array [B·Tk] or null);
//   11 causal; 12 queryOffset; 13 scale; 14-16 out, outOff, outStrides; 17 lse (Float32Array [B·Hq·Tq]).
// Forward only: k and v may both be Uint16Arrays of bf16 values (a bf16 KV cache), widened to fp32 block by block.
void parse_common(const Napi::CallbackInfo& info, Attn& a, bool allow_bf16 = false) {
  auto dims = int_list(info, 9, 6, "attention dims");
  a.B = dims[0];
  a.Hq = dims[1];
  a.Hkv = dims[2];
  a.Tq = dims[3];
  a.Tk = dims[4];
  a.D = dims[5];
  for (auto d : dims)
    if (d < 0) fail(info.Env(), "attention: negative dims");
  if (a.D < 1 || a.Hkv < 1 || a.Hq % a.Hkv != 0) fail(info.Env(), "attention: needs D >= 1 and Hq a multiple of Hkv");
  a.G = a.Hq / a.Hkv;
  a.q = view_arg(info, 0, a.B, a.Hq, a.Tq, a.D, "attention q");
  a.k = view_arg(info, 3, a.B, a.Hkv, a.Tk, a.D, "attention k", allow_bf16);
  a.v = view_arg(info, 6, a.B, a.Hkv, a.Tk, a.D, "attention v", allow_bf16);
  if ((a.k.h == nullptr) != (a.v.h == nullptr)) fail(info.Env(), "attention: k and v must both be float32 or both bf16");
  a.mask = is_nullish(info, 10) ? nullptr : u8(info, 10, a.B * a.Tk);
  a.causal = bool_arg(info, 11);
  double qo = num_arg(info, 12);
  if (qo != std::floor(qo) || std::fabs(qo) > 9e15) fail(info.Env(), "attention: queryOffset must be an integer");
  a.qoff = static_cast<int64_t>(qo);
  a.scale = static_cast<float>(num_arg(info, 13));
  if (!(a.scale > 0.f) || !std::isfinite(a.scale)) fail(info.Env(), "attention: scale must be a finite number > 0");
  a.out = view_arg(info, 14, a.B, a.Hq, a.Tq, a.D, "attention out");
  a.lse = f32(info, 17, a.B * a.Hq * a.Tq);
  a.nqb = static_cast<int>((a.Tq + kBq - 1) / kBq);
  a.nkb = static_cast<int>((a.Tk + kBk - 1) / kBk);
  if (a.mask) {
    a.valid.assign(a.B * a.nkb, 0);
    for (int64_t b = 0; b < a.B; ++b)
      for (int64_t j = 0; j < a.Tk; ++j) a.valid[b * a.nkb + j / kBk] += a.mask[b * a.Tk + j] != 0;
  }
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Attn a;
  parse_common(info, a, true);
  if (a.B * a.Hq * a.Tq == 0) return info.Env().Undefined();
  const bool avx = use_avx2();
  pool::run(static_cast<size_t>(a.B * a.Hq * a.nqb), [&](size_t t, int) {
    if (avx)
      fwd_avx2(a, t);
    else
      fwd_port(a, t);
  });
  return info.Env().Undefined();
}

// 18-20 dOut, dOutOff, dOutStrides; 21-23 dq; 24-26 dk; 27-29 dv (zero-filled by the caller).
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Attn a;
  parse_common(info, a);
  a.g = view_arg(info, 18, a.B, a.Hq, a.Tq, a.D, "attention dOut");
  a.dq = view_arg(info, 21, a.B, a.Hq, a.Tq, a.D, "attention dq");
  a.dk = view_arg(info, 24, a.B, a.Hkv, a.Tk, a.D, "attention dk");
  a.dv = view_arg(info, 27, a.B, a.Hkv, a.Tk, a.D, "attention dv");
  if (a.B * a.Hq * a.Tq == 0 || a.Tk == 0) return info.Env().Undefined();
  // Split the key blocks when there are few (batch, kv head) pairs, so that threads are not left idle. The
  // split count depends on the sizes only (not on the thread count): results are the same on any machine.
  const int64_t pairs = a.B * a.Hkv, want = 16;
  a.nsplit = pairs >= want ? 1 : static_cast<int>(std::min<int64_t>(a.nkb, (want + pairs - 1) / pairs));
  std::vector<float> part;
  if (a.nsplit > 1) {
    part.assign(static_cast<size_t>(a.nsplit) * a.B * a.Hq * a.Tq * a.D, 0.f);
    a.dq_part = part.data();
  }
  const bool avx = use_avx2();
  pool::run(static_cast<size_t>(pairs * a.nsplit), [&](size_t t, int) {
    if (avx)
      bwd_avx2(a, t);
    else
      bwd_port(a, t);
  });
  if (a.nsplit > 1) {  // dq = Σ over splits, in split order
    const size_t rows = static_cast<size_t>(a.B * a.Hq * a.Tq), per = rows * a.D;
    pool::parallel_for(rows, 16, [&](size_t s, size_t e) {
      for (size_t r = s; r < e; ++r) {
        int64_t i = r % a.Tq, bh = r / a.Tq, b = bh / a.Hq, h = bh % a.Hq;
        float* o = a.dq.row(b, h, i);
        for (int64_t d = 0; d < a.D; ++d) {
          float acc = 0.f;
          for (int sp = 0; sp < a.nsplit; ++sp) acc += part[sp * per + r * a.D + d];
          o[d] = acc;
        }
      }
    });
  }
  return info.Env().Undefined();
}

// ---- rotary embeddings ---------------------------------------------------------------------------------

// ropeTable(positions, n, theta, rotaryDim, cos, sin): cos/sin[p·(d/2) + i] for the n positions, computed as
// transformers' default rotary embedding does, in float32: inv_freq[i] = 1 / theta^(float(2i)/d) (the power
// and the division each rounded to float32), angle = float32(float32(pos)·inv_freq[i]), then cos and sin of
// that float32 angle (evaluated in double and rounded, i.e. correctly rounded float32 results).
Napi::Value RopeTable(const Napi::CallbackInfo& info) {
  size_t n = static_cast<size_t>(int_arg(info, 1));
  const int32_t* pos = i32(info, 0, n);
  double theta = num_arg(info, 2);
  int64_t d = int_arg(info, 3);
  if (d < 2 || d % 2 != 0) fail(info.Env(), "ropeTable: rotaryDim must be even and >= 2");
  if (!(theta > 0) || !std::isfinite(theta)) fail(info.Env(), "ropeTable: theta must be a finite number > 0");
  size_t half = static_cast<size_t>(d / 2);
  float* c = f32(info, 4, n * half);
  float* s = f32(info, 5, n * half);
  std::vector<float> inv(half);
  const float th = static_cast<float>(theta), fd = static_cast<float>(d);
  for (size_t i = 0; i < half; ++i) {
    float e = static_cast<float>(2 * i) / fd;
    float pw = static_cast<float>(std::pow(static_cast<double>(th), static_cast<double>(e)));
    inv[i] = 1.0f / pw;
  }
  pool::parallel_for(n, 64, [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) {
      float fp = static_cast<float>(pos[p]);
      for (size_t i = 0; i < half; ++i) {
        float ang = fp * inv[i];
        c[p * half + i] = static_cast<float>(std::cos(static_cast<double>(ang)));
        s[p * half + i] = static_cast<float>(std::sin(static_cast<double>(ang)));
      }
    }
  });
  return info.Env().Undefined();
}

// ropeApply(x, xOff, shape[4], xStrides[4], out, outOff, outStrides[4], cos, sin, perRow, rotaryDim, inverse):
// rotate-half rotation of the first rotaryDim features of each [B, H, T, D] row by its angles (by minus them
// when inverse: the backward pass); features from rotaryDim on are copied. Row (b, ·, t) uses table row t, or
// b·T + t when perRow.
Napi::Value RopeApply(const Napi::CallbackInfo& info) {
  auto sh = int_list(info, 2, 4, "rope shape");
  auto xs = int_list(info, 3, 4, "rope x strides");
  auto os = int_list(info, 6, 4, "rope out strides");
  for (int i = 0; i < 4; ++i)
    if (sh[i] < 0 || xs[i] < 0 || os[i] < 0) fail(info.Env(), "rope: negative shape or stride");
  const int64_t B = sh[0], H = sh[1], T = sh[2], D = sh[3];
  auto span = [&](const std::vector<int64_t>& st) -> size_t {
    if (B * H * T * D == 0) return 0;
    return 1 + (B - 1) * st[0] + (H - 1) * st[1] + (T - 1) * st[2] + (D - 1) * st[3];
  };
  const float* x = f32(info, 0, 1, span(xs));
  float* out = f32(info, 4, 5, span(os));
  const bool per_row = bool_arg(info, 9);
  const int64_t d = int_arg(info, 10);
  const bool inverse = bool_arg(info, 11);
  if (d < 2 || d % 2 != 0 || d > D) fail(info.Env(), "rope: rotaryDim must be even, >= 2 and <= D");
  const int64_t half = d / 2, npos = per_row ? B * T : T;
  const float* c = f32(info, 7, npos * half);
  const float* s = f32(info, 8, npos * half);
  const float sg = inverse ? -1.f : 1.f;
  pool::parallel_for(static_cast<size_t>(B * H * T), 64, [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r) {
      int64_t t = r % T, bh = r / T, b = bh / H, h = bh % H;
      const float* xr = x + b * xs[0] + h * xs[1] + t * xs[2];
      float* orow = out + b * os[0] + h * os[1] + t * os[2];
      const int64_t p = per_row ? b * T + t : t;
      const float *cr = c + p * half, *sr = s + p * half;
      const int64_t x3 = xs[3], o3 = os[3];
      if (x3 == 1 && o3 == 1) {  // the usual case, in a loop the compiler vectorises
        const float* __restrict xa = xr;
        float* __restrict oa = orow;
        for (int64_t i = 0; i < half; ++i) {
          float x0 = xa[i], x1 = xa[i + half], ci = cr[i], si = sg * sr[i];
          float a0 = x0 * ci, b0 = x1 * si, a1 = x1 * ci, b1 = x0 * si;  // rounded separately, as torch does
          oa[i] = a0 - b0;
          oa[i + half] = a1 + b1;
        }
        if (D > d) std::memcpy(oa + d, xa + d, sizeof(float) * (D - d));
        continue;
      }
      for (int64_t i = 0; i < half; ++i) {
        float x0 = xr[i * x3], x1 = xr[(i + half) * x3];
        float ci = cr[i], si = sg * sr[i];
        float a0 = x0 * ci, b0 = x1 * si, a1 = x1 * ci, b1 = x0 * si;
        orow[i * o3] = a0 - b0;
        orow[(i + half) * o3] = a1 + b1;
      }
      for (int64_t i = d; i < D; ++i) orow[i * o3] = xr[i * x3];
    }
  });
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
  exports.Set("ropeTable", Napi::Function::New(env, RopeTable));
  exports.Set("ropeApply", Napi::Function::New(env, RopeApply));
}

}  // namespace ak

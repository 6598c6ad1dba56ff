// Kernel group: normalisation (layerNorm, rmsNorm), the softmax family (softmax, logSoftmax, fused
// selective log-softmax, entropy of logits) and embedding lookup, forward and backward.
//
// Every kernel works on contiguous rows of C (or V) floats and runs over rows on the pool. Each row kernel
// is written once as a template over an ISA tag (Port or Avx); the row reductions and the exp are
// overloaded on the tag (plain C++ for Port, AVX2+FMA intrinsics for Avx), and the template is instantiated
// in a plain function and in an AK_AVX2 one, so the elementwise loops are also compiled for AVX2 there.
// Row reductions (means, dot products) accumulate in double; sums of exponentials add blocks of 256 terms
// in float lanes and the block sums in double.
// Reductions across rows (dweight, dbias) use fixed row chunks whose count depends only on the sizes, with
// per-chunk partial sums reduced in a fixed order: results do not depend on scheduling or thread count.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common.h"
#include "pool.h"

namespace ak {
namespace {

#define AK_INLINE inline __attribute__((always_inline))

struct Port {};
struct Avx {};

// ---- exp ------------------------------------------------------------------------------------------
// exp(x) = 2^n · e^r with n = round(x·log2 e) and r = x − n·ln2, where ln2 is split in two constants
// (the first has few enough bits that n·kLn2Hi is exact), so |r| <= ln2/2 to float precision. e^r is its
// Taylor polynomial to degree 7 (truncation error below 1e-8 relative on that interval). 2^n is applied as
// two factors 2^(n>>1)·2^(n−(n>>1)), which keeps each factor a normal float, so subnormal results and
// overflow to +inf come out right. x is clamped to [-104, 89] first (below -104 the result rounds to 0,
// above 88.73 it is +inf); NaN stays NaN. Measured max relative error 7.6e-8 (AVX2) and 1.0e-7 (portable)
// over the normal range, i.e. within 2 ulp (the tests check < 2.5e-7).
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;       // 355/512
constexpr float kLn2Lo = -2.12194440055e-4f;  // ln2 − kLn2Hi
constexpr float kExpLo = -104.0f, kExpHi = 89.0f;
constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to the nearest integer
constexpr float kC2 = 1.f / 2, kC3 = 1.f / 6, kC4 = 1.f / 24, kC5 = 1.f / 120, kC6 = 1.f / 720, kC7 = 1.f / 5040;

AK_INLINE float pow2i(int e) {  // 2^e for e in [-126, 127]
  uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

AK_INLINE float exp_port(float x) {
  x = std::max(x, kExpLo);  // std::max/min return their first argument for NaN: NaN propagates
  x = std::min(x, kExpHi);
  float n = (x * kLog2e + kRound) - kRound;
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kC7;
  p = p * r + kC6;
  p = p * r + kC5;
  p = p * r + kC4;
  p = p * r + kC3;
  p = p * r + kC2;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int ni = x == x ? static_cast<int>(n) : 0;
  int n1 = ni >> 1, n2 = ni - n1;
  return p * pow2i(n1) * pow2i(n2);
}

AK_AVX2 AK_INLINE __m256 exp8(__m256 x) {
  // _mm256_max_ps/_min_ps return the second operand when either is NaN: put x second so NaN survives.
  x = _mm256_max_ps(_mm256_set1_ps(kExpLo), x);
  x = _mm256_min_ps(_mm256_set1_ps(kExpHi), x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC7);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  __m256i ni = _mm256_cvtps_epi32(n);  // NaN lanes give INT_MIN; p is NaN there anyway
  __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

AK_AVX2 AK_INLINE double hsum(__m256d a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
AK_AVX2 AK_INLINE __m256d lo4(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
AK_AVX2 AK_INLINE __m256d hi4(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

// ---- row reductions -------------------------------------------------------------------------------

// Σ x (double)
double sum_d(Port, const float* x, size_t n) {
  double s = 0;
  for (size_t j = 0; j < n; ++j) s += x[j];
  return s;
}
AK_AVX2 double sum_d(Avx, const float* x, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    a0 = _mm256_add_pd(a0, lo4(v));
    a1 = _mm256_add_pd(a1, hi4(v));
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; j < n; ++j) s += x[j];
  return s;
}

// Σ (x − m)² (double)
double sqdev_d(Port, const float* x, size_t n, double m) {
  double s = 0;
  for (size_t j = 0; j < n; ++j) {
    double d = x[j] - m;
    s += d * d;
  }
  return s;
}
AK_AVX2 double sqdev_d(Avx, const float* x, size_t n, double m) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), mv = _mm256_set1_pd(m);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    __m256d d0 = _mm256_sub_pd(lo4(v), mv), d1 = _mm256_sub_pd(hi4(v), mv);
    a0 = _mm256_fmadd_pd(d0, d0, a0);
    a1 = _mm256_fmadd_pd(d1, d1, a1);
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; j < n; ++j) {
    double d = x[j] - m;
    s += d * d;
  }
  return s;
}

// Σ a·b (double); b == nullptr means Σ a.
double dot_d(Port, const float* a, const float* b, size_t n) {
  if (!b) return sum_d(Port{}, a, n);
  double s = 0;
  for (size_t j = 0; j < n; ++j) s += double(a[j]) * double(b[j]);
  return s;
}
AK_AVX2 double dot_d(Avx, const float* a, const float* b, size_t n) {
  if (!b) return sum_d(Avx{}, a, n);
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 u = _mm256_loadu_ps(a + j), v = _mm256_loadu_ps(b + j);
    a0 = _mm256_fmadd_pd(lo4(u), lo4(v), a0);
    a1 = _mm256_fmadd_pd(hi4(u), hi4(v), a1);
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; j < n; ++j) s += double(a[j]) * double(b[j]);
  return s;
}

// Σ (a·w)·(x − m) in double, with a·w rounded to float first (w == nullptr: w = 1); the rmsNorm
// backward pass uses it with m = 0.
double wdot_d(Port, const float* a, const float* w, const float* x, double m, size_t n) {
  double s = 0;
  for (size_t j = 0; j < n; ++j) s += double(w ? a[j] * w[j] : a[j]) * (double(x[j]) - m);
  return s;
}
AK_AVX2 double wdot_d(Avx, const float* a, const float* w, const float* x, double m, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), mv = _mm256_set1_pd(m);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 u = _mm256_loadu_ps(a + j);
    if (w) u = _mm256_mul_ps(u, _mm256_loadu_ps(w + j));
    __m256 v = _mm256_loadu_ps(x + j);
    a0 = _mm256_fmadd_pd(lo4(u), _mm256_sub_pd(lo4(v), mv), a0);
    a1 = _mm256_fmadd_pd(hi4(u), _mm256_sub_pd(hi4(v), mv), a1);
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; j < n; ++j) s += double(w ? a[j] * w[j] : a[j]) * (double(x[j]) - m);
  return s;
}

// Both sums of the layerNorm backward in one pass: G = Σ a·w and H = Σ (a·w)·(x − m), in double.
void wdot2_d(Port, const float* a, const float* w, const float* x, double m, size_t n, double* G, double* H) {
  double g = 0, h = 0;
  for (size_t j = 0; j < n; ++j) {
    double aw = w ? a[j] * w[j] : a[j];
    g += aw;
    h += aw * (double(x[j]) - m);
  }
  *G = g;
  *H = h;
}
AK_AVX2 void wdot2_d(Avx, const float* a, const float* w, const float* x, double m, size_t n, double* G, double* H) {
  __m256d g0 = _mm256_setzero_pd(), g1 = g0, h0 = g0, h1 = g0, mv = _mm256_set1_pd(m);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 u = _mm256_loadu_ps(a + j);
    if (w) u = _mm256_mul_ps(u, _mm256_loadu_ps(w + j));
    __m256 v = _mm256_loadu_ps(x + j);
    __m256d u0 = lo4(u), u1 = hi4(u);
    g0 = _mm256_add_pd(g0, u0);
    g1 = _mm256_add_pd(g1, u1);
    h0 = _mm256_fmadd_pd(u0, _mm256_sub_pd(lo4(v), mv), h0);
    h1 = _mm256_fmadd_pd(u1, _mm256_sub_pd(hi4(v), mv), h1);
  }
  double g = hsum(_mm256_add_pd(g0, g1)), h = hsum(_mm256_add_pd(h0, h1));
  for (; j < n; ++j) {
    double aw = w ? a[j] * w[j] : a[j];
    g += aw;
    h += aw * (double(x[j]) - m);
  }
  *G = g;
  *H = h;
}

// max over the row (−inf for an empty row)
float max_row(Port, const float* x, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}
AK_AVX2 float max_row(Avx, const float* x, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  size_t j = 0;
  if (n >= 16) {
    __m256 m0 = _mm256_set1_ps(m), m1 = m0;
    for (; j + 16 <= n; j += 16) {
      m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + j));
      m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + j + 8));
    }
    m0 = _mm256_max_ps(m0, m1);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    m = _mm_cvtss_f32(h);
  }
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// The sums of exponentials below add blocks of kBlock terms in float (8 or 16 lanes, so each lane adds at
// most kBlock/8 terms) and the block sums in double: about as accurate as double throughout, but the hot
// loop does no conversions. The portable versions write a block of exponentials to a buffer first, in a
// loop the compiler can vectorise with baseline SSE2, and then sum it.
constexpr size_t kBlock = 256;

AK_INLINE float sum8_port(const float* b, size_t len) {  // 8 independent lanes, then their sum
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (int q = 0; q < 8; ++q) acc[q] += b[i + q];
  for (; i < len; ++i) acc[0] += b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

AK_INLINE void exp_block_port(const float* x, size_t n, float shift, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = exp_port(x[i] - shift);
}

// Σ exp(x − shift) (block sums in double); also stores the exponentials in out when out is not null.
double exp_sum(Port, const float* x, size_t n, float shift, float* out) {
  double s = 0;
  float buf[kBlock];
  for (size_t j = 0; j < n; j += kBlock) {
    size_t len = std::min(kBlock, n - j);
    float* e = out ? out + j : buf;
    exp_block_port(x + j, len, shift, e);
    s += sum8_port(e, len);
  }
  return s;
}
AK_AVX2 double exp_sum(Avx, const float* x, size_t n, float shift, float* out) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  __m256 sh = _mm256_set1_ps(shift);
  const size_t n16 = n - n % 16;
  size_t j = 0;
  while (j < n16) {
    size_t end = std::min(n16, j + kBlock);
    __m256 f0 = _mm256_setzero_ps(), f1 = f0;
    for (; j < end; j += 16) {
      __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), sh));
      __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), sh));
      if (out) {
        _mm256_storeu_ps(out + j, e0);
        _mm256_storeu_ps(out + j + 8, e1);
      }
      f0 = _mm256_add_ps(f0, e0);
      f1 = _mm256_add_ps(f1, e1);
    }
    __m256 f = _mm256_add_ps(f0, f1);
    a0 = _mm256_add_pd(a0, lo4(f));
    a1 = _mm256_add_pd(a1, hi4(f));
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; j < n; ++j) {
    float e = exp_port(x[j] - shift);
    if (out) out[j] = e;
    s += e;
  }
  return s;
}

// S = Σ e_j and D = Σ e_j·(x_j − shift), e_j = exp(x_j − shift) (terms with e_j = 0 add 0, so −inf logits
// are fine). The entropy of the softmax is log S − D/S when shift is the row max.
void exp_sum_dot(Port, const float* x, size_t n, float shift, double* S, double* D) {
  double s = 0, d = 0;
  float e[kBlock], p[kBlock];
  for (size_t j = 0; j < n; j += kBlock) {
    size_t len = std::min(kBlock, n - j);
    exp_block_port(x + j, len, shift, e);
    for (size_t i = 0; i < len; ++i) p[i] = e[i] != 0.f ? e[i] * (x[j + i] - shift) : 0.f;
    s += sum8_port(e, len);
    d += sum8_port(p, len);
  }
  *S = s;
  *D = d;
}
AK_AVX2 void exp_sum_dot(Avx, const float* x, size_t n, float shift, double* S, double* D) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, d0 = s0, d1 = s0;
  __m256 sh = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
  const size_t n8 = n - n % 8;
  size_t j = 0;
  while (j < n8) {
    size_t end = std::min(n8, j + kBlock);
    __m256 fs = zero, fd = zero;
    for (; j < end; j += 8) {
      __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + j), sh);
      __m256 e = exp8(t);
      t = _mm256_and_ps(t, _mm256_cmp_ps(e, zero, _CMP_NEQ_UQ));  // e = 0 → t = 0 (avoids 0·−inf)
      fs = _mm256_add_ps(fs, e);
      fd = _mm256_fmadd_ps(e, t, fd);
    }
    s0 = _mm256_add_pd(s0, lo4(fs));
    s1 = _mm256_add_pd(s1, hi4(fs));
    d0 = _mm256_add_pd(d0, lo4(fd));
    d1 = _mm256_add_pd(d1, hi4(fd));
  }
  double s = hsum(_mm256_add_pd(s0, s1)), d = hsum(_mm256_add_pd(d0, d1));
  for (; j < n; ++j) {
    float t = x[j] - shift;
    float e = exp_port(t);
    s += e;
    if (e != 0.f) d += double(e) * double(t);
  }
  *S = s;
  *D = d;
}

// out = a + s·exp(x − shift) (a == nullptr: a = 0)
void exp_axpy(Port, const float* x, size_t n, float shift, float s, const float* a, float* out) {
  if (a)
    for (size_t j = 0; j < n; ++j) out[j] = a[j] + s * exp_port(x[j] - shift);
  else
    for (size_t j = 0; j < n; ++j) out[j] = s * exp_port(x[j] - shift);
}
AK_AVX2 void exp_axpy(Avx, const float* x, size_t n, float shift, float s, const float* a, float* out) {
  __m256 sh = _mm256_set1_ps(shift), sv = _mm256_set1_ps(s);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), sh));
    __m256 base = a ? _mm256_loadu_ps(a + j) : _mm256_setzero_ps();
    _mm256_storeu_ps(out + j, _mm256_fmadd_ps(sv, e, base));
  }
  for (; j < n; ++j) out[j] = (a ? a[j] : 0.f) + s * exp_port(x[j] - shift);
}

// ---- layerNorm ------------------------------------------------------------------------------------

struct LnArgs {
  const float *x, *w, *b, *dy;
  float *y, *mean, *rstd, *dx;
  double *pdw, *pdb;  // per-chunk partial sums, [chunks × C]
  size_t C, rows_per_chunk, rows;
  double eps;
};

template <class T>
AK_INLINE void ln_fwd_rows(T isa, const LnArgs& a, size_t rb, size_t re) {
  const size_t C = a.C;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * C;
    float* y = a.y + r * C;
    double mean = sum_d(isa, x, C) / double(C);
    double var = sqdev_d(isa, x, C, mean) / double(C);
    float m = float(mean), rs = float(1.0 / std::sqrt(var + a.eps));
    a.mean[r] = m;
    a.rstd[r] = rs;
    const float *w = a.w, *b = a.b;
    if (w && b)
      for (size_t j = 0; j < C; ++j) y[j] = (x[j] - m) * rs * w[j] + b[j];
    else if (w)
      for (size_t j = 0; j < C; ++j) y[j] = (x[j] - m) * rs * w[j];
    else if (b)
      for (size_t j = 0; j < C; ++j) y[j] = (x[j] - m) * rs + b[j];
    else
      for (size_t j = 0; j < C; ++j) y[j] = (x[j] - m) * rs;
  }
}
void ln_fwd_port(const LnArgs& a, size_t rb, size_t re) { ln_fwd_rows(Port{}, a, rb, re); }
AK_AVX2 void ln_fwd_avx2(const LnArgs& a, size_t rb, size_t re) { ln_fwd_rows(Avx{}, a, rb, re); }

// dweight/dbias: each chunk adds its rows into float sums, which are moved into the chunk's double partial
// sums every kFlushRows rows (the flush points depend only on the row index, so results stay deterministic).
constexpr size_t kFlushRows = 16;
AK_INLINE void flush(float* f, double* d, size_t C) {
  for (size_t j = 0; j < C; ++j) {
    d[j] += f[j];
    f[j] = 0.f;
  }
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w and x̂ = (x − mean)·rstd; dw += dy·x̂, db += dy.
template <class T>
AK_INLINE void ln_bwd_chunk(T isa, const LnArgs& a, size_t chunk) {
  const size_t C = a.C;
  size_t rb = chunk * a.rows_per_chunk, re = std::min(a.rows, rb + a.rows_per_chunk);
  double* pdw = a.pdw ? a.pdw + chunk * C : nullptr;
  double* pdb = a.pdb ? a.pdb + chunk * C : nullptr;
  std::vector<float> fw(pdw ? C : 0, 0.f), fb(pdb ? C : 0, 0.f);  // float sums of up to kFlushRows rows
  float *sw = fw.data(), *sb = fb.data();
  const float* w = a.w;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * C;
    const float* dy = a.dy + r * C;
    const float m = a.mean[r], rs = a.rstd[r];
    if (a.dx) {
      double sg, sgx;
      wdot2_d(isa, dy, w, x, double(m), C, &sg, &sgx);
      float c1 = float(sg / double(C)), c2 = float(sgx * rs / double(C));
      float* dx = a.dx + r * C;
      if (w)
        for (size_t j = 0; j < C; ++j) dx[j] = rs * (dy[j] * w[j] - c1 - (x[j] - m) * rs * c2);
      else
        for (size_t j = 0; j < C; ++j) dx[j] = rs * (dy[j] - c1 - (x[j] - m) * rs * c2);
    }
    if (pdw && pdb)
      for (size_t j = 0; j < C; ++j) {
        sw[j] += dy[j] * ((x[j] - m) * rs);
        sb[j] += dy[j];
      }
    else if (pdw)
      for (size_t j = 0; j < C; ++j) sw[j] += dy[j] * ((x[j] - m) * rs);
    else if (pdb)
      for (size_t j = 0; j < C; ++j) sb[j] += dy[j];
    if ((r - rb) % kFlushRows == kFlushRows - 1 || r + 1 == re) {
      if (pdw) flush(sw, pdw, C);
      if (pdb) flush(sb, pdb, C);
    }
  }
}
void ln_bwd_port(const LnArgs& a, size_t c) { ln_bwd_chunk(Port{}, a, c); }
AK_AVX2 void ln_bwd_avx2(const LnArgs& a, size_t c) { ln_bwd_chunk(Avx{}, a, c); }

// Row chunks for backward passes that reduce over rows: a count that depends only on the sizes.
size_t row_chunks(size_t rows, size_t C) {
  size_t by_work = (rows * C) / 16384 + 1;
  return std::max<size_t>(1, std::min({rows, by_work, size_t(32)}));
}

// out[c] = Σ_k part[k·C + c], in chunk order, as float
void reduce_chunks(const std::vector<double>& part, size_t chunks, size_t C, float* out) {
  pool::parallel_for(C, 256, [&](size_t cb, size_t ce) {
    for (size_t c = cb; c < ce; ++c) {
      double s = 0;
      for (size_t k = 0; k < chunks; ++k) s += part[k * C + c];
      out[c] = float(s);
    }
  });
}

// Optional Float32Array argument with an element-offset argument: null/undefined gives nullptr.
float* opt_f32(const Napi::CallbackInfo& info, size_t arg, size_t off_arg, size_t need) {
  if (arg >= info.Length() || info[arg].IsNull() || info[arg].IsUndefined()) return nullptr;
  return f32(info, arg, off_arg, need);
}
float* opt_f32(const Napi::CallbackInfo& info, size_t arg, size_t need) {
  if (arg >= info.Length() || info[arg].IsNull() || info[arg].IsUndefined()) return nullptr;
  return f32(info, arg, need);
}

size_t row_grain(size_t C) { return std::max<size_t>(1, 16384 / std::max<size_t>(C, 1)); }

// layerNormForward(x, xOff, w|null, wOff, b|null, bOff, y, yOff, mean, rstd, rows, C, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 10), C = int_arg(info, 11);
  LnArgs a{};
  a.C = C;
  a.eps = num_arg(info, 12);
  a.x = f32(info, 0, 1, rows * C);
  a.w = opt_f32(info, 2, 3, C);
  a.b = opt_f32(info, 4, 5, C);
  a.y = f32(info, 6, 7, rows * C);
  a.mean = f32(info, 8, rows);
  a.rstd = f32(info, 9, rows);
  if (rows == 0 || C == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, row_grain(C), [&](size_t rb, size_t re) {
    if (avx) ln_fwd_avx2(a, rb, re);
    else ln_fwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// layerNormBackward(dy, dyOff, x, xOff, w|null, wOff, mean, rstd, dx|null, dxOff, dw|null, db|null, rows, C)
// dx, dw, db are overwritten (each may be null when not wanted).
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 12), C = int_arg(info, 13);
  LnArgs a{};
  a.C = C;
  a.rows = rows;
  a.dy = f32(info, 0, 1, rows * C);
  a.x = f32(info, 2, 3, rows * C);
  a.w = opt_f32(info, 4, 5, C);
  a.mean = f32(info, 6, rows);
  a.rstd = f32(info, 7, rows);
  a.dx = opt_f32(info, 8, 9, rows * C);
  float* dw = opt_f32(info, 10, C);
  float* db = opt_f32(info, 11, C);
  if (C == 0) return info.Env().Undefined();
  if (rows == 0) {
    if (dw) std::fill(dw, dw + C, 0.f);
    if (db) std::fill(db, db + C, 0.f);
    return info.Env().Undefined();
  }
  size_t chunks = row_chunks(rows, C);
  a.rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + a.rows_per_chunk - 1) / a.rows_per_chunk;
  std::vector<double> pdw(dw ? chunks * C : 0, 0.0), pdb(db ? chunks * C : 0, 0.0);
  a.pdw = dw ? pdw.data() : nullptr;
  a.pdb = db ? pdb.data() : nullptr;
  bool avx = use_avx2();
  pool::run(chunks, [&](size_t c, int) {
    if (avx) ln_bwd_avx2(a, c);
    else ln_bwd_port(a, c);
  });
  if (dw) reduce_chunks(pdw, chunks, C, dw);
  if (db) reduce_chunks(pdb, chunks, C, db);
  return info.Env().Undefined();
}

// ---- rmsNorm --------------------------------------------------------------------------------------
// y = (x · rstd) · w, rstd = 1/sqrt(mean(x²) + eps) with mean(x²) in double.
// dx = rstd·g − x·rstd³·mean(g·x) with g = dy·w; dw += dy·(x·rstd).

template <class T>
AK_INLINE void rms_fwd_rows(T isa, const LnArgs& a, size_t rb, size_t re) {
  const size_t C = a.C;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * C;
    float* y = a.y + r * C;
    double ms = dot_d(isa, x, x, C) / double(C);
    float rs = float(1.0 / std::sqrt(ms + a.eps));
    a.rstd[r] = rs;
    const float* w = a.w;
    if (w)
      for (size_t j = 0; j < C; ++j) y[j] = (x[j] * rs) * w[j];
    else
      for (size_t j = 0; j < C; ++j) y[j] = x[j] * rs;
  }
}
void rms_fwd_port(const LnArgs& a, size_t rb, size_t re) { rms_fwd_rows(Port{}, a, rb, re); }
AK_AVX2 void rms_fwd_avx2(const LnArgs& a, size_t rb, size_t re) { rms_fwd_rows(Avx{}, a, rb, re); }

template <class T>
AK_INLINE void rms_bwd_chunk(T isa, const LnArgs& a, size_t chunk) {
  const size_t C = a.C;
  size_t rb = chunk * a.rows_per_chunk, re = std::min(a.rows, rb + a.rows_per_chunk);
  double* pdw = a.pdw ? a.pdw + chunk * C : nullptr;
  std::vector<float> fw(pdw ? C : 0, 0.f);
  float* sw = fw.data();
  const float* w = a.w;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * C;
    const float* dy = a.dy + r * C;
    const float rs = a.rstd[r];
    if (a.dx) {
      double s = wdot_d(isa, dy, w, x, 0.0, C);
      double rsd = rs;
      float k = float(rsd * rsd * rsd * s / double(C));
      float* dx = a.dx + r * C;
      if (w)
        for (size_t j = 0; j < C; ++j) dx[j] = rs * (dy[j] * w[j]) - x[j] * k;
      else
        for (size_t j = 0; j < C; ++j) dx[j] = rs * dy[j] - x[j] * k;
    }
    if (pdw) {
      for (size_t j = 0; j < C; ++j) sw[j] += dy[j] * (x[j] * rs);
      if ((r - rb) % kFlushRows == kFlushRows - 1 || r + 1 == re) flush(sw, pdw, C);
    }
  }
}
void rms_bwd_port(const LnArgs& a, size_t c) { rms_bwd_chunk(Port{}, a, c); }
AK_AVX2 void rms_bwd_avx2(const LnArgs& a, size_t c) { rms_bwd_chunk(Avx{}, a, c); }

// rmsNormForward(x, xOff, w|null, wOff, y, yOff, rstd, rows, C, eps)
Napi::Value RmsNormForward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 7), C = int_arg(info, 8);
  LnArgs a{};
  a.C = C;
  a.eps = num_arg(info, 9);
  a.x = f32(info, 0, 1, rows * C);
  a.w = opt_f32(info, 2, 3, C);
  a.y = f32(info, 4, 5, rows * C);
  a.rstd = f32(info, 6, rows);
  if (rows == 0 || C == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, row_grain(C), [&](size_t rb, size_t re) {
    if (avx) rms_fwd_avx2(a, rb, re);
    else rms_fwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// rmsNormBackward(dy, dyOff, x, xOff, w|null, wOff, rstd, dx|null, dxOff, dw|null, rows, C)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 10), C = int_arg(info, 11);
  LnArgs a{};
  a.C = C;
  a.rows = rows;
  a.dy = f32(info, 0, 1, rows * C);
  a.x = f32(info, 2, 3, rows * C);
  a.w = opt_f32(info, 4, 5, C);
  a.rstd = f32(info, 6, rows);
  a.dx = opt_f32(info, 7, 8, rows * C);
  float* dw = opt_f32(info, 9, C);
  if (C == 0) return info.Env().Undefined();
  if (rows == 0) {
    if (dw) std::fill(dw, dw + C, 0.f);
    return info.Env().Undefined();
  }
  size_t chunks = row_chunks(rows, C);
  a.rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + a.rows_per_chunk - 1) / a.rows_per_chunk;
  std::vector<double> pdw(dw ? chunks * C : 0, 0.0);
  a.pdw = dw ? pdw.data() : nullptr;
  bool avx = use_avx2();
  pool::run(chunks, [&](size_t c, int) {
    if (avx) rms_bwd_avx2(a, c);
    else rms_bwd_port(a, c);
  });
  if (dw) reduce_chunks(pdw, chunks, C, dw);
  return info.Env().Undefined();
}

// ---- softmax / logSoftmax over the last dim -------------------------------------------------------

struct SmArgs {
  const float *x, *dy, *y;
  float *out, *dx;
  size_t C;
  bool log;
};

template <class T>
AK_INLINE void sm_fwd_rows(T isa, const SmArgs& a, size_t rb, size_t re) {
  const size_t C = a.C;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * C;
    float* o = a.out + r * C;
    float m = max_row(isa, x, C);
    if (a.log) {
      double s = exp_sum(isa, x, C, m, nullptr);
      // (x − m) − log s rather than x − (m + log s): log s is small, so it rounds far less than m + log s
      float ls = float(std::log(s));
      for (size_t j = 0; j < C; ++j) o[j] = (x[j] - m) - ls;
    } else {
      double s = exp_sum(isa, x, C, m, o);
      float inv = float(1.0 / s);
      for (size_t j = 0; j < C; ++j) o[j] *= inv;
    }
  }
}
void sm_fwd_port(const SmArgs& a, size_t rb, size_t re) { sm_fwd_rows(Port{}, a, rb, re); }
AK_AVX2 void sm_fwd_avx2(const SmArgs& a, size_t rb, size_t re) { sm_fwd_rows(Avx{}, a, rb, re); }

// softmax: dx = y·(dy − Σ dy·y); logSoftmax: dx = dy − exp(y)·Σ dy
template <class T>
AK_INLINE void sm_bwd_rows(T isa, const SmArgs& a, size_t rb, size_t re) {
  const size_t C = a.C;
  for (size_t r = rb; r < re; ++r) {
    const float* y = a.y + r * C;
    const float* dy = a.dy + r * C;
    float* dx = a.dx + r * C;
    if (a.log) {
      float s = float(sum_d(isa, dy, C));
      exp_axpy(isa, y, C, 0.f, -s, dy, dx);
    } else {
      float d = float(dot_d(isa, dy, y, C));
      for (size_t j = 0; j < C; ++j) dx[j] = y[j] * (dy[j] - d);
    }
  }
}
void sm_bwd_port(const SmArgs& a, size_t rb, size_t re) { sm_bwd_rows(Port{}, a, rb, re); }
AK_AVX2 void sm_bwd_avx2(const SmArgs& a, size_t rb, size_t re) { sm_bwd_rows(Avx{}, a, rb, re); }

// softmaxForward(x, xOff, out, outOff, rows, C, log)
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 4), C = int_arg(info, 5);
  SmArgs a{};
  a.C = C;
  a.log = bool_arg(info, 6);
  a.x = f32(info, 0, 1, rows * C);
  a.out = f32(info, 2, 3, rows * C);
  if (rows == 0 || C == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, row_grain(C), [&](size_t rb, size_t re) {
    if (avx) sm_fwd_avx2(a, rb, re);
    else sm_fwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// softmaxBackward(y, yOff, dy, dyOff, dx, dxOff, rows, C, log): y is the forward output.
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 6), C = int_arg(info, 7);
  SmArgs a{};
  a.C = C;
  a.log = bool_arg(info, 8);
  a.y = f32(info, 0, 1, rows * C);
  a.dy = f32(info, 2, 3, rows * C);
  a.dx = f32(info, 4, 5, rows * C);
  if (rows == 0 || C == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, row_grain(C), [&](size_t rb, size_t re) {
    if (avx) sm_bwd_avx2(a, rb, re);
    else sm_bwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// ---- selective log-softmax and entropy ------------------------------------------------------------

struct SelArgs {
  const float* x;
  const int32_t* t;
  const float* g;
  float *out, *lse, *dx;
  size_t V;
};

template <class T>
AK_INLINE void sel_fwd_rows(T isa, const SelArgs& a, size_t rb, size_t re) {
  const size_t V = a.V;
  for (size_t r = rb; r < re; ++r) {
    int32_t t = a.t[r];
    if (t < 0) {
      a.out[r] = 0.f;
      a.lse[r] = 0.f;
      continue;
    }
    const float* x = a.x + r * V;
    float m = max_row(isa, x, V);
    double ls = std::log(exp_sum(isa, x, V, m, nullptr));
    a.lse[r] = float(double(m) + ls);
    a.out[r] = float((double(x[t]) - double(m)) - ls);
  }
}
void sel_fwd_port(const SelArgs& a, size_t rb, size_t re) { sel_fwd_rows(Port{}, a, rb, re); }
AK_AVX2 void sel_fwd_avx2(const SelArgs& a, size_t rb, size_t re) { sel_fwd_rows(Avx{}, a, rb, re); }

// d logits = g·(onehot(t) − exp(x − lse)), one pass over the row; ignored rows get zeros.
template <class T>
AK_INLINE void sel_bwd_rows(T isa, const SelArgs& a, size_t rb, size_t re) {
  const size_t V = a.V;
  for (size_t r = rb; r < re; ++r) {
    int32_t t = a.t[r];
    float* dx = a.dx + r * V;
    if (t < 0) {
      std::memset(dx, 0, V * sizeof(float));
      continue;
    }
    float g = a.g[r];
    exp_axpy(isa, a.x + r * V, V, a.lse[r], -g, nullptr, dx);
    dx[t] += g;
  }
}
void sel_bwd_port(const SelArgs& a, size_t rb, size_t re) { sel_bwd_rows(Port{}, a, rb, re); }
AK_AVX2 void sel_bwd_avx2(const SelArgs& a, size_t rb, size_t re) { sel_bwd_rows(Avx{}, a, rb, re); }

void check_targets(const Napi::Env& env, const int32_t* t, size_t rows, size_t V) {
  for (size_t r = 0; r < rows; ++r)
    if (t[r] >= 0 && static_cast<size_t>(t[r]) >= V)
      fail(env, "selectiveLogSoftmax: target " + std::to_string(t[r]) + " (row " + std::to_string(r) +
                    ") is out of range for vocabulary size " + std::to_string(V));
}

// selectiveLogSoftmaxForward(logits, off, targets, out, lse, rows, V): out[r] = log softmax(row r)[t_r]
// (0 where t_r < 0); lse[r] = log Σ exp(row r) is kept for the backward pass.
Napi::Value SelectiveLogSoftmaxForward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 5), V = int_arg(info, 6);
  SelArgs a{};
  a.V = V;
  a.x = f32(info, 0, 1, rows * V);
  a.t = i32(info, 2, rows);
  a.out = f32(info, 3, rows);
  a.lse = f32(info, 4, rows);
  check_targets(info.Env(), a.t, rows, V);
  if (rows == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, std::max<size_t>(1, 65536 / std::max<size_t>(V, 1)), [&](size_t rb, size_t re) {
    if (avx) sel_fwd_avx2(a, rb, re);
    else sel_fwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// selectiveLogSoftmaxBackward(logits, off, targets, lse, g, gOff, dx, dxOff, rows, V): dx is overwritten.
Napi::Value SelectiveLogSoftmaxBackward(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 8), V = int_arg(info, 9);
  SelArgs a{};
  a.V = V;
  a.x = f32(info, 0, 1, rows * V);
  a.t = i32(info, 2, rows);
  a.lse = f32(info, 3, rows);
  a.g = f32(info, 4, 5, rows);
  a.dx = f32(info, 6, 7, rows * V);
  check_targets(info.Env(), a.t, rows, V);
  if (rows == 0 || V == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, std::max<size_t>(1, 65536 / V), [&](size_t rb, size_t re) {
    if (avx) sel_bwd_avx2(a, rb, re);
    else sel_bwd_port(a, rb, re);
  });
  return info.Env().Undefined();
}

template <class T>
AK_INLINE void ent_rows(T isa, const SelArgs& a, size_t rb, size_t re) {
  const size_t V = a.V;
  for (size_t r = rb; r < re; ++r) {
    const float* x = a.x + r * V;
    float m = max_row(isa, x, V);
    double S, D;
    exp_sum_dot(isa, x, V, m, &S, &D);
    a.out[r] = float(std::log(S) - D / S);
  }
}
void ent_port(const SelArgs& a, size_t rb, size_t re) { ent_rows(Port{}, a, rb, re); }
AK_AVX2 void ent_avx2(const SelArgs& a, size_t rb, size_t re) { ent_rows(Avx{}, a, rb, re); }

// entropyFromLogits(logits, off, out, rows, V): out[r] = −Σ p log p of softmax(row r)
Napi::Value EntropyFromLogits(const Napi::CallbackInfo& info) {
  size_t rows = int_arg(info, 3), V = int_arg(info, 4);
  SelArgs a{};
  a.V = V;
  a.x = f32(info, 0, 1, rows * V);
  a.out = f32(info, 2, rows);
  if (rows == 0 || V == 0) return info.Env().Undefined();
  bool avx = use_avx2();
  pool::parallel_for(rows, std::max<size_t>(1, 65536 / V), [&](size_t rb, size_t re) {
    if (avx) ent_avx2(a, rb, re);
    else ent_port(a, rb, re);
  });
  return info.Env().Undefined();
}

// expF32(x, out, n): the kernels' float32 exp over an array (for accuracy tests).
void exp_array_port(const float* x, float* o, size_t n) { exp_axpy(Port{}, x, n, 0.f, 1.f, nullptr, o); }
AK_AVX2 void exp_array_avx2(const float* x, float* o, size_t n) { exp_axpy(Avx{}, x, n, 0.f, 1.f, nullptr, o); }
Napi::Value ExpF32(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 2);
  const float* x = f32(info, 0, n);
  float* o = f32(info, 1, n);
  if (use_avx2()) exp_array_avx2(x, o, n);
  else exp_array_port(x, o, n);
  return info.Env().Undefined();
}

// ---- embedding ------------------------------------------------------------------------------------

void check_ids(const Napi::Env& env, const int32_t* ids, size_t n, size_t V) {
  for (size_t i = 0; i < n; ++i)
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= V)
      fail(env, "embedding: id " + std::to_string(ids[i]) + " (position " + std::to_string(i) +
                    ") is out of range for vocabulary size " + std::to_string(V));
}

// embeddingForward(w, wOff, ids, out, outOff, n, V, C): out[i, :] = w[ids[i], :]
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 5), V = int_arg(info, 6), C = int_arg(info, 7);
  const float* w = f32(info, 0, 1, V * C);
  const int32_t* ids = i32(info, 2, n);
  float* out = f32(info, 3, 4, n * C);
  check_ids(info.Env(), ids, n, V);
  if (n == 0 || C == 0) return info.Env().Undefined();
  pool::parallel_for(n, row_grain(C), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) std::memcpy(out + i * C, w + size_t(ids[i]) * C, C * sizeof(float));
  });
  return info.Env().Undefined();
}

// embeddingBackward(g, gOff, ids, dw, dwOff, n, V, C): dw[ids[i], :] += g[i, :] for every i.
// Parallel over column blocks of C: each task owns its columns of every row of dw and adds the rows of g
// in id order, so there are no races, no per-thread copies of dw, and the sums do not depend on threads.
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  size_t n = int_arg(info, 5), V = int_arg(info, 6), C = int_arg(info, 7);
  const float* g = f32(info, 0, 1, n * C);
  const int32_t* ids = i32(info, 2, n);
  float* dw = f32(info, 3, 4, V * C);
  check_ids(info.Env(), ids, n, V);
  if (n == 0 || C == 0) return info.Env().Undefined();
  size_t tasks_wanted = size_t(pool::threads()) * 4;
  size_t width = (C + tasks_wanted - 1) / tasks_wanted;
  width = std::max<size_t>(16, (width + 15) / 16 * 16);  // whole cache lines
  if (n * C < 32768) width = C;                           // tiny: one task
  size_t blocks = (C + width - 1) / width;
  pool::run(blocks, [&](size_t blk, int) {
    size_t c0 = blk * width, c1 = std::min(C, c0 + width), len = c1 - c0;
    for (size_t i = 0; i < n; ++i) {
      float* d = dw + size_t(ids[i]) * C + c0;
      const float* s = g + i * C + c0;
      for (size_t j = 0; j < len; ++j) d[j] += s[j];
    }
  });
  return info.Env().Undefined();
}

}  // namespace

void InitNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNormForward", Napi::Function::New(env, LayerNormForward));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("rmsNormForward", Napi::Function::New(env, RmsNormForward));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward));
  exports.Set("softmaxForward", Napi::Function::New(env, SoftmaxForward));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward));
  exports.Set("selectiveLogSoftmaxForward", Napi::Function::New(env, SelectiveLogSoftmaxForward));
  exports.Set("selectiveLogSoftmaxBackward", Napi::Function::New(env, SelectiveLogSoftmaxBackward));
  exports.Set("entropyFromLogits", Napi::Function::New(env, EntropyFromLogits));
  exports.Set("expF32", Napi::Function::New(env, ExpF32));
  exports.Set("embeddingForward", Napi::Function::New(env, EmbeddingForward));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward));
}

}  // namespace ak

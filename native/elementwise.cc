// Kernel group: elementwise maps and sum reductions.
//
// ewMap runs one elementwise op (unary, binary, ternary; one or two outputs) over an output shape, reading
// each input through its own strides (0 on broadcast dims), so broadcasting, transposed and sliced views need
// no copies. Dims are coalesced first, so the common cases (same-shape contiguous, [N, C] with [C], a scalar)
// become one flat parallel pass over contiguous pointers. Inner-dim inputs that are neither contiguous nor
// broadcast are gathered into small per-thread blocks.
//
// The math (exp, log, tanh, erfc) is written once as branch-free float code that the compiler vectorises; it
// is compiled twice, for baseline x86-64 and for AVX2+FMA (chosen at run time), so both paths agree to rounding.
//
// reduceSum sums a contiguous [outer, R, inner] array over R in double precision, in fixed chunks combined in
// a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>
#include <immintrin.h>

#include "common.h"
#include "pool.h"

namespace ak {
namespace {

#define AK_INLINE inline __attribute__((always_inline))

AK_INLINE uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
AK_INLINE float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// ---- float32 math -----------------------------------------------------------------------------------

// e^x: x = n·ln2 + r with |r| <= ln2/2 (Cody–Waite split of ln2), e^r by its Taylor series to degree 6
// (truncation < 2e-7 relative), 2^n applied in two halves so results near overflow and in the subnormal
// range round correctly. NaN propagates; large inputs give inf, very negative ones 0.
AK_INLINE float fexp(float x) {
  x = x > 89.f ? 89.f : x;
  x = x < -104.f ? -104.f : x;
  const float magic = 12582912.f;  // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
  float t = x * 1.44269504088896341f + magic;
  float n = t - magic;
  int32_t ni = int32_t(bits_of(t) - bits_of(magic));
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723e-6f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = float_of(uint32_t(n1 + 127) << 23), s2 = float_of(uint32_t(n2 + 127) << 23);
  return (p * s1) * s2;
}

// ln x: x = m·2^e with m in [√½, √2), ln m = 2·atanh((m−1)/(m+1)) by its odd series (|f| <= 0.172, so five
// terms leave < 1e-8 relative). Subnormals are prescaled; 0 → −inf, negatives and NaN → NaN, inf → inf.
AK_INLINE float flog(float x) {
  bool tiny = x < 1.17549435e-38f;
  float xs = tiny ? x * 8388608.f : x;
  uint32_t u = bits_of(xs);
  int32_t e = int32_t((u >> 23) & 0xff) - 127;
  e = tiny ? e - 23 : e;
  float m = float_of((u & 0x7fffffu) | 0x3f800000u);
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  float f = (m - 1.f) / (m + 1.f);
  float s = f * f;
  float q = 1.f / 9.f;
  q = q * s + 1.f / 7.f;
  q = q * s + 1.f / 5.f;
  q = q * s + 1.f / 3.f;
  q = q * s + 1.f;
  float lm = 2.f * f * q;
  float ef = float(e);
  float r = ef * 0.693145751953125f + (ef * 1.42860682030941723e-6f + lm);
  const float inf = std::numeric_limits<float>::infinity();
  r = x == inf ? inf : r;
  r = x == 0.f ? -inf : r;
  r = x < 0.f ? std::numeric_limits<float>::quiet_NaN() : r;
  r = x != x ? x : r;
  return r;
}

// ln(1 + y) for y >= 0, accurate for tiny y: ln(u)·y/(u−1) with u = 1 + y rounded.
AK_INLINE float flog1p_pos(float y) {
  float u = 1.f + y;
  float d = u - 1.f;
  return d == 0.f ? y : flog(u) * (y / d);
}

AK_INLINE float fsigmoid(float x) { return 1.f / (1.f + fexp(-x)); }

// tanh: for |x| < 0.625 x + x³·Q(x²) (least-squares fit made for this file, < 1e-7 relative), otherwise
// ±(1 − 2/(e^{2|x|} + 1)).
AK_INLINE float ftanh(float x) {
  float ax = std::fabs(x);
  float s = x * x;
  float q = -0.005718891533480282f;
  q = q * s + 0.020653063925067522f;
  q = q * s + -0.053744640344035075f;
  q = q * s + 0.1333151246851687f;
  q = q * s + -0.3333328521293426f;
  float small = x + (x * s) * q;
  float big = 1.f - 2.f / (fexp(2.f * ax) + 1.f);
  big = std::copysign(big, x);
  return ax < 0.625f ? small : big;
}

// Φ(x), the standard normal CDF, = ½·erfc(−x/√2). erfc(z) for z >= 0 is t·exp(−z² + P(t)), t = 1/(1 + z/2),
// with P a degree-9 least-squares fit made for this file (relative error < 5e-8 in exact arithmetic, about
// 1e-6 in float32 for |x| < 5, from rounding x²); for x > 0 Φ = 1 − ½·erfc(|z|).
AK_INLINE float fphi(float x) {
  float z = std::fabs(x) * 0.70710678118654752f;
  float t = 1.f / (1.f + 0.5f * z);
  float p = 0.14575536170742928f;
  p = p * t + -0.6855766878717885f;
  p = p * t + 1.1686233099314038f;
  p = p * t + -0.7131960548711003f;
  p = p * t + -0.06517908714548576f;
  p = p * t + -0.007427727496086895f;
  p = p * t + 0.03782295773053022f;
  p = p * t + 0.38590460595163667f;
  p = p * t + 0.9987263892772716f;
  p = p * t + -1.2654530195442755f;
  float ec = t * fexp(p - 0.5f * (x * x));  // erfc(|z|)
  return x > 0.f ? 1.f - 0.5f * ec : 0.5f * ec;
}

constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluC = 0.044715f;

// ---- dropout hash -----------------------------------------------------------------------------------

AK_INLINE uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// ---- ops ----------------------------------------------------------------------------------------------
// Each op is a struct: kIn inputs, kOut outputs (1, or 2 for the fused backward passes that give both
// gradients), kHeavy for transcendental ops (smaller parallel grain), and f(...) on one element.

struct Params {
  float f0, f1, f2;
  // dropout
  uint32_t k1 = 0, seed_hi = 0;
  int32_t thr = 0;
  float scale = 1.f;
};

#define UNARY(NAME, HEAVY, EXPR)                                     \
  struct NAME {                                                      \
    static constexpr int kIn = 1, kOut = 1;                          \
    static constexpr bool kHeavy = HEAVY, kIndexed = false;          \
    static AK_INLINE float f(const Params& P, float a) {             \
      (void)P;                                                       \
      return EXPR;                                                   \
    }                                                                \
  };
#define BINARY(NAME, HEAVY, EXPR)                                    \
  struct NAME {                                                      \
    static constexpr int kIn = 2, kOut = 1;                          \
    static constexpr bool kHeavy = HEAVY, kIndexed = false;          \
    static AK_INLINE float f(const Params& P, float a, float b) {    \
      (void)P;                                                       \
      return EXPR;                                                   \
    }                                                                \
  };

// forward, one input
UNARY(OpCopy, false, a)
UNARY(OpNeg, false, -a)
UNARY(OpScale, false, a * P.f0)
UNARY(OpExp, true, fexp(a))
UNARY(OpLog, true, flog(a))
UNARY(OpSqrt, false, std::sqrt(a))
UNARY(OpSquare, false, a * a)
UNARY(OpAbs, false, std::fabs(a))
UNARY(OpSigmoid, true, fsigmoid(a))
UNARY(OpLogSigmoid, true, (a < 0.f ? a : 0.f) - flog1p_pos(fexp(-std::fabs(a))))
UNARY(OpTanh, true, ftanh(a))
UNARY(OpRelu, false, a > 0.f ? a : (a != a ? a : 0.f))
UNARY(OpGeluTanh, true, a / (1.f + fexp(-2.f * kGeluK * (a + kGeluC * a * a * a))))
UNARY(OpGeluErf, true, a * fphi(a))
UNARY(OpSilu, true, a / (1.f + fexp(-a)))

struct OpClamp {  // f0 = min, f1 = max (±inf when absent); NaN propagates; min > max gives max, as PyTorch
  static constexpr int kIn = 1, kOut = 1;
  static constexpr bool kHeavy = false, kIndexed = false;
  static AK_INLINE float f(const Params& P, float a) {
    float r = a < P.f0 ? P.f0 : a;
    return r > P.f1 ? P.f1 : r;
  }
};

// forward, two inputs
BINARY(OpAdd, false, a + b)
BINARY(OpSub, false, a - b)
BINARY(OpMul, false, a * b)
BINARY(OpDiv, false, a / b)
BINARY(OpMinimum, false, a != a ? a : (b != b ? b : (a < b ? a : b)))
BINARY(OpMaximum, false, a != a ? a : (b != b ? b : (a > b ? a : b)))
BINARY(OpSwiglu, true, a / (1.f + fexp(-a)) * b)

// gradients of one-input ops: a = g (output gradient), b = x (input) or y (output), as named
BINARY(OpLogBwd, false, a / b)                            // (g, x)
BINARY(OpExpBwd, false, a * b)                            // (g, y)
BINARY(OpSqrtBwd, false, a * 0.5f / b)                    // (g, y)
BINARY(OpSquareBwd, false, 2.f * a * b)                   // (g, x)
BINARY(OpAbsBwd, false, b > 0.f ? a : (b < 0.f ? -a : 0.f))  // (g, x)
BINARY(OpSigmoidBwd, false, a * b * (1.f - b))            // (g, y)
BINARY(OpLogSigmoidBwd, true, a / (1.f + fexp(b)))        // (g, x): g·σ(−x)
BINARY(OpTanhBwd, false, a * (1.f - b * b))               // (g, y)
BINARY(OpReluBwd, false, b > 0.f ? a : 0.f)               // (g, x)
BINARY(OpSiluBwd, true, a * fsigmoid(b) * (1.f + b * (1.f - fsigmoid(b))))  // (g, x)
BINARY(OpGeluErfBwd, true, a * (fphi(b) + b * kInvSqrt2Pi * fexp(-0.5f * b * b)))  // (g, x)

struct OpGeluTanhBwd {  // (g, x): d/dx x·σ(2u), u = k(x + c·x³)
  static constexpr int kIn = 2, kOut = 1;
  static constexpr bool kHeavy = true, kIndexed = false;
  static AK_INLINE float f(const Params&, float g, float x) {
    float x2 = x * x;
    float s = 1.f / (1.f + fexp(-2.f * kGeluK * (x + kGeluC * x2 * x)));
    float du2 = 2.f * kGeluK * (1.f + 3.f * kGeluC * x2);
    return g * (s + x * s * (1.f - s) * du2);
  }
};
struct OpClampBwd {  // (g, x): g where min <= x <= max
  static constexpr int kIn = 2, kOut = 1;
  static constexpr bool kHeavy = false, kIndexed = false;
  static AK_INLINE float f(const Params& P, float g, float x) { return (x >= P.f0 && x <= P.f1) ? g : 0.f; }
};

// three inputs
struct OpWhere {  // (cond, a, b)
  static constexpr int kIn = 3, kOut = 1;
  static constexpr bool kHeavy = false, kIndexed = false;
  static AK_INLINE float f(const Params&, float c, float a, float b) { return c != 0.f ? a : b; }
};

// fused backward passes giving both input gradients (either output may be skipped)
#define BACKWARD2(NAME, HEAVY, IN, BODY)                                                                   \
  struct NAME {                                                                                          \
    static constexpr int kIn = IN, kOut = 2;                                                             \
    static constexpr bool kHeavy = HEAVY, kIndexed = false;                                              \
    static AK_INLINE void f(const Params& P, float g, float a, float b, float& r0, float& r1) {          \
      (void)P;                                                                                           \
      (void)b;                                                                                           \
      BODY                                                                                               \
    }                                                                                                    \
  };
BACKWARD2(OpMulBwd, false, 3, r0 = g * b; r1 = g * a;)
BACKWARD2(OpDivBwd, false, 3, float q = g / b; r0 = q; r1 = -q * (a / b);)
BACKWARD2(OpMinBwd, false, 3,
          r0 = a < b ? g : (a == b ? 0.5f * g : 0.f); r1 = b < a ? g : (a == b ? 0.5f * g : 0.f);)
BACKWARD2(OpMaxBwd, false, 3,
          r0 = a > b ? g : (a == b ? 0.5f * g : 0.f); r1 = b > a ? g : (a == b ? 0.5f * g : 0.f);)
BACKWARD2(OpSwigluBwd, true, 3, float s = fsigmoid(a); r1 = g * a * s; r0 = g * b * s * (1.f + a * (1.f - s));)
BACKWARD2(OpWhereBwd, false, 2, r0 = a != 0.f ? g : 0.f; r1 = a != 0.f ? 0.f : g;)  // (g, cond)

// Dropout: element i is dropped when the top 24 bits of fmix32(fmix32(lo(i) ^ k1) + k2) fall below
// round(p·2^24), with k1 = fmix32(seed_lo ^ 0x9e3779b9) and k2 = fmix32(seed_hi + hi(i)·0x9e3779b9 + 0x3c6ef372);
// kept elements are scaled by 1/(1−p). The same function of (seed, index) serves forward and backward.
struct OpDropout {
  static constexpr int kIn = 1, kOut = 1;
  static constexpr bool kHeavy = false, kIndexed = true;
  static AK_INLINE float f(uint32_t k1, uint32_t k2, int32_t thr, float scale, uint32_t lo, float a) {
    uint32_t h = fmix32(fmix32(lo ^ k1) + k2);
    float v = a * scale;
    return int32_t(h >> 8) >= thr ? v : 0.f;
  }
};

// ---- the map driver -------------------------------------------------------------------------------

constexpr size_t kBlock = 512;

struct Block {
  float* o0;
  float* o1;
  const float* in[3];
  size_t n;
  uint64_t base;  // flat output index of the block's first element
};
using BlockFn = void (*)(const Params&, const Block&);

template <class Op>
AK_INLINE void block_body(const Params& P, const Block& B) {
  const size_t n = B.n;
  const float* a = B.in[0];
  const float* b = B.in[1];
  const float* c = B.in[2];
  if constexpr (Op::kIndexed) {
    float* __restrict o = B.o0;
    size_t i = 0;
    while (i < n) {
      uint64_t idx = B.base + i;
      uint32_t lo0 = uint32_t(idx), hi = uint32_t(idx >> 32);
      uint64_t room = (uint64_t(1) << 32) - lo0;
      size_t lim = std::min<uint64_t>(n - i, room);
      uint32_t k2 = fmix32(P.seed_hi + hi * 0x9e3779b9u + 0x3c6ef372u);
      const float* ap = a + i;
      float* __restrict op = o + i;
      const uint32_t k1 = P.k1;
      const int32_t thr = P.thr;
      const float sc = P.scale;
      for (size_t j = 0; j < lim; ++j) op[j] = Op::f(k1, k2, thr, sc, lo0 + uint32_t(j), ap[j]);
      i += lim;
    }
  } else if constexpr (Op::kOut == 1) {
    float* __restrict o = B.o0;
    if constexpr (Op::kIn == 1) {
      for (size_t i = 0; i < n; ++i) o[i] = Op::f(P, a[i]);
    } else if constexpr (Op::kIn == 2) {
      for (size_t i = 0; i < n; ++i) o[i] = Op::f(P, a[i], b[i]);
    } else {
      for (size_t i = 0; i < n; ++i) o[i] = Op::f(P, a[i], b[i], c[i]);
    }
  } else {
    float* __restrict o0 = B.o0;
    float* __restrict o1 = B.o1;
    float r0, r1;
    if (o0 && o1) {
      for (size_t i = 0; i < n; ++i) {
        Op::f(P, a[i], b[i], Op::kIn == 3 ? c[i] : 0.f, r0, r1);
        o0[i] = r0;
        o1[i] = r1;
      }
    } else if (o0) {
      for (size_t i = 0; i < n; ++i) {
        Op::f(P, a[i], b[i], Op::kIn == 3 ? c[i] : 0.f, r0, r1);
        o0[i] = r0;
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        Op::f(P, a[i], b[i], Op::kIn == 3 ? c[i] : 0.f, r0, r1);
        o1[i] = r1;
      }
    }
  }
}

template <class Op>
void block_portable(const Params& P, const Block& B) {
  block_body<Op>(P, B);
}
template <class Op>
AK_AVX2 void block_avx2(const Params& P, const Block& B) {
  block_body<Op>(P, B);
}

constexpr int kMaxDims = 16;

struct MapPlan {
  int nd = 0;
  int nin = 0;
  int64_t shape[kMaxDims];
  int64_t stride[3][kMaxDims];
  const float* base[3];
  float* out[2];
  size_t n = 0;
};

// Drops size-1 dims and merges neighbours whose strides chain for every input (the output is contiguous).
void coalesce(MapPlan& m) {
  int w = 0;
  for (int d = 0; d < m.nd; ++d) {
    if (m.shape[d] == 1) continue;
    if (w > 0) {
      bool merge = true;
      for (int k = 0; k < m.nin; ++k)
        if (m.stride[k][w - 1] != m.stride[k][d] * m.shape[d]) merge = false;
      if (merge) {
        m.shape[w - 1] *= m.shape[d];
        for (int k = 0; k < m.nin; ++k) m.stride[k][w - 1] = m.stride[k][d];
        continue;
      }
    }
    m.shape[w] = m.shape[d];
    for (int k = 0; k < m.nin; ++k) m.stride[k][w] = m.stride[k][d];
    ++w;
  }
  if (w == 0) {
    m.shape[0] = 1;
    for (int k = 0; k < m.nin; ++k) m.stride[k][0] = 0;
    w = 1;
  }
  m.nd = w;
}

void run_plan(const MapPlan& m, const Params& P, BlockFn fn, size_t grain) {
  const int nd = m.nd, nin = m.nin;
  const size_t inner = size_t(m.shape[nd - 1]);
  pool::parallel_for(m.n, grain, [&](size_t b, size_t e) {
    alignas(64) float buf[3][kBlock];
    const float* filled[3] = {nullptr, nullptr, nullptr};
    int64_t idx[kMaxDims];
    int64_t row_off[3];
    size_t row = b / inner, col = b % inner;
    {
      size_t rem = row;
      for (int k = 0; k < nin; ++k) row_off[k] = 0;
      for (int d = nd - 2; d >= 0; --d) {
        idx[d] = int64_t(rem % size_t(m.shape[d]));
        rem /= size_t(m.shape[d]);
        for (int k = 0; k < nin; ++k) row_off[k] += idx[d] * m.stride[k][d];
      }
    }
    size_t pos = b;
    while (pos < e) {
      size_t len = std::min(inner - col, e - pos);
      for (size_t s = 0; s < len; s += kBlock) {
        size_t L = std::min(kBlock, len - s);
        Block B;
        B.o0 = m.out[0] ? m.out[0] + pos + s : nullptr;
        B.o1 = m.out[1] ? m.out[1] + pos + s : nullptr;
        B.n = L;
        B.base = pos + s;
        B.in[0] = B.in[1] = B.in[2] = nullptr;
        for (int k = 0; k < nin; ++k) {
          int64_t is = m.stride[k][nd - 1];
          const float* src = m.base[k] + row_off[k] + int64_t(col + s) * is;
          if (is == 1) {
            B.in[k] = src;
          } else if (is == 0) {
            if (filled[k] != src) {
              float v = *src;
              for (size_t j = 0; j < kBlock; ++j) buf[k][j] = v;
              filled[k] = src;
            }
            B.in[k] = buf[k];
          } else {
            for (size_t j = 0; j < L; ++j) buf[k][j] = src[int64_t(j) * is];
            filled[k] = nullptr;
            B.in[k] = buf[k];
          }
        }
        fn(P, B);
      }
      pos += len;
      col = 0;
      // next row: odometer over the outer dims
      for (int d = nd - 2; d >= 0; --d) {
        ++idx[d];
        for (int k = 0; k < nin; ++k) row_off[k] += m.stride[k][d];
        if (idx[d] < m.shape[d]) break;
        for (int k = 0; k < nin; ++k) row_off[k] -= m.shape[d] * m.stride[k][d];
        idx[d] = 0;
      }
    }
  });
}

struct OpInfo {
  const char* name;
  int nin, nout;
  BlockFn portable, avx2;
  bool heavy;
  void (*prepare)(Params&, const double*);
};

void prep_none(Params&, const double*) {}
void prep_dropout(Params& P, const double* d) {
  double p = d[0];
  uint32_t slo = uint32_t(d[1]), shi = uint32_t(d[2]);
  P.k1 = fmix32(slo ^ 0x9e3779b9u);
  P.seed_hi = shi;
  P.thr = int32_t(std::llround(p * 16777216.0));
  P.scale = p >= 1.0 ? 0.f : float(1.0 / (1.0 - p));
}

template <class Op>
OpInfo info_of(const char* name, void (*prep)(Params&, const double*) = prep_none) {
  return OpInfo{name, Op::kIn, Op::kOut, &block_portable<Op>, &block_avx2<Op>, Op::kHeavy, prep};
}

const std::vector<OpInfo>& ops() {
  static const std::vector<OpInfo> table = {
      info_of<OpCopy>("copy"),
      info_of<OpNeg>("neg"),
      info_of<OpScale>("scale"),
      info_of<OpExp>("exp"),
      info_of<OpLog>("log"),
      info_of<OpSqrt>("sqrt"),
      info_of<OpSquare>("square"),
      info_of<OpAbs>("abs"),
      info_of<OpSigmoid>("sigmoid"),
      info_of<OpLogSigmoid>("logsigmoid"),
      info_of<OpTanh>("tanh"),
      info_of<OpRelu>("relu"),
      info_of<OpGeluTanh>("gelu_tanh"),
      info_of<OpGeluErf>("gelu_erf"),
      info_of<OpSilu>("silu"),
      info_of<OpClamp>("clamp"),
      info_of<OpDropout>("dropout", prep_dropout),
      info_of<OpAdd>("add"),
      info_of<OpSub>("sub"),
      info_of<OpMul>("mul"),
      info_of<OpDiv>("div"),
      info_of<OpMinimum>("minimum"),
      info_of<OpMaximum>("maximum"),
      info_of<OpSwiglu>("swiglu"),
      info_of<OpLogBwd>("log_bwd"),
      info_of<OpExpBwd>("exp_bwd"),
      info_of<OpSqrtBwd>("sqrt_bwd"),
      info_of<OpSquareBwd>("square_bwd"),
      info_of<OpAbsBwd>("abs_bwd"),
      info_of<OpSigmoidBwd>("sigmoid_bwd"),
      info_of<OpLogSigmoidBwd>("logsigmoid_bwd"),
      info_of<OpTanhBwd>("tanh_bwd"),
      info_of<OpReluBwd>("relu_bwd"),
      info_of<OpGeluTanhBwd>("gelu_tanh_bwd"),
      info_of<OpGeluErfBwd>("gelu_erf_bwd"),
      info_of<OpSiluBwd>("silu_bwd"),
      info_of<OpClampBwd>("clamp_bwd"),
      info_of<OpWhere>("where"),
      info_of<OpMulBwd>("mul_bwd"),
      info_of<OpDivBwd>("div_bwd"),
      info_of<OpMinBwd>("minimum_bwd"),
      info_of<OpMaxBwd>("maximum_bwd"),
      info_of<OpSwigluBwd>("swiglu_bwd"),
      info_of<OpWhereBwd>("where_bwd"),
  };
  return table;
}

std::vector<int64_t> int_list(const Napi::Env& env, const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) fail(env, "ewMap: " + what + " must be an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) fail(env, "ewMap: " + what + " must be an array of integers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != std::floor(d) || d > 9.0e15) fail(env, "ewMap: " + what + " must hold non-negative integers");
    out[i] = int64_t(d);
  }
  return out;
}

// ewOpNames() -> string[]: the op codes ewMap takes are indices into this list.
Napi::Value EwOpNames(const Napi::CallbackInfo& info) {
  const auto& t = ops();
  Napi::Array a = Napi::Array::New(info.Env(), t.size());
  for (uint32_t i = 0; i < t.size(); ++i) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("name", t[i].name);
    o.Set("inputs", t[i].nin);
    o.Set("outputs", t[i].nout);
    a.Set(i, o);
  }
  return a;
}

// ewMap(op, shape, p0, p1, p2, out0, out0Off, out1, out1Off, a, aOff, aStrides, b, bOff, bStrides, c, cOff, cStrides)
// Outputs are contiguous over `shape` (either may be null for two-output ops, not both); each input is read
// at offset + Σ index·stride (strides given per output dim, 0 where broadcast; null for unused inputs).
Napi::Value EwMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& table = ops();
  int64_t code = int_arg(info, 0);
  if (code < 0 || size_t(code) >= table.size()) fail(env, "ewMap: unknown op " + std::to_string(code));
  const OpInfo& op = table[size_t(code)];
  std::vector<int64_t> shape = int_list(env, info[1], std::string(op.name) + " shape");
  if (shape.size() > size_t(kMaxDims)) fail(env, std::string("ewMap ") + op.name + ": more than 16 dims");
  MapPlan m;
  m.nd = int(shape.size());
  m.nin = op.nin;
  m.n = 1;
  for (int d = 0; d < m.nd; ++d) {
    m.shape[d] = shape[d];
    m.n *= size_t(shape[d]);
  }
  double dp[3] = {num_arg(info, 2), num_arg(info, 3), num_arg(info, 4)};
  Params P;
  P.f0 = float(dp[0]);
  P.f1 = float(dp[1]);
  P.f2 = float(dp[2]);
  op.prepare(P, dp);
  for (int o = 0; o < 2; ++o) {
    size_t arg = 5 + 2 * o;
    if (o >= op.nout || arg >= info.Length() || info[arg].IsNull() || info[arg].IsUndefined()) {
      m.out[o] = nullptr;
      continue;
    }
    m.out[o] = f32(info, arg, arg + 1, m.n);
  }
  if (!m.out[0] && !m.out[1]) fail(env, std::string("ewMap ") + op.name + ": no output given");
  for (int k = 0; k < op.nin; ++k) {
    size_t arg = 9 + 3 * k;
    std::vector<int64_t> st = int_list(env, info[arg + 2], std::string(op.name) + " input " + std::to_string(k) + " strides");
    if (st.size() != shape.size())
      fail(env, std::string("ewMap ") + op.name + ": input " + std::to_string(k) + " has " + std::to_string(st.size()) +
                    " strides for " + std::to_string(shape.size()) + " dims");
    size_t span = 0;
    for (int d = 0; d < m.nd; ++d) {
      m.stride[k][d] = st[d];
      if (shape[d] > 0) span += size_t(shape[d] - 1) * size_t(st[d]);
    }
    m.base[k] = f32(info, arg, arg + 1, m.n == 0 ? 0 : span + 1);
  }
  if (m.n == 0) return env.Undefined();
  coalesce(m);
  BlockFn fn = use_avx2() ? op.avx2 : op.portable;
  run_plan(m, P, fn, op.heavy ? 4096 : 32768);
  return env.Undefined();
}

// ---- reductions -------------------------------------------------------------------------------------

double sum_row_portable(const float* x, size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; ++i) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

AK_AVX2 double sum_row_avx2(const float* x, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
    a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
  }
  for (; i + 4 <= n; i += 4) a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
  __m256d s = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
  alignas(32) double t[4];
  _mm256_store_pd(t, s);
  double r = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; ++i) r += x[i];
  return r;
}

// acc[j] += Σ_r x[r·ld + j] for j < n over `rows` rows (column sums into double accumulators), four rows a pass.
template <int kDummy>
AK_INLINE void acc_rows_body(double* __restrict acc, const float* __restrict x, size_t ld, size_t rows, size_t n) {
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* x0 = x + r * ld;
    const float* x1 = x0 + ld;
    const float* x2 = x1 + ld;
    const float* x3 = x2 + ld;
    for (size_t j = 0; j < n; ++j) acc[j] += (double(x0[j]) + double(x1[j])) + (double(x2[j]) + double(x3[j]));
  }
  for (; r < rows; ++r) {
    const float* x0 = x + r * ld;
    for (size_t j = 0; j < n; ++j) acc[j] += double(x0[j]);
  }
}
void acc_rows_portable(double* acc, const float* x, size_t ld, size_t rows, size_t n) { acc_rows_body<0>(acc, x, ld, rows, n); }
AK_AVX2 void acc_rows_avx2(double* acc, const float* x, size_t ld, size_t rows, size_t n) { acc_rows_body<0>(acc, x, ld, rows, n); }

constexpr size_t kRowChunk = 16384;  // elements of one row summed by one task (inner == 1)
constexpr size_t kColBlock = 256;    // columns per task (inner > 1)
constexpr size_t kRedChunk = 128;    // reduced rows per task (inner > 1)

// reduceSum(x, xOff, outer, R, inner, out, outOff, scale): out[o, j] = scale · Σ_r x[o, r, j], x contiguous.
Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t outer = int_arg(info, 2), R = int_arg(info, 3), inner = int_arg(info, 4);
  double scale = num_arg(info, 7);
  const float* x = f32(info, 0, 1, outer * R * inner);
  float* out = f32(info, 5, 6, outer * inner);
  if (outer * inner == 0) return env.Undefined();
  const bool avx = use_avx2();
  if (inner == 1) {
    auto sum_row = avx ? sum_row_avx2 : sum_row_portable;
    size_t nch = (R + kRowChunk - 1) / kRowChunk;
    if (nch <= 1) {
      pool::parallel_for(outer, std::max<size_t>(1, kRowChunk / std::max<size_t>(R, 1)), [&](size_t b, size_t e) {
        for (size_t o = b; o < e; ++o) out[o] = float(sum_row(x + o * R, R) * scale);
      });
      return env.Undefined();
    }
    std::vector<double> part(outer * nch);
    pool::run(outer * nch, [&](size_t t, int) {
      size_t o = t / nch, c = t % nch;
      size_t b = c * kRowChunk, e = std::min(R, b + kRowChunk);
      part[t] = sum_row(x + o * R + b, e - b);
    });
    for (size_t o = 0; o < outer; ++o) {
      double s = 0;
      for (size_t c = 0; c < nch; ++c) s += part[o * nch + c];
      out[o] = float(s * scale);
    }
    return env.Undefined();
  }
  auto acc_rows = avx ? acc_rows_avx2 : acc_rows_portable;
  size_t ncb = (inner + kColBlock - 1) / kColBlock;
  size_t nrc = std::max<size_t>(1, (R + kRedChunk - 1) / kRedChunk);
  if (nrc == 1) {  // few reduced rows: each task owns its output columns
    pool::run(outer * ncb, [&](size_t t, int) {
      size_t cb = t % ncb, o = t / ncb;
      size_t j0 = cb * kColBlock, j1 = std::min(inner, j0 + kColBlock);
      double acc[kColBlock] = {};
      acc_rows(acc, x + o * R * inner + j0, inner, R, j1 - j0);
      for (size_t j = j0; j < j1; ++j) out[o * inner + j] = float(acc[j - j0] * scale);
    });
    return env.Undefined();
  }
  // partial sums per chunk of reduced rows, combined in chunk order (independent of the thread count)
  std::vector<double> part(outer * nrc * inner);
  pool::run(outer * ncb * nrc, [&](size_t t, int) {
    size_t rc = t % nrc, cb = (t / nrc) % ncb, o = t / (nrc * ncb);
    size_t j0 = cb * kColBlock, j1 = std::min(inner, j0 + kColBlock);
    size_t r0 = rc * kRedChunk, r1 = std::min(R, r0 + kRedChunk);
    double* acc = part.data() + (o * nrc + rc) * inner + j0;
    acc_rows(acc, x + (o * R + r0) * inner + j0, inner, r1 - r0, j1 - j0);
  });
  pool::parallel_for(outer * inner, 8192, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      size_t o = i / inner, j = i % inner;
      double s = 0;
      for (size_t rc = 0; rc < nrc; ++rc) s += part[(o * nrc + rc) * inner + j];
      out[i] = float(s * scale);
    }
  });
  return env.Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("ewOpNames", Napi::Function::New(env, EwOpNames));
  exports.Set("ewMap", Napi::Function::New(env, EwMap));
  exports.Set("reduceSum", Napi::Function::New(env, ReduceSum));
}

}  // namespace ak

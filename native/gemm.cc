// Kernel group: GEMM. Packed, cache-blocked single-precision matrix product, row-major:
//   C[M×N] = alpha·op(A)·op(B) + beta·C   (beta == 0: C is only written, never read).
// Loops (outer to inner): N in NC-column blocks, K in KC-deep blocks, M in MC-row blocks, then 16-column
// and 6-row micro-tiles. op(B)'s KC×NC block is packed once (16-column panels, shared by the threads); op(A)'s
// MC×KC blocks are packed per thread (6-row panels). Transposes are folded into the packing, so every layout
// runs the same 6×16 micro-kernel (AVX2/FMA inline assembly: 12 accumulators; a plain C++ kernel when
// use_avx2() is false). Edge tiles are zero-padded in the packed panels and clipped when C is written.
// Threads: tasks are M blocks (each packs its own A block), or, when M is short, M blocks × N chunks over
// a shared packed A. Batched calls run whole matrices per thread when the batch is large or the matrices small.
// M or N up to 8 (matrix-vector-like: decoding) skips packing and streams op(B) once (AVX2 only).
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common.h"
#include "pool.h"

namespace ak {
namespace {

constexpr size_t MR = 6, NR = 16;
constexpr size_t MC_MAX = 144, KC_MAX = 384, NC_MAX = 3072;
constexpr size_t FEW_ROWS = 8;
constexpr size_t KSPLIT = 4, KSPLIT_MIN = 512;  // few-row products with op(B) rows contiguous: K cut in 4 from K = 512  // M (or N) up to this uses the unpacked matrix-vector-like kernels

inline size_t cdiv(size_t a, size_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------- buffers
// A growable, 64-byte aligned scratch buffer (2 MiB aligned + huge pages when large). One per thread and role,
// kept for the thread's life so steady-state calls do not allocate.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n <= cap) return p;
    std::free(p);
    size_t bytes = n * sizeof(float);
    const size_t huge = size_t(2) << 20;
    size_t align = bytes >= huge ? huge : 64;
    bytes = cdiv(bytes, align) * align;
    p = static_cast<float*>(std::aligned_alloc(align, bytes));
    if (!p) { cap = 0; throw std::bad_alloc(); }
#ifdef MADV_HUGEPAGE
    if (align == huge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    cap = bytes / sizeof(float);
    return p;
  }
  ~Scratch() { std::free(p); }
};
thread_local Scratch tl_a;        // this thread's packed A block
thread_local Scratch tl_b[2];        // packed B blocks, double-buffered (shared by the threads when in parallel)
thread_local Scratch tl_ashared[2];  // whole packed A for short M, double-buffered (shared)

// ---------------------------------------------------------------- operand views
// op(X)[r][c] = p[r*rs + c*cs]
struct View {
  const float* p;
  size_t rs, cs;
  const float* at(size_t r, size_t c) const { return p + r * rs + c * cs; }
};

// ---------------------------------------------------------------- portable kernels
// Packs op(A)[0..mc)[0..kc) into 6-row panels: dst[panel][k][6], rows past mc are zero.
void pack_a_ref(View a, size_t mc, size_t kc, float* dst) {
  for (size_t i = 0; i < mc; i += MR, dst += kc * MR) {
    size_t mr = std::min(MR, mc - i);
    if (a.rs == 1 && mr == MR) {  // transposed A: 6 contiguous values per k
      for (size_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, a.at(i, k), MR * sizeof(float));
      continue;
    }
    for (size_t r = 0; r < MR; ++r) {
      if (r < mr) {
        const float* s = a.at(i + r, 0);
        for (size_t k = 0; k < kc; ++k) dst[k * MR + r] = s[k * a.cs];
      } else {
        for (size_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.f;
      }
    }
  }
}

// Packs op(B)[0..kc)[0..nc) into 16-column panels: dst[panel][k][16], columns past nc are zero.
void pack_b_ref(View b, size_t kc, size_t nc, float* dst) {
  for (size_t j = 0; j < nc; j += NR, dst += kc * NR) {
    size_t nr = std::min(NR, nc - j);
    if (b.cs == 1 && nr == NR) {  // plain B: 16 contiguous values per k
      for (size_t k = 0; k < kc; ++k) std::memcpy(dst + k * NR, b.at(k, j), NR * sizeof(float));
      continue;
    }
    for (size_t c = 0; c < NR; ++c) {
      if (c < nr) {
        const float* s = b.at(0, j + c);
        for (size_t k = 0; k < kc; ++k) dst[k * NR + c] = s[k * b.rs];
      } else {
        for (size_t k = 0; k < kc; ++k) dst[k * NR + c] = 0.f;
      }
    }
  }
}

// Writes a computed 6×16 tile t (row-major) into C: C = alpha·t + beta·C for the mr×nr valid part.
inline void store_tile_ref(const float* t, float* C, size_t ldc, size_t mr, size_t nr, float alpha, float beta) {
  for (size_t r = 0; r < mr; ++r) {
    float* c = C + r * ldc;
    const float* s = t + r * NR;
    if (beta == 0.f)
      for (size_t j = 0; j < nr; ++j) c[j] = alpha * s[j];
    else
      for (size_t j = 0; j < nr; ++j) c[j] = alpha * s[j] + beta * c[j];
  }
}

void macro_ref(size_t mc, size_t nc, size_t kc, const float* pa, const float* pb, float* C, size_t ldc, float alpha,
               float beta) {
  float t[MR * NR];
  for (size_t j = 0; j < nc; j += NR) {
    const float* b = pb + (j / NR) * kc * NR;
    for (size_t i = 0; i < mc; i += MR) {
      const float* a = pa + (i / MR) * kc * MR;
      for (size_t x = 0; x < MR * NR; ++x) t[x] = 0.f;
      for (size_t k = 0; k < kc; ++k) {
        const float* ak = a + k * MR;
        const float* bk = b + k * NR;
        for (size_t r = 0; r < MR; ++r)
          for (size_t c = 0; c < NR; ++c) t[r * NR + c] += ak[r] * bk[c];
      }
      store_tile_ref(t, C + i * ldc + j, ldc, std::min(MR, mc - i), std::min(NR, nc - j), alpha, beta);
    }
  }
}

// ---------------------------------------------------------------- AVX2 kernels
AK_AVX2 inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                               __m256& r7) {
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// W-wide panels of an operand whose panel index is contiguous (element (x, k) at p[x + k·ks]: plain B, transposed
// A): plain copies. Its k rows are far apart, so 8 rows at a time are swept across every panel (each row read
// start to end) rather than one panel walked down all kc rows (128 bytes per row, then a jump).
template <size_t W>
AK_AVX2 void pack_copy_sweep(const float* p, size_t ks, size_t nx, size_t kc, float* dst) {
  for (size_t k0 = 0; k0 < kc; k0 += 8) {
    const size_t kn = std::min<size_t>(8, kc - k0);
    float* d = dst + k0 * W;
    for (size_t x0 = 0; x0 < nx; x0 += W, d += kc * W) {
      const size_t w = std::min(W, nx - x0);
      for (size_t k = 0; k < kn; ++k) {
        const float* src = p + x0 + (k0 + k) * ks;
        float* e = d + k * W;
        if (w == W) {
          std::memcpy(e, src, W * sizeof(float));
        } else {
          std::memcpy(e, src, w * sizeof(float));
          std::memset(e + w, 0, (W - w) * sizeof(float));
        }
      }
    }
  }
}

AK_AVX2 void pack_a_avx2(View a, size_t mc, size_t kc, float* dst) {
  if (a.cs != 1) return pack_copy_sweep<MR>(a.p, a.cs, mc, kc, dst);  // transposed A
  for (size_t i = 0; i < mc; i += MR, dst += kc * MR) {
    if (mc - i < MR) {
      pack_a_ref(View{a.at(i, 0), a.rs, a.cs}, mc - i, kc, dst);
      continue;
    }
    const float* s0 = a.at(i, 0);
    const float *s1 = s0 + a.rs, *s2 = s1 + a.rs, *s3 = s2 + a.rs, *s4 = s3 + a.rs, *s5 = s4 + a.rs;
    size_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r0 = _mm256_loadu_ps(s0 + k), r1 = _mm256_loadu_ps(s1 + k), r2 = _mm256_loadu_ps(s2 + k);
      __m256 r3 = _mm256_loadu_ps(s3 + k), r4 = _mm256_loadu_ps(s4 + k), r5 = _mm256_loadu_ps(s5 + k);
      __m256 r6 = _mm256_setzero_ps(), r7 = _mm256_setzero_ps();
      transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
      float* d = dst + k * MR;
      __m256 rr[8] = {r0, r1, r2, r3, r4, r5, r6, r7};
      for (int q = 0; q < 8; ++q) {
        _mm_storeu_ps(d + q * MR, _mm256_castps256_ps128(rr[q]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + q * MR + 4), _mm256_extractf128_ps(rr[q], 1));
      }
    }
    for (; k < kc; ++k) {
      float* d = dst + k * MR;
      d[0] = s0[k]; d[1] = s1[k]; d[2] = s2[k]; d[3] = s3[k]; d[4] = s4[k]; d[5] = s5[k];
    }
  }
}

AK_AVX2 void pack_b_avx2(View b, size_t kc, size_t nc, float* dst) {
  if (b.rs != 1) return pack_copy_sweep<NR>(b.p, b.rs, nc, kc, dst);  // plain B
  for (size_t j = 0; j < nc; j += NR, dst += kc * NR) {
    if (nc - j < NR) {
      pack_b_ref(View{b.at(0, j), b.rs, b.cs}, kc, nc - j, dst);
      continue;
    }
    const float* s[NR];
    for (size_t c = 0; c < NR; ++c) s[c] = b.at(0, j + c);
    size_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      float* d = dst + k * NR;
      for (int h = 0; h < 2; ++h) {
        const float* const* q = s + 8 * h;
        __m256 r0 = _mm256_loadu_ps(q[0] + k), r1 = _mm256_loadu_ps(q[1] + k), r2 = _mm256_loadu_ps(q[2] + k);
        __m256 r3 = _mm256_loadu_ps(q[3] + k), r4 = _mm256_loadu_ps(q[4] + k), r5 = _mm256_loadu_ps(q[5] + k);
        __m256 r6 = _mm256_loadu_ps(q[6] + k), r7 = _mm256_loadu_ps(q[7] + k);
        transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
        float* e = d + 8 * h;
        _mm256_store_ps(e + 0 * NR, r0);
        _mm256_store_ps(e + 1 * NR, r1);
        _mm256_store_ps(e + 2 * NR, r2);
        _mm256_store_ps(e + 3 * NR, r3);
        _mm256_store_ps(e + 4 * NR, r4);
        _mm256_store_ps(e + 5 * NR, r5);
        _mm256_store_ps(e + 6 * NR, r6);
        _mm256_store_ps(e + 7 * NR, r7);
      }
    }
    for (; k < kc; ++k)
      for (size_t c = 0; c < NR; ++c) dst[k * NR + c] = s[c][k];
  }
}

// One k step of the 6×16 micro-kernel: A values at byte offset AO of %[a], B row at byte offset BO of %[b].
#define AK_STEP(AO, BO)                                 \
  "vmovaps " #BO "(%[b]), %%ymm12\n\t"                  \
  "vmovaps " #BO "+32(%[b]), %%ymm13\n\t"               \
  "vbroadcastss " #AO "(%[a]), %%ymm14\n\t"             \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"            \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"            \
  "vbroadcastss " #AO "+4(%[a]), %%ymm15\n\t"           \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"            \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"            \
  "vbroadcastss " #AO "+8(%[a]), %%ymm14\n\t"           \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"            \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"            \
  "vbroadcastss " #AO "+12(%[a]), %%ymm15\n\t"          \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"            \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"            \
  "vbroadcastss " #AO "+16(%[a]), %%ymm14\n\t"          \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"            \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"            \
  "vbroadcastss " #AO "+20(%[a]), %%ymm15\n\t"          \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"           \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"

// t[6][16] = Σ_k a[k][0..6) ⊗ b[k][0..16), packed panels; t 32-byte aligned. The accumulators live in
// ymm0–ymm11 for the whole loop (assembly, so the compiler cannot spill them).
AK_AVX2 inline void ukernel_avx2(size_t kc, const float* a, const float* b, float* t) {
  size_t k4 = kc / 4, kr = kc % 4;
  __asm__ volatile(
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
      "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
      "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "test %[k4], %[k4]\n\t"
      "jz 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "prefetcht0 384(%[a])\n\t"
      AK_STEP(0, 0)
      AK_STEP(24, 64)
      "prefetcht0 448(%[a])\n\t"
      AK_STEP(48, 128)
      AK_STEP(72, 192)
      "add $96, %[a]\n\t"
      "add $256, %[b]\n\t"
      "dec %[k4]\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "test %[kr], %[kr]\n\t"
      "jz 4f\n"
      "3:\n\t"
      AK_STEP(0, 0)
      "add $24, %[a]\n\t"
      "add $64, %[b]\n\t"
      "dec %[kr]\n\t"
      "jnz 3b\n"
      "4:\n\t"
      "vmovaps %%ymm0, 0(%[t])\n\t"
      "vmovaps %%ymm1, 32(%[t])\n\t"
      "vmovaps %%ymm2, 64(%[t])\n\t"
      "vmovaps %%ymm3, 96(%[t])\n\t"
      "vmovaps %%ymm4, 128(%[t])\n\t"
      "vmovaps %%ymm5, 160(%[t])\n\t"
      "vmovaps %%ymm6, 192(%[t])\n\t"
      "vmovaps %%ymm7, 224(%[t])\n\t"
      "vmovaps %%ymm8, 256(%[t])\n\t"
      "vmovaps %%ymm9, 288(%[t])\n\t"
      "vmovaps %%ymm10, 320(%[t])\n\t"
      "vmovaps %%ymm11, 352(%[t])\n\t"
      : [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [kr] "+r"(kr)
      : [t] "r"(t)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}
#undef AK_STEP

AK_AVX2 inline void store_tile_avx2(const float* t, float* C, size_t ldc, size_t mr, size_t nr, float alpha,
                                    float beta) {
  if (mr != MR || nr != NR) return store_tile_ref(t, C, ldc, mr, nr, alpha, beta);
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.f) {
    for (size_t r = 0; r < MR; ++r) {
      _mm256_storeu_ps(C + r * ldc, _mm256_mul_ps(va, _mm256_load_ps(t + r * NR)));
      _mm256_storeu_ps(C + r * ldc + 8, _mm256_mul_ps(va, _mm256_load_ps(t + r * NR + 8)));
    }
  } else if (beta == 1.f) {
    for (size_t r = 0; r < MR; ++r) {
      float* c = C + r * ldc;
      _mm256_storeu_ps(c, _mm256_fmadd_ps(va, _mm256_load_ps(t + r * NR), _mm256_loadu_ps(c)));
      _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, _mm256_load_ps(t + r * NR + 8), _mm256_loadu_ps(c + 8)));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
    for (size_t r = 0; r < MR; ++r) {
      float* c = C + r * ldc;
      _mm256_storeu_ps(c, _mm256_fmadd_ps(va, _mm256_load_ps(t + r * NR), _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
      _mm256_storeu_ps(c + 8,
                       _mm256_fmadd_ps(va, _mm256_load_ps(t + r * NR + 8), _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
    }
  }
}

AK_AVX2 void macro_avx2(size_t mc, size_t nc, size_t kc, const float* pa, const float* pb, float* C, size_t ldc,
                        float alpha, float beta) {
  alignas(64) float t[MR * NR];
  for (size_t j = 0; j < nc; j += NR) {
    const float* b = pb + (j / NR) * kc * NR;
    size_t nr = std::min(NR, nc - j);
    for (size_t i = 0; i < mc; i += MR) {
      const float* a = pa + (i / MR) * kc * MR;
      size_t mr = std::min(MR, mc - i);
      float* c = C + i * ldc + j;
      for (size_t r = 0; r < mr; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + nr - 1), _MM_HINT_T0);
      }
      ukernel_avx2(kc, a, b, t);
      store_tile_avx2(t, c, ldc, mr, nr, alpha, beta);
    }
  }
}

// ---------------------------------------------------------------- AVX2: a few rows (M <= 4)
// Matrix-vector-like products (one decoded token times a weight, a handful of rows) are bound by reading op(B)
// once; packing it would read and write it again and the 6-row tile would mostly multiply padding. These
// kernels read op(B) in place and write C[i·crs + j·ccs] for the MM rows i, columns [j0, j1).

AK_AVX2 inline void put(float* c, float v, float alpha, float beta) { *c = beta == 0.f ? alpha * v : alpha * v + beta * *c; }

AK_AVX2 inline void put8(float* c, size_t ccs, __m256 v, float alpha, float beta) {
  if (ccs == 1) {
    __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), v);
    if (beta != 0.f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), r);
    _mm256_storeu_ps(c, r);
    return;
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  for (size_t q = 0; q < 8; ++q) put(c + q * ccs, t[q], alpha, beta);
}

AK_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// op(B) rows contiguous (B.cs == 1): C's few rows are built up in a local buffer, U rows of op(B) at a time,
// each streamed from start to end (sequential reads, friendly to the prefetchers even when rows are far apart).
template <int MM>
AK_AVX2 void few_rows_stream(size_t K, float alpha, View A, View B, float beta, float* C, size_t crs, size_t ccs,
                             size_t j0, size_t j1) {
  constexpr size_t JB = 512;           // columns per pass: the MM×JB sums stay in L1
  constexpr int U = MM <= 2 ? 4 : MM <= 6 ? 2 : 1;  // rows of op(B) per sweep (MM·U broadcasts in registers)
  alignas(32) float acc[MM][JB];
  for (size_t jb = j0; jb < j1; jb += JB) {
    const size_t w = std::min(JB, j1 - jb), w8 = w & ~size_t(7);
    for (int i = 0; i < MM; ++i) std::memset(acc[i], 0, w * sizeof(float));
    const float* b = B.p + jb;
    size_t k = 0;
    for (; k + U <= K; k += U, b += U * B.rs) {
      __m256 a[MM][U];
      for (int i = 0; i < MM; ++i)
        for (int q = 0; q < U; ++q) a[i][q] = _mm256_broadcast_ss(A.at(i, k + q));
      for (size_t j = 0; j < w8; j += 8) {
        __m256 bv[U];
        for (int q = 0; q < U; ++q) bv[q] = _mm256_loadu_ps(b + q * B.rs + j);
        for (int i = 0; i < MM; ++i) {
          __m256 c = _mm256_load_ps(acc[i] + j);
          for (int q = 0; q < U; ++q) c = _mm256_fmadd_ps(a[i][q], bv[q], c);
          _mm256_store_ps(acc[i] + j, c);
        }
      }
      for (size_t j = w8; j < w; ++j)
        for (int i = 0; i < MM; ++i)
          for (int q = 0; q < U; ++q) acc[i][j] += *A.at(i, k + q) * b[q * B.rs + j];
    }
    for (; k < K; ++k, b += B.rs) {
      for (int i = 0; i < MM; ++i) {
        const float av = *A.at(i, k);
        const __m256 a = _mm256_set1_ps(av);
        size_t j = 0;
        for (; j < w8; j += 8)
          _mm256_store_ps(acc[i] + j, _mm256_fmadd_ps(a, _mm256_loadu_ps(b + j), _mm256_load_ps(acc[i] + j)));
        for (; j < w; ++j) acc[i][j] += av * b[j];
      }
    }
    for (int i = 0; i < MM; ++i) {
      float* c = C + i * crs + jb * ccs;
      size_t j = 0;
      for (; j < w8; j += 8) put8(c + j * ccs, ccs, _mm256_load_ps(acc[i] + j), alpha, beta);
      for (; j < w; ++j) put(c + j * ccs, acc[i][j], alpha, beta);
    }
  }
}

// op(B) columns contiguous (B.rs == 1) and A rows contiguous (row i at a + i·ars): dot products, JW columns per tile.
template <int MM, int JW>
AK_AVX2 void few_rows_dot(size_t K, float alpha, const float* a, size_t ars, View B, float beta, float* C, size_t crs,
                          size_t ccs, size_t j0, size_t j1) {
  const size_t K8 = K & ~size_t(7);
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(K - K8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  size_t j = j0;
  for (; j + JW <= j1; j += JW) {
    __m256 acc[MM][JW];
    for (int i = 0; i < MM; ++i)
      for (int w = 0; w < JW; ++w) acc[i][w] = _mm256_setzero_ps();
    const float* bc = B.p + j * B.cs;
    for (size_t k = 0; k < K8; k += 8) {
      if constexpr (JW == 1) {  // A straight from L1 (keeps the registers for up to 8 accumulators)
        const __m256 b = _mm256_loadu_ps(bc + k);
        for (int i = 0; i < MM; ++i) acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * ars + k), b, acc[i][0]);
      } else {
        __m256 av[MM];
        for (int i = 0; i < MM; ++i) av[i] = _mm256_loadu_ps(a + i * ars + k);
        for (int w = 0; w < JW; ++w) {
          const __m256 b = _mm256_loadu_ps(bc + w * B.cs + k);
          for (int i = 0; i < MM; ++i) acc[i][w] = _mm256_fmadd_ps(av[i], b, acc[i][w]);
        }
      }
    }
    if (K8 < K) {
      __m256 av[MM];
      for (int i = 0; i < MM; ++i) av[i] = _mm256_maskload_ps(a + i * ars + K8, tail);
      for (int w = 0; w < JW; ++w) {
        const __m256 b = _mm256_maskload_ps(bc + w * B.cs + K8, tail);
        for (int i = 0; i < MM; ++i) acc[i][w] = _mm256_fmadd_ps(av[i], b, acc[i][w]);
      }
    }
    for (int i = 0; i < MM; ++i)
      for (int w = 0; w < JW; ++w) put(C + i * crs + (j + w) * ccs, hsum(acc[i][w]), alpha, beta);
  }
  if constexpr (JW > 1)
    if (j < j1) few_rows_dot<MM, 1>(K, alpha, a, ars, B, beta, C, crs, ccs, j, j1);
}

// C (MM×N, element (i,j) at C[i·crs + j·ccs]) = alpha·op(A)·op(B) + beta·C, with B.cs == 1 or B.rs == 1.
template <int MM>
AK_AVX2 void few_rows_mm(size_t N, size_t K, float alpha, View A, View B, float beta, float* C, size_t crs, size_t ccs,
                         bool par) {
  auto split = [&](size_t width, auto&& fn) {  // columns in tiles of `width`, over the pool when par
    size_t tiles = cdiv(N, width);
    auto body = [&](size_t t0, size_t t1) { fn(t0 * width, std::min(N, t1 * width)); };
    if (par) pool::parallel_for(tiles, std::max<size_t>(1, 32768 / std::max<size_t>(1, width * K * MM)), body);
    else body(0, tiles);
  };
  if (B.cs == 1) {
    if (K >= KSPLIT_MIN && N * MM <= (size_t(1) << 20)) {
      // Long K: cut op(B) into KSPLIT blocks of whole rows, one task each streaming its own contiguous region into
      // its own partial sums, then add the partials in a fixed order. The cut depends on K alone, so results do
      // not depend on the thread count.
      float* parts = tl_b[0].get(KSPLIT * MM * N);
      auto chunk = [&](size_t t, int) {
        const size_t k0 = K * t / KSPLIT, k1 = K * (t + 1) / KSPLIT;
        few_rows_stream<MM>(k1 - k0, 1.f, View{A.p + k0 * A.cs, A.rs, A.cs}, View{B.p + k0 * B.rs, B.rs, B.cs}, 0.f,
                            parts + t * MM * N, N, 1, 0, N);
      };
      if (par) pool::run(KSPLIT, chunk);
      else for (size_t t = 0; t < KSPLIT; ++t) chunk(t, 0);
      for (size_t i = 0; i < MM; ++i)
        for (size_t j = 0; j < N; ++j) {
          float s = parts[i * N + j];
          for (size_t t = 1; t < KSPLIT; ++t) s += parts[(t * MM + i) * N + j];
          put(C + i * crs + j * ccs, s, alpha, beta);
        }
      return;
    }
    return split(64, [&](size_t j0, size_t j1) { few_rows_stream<MM>(K, alpha, A, B, beta, C, crs, ccs, j0, j1); });
  }
  const float* a = A.p;
  size_t ars = A.rs;
  if (A.cs != 1) {  // gather the few rows of op(A) into contiguous rows
    float* t = tl_ashared[0].get(MM * K);
    for (size_t i = 0; i < MM; ++i)
      for (size_t k = 0; k < K; ++k) t[i * K + k] = *A.at(i, k);
    a = t;
    ars = K;
  }
  constexpr int JW = MM == 1 ? 8 : MM <= 3 ? 4 : MM == 4 ? 2 : 1;  // MM·JW accumulators + MM rows of A <= 16
  split(JW, [&](size_t j0, size_t j1) { few_rows_dot<MM, JW>(K, alpha, a, ars, B, beta, C, crs, ccs, j0, j1); });
}

AK_AVX2 void few_rows(size_t MM, size_t N, size_t K, float alpha, View A, View B, float beta, float* C, size_t crs,
                      size_t ccs, bool par) {
  switch (MM) {
    case 1: return few_rows_mm<1>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 2: return few_rows_mm<2>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 3: return few_rows_mm<3>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 4: return few_rows_mm<4>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 5: return few_rows_mm<5>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 6: return few_rows_mm<6>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    case 7: return few_rows_mm<7>(N, K, alpha, A, B, beta, C, crs, ccs, par);
    default: return few_rows_mm<8>(N, K, alpha, A, B, beta, C, crs, ccs, par);
  }
}

// ---------------------------------------------------------------- AVX512-BF16 kernels
// bf16 inputs, fp32 accumulation: packing rounds op(A) and op(B) to bf16 (round to nearest even, vcvtne2ps2bf16)
// and interleaves consecutive k in pairs, so each 32-bit lane holds (bf16 k=2p | bf16 k=2p+1 << 16); vdpbf16ps
// then adds both products of a lane's pair into its fp32 accumulator. Panels: op(A) 12 rows [panel][k/2][12],
// op(B) 32 columns [panel][k/2][32] (dwords; an odd k count pads the last pair with 0). Micro-kernel 12×32:
// 24 zmm accumulators, 2 zmm of B per k pair, A pairs broadcast; ~99% of the vdpbf16ps peak on hot data.
constexpr size_t BMR = 12, BNR = 32;

// x-contiguous source (element (x, k) at q[x + k·ks]; plain B, transposed A): two k rows at a time are rounded
// into one vector of 32 bf16 and interleaved into 16 (k, k+1) pairs.
template <size_t W>
AK_BF16 void pack_bf16_xcontig(const float* q, size_t ks, size_t w, size_t kc, uint32_t* dst) {
  alignas(64) static const uint16_t interleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i perm = _mm512_load_si512(interleave);
  for (size_t k = 0; k < kc; k += 2, dst += W) {
    for (size_t c = 0; c < W; c += 16) {
      const size_t n = c < w ? std::min<size_t>(16, w - c) : 0;
      const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
      const __m512 lo = _mm512_maskz_loadu_ps(m, q + k * ks + c);
      const __m512 hi = k + 1 < kc ? _mm512_maskz_loadu_ps(m, q + (k + 1) * ks + c) : _mm512_setzero_ps();
      const __m512i v = _mm512_permutexvar_epi16(perm, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
      if (W - c >= 16) _mm512_storeu_si512(dst + c, v);
      else _mm512_mask_storeu_epi32(dst + c, static_cast<__mmask16>((1u << (W - c)) - 1), v);
    }
  }
}

// k-contiguous source (element (x, k) at q[x·xs + k]; plain A, transposed B): 8 rows × 16 k are rounded to 8 × 8
// pairs and transposed as 32-bit values (the AVX2 8×8 transpose), giving 8 pairs of 8 consecutive x.
template <size_t W>
AK_BF16 void pack_bf16_kcontig(const float* q, size_t xs, size_t w, size_t kc, uint32_t* dst) {
  const size_t kp = cdiv(kc, 2);
  for (size_t g = 0; g < W; g += 8) {
    const size_t gw = std::min<size_t>(8, W - g);  // lanes stored: 8, or 4 in the last group of a 12-wide panel
    const size_t valid = g < w ? std::min<size_t>(8, w - g) : 0;
    for (size_t k = 0; k < kc; k += 16) {
      const size_t nk = std::min<size_t>(16, kc - k);
      const __mmask16 m = static_cast<__mmask16>((1u << nk) - 1);
      __m256 r[8];
      for (size_t i = 0; i < 8; ++i)
        r[i] = i < valid ? reinterpret_cast<__m256>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, q + (g + i) * xs + k)))
                         : _mm256_setzero_ps();
      transpose8(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
      const size_t np = std::min<size_t>(8, kp - k / 2);
      float* d = reinterpret_cast<float*>(dst + (k / 2) * W + g);
      for (size_t t = 0; t < np; ++t, d += W) {
        if (gw == 8) _mm256_storeu_ps(d, r[t]);
        else _mm_storeu_ps(d, _mm256_castps256_ps128(r[t]));
      }
    }
  }
}

// Packs element (x, k) = p[x·xs + k·ks] (xs == 1 or ks == 1), x < nx, k < kc, into W-wide panels of k pairs.
// With x contiguous the rows of k are far apart (a row of B is N floats): walking one panel down all of kc would
// read 128 bytes per row and jump, which the prefetchers cannot follow; instead 8 rows (4 pairs) at a time are
// swept across every panel, so each row is read start to end.
template <size_t W>
AK_BF16 void pack_bf16(const float* p, size_t xs, size_t ks, size_t nx, size_t kc, uint32_t* dst) {
  const size_t kp = cdiv(kc, 2);
  if (xs == 1) {
    constexpr size_t KG = 8;  // rows of k per sweep
    for (size_t k0 = 0; k0 < kc; k0 += KG) {
      const size_t kn = std::min(KG, kc - k0);
      uint32_t* d = dst + (k0 / 2) * W;
      for (size_t x0 = 0; x0 < nx; x0 += W, d += kp * W)
        pack_bf16_xcontig<W>(p + x0 + k0 * ks, ks, std::min(W, nx - x0), kn, d);
    }
    return;
  }
  for (size_t x0 = 0; x0 < nx; x0 += W, dst += kp * W) pack_bf16_kcontig<W>(p + x0 * xs, xs, std::min(W, nx - x0), kc, dst);
}

AK_BF16 void pack_a_bf16(View a, size_t mc, size_t kc, float* dst) {
  pack_bf16<BMR>(a.p, a.rs, a.cs, mc, kc, reinterpret_cast<uint32_t*>(dst));
}
AK_BF16 void pack_b_bf16(View b, size_t kc, size_t nc, float* dst) {
  pack_bf16<BNR>(b.p, b.cs, b.rs, nc, kc, reinterpret_cast<uint32_t*>(dst));
}

// One k pair of the 12×32 micro-kernel: B's 32 pair-lanes in zmm28–29, A's 12 pairs broadcast in turn.
#define AK_BF_ROW(R, AO, ACC0, ACC1, REG)                        \
  "vpbroadcastd " #R "*4+" #AO "*4(%[a]), %%zmm" #REG "\n\t"     \
  "vdpbf16ps %%zmm" #REG ", %%zmm28, %%zmm" #ACC0 "\n\t"         \
  "vdpbf16ps %%zmm" #REG ", %%zmm29, %%zmm" #ACC1 "\n\t"
#define AK_BF_STEP(AO, BO)                                                                              \
  "vmovups " #BO "(%[b]), %%zmm28\n\t"                                                                  \
  "vmovups " #BO "+64(%[b]), %%zmm29\n\t"                                                               \
  AK_BF_ROW(0, AO, 0, 1, 30) AK_BF_ROW(1, AO, 2, 3, 31) AK_BF_ROW(2, AO, 4, 5, 30)                  \
  AK_BF_ROW(3, AO, 6, 7, 31) AK_BF_ROW(4, AO, 8, 9, 30) AK_BF_ROW(5, AO, 10, 11, 31)                \
  AK_BF_ROW(6, AO, 12, 13, 30) AK_BF_ROW(7, AO, 14, 15, 31) AK_BF_ROW(8, AO, 16, 17, 30)            \
  AK_BF_ROW(9, AO, 18, 19, 31) AK_BF_ROW(10, AO, 20, 21, 30) AK_BF_ROW(11, AO, 22, 23, 31)
#define AK_Z(i) "vpxord %%zmm" #i ", %%zmm" #i ", %%zmm" #i "\n\t"
#define AK_S(i) "vmovaps %%zmm" #i ", " #i "*64(%[t])\n\t"

#define AK_CST(i, j) "vmovups %%zmm" #i ", (%[c])\n\t" "vmovups %%zmm" #j ", 64(%[c])\n\t" "add %[ldc], %[c]\n\t"
#define AK_CLD(i, j) "vaddps (%[c]), %%zmm" #i ", %%zmm" #i "\n\t" "vaddps 64(%[c]), %%zmm" #j ", %%zmm" #j "\n\t" "add %[ldc], %[c]\n\t"
#define AK_CST2(i, j) "vmovups %%zmm" #i ", (%[c2])\n\t" "vmovups %%zmm" #j ", 64(%[c2])\n\t" "add %[ldc], %[c2]\n\t"

// The 12×32 tile Σ_p a[p][0..12) ⊗· b[p][0..32) over kp pairs, written (mode 0) to t (64-byte aligned, for the
// general epilogue), or straight into a full tile of C (row stride ldc floats): mode 1 C = tile, mode 2
// C += tile. Mode 2 loads all 12 rows of C before storing any: C's rows are often a multiple of 4 KiB apart, and
// a load after a store to an address 4 KiB away waits for the store (4K aliasing).
AK_BF16 void ukernel_bf16(size_t kp, const uint32_t* a, const uint32_t* b, float* t, int mode, float* c, size_t ldc) {
  size_t k2 = kp / 2, kr = kp % 2, ldcb = ldc * sizeof(float);
  float* c2 = c;
  __asm__ volatile(
      AK_Z(0) AK_Z(1) AK_Z(2) AK_Z(3) AK_Z(4) AK_Z(5) AK_Z(6) AK_Z(7) AK_Z(8) AK_Z(9) AK_Z(10) AK_Z(11)
      AK_Z(12) AK_Z(13) AK_Z(14) AK_Z(15) AK_Z(16) AK_Z(17) AK_Z(18) AK_Z(19) AK_Z(20) AK_Z(21) AK_Z(22) AK_Z(23)
      "test %[k2], %[k2]\n\t"
      "jz 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "prefetcht0 384(%[a])\n\t"
      AK_BF_STEP(0, 0)
      AK_BF_STEP(12, 128)
      "add $96, %[a]\n\t"
      "add $256, %[b]\n\t"
      "dec %[k2]\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "test %[kr], %[kr]\n\t"
      "jz 3f\n\t"
      AK_BF_STEP(0, 0)
      "3:\n\t"
      "cmp $1, %[mode]\n\t"
      "je 5f\n\t"
      "ja 6f\n\t"
      AK_S(0) AK_S(1) AK_S(2) AK_S(3) AK_S(4) AK_S(5) AK_S(6) AK_S(7) AK_S(8) AK_S(9) AK_S(10) AK_S(11)
      AK_S(12) AK_S(13) AK_S(14) AK_S(15) AK_S(16) AK_S(17) AK_S(18) AK_S(19) AK_S(20) AK_S(21) AK_S(22) AK_S(23)
      "jmp 9f\n"
      "5:\n\t"
      AK_CST(0, 1) AK_CST(2, 3) AK_CST(4, 5) AK_CST(6, 7) AK_CST(8, 9) AK_CST(10, 11)
      AK_CST(12, 13) AK_CST(14, 15) AK_CST(16, 17) AK_CST(18, 19) AK_CST(20, 21) AK_CST(22, 23)
      "jmp 9f\n"
      "6:\n\t"
      AK_CLD(0, 1) AK_CLD(2, 3) AK_CLD(4, 5) AK_CLD(6, 7) AK_CLD(8, 9) AK_CLD(10, 11)
      AK_CLD(12, 13) AK_CLD(14, 15) AK_CLD(16, 17) AK_CLD(18, 19) AK_CLD(20, 21) AK_CLD(22, 23)
      AK_CST2(0, 1) AK_CST2(2, 3) AK_CST2(4, 5) AK_CST2(6, 7) AK_CST2(8, 9) AK_CST2(10, 11)
      AK_CST2(12, 13) AK_CST2(14, 15) AK_CST2(16, 17) AK_CST2(18, 19) AK_CST2(20, 21) AK_CST2(22, 23)
      "9:\n\t"
      : [a] "+r"(a), [b] "+r"(b), [k2] "+r"(k2), [kr] "+r"(kr), [c] "+r"(c), [c2] "+r"(c2)
      : [t] "r"(t), [mode] "r"(static_cast<size_t>(mode)), [ldc] "r"(ldcb)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
        "xmm23", "xmm28", "xmm29", "xmm30", "xmm31");
}
#undef AK_CST
#undef AK_CLD
#undef AK_CST2
#undef AK_BF_ROW
#undef AK_BF_STEP
#undef AK_Z
#undef AK_S

// C[mr×nr] = alpha·t + beta·C from a 12×32 tile (masked stores clip the edges).
AK_BF16 inline void store_tile_bf16(const float* t, float* C, size_t ldc, size_t mr, size_t nr, float alpha,
                                    float beta) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 m0 = static_cast<__mmask16>(nr >= 16 ? 0xffffu : (1u << nr) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(nr >= 32 ? 0xffffu : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
  for (size_t r = 0; r < mr; ++r) {
    float* c = C + r * ldc;
    __m512 v0 = _mm512_mul_ps(va, _mm512_load_ps(t + r * BNR));
    __m512 v1 = _mm512_mul_ps(va, _mm512_load_ps(t + r * BNR + 16));
    if (beta != 0.f) {
      v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), v0);
      v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), v1);
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
  }
}

AK_BF16 void macro_bf16(size_t mc, size_t nc, size_t kc, const float* pa_, const float* pb_, float* C, size_t ldc,
                        float alpha, float beta) {
  const uint32_t* pa = reinterpret_cast<const uint32_t*>(pa_);
  const uint32_t* pb = reinterpret_cast<const uint32_t*>(pb_);
  const size_t kp = cdiv(kc, 2);
  alignas(64) float t[BMR * BNR];
  for (size_t j = 0; j < nc; j += BNR) {
    const uint32_t* b = pb + (j / BNR) * kp * BNR;
    const size_t nr = std::min(BNR, nc - j);
    for (size_t i = 0; i < mc; i += BMR) {
      const uint32_t* a = pa + (i / BMR) * kp * BMR;
      const size_t mr = std::min(BMR, mc - i);
      float* c = C + i * ldc + j;
      // C's tile into L2 while the tile is computed (into L1 it would be evicted by the A and B streams)
      for (size_t r = 0; r < mr; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + nr - 1), _MM_HINT_T1);
      }
      if (mr == BMR && nr == BNR && alpha == 1.f && (beta == 0.f || beta == 1.f)) {
        ukernel_bf16(kp, a, b, t, beta == 0.f ? 1 : 2, c, ldc);
      } else {
        ukernel_bf16(kp, a, b, t, 0, c, ldc);
        store_tile_bf16(t, c, ldc, mr, nr, alpha, beta);
      }
    }
  }
}

// ---------------------------------------------------------------- driver
// One packed-panel kernel family: tile MR×NR, KG values of k per packed unit (1 for fp32, 2 for bf16 pairs; a
// unit is 4 bytes either way), block limits, packers and macro-kernel.
struct Kernels {
  size_t mr, nr, kg;
  size_t mc_max, kc_max, nc_max;
  void (*pack_a)(View, size_t mc, size_t kc, float* dst);
  void (*pack_b)(View, size_t kc, size_t nc, float* dst);
  void (*macro)(size_t mc, size_t nc, size_t kc, const float* pa, const float* pb, float* C, size_t ldc, float alpha,
                float beta);
};

// The kernels for a product: bf16 (when asked for and use_bf16()), else AVX2 fp32, else portable fp32.
const Kernels& kernels(bool bf16) {
  static const Kernels bf{BMR, BNR, 2, 144, 384, 3072, pack_a_bf16, pack_b_bf16, macro_bf16};
  static const Kernels avx2{MR, NR, 1, MC_MAX, KC_MAX, NC_MAX, pack_a_avx2, pack_b_avx2, macro_avx2};
  static const Kernels ref{MR, NR, 1, MC_MAX, KC_MAX, NC_MAX, pack_a_ref, pack_b_ref, macro_ref};
  if (bf16 && use_bf16()) return bf;
  return use_avx2() ? avx2 : ref;
}

// Runs fn(task, tid) for every task, on the pool when par.
template <class F>
void for_tasks(bool par, size_t n, F&& fn) {
  if (par && n > 1)
    pool::run(n, [&](size_t t, int tid) { fn(t, tid); });
  else
    for (size_t t = 0; t < n; ++t) fn(t, 0);
}

// C = beta·C (beta == 0: zero without reading) — the product is empty or alpha is 0.
void scale_c(bool par, size_t M, size_t N, float beta, float* C, size_t ldc) {
  auto rows = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      float* c = C + i * ldc;
      if (beta == 0.f)
        std::memset(c, 0, N * sizeof(float));
      else if (beta != 1.f)
        for (size_t j = 0; j < N; ++j) c[j] *= beta;
    }
  };
  if (par) pool::parallel_for(M, std::max<size_t>(1, 16384 / std::max<size_t>(N, 1)), rows);
  else rows(0, M);
}

struct PackedB;

struct Problem {
  bool ta, tb;
  size_t M, N, K;
  float alpha;
  const float* A;
  size_t lda;
  const float* B;
  size_t ldb;
  float beta;
  float* C;
  size_t ldc;
  bool bf16;  // round op(A) and op(B) to bf16 (fp32 accumulation) where the CPU can; else fp32
  const PackedB* pre = nullptr;  // op(B) packed ahead of time (see PackedB), or null: packed per call
};

// How op(B) [K×N] is cut into (N block, K block) steps. It depends on K, N and the kernel family only, never on
// M, so a B packed once serves products with any number of rows.
struct BBlocks {
  size_t kc_step, ku_step, nc_step, ksteps, steps;
  BBlocks(const Kernels& kern, size_t K, size_t N) {
    const size_t kb = cdiv(K, kern.kc_max), nb = cdiv(N, kern.nc_max);
    kc_step = cdiv(cdiv(K, kb), kern.kg) * kern.kg;
    ku_step = kc_step / kern.kg;
    nc_step = cdiv(cdiv(N, nb), kern.nr) * kern.nr;
    ksteps = cdiv(K, kc_step);
    steps = cdiv(N, nc_step) * ksteps;
  }
  size_t slot() const { return ku_step * nc_step; }  // packed units per step
};

// op(B) packed into every step's panels once, for a weight that multiplies many different A's (the rows of
// each decoding step): the driver then reads the panels instead of packing B per call. Byte for byte what the
// driver would pack, so the products are bit-identical to unpacked calls.
struct PackedB {
  const Kernels* kern;
  size_t K, N;
  BBlocks bl;
  float* data;
  size_t bytes;
  PackedB(const Kernels* k, size_t K_, size_t N_) : kern(k), K(K_), N(N_), bl(*k, K_, N_), data(nullptr), bytes(0) {}
  ~PackedB() { std::free(data); }
};

// The blocked product. par: split the work over the pool (false inside a batch task or for small products).
void gemm(const Problem& P, bool par) {
  const size_t M = P.M, N = P.N, K = P.K;
  if (M == 0 || N == 0) return;
  if (K == 0 || P.alpha == 0.f) return scale_c(par, M, N, P.beta, P.C, P.ldc);
  const Kernels& kern = kernels(P.bf16);
  const View A = P.ta ? View{P.A, 1, P.lda} : View{P.A, P.lda, 1};
  const View B = P.tb ? View{P.B, 1, P.ldb} : View{P.B, P.ldb, 1};
  // A few rows stay fp32 even when bf16 is asked for: they are bound by reading op(B), not by multiplying —
  // unless op(B) is packed ahead in bf16, which halves what they read.
  const bool pre_bf16 = P.pre && &kern == &kernels(true) && use_bf16();
  if (use_avx2() && M <= FEW_ROWS && !pre_bf16) return few_rows(M, N, K, P.alpha, A, B, P.beta, P.C, P.ldc, 1, par);
  if (use_avx2() && N <= FEW_ROWS && !P.pre)  // C^T = op(B)^T·op(A)^T: the few columns become the few rows
    return few_rows(N, M, K, P.alpha, View{B.p, B.cs, B.rs}, View{A.p, A.cs, A.rs}, P.beta, P.C, 1, P.ldc, par);
  const size_t T = par ? static_cast<size_t>(std::max(1, pool::threads())) : 1;
  if (T == 1) par = false;
  const size_t mr = kern.mr, nr = kern.nr, kg = kern.kg;

  // Block sizes: as even as possible, in whole panels (and whole k units).
  const BBlocks bl(kern, K, N);
  const size_t kc_step = bl.kc_step, ku_step = bl.ku_step, nc_step = bl.nc_step;
  const PackedB* pre = P.pre;
  const size_t mpanels = cdiv(M, mr);
  size_t mb = cdiv(M, kern.mc_max);
  if (par) mb = cdiv(mb, T) * T;
  mb = std::min(mb, mpanels);
  auto mblock = [&](size_t b) { return std::min(M, (b * mpanels / mb) * mr); };  // first row of M block b
  const bool shared_a = par && mb < 2 * T;  // short M: pack all of A once, split N as well

  // The (N block, K block) steps, in order. Step s multiplies with the operands packed for it while the same
  // job packs step s + 1's into the other buffer: the pool claims tasks in order, so the packing (bound by
  // reading memory) fills the time threads would otherwise wait at the end of the multiply, and each step costs
  // one barrier instead of two.
  const size_t ksteps = bl.ksteps, steps = bl.steps;
  float* pb[2] = {pre ? nullptr : tl_b[0].get(ku_step * nc_step),
                  !pre && steps > 1 ? tl_b[1].get(ku_step * nc_step) : nullptr};
  float* pas[2] = {shared_a ? tl_ashared[0].get(ku_step * mpanels * mr) : nullptr,
                   shared_a && steps > 1 ? tl_ashared[1].get(ku_step * mpanels * mr) : nullptr};
  struct Step {
    size_t jc, nc, npan, pc, kc, ku;
  };
  auto step = [&](size_t s) {
    Step st;
    st.jc = (s / ksteps) * nc_step;
    st.pc = (s % ksteps) * kc_step;
    st.nc = std::min(nc_step, N - st.jc);
    st.npan = cdiv(st.nc, nr);
    st.kc = std::min(kc_step, K - st.pc);
    st.ku = cdiv(st.kc, kg);
    return st;
  };
  const size_t bchunks_max = pre ? 0 : par ? 4 * T : 1;  // B packed ahead: no B chunks to pack
  auto pack_count = [&](const Step& st) { return std::min(st.npan, bchunks_max) + (shared_a ? mb : 0); };
  // task t of packing step s: a chunk of B's panels, then (shared_a) one M block of A
  auto pack = [&](size_t s, const Step& st, size_t t) {
    const size_t bchunks = std::min(st.npan, bchunks_max);
    float* b_dst = pb[s % 2];
    if (t < bchunks) {
      size_t p0 = t * st.npan / bchunks, p1 = (t + 1) * st.npan / bchunks;
      size_t j0 = p0 * nr, j1 = std::min(st.nc, p1 * nr);
      if (j1 > j0) kern.pack_b(View{B.at(st.pc, st.jc + j0), B.rs, B.cs}, st.kc, j1 - j0, b_dst + p0 * st.ku * nr);
    } else {
      size_t b = t - bchunks, i0 = mblock(b), i1 = mblock(b + 1);
      if (i1 > i0) kern.pack_a(View{A.at(i0, st.pc), A.rs, A.cs}, i1 - i0, st.kc, pas[s % 2] + (i0 / mr) * st.ku * mr);
    }
  };
  auto n_split = [&](const Step& st) {
    return std::max<size_t>(1, std::min(st.npan / 4 + (st.npan < 4), cdiv(4 * T, mb)));
  };
  auto mult_count = [&](const Step& st) { return shared_a ? mb * n_split(st) : mb; };
  auto multiply = [&](size_t s, const Step& st, size_t t) {
    const float beta = st.pc == 0 ? P.beta : 1.f;
    const float* b_src = pre ? pre->data + s * bl.slot() : pb[s % 2];
    if (shared_a) {
      const size_t ns = n_split(st);
      size_t b = t / ns, q = t % ns;
      size_t i0 = mblock(b), i1 = mblock(b + 1);
      size_t p0 = q * st.npan / ns, p1 = (q + 1) * st.npan / ns;
      size_t j0 = p0 * nr, j1 = std::min(st.nc, p1 * nr);
      if (i1 <= i0 || j1 <= j0) return;
      kern.macro(i1 - i0, j1 - j0, st.kc, pas[s % 2] + (i0 / mr) * st.ku * mr, b_src + p0 * st.ku * nr,
                 P.C + i0 * P.ldc + st.jc + j0, P.ldc, P.alpha, beta);
    } else {
      size_t i0 = mblock(t), i1 = mblock(t + 1);
      if (i1 <= i0) return;
      float* pa = tl_a.get(ku_step * cdiv(i1 - i0, mr) * mr);
      kern.pack_a(View{A.at(i0, st.pc), A.rs, A.cs}, i1 - i0, st.kc, pa);
      kern.macro(i1 - i0, st.nc, st.kc, pa, b_src, P.C + i0 * P.ldc + st.jc, P.ldc, P.alpha, beta);
    }
  };

  Step cur = step(0);
  for_tasks(par, pack_count(cur), [&](size_t t, int) { pack(0, cur, t); });
  for (size_t s = 0; s < steps; ++s) {
    const bool more = s + 1 < steps;
    const Step next = more ? step(s + 1) : cur;
    const size_t m = mult_count(cur), q = more ? pack_count(next) : 0;
    for_tasks(par, m + q, [&](size_t t, int) {
      if (t < m) multiply(s, cur, t);
      else pack(s + 1, next, t - m);
    });
    cur = next;
  }
}

// Packs op(B) (= B, or Bᵀ when tb) for every step of the driver, each step's panels in its own slot, split over
// the pool: exactly the panels gemm() packs per call. The result belongs to the caller.
PackedB* pack_b_ahead(bool tb, size_t K, size_t N, const float* Bp, size_t ldb, bool bf16) {
  const Kernels& kern = kernels(bf16);
  auto* pk = new PackedB(&kern, K, N);
  const BBlocks& bl = pk->bl;
  const size_t huge = size_t(2) << 20, units = bl.steps * bl.slot();
  pk->bytes = cdiv(std::max<size_t>(units, 1) * sizeof(float), huge) * huge;
  pk->data = static_cast<float*>(std::aligned_alloc(huge, pk->bytes));
  if (!pk->data) {
    delete pk;
    throw std::bad_alloc();
  }
#ifdef MADV_HUGEPAGE
  madvise(pk->data, pk->bytes, MADV_HUGEPAGE);
#endif
  const View B = tb ? View{Bp, 1, ldb} : View{Bp, ldb, 1};
  const size_t nr = kern.nr, chunks = 4 * static_cast<size_t>(std::max(1, pool::threads()));
  pool::run(bl.steps * chunks, [&](size_t task, int) {
    const size_t s = task / chunks, c = task % chunks;
    const size_t jc = (s / bl.ksteps) * bl.nc_step, pc = (s % bl.ksteps) * bl.kc_step;
    const size_t nc = std::min(bl.nc_step, N - jc), npan = cdiv(nc, nr);
    const size_t kc = std::min(bl.kc_step, K - pc), ku = cdiv(kc, kern.kg);
    const size_t p0 = c * npan / chunks, p1 = (c + 1) * npan / chunks;
    const size_t j0 = p0 * nr, j1 = std::min(nc, p1 * nr);
    if (j1 > j0) kern.pack_b(View{B.at(pc, jc + j0), B.rs, B.cs}, kc, j1 - j0, pk->data + s * bl.slot() + p0 * ku * nr);
  });
  return pk;
}

// Products smaller than this many multiply-adds run on the calling thread.
constexpr double PAR_MIN_MACS = 1 << 18;

void gemm_auto(const Problem& P) {
  gemm(P, double(P.M) * double(P.N) * double(P.K) >= PAR_MIN_MACS);
}

void gemm_batched(Problem P, size_t sa, size_t sb, size_t sc, size_t batch) {
  if (batch == 0) return;
  const double macs = double(P.M) * double(P.N) * double(P.K);
  const size_t T = static_cast<size_t>(std::max(1, pool::threads()));
  const bool per_matrix = T > 1 && batch > 1 && sc != 0 &&
                          (batch % T == 0 || batch >= 4 * T || macs < double(1 << 20));
  if (per_matrix) {
    pool::run(batch, [&](size_t b, int) {
      Problem Q = P;
      Q.A += b * sa;
      Q.B += b * sb;
      Q.C += b * sc;
      gemm(Q, false);
    });
    return;
  }
  for (size_t b = 0; b < batch; ++b) {
    Problem Q = P;
    Q.A += b * sa;
    Q.B += b * sb;
    Q.C += b * sc;
    gemm_auto(Q);
  }
}

// ---------------------------------------------------------------- JS bindings
size_t span(bool t, size_t rows, size_t cols, size_t ld) {  // elements a row-major [rows x cols] op-matrix touches
  size_t r = t ? cols : rows, c = t ? rows : cols;
  return r == 0 || c == 0 ? 0 : (r - 1) * ld + c;
}

void check_ld(const Napi::Env& env, const char* fn, bool ta, bool tb, size_t M, size_t N, size_t K, size_t lda,
              size_t ldb, size_t ldc) {
  size_t arow = ta ? M : K, brow = tb ? K : N;
  if ((lda < arow && (ta ? K : M) > 1) || (ldb < brow && (tb ? N : K) > 1) || (ldc < N && M > 1))
    fail(env, std::string(fn) + ": leading dimension too small (M=" + std::to_string(M) + " N=" + std::to_string(N) +
                  " K=" + std::to_string(K) + " lda=" + std::to_string(lda) + " ldb=" + std::to_string(ldb) +
                  " ldc=" + std::to_string(ldc) + ")");
}

// sgemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc[, bf16])
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  bool ta = bool_arg(info, 0), tb = bool_arg(info, 1);
  size_t M = int_arg(info, 2), N = int_arg(info, 3), K = int_arg(info, 4);
  float alpha = float(num_arg(info, 5));
  size_t lda = int_arg(info, 8), ldb = int_arg(info, 11), ldc = int_arg(info, 15);
  float beta = float(num_arg(info, 12));
  check_ld(info.Env(), "sgemm", ta, tb, M, N, K, lda, ldb, ldc);
  const float* A = f32(info, 6, 7, span(ta, M, K, lda));
  const float* B = f32(info, 9, 10, span(tb, K, N, ldb));
  float* C = f32(info, 13, 14, span(false, M, N, ldc));
  bool bf16 = info.Length() > 16 && bool_arg(info, 16);
  gemm_auto(Problem{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16});
  return info.Env().Undefined();
}

// sgemmBatched(transA, transB, M, N, K, alpha, A, aOff, lda, strideA, B, bOff, ldb, strideB, beta, C, cOff, ldc, strideC, batch[, bf16])
Napi::Value SgemmBatched(const Napi::CallbackInfo& info) {
  bool ta = bool_arg(info, 0), tb = bool_arg(info, 1);
  size_t M = int_arg(info, 2), N = int_arg(info, 3), K = int_arg(info, 4);
  float alpha = float(num_arg(info, 5));
  size_t lda = int_arg(info, 8), sa = int_arg(info, 9), ldb = int_arg(info, 12), sb = int_arg(info, 13);
  float beta = float(num_arg(info, 14));
  size_t ldc = int_arg(info, 17), sc = int_arg(info, 18), batch = int_arg(info, 19);
  if (batch == 0) return info.Env().Undefined();
  check_ld(info.Env(), "sgemmBatched", ta, tb, M, N, K, lda, ldb, ldc);
  const float* A = f32(info, 6, 7, (batch - 1) * sa + span(ta, M, K, lda));
  const float* B = f32(info, 10, 11, (batch - 1) * sb + span(tb, K, N, ldb));
  float* C = f32(info, 15, 16, (batch - 1) * sc + span(false, M, N, ldc));
  bool bf16 = info.Length() > 20 && bool_arg(info, 20);
  gemm_batched(Problem{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16}, sa, sb, sc, batch);
  return info.Env().Undefined();
}

// A packed B held by JS: freed by sgemmPackedFree (or when the handle is collected).
struct PackedHandle {
  PackedB* pk = nullptr;
  bool tb;
  size_t ldb;
};

void free_handle(Napi::Env env, PackedHandle* h) {
  if (h->pk) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(h->pk->bytes));
  delete h->pk;
  h->pk = nullptr;
}

PackedHandle* handle_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) fail(info.Env(), "expected a packed-B handle from sgemmPackB");
  auto* h = info[i].As<Napi::External<PackedHandle>>().Data();
  if (!h->pk) fail(info.Env(), "this packed B was freed (sgemmPackedFree)");
  return h;
}

// sgemmPackB(transB, K, N, B, bOff, ldb, bf16) → handle: op(B) [K×N] packed for the driver, for products whose
// op(B) is this matrix (a weight) and whose op(A) changes (decoding steps).
Napi::Value SgemmPackB(const Napi::CallbackInfo& info) {
  bool tb = bool_arg(info, 0);
  size_t K = int_arg(info, 1), N = int_arg(info, 2), ldb = int_arg(info, 5);
  bool bf16 = bool_arg(info, 6);
  if (K == 0 || N == 0) fail(info.Env(), "sgemmPackB: empty matrix");
  if (ldb < (tb ? K : N) && (tb ? N : K) > 1) fail(info.Env(), "sgemmPackB: leading dimension too small");
  const float* B = f32(info, 3, 4, span(tb, K, N, ldb));
  auto* h = new PackedHandle{pack_b_ahead(tb, K, N, B, ldb, bf16), tb, ldb};
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(h->pk->bytes));
  return Napi::External<PackedHandle>::New(info.Env(), h, [](Napi::Env env, PackedHandle* x) {
    free_handle(env, x);
    delete x;
  });
}

Napi::Value SgemmPackedFree(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) fail(info.Env(), "sgemmPackedFree: expected a handle");
  free_handle(info.Env(), info[0].As<Napi::External<PackedHandle>>().Data());
  return info.Env().Undefined();
}

// sgemmPacked(transA, M, N, K, alpha, A, aOff, lda, handle, B, bOff, beta, C, cOff, ldc, bf16): as sgemm with
// op(B) read from the handle; B (the same matrix, unpacked) serves the few-row path, which streams it instead.
Napi::Value SgemmPacked(const Napi::CallbackInfo& info) {
  bool ta = bool_arg(info, 0);
  size_t M = int_arg(info, 1), N = int_arg(info, 2), K = int_arg(info, 3);
  float alpha = float(num_arg(info, 4));
  size_t lda = int_arg(info, 7);
  PackedHandle* h = handle_arg(info, 8);
  float beta = float(num_arg(info, 11));
  size_t ldc = int_arg(info, 14);
  bool bf16 = bool_arg(info, 15);
  if (h->pk->K != K || h->pk->N != N)
    fail(info.Env(), "sgemmPacked: the packed B is " + std::to_string(h->pk->K) + "x" + std::to_string(h->pk->N) +
                         ", the product needs " + std::to_string(K) + "x" + std::to_string(N));
  if (h->pk->kern != &kernels(bf16)) fail(info.Env(), "sgemmPacked: B was packed for the other precision");
  check_ld(info.Env(), "sgemmPacked", ta, h->tb, M, N, K, lda, h->ldb, ldc);
  const float* A = f32(info, 5, 6, span(ta, M, K, lda));
  const float* B = f32(info, 9, 10, span(h->tb, K, N, h->ldb));
  float* C = f32(info, 12, 13, span(false, M, N, ldc));
  Problem P{ta, h->tb, M, N, K, alpha, A, lda, B, h->ldb, beta, C, ldc, bf16};
  P.pre = h->pk;
  gemm_auto(P);
  return info.Env().Undefined();
}

}  // namespace

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("sgemmBatched", Napi::Function::New(env, SgemmBatched));
  exports.Set("sgemmPackB", Napi::Function::New(env, SgemmPackB));
  exports.Set("sgemmPackedFree", Napi::Function::New(env, SgemmPackedFree));
  exports.Set("sgemmPacked", Napi::Function::New(env, SgemmPacked));
}

}  // namespace ak

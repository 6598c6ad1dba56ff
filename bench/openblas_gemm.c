/* Reference timing for `alignkit bench gemm`: OpenBLAS cblas_sgemm on the same shapes, row-major.
 * Usage: openblas_gemm REPS SHAPE...   with SHAPE = LAYOUT:M:N:K, LAYOUT in {NN, NT, TN, TT}
 * (first letter: A stored transposed, K x M; second: B stored transposed, N x K).
 * Threads come from OPENBLAS_NUM_THREADS. Prints one JSON object per shape:
 * {"layout":"NN","M":..,"N":..,"K":..,"threads":..,"median_ms":..,"best_ms":..,"gflops":..,"gflops_best":..}
 * where gflops is computed from the median time. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern int openblas_get_num_threads(void);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void fill(float* p, size_t n, unsigned* s) {
  for (size_t i = 0; i < n; i++) {
    *s = *s * 1664525u + 1013904223u;
    p[i] = (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s REPS LAYOUT:M:N:K...\n", argv[0]);
    return 2;
  }
  int reps = atoi(argv[1]);
  if (reps < 1) reps = 1;
  unsigned seed = 12345u;
  for (int a = 2; a < argc; a++) {
    char lay[3] = {0};
    int M, N, K;
    if (sscanf(argv[a], "%2[NT]:%d:%d:%d", lay, &M, &N, &K) != 4 || strlen(lay) != 2) {
      fprintf(stderr, "bad shape %s\n", argv[a]);
      return 2;
    }
    int ta = lay[0] == 'T', tb = lay[1] == 'T';
    float* A = malloc(sizeof(float) * (size_t)M * K);
    float* B = malloc(sizeof(float) * (size_t)K * N);
    float* C = malloc(sizeof(float) * (size_t)M * N);
    if (!A || !B || !C) return 3;
    fill(A, (size_t)M * K, &seed);
    fill(B, (size_t)K * N, &seed);
    memset(C, 0, sizeof(float) * (size_t)M * N);
    int lda = ta ? M : K, ldb = tb ? K : N;
    double* t = malloc(sizeof(double) * reps);
    for (int r = -2; r < reps; r++) { /* two warm-up runs */
      double t0 = now_ms();
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                  lda, B, ldb, 0.0f, C, N);
      double t1 = now_ms();
      if (r >= 0) t[r] = t1 - t0;
    }
    qsort(t, reps, sizeof(double), cmp);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    double flop = 2.0 * M * N * K;
    printf("{\"layout\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"median_ms\":%.4f,\"best_ms\":%.4f,"
           "\"gflops\":%.2f,\"gflops_best\":%.2f}\n",
           lay, M, N, K, openblas_get_num_threads(), med, t[0], flop / med / 1e6, flop / t[0] / 1e6);
    fflush(stdout);
    free(t);
    free(A);
    free(B);
    free(C);
  }
  return 0;
}

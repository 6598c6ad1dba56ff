"""Reference timing for the bf16 rows of `alignkit bench gemm`: PyTorch's bf16 matmul (Debian's python3-torch 1.13,
oneDNN's AVX512-BF16 kernels; OpenBLAS has no bf16 GEMM) on the same shapes, row-major, bf16 inputs.
Usage: torch_gemm.py REPS SHAPE...   with SHAPE = LAYOUT:M:N:K as openblas_gemm.c takes it (first letter: A stored
transposed, K x M; second: B stored transposed, N x K; the transposes are views, as alignkit's are flags).
Threads: torch.set_num_threads(THREADS env, default 1). Prints one JSON object per shape, like openblas_gemm."""
import json, os, sys, time
import torch

reps = max(1, int(sys.argv[1]))
threads = int(os.environ.get("THREADS", "1"))
torch.set_num_threads(threads)
dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[os.environ.get("DTYPE", "bf16")]
g = torch.Generator().manual_seed(12345)
for spec in sys.argv[2:]:
    lay, M, N, K = spec.split(":")
    M, N, K = int(M), int(N), int(K)
    a = (torch.rand(K, M, generator=g) * 2 - 1).to(dtype).t() if lay[0] == "T" else (torch.rand(M, K, generator=g) * 2 - 1).to(dtype)
    b = (torch.rand(N, K, generator=g) * 2 - 1).to(dtype).t() if lay[1] == "T" else (torch.rand(K, N, generator=g) * 2 - 1).to(dtype)
    out = torch.empty(M, N, dtype=dtype)
    ts = []
    for r in range(-2, reps):  # two warm-up runs
        t0 = time.perf_counter()
        torch.matmul(a, b, out=out)
        t1 = time.perf_counter()
        if r >= 0:
            ts.append(t1 - t0)
    ts.sort()
    med = ts[reps // 2] if reps % 2 else 0.5 * (ts[reps // 2 - 1] + ts[reps // 2])
    flop = 2.0 * M * N * K
    print(json.dumps({"layout": lay, "M": M, "N": N, "K": K, "threads": threads, "median_ms": med * 1e3,
                      "best_ms": ts[0] * 1e3, "gflops": flop / med / 1e9, "gflops_best": flop / ts[0] / 1e9,
                      "torch": torch.__version__}), flush=True)
    del a, b, out

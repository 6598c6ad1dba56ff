"""The reference for `alignkit bench generate`: sampling with a KV cache from a GPT-2-124M-shaped model in plain
PyTorch (Debian's python3-torch): one forward pass per new token over the cached keys/values, batch B, N new
tokens, temperature sampling. Prints one JSON line: {"tokens_per_s": ..., "threads": ..., "torch": ...}."""
import json, os, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT  # noqa: E402

args = dict(a.split("=", 1) for a in sys.argv[1:])
L = int(args.get("layers", 12)); C = int(args.get("d", 768)); H = int(args.get("heads", 12)); D = C // H
V = int(args.get("vocab", 50257)); B = int(args.get("batch", 8)); N = int(args.get("new", 128)); P = int(args.get("prompt", 16))
threads = int(args.get("threads", 1)); reps = int(args.get("reps", 2))
torch.set_num_threads(threads)
torch.manual_seed(0)

model = GPT(L, C, H, V).eval()
g = torch.Generator().manual_seed(1)
prompt = torch.randint(0, V, (B, P), generator=g)

@torch.no_grad()
def run():
    caches = [(torch.zeros(B, H, P + N, D), torch.zeros(B, H, P + N, D)) for _ in range(L)]
    logits = model(prompt, caches=caches, pos=0, last_only=True)
    pos = P
    for _ in range(N):
        tok = torch.multinomial(torch.softmax(logits / 0.8, -1), 1, generator=g)
        logits = model(tok, caches=caches, pos=pos, last_only=True); pos += 1

run()  # warm-up
times = []
for _ in range(reps):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
dt = min(times)
print(json.dumps({"tokens_per_s": B * N / dt, "seconds": dt, "threads": threads,
                  "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.__version__}))

"""The reference for `alignkit bench generate`: sampling with a KV cache from a GPT-2-124M-shaped model in plain
PyTorch (Debian's python3-torch): one forward pass per new token over the cached keys/values, batch B, N new
tokens, temperature sampling. samples=S runs B/S prompts with S samples each the way transformers' generate does
num_return_sequences (the prompts are repeated, and every copy is prefilled). dtype=bf16 holds the model in
bfloat16 (model.bfloat16(): weights, activations and cache; the softmax for sampling in float32).
Prints one JSON line: {"tokens_per_s": ..., "prefill_s": ..., "threads": ..., "dtype": ..., "torch": ...}."""
import json, os, sys, time
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT  # noqa: E402

args = dict(a.split("=", 1) for a in sys.argv[1:])
L = int(args.get("layers", 12)); C = int(args.get("d", 768)); H = int(args.get("heads", 12)); D = C // H
V = int(args.get("vocab", 50257)); B = int(args.get("batch", 8)); N = int(args.get("new", 128)); P = int(args.get("prompt", 16))
S = int(args.get("samples", 1)); threads = int(args.get("threads", 1)); reps = int(args.get("reps", 2))
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.get("dtype", "fp32")]
torch.set_num_threads(threads)
torch.manual_seed(0)

model = GPT(L, C, H, V).eval().to(dtype)
g = torch.Generator().manual_seed(1)
prompt = torch.randint(0, V, (B // S, P), generator=g).repeat_interleave(S, 0)

@torch.no_grad()
def run():
    caches = [(torch.zeros(B, H, P + N, D, dtype=dtype), torch.zeros(B, H, P + N, D, dtype=dtype)) for _ in range(L)]
    t0 = time.perf_counter()
    logits = model(prompt, caches=caches, pos=0, last_only=True)
    prefill = time.perf_counter() - t0
    pos = P
    for _ in range(N):
        tok = torch.multinomial(torch.softmax(logits.float() / 0.8, -1), 1, generator=g)
        logits = model(tok, caches=caches, pos=pos, last_only=True); pos += 1
    return prefill

run()  # warm-up
times, prefills = [], []
for _ in range(reps):
    t = time.perf_counter(); prefills.append(run()); times.append(time.perf_counter() - t)
dt = min(times)
print(json.dumps({"tokens_per_s": B * N / dt, "seconds": dt, "prefill_s": min(prefills), "threads": threads,
                  "dtype": args.get("dtype", "fp32"), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                  "torch": torch.__version__}))

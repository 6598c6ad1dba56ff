"""The reference for `alignkit bench dpo-step`: one DPO training step of a GPT-2-124M-shaped model written in
plain PyTorch (Debian's python3-torch), the same work alignkit does: policy forward + backward over 2 pairs
(4 sequences) of T tokens, reference forward without grad, sigmoid DPO loss (beta 0.1), AdamW.
dtype=bf16 runs the forward passes under torch.autocast('cpu', dtype=torch.bfloat16) (what a PyTorch user does
for mixed precision on a CPU with AVX512_BF16: bf16 matmuls through oneDNN, fp32 master weights and AdamW);
dtype=fp32 runs plain float32.
Prints one JSON line: {"tokens_per_s": ..., "step_s": ..., "threads": ..., "dtype": ..., "torch": ...}."""
import contextlib, json, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT  # noqa: E402

args = dict(a.split("=", 1) for a in sys.argv[1:])
L = int(args.get("layers", 12)); C = int(args.get("d", 768)); H = int(args.get("heads", 12))
V = int(args.get("vocab", 50257)); T = int(args.get("T", 256)); P = int(args.get("pairs", 2))
steps = int(args.get("steps", 3)); threads = int(args.get("threads", 1)); dtype = args.get("dtype", "fp32")
torch.set_num_threads(threads)
torch.manual_seed(0)
cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext

def seq_logps(model, ids, mask, labels):
    logits = model(ids, mask)
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * labels[:, 1:]).sum(-1)

policy, ref = GPT(L, C, H, V), GPT(L, C, H, V)
ref.requires_grad_(False)
opt = torch.optim.AdamW(policy.parameters(), lr=1e-5)
g = torch.Generator().manual_seed(1)
ids = torch.randint(0, V, (2 * P, T), generator=g)
causal = torch.ones(T, T, dtype=torch.bool).tril()
mask = causal[None, None].expand(2 * P, 1, T, T)
labels = torch.ones(2 * P, T); labels[:, : T // 4] = 0

def step():
    opt.zero_grad(set_to_none=True)
    with cast():
        pol = seq_logps(policy, ids, mask, labels)
        with torch.no_grad():
            rl = seq_logps(ref, ids, mask, labels)
        h = (pol[0::2] - rl[0::2]) - (pol[1::2] - rl[1::2])
        loss = -F.logsigmoid(0.1 * h.float()).mean()
    loss.backward()
    opt.step()
    return loss.item()

step()  # warm-up
times = []
for _ in range(steps):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
best = sorted(times)[len(times) // 2]
print(json.dumps({"tokens_per_s": 2 * P * T / best, "step_s": best, "threads": threads, "dtype": dtype,
                  "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.__version__}))

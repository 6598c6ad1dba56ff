"""The reference for `alignkit bench dpo-step`: one DPO training step of a GPT-2-124M-shaped model written in
plain PyTorch (Debian's python3-torch), the same work alignkit does: policy forward + backward over 2 pairs
(4 sequences) of T tokens, reference forward without grad, sigmoid DPO loss (beta 0.1), AdamW.
Prints one JSON line: {"tokens_per_s": ..., "step_s": ..., "threads": ..., "torch": ...}."""
import json, math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

args = dict(a.split("=", 1) for a in sys.argv[1:])
L = int(args.get("layers", 12)); C = int(args.get("d", 768)); H = int(args.get("heads", 12))
V = int(args.get("vocab", 50257)); T = int(args.get("T", 256)); P = int(args.get("pairs", 2))
steps = int(args.get("steps", 3)); threads = int(args.get("threads", 1))
torch.set_num_threads(threads)
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_1 = nn.LayerNorm(C); s.c_attn = nn.Linear(C, 3 * C); s.c_proj = nn.Linear(C, C)
        s.ln_2 = nn.LayerNorm(C); s.c_fc = nn.Linear(C, 4 * C); s.mlp_proj = nn.Linear(4 * C, C)
    def forward(s, x, mask):
        B, T_, _ = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T_, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
        a = torch.softmax(att.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + s.c_proj(a.transpose(1, 2).reshape(B, T_, C))
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))

class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte = nn.Embedding(V, C); s.wpe = nn.Embedding(1024, C)
        s.h = nn.ModuleList(Block() for _ in range(L)); s.ln_f = nn.LayerNorm(C)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, std=0.02)
    def forward(s, ids, mask):
        x = s.wte(ids) + s.wpe(torch.arange(ids.shape[1]))
        for b in s.h: x = b(x, mask)
        return s.ln_f(x) @ s.wte.weight.T

def seq_logps(model, ids, mask, labels):
    logits = model(ids, mask)
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * labels[:, 1:]).sum(-1)

policy, ref = GPT(), GPT()
ref.requires_grad_(False)
opt = torch.optim.AdamW(policy.parameters(), lr=1e-5)
g = torch.Generator().manual_seed(1)
ids = torch.randint(0, V, (2 * P, T), generator=g)
causal = torch.ones(T, T, dtype=torch.bool).tril()
mask = causal[None, None].expand(2 * P, 1, T, T)
labels = torch.ones(2 * P, T); labels[:, : T // 4] = 0

def step():
    opt.zero_grad(set_to_none=True)
    pol = seq_logps(policy, ids, mask, labels)
    with torch.no_grad():
        rl = seq_logps(ref, ids, mask, labels)
    h = (pol[0::2] - rl[0::2]) - (pol[1::2] - rl[1::2])
    loss = -F.logsigmoid(0.1 * h).mean()
    loss.backward()
    opt.step()
    return loss.item()

step()  # warm-up
times = []
for _ in range(steps):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
best = sorted(times)[len(times) // 2]
print(json.dumps({"tokens_per_s": 2 * P * T / best, "step_s": best, "threads": threads,
                  "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.__version__}))

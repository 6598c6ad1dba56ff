"""The reference for `alignkit bench generate`: sampling with a KV cache from a GPT-2-124M-shaped model in plain
PyTorch (Debian's python3-torch): one forward pass per new token over the cached keys/values, batch B, N new
tokens, temperature sampling. Prints one JSON line: {"tokens_per_s": ..., "threads": ..., "torch": ...}."""
import json, math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

args = dict(a.split("=", 1) for a in sys.argv[1:])
L = int(args.get("layers", 12)); C = int(args.get("d", 768)); H = int(args.get("heads", 12)); D = C // H
V = int(args.get("vocab", 50257)); B = int(args.get("batch", 8)); N = int(args.get("new", 128)); P = int(args.get("prompt", 16))
threads = int(args.get("threads", 1)); reps = int(args.get("reps", 2))
torch.set_num_threads(threads)
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_1 = nn.LayerNorm(C); s.c_attn = nn.Linear(C, 3 * C); s.c_proj = nn.Linear(C, C)
        s.ln_2 = nn.LayerNorm(C); s.c_fc = nn.Linear(C, 4 * C); s.mlp_proj = nn.Linear(4 * C, C)
    def forward(s, x, cache, pos):
        B_, T_, _ = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B_, T_, H, D).transpose(1, 2) for t in (q, k, v))
        cache[0][:, :, pos:pos + T_] = k; cache[1][:, :, pos:pos + T_] = v
        k, v = cache[0][:, :, :pos + T_], cache[1][:, :, :pos + T_]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        if T_ > 1:
            att = att.masked_fill(~torch.ones(T_, pos + T_, dtype=torch.bool).tril(pos), float("-inf"))
        a = torch.softmax(att, -1) @ v
        x = x + s.c_proj(a.transpose(1, 2).reshape(B_, T_, C))
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))

class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte = nn.Embedding(V, C); s.wpe = nn.Embedding(1024, C)
        s.h = nn.ModuleList(Block() for _ in range(L)); s.ln_f = nn.LayerNorm(C)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, std=0.02)
    def forward(s, ids, caches, pos):
        x = s.wte(ids) + s.wpe(torch.arange(pos, pos + ids.shape[1]))
        for b, c in zip(s.h, caches): x = b(x, c, pos)
        return s.ln_f(x[:, -1]) @ s.wte.weight.T

model = GPT().eval()
g = torch.Generator().manual_seed(1)
prompt = torch.randint(0, V, (B, P), generator=g)

@torch.no_grad()
def run():
    caches = [(torch.zeros(B, H, P + N, D), torch.zeros(B, H, P + N, D)) for _ in range(L)]
    logits = model(prompt, caches, 0)
    pos = P
    for _ in range(N):
        tok = torch.multinomial(torch.softmax(logits / 0.8, -1), 1, generator=g)
        logits = model(tok, caches, pos); pos += 1

run()  # warm-up
times = []
for _ in range(reps):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
dt = min(times)
print(json.dumps({"tokens_per_s": B * N / dt, "seconds": dt, "threads": threads,
                  "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.__version__}))

"""The reference for `alignkit bench dpo-step --shape qwen2.5-0.5b`: one DPO step of a model in Qwen2.5-0.5B's
shape (hidden 896, 24 layers, 14 query / 2 key-value heads, intermediate 4864, vocabulary 151,936, tied
embeddings, q/k/v biases; random weights) in plain PyTorch with a hand-written LoRA (r=16, alpha 32, on every
linear layer: q, k, v, o, gate, up, down): policy = base + adapters (forward + backward, only the adapters
train), reference = the same base with the adapters off (forward without grad), sigmoid DPO loss, AdamW on the
adapters. dtype=bf16: the frozen base held in bfloat16 and the step under torch.autocast('cpu', bfloat16);
dtype=fp32: everything float32. Prints one JSON line with tokens/s and the process's peak RSS."""
import contextlib, json, math, os, resource, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

args = dict(a.split("=", 1) for a in sys.argv[1:])
T = int(args.get("T", 256)); P = int(args.get("pairs", 2)); steps = int(args.get("steps", 2))
threads = int(args.get("threads", 2)); dtype = args.get("dtype", "fp32")
Hd, Lyr, NH, NKV, I, V = 896, int(args.get("layers", 24)), 14, 2, 4864, int(args.get("vocab", 151936))
D = Hd // NH
torch.set_num_threads(threads)
torch.manual_seed(0)
base_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext


class LoraLinear(nn.Module):
    def __init__(s, i, o, bias, r=16, alpha=32):
        super().__init__()
        s.base = nn.Linear(i, o, bias=bias).to(base_dtype).requires_grad_(False)
        s.A = nn.Parameter(torch.empty(r, i).uniform_(-1 / math.sqrt(i), 1 / math.sqrt(i)))
        s.B = nn.Parameter(torch.zeros(o, r))
        s.scale, s.on = alpha / r, True

    def forward(s, x):
        y = s.base(x)
        return y + (x @ s.A.t() @ s.B.t()) * s.scale if s.on else y


def rms(x, w, eps=1e-6):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


class Layer(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1 = nn.Parameter(torch.ones(Hd, dtype=base_dtype), requires_grad=False)
        s.n2 = nn.Parameter(torch.ones(Hd, dtype=base_dtype), requires_grad=False)
        s.q, s.k, s.v = LoraLinear(Hd, NH * D, True), LoraLinear(Hd, NKV * D, True), LoraLinear(Hd, NKV * D, True)
        s.o = LoraLinear(NH * D, Hd, False)
        s.g, s.u, s.d = LoraLinear(Hd, I, False), LoraLinear(Hd, I, False), LoraLinear(I, Hd, False)

    def forward(s, x, cos, sin, mask):
        B, Tn, _ = x.shape
        a = rms(x, s.n1)
        q = s.q(a).view(B, Tn, NH, D).transpose(1, 2)
        k = s.k(a).view(B, Tn, NKV, D).transpose(1, 2)
        v = s.v(a).view(B, Tn, NKV, D).transpose(1, 2)
        rot = lambda t: torch.cat((-t[..., D // 2:], t[..., : D // 2]), -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = torch.softmax(att.float().masked_fill(~mask, float("-inf")), -1).to(v.dtype)
        x = x + s.o((att @ v).transpose(1, 2).reshape(B, Tn, Hd))
        m = rms(x, s.n2)
        return x + s.d(F.silu(s.g(m)) * s.u(m))


class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(V, Hd).to(base_dtype).requires_grad_(False)
        s.layers = nn.ModuleList(Layer() for _ in range(Lyr))
        s.norm = nn.Parameter(torch.ones(Hd, dtype=base_dtype), requires_grad=False)
        with torch.no_grad():
            for p in s.parameters():
                if p.dim() == 2 and not p.requires_grad: p.normal_(0, 0.02)
        inv = 1.0 / (1e6 ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(T).float(), inv)
        e = torch.cat((f, f), -1)
        s.cos, s.sin = e.cos()[None, None], e.sin()[None, None]

    def set_lora(s, on):
        for m in s.modules():
            if isinstance(m, LoraLinear): m.on = on

    def forward(s, ids, mask):
        x = s.emb(ids)
        for l in s.layers: x = l(x, s.cos, s.sin, mask)
        return rms(x, s.norm) @ s.emb.weight.t()


model = Model()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
g = torch.Generator().manual_seed(1)
ids = torch.randint(0, V, (2 * P, T), generator=g)
mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
labels = torch.ones(2 * P, T); labels[:, : T // 4] = 0

def seq_logps(ids):
    logits = model(ids, mask)
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * labels[:, 1:]).sum(-1)

def step():
    opt.zero_grad(set_to_none=True)
    with cast():
        model.set_lora(True)
        pol = seq_logps(ids)
        with torch.no_grad():
            model.set_lora(False)
            rl = seq_logps(ids)
            model.set_lora(True)
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
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.__version__}))

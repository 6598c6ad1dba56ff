"""A GPT-2 in plain PyTorch (Debian's python3-torch 1.13: no scaled_dot_product_attention), the reference model of
alignkit's benchmarks: the same shapes and math as alignkit's GPT-2 (pre-LN blocks, tanh GELU, tied LM head)."""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, C, H):
        super().__init__()
        s.C, s.H = C, H
        s.ln_1 = nn.LayerNorm(C); s.c_attn = nn.Linear(C, 3 * C); s.c_proj = nn.Linear(C, C)
        s.ln_2 = nn.LayerNorm(C); s.c_fc = nn.Linear(C, 4 * C); s.mlp_proj = nn.Linear(4 * C, C)

    def forward(s, x, mask=None, cache=None, pos=0):
        B, T, C = x.shape
        D = C // s.H
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, s.H, D).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # generation: append to this layer's cache and attend to everything so far
            cache[0][:, :, pos:pos + T] = k; cache[1][:, :, pos:pos + T] = v
            k, v = cache[0][:, :, :pos + T], cache[1][:, :, :pos + T]
            if T > 1:
                mask = torch.ones(T, pos + T, dtype=torch.bool).tril(pos)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        if mask is not None:
            att = att.masked_fill(~mask, float("-inf"))
        a = torch.softmax(att, -1) @ v
        x = x + s.c_proj(a.transpose(1, 2).reshape(B, T, C))
        return x + s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, L, C, H, V, P=1024):
        super().__init__()
        s.wte = nn.Embedding(V, C); s.wpe = nn.Embedding(P, C)
        s.h = nn.ModuleList(Block(C, H) for _ in range(L)); s.ln_f = nn.LayerNorm(C)
        for p in s.parameters():
            if p.dim() > 1: nn.init.normal_(p, std=0.02)

    def forward(s, ids, mask=None, caches=None, pos=0, last_only=False):
        x = s.wte(ids) + s.wpe(torch.arange(pos, pos + ids.shape[1]))
        for i, b in enumerate(s.h):
            x = b(x, mask, None if caches is None else caches[i], pos)
        x = s.ln_f(x[:, -1] if last_only else x)
        return x @ s.wte.weight.T

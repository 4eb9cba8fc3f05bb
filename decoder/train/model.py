"""The reference decoder: a llama-architecture transformer in PyTorch.

RMSNorm (pre-norm), rotary position embedding on the query/key halves
("rotate half" pairing: dimension i rotates with i + head_dim/2, frequency
theta^(-2i/head_dim)), grouped-query attention (n_kv_heads < n_heads, each
KV head shared by n_heads/n_kv_heads query heads), SwiGLU feed-forward
(w2(silu(w1 x) * w3 x)), no biases, input embedding tied to the output
projection. The C++ decoder in decoder/ implements exactly this; the tensor
names below are the ones written to model.safetensors.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    n_kv_heads: int = 2
    ffn_dim: int = 640
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        d = asdict(self)
        d["head_dim"] = self.head_dim
        return d


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, n_pos, theta, offset=0):
    inv = theta ** (-torch.arange(0, head_dim // 2, dtype=torch.float64) * 2.0 / head_dim)
    pos = torch.arange(offset, offset + n_pos, dtype=torch.float64)
    ang = torch.outer(pos, inv)  # [T, hd/2]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    # x: [B, H, T, hd]; cos/sin: [T, hd/2]
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


# Sequences longer than this attend in blocks of this many queries
# (causal_attention_blocked); shorter ones, and traced ones, in one piece.
ATTENTION_BLOCK = 256


def causal_attention_blocked(q, k, v, block):
    """Causal softmax attention, the same math as the one-piece path: query
    block [a, b) scores only keys [0, b), masking the keys after each query
    inside the block. Skips the masked upper triangle (about half the work
    at 4096 positions) and keeps the score tensors small (2-3x faster on the
    CPU for a 4096-token training step). q, k, v: [B, H, T, hd]."""
    t, hd = q.shape[2], q.shape[3]
    out = []
    for a in range(0, t, block):
        b = min(t, a + block)
        att = (q[:, :, a:b] @ k[:, :, :b].transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(b - a, b, dtype=torch.bool, device=q.device).triu(a + 1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        out.append(att @ v[:, :, :b])
    return torch.cat(out, dim=2)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.wq = nn.Linear(c.dim, c.n_heads * hd, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(c.n_heads * hd, c.dim, bias=False)

    def forward(self, x, cos, sin, trace=None):
        b, t, _ = x.shape
        c = self.c
        hd = c.head_dim
        q = self.wq(x).view(b, t, c.n_heads, hd).transpose(1, 2)
        k = self.wk(x).view(b, t, c.n_kv_heads, hd).transpose(1, 2)
        v = self.wv(x).view(b, t, c.n_kv_heads, hd).transpose(1, 2)
        if trace is not None:
            trace["k_pre_rope"] = k.detach().clone()
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if trace is not None:
            trace["k"] = k.detach().clone()
            trace["v"] = v.detach().clone()
        rep = c.n_heads // c.n_kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if trace is None and t > ATTENTION_BLOCK:
            y = causal_attention_blocked(q, k, v, ATTENTION_BLOCK)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
            if trace is not None:
                trace["q"] = q.detach().clone()
                trace["attn"] = att.detach().clone()
            y = att @ v
        y = y.transpose(1, 2).reshape(b, t, c.n_heads * hd)
        return self.wo(y)


class FeedForward(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.w1 = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.w2 = nn.Linear(c.ffn_dim, c.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attn_norm = RMSNorm(c.dim, c.norm_eps)
        self.attn = Attention(c)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.ffn = FeedForward(c)

    def forward(self, x, cos, sin, trace=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, trace)
        return x + self.ffn(self.ffn_norm(x))


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("wo.weight") or name.endswith("w2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, tokens, traces=None):
        t = tokens.shape[1]
        cos, sin = rope_tables(self.c.head_dim, t, self.c.rope_theta)
        x = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            tr = None
            if traces is not None:
                tr = {}
                traces.append(tr)
            x = layer(x, cos, sin, tr)
        x = self.norm(x)
        return x @ self.tok_embeddings.weight.t()  # tied output projection

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

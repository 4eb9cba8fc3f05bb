"""The injection model's networks in PyTorch, exactly as the C++ side
(encoder/injection_model.h) computes them; tensor names are those of
inject.safetensors (TENSOR_NAMES maps them to these modules' parameters).

  Projector   xRAG: unit-norm encoder embedding e [512] -> one input row [256]
              x = w2 gelu(w1 e + b1) + b2
  Compressor  LUMEN memory encoder, once per chunk: decoder token ids (no
              BOS, <= 128) -> 8 memory rows [8, 256]; 2 pre-norm
              bidirectional layers over tok_emb[ids] + pos_emb[i], then 8
              learned slots cross-attend to them
  Live        conditions a chunk's memory on the query embedding q [512]:
              c = wq q + bq;  m_i' = m_i + w2 gelu(w1 [m_i; c] + b1) + b2
  Reranker    GLIMMER: u = mean_i m_i';  score = w2 gelu(w1 [u; c; u*c] + b1) + b2
gelu is the exact erf form; rms(v) = v / sqrt(mean(v^2) + eps).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ENCODER_DIM = 512
DIM = 256
MEMORY_TOKENS = 8
LAYERS = 2
HEADS = 4
FFN = 512
MAX_TOKENS = 128
NORM_EPS = 1e-5
PQ_M = 32
PQ_NBITS = 8


def rms(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * weight


def gelu(x):
    return F.gelu(x)  # exact (erf) form, PyTorch's default


def mha(q, k, v, key_mask=None):
    """q [B, Tq, 256], k/v [B, Tk, 256] -> [B, Tq, 256]; HEADS heads of 64,
    scale 1/sqrt(64); key_mask [B, Tk] True where a key is real."""
    b, tq, _ = q.shape
    tk = k.shape[1]
    hd = DIM // HEADS
    q = q.view(b, tq, HEADS, hd).transpose(1, 2)
    k = k.view(b, tk, HEADS, hd).transpose(1, 2)
    v = v.view(b, tk, HEADS, hd).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
    if key_mask is not None:
        att = att.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    y = att.softmax(dim=-1) @ v
    return y.transpose(1, 2).reshape(b, tq, DIM)


class Projector(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Linear(ENCODER_DIM, DIM)
        self.w2 = nn.Linear(DIM, DIM)
        nn.init.normal_(self.w1.weight, std=1.0 / math.sqrt(ENCODER_DIM) * 8)
        nn.init.normal_(self.w2.weight, std=0.05 / math.sqrt(DIM))

    def forward(self, e):
        return self.w2(gelu(self.w1(e)))


class CompressorLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.Parameter(torch.ones(DIM))
        self.wqkv = nn.Linear(DIM, 3 * DIM)
        self.wo = nn.Linear(DIM, DIM)
        self.norm2 = nn.Parameter(torch.ones(DIM))
        self.w1 = nn.Linear(DIM, FFN)
        self.w2 = nn.Linear(FFN, DIM)
        for lin in (self.wqkv, self.wo, self.w1, self.w2):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, x, key_mask):
        q, k, v = self.wqkv(rms(x, self.norm1)).split(DIM, dim=-1)
        h = x + self.wo(mha(q, k, v, key_mask))
        return h + self.w2(gelu(self.w1(rms(h, self.norm2))))


class Compressor(nn.Module):
    def __init__(self, tok_emb):
        super().__init__()
        # A frozen copy of the decoder's token embeddings (exported with the
        # model so the C++ side needs nothing else).
        self.register_buffer("tok_emb", tok_emb.detach().clone())
        self.pos_emb = nn.Parameter(torch.randn(MAX_TOKENS, DIM) * 0.02)
        self.layers = nn.ModuleList([CompressorLayer() for _ in range(LAYERS)])
        self.slots = nn.Parameter(torch.randn(MEMORY_TOKENS, DIM) * 0.02)
        self.xnorm_q = nn.Parameter(torch.ones(DIM))
        self.xnorm_kv = nn.Parameter(torch.ones(DIM))
        self.wq = nn.Linear(DIM, DIM)
        self.wk = nn.Linear(DIM, DIM)
        self.wv = nn.Linear(DIM, DIM)
        self.wo = nn.Linear(DIM, DIM)
        self.out_norm = nn.Parameter(torch.ones(DIM))
        self.out = nn.Linear(DIM, DIM)
        # Content flows from the start: each slot starts as an attention-
        # weighted mean of the chunk's (normalized) token states (values and
        # output are the identity, the slots small), and the output maps it
        # back to the scale of the decoder's token embeddings, so the initial
        # memory rows look like soft mixtures of the chunk's own tokens.
        # Random query/key maps (logit std about 2) spread the slots over
        # different tokens. A generic soft prompt that ignores the chunk is
        # otherwise the easy optimum for this small decoder.
        for lin in (self.wq, self.wk):
            nn.init.normal_(lin.weight, std=0.09)
        for lin in (self.wv, self.wo):
            nn.init.eye_(lin.weight)
        for lin in (self.wq, self.wk, self.wv, self.wo):
            nn.init.zeros_(lin.bias)
        scale = tok_emb.detach().float().pow(2).mean().sqrt().item()
        with torch.no_grad():
            self.out.weight.copy_(torch.eye(DIM) * scale)
        nn.init.zeros_(self.out.bias)

    def forward(self, ids, lengths):
        """ids [B, T] (T <= 128, padding anything), lengths [B] -> [B, 8, 256]."""
        b, t = ids.shape
        key_mask = torch.arange(t)[None, :] < lengths[:, None]
        x = self.tok_emb[ids.clamp(min=0)] + self.pos_emb[:t][None]
        for layer in self.layers:
            x = layer(x, key_mask)
        slots = self.slots[None].expand(b, -1, -1)
        q = self.wq(rms(slots, self.xnorm_q))
        kv = rms(x, self.xnorm_kv)
        s = slots + self.wo(mha(q, self.wk(kv), self.wv(kv), key_mask))
        return self.out(rms(s, self.out_norm))


class Live(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq = nn.Linear(ENCODER_DIM, DIM)
        self.w1 = nn.Linear(2 * DIM, DIM)
        self.w2 = nn.Linear(DIM, DIM)
        nn.init.normal_(self.wq.weight, std=1.0 / math.sqrt(ENCODER_DIM) * 8)
        nn.init.normal_(self.w1.weight, std=1.0 / math.sqrt(2 * DIM))
        nn.init.zeros_(self.w2.weight)  # starts as the identity on the memory
        nn.init.zeros_(self.w2.bias)

    def condition(self, q):
        return self.wq(q)

    def forward(self, memory, q):
        """memory [B, 8, 256], q [B, 512] -> (conditioned [B, 8, 256], c [B, 256])."""
        c = self.condition(q)
        cm = c[:, None, :].expand(-1, memory.shape[1], -1)
        return memory + self.w2(gelu(self.w1(torch.cat([memory, cm], dim=-1)))), c


class Reranker(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Linear(3 * DIM, DIM)
        self.w2 = nn.Linear(DIM, 1)

    def score(self, u, c):
        """u (mean conditioned memory) [..., 256], c [..., 256] -> score [...]."""
        return self.w2(gelu(self.w1(torch.cat([u, c, u * c], dim=-1)))).squeeze(-1)

    def forward(self, conditioned, c):
        """conditioned [B, 8, 256], c [B, 256] -> score [B]."""
        return self.score(conditioned.mean(dim=1), c)


class InjectionModel(nn.Module):
    def __init__(self, tok_emb):
        super().__init__()
        self.proj = Projector()
        self.comp = Compressor(tok_emb)
        self.live = Live()
        self.rerank = Reranker()


def tensor_names(model):
    """inject.safetensors name -> tensor of `model` (the spec's names)."""
    out = {
        "proj.w1": model.proj.w1.weight, "proj.b1": model.proj.w1.bias,
        "proj.w2": model.proj.w2.weight, "proj.b2": model.proj.w2.bias,
        "comp.tok_emb": model.comp.tok_emb, "comp.pos_emb": model.comp.pos_emb,
        "comp.slots": model.comp.slots,
        "comp.xnorm_q": model.comp.xnorm_q, "comp.xnorm_kv": model.comp.xnorm_kv,
        "comp.out_norm": model.comp.out_norm,
        "comp.out.w": model.comp.out.weight, "comp.out.b": model.comp.out.bias,
        "live.wq": model.live.wq.weight, "live.bq": model.live.wq.bias,
        "live.w1": model.live.w1.weight, "live.b1": model.live.w1.bias,
        "live.w2": model.live.w2.weight, "live.b2": model.live.w2.bias,
        "rerank.w1": model.rerank.w1.weight, "rerank.b1": model.rerank.w1.bias,
        "rerank.w2": model.rerank.w2.weight, "rerank.b2": model.rerank.w2.bias,
    }
    for n in ("q", "k", "v", "o"):
        lin = getattr(model.comp, "w" + n)
        out[f"comp.xattn.w{n}"] = lin.weight
        out[f"comp.xattn.b{n}"] = lin.bias
    for i, layer in enumerate(model.comp.layers):
        p = f"comp.layers.{i}."
        out.update({p + "norm1": layer.norm1, p + "wqkv": layer.wqkv.weight,
                    p + "bqkv": layer.wqkv.bias, p + "wo": layer.wo.weight,
                    p + "bo": layer.wo.bias, p + "norm2": layer.norm2,
                    p + "w1": layer.w1.weight, p + "b1": layer.w1.bias,
                    p + "w2": layer.w2.weight, p + "b2": layer.w2.bias})
    return out

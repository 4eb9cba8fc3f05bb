"""The frozen decoder on spec B's prompts: `[BOS] <injected rows> ids`, where
the injected rows (none, one xRAG row or 8 memory rows) take the input
embedding slots right after BOS, followed by token ids; the loss scores a
suffix of those ids (the target B, or the chunk C in stage 1).

Batches are right-padded: attention is causal, so padding after a sequence
changes none of its logits.
"""
import torch
import torch.nn.functional as F

from model import rope_tables  # decoder/train/model.py

BOS = 1


def decoder_on_embeddings(dec, x):
    """x [B, T, dim] input embeddings -> logits [B, T, vocab]."""
    t = x.shape[1]
    cos, sin = rope_tables(dec.c.head_dim, t, dec.c.rope_theta)
    for layer in dec.layers:
        x = layer(x, cos, sin)
    return dec.norm(x) @ dec.tok_embeddings.weight.t()


def build(dec, rows, prefixes, targets):
    """rows: [B, k, dim] injected rows or None (k = 0); prefixes/targets:
    lists of id lists. Sequence b = [BOS] rows[b] prefixes[b] targets[b].
    -> (logits of the positions that predict each target token [N, vocab],
        the target ids [N], per-token item index [N])."""
    b = len(prefixes)
    k = 0 if rows is None else rows.shape[1]
    tails = [p + t for p, t in zip(prefixes, targets)]
    width = max(len(t) for t in tails)
    ids = torch.zeros(b, width, dtype=torch.long)
    for i, t in enumerate(tails):
        ids[i, :len(t)] = torch.tensor(t)
    emb = dec.tok_embeddings.weight
    parts = [emb[torch.full((b, 1), BOS)]]
    if k:
        parts.append(rows.to(emb.dtype))
    parts.append(emb[ids])
    logits = decoder_on_embeddings(dec, torch.cat(parts, dim=1))
    # Token j of tails[i] sits at position 1 + k + j, predicted by k + j.
    bi, pos, tgt = [], [], []
    for i, (p, t) in enumerate(zip(prefixes, targets)):
        for j in range(len(p), len(p) + len(t)):
            bi.append(i)
            pos.append(k + j)
            tgt.append(tails[i][j])
    bi = torch.tensor(bi)
    return logits[bi, torch.tensor(pos)], torch.tensor(tgt), bi


def nll(logits, tgt):
    return F.cross_entropy(logits, tgt)


def kl(teacher_logits, student_logits):
    """KL(teacher || student), mean over scored tokens."""
    t = teacher_logits.log_softmax(-1)
    s = student_logits.log_softmax(-1)
    return (t.exp() * (t - s)).sum(-1).mean()


def per_item_nll(logits, tgt, bi, n):
    """-> (summed NLL per item [n], scored tokens per item [n])."""
    tok = F.cross_entropy(logits, tgt, reduction="none")
    total = torch.zeros(n).index_add_(0, bi, tok)
    count = torch.zeros(n).index_add_(0, bi, torch.ones_like(tok))
    return total, count

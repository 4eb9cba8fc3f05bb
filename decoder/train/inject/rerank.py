"""GLIMMER-style reranker training by perplexity distillation.

For each of R training queries (A of a training item), the candidates are
its top-8 training chunks by embedding dot product emb(A) . emb(C) (the true
chunk replaces the 8th when it is not among them). The target distribution
over the candidates is softmax(-NLL(B | memory of the candidate) / tau),
NLL the mean per target token with the candidate's conditioned memory
([BOS] <m'_1..8> A -> B), tau by default the mean standard deviation of the
candidates' NLL (tau()); only rerank.* trains, with KL(target || softmax(
score)). The conditioned memories are computed once (compressor and live
frozen by then): the reranker needs only their mean u and the query's c.
"""
import numpy as np
import torch

from . import prompt, stages

CANDIDATES = 8


def candidates(qe, ce, rows, k=CANDIDATES, force_own=True):
    """-> [len(rows), k] chunk indices by dot product, best first; with
    force_own, row r's own chunk r replaces the k-th when not among them."""
    out = []
    for r in rows:
        s = ce @ qe[r]
        top = np.argsort(-s, kind="stable")[:k]
        if force_own and r not in top:
            top[-1] = r
        out.append(top)
    return np.stack(out)


@torch.no_grad()
def conditioned(model, items, ce, cand, q):
    """Memory of chunks `cand` conditioned on query embedding q [512]
    -> (conditioned [k, 8, 256], c [k, 256])."""
    _, ids, lengths, _, _ = stages.batch_tensors(items, cand, ce, ce)
    mem = model.comp(ids, lengths)
    qq = torch.from_numpy(np.asarray(q))[None].expand(len(cand), -1)
    return model.live(mem, qq)


@torch.no_grad()
def distillation_data(dec, model, items, ce, qe, rows):
    """-> dict of tensors: u [R, k, 256], c [R, k, 256], nll [R, k], true [R]
    (the position of the item's own chunk among its candidates), dense [R]
    (index of the dense top-1, always 0)."""
    cand = candidates(qe, ce, rows)
    us, cs, nlls, true = [], [], [], []
    for r, cs_idx in zip(rows, cand):
        m, c = conditioned(model, items, ce, cs_idx, qe[r])
        q, t = items[r]["query_ids"], items[r]["target_ids"]
        lg, tg, bi = prompt.build(dec, m, [q] * len(cs_idx), [t] * len(cs_idx))
        tot, cnt = prompt.per_item_nll(lg, tg, bi, len(cs_idx))
        us.append(m.mean(dim=1))
        cs.append(c)
        nlls.append(tot / cnt)
        true.append(int(np.nonzero(cs_idx == r)[0][0]))
    return {"u": torch.stack(us), "c": torch.stack(cs), "nll": torch.stack(nlls),
            "true": torch.tensor(true), "cand": torch.from_numpy(cand)}


def tau(data, fixed=0.0):
    """The target's temperature: `fixed`, or when 0 the mean over the queries
    of the standard deviation of their candidates' NLL (the target then has
    the same sharpness whatever the scale of the NLL differences)."""
    if fixed > 0:
        return fixed
    return max(1e-6, data["nll"].std(dim=-1).mean().item())


def loss(reranker, data, idx, tau):
    u, c, nll = data["u"][idx], data["c"][idx], data["nll"][idx]
    target = (-nll / tau).softmax(-1)
    logp = reranker.score(u, c).log_softmax(-1)
    return (target * (target.clamp_min(1e-12).log() - logp)).sum(-1).mean()


@torch.no_grad()
def accuracy(reranker, data):
    """-> (rerank top-1 is the true chunk, dense top-1 is, the lowest-NLL
    candidate is): fractions over the queries."""
    s = reranker.score(data["u"], data["c"])
    true = data["true"]
    return {"rerank_top1": (s.argmax(-1) == true).float().mean().item(),
            "dense_top1": (true == 0).float().mean().item(),
            "oracle_nll_top1": (data["nll"].argmin(-1) == true).float().mean().item()}

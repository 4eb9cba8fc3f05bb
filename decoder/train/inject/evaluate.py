"""Held-out evaluation of the injection model (eval.json): on the validation
items (val_items.jsonl, data.py's split rule), the perplexity of the target
B after each kind of context, all rows on the same items and tokens:

  none          [BOS] A -> B
  text          [BOS] C "\\n" A -> B   ("\\n" has no ids with this tokenizer)
  xrag          [BOS] proj(emb(C)) A -> B
  memory        [BOS] live(comp(C), emb(A)) A -> B
  memory_pq     the same with comp(C) coded and decoded by the PQ codebooks
  *_other       text, xrag, memory with the chunk of another item (item
                i + n/2): the part of a gain that is not the chunk's content
And retrieval among all validation chunks: dense top-1 (emb(A) . emb(C))
versus the reranker's top-1 over the dense top-8 (as retrieved: the own
chunk is not forced in), how often each is the
item's own chunk, and the perplexity of B with the memory of each's pick.
"""
import math

import numpy as np
import torch

from . import modules, prompt, rerank, stages
from . import pq as pq_mod

BATCH = 32


@torch.no_grad()
def _nll(dec, items, rows_fn, prefix_fn):
    """rows_fn(item indices) -> injected rows or None; prefix_fn(item index)
    -> the ids before the target."""
    tot, cnt = 0.0, 0.0
    per_item = []
    for a in range(0, len(items), BATCH):
        idx = np.arange(a, min(len(items), a + BATCH))
        sel = [items[i] for i in idx]
        rows = rows_fn(idx)
        lg, tg, bi = prompt.build(dec, rows, [prefix_fn(i) for i in idx],
                                  [it["target_ids"] for it in sel])
        t, c = prompt.per_item_nll(lg, tg, bi, len(sel))
        tot += t.sum().item()
        cnt += c.sum().item()
        per_item.extend((t / c).tolist())
    return {"nll": tot / cnt, "ppl": math.exp(tot / cnt), "tokens": int(cnt)}, per_item


@torch.no_grad()
def evaluate(dec, model, pq_centroids, items, ce, qe):
    model.eval()
    n = len(items)
    _, ids, lengths, _, _ = stages.batch_tensors(items, np.arange(n), ce, ce)
    memory = torch.cat([model.comp(ids[a:a + BATCH], lengths[a:a + BATCH])
                        for a in range(0, n, BATCH)])
    q = pq_mod.from_centroids(pq_centroids)
    flat = memory.reshape(-1, modules.DIM).numpy()
    memory_pq = torch.from_numpy(pq_mod.decode(q, pq_mod.encode(q, flat))).view_as(memory)
    ce_t, qe_t = torch.from_numpy(ce), torch.from_numpy(qe)
    def query(i):
        return items[i]["query_ids"]
    out = {"items": n}
    out["none"], _ = _nll(dec, items, lambda idx: None, query)
    out["text"], _ = _nll(dec, items, lambda idx: None,
                          lambda i: items[i]["chunk_ids"] + items[i]["query_ids"])
    out["xrag"], _ = _nll(dec, items, lambda idx: model.proj(ce_t[idx])[:, None, :], query)
    out["memory"], _ = _nll(dec, items, lambda idx: model.live(memory[idx], qe_t[idx])[0],
                            query)
    out["memory_pq"], _ = _nll(dec, items,
                               lambda idx: model.live(memory_pq[idx], qe_t[idx])[0], query)
    # The same with another item's chunk: how much of each gain is the
    # chunk's content rather than a generic prefix.
    other = (np.arange(n) + n // 2) % n
    out["text_other"], _ = _nll(dec, items, lambda idx: None,
                                lambda i: items[other[i]]["chunk_ids"] + items[i]["query_ids"])
    out["xrag_other"], _ = _nll(dec, items,
                                lambda idx: model.proj(ce_t[other[idx]])[:, None, :], query)
    out["memory_other"], _ = _nll(
        dec, items, lambda idx: model.live(memory[other[idx]], qe_t[idx])[0], query)
    out["pq_relative_mse"] = float(((memory_pq - memory) ** 2).mean() / (memory ** 2).mean())

    # Retrieval among the validation chunks.
    cand = rerank.candidates(qe, ce, np.arange(n), force_own=False)
    dense_top1 = cand[:, 0]
    picks = []
    for i in range(n):
        m, c = model.live(memory[cand[i]], qe_t[i][None].expand(len(cand[i]), -1))
        picks.append(int(cand[i][int(model.rerank(m, c).argmax())]))
    picks = np.asarray(picks)
    truth = np.arange(n)
    out["retrieval"] = {"candidates": rerank.CANDIDATES,
                        "dense_top1_accuracy": float((dense_top1 == truth).mean()),
                        "rerank_top1_accuracy": float((picks == truth).mean()),
                        "true_in_dense_top8": float(np.mean(
                            [i in cand[i] for i in range(n)]))}
    out["memory_dense_top1"], _ = _nll(
        dec, items, lambda idx: model.live(memory[dense_top1[idx]], qe_t[idx])[0], query)
    out["memory_rerank_top1"], _ = _nll(
        dec, items, lambda idx: model.live(memory[picks[idx]], qe_t[idx])[0], query)
    out["xrag_dense_top1"], _ = _nll(
        dec, items, lambda idx: model.proj(ce_t[dense_top1[idx]])[:, None, :], query)
    out["xrag_rerank_top1"], _ = _nll(
        dec, items, lambda idx: model.proj(ce_t[picks[idx]])[:, None, :], query)

    gap = out["none"]["ppl"] - out["text"]["ppl"]
    gain_exact = out["none"]["ppl"] - out["memory"]["ppl"]

    def closed(name):
        return (out["none"]["ppl"] - out[name]["ppl"]) / gap if gap else float("nan")
    out["gap_closed"] = {"xrag": closed("xrag"), "memory": closed("memory"),
                         "memory_pq": closed("memory_pq")}
    out["pq_keeps_gain"] = ((out["none"]["ppl"] - out["memory_pq"]["ppl"]) / gain_exact
                            if gain_exact else float("nan"))
    out["bytes_per_chunk"] = {"memory_fp16": modules.MEMORY_TOKENS * modules.DIM * 2,
                              "memory_pq": modules.MEMORY_TOKENS * modules.PQ_M,
                              "xrag_fp16": modules.DIM * 2}
    model.train()
    return out

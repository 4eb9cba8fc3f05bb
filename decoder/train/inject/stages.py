"""The two xRAG/LUMEN training stages (decoder, encoder frozen), run side by
side in every step: the projector and the memory path (compressor + live
conditioning) see the same batch, so stage 2's teacher runs once for both.

  stage 1 (reconstruction, xRAG "paraphrase pretraining"):
      [BOS] <rows> TEMPLATE C      loss NLL(C)
      xRAG rows = proj(emb(C)); memory rows = live(comp(C), q = emb(C))
  stage 2 (the task, spec B):
      [BOS] <rows> A -> B          loss NLL(B) + KL(teacher || student)
      teacher = the decoder on [BOS] C A -> B (text RAG; "\\n" has no ids)
      xRAG rows = proj(emb(C)); memory rows = live(comp(C), q = emb(A))
"""
import torch

from . import prompt

# Stage-1 templates: the injected rows, then one of these, then C.
TEMPLATES = ["In other words:", "Background:", "The text says:", "To recap,"]


def batch_tensors(items, idx, ce, qe):
    sel = [items[i] for i in idx]
    chunk_ids = [it["chunk_ids"][:128] for it in sel]
    width = max(len(c) for c in chunk_ids)
    ids = torch.full((len(sel), width), -1, dtype=torch.long)
    for i, c in enumerate(chunk_ids):
        ids[i, :len(c)] = torch.tensor(c)
    lengths = torch.tensor([len(c) for c in chunk_ids])
    return sel, ids, lengths, torch.from_numpy(ce[idx]), torch.from_numpy(qe[idx])


def stage1_loss(dec, model, template_ids, items, idx, ce, qe, gen):
    sel, ids, lengths, cemb, _ = batch_tensors(items, idx, ce, qe)
    t = torch.randint(len(template_ids), (len(sel),), generator=gen).tolist()
    prefixes = [template_ids[j] for j in t]
    targets = [it["chunk_ids"] for it in sel]
    x_rows = model.proj(cemb)[:, None, :]
    lx, tx, _ = prompt.build(dec, x_rows, prefixes, targets)
    mem, _ = model.live(model.comp(ids, lengths), cemb)
    lm, tm, _ = prompt.build(dec, mem, prefixes, targets)
    nx, nm = prompt.nll(lx, tx), prompt.nll(lm, tm)
    return nx + nm, {"xrag_nll": nx.item(), "memory_nll": nm.item()}


def stage2_loss(dec, model, items, idx, ce, qe, kl_weight=1.0):
    sel, ids, lengths, cemb, qemb = batch_tensors(items, idx, ce, qe)
    queries = [it["query_ids"] for it in sel]
    targets = [it["target_ids"] for it in sel]
    with torch.no_grad():
        lt, _, _ = prompt.build(dec, None, [it["chunk_ids"] + it["query_ids"] for it in sel],
                                targets)
    x_rows = model.proj(cemb)[:, None, :]
    lx, tx, _ = prompt.build(dec, x_rows, queries, targets)
    mem, _ = model.live(model.comp(ids, lengths), qemb)
    lm, tm, _ = prompt.build(dec, mem, queries, targets)
    nx, nm = prompt.nll(lx, tx), prompt.nll(lm, tm)
    kx, km = prompt.kl(lt, lx), prompt.kl(lt, lm)
    loss = nx + nm + kl_weight * (kx + km)
    return loss, {"xrag_nll": nx.item(), "memory_nll": nm.item(), "xrag_kl": kx.item(),
                  "memory_kl": km.item(), "teacher_nll": prompt.nll(lt, tx).item()}

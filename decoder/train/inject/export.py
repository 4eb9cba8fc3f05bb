#!/usr/bin/env python3
"""Exports a finished injection-model run as the committed model directory
(issue 14, spec A):

  <out>/config.json         dims, PQ shape, lineage hashes (lineage.py)
  <out>/inject.safetensors  F32 tensors of modules.py's networks and the
                            PQ codebooks pq.centroids [32, 256, 8]
  <out>/tokenizer.model     a copy of the decoder's SentencePiece model
  <out>/parity.safetensors  fixed inputs and PyTorch's outputs for the C++
                            parity test (see parity())
  <out>/eval.json           held-out evaluation (evaluate.py)
  <out>/README.md           the card (card.py)
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import sentencepiece as spm
import torch

from export import write_safetensors  # decoder/train/export.py

from . import card, evaluate, lineage, modules
from . import pq as pq_mod
from . import train as train_mod

NAME = "mnemo-ref-4m-inject"


@torch.no_grad()
def parity(model, pq_centroids, sp, items, ce, qe):
    """Inputs: the chunk embeddings of validation items 0 and 1, the token
    ids of item 0's chunk and of items 1-3's chunks joined (past 128 ids:
    truncated there), item 0's query embedding. Outputs: their projection,
    memory, the conditioning of memory[0] on the query, its rerank score,
    and memory[0]'s PQ codes and decoded rows. The texts are in the
    metadata ("texts"): the tokenizer gives in.tokens from them."""
    model.eval()
    texts = [items[0]["text"], " ".join(it["text"] for it in items[1:4])]
    toks = [sp.encode(t)[:modules.MAX_TOKENS] for t in texts]
    tokens = np.full((2, modules.MAX_TOKENS), -1, dtype=np.int32)
    for i, t in enumerate(toks):
        tokens[i, :len(t)] = t
    lengths = np.asarray([len(t) for t in toks], dtype=np.int32)
    emb = np.ascontiguousarray(ce[:2], dtype=np.float32)
    memory = model.comp(torch.from_numpy(tokens).long(), torch.from_numpy(lengths).long())
    query = np.ascontiguousarray(qe[0], dtype=np.float32)
    conditioned, c = model.live(memory[:1], torch.from_numpy(query)[None])
    score = model.rerank(conditioned, c)
    q = pq_mod.from_centroids(pq_centroids)
    codes = pq_mod.encode(q, memory[0].numpy())
    return {
        "in.embedding": emb,
        "out.projected": model.proj(torch.from_numpy(emb)).numpy(),
        "in.tokens": tokens, "in.lengths": lengths,
        "out.memory": memory.numpy(),
        "in.query": query,
        "out.conditioned": conditioned[0].numpy(),
        "out.rerank": score.numpy().reshape(1),
        "out.pq_codes": codes.astype(np.int32),
        "out.pq_decoded": pq_mod.decode(q, codes),
    }, texts


def main():
    ap = argparse.ArgumentParser(description="Export an injection-model run.")
    ap.add_argument("--run", default=".assets/inject-run")
    ap.add_argument("--out", default="decoder/models/" + NAME)
    ap.add_argument("--early", action="store_true",
                    help="the card says this is an early checkpoint (a short run)")
    ap.add_argument("--no-eval", action="store_true", help="skip eval.json (keep the old one)")
    args = ap.parse_args()
    ck = torch.load(os.path.join(args.run, "checkpoint.pt"))
    if ck["state"]["stage"] != "done":
        sys.exit(f"export: {args.run} stopped at stage {ck['state']['stage']}; "
                 "run scripts/train_inject again to finish it")
    targs = train_mod.parse_args([])
    targs.__dict__.update(ck["args"])
    targs.run = args.run
    dec, sp, model, splits = train_mod.load_all(targs)
    model.load_state_dict(ck["model"])
    model.eval()
    centroids = np.asarray(ck["state"]["pq"], dtype=np.float32)
    os.makedirs(args.out, exist_ok=True)

    tensors = {k: v.detach().float().numpy() for k, v in modules.tensor_names(model).items()}
    tensors["pq.centroids"] = centroids
    wpath = os.path.join(args.out, "inject.safetensors")
    write_safetensors(wpath, tensors, {"format": "pt", "name": NAME})
    shutil.copyfile(os.path.join(targs.decoder, "tokenizer.model"),
                    os.path.join(args.out, "tokenizer.model"))
    config = {
        "name": NAME, "format": 1,
        "encoder": "use-lite", "encoder_dim": modules.ENCODER_DIM,
        "encoder_sha256": lineage.encoder_sha256(targs.encoder),
        "decoder": os.path.basename(os.path.normpath(targs.decoder)),
        "decoder_dim": modules.DIM,
        "decoder_fingerprint": lineage.decoder_fingerprint(targs.decoder),
        "decoder_weights_sha256": lineage.decoder_weights_sha256(targs.decoder),
        "tokenizer": "tokenizer.model",
        "memory_tokens": modules.MEMORY_TOKENS, "compressor_layers": modules.LAYERS,
        "compressor_heads": modules.HEADS, "compressor_ffn": modules.FFN,
        "compressor_max_tokens": modules.MAX_TOKENS, "norm_eps": modules.NORM_EPS,
        "pq_m": modules.PQ_M, "pq_nbits": modules.PQ_NBITS,
        "weights": "inject.safetensors", "weights_sha256": lineage.sha256_file(wpath),
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    items, ce, qe = splits["val"]
    fixture, texts = parity(model, centroids, sp, items, ce, qe)
    write_safetensors(os.path.join(args.out, "parity.safetensors"), fixture,
                      {"texts": json.dumps(texts), "tolerance": "1e-4"})
    eval_path = os.path.join(args.out, "eval.json")
    if args.no_eval:
        with open(eval_path) as f:
            result = json.load(f)
    else:
        result = evaluate.evaluate(dec, model, centroids, items, ce, qe)
    result["train_log"] = card.log_summary(args.run)
    with open(eval_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    card.write(args.out, config, result, ck["args"], args.early)
    print(json.dumps({k: result[k] for k in ("none", "text", "xrag", "memory", "memory_pq",
                                              "retrieval", "gap_closed")}))
    print(f"exported {args.run} to {args.out}")


if __name__ == "__main__":
    main()

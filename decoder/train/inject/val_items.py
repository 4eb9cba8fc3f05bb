"""Writes the held-out items of the injection model's fidelity bench
(.assets/inject-run/val_items.jsonl) without training: the same split rule
and the same n as scripts/train_inject (data.items_of_split over val.txt),
so the bench runs on a fresh clone. scripts/bench inject_fidelity calls it
when the file is missing.

  python3 -m inject.val_items [--n 400] [--out .assets/inject-run/val_items.jsonl]
(from decoder/train, or with PYTHONPATH=decoder/train)"""
import argparse
import os

import sentencepiece as spm

from inject import data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=".assets/decoder-data", help="the decoder corpora")
    ap.add_argument("--tokenizer", default="decoder/models/mnemo-ref-4m/tokenizer.model")
    ap.add_argument("--n", type=int, default=400, help="held-out items (train_inject's --val-items)")
    ap.add_argument("--out", default=".assets/inject-run/val_items.jsonl")
    a = ap.parse_args(argv)
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    items = data.items_of_split(sp, os.path.join(a.data, "val.txt"), "val", a.n)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    data.write_jsonl(a.out, items)
    print(f"{len(items)} held-out items -> {a.out}")


if __name__ == "__main__":
    main()

